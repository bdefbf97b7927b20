/* Run-time half of the ABI pins: C cannot compare strings at compile time, so the text of every
 * id string is checked here, as C; plus the behaviour of CLUSTERD_STRUCT_HAS and the symbol
 * name that CLUSTERD_PLUGIN_ENTRY defines. Exit status 0 = all good. */
#include <clusterd/clusterd.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

#define CHECK_STRING(macro, text)                                                                 \
  do {                                                                                            \
    if (strcmp(macro, text) != 0) {                                                               \
      fprintf(stderr, "%s:%d: FAILED: %s is \"%s\", pinned \"%s\"\n", __FILE__, __LINE__, #macro, \
              macro, text);                                                                       \
      ++failures;                                                                                 \
    }                                                                                             \
  } while (0)

#define STR_(x) #x
#define STR(x) STR_(x)

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s);
  size_t m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int main(void) {
  CHECK_STRING(CLUSTERD_ENTRY_SYMBOL, "clusterd_plugin_entry_v1");
  CHECK_STRING(CLUSTERD_SERVICE_TIMER, "clusterd.timer/1");
  CHECK_STRING(CLUSTERD_SERVICE_FD, "clusterd.fd/1");
  CHECK_STRING(CLUSTERD_SERVICE_WORK, "clusterd.work/1");
  CHECK_STRING(CLUSTERD_SERVICE_HTTP, "clusterd.http/1");
  CHECK_STRING(CLUSTERD_SERVICE_DNS, "clusterd.dns/1");
  CHECK_STRING(CLUSTERD_SERVICE_STATUS, "clusterd.status/1");
  CHECK_STRING(CLUSTERD_SERVICE_STRATEGY_SINK, "clusterd.strategy-sink/1");
  CHECK_STRING(CLUSTERD_SERVICE_TRANSPORT_SINK, "clusterd.transport-sink/1");
  CHECK_STRING(CLUSTERD_INTERFACE_STRATEGY, "clusterd.strategy/1");
  CHECK_STRING(CLUSTERD_INTERFACE_TRANSPORT, "clusterd.transport/1");
  CHECK_STRING(CLUSTERD_SERVICE_PROCESS, "clusterd.process/1"); /* since 1.3 */

  /* The entry symbol's name carries the major. */
  CHECK(ends_with(CLUSTERD_ENTRY_SYMBOL, "_v" STR(CLUSTERD_ABI_MAJOR)));
  /* CLUSTERD_PLUGIN_ENTRY defines the symbol the host looks up. */
  CHECK(ends_with(STR(CLUSTERD_PLUGIN_ENTRY), " " CLUSTERD_ENTRY_SYMBOL));

  /* CLUSTERD_STRUCT_HAS: a field counts only when the producer's struct covers all of it. */
  {
    clusterd_plugin_entry_t entry;
    memset(&entry, 0, sizeof entry);
    entry.struct_size = (uint32_t)sizeof entry;
    CHECK(CLUSTERD_STRUCT_HAS(&entry, clusterd_plugin_entry_t, get_descriptor));
    entry.struct_size = (uint32_t)(offsetof(clusterd_plugin_entry_t, get_descriptor) +
                                   sizeof(entry.get_descriptor) - 1);
    CHECK(!CLUSTERD_STRUCT_HAS(&entry, clusterd_plugin_entry_t, get_descriptor));
    CHECK(CLUSTERD_STRUCT_HAS(&entry, clusterd_plugin_entry_t, deinit));
    entry.struct_size = 8;
    CHECK(CLUSTERD_STRUCT_HAS(&entry, clusterd_plugin_entry_t, abi_major));
    CHECK(!CLUSTERD_STRUCT_HAS(&entry, clusterd_plugin_entry_t, abi_minor));
  }

  if (failures != 0) {
    fprintf(stderr, "abi_constants_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("abi_constants_test: all checks passed (ABI %d.%d)\n", CLUSTERD_ABI_MAJOR,
         CLUSTERD_ABI_MINOR);
  return 0;
}
