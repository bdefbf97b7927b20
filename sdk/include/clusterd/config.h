/* clusterd plugin SDK — configuration: the options a plugin declares, and the read-only view
 * of its validated values. Plugins never parse TOML: the host does, against this schema. */
#ifndef CLUSTERD_CONFIG_H
#define CLUSTERD_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Option types (values of clusterd_option_t.type). */
#define CLUSTERD_OPT_STRING 1 /* TOML string */
#define CLUSTERD_OPT_INT 2    /* TOML integer */
#define CLUSTERD_OPT_BOOL 3   /* TOML boolean */
#define CLUSTERD_OPT_DOUBLE 4 /* TOML float or integer */
#define CLUSTERD_OPT_DURATION                                                             \
  5                                /* "250ms", "5s", "2m", "1h", integer milliseconds, or \
                                      "infinity" (read as -1) */
#define CLUSTERD_OPT_STRING_LIST 6 /* TOML array of strings (a single string is a list of one) */

/* Option flags (bits of clusterd_option_t.flags). */
#define CLUSTERD_OPT_REQUIRED 0x1u /* the host rejects a config without this key */
/* never logged or shown; a STRING or STRING_LIST option is also settable as KEY_file / KEY_env
 * (for a STRING_LIST: one item per non-empty line of the file or variable). */
#define CLUSTERD_OPT_SECRET 0x2u

/* One declared option. Plugins describe their options as a static array of these; the host
 * steps through the array by the first element's struct_size, so all elements of one array
 * must share it (they do when the array is written against one header version). */
typedef struct clusterd_option {
  uint32_t struct_size;      /* sizeof(clusterd_option_t) at the plugin's build */
  uint32_t type;             /* CLUSTERD_OPT_STRING .. CLUSTERD_OPT_STRING_LIST */
  uint32_t flags;            /* CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_SECRET */
  uint32_t reserved;         /* 0 */
  const char *key;           /* TOML key, lower_snake_case; libcluster's name where one exists */
  const char *default_value; /* the default as a TOML value literal, quotes included:
                                "\"5s\"", "45892", "true", "[\"a\"]"; NULL = no default */
  const char *choices;       /* for strings: allowed values separated by '|' ("ip|dns"); or NULL */
  const char *description;   /* one sentence for `clusterd plugins describe` */
} clusterd_option_t;

/* Read-only view of one instance's validated configuration, passed to clusterd_plugin_t.init.
 * Every declared option has a value here: the configured one or its default. A getter returns
 * CLUSTERD_E_NOT_FOUND for an option that is neither configured nor defaulted, and
 * CLUSTERD_E_TYPE when asked for another type than the option declares.
 * Thread: [any-thread]. Strings stay valid until the instance is destroyed. */
typedef struct clusterd_config clusterd_config_t;
struct clusterd_config {
  uint32_t struct_size;
  uint32_t reserved;
  const void *config_data; /* host-private */

  /* CLUSTERD_OPT_STRING options. */
  clusterd_status_t(CLUSTERD_ABI *get_string)(const clusterd_config_t *cfg, const char *key,
                                              const char **out);
  /* CLUSTERD_OPT_INT options. */
  clusterd_status_t(CLUSTERD_ABI *get_int)(const clusterd_config_t *cfg, const char *key,
                                           int64_t *out);
  /* CLUSTERD_OPT_BOOL options: *out is 1 or 0. */
  clusterd_status_t(CLUSTERD_ABI *get_bool)(const clusterd_config_t *cfg, const char *key,
                                            int32_t *out);
  /* CLUSTERD_OPT_DOUBLE options. */
  clusterd_status_t(CLUSTERD_ABI *get_double)(const clusterd_config_t *cfg, const char *key,
                                              double *out);
  /* CLUSTERD_OPT_DURATION options, in milliseconds; -1 for "infinity". */
  clusterd_status_t(CLUSTERD_ABI *get_duration_ms)(const clusterd_config_t *cfg, const char *key,
                                                   int64_t *out);
  /* CLUSTERD_OPT_STRING_LIST options: the number of elements. */
  clusterd_status_t(CLUSTERD_ABI *get_list_size)(const clusterd_config_t *cfg, const char *key,
                                                 uint32_t *out);
  /* CLUSTERD_OPT_STRING_LIST options: element `index` (< size). */
  clusterd_status_t(CLUSTERD_ABI *get_list_item)(const clusterd_config_t *cfg, const char *key,
                                                 uint32_t index, const char **out);
  /* 1 if the key was set in the configuration file (not just defaulted), else 0. */
  int32_t(CLUSTERD_ABI *is_set)(const clusterd_config_t *cfg, const char *key);
  /* Where the key was set, as "file:line:column", for the plugin's own error messages;
   * "" when it was not set. */
  const char *(CLUSTERD_ABI *source_of)(const clusterd_config_t *cfg, const char *key);
};

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_CONFIG_H */
