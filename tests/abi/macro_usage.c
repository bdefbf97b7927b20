/* The SDK's macros must work in a plugin's own code under strict warnings, in C and C++
 * (macro_usage.cpp includes this file): CLUSTERD_PLUGIN_ENTRY defines an exported entry in
 * the documented form, CLUSTERD_STRUCT_HAS reads a peer's struct size, CLUSTERD_ABI marks a
 * function. Compiled only (never linked: each standard's object defines the entry). */
#include <clusterd/clusterd.h>

#ifdef __cplusplus
#define MU_NULL nullptr
#else
#define MU_NULL NULL
#endif

static const clusterd_plugin_descriptor_t *CLUSTERD_ABI macro_usage_get_descriptor(void) {
  return MU_NULL;
}

CLUSTERD_PLUGIN_ENTRY = {
    sizeof(clusterd_plugin_entry_t), CLUSTERD_ABI_MAJOR, CLUSTERD_ABI_MINOR, 0, MU_NULL, MU_NULL,
    macro_usage_get_descriptor};

/* A host-side reader of an entry produced by another build. */
CLUSTERD_EXTERN_C int macro_usage_has_descriptor(const clusterd_plugin_entry_t *entry);
int macro_usage_has_descriptor(const clusterd_plugin_entry_t *entry) {
  return CLUSTERD_STRUCT_HAS(entry, clusterd_plugin_entry_t, get_descriptor) &&
         entry->get_descriptor != MU_NULL;
}
