/* clusterd plugin SDK — what a plugin library exports: one entry symbol, a descriptor, and
 * the instance vtable the host drives (create → init → start → stop → destroy). */
#ifndef CLUSTERD_PLUGIN_H
#define CLUSTERD_PLUGIN_H

#include "config.h"
#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Plugin kinds (clusterd_plugin_descriptor_t.kind). */
#define CLUSTERD_KIND_STRATEGY 1  /* discovers nodes; see strategy.h */
#define CLUSTERD_KIND_TRANSPORT 2 /* connects nodes; see transport.h */

/* Descriptor flags. */
/* Strategy: when a node leaves the discovered set, disconnect it unless the topology says
 * `disconnect = "never"` (libcluster's polling strategies behave so). */
#define CLUSTERD_PLUGIN_DISCONNECTS_REMOVED 0x1u

typedef struct clusterd_plugin clusterd_plugin_t;

/* Static description of the plugin. Valid as long as the library is loaded. */
typedef struct clusterd_plugin_descriptor {
  uint32_t struct_size;             /* sizeof at the producer's build; fields are appended only */
  uint32_t kind;                    /* CLUSTERD_KIND_* */
  uint32_t flags;                   /* CLUSTERD_PLUGIN_* */
  uint32_t option_count;            /* entries in `options` */
  const char *name;                 /* config name: [a-z0-9_]+, e.g. "epmd" */
  const char *version;              /* the plugin's own version, semver */
  const char *description;          /* one line */
  const char *const *aliases;       /* other accepted names ("Cluster.Strategy.Epmd"),
                                       NULL-terminated; may be NULL */
  const clusterd_option_t *options; /* declared options; see config.h */

  /* Creates an instance. Must not call the host (the table is not live yet): keep the
   * pointer and return. Returns NULL on failure. [loop-thread] */
  clusterd_plugin_t *(CLUSTERD_ABI *create)(const clusterd_host_t *host);

  /* since 1.3 */
  /* Checks the options as a whole, beyond the declared constraints: values that depend on
   * each other or on formats only the plugin knows. Reports every problem it finds through
   * `problems` (nothing reported = valid). Pure: no I/O, no threads, no host services, no
   * global state; it runs at `clusterd check` before any instance exists, and before every
   * start and reload. Called only for a config whose options all passed their type and
   * constraint checks. `config` and `problems` are borrowed for the call. May be NULL.
   * [loop-thread] */
  void(CLUSTERD_ABI *validate)(const clusterd_config_t *config,
                               const clusterd_problems_t *problems);
} clusterd_plugin_descriptor_t;

/* An instance, owned by the plugin. The host calls, in this order: init; start (only if init
 * succeeded); stop (only if start was called, even if it failed); destroy (always). */
struct clusterd_plugin {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  void *plugin_data; /* the plugin's; the host never touches it */

  /* Reads the (already validated) configuration. May use host services. [loop-thread]
   * Returns CLUSTERD_OK, or an error with last_error() saying why. */
  clusterd_status_t(CLUSTERD_ABI *init)(clusterd_plugin_t *self, const clusterd_config_t *config);
  /* Starts work: timers, sockets, first discovery. Must not block. [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *start)(clusterd_plugin_t *self);
  /* Stops all work and joins any thread the plugin owns. Must return promptly (the host
   * logs stop() calls slower than 1 s). After it returns the plugin may call nothing but
   * host->log, and the host cancels whatever the instance left registered. [loop-thread] */
  void(CLUSTERD_ABI *stop)(clusterd_plugin_t *self);
  /* Frees the instance. [loop-thread] */
  void(CLUSTERD_ABI *destroy)(clusterd_plugin_t *self);
  /* Why the last call on this instance failed. Owned by the plugin, valid until the next call
   * on `self`. May return NULL. [loop-thread] */
  const char *(CLUSTERD_ABI *last_error)(const clusterd_plugin_t *self);
  /* The kind interface: CLUSTERD_INTERFACE_STRATEGY or CLUSTERD_INTERFACE_TRANSPORT, or NULL
   * for ids the plugin does not implement. Valid until destroy. [loop-thread] */
  const void *(CLUSTERD_ABI *get_interface)(const clusterd_plugin_t *self, const char *id);
};

/* Passed to the entry's init: the loader's view of the host. */
typedef struct clusterd_loader_info {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t reserved;
  const char *host_version;
  const char *library_path; /* the file this library was loaded from */
} clusterd_loader_info_t;

/* The single symbol a plugin library exports, named CLUSTERD_ENTRY_SYMBOL. Before it calls
 * anything the host checks, in this order: struct_size covers everything up to and including
 * get_descriptor (else the library is rejected), abi_major == the host's major, abi_minor <=
 * the host's minor. */
typedef struct clusterd_plugin_entry {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t abi_major;   /* CLUSTERD_ABI_MAJOR the plugin was built against */
  uint32_t abi_minor;   /* CLUSTERD_ABI_MINOR the plugin was built against */
  uint32_t reserved;
  /* Library-wide set-up, once after loading. Must tolerate being called again after deinit.
   * May be NULL. Returns CLUSTERD_OK or an error. [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *init)(const clusterd_loader_info_t *info);
  /* Library-wide tear-down, after the last instance is destroyed. May be NULL. [loop-thread] */
  void(CLUSTERD_ABI *deinit)(void);
  /* The plugin this library provides. Valid between init and deinit. [loop-thread] */
  const clusterd_plugin_descriptor_t *(CLUSTERD_ABI *get_descriptor)(void);
} clusterd_plugin_entry_t;

/* The entry symbol's name, derived from the major here and nowhere else:
 * clusterd_plugin_entry_v<CLUSTERD_ABI_MAJOR> (identifier) and CLUSTERD_ENTRY_SYMBOL (string,
 * for dlsym). A new major renames the symbol, so an old host never calls a new plugin. */
#define CLUSTERD_DETAIL_PASTE_(a, b) a##b
#define CLUSTERD_DETAIL_PASTE(a, b) CLUSTERD_DETAIL_PASTE_(a, b)
#define CLUSTERD_DETAIL_STR_(x) #x
#define CLUSTERD_DETAIL_STR(x) CLUSTERD_DETAIL_STR_(x)
#define CLUSTERD_ENTRY_NAME CLUSTERD_DETAIL_PASTE(clusterd_plugin_entry_v, CLUSTERD_ABI_MAJOR)
#define CLUSTERD_ENTRY_SYMBOL CLUSTERD_DETAIL_STR(CLUSTERD_ENTRY_NAME)

/* Declares the entry symbol; define it exactly once in the plugin:
 *   CLUSTERD_PLUGIN_ENTRY = { sizeof(clusterd_plugin_entry_t), CLUSTERD_ABI_MAJOR,
 *                             CLUSTERD_ABI_MINOR, 0, NULL, NULL, my_get_descriptor }; */
#define CLUSTERD_PLUGIN_ENTRY \
  CLUSTERD_EXTERN_C CLUSTERD_EXPORT const clusterd_plugin_entry_t CLUSTERD_ENTRY_NAME

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_PLUGIN_H */
