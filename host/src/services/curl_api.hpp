// libcurl, opened with dlopen on first use instead of linked: a daemon whose plugins never
// use HTTP then never loads libcurl and its TLS stack (OpenSSL, GnuTLS, Kerberos, ...), which
// would otherwise cost ~6 MB of resident memory and their start-up constructors. systemd
// treats its optional libraries the same way. Include after <curl/curl.h>: the macros below
// route the curl_* calls of the including file through the loaded table.
#pragma once

#ifndef CURL_DISABLE_TYPECHECK
#error "define CURL_DISABLE_TYPECHECK before including <curl/curl.h>"
#endif
#include <curl/curl.h>

#include <string>

namespace clusterd::services {

// One field per libcurl function the HTTP client uses.
struct CurlApi {
  // clang-format off
#define CLUSTERD_CURL_FUNCTIONS(X)                                                            \
  X(curl_global_init) X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_getinfo)             \
  X(curl_easy_cleanup) X(curl_easy_strerror) X(curl_free) X(curl_multi_init)                 \
  X(curl_multi_setopt) X(curl_multi_add_handle) X(curl_multi_remove_handle)                  \
  X(curl_multi_socket_action) X(curl_multi_info_read) X(curl_multi_cleanup)                  \
  X(curl_multi_strerror) X(curl_slist_append) X(curl_slist_free_all) X(curl_url)             \
  X(curl_url_cleanup) X(curl_url_get) X(curl_url_set) X(curl_url_strerror)
  // clang-format on
#define CLUSTERD_CURL_FIELD(name) decltype(&::name) name##_fn = nullptr;
  CLUSTERD_CURL_FUNCTIONS(CLUSTERD_CURL_FIELD)
#undef CLUSTERD_CURL_FIELD
};

// The loaded table (libcurl.so.4, once, never unloaded), or nullptr with `error` saying why.
const CurlApi *curl_api(std::string &error);
// The table; only valid after curl_api() succeeded.
const CurlApi &curl();

}  // namespace clusterd::services

// curl.h wraps some calls in argument-count-checking macros of the same name.
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

#define curl_global_init (::clusterd::services::curl().curl_global_init_fn)
#define curl_easy_init (::clusterd::services::curl().curl_easy_init_fn)
#define curl_easy_setopt (::clusterd::services::curl().curl_easy_setopt_fn)
#define curl_easy_getinfo (::clusterd::services::curl().curl_easy_getinfo_fn)
#define curl_easy_cleanup (::clusterd::services::curl().curl_easy_cleanup_fn)
#define curl_easy_strerror (::clusterd::services::curl().curl_easy_strerror_fn)
#define curl_free (::clusterd::services::curl().curl_free_fn)
#define curl_multi_init (::clusterd::services::curl().curl_multi_init_fn)
#define curl_multi_setopt (::clusterd::services::curl().curl_multi_setopt_fn)
#define curl_multi_add_handle (::clusterd::services::curl().curl_multi_add_handle_fn)
#define curl_multi_remove_handle (::clusterd::services::curl().curl_multi_remove_handle_fn)
#define curl_multi_socket_action (::clusterd::services::curl().curl_multi_socket_action_fn)
#define curl_multi_info_read (::clusterd::services::curl().curl_multi_info_read_fn)
#define curl_multi_cleanup (::clusterd::services::curl().curl_multi_cleanup_fn)
#define curl_multi_strerror (::clusterd::services::curl().curl_multi_strerror_fn)
#define curl_slist_append (::clusterd::services::curl().curl_slist_append_fn)
#define curl_slist_free_all (::clusterd::services::curl().curl_slist_free_all_fn)
#define curl_url (::clusterd::services::curl().curl_url_fn)
#define curl_url_cleanup (::clusterd::services::curl().curl_url_cleanup_fn)
#define curl_url_get (::clusterd::services::curl().curl_url_get_fn)
#define curl_url_set (::clusterd::services::curl().curl_url_set_fn)
#define curl_url_strerror (::clusterd::services::curl().curl_url_strerror_fn)
