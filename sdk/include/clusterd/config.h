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
/* CLUSTERD_OPT_DURATION: "250ms", "5s", "2m", "1h", integer milliseconds, or "infinity" (read
 * as -1). A string without a unit ("5") is refused. */
#define CLUSTERD_OPT_DURATION 5
/* CLUSTERD_OPT_STRING_LIST: TOML array of strings (a bare string is refused, with a hint). */
#define CLUSTERD_OPT_STRING_LIST 6

/* Option flags (bits of clusterd_option_t.flags). */
#define CLUSTERD_OPT_REQUIRED 0x1u /* the host rejects a config without this key */
/* never logged or shown; a STRING or STRING_LIST option is also settable as KEY_file / KEY_env
 * (for a STRING_LIST: one item per non-empty line of the file or variable). */
#define CLUSTERD_OPT_SECRET 0x2u
/* Constraints (since 1.3). The host checks them, with every other problem of the file, at
 * `clusterd check`, at start and at reload (a reload that fails them is refused and the running
 * configuration kept), so a plugin never sees a value that breaks them. A default must satisfy
 * its own option's constraints. */
/* STRING: not "". STRING_LIST: at least one element, and no element "". */
#define CLUSTERD_OPT_NONEMPTY 0x4u
/* DURATION: "infinity" is refused. */
#define CLUSTERD_OPT_FINITE 0x8u
/* clusterd_option_t.min applies: INT value >= min; DURATION milliseconds >= min; STRING length
 * in bytes >= min; STRING_LIST element count >= min. ("infinity" passes any minimum.) */
#define CLUSTERD_OPT_MIN 0x10u
/* clusterd_option_t.max applies, as CLUSTERD_OPT_MIN with <= ("infinity" fails any maximum). */
#define CLUSTERD_OPT_MAX 0x20u

/* Formats (values of clusterd_option_t.format, since 1.3): what a STRING option, or every
 * element of a STRING_LIST option, must look like. Unknown values are refused at load. */
#define CLUSTERD_FORMAT_ANY 0           /* no format */
#define CLUSTERD_FORMAT_NODE_NAME 1     /* a node name: the rule of node_name.h (name@host) */
#define CLUSTERD_FORMAT_HOST_PORT 2     /* host or host:port; IPv6 as [v6]:port or bare v6 */
#define CLUSTERD_FORMAT_IPV4 3          /* dotted quad, a.b.c.d */
#define CLUSTERD_FORMAT_IPV6 4          /* IPv6 literal, without brackets */
#define CLUSTERD_FORMAT_IP 5            /* IPV4 or IPV6 */
#define CLUSTERD_FORMAT_HTTPS_URL 6     /* https://host[:port][/path], nothing else */
#define CLUSTERD_FORMAT_URL 7           /* http:// or https:// URL with a host */
#define CLUSTERD_FORMAT_IP_PORT 8       /* IP:PORT, port 0..65535 (0: any); IPv6 as [v6]:PORT */
#define CLUSTERD_FORMAT_NODE_BASENAME 9 /* the name part of a node name, before '@' */

/* One declared option. Plugins describe their options as a static array of these; the host
 * steps through the array by the first element's struct_size, so all elements of one array
 * must share it (they do when the array is written against one header version).
 * Fields are appended only, never reordered or retyped (sdk/docs/abi.md section 3); an option
 * array built against an older header simply has no constraints. */
typedef struct clusterd_option {
  uint32_t struct_size;      /* sizeof at the plugin's build; fields are appended only */
  uint32_t type;             /* CLUSTERD_OPT_STRING .. CLUSTERD_OPT_STRING_LIST */
  uint32_t flags;            /* CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_SECRET */
  uint32_t reserved;         /* 0 */
  const char *key;           /* TOML key, lower_snake_case; libcluster's name where one exists */
  const char *default_value; /* the default as a TOML value literal, quotes included:
                                "\"5s\"", "45892", "true", "[\"a\"]"; NULL = no default */
  const char *choices;       /* for strings: allowed values separated by '|' ("ip|dns"); or NULL */
  const char *description;   /* one sentence for `clusterd plugins describe` */
  /* since 1.3: constraints (see CLUSTERD_OPT_NONEMPTY..CLUSTERD_OPT_MAX above) */
  uint32_t format;       /* CLUSTERD_FORMAT_*; STRING and STRING_LIST only */
  uint32_t reserved2;    /* 0 */
  int64_t min;           /* with CLUSTERD_OPT_MIN; INT, DURATION (ms), STRING, STRING_LIST */
  int64_t max;           /* with CLUSTERD_OPT_MAX; as min */
  const char *needs;     /* '|'-separated keys that must also be set (configured, not
                            defaulted) when this option is set: "tls_key_file"; or NULL */
  const char *conflicts; /* '|'-separated keys that must not be set when this one is; or
                            NULL. Declaring it on one side of a pair is enough. */
} clusterd_option_t;

/* Where a plugin's validate() reports problems (since 1.3). Owned by the host, valid during the
 * validate() call only. */
typedef struct clusterd_problems clusterd_problems_t;
struct clusterd_problems {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  void *host_data; /* host-private */
  /* Reports one problem. `key`: the option it is about (the host shows where it was set), or
   * NULL for the table as a whole. `message`: one sentence saying what is wrong and what to do,
   * without the key; it must not contain a secret's value. Both are copied. [loop-thread] */
  void(CLUSTERD_ABI *report)(const clusterd_problems_t *problems, const char *key,
                             const char *message);
};

/* Read-only view of one instance's validated configuration, passed to clusterd_plugin_t.init.
 * Every declared option has a value here: the configured one or its default. A getter returns
 * CLUSTERD_E_NOT_FOUND for an option that is neither configured nor defaulted, and
 * CLUSTERD_E_TYPE when asked for another type than the option declares.
 * Thread: [any-thread]. Strings stay valid until the instance is destroyed. */
typedef struct clusterd_config clusterd_config_t;
struct clusterd_config {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
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
