// clusterd plugin SDK — the C++ side of the host table: status codes and Error, the Host a plugin
// calls (log, post, services), and the callback bookkeeping the RAII handles share.
#ifndef CLUSTERD_HOST_HPP
#define CLUSTERD_HOST_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "the clusterd C++ wrapper needs C++17 or newer (use clusterd/clusterd.h from C)"
#endif

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "clusterd.h"

namespace clusterd {

/// A status code (CLUSTERD_OK or a negative CLUSTERD_E_* value).
using Status = clusterd_status_t;
/// An operation, timer or watch id; 0 is never valid.
using Id = clusterd_id_t;

/// Log levels for Host::log.
enum class LogLevel : int32_t {
  kTrace = CLUSTERD_LOG_TRACE,
  kDebug = CLUSTERD_LOG_DEBUG,
  kInfo = CLUSTERD_LOG_INFO,
  kWarn = CLUSTERD_LOG_WARN,
  kError = CLUSTERD_LOG_ERROR,
};

/// The duration that Config::duration returns for "infinity": larger than every finite one.
inline constexpr std::chrono::milliseconds kInfinite = std::chrono::milliseconds::max();

/// True for the value Config::duration returns for "infinity".
constexpr bool is_infinite(std::chrono::milliseconds d) noexcept {
  return d == kInfinite;
}

/// The symbolic name of a status code ("CLUSTERD_E_TIMEOUT"), for messages and tests.
inline const char *status_name(Status status) noexcept {
  switch (status) {
    case CLUSTERD_OK:
      return "CLUSTERD_OK";
    case CLUSTERD_E_GENERIC:
      return "CLUSTERD_E_GENERIC";
    case CLUSTERD_E_INVALID_ARG:
      return "CLUSTERD_E_INVALID_ARG";
    case CLUSTERD_E_UNSUPPORTED:
      return "CLUSTERD_E_UNSUPPORTED";
    case CLUSTERD_E_NO_MEMORY:
      return "CLUSTERD_E_NO_MEMORY";
    case CLUSTERD_E_TIMEOUT:
      return "CLUSTERD_E_TIMEOUT";
    case CLUSTERD_E_CANCELLED:
      return "CLUSTERD_E_CANCELLED";
    case CLUSTERD_E_IO:
      return "CLUSTERD_E_IO";
    case CLUSTERD_E_AGAIN:
      return "CLUSTERD_E_AGAIN";
    case CLUSTERD_E_STATE:
      return "CLUSTERD_E_STATE";
    case CLUSTERD_E_CONFIG:
      return "CLUSTERD_E_CONFIG";
    case CLUSTERD_E_NOT_FOUND:
      return "CLUSTERD_E_NOT_FOUND";
    case CLUSTERD_E_UNREACHABLE:
      return "CLUSTERD_E_UNREACHABLE";
    case CLUSTERD_E_NOT_ALIVE:
      return "CLUSTERD_E_NOT_ALIVE";
    case CLUSTERD_E_TYPE:
      return "CLUSTERD_E_TYPE";
    default:
      return status < 0 ? "CLUSTERD_E_GENERIC (unknown code)" : "(reserved positive status)";
  }
}

/// The exception plugin code throws to fail a call with a specific status. The trampolines turn
/// it into that status plus last_error(); any other exception becomes CLUSTERD_E_GENERIC
/// (std::bad_alloc: CLUSTERD_E_NO_MEMORY).
class Error : public std::runtime_error {
 public:
  /// `status` should be a negative CLUSTERD_E_* code; anything else is stored as
  /// CLUSTERD_E_GENERIC, so an Error can never report success.
  Error(Status status, const std::string &message)
      : std::runtime_error(message), status_(status < 0 ? status : CLUSTERD_E_GENERIC) {}
  /// The status the failing call returns.
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

class Host;

namespace detail {

// Turns the exception being handled into a status and stores its message in `message`.
// Must be called from inside a catch block. Never throws.
inline Status current_exception_status(std::string &message) noexcept {
  Status status = CLUSTERD_E_GENERIC;
  const char *text = "unknown exception";
  try {
    throw;
  } catch (const Error &e) {
    status = e.status();
    text = e.what();
  } catch (const std::bad_alloc &) {
    status = CLUSTERD_E_NO_MEMORY;
    text = "out of memory";
  } catch (const std::exception &e) {
    text = e.what();
  } catch (...) {
  }
  try {
    message = text;
  } catch (...) {
    message.clear();  // no memory for the message: the status alone must do
  }
  return status;
}

// True when `s` is a valid plugin, option or key name: [a-z0-9_]+.
constexpr bool is_snake_name(const char *s) noexcept {
  if (s == nullptr || *s == '\0') return false;
  for (; *s != '\0'; ++s) {
    const char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

constexpr bool str_equal(const char *a, const char *b) noexcept {
  for (; *a != '\0' && *a == *b; ++a, ++b) {
  }
  return *a == *b;
}

// A host-service registration (timer, watch, request...) and the std::functions it calls.
// Owned by its handle; the C callback gets a pointer to it as user_data. A one-shot callback
// detaches it from the handle before running and frees it afterwards; a repeating one frees
// it after the callback if the handle let go of it meanwhile (reset from inside the callback).
struct CallbackState {
  explicit CallbackState(Host &h) noexcept : host(&h) {}
  virtual ~CallbackState() = default;
  CallbackState(const CallbackState &) = delete;
  CallbackState &operator=(const CallbackState &) = delete;

  // Asks the host to cancel `id`. Returns false when the state must outlive the call (work
  // still running on a pool thread); it is then parked in the Host until it can be freed.
  virtual bool cancel_op() noexcept = 0;
  // For parked states: true once nothing can touch the state any more.
  virtual bool reclaimable() const noexcept { return true; }

  void detach() noexcept {
    if (owner != nullptr) *owner = nullptr;
    owner = nullptr;
  }

  Host *host;
  CallbackState **owner = nullptr;  // the handle's pointer to this state
  Id id = 0;
  bool running = false;   // the callback is on the stack
  bool released = false;  // the handle let go while the callback ran: free it afterwards
};

struct PostedTask;
template <class T>
struct Exporter;

// Passed for an empty node list, so that the host never gets a NULL array.
inline constexpr const char *kNoNodes[1] = {nullptr};

}  // namespace detail

/// The host table of one plugin instance, with typed helpers. The base classes own one (see
/// Plugin::host()); tests may build one around a fake clusterd_host_t.
class Host {
 public:
  Host() noexcept = default;
  /// Wraps `raw` (may be NULL: then logging does nothing and services are absent).
  explicit Host(const clusterd_host_t *raw) noexcept : raw_(raw) {}
  /// Frees tasks that post() handed over and the host dropped, and parked work states.
  ~Host();
  Host(const Host &) = delete;
  Host &operator=(const Host &) = delete;

  /// The C table, or NULL.
  const clusterd_host_t *raw() const noexcept { return raw_; }
  /// "topology NAME" or "transport NAME"; "" when unknown.
  std::string_view instance_name() const noexcept {
    return raw_ != nullptr && raw_->instance_name != nullptr ? raw_->instance_name : "";
  }
  /// clusterd's version ("0.1.0"); "" when unknown.
  std::string_view host_version() const noexcept {
    return raw_ != nullptr && raw_->host_version != nullptr ? raw_->host_version : "";
  }
  /// The host's ABI minor version (to decide whether appended fields may be used).
  uint32_t abi_minor() const noexcept { return raw_ != nullptr ? raw_->abi_minor : 0; }

  /// Logs one line (the host prefixes the instance name). Never pass secrets. [thread-safe]
  void log(LogLevel level, std::string_view message) const noexcept {
    if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_host_t, log) || raw_->log == nullptr)
      return;
    try {
      const std::string line(message);
      raw_->log(raw_, static_cast<int32_t>(level), line.c_str());
    } catch (...) {
      raw_->log(raw_, static_cast<int32_t>(LogLevel::kError), "(log message lost: out of memory)");
    }
  }
  /// log(LogLevel::kTrace, message). [thread-safe]
  void trace(std::string_view message) const noexcept { log(LogLevel::kTrace, message); }
  /// log(LogLevel::kDebug, message). [thread-safe]
  void debug(std::string_view message) const noexcept { log(LogLevel::kDebug, message); }
  /// log(LogLevel::kInfo, message). [thread-safe]
  void info(std::string_view message) const noexcept { log(LogLevel::kInfo, message); }
  /// log(LogLevel::kWarn, message). [thread-safe]
  void warn(std::string_view message) const noexcept { log(LogLevel::kWarn, message); }
  /// log(LogLevel::kError, message). [thread-safe]
  void error(std::string_view message) const noexcept { log(LogLevel::kError, message); }

  /// Runs `task` once on the loop thread, soon: the way back from a thread the plugin owns.
  /// Returns CLUSTERD_OK, or an error (CLUSTERD_E_STATE once the instance is stopping) and then
  /// `task` never runs. A task still queued when the instance is stopped is dropped by the
  /// host and destroyed with this Host. Exceptions from `task` are logged. [thread-safe]
  Status post(std::function<void()> task) noexcept;

  /// The vtable of host service `id` (CLUSTERD_SERVICE_*), or NULL if the host lacks it.
  const void *service(const char *id) const noexcept {
    if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_host_t, get_service) ||
        raw_->get_service == nullptr || id == nullptr)
      return nullptr;
    return raw_->get_service(raw_, id);
  }

  /// Shows `key` = `value` under this instance in `clusterctl status` ("clusterd.status/1").
  /// Does nothing if the host lacks the service. Never pass secrets.
  void set_status(std::string_view key, std::string_view value) const {
    const auto *svc = status_service();
    if (svc == nullptr) return;
    const std::string k(key), v(value);
    svc->set(raw_, k.c_str(), v.c_str());
  }
  /// Removes the status detail `key`.
  void clear_status(std::string_view key) const {
    const auto *svc = status_service();
    if (svc == nullptr) return;
    const std::string k(key);
    svc->set(raw_, k.c_str(), nullptr);
  }

  /// Adds `delta` to the plugin counter clusterd_<name> (with one optional label
  /// `label_name`="`label_value`"), exported on the host's metrics listener
  /// ("clusterd.metrics/1", ABI 1.2). Does nothing if the host lacks the service.
  void count(const char *name, const char *help, const char *label_name = nullptr,
             const char *label_value = nullptr, uint64_t delta = 1) const noexcept {
    const auto *svc = metrics_service();
    if (svc != nullptr) svc->counter_add(raw_, name, help, label_name, label_value, delta);
  }
  /// Sets the plugin gauge clusterd_<name> (see count()).
  void gauge(const char *name, const char *help, double value, const char *label_name = nullptr,
             const char *label_value = nullptr) const noexcept {
    const auto *svc = metrics_service();
    if (svc != nullptr) svc->gauge_set(raw_, name, help, label_name, label_value, value);
  }

  /// True once the instance's stop() has returned: the host has cancelled everything the
  /// instance left registered, so handles only free their memory from then on.
  bool stopped() const noexcept { return stopped_; }

 private:
  friend class Plugin;
  friend struct detail::PostedTask;
  friend class Handle;
  template <class T>
  friend struct detail::Exporter;

  const clusterd_status_service_t *status_service() const noexcept {
    const auto *svc =
        static_cast<const clusterd_status_service_t *>(service(CLUSTERD_SERVICE_STATUS));
    if (svc == nullptr || !CLUSTERD_STRUCT_HAS(svc, clusterd_status_service_t, set) ||
        svc->set == nullptr)
      return nullptr;
    return svc;
  }
  const clusterd_metrics_service_t *metrics_service() const noexcept {
    const auto *svc =
        static_cast<const clusterd_metrics_service_t *>(service(CLUSTERD_SERVICE_METRICS));
    if (svc == nullptr || !CLUSTERD_STRUCT_HAS(svc, clusterd_metrics_service_t, gauge_set) ||
        svc->counter_add == nullptr || svc->gauge_set == nullptr)
      return nullptr;
    return svc;
  }
  void bind(const clusterd_host_t *raw) noexcept { raw_ = raw; }
  void mark_stopped() noexcept { stopped_ = true; }
  void unlink(detail::PostedTask *task) noexcept;
  void park(detail::CallbackState *state) noexcept;

  const clusterd_host_t *raw_ = nullptr;
  bool stopped_ = false;
  std::mutex posted_mutex_;
  detail::PostedTask *posted_ = nullptr;  // tasks handed to post() and not run yet
  std::vector<detail::CallbackState *> parked_;
};

namespace detail {

struct PostedTask {
  std::function<void()> fn;
  Host *host = nullptr;
  PostedTask *prev = nullptr;
  PostedTask *next = nullptr;

  static void CLUSTERD_ABI run(void *user_data) noexcept {
    auto *task = static_cast<PostedTask *>(user_data);
    task->host->unlink(task);
    try {
      task->fn();
    } catch (...) {
      std::string message;
      current_exception_status(message);
      task->host->error("exception escaped a posted task: " + message);
    }
    delete task;
  }
};

}  // namespace detail

inline Status Host::post(std::function<void()> task) noexcept {
  if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_host_t, post) || raw_->post == nullptr)
    return CLUSTERD_E_UNSUPPORTED;
  if (!task) return CLUSTERD_E_INVALID_ARG;
  detail::PostedTask *t = new (std::nothrow) detail::PostedTask;
  if (t == nullptr) return CLUSTERD_E_NO_MEMORY;
  try {
    t->fn = std::move(task);
  } catch (...) {
    delete t;
    return CLUSTERD_E_NO_MEMORY;
  }
  t->host = this;
  {
    // Linked before the host sees it: the loop may run it before raw_->post even returns.
    std::lock_guard<std::mutex> lock(posted_mutex_);
    t->next = posted_;
    if (posted_ != nullptr) posted_->prev = t;
    posted_ = t;
  }
  const Status status = raw_->post(raw_, &detail::PostedTask::run, t);
  if (status != CLUSTERD_OK) {
    unlink(t);
    delete t;
  }
  return status;
}

inline void Host::unlink(detail::PostedTask *task) noexcept {
  std::lock_guard<std::mutex> lock(posted_mutex_);
  if (task->prev != nullptr) task->prev->next = task->next;
  if (task->next != nullptr) task->next->prev = task->prev;
  if (posted_ == task) posted_ = task->next;
  task->prev = task->next = nullptr;
}

inline void Host::park(detail::CallbackState *state) noexcept {
  // Sweep first, so a long-running instance that cancels a lot of work stays bounded.
  std::size_t kept = 0;
  for (auto *s : parked_) {
    if (s->reclaimable()) {
      delete s;
    } else {
      parked_[kept++] = s;
    }
  }
  parked_.resize(kept);
  try {
    parked_.push_back(state);
  } catch (...) {
    // No memory to remember it: leaking beats freeing memory a pool thread still uses.
  }
}

inline Host::~Host() {
  detail::PostedTask *t = nullptr;
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    t = std::exchange(posted_, nullptr);
  }
  while (t != nullptr) delete std::exchange(t, t->next);
  // After stop() every parked work has finished (stop waits for running work). Without a
  // stop() (init failed) a pool thread might still be inside one: leak it rather than free
  // memory in use.
  for (auto *s : parked_)
    if (s->reclaimable()) delete s;
}

}  // namespace clusterd

#endif  // CLUSTERD_HOST_HPP
