/* ABI layout pins: sizeof/alignof of every ABI struct, offset, size and type of every field,
 * the signature of every function pointer, and the value of every constant, for LP64 Linux
 * (x86_64, aarch64). Any accidental ABI change fails the build here.
 *
 * Compiled as C11, C17, C++17 and C++20 (layout_pins.cpp includes this file), so C and C++
 * plugins are proven to see one layout.
 *
 * Editing rules (sdk/docs/abi.md): existing pins never change within a major. A new minor
 * appends fields: add their pins in a new "since 1.N" block and update the struct's sizeof. */
#include <clusterd/clusterd.h>

#ifdef __cplusplus
#include <type_traits>
#define PIN(cond, what) static_assert(cond, what)
#define PIN_ALIGNOF(T) alignof(T)
/* The type of an expression or typedef, exactly (qualifiers and signatures included). */
#define PIN_IS_TYPE(expr_type, ...) (std::is_same<expr_type, __VA_ARGS__>::value)
#define PIN_FIELD_TYPE(T, f) decltype(T::f)
#else
#define PIN(cond, what) _Static_assert(cond, what)
#define PIN_ALIGNOF(T) _Alignof(T)
#endif

#if !defined(__LP64__) || !defined(__linux__)
/* The numbers below are for LP64 Linux only. Elsewhere only the constants are checked. */
#define CLUSTERD_PINS_LAYOUT 0
#else
#define CLUSTERD_PINS_LAYOUT 1
#endif

/* ---- Helpers ------------------------------------------------------------------------------
 * PIN_STRUCT(T, size)                   sizeof(T) == size and alignof(T) == 8
 * PIN_FIELD(T, f, offset, size, type)   offsetof, sizeof and exact type of T.f
 * PIN_TYPEDEF(name, type)               a typedef names exactly this type
 * _Generic selects on the unqualified type of T.f, which is the field's declared type for
 * every field here (no field is top-level const). */
#define PIN_STRUCT(T, size)                           \
  PIN(sizeof(T) == (size), "sizeof(" #T ") changed"); \
  PIN(PIN_ALIGNOF(T) == 8, "alignof(" #T ") changed")

#ifdef __cplusplus
#define PIN_FIELD(T, f, offset, size, ...)                             \
  PIN(offsetof(T, f) == (offset), "offsetof(" #T ", " #f ") changed"); \
  PIN(sizeof(((T *)0)->f) == (size), "sizeof(" #T "." #f ") changed"); \
  PIN(PIN_IS_TYPE(PIN_FIELD_TYPE(T, f), __VA_ARGS__), "type of " #T "." #f " changed")
#define PIN_TYPEDEF(name, ...) PIN(PIN_IS_TYPE(name, __VA_ARGS__), "typedef " #name " changed")
#else
#define PIN_FIELD(T, f, offset, size, ...)                             \
  PIN(offsetof(T, f) == (offset), "offsetof(" #T ", " #f ") changed"); \
  PIN(sizeof(((T *)0)->f) == (size), "sizeof(" #T "." #f ") changed"); \
  PIN(_Generic(((T *)0)->f, __VA_ARGS__ : 1, default : 0), "type of " #T "." #f " changed")
#define PIN_TYPEDEF(name, ...) \
  PIN(_Generic((name)0, __VA_ARGS__ : 1, default : 0), "typedef " #name " changed")
#endif

/* ---- Version and basic types (common.h) --------------------------------------------------- */
PIN(CLUSTERD_ABI_MAJOR == 1, "CLUSTERD_ABI_MAJOR");
PIN(CLUSTERD_ABI_MINOR == 6, "CLUSTERD_ABI_MINOR: a new minor needs new pins, see the top");

PIN_TYPEDEF(clusterd_status_t, int32_t);
PIN_TYPEDEF(clusterd_id_t, uint64_t);

PIN(CLUSTERD_OK == 0, "CLUSTERD_OK");
PIN(CLUSTERD_E_GENERIC == -1, "CLUSTERD_E_GENERIC");
PIN(CLUSTERD_E_INVALID_ARG == -2, "CLUSTERD_E_INVALID_ARG");
PIN(CLUSTERD_E_UNSUPPORTED == -3, "CLUSTERD_E_UNSUPPORTED");
PIN(CLUSTERD_E_NO_MEMORY == -4, "CLUSTERD_E_NO_MEMORY");
PIN(CLUSTERD_E_TIMEOUT == -5, "CLUSTERD_E_TIMEOUT");
PIN(CLUSTERD_E_CANCELLED == -6, "CLUSTERD_E_CANCELLED");
PIN(CLUSTERD_E_IO == -7, "CLUSTERD_E_IO");
PIN(CLUSTERD_E_AGAIN == -8, "CLUSTERD_E_AGAIN");
PIN(CLUSTERD_E_STATE == -9, "CLUSTERD_E_STATE");
PIN(CLUSTERD_E_CONFIG == -10, "CLUSTERD_E_CONFIG");
PIN(CLUSTERD_E_NOT_FOUND == -11, "CLUSTERD_E_NOT_FOUND");
PIN(CLUSTERD_E_UNREACHABLE == -12, "CLUSTERD_E_UNREACHABLE");
PIN(CLUSTERD_E_NOT_ALIVE == -13, "CLUSTERD_E_NOT_ALIVE");
PIN(CLUSTERD_E_TYPE == -14, "CLUSTERD_E_TYPE");

PIN(CLUSTERD_LOG_TRACE == 0, "CLUSTERD_LOG_TRACE");
PIN(CLUSTERD_LOG_DEBUG == 1, "CLUSTERD_LOG_DEBUG");
PIN(CLUSTERD_LOG_INFO == 2, "CLUSTERD_LOG_INFO");
PIN(CLUSTERD_LOG_WARN == 3, "CLUSTERD_LOG_WARN");
PIN(CLUSTERD_LOG_ERROR == 4, "CLUSTERD_LOG_ERROR");

/* ---- Configuration (config.h) ------------------------------------------------------------- */
PIN(CLUSTERD_OPT_STRING == 1, "CLUSTERD_OPT_STRING");
PIN(CLUSTERD_OPT_INT == 2, "CLUSTERD_OPT_INT");
PIN(CLUSTERD_OPT_BOOL == 3, "CLUSTERD_OPT_BOOL");
PIN(CLUSTERD_OPT_DOUBLE == 4, "CLUSTERD_OPT_DOUBLE");
PIN(CLUSTERD_OPT_DURATION == 5, "CLUSTERD_OPT_DURATION");
PIN(CLUSTERD_OPT_STRING_LIST == 6, "CLUSTERD_OPT_STRING_LIST");
PIN(CLUSTERD_OPT_REQUIRED == 0x1u, "CLUSTERD_OPT_REQUIRED");
PIN(CLUSTERD_OPT_SECRET == 0x2u, "CLUSTERD_OPT_SECRET");
/* since 1.3 */
PIN(CLUSTERD_OPT_NONEMPTY == 0x4u, "CLUSTERD_OPT_NONEMPTY");
PIN(CLUSTERD_OPT_FINITE == 0x8u, "CLUSTERD_OPT_FINITE");
PIN(CLUSTERD_OPT_MIN == 0x10u, "CLUSTERD_OPT_MIN");
PIN(CLUSTERD_OPT_MAX == 0x20u, "CLUSTERD_OPT_MAX");
PIN(CLUSTERD_FORMAT_ANY == 0, "CLUSTERD_FORMAT_ANY");
PIN(CLUSTERD_FORMAT_NODE_NAME == 1, "CLUSTERD_FORMAT_NODE_NAME");
PIN(CLUSTERD_FORMAT_HOST_PORT == 2, "CLUSTERD_FORMAT_HOST_PORT");
PIN(CLUSTERD_FORMAT_IPV4 == 3, "CLUSTERD_FORMAT_IPV4");
PIN(CLUSTERD_FORMAT_IPV6 == 4, "CLUSTERD_FORMAT_IPV6");
PIN(CLUSTERD_FORMAT_IP == 5, "CLUSTERD_FORMAT_IP");
PIN(CLUSTERD_FORMAT_HTTPS_URL == 6, "CLUSTERD_FORMAT_HTTPS_URL");
PIN(CLUSTERD_FORMAT_URL == 7, "CLUSTERD_FORMAT_URL");
PIN(CLUSTERD_FORMAT_IP_PORT == 8, "CLUSTERD_FORMAT_IP_PORT");
PIN(CLUSTERD_FORMAT_NODE_BASENAME == 9, "CLUSTERD_FORMAT_NODE_BASENAME");

/* ---- Plugins (plugin.h) ------------------------------------------------------------------- */
PIN(CLUSTERD_KIND_STRATEGY == 1, "CLUSTERD_KIND_STRATEGY");
PIN(CLUSTERD_KIND_TRANSPORT == 2, "CLUSTERD_KIND_TRANSPORT");
PIN(CLUSTERD_PLUGIN_DISCONNECTS_REMOVED == 0x1u, "CLUSTERD_PLUGIN_DISCONNECTS_REMOVED");

/* ---- Services (services.h) ---------------------------------------------------------------- */
PIN(CLUSTERD_FD_READ == 0x1u, "CLUSTERD_FD_READ");
PIN(CLUSTERD_FD_WRITE == 0x2u, "CLUSTERD_FD_WRITE");
PIN(CLUSTERD_FD_ERROR == 0x4u, "CLUSTERD_FD_ERROR");
PIN(CLUSTERD_HTTP_INSECURE_SKIP_VERIFY == 0x1u, "CLUSTERD_HTTP_INSECURE_SKIP_VERIFY");
PIN(CLUSTERD_DNS_A == 1, "CLUSTERD_DNS_A");
PIN(CLUSTERD_DNS_AAAA == 28, "CLUSTERD_DNS_AAAA");
PIN(CLUSTERD_DNS_SRV == 33, "CLUSTERD_DNS_SRV");
/* since 1.3 (process.h) */
PIN(CLUSTERD_PROCESS_MERGE_STDERR == 0x1u, "CLUSTERD_PROCESS_MERGE_STDERR");
PIN(CLUSTERD_PROCESS_STOP_ON_OVERFLOW == 0x2u, "CLUSTERD_PROCESS_STOP_ON_OVERFLOW");
PIN(CLUSTERD_PROCESS_STDOUT == 1u, "CLUSTERD_PROCESS_STDOUT");
PIN(CLUSTERD_PROCESS_STDERR == 2u, "CLUSTERD_PROCESS_STDERR");

/* ---- String constants ----------------------------------------------------------------------
 * C has no constant string comparison: the C build pins the lengths, the C++ build the text,
 * and abi_constants_test.c compares the text at run time as C. */
#ifdef __cplusplus
namespace {
constexpr bool pin_streq(const char *a, const char *b) {
  for (; *a != '\0' || *b != '\0'; ++a, ++b) {
    if (*a != *b) return false;
  }
  return true;
}
constexpr bool pin_ends_with(const char *s, const char *suffix) {
  const char *a = s;
  const char *b = suffix;
  while (*a != '\0') ++a;
  while (*b != '\0') ++b;
  for (;;) {
    if (*a != *b) return false;
    if (b == suffix) return true;
    if (a == s) return false;
    --a;
    --b;
  }
}
}  // namespace
#define PIN_STRING(macro, text) PIN(pin_streq(macro, text), #macro " changed")
#else
#define PIN_STRING(macro, text) PIN(sizeof(macro) == sizeof(text), #macro " changed")
#endif

PIN_STRING(CLUSTERD_ENTRY_SYMBOL, "clusterd_plugin_entry_v1");
PIN_STRING(CLUSTERD_SERVICE_TIMER, "clusterd.timer/1");
PIN_STRING(CLUSTERD_SERVICE_FD, "clusterd.fd/1");
PIN_STRING(CLUSTERD_SERVICE_WORK, "clusterd.work/1");
PIN_STRING(CLUSTERD_SERVICE_HTTP, "clusterd.http/1");
PIN_STRING(CLUSTERD_SERVICE_DNS, "clusterd.dns/1");
PIN_STRING(CLUSTERD_SERVICE_STATUS, "clusterd.status/1");
PIN_STRING(CLUSTERD_SERVICE_STRATEGY_SINK, "clusterd.strategy-sink/1");
PIN_STRING(CLUSTERD_SERVICE_TRANSPORT_SINK, "clusterd.transport-sink/1");
PIN_STRING(CLUSTERD_INTERFACE_STRATEGY, "clusterd.strategy/1");
PIN_STRING(CLUSTERD_INTERFACE_TRANSPORT, "clusterd.transport/1");
/* since 1.1 */
PIN_STRING(CLUSTERD_INTERFACE_CONTROL, "clusterd.control/1");
PIN_STRING(CLUSTERD_SERVICE_CONTROL_SINK, "clusterd.control-sink/1");
PIN(CLUSTERD_CONTROL_MAX_BUFFERED == 16u * 1024u * 1024u, "CLUSTERD_CONTROL_MAX_BUFFERED");
/* since 1.2 */
PIN_STRING(CLUSTERD_SERVICE_METRICS, "clusterd.metrics/1");
/* since 1.3 */
PIN(CLUSTERD_NODE_NAME_MAX == 255, "CLUSTERD_NODE_NAME_MAX");
PIN(CLUSTERD_NODE_NAME_OK == 0 && CLUSTERD_NODE_NAME_E_LENGTH == 1 &&
        CLUSTERD_NODE_NAME_E_NO_AT == 2 && CLUSTERD_NODE_NAME_E_NAME == 3 &&
        CLUSTERD_NODE_NAME_E_SECOND_AT == 4 && CLUSTERD_NODE_NAME_E_HOST == 5 &&
        CLUSTERD_NODE_NAME_E_PORT == 6 && CLUSTERD_NODE_NAME_E_IPV6 == 7,
    "CLUSTERD_NODE_NAME_* codes");
PIN(CLUSTERD_NODE_HOST_SHORT == 1 && CLUSTERD_NODE_HOST_DOTTED == 2 &&
        CLUSTERD_NODE_HOST_IPV4 == 3 && CLUSTERD_NODE_HOST_IPV6 == 4,
    "CLUSTERD_NODE_HOST_* kinds");
PIN_STRING(CLUSTERD_SERVICE_PROCESS, "clusterd.process/1");

#ifdef __cplusplus
/* The symbol CLUSTERD_PLUGIN_ENTRY defines is the one CLUSTERD_ENTRY_SYMBOL names. */
#define PIN_STR_(x) #x
#define PIN_STR(x) PIN_STR_(x)
PIN(pin_ends_with(PIN_STR(CLUSTERD_PLUGIN_ENTRY), " " CLUSTERD_ENTRY_SYMBOL),
    "CLUSTERD_PLUGIN_ENTRY does not define CLUSTERD_ENTRY_SYMBOL");
#endif

#if CLUSTERD_PINS_LAYOUT

/* ---- Callback typedefs -------------------------------------------------------------------- */
PIN_TYPEDEF(clusterd_task_fn, void (*)(void *));
PIN_TYPEDEF(clusterd_timer_fn, void (*)(void *, clusterd_id_t));
PIN_TYPEDEF(clusterd_fd_fn, void (*)(void *, clusterd_id_t, int, uint32_t));
PIN_TYPEDEF(clusterd_work_fn, void (*)(void *));
PIN_TYPEDEF(clusterd_work_done_fn, void (*)(void *, clusterd_id_t));
PIN_TYPEDEF(clusterd_http_done_fn,
            void (*)(void *, clusterd_id_t, const clusterd_http_response_t *));
PIN_TYPEDEF(clusterd_http_data_fn, int32_t (*)(void *, clusterd_id_t, const char *, size_t));
PIN_TYPEDEF(clusterd_dns_done_fn, void (*)(void *, clusterd_id_t, const clusterd_dns_result_t *));

/* ---- clusterd_option_t -------------------------------------------------------------------- */
PIN_STRUCT(clusterd_option_t, 88);
PIN_FIELD(clusterd_option_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_option_t, type, 4, 4, uint32_t);
PIN_FIELD(clusterd_option_t, flags, 8, 4, uint32_t);
PIN_FIELD(clusterd_option_t, reserved, 12, 4, uint32_t);
PIN_FIELD(clusterd_option_t, key, 16, 8, const char *);
PIN_FIELD(clusterd_option_t, default_value, 24, 8, const char *);
PIN_FIELD(clusterd_option_t, choices, 32, 8, const char *);
PIN_FIELD(clusterd_option_t, description, 40, 8, const char *);
/* since 1.3 */
PIN_FIELD(clusterd_option_t, format, 48, 4, uint32_t);
PIN_FIELD(clusterd_option_t, reserved2, 52, 4, uint32_t);
PIN_FIELD(clusterd_option_t, min, 56, 8, int64_t);
PIN_FIELD(clusterd_option_t, max, 64, 8, int64_t);
PIN_FIELD(clusterd_option_t, needs, 72, 8, const char *);
PIN_FIELD(clusterd_option_t, conflicts, 80, 8, const char *);

/* ---- since 1.3: clusterd_problems_t ------------------------------------------------------- */
PIN_STRUCT(clusterd_problems_t, 24);
PIN_FIELD(clusterd_problems_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_problems_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_problems_t, host_data, 8, 8, void *);
PIN_FIELD(clusterd_problems_t, report, 16, 8,
          void (*)(const clusterd_problems_t *, const char *, const char *));

/* ---- clusterd_config_t -------------------------------------------------------------------- */
PIN_STRUCT(clusterd_config_t, 88);
PIN_FIELD(clusterd_config_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_config_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_config_t, config_data, 8, 8, const void *);
PIN_FIELD(clusterd_config_t, get_string, 16, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, const char **));
PIN_FIELD(clusterd_config_t, get_int, 24, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, int64_t *));
PIN_FIELD(clusterd_config_t, get_bool, 32, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, int32_t *));
PIN_FIELD(clusterd_config_t, get_double, 40, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, double *));
PIN_FIELD(clusterd_config_t, get_duration_ms, 48, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, int64_t *));
PIN_FIELD(clusterd_config_t, get_list_size, 56, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, uint32_t *));
PIN_FIELD(clusterd_config_t, get_list_item, 64, 8,
          clusterd_status_t (*)(const clusterd_config_t *, const char *, uint32_t, const char **));
PIN_FIELD(clusterd_config_t, is_set, 72, 8, int32_t (*)(const clusterd_config_t *, const char *));
PIN_FIELD(clusterd_config_t, source_of, 80, 8,
          const char *(*)(const clusterd_config_t *, const char *));

/* ---- clusterd_host_t ---------------------------------------------------------------------- */
PIN_STRUCT(clusterd_host_t, 64);
PIN_FIELD(clusterd_host_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_host_t, abi_major, 4, 4, uint32_t);
PIN_FIELD(clusterd_host_t, abi_minor, 8, 4, uint32_t);
PIN_FIELD(clusterd_host_t, reserved, 12, 4, uint32_t);
PIN_FIELD(clusterd_host_t, host_version, 16, 8, const char *);
PIN_FIELD(clusterd_host_t, instance_name, 24, 8, const char *);
PIN_FIELD(clusterd_host_t, host_data, 32, 8, void *);
PIN_FIELD(clusterd_host_t, log, 40, 8, void (*)(const clusterd_host_t *, int32_t, const char *));
PIN_FIELD(clusterd_host_t, get_service, 48, 8,
          const void *(*)(const clusterd_host_t *, const char *));
PIN_FIELD(clusterd_host_t, post, 56, 8,
          clusterd_status_t (*)(const clusterd_host_t *, clusterd_task_fn, void *));

/* ---- clusterd_plugin_descriptor_t --------------------------------------------------------- */
PIN_STRUCT(clusterd_plugin_descriptor_t, 72);
PIN_FIELD(clusterd_plugin_descriptor_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_plugin_descriptor_t, kind, 4, 4, uint32_t);
PIN_FIELD(clusterd_plugin_descriptor_t, flags, 8, 4, uint32_t);
PIN_FIELD(clusterd_plugin_descriptor_t, option_count, 12, 4, uint32_t);
PIN_FIELD(clusterd_plugin_descriptor_t, name, 16, 8, const char *);
PIN_FIELD(clusterd_plugin_descriptor_t, version, 24, 8, const char *);
PIN_FIELD(clusterd_plugin_descriptor_t, description, 32, 8, const char *);
PIN_FIELD(clusterd_plugin_descriptor_t, aliases, 40, 8, const char *const *);
PIN_FIELD(clusterd_plugin_descriptor_t, options, 48, 8, const clusterd_option_t *);
PIN_FIELD(clusterd_plugin_descriptor_t, create, 56, 8,
          clusterd_plugin_t *(*)(const clusterd_host_t *));
/* since 1.3 */
PIN_FIELD(clusterd_plugin_descriptor_t, validate, 64, 8,
          void (*)(const clusterd_config_t *, const clusterd_problems_t *));

/* ---- clusterd_plugin_t -------------------------------------------------------------------- */
PIN_STRUCT(clusterd_plugin_t, 64);
PIN_FIELD(clusterd_plugin_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_plugin_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_plugin_t, plugin_data, 8, 8, void *);
PIN_FIELD(clusterd_plugin_t, init, 16, 8,
          clusterd_status_t (*)(clusterd_plugin_t *, const clusterd_config_t *));
PIN_FIELD(clusterd_plugin_t, start, 24, 8, clusterd_status_t (*)(clusterd_plugin_t *));
PIN_FIELD(clusterd_plugin_t, stop, 32, 8, void (*)(clusterd_plugin_t *));
PIN_FIELD(clusterd_plugin_t, destroy, 40, 8, void (*)(clusterd_plugin_t *));
PIN_FIELD(clusterd_plugin_t, last_error, 48, 8, const char *(*)(const clusterd_plugin_t *));
PIN_FIELD(clusterd_plugin_t, get_interface, 56, 8,
          const void *(*)(const clusterd_plugin_t *, const char *));

/* ---- clusterd_loader_info_t --------------------------------------------------------------- */
PIN_STRUCT(clusterd_loader_info_t, 32);
PIN_FIELD(clusterd_loader_info_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_loader_info_t, abi_major, 4, 4, uint32_t);
PIN_FIELD(clusterd_loader_info_t, abi_minor, 8, 4, uint32_t);
PIN_FIELD(clusterd_loader_info_t, reserved, 12, 4, uint32_t);
PIN_FIELD(clusterd_loader_info_t, host_version, 16, 8, const char *);
PIN_FIELD(clusterd_loader_info_t, library_path, 24, 8, const char *);

/* ---- clusterd_plugin_entry_t -------------------------------------------------------------- */
PIN_STRUCT(clusterd_plugin_entry_t, 40);
PIN_FIELD(clusterd_plugin_entry_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_plugin_entry_t, abi_major, 4, 4, uint32_t);
PIN_FIELD(clusterd_plugin_entry_t, abi_minor, 8, 4, uint32_t);
PIN_FIELD(clusterd_plugin_entry_t, reserved, 12, 4, uint32_t);
PIN_FIELD(clusterd_plugin_entry_t, init, 16, 8,
          clusterd_status_t (*)(const clusterd_loader_info_t *));
PIN_FIELD(clusterd_plugin_entry_t, deinit, 24, 8, void (*)(void));
PIN_FIELD(clusterd_plugin_entry_t, get_descriptor, 32, 8,
          const clusterd_plugin_descriptor_t *(*)(void));

/* ---- clusterd_timer_service_t ------------------------------------------------------------- */
PIN_STRUCT(clusterd_timer_service_t, 24);
PIN_FIELD(clusterd_timer_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_timer_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_timer_service_t, add, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, uint64_t, uint64_t, clusterd_timer_fn,
                                void *, clusterd_id_t *));
PIN_FIELD(clusterd_timer_service_t, cancel, 16, 8,
          void (*)(const clusterd_host_t *, clusterd_id_t));

/* ---- clusterd_fd_service_t ---------------------------------------------------------------- */
PIN_STRUCT(clusterd_fd_service_t, 32);
PIN_FIELD(clusterd_fd_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_fd_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_fd_service_t, watch, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, int, uint32_t, clusterd_fd_fn, void *,
                                clusterd_id_t *));
PIN_FIELD(clusterd_fd_service_t, modify, 16, 8,
          clusterd_status_t (*)(const clusterd_host_t *, clusterd_id_t, uint32_t));
PIN_FIELD(clusterd_fd_service_t, unwatch, 24, 8, void (*)(const clusterd_host_t *, clusterd_id_t));

/* ---- clusterd_work_service_t -------------------------------------------------------------- */
PIN_STRUCT(clusterd_work_service_t, 24);
PIN_FIELD(clusterd_work_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_work_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_work_service_t, submit, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, clusterd_work_fn, clusterd_work_done_fn,
                                void *, clusterd_id_t *));
PIN_FIELD(clusterd_work_service_t, cancel, 16, 8,
          clusterd_status_t (*)(const clusterd_host_t *, clusterd_id_t));

/* ---- clusterd_http_request_t -------------------------------------------------------------- */
PIN_STRUCT(clusterd_http_request_t, 128);
PIN_FIELD(clusterd_http_request_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_http_request_t, flags, 4, 4, uint32_t);
PIN_FIELD(clusterd_http_request_t, method, 8, 8, const char *);
PIN_FIELD(clusterd_http_request_t, url, 16, 8, const char *);
PIN_FIELD(clusterd_http_request_t, headers, 24, 8, const char *const *);
PIN_FIELD(clusterd_http_request_t, header_count, 32, 4, uint32_t);
PIN_FIELD(clusterd_http_request_t, reserved, 36, 4, uint32_t);
PIN_FIELD(clusterd_http_request_t, body, 40, 8, const char *);
PIN_FIELD(clusterd_http_request_t, body_length, 48, 8, size_t);
PIN_FIELD(clusterd_http_request_t, timeout_ms, 56, 8, uint64_t);
PIN_FIELD(clusterd_http_request_t, ca_file, 64, 8, const char *);
PIN_FIELD(clusterd_http_request_t, client_cert_file, 72, 8, const char *);
PIN_FIELD(clusterd_http_request_t, client_key_file, 80, 8, const char *);
PIN_FIELD(clusterd_http_request_t, max_body_bytes, 88, 8, uint64_t);
PIN_FIELD(clusterd_http_request_t, on_data, 96, 8, clusterd_http_data_fn);
/* since 1.2 */
PIN_FIELD(clusterd_http_request_t, aws_sigv4, 104, 8, const char *);
PIN_FIELD(clusterd_http_request_t, username, 112, 8, const char *);
PIN_FIELD(clusterd_http_request_t, password, 120, 8, const char *);

/* ---- clusterd_http_response_t ------------------------------------------------------------- */
PIN_STRUCT(clusterd_http_response_t, 48);
PIN_FIELD(clusterd_http_response_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_http_response_t, status, 4, 4, clusterd_status_t);
PIN_FIELD(clusterd_http_response_t, http_status, 8, 4, int32_t);
PIN_FIELD(clusterd_http_response_t, header_count, 12, 4, uint32_t);
PIN_FIELD(clusterd_http_response_t, headers, 16, 8, const char *const *);
PIN_FIELD(clusterd_http_response_t, body, 24, 8, const char *);
PIN_FIELD(clusterd_http_response_t, body_length, 32, 8, size_t);
PIN_FIELD(clusterd_http_response_t, error, 40, 8, const char *);

/* ---- clusterd_http_service_t -------------------------------------------------------------- */
PIN_STRUCT(clusterd_http_service_t, 24);
PIN_FIELD(clusterd_http_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_http_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_http_service_t, request, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, const clusterd_http_request_t *,
                                clusterd_http_done_fn, void *, clusterd_id_t *));
PIN_FIELD(clusterd_http_service_t, cancel, 16, 8, void (*)(const clusterd_host_t *, clusterd_id_t));

/* ---- clusterd_dns_query_t ----------------------------------------------------------------- */
PIN_STRUCT(clusterd_dns_query_t, 32);
PIN_FIELD(clusterd_dns_query_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_dns_query_t, type, 4, 4, uint32_t);
PIN_FIELD(clusterd_dns_query_t, name, 8, 8, const char *);
PIN_FIELD(clusterd_dns_query_t, server, 16, 8, const char *);
PIN_FIELD(clusterd_dns_query_t, timeout_ms, 24, 8, uint64_t);

/* ---- clusterd_dns_record_t (bytes 20..23 are implicit padding) ---------------------------- */
PIN_STRUCT(clusterd_dns_record_t, 40);
PIN_FIELD(clusterd_dns_record_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_dns_record_t, type, 4, 4, uint32_t);
PIN_FIELD(clusterd_dns_record_t, ttl, 8, 4, uint32_t);
PIN_FIELD(clusterd_dns_record_t, priority, 12, 2, uint16_t);
PIN_FIELD(clusterd_dns_record_t, weight, 14, 2, uint16_t);
PIN_FIELD(clusterd_dns_record_t, port, 16, 2, uint16_t);
PIN_FIELD(clusterd_dns_record_t, reserved, 18, 2, uint16_t);
PIN_FIELD(clusterd_dns_record_t, address, 24, 8, const char *);
PIN_FIELD(clusterd_dns_record_t, target, 32, 8, const char *);

/* ---- clusterd_dns_result_t ---------------------------------------------------------------- */
PIN_STRUCT(clusterd_dns_result_t, 32);
PIN_FIELD(clusterd_dns_result_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_dns_result_t, status, 4, 4, clusterd_status_t);
PIN_FIELD(clusterd_dns_result_t, records, 8, 8, const clusterd_dns_record_t *);
PIN_FIELD(clusterd_dns_result_t, record_count, 16, 4, uint32_t);
PIN_FIELD(clusterd_dns_result_t, reserved, 20, 4, uint32_t);
PIN_FIELD(clusterd_dns_result_t, error, 24, 8, const char *);

/* ---- clusterd_dns_service_t --------------------------------------------------------------- */
PIN_STRUCT(clusterd_dns_service_t, 24);
PIN_FIELD(clusterd_dns_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_dns_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_dns_service_t, resolve, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, const clusterd_dns_query_t *,
                                clusterd_dns_done_fn, void *, clusterd_id_t *));
PIN_FIELD(clusterd_dns_service_t, cancel, 16, 8, void (*)(const clusterd_host_t *, clusterd_id_t));

/* ---- clusterd_status_service_t ------------------------------------------------------------ */
PIN_STRUCT(clusterd_status_service_t, 16);
PIN_FIELD(clusterd_status_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_status_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_status_service_t, set, 8, 8,
          void (*)(const clusterd_host_t *, const char *, const char *));

/* ---- clusterd_strategy_t ------------------------------------------------------------------ */
PIN_STRUCT(clusterd_strategy_t, 16);
PIN_FIELD(clusterd_strategy_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_strategy_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_strategy_t, refresh, 8, 8, clusterd_status_t (*)(clusterd_plugin_t *));

/* ---- clusterd_strategy_sink_t ------------------------------------------------------------- */
PIN_STRUCT(clusterd_strategy_sink_t, 48);
PIN_FIELD(clusterd_strategy_sink_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_strategy_sink_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_strategy_sink_t, set_nodes, 8, 8,
          void (*)(const clusterd_host_t *, const char *const *, uint32_t));
PIN_FIELD(clusterd_strategy_sink_t, node_seen, 16, 8,
          void (*)(const clusterd_host_t *, const char *));
PIN_FIELD(clusterd_strategy_sink_t, node_lost, 24, 8,
          void (*)(const clusterd_host_t *, const char *));
PIN_FIELD(clusterd_strategy_sink_t, discovery_failed, 32, 8,
          void (*)(const clusterd_host_t *, const char *));
PIN_FIELD(clusterd_strategy_sink_t, local_node, 40, 8, const char *(*)(const clusterd_host_t *));

/* ---- clusterd_transport_t ----------------------------------------------------------------- */
PIN_STRUCT(clusterd_transport_t, 48);
PIN_FIELD(clusterd_transport_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_transport_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_transport_t, connect, 8, 8,
          clusterd_status_t (*)(clusterd_plugin_t *, clusterd_id_t, const char *));
PIN_FIELD(clusterd_transport_t, disconnect, 16, 8,
          clusterd_status_t (*)(clusterd_plugin_t *, clusterd_id_t, const char *));
PIN_FIELD(clusterd_transport_t, list_nodes, 24, 8,
          clusterd_status_t (*)(clusterd_plugin_t *, clusterd_id_t));
PIN_FIELD(clusterd_transport_t, cancel, 32, 8, void (*)(clusterd_plugin_t *, clusterd_id_t));
PIN_FIELD(clusterd_transport_t, local_node, 40, 8, const char *(*)(const clusterd_plugin_t *));

/* ---- clusterd_transport_sink_t ------------------------------------------------------------ */
PIN_STRUCT(clusterd_transport_sink_t, 48);
PIN_FIELD(clusterd_transport_sink_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_transport_sink_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_transport_sink_t, complete, 8, 8,
          void (*)(const clusterd_host_t *, clusterd_id_t, clusterd_status_t, const char *));
PIN_FIELD(clusterd_transport_sink_t, complete_list, 16, 8,
          void (*)(const clusterd_host_t *, clusterd_id_t, clusterd_status_t, const char *,
                   const char *const *, uint32_t));
PIN_FIELD(clusterd_transport_sink_t, node_up, 24, 8,
          void (*)(const clusterd_host_t *, const char *));
PIN_FIELD(clusterd_transport_sink_t, node_down, 32, 8,
          void (*)(const clusterd_host_t *, const char *, const char *));
PIN_FIELD(clusterd_transport_sink_t, local_changed, 40, 8, void (*)(const clusterd_host_t *));

/* ---- since 1.1: clusterd_control_t --------------------------------------------------------- */
PIN_STRUCT(clusterd_control_t, 32);
PIN_FIELD(clusterd_control_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_control_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_control_t, request, 8, 8,
          clusterd_status_t (*)(clusterd_plugin_t *, clusterd_id_t, const char *, size_t));
PIN_FIELD(clusterd_control_t, session_closed, 16, 8, void (*)(clusterd_plugin_t *, clusterd_id_t));
/* since 1.4 */
PIN_FIELD(clusterd_control_t, read_only_commands, 24, 8, const char *const *);

/* ---- since 1.1: clusterd_control_sink_t ---------------------------------------------------- */
PIN_STRUCT(clusterd_control_sink_t, 40);
PIN_FIELD(clusterd_control_sink_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_control_sink_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_control_sink_t, send, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, clusterd_id_t, const char *, size_t));
PIN_FIELD(clusterd_control_sink_t, end, 16, 8, void (*)(const clusterd_host_t *, clusterd_id_t));
PIN_FIELD(clusterd_control_sink_t, buffered, 24, 8,
          size_t (*)(const clusterd_host_t *, clusterd_id_t));
/* since 1.6 */
PIN_FIELD(clusterd_control_sink_t, detach, 32, 8,
          clusterd_status_t (*)(const clusterd_host_t *, clusterd_id_t, int *, const char **,
                                size_t *));

/* ---- since 1.2: clusterd_metrics_service_t ------------------------------------------------- */
PIN_STRUCT(clusterd_metrics_service_t, 24);
PIN_FIELD(clusterd_metrics_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_metrics_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_metrics_service_t, counter_add, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, const char *, const char *, const char *,
                                const char *, uint64_t));
PIN_FIELD(clusterd_metrics_service_t, gauge_set, 16, 8,
          clusterd_status_t (*)(const clusterd_host_t *, const char *, const char *, const char *,
                                const char *, double));

/* ---- since 1.3: clusterd_node_name_t (header-only, never crosses the ABI; 4-aligned) ---- */
PIN(sizeof(clusterd_node_name_t) == 24, "sizeof(clusterd_node_name_t) changed");
PIN(PIN_ALIGNOF(clusterd_node_name_t) == 4, "alignof(clusterd_node_name_t) changed");
PIN_FIELD(clusterd_node_name_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_node_name_t, host_kind, 4, 4, uint32_t);
PIN_FIELD(clusterd_node_name_t, name_length, 8, 4, uint32_t);
PIN_FIELD(clusterd_node_name_t, host_offset, 12, 4, uint32_t);
PIN_FIELD(clusterd_node_name_t, host_length, 16, 4, uint32_t);
PIN_FIELD(clusterd_node_name_t, port, 20, 4, uint32_t);
/* ---- since 1.3: clusterd.process/1 (process.h) ------------------------------------------- */
PIN_TYPEDEF(clusterd_process_done_fn,
            void (*)(void *, clusterd_id_t, const clusterd_process_result_t *));

PIN_STRUCT(clusterd_process_request_t, 72);
PIN_FIELD(clusterd_process_request_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_process_request_t, flags, 4, 4, uint32_t);
PIN_FIELD(clusterd_process_request_t, argv, 8, 8, const char *const *);
PIN_FIELD(clusterd_process_request_t, argc, 16, 4, uint32_t);
PIN_FIELD(clusterd_process_request_t, envc, 20, 4, uint32_t);
PIN_FIELD(clusterd_process_request_t, envp, 24, 8, const char *const *);
PIN_FIELD(clusterd_process_request_t, cwd, 32, 8, const char *);
PIN_FIELD(clusterd_process_request_t, max_capture_bytes, 40, 8, uint64_t);
PIN_FIELD(clusterd_process_request_t, timeout_ms, 48, 8, uint64_t);
PIN_FIELD(clusterd_process_request_t, grace_ms, 56, 8, uint64_t);
/* since 1.5 */
PIN_TYPEDEF(clusterd_process_output_fn,
            void (*)(void *, clusterd_id_t, uint32_t, const char *, uint64_t));
PIN_FIELD(clusterd_process_request_t, output, 64, 8,
          void (*)(void *, clusterd_id_t, uint32_t, const char *, uint64_t));

PIN_STRUCT(clusterd_process_result_t, 72);
PIN_FIELD(clusterd_process_result_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_process_result_t, status, 4, 4, clusterd_status_t);
PIN_FIELD(clusterd_process_result_t, exit_code, 8, 4, int32_t);
PIN_FIELD(clusterd_process_result_t, term_signal, 12, 4, int32_t);
PIN_FIELD(clusterd_process_result_t, timed_out, 16, 4, uint32_t);
PIN_FIELD(clusterd_process_result_t, stdout_truncated, 20, 4, uint32_t);
PIN_FIELD(clusterd_process_result_t, stderr_truncated, 24, 4, uint32_t);
PIN_FIELD(clusterd_process_result_t, pid, 28, 4, int32_t);
PIN_FIELD(clusterd_process_result_t, stdout_data, 32, 8, const char *);
PIN_FIELD(clusterd_process_result_t, stdout_length, 40, 8, uint64_t);
PIN_FIELD(clusterd_process_result_t, stderr_data, 48, 8, const char *);
PIN_FIELD(clusterd_process_result_t, stderr_length, 56, 8, uint64_t);
PIN_FIELD(clusterd_process_result_t, error, 64, 8, const char *);

PIN_STRUCT(clusterd_process_service_t, 24);
PIN_FIELD(clusterd_process_service_t, struct_size, 0, 4, uint32_t);
PIN_FIELD(clusterd_process_service_t, reserved, 4, 4, uint32_t);
PIN_FIELD(clusterd_process_service_t, spawn, 8, 8,
          clusterd_status_t (*)(const clusterd_host_t *, const clusterd_process_request_t *,
                                clusterd_process_done_fn, void *, clusterd_id_t *));
PIN_FIELD(clusterd_process_service_t, cancel, 16, 8,
          void (*)(const clusterd_host_t *, clusterd_id_t));

#endif /* CLUSTERD_PINS_LAYOUT */

/* ISO C needs at least one declaration in a translation unit even when no pin applies. */
typedef int clusterd_layout_pins_tu_is_not_empty;
