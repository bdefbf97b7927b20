#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>  // the real declarations, before curl_api.hpp renames the calls

#include <dlfcn.h>

#include <mutex>

#include "services/curl_api.hpp"

namespace clusterd::services {
namespace {

CurlApi g_api;
std::string g_error;

void load() {
  // The SONAME of libcurl 7.x/8.x: the ABI this code was compiled against.
  void *library = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *why = ::dlerror();
    g_error = std::string("libcurl is not available: ") + (why ? why : "dlopen failed");
    return;
  }
  bool complete = true;
#define CLUSTERD_CURL_RESOLVE(name)                                                       \
  g_api.name##_fn = reinterpret_cast<decltype(g_api.name##_fn)>(::dlsym(library, #name)); \
  if (!g_api.name##_fn) {                                                                 \
    g_error = "libcurl.so.4 lacks " #name " (too old)";                                   \
    complete = false;                                                                     \
  }
  CLUSTERD_CURL_FUNCTIONS(CLUSTERD_CURL_RESOLVE)
#undef CLUSTERD_CURL_RESOLVE
  if (!complete) g_api = CurlApi{};
}

}  // namespace

const CurlApi *curl_api(std::string &error) {
  static std::once_flag once;
  std::call_once(once, load);
  error = g_error;
  return g_error.empty() ? &g_api : nullptr;
}

const CurlApi &curl() {
  return g_api;
}

}  // namespace clusterd::services
