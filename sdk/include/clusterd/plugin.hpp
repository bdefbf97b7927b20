// clusterd plugin SDK — header-only C++17 wrapper over the C ABI: base classes, typed config,
// RAII handles for host services, and an export macro whose trampolines never let exceptions out.
#ifndef CLUSTERD_PLUGIN_HPP
#define CLUSTERD_PLUGIN_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "clusterd/plugin.hpp needs C++17 or newer (use clusterd/clusterd.h from C)"
#endif

// Nothing in this header is exported: everything is inline or a template, compiled into the
// plugin with hidden visibility. The only thing that crosses into the host is the C ABI of
// clusterd.h, so the wrapper cannot break the ABI, and two plugins built with different versions
// of it coexist in one daemon.
//
// Threading: like the C ABI, every member is [loop-thread] unless marked [thread-safe].

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "clusterd.h"
#include "options.hpp"

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

// ---- Files -----------------------------------------------------------------------------------

/// Reads a whole small file (a token, a cookie, a hosts file) into `out`. Returns false when it
/// cannot be opened or read, is not a regular file (a FIFO would block), or holds more than
/// `max_bytes`, with `error` set to "PATH: reason"
/// (never any of the content, which may be a secret). [thread-safe]
/// Plain POSIX I/O on purpose: iostreams would link the C++ locale machinery into a plugin
/// built with the static C++ runtime (clusterd_add_plugin's default) and cost the daemon memory.
inline bool read_file(const std::string &path, std::string &out, std::string &error,
                      std::size_t max_bytes = std::size_t{1} << 20) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = path + ": not a regular file";
    ::close(fd);
    return false;
  }
  std::string text;
  char buffer[16384];
  for (;;) {  // ends at EOF, on an error, or once past max_bytes
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > max_bytes) {
      error = path + ": larger than " + std::to_string(max_bytes) + " bytes";
      ::close(fd);
      return false;
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  out = std::move(text);
  return true;
}

// ---- Node names ------------------------------------------------------------------------------

/// A node name taken apart by the node-name rule (clusterd/node_name.h states it; the host
/// applies the same rule to every name a strategy reports). The views point into the text that
/// was parsed: valid as long as it is.
struct NodeName {
  enum class HostKind : uint32_t {
    kShort = CLUSTERD_NODE_HOST_SHORT,    // no dots: an Erlang short name's host
    kDotted = CLUSTERD_NODE_HOST_DOTTED,  // an FQDN: an Erlang long name's host
    kIpv4 = CLUSTERD_NODE_HOST_IPV4,
    kIpv6 = CLUSTERD_NODE_HOST_IPV6,
  };
  std::string_view name;         // before '@'
  std::string_view host;         // after '@', without the port, IPv6 without brackets
  std::optional<uint16_t> port;  // partisan's "name@host:port"; nullopt when absent
  HostKind host_kind = HostKind::kShort;

  /// The host as it goes before ":port" in an address: IPv6 in brackets.
  std::string address_host() const {
    std::string out;
    if (host_kind == HostKind::kIpv6) out += '[';
    out += host;
    if (host_kind == HostKind::kIpv6) out += ']';
    return out;
  }
};

/// `node` taken apart, or nullopt when it breaks the node-name rule. [thread-safe]
inline std::optional<NodeName> parse_node_name(std::string_view node) noexcept {
  clusterd_node_name_t parts{};
  if (clusterd_node_name_parse(node.data(), node.size(), &parts) != CLUSTERD_NODE_NAME_OK)
    return std::nullopt;
  NodeName out;
  out.name = node.substr(0, parts.name_length);
  out.host = node.substr(parts.host_offset, parts.host_length);
  if (parts.port != 0) out.port = static_cast<uint16_t>(parts.port);
  out.host_kind = static_cast<NodeName::HostKind>(parts.host_kind);
  return out;
}

/// True when `node` follows the node-name rule: the very check the host applies at the strategy
/// sink. [thread-safe]
inline bool valid_node_name(std::string_view node) noexcept {
  return clusterd_node_name_parse(node.data(), node.size(), nullptr) == CLUSTERD_NODE_NAME_OK;
}

/// Why `node` breaks the node-name rule, in words ("" when it does not). Static storage.
/// [thread-safe]
inline const char *node_name_error(std::string_view node) noexcept {
  return clusterd_node_name_error(clusterd_node_name_parse(node.data(), node.size(), nullptr));
}

// ---- Backoff ---------------------------------------------------------------------------------

/// The wait before retry number `attempts` (1 = after the first failure; 0 counts as 1):
/// exponential from `initial`, doubling per attempt, capped at `max`, with "equal jitter" --
/// uniform in [d/2, d] -- so peers that failed together do not retry in lockstep, yet never
/// retry much too early. This is the host reconciler's formula (same doubling, cap and
/// distribution): with the same engine and seed it yields the same delays. `random` is any
/// UniformRandomBitGenerator (std::mt19937_64 in Backoff and in the host). [thread-safe] as far
/// as `random` is.
template <typename Random>
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds initial,
                                        std::chrono::milliseconds max, unsigned attempts,
                                        Random &random) {
  const std::int64_t cap = std::max<std::int64_t>(max.count(), 0);
  std::int64_t full = std::max<std::int64_t>(initial.count(), 0);
  for (unsigned i = 1;
       i < attempts && full < cap && full <= std::numeric_limits<std::int64_t>::max() / 2; ++i)
    full *= 2;
  full = std::min<std::int64_t>(full, cap);
  std::uniform_int_distribution<std::int64_t> jitter(full / 2, full);
  return std::chrono::milliseconds(jitter(random));
}

/// One retry loop's backoff: next() after each failure, reset() after a success. Not
/// synchronised: use it from one thread at a time (the loop, or the plugin's own thread).
class Backoff {
 public:
  using Random = std::mt19937_64;

  /// Seeded from std::random_device, so processes that start together spread out. Throws
  /// std::exception if the system has no random device.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : Backoff(
            initial, max,
            (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {}
  /// Seeded with `seed`: the same delays every time (tests).
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
          std::uint64_t seed) noexcept
      : initial_(initial), max_(max), random_(seed) {}

  /// The wait before the next retry (backoff_delay of one more failed attempt).
  std::chrono::milliseconds next() {
    if (attempts_ < std::numeric_limits<unsigned>::max()) ++attempts_;
    return backoff_delay(initial_, max_, attempts_, random_);
  }
  /// It worked: the next failure waits about `initial` again.
  void reset() noexcept { attempts_ = 0; }
  /// Failed attempts since the last reset().
  unsigned attempts() const noexcept { return attempts_; }

 private:
  std::chrono::milliseconds initial_, max_;
  Random random_;
  unsigned attempts_ = 0;
};

// ---- Configuration ---------------------------------------------------------------------------

/// Read-only, typed view of an instance's validated configuration (passed to Plugin::init).
/// Getters throw Error: CLUSTERD_E_NOT_FOUND when the option is neither set nor defaulted,
/// CLUSTERD_E_TYPE when the option has another type; the optional_* getters return
/// std::nullopt instead of throwing CLUSTERD_E_NOT_FOUND. [any-thread]
class Config {
 public:
  /// Wraps `raw` (must not be NULL).
  explicit Config(const clusterd_config_t *raw) noexcept : raw_(raw) {}

  /// The C view.
  const clusterd_config_t *raw() const noexcept { return raw_; }

  /// A CLUSTERD_OPT_STRING option.
  std::string string(std::string_view key) const { return required(key, optional_string(key)); }
  /// A CLUSTERD_OPT_INT option.
  int64_t integer(std::string_view key) const { return required(key, optional_integer(key)); }
  /// A CLUSTERD_OPT_BOOL option.
  bool boolean(std::string_view key) const { return required(key, optional_boolean(key)); }
  /// A CLUSTERD_OPT_DOUBLE option.
  double number(std::string_view key) const { return required(key, optional_number(key)); }
  /// A CLUSTERD_OPT_DURATION option; "infinity" is kInfinite.
  std::chrono::milliseconds duration(std::string_view key) const {
    return required(key, optional_duration(key));
  }
  /// A CLUSTERD_OPT_STRING_LIST option.
  std::vector<std::string> strings(std::string_view key) const {
    return required(key, optional_strings(key));
  }

  /// string(key), or std::nullopt when neither set nor defaulted.
  std::optional<std::string> optional_string(std::string_view key) const {
    const char *out = nullptr;
    if (!get(key, &clusterd_config_t::get_string, &out)) return std::nullopt;
    return std::string(out != nullptr ? out : "");
  }
  /// integer(key), or std::nullopt.
  std::optional<int64_t> optional_integer(std::string_view key) const {
    int64_t out = 0;
    if (!get(key, &clusterd_config_t::get_int, &out)) return std::nullopt;
    return out;
  }
  /// boolean(key), or std::nullopt.
  std::optional<bool> optional_boolean(std::string_view key) const {
    int32_t out = 0;
    if (!get(key, &clusterd_config_t::get_bool, &out)) return std::nullopt;
    return out != 0;
  }
  /// number(key), or std::nullopt.
  std::optional<double> optional_number(std::string_view key) const {
    double out = 0;
    if (!get(key, &clusterd_config_t::get_double, &out)) return std::nullopt;
    return out;
  }
  /// duration(key), or std::nullopt.
  std::optional<std::chrono::milliseconds> optional_duration(std::string_view key) const {
    int64_t out = 0;
    if (!get(key, &clusterd_config_t::get_duration_ms, &out)) return std::nullopt;
    if (out < 0) return kInfinite;
    return std::chrono::milliseconds(out);
  }
  /// strings(key), or std::nullopt.
  std::optional<std::vector<std::string>> optional_strings(std::string_view key) const {
    uint32_t size = 0;
    if (!get(key, &clusterd_config_t::get_list_size, &size)) return std::nullopt;
    check_fn(key, &clusterd_config_t::get_list_item);
    const std::string k(key);
    std::vector<std::string> items;
    items.reserve(size);
    for (uint32_t i = 0; i < size; ++i) {
      const char *item = nullptr;
      const Status status = raw_->get_list_item(raw_, k.c_str(), i, &item);
      if (status != CLUSTERD_OK) fail(key, status);
      items.emplace_back(item != nullptr ? item : "");
    }
    return items;
  }

  /// True if `key` was set in the configuration file (not just defaulted).
  bool is_set(std::string_view key) const {
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_config_t, is_set) || raw_->is_set == nullptr)
      return false;
    const std::string k(key);
    return raw_->is_set(raw_, k.c_str()) != 0;
  }
  /// Where `key` was set, "file:line:column", for error messages; "" when it was not set.
  std::string source_of(std::string_view key) const {
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_config_t, source_of) || raw_->source_of == nullptr)
      return {};
    const std::string k(key);
    const char *where = raw_->source_of(raw_, k.c_str());
    return where != nullptr ? where : "";
  }
  /// " at file:line:column" (where `key` was set), or "" — to append to an error message.
  std::string where(std::string_view key) const {
    const std::string at = source_of(key);
    return at.empty() ? std::string() : " at " + at;
  }

 private:
  template <class Fn>
  void check_fn(std::string_view key, Fn clusterd_config_t::*fn) const {
    // Every getter is part of ABI 1.0; a view too short to hold them all is a broken host.
    if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_config_t, source_of) ||
        raw_->*fn == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "config option '" + std::string(key) +
                                              "': the host's config view lacks a getter");
  }
  template <class Fn, class Out>
  bool get(std::string_view key, Fn clusterd_config_t::*fn, Out *out) const {
    check_fn(key, fn);
    const std::string k(key);
    const Status status = (raw_->*fn)(raw_, k.c_str(), out);
    if (status == CLUSTERD_E_NOT_FOUND) return false;
    if (status != CLUSTERD_OK) fail(key, status);
    return true;
  }
  template <class T>
  static T required(std::string_view key, std::optional<T> value) {
    if (!value) fail(key, CLUSTERD_E_NOT_FOUND);
    return std::move(*value);
  }
  [[noreturn]] static void fail(std::string_view key, Status status) {
    std::string message = "config option '" + std::string(key) + "': ";
    switch (status) {
      case CLUSTERD_E_NOT_FOUND:
        message += "not set and no default";
        break;
      case CLUSTERD_E_TYPE:
        message += "has another type than asked for";
        break;
      default:
        message += status_name(status);
        break;
    }
    throw Error(status, message);
  }

  const clusterd_config_t *raw_;
};

/// Where a plugin's `static void validate(const Config &, Problems &)` reports what is wrong with
/// a configuration as a whole (ABI 1.3; see clusterd_plugin_descriptor_t.validate). The host
/// shows each problem with the file, line and column of its key. [loop-thread]
class Problems {
 public:
  /// Wraps `raw` (must not be NULL), valid for the validate() call.
  explicit Problems(const clusterd_problems_t *raw) noexcept : raw_(raw) {}

  /// Option `key` is wrong: `message` says what and what to do, without a secret's value.
  void add(std::string_view key, std::string_view message) noexcept { report(key, message, true); }
  /// The table as a whole is wrong (no single key to blame).
  void add(std::string_view message) noexcept { report({}, message, false); }
  /// How many problems were reported through this object.
  std::size_t count() const noexcept { return count_; }

 private:
  void report(std::string_view key, std::string_view message, bool has_key) noexcept {
    ++count_;
    if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_problems_t, report) ||
        raw_->report == nullptr)
      return;
    try {
      const std::string k(key), m(message);
      raw_->report(raw_, has_key ? k.c_str() : nullptr, m.c_str());
    } catch (...) {
      raw_->report(raw_, nullptr, "out of memory");  // still a problem: the config is refused
    }
  }

  const clusterd_problems_t *raw_;
  std::size_t count_ = 0;
};

// ---- RAII handles for host services ----------------------------------------------------------

/// Base of the RAII handles (Timer, FdWatch, Work, HttpCall, DnsQuery, Process): owns one host
/// registration and the callbacks it runs. Destroying or resetting the handle cancels the
/// registration (after cancel the callback never runs again) and frees the callbacks; both are
/// safe from inside the handle's own callback. Move-only. A default-constructed handle is
/// empty. Handles must not outlive the Host they were started with.
class Handle {
 public:
  /// An empty handle.
  Handle() noexcept = default;
  /// Takes over `other`'s registration; `other` becomes empty.
  Handle(Handle &&other) noexcept : state_(std::exchange(other.state_, nullptr)) {
    if (state_ != nullptr) state_->owner = &state_;
  }
  /// Cancels this handle's registration, then takes over `other`'s.
  Handle &operator=(Handle &&other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
      if (state_ != nullptr) state_->owner = &state_;
    }
    return *this;
  }
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  /// Cancels, like reset().
  ~Handle() { reset(); }

  /// Cancels the registration if it is still active and frees its callbacks (at the end of
  /// the callback when called from inside it). After the instance stopped, the host already
  /// cancelled everything, so only memory is freed.
  void reset() noexcept {
    detail::CallbackState *s = std::exchange(state_, nullptr);
    if (s == nullptr) return;
    s->owner = nullptr;
    bool can_free = true;
    if (!s->host->stopped()) can_free = s->cancel_op();
    if (s->running) {
      s->released = true;  // freed by the callback's epilogue
    } else if (can_free) {
      delete s;
    } else {
      s->host->park(s);
    }
  }
  /// True while the registration is live: a one-shot handle turns inactive when its callback
  /// starts, a repeating one stays active until reset.
  bool active() const noexcept { return state_ != nullptr; }
  /// active().
  explicit operator bool() const noexcept { return active(); }
  /// The host's id of the registration, or 0 when inactive.
  Id id() const noexcept { return state_ != nullptr ? state_->id : 0; }

 protected:
  // Takes ownership of a state the host accepted.
  void adopt(detail::CallbackState *s) noexcept {
    reset();
    state_ = s;
    s->owner = &state_;
  }
  detail::CallbackState *state_ = nullptr;

  template <class Svc>
  static const Svc *require_service(Host &host, const char *id) {
    const auto *svc = static_cast<const Svc *>(host.service(id));
    if (svc == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, std::string("the host does not offer ") + id);
    return svc;
  }
};

namespace detail {

// Runs a callback for `s` with the contract of CallbackState. `last` = one-shot.
template <class F>
void invoke_callback(CallbackState *s, bool last, const char *what, F &&f) noexcept {
  if (last) s->detach();
  s->running = true;
  try {
    f();
  } catch (...) {
    std::string message;
    current_exception_status(message);
    s->host->error(std::string("exception escaped a ") + what + " callback: " + message);
  }
  s->running = false;
  if (last || s->released) delete s;
}

struct TimerState final : CallbackState {
  using CallbackState::CallbackState;
  bool cancel_op() noexcept override {
    svc->cancel(host->raw(), id);
    return true;
  }
  static void CLUSTERD_ABI fire(void *user_data, clusterd_id_t) noexcept {
    auto *s = static_cast<TimerState *>(user_data);
    invoke_callback(s, !s->periodic, "timer", [s] { s->fn(); });
  }
  const clusterd_timer_service_t *svc = nullptr;
  std::function<void()> fn;
  bool periodic = false;
};

struct FdState final : CallbackState {
  using CallbackState::CallbackState;
  bool cancel_op() noexcept override {
    svc->unwatch(host->raw(), id);
    return true;
  }
  static void CLUSTERD_ABI ready(void *user_data, clusterd_id_t, int, uint32_t events) noexcept {
    auto *s = static_cast<FdState *>(user_data);
    invoke_callback(s, false, "fd watch", [s, events] { s->fn(events); });
  }
  const clusterd_fd_service_t *svc = nullptr;
  std::function<void(uint32_t)> fn;
  int fd = -1;
};

struct WorkState final : CallbackState {
  using CallbackState::CallbackState;
  bool cancel_op() noexcept override {
    const Status status = svc->cancel(host->raw(), id);
    // E_AGAIN: `work` is running on a pool thread and still uses this state.
    return status != CLUSTERD_E_AGAIN || reclaimable();
  }
  bool reclaimable() const noexcept override { return finished.load(std::memory_order_acquire); }
  static void CLUSTERD_ABI run(void *user_data) noexcept {  // [pool thread]
    auto *s = static_cast<WorkState *>(user_data);
    try {
      s->work();
    } catch (...) {
      s->error = std::current_exception();
    }
    s->finished.store(true, std::memory_order_release);
  }
  static void CLUSTERD_ABI done(void *user_data, clusterd_id_t) noexcept {
    auto *s = static_cast<WorkState *>(user_data);
    invoke_callback(s, true, "work", [s] {
      if (s->on_done) s->on_done(s->error);
    });
  }
  const clusterd_work_service_t *svc = nullptr;
  std::function<void()> work;
  std::function<void(std::exception_ptr)> on_done;
  std::exception_ptr error;
  std::atomic<bool> finished{false};
};

}  // namespace detail

/// A one-shot or periodic timer ("clusterd.timer/1").
///   timer_ = clusterd::Timer::every(host(), std::chrono::seconds(5), [this] { poll(); });
class Timer : public Handle {
 public:
  /// An empty (inactive) timer.
  Timer() noexcept = default;

  /// Runs `fn` once after `delay`. Throws Error if the host refuses.
  static Timer after(Host &host, std::chrono::milliseconds delay, std::function<void()> fn) {
    return start(host, delay, std::chrono::milliseconds(0), std::move(fn));
  }
  /// Runs `fn` every `period` (> 0), the first time after one period.
  static Timer every(Host &host, std::chrono::milliseconds period, std::function<void()> fn) {
    return every(host, period, period, std::move(fn));
  }
  /// Runs `fn` after `first`, then every `period` (> 0).
  static Timer every(Host &host, std::chrono::milliseconds first, std::chrono::milliseconds period,
                     std::function<void()> fn) {
    if (period.count() <= 0)
      throw Error(CLUSTERD_E_INVALID_ARG, "Timer::every: period must be > 0");
    return start(host, first, period, std::move(fn));
  }

 private:
  static Timer start(Host &host, std::chrono::milliseconds delay, std::chrono::milliseconds period,
                     std::function<void()> fn) {
    if (!fn) throw Error(CLUSTERD_E_INVALID_ARG, "Timer: empty callback");
    const auto *svc = require_service<clusterd_timer_service_t>(host, CLUSTERD_SERVICE_TIMER);
    if (!CLUSTERD_STRUCT_HAS(svc, clusterd_timer_service_t, cancel) || svc->add == nullptr ||
        svc->cancel == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "the host's timer service is incomplete");
    auto s = std::make_unique<detail::TimerState>(host);
    s->svc = svc;
    s->fn = std::move(fn);
    s->periodic = period.count() > 0;
    const uint64_t delay_ms = delay.count() > 0 ? static_cast<uint64_t>(delay.count()) : 0;
    const Status status = svc->add(host.raw(), delay_ms, static_cast<uint64_t>(period.count()),
                                   &detail::TimerState::fire, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot start a timer");
    Timer timer;
    timer.adopt(s.release());
    return timer;
  }
};

/// A level-triggered readiness watch on a file descriptor the plugin owns ("clusterd.fd/1").
/// Reset the watch before closing the fd (it is fine to do both inside the callback).
class FdWatch : public Handle {
 public:
  /// An empty (inactive) watch.
  FdWatch() noexcept = default;

  /// Calls `fn(ready_events)` whenever `fd` is ready for one of `events` (CLUSTERD_FD_READ |
  /// CLUSTERD_FD_WRITE; CLUSTERD_FD_ERROR is reported regardless), until reset.
  static FdWatch watch(Host &host, int fd, uint32_t events, std::function<void(uint32_t)> fn) {
    if (!fn || fd < 0) throw Error(CLUSTERD_E_INVALID_ARG, "FdWatch: bad fd or empty callback");
    const auto *svc = require_service<clusterd_fd_service_t>(host, CLUSTERD_SERVICE_FD);
    if (!CLUSTERD_STRUCT_HAS(svc, clusterd_fd_service_t, unwatch) || svc->watch == nullptr ||
        svc->modify == nullptr || svc->unwatch == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "the host's fd service is incomplete");
    auto s = std::make_unique<detail::FdState>(host);
    s->svc = svc;
    s->fn = std::move(fn);
    s->fd = fd;
    const Status status =
        svc->watch(host.raw(), fd, events, &detail::FdState::ready, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot watch fd " + std::to_string(fd));
    FdWatch w;
    w.adopt(s.release());
    return w;
  }
  /// Changes the events watched. Throws Error when inactive or refused.
  void modify(uint32_t events) {
    auto *s = static_cast<detail::FdState *>(state_);
    if (s == nullptr) throw Error(CLUSTERD_E_STATE, "FdWatch::modify: not watching");
    const Status status = s->svc->modify(s->host->raw(), s->id, events);
    if (status != CLUSTERD_OK)
      throw Error(status, "cannot modify the watch of fd " + std::to_string(s->fd));
  }
  /// The watched fd, or -1 when inactive.
  int fd() const noexcept {
    return state_ != nullptr ? static_cast<detail::FdState *>(state_)->fd : -1;
  }
};

/// Blocking work on a host pool thread, then a completion on the loop ("clusterd.work/1").
/// Resetting the handle while `work` runs keeps its state alive until it finishes (and at
/// the latest until the instance stops); `done` then never runs.
class Work : public Handle {
 public:
  /// An empty handle.
  Work() noexcept = default;

  /// Runs `work()` on a pool thread (it may block, in bounded time), then `done(error)` on the
  /// loop thread; `error` holds what `work` threw, or is null.
  static Work submit(Host &host, std::function<void()> work,
                     std::function<void(std::exception_ptr)> done) {
    if (!work) throw Error(CLUSTERD_E_INVALID_ARG, "Work: empty work function");
    const auto *svc = require_service<clusterd_work_service_t>(host, CLUSTERD_SERVICE_WORK);
    if (!CLUSTERD_STRUCT_HAS(svc, clusterd_work_service_t, cancel) || svc->submit == nullptr ||
        svc->cancel == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "the host's work service is incomplete");
    auto s = std::make_unique<detail::WorkState>(host);
    s->svc = svc;
    s->work = std::move(work);
    s->on_done = std::move(done);
    const Status status =
        svc->submit(host.raw(), &detail::WorkState::run, &detail::WorkState::done, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot submit work");
    Work w;
    w.adopt(s.release());
    return w;
  }
};

/// An HTTP(S) request, mirroring clusterd_http_request_t, built fluently:
///   auto req = clusterd::HttpRequest("https://10.0.0.1/api").header("Accept: application/json")
///                  .timeout(std::chrono::seconds(5));
class HttpRequest {
 public:
  /// A GET with no URL yet.
  HttpRequest() = default;
  /// A GET of `url`.
  explicit HttpRequest(std::string url) : url_(std::move(url)) {}

  /// Sets the method ("GET", "POST", ...).
  HttpRequest &method(std::string m) {
    method_ = std::move(m);
    return *this;
  }
  /// Sets the URL (http:// or https://).
  HttpRequest &url(std::string u) {
    url_ = std::move(u);
    return *this;
  }
  /// Adds a header line "Name: value".
  HttpRequest &header(std::string line) {
    headers_.push_back(std::move(line));
    return *this;
  }
  /// Adds a header `name`: `value`.
  HttpRequest &header(std::string_view name, std::string_view value) {
    std::string line(name);
    line += ": ";
    line += value;
    headers_.push_back(std::move(line));
    return *this;
  }
  /// Sets the request body.
  HttpRequest &body(std::string b) {
    body_ = std::move(b);
    return *this;
  }
  /// Limits the whole request (for streams: the time without any data); 0 = host default.
  HttpRequest &timeout(std::chrono::milliseconds t) {
    timeout_ = t;
    return *this;
  }
  /// Sets CLUSTERD_HTTP_* flags.
  HttpRequest &flags(uint32_t f) {
    flags_ = f;
    return *this;
  }
  /// Skips server certificate verification (CLUSTERD_HTTP_INSECURE_SKIP_VERIFY).
  HttpRequest &insecure_skip_verify(bool on = true) {
    flags_ = on ? (flags_ | CLUSTERD_HTTP_INSECURE_SKIP_VERIFY)
                : (flags_ & ~CLUSTERD_HTTP_INSECURE_SKIP_VERIFY);
    return *this;
  }
  /// Verifies the server against this PEM bundle instead of the system store.
  HttpRequest &ca_file(std::string path) {
    ca_file_ = std::move(path);
    return *this;
  }
  /// Presents a client certificate (mutual TLS).
  HttpRequest &client_cert(std::string cert_file, std::string key_file) {
    client_cert_file_ = std::move(cert_file);
    client_key_file_ = std::move(key_file);
    return *this;
  }
  /// Fails bodies larger than `n` bytes; 0 = host default (16 MiB).
  HttpRequest &max_body_bytes(uint64_t n) {
    max_body_bytes_ = n;
    return *this;
  }
  /// Signs the request with AWS Signature V4 ("aws:amz:REGION:SERVICE"), computed by the
  /// host's libcurl with the credentials() given (ABI 1.2).
  HttpRequest &aws_sigv4(std::string provider) {
    aws_sigv4_ = std::move(provider);
    return *this;
  }
  /// Credentials: the access key id and secret key for aws_sigv4(), else HTTP Basic auth.
  HttpRequest &credentials(std::string username, std::string password) {
    username_ = std::move(username);
    password_ = std::move(password);
    return *this;
  }
  /// Streams the body to `fn` instead of buffering it; `fn` returns false to abort (the request
  /// then completes with CLUSTERD_E_CANCELLED).
  HttpRequest &on_data(std::function<bool(std::string_view)> fn) {
    on_data_ = std::move(fn);
    return *this;
  }

  /// The method.
  const std::string &method() const noexcept { return method_; }
  /// The URL.
  const std::string &url() const noexcept { return url_; }
  /// The header lines.
  const std::vector<std::string> &headers() const noexcept { return headers_; }
  /// The body.
  const std::string &body() const noexcept { return body_; }

 private:
  friend class HttpCall;
  std::string method_ = "GET";
  std::string url_;
  std::vector<std::string> headers_;
  std::string body_;
  std::chrono::milliseconds timeout_{0};
  uint32_t flags_ = 0;
  std::string ca_file_, client_cert_file_, client_key_file_;
  uint64_t max_body_bytes_ = 0;
  std::function<bool(std::string_view)> on_data_;
  std::string aws_sigv4_, username_, password_;
};

/// The response passed to an HttpCall's completion. A view: valid only during the callback.
class HttpResponse {
 public:
  /// Wraps the host's response (must not be NULL).
  explicit HttpResponse(const clusterd_http_response_t *raw) noexcept : raw_(raw) {}

  /// CLUSTERD_OK if an HTTP response arrived (any HTTP status), else why not.
  Status status() const noexcept {
    return CLUSTERD_STRUCT_HAS(raw_, clusterd_http_response_t, status) ? raw_->status
                                                                       : CLUSTERD_E_GENERIC;
  }
  /// The HTTP status (200, 404...), 0 when no response arrived.
  int http_status() const noexcept {
    return CLUSTERD_STRUCT_HAS(raw_, clusterd_http_response_t, http_status) ? raw_->http_status : 0;
  }
  /// status() is CLUSTERD_OK and http_status() is 2xx.
  bool ok() const noexcept { return status() == CLUSTERD_OK && http_status() / 100 == 2; }
  /// The buffered body ("" when streamed).
  std::string_view body() const noexcept {
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_http_response_t, body_length) || raw_->body == nullptr)
      return {};
    return std::string_view(raw_->body, static_cast<std::size_t>(raw_->body_length));
  }
  /// Why status() is not CLUSTERD_OK, or "".
  std::string_view error() const noexcept {
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_http_response_t, error) || raw_->error == nullptr)
      return {};
    return raw_->error;
  }
  /// The header lines ("Name: value") of the final response.
  std::vector<std::string_view> headers() const {
    std::vector<std::string_view> out;
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_http_response_t, headers) || raw_->headers == nullptr)
      return out;
    for (uint32_t i = 0; i < raw_->header_count; ++i)
      if (raw_->headers[i] != nullptr) out.emplace_back(raw_->headers[i]);
    return out;
  }
  /// The value of the first header named `name` (case-insensitive), trimmed; or std::nullopt.
  std::optional<std::string_view> header(std::string_view name) const {
    for (std::string_view line : headers()) {
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || colon != name.size()) continue;
      bool same = true;
      for (std::size_t i = 0; i < colon && same; ++i) same = lower(line[i]) == lower(name[i]);
      if (!same) continue;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() &&
             (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
        value.remove_suffix(1);
      return value;
    }
    return std::nullopt;
  }
  /// The C response.
  const clusterd_http_response_t *raw() const noexcept { return raw_; }

 private:
  static char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const clusterd_http_response_t *raw_;
};

namespace detail {

struct HttpState final : CallbackState {
  using CallbackState::CallbackState;
  bool cancel_op() noexcept override {
    svc->cancel(host->raw(), id);
    return true;
  }
  static int32_t CLUSTERD_ABI data(void *user_data, clusterd_id_t, const char *bytes,
                                   uint64_t length) noexcept {
    auto *s = static_cast<HttpState *>(user_data);
    bool go_on = false;
    invoke_callback(s, false, "HTTP data", [&] {
      go_on = s->on_data(std::string_view(bytes != nullptr ? bytes : "",
                                          bytes != nullptr ? static_cast<std::size_t>(length) : 0));
      go_on = go_on && !s->released;  // reset from inside: ask the host to stop as well
    });
    return go_on ? 0 : 1;  // `s` may be gone here
  }
  static void CLUSTERD_ABI finished(void *user_data, clusterd_id_t,
                                    const clusterd_http_response_t *response) noexcept {
    auto *s = static_cast<HttpState *>(user_data);
    invoke_callback(s, true, "HTTP", [&] {
      if (!s->done) return;
      if (response != nullptr) {
        s->done(HttpResponse(response));
      } else {
        clusterd_http_response_t none{};
        none.struct_size = sizeof none;
        none.status = CLUSTERD_E_GENERIC;
        none.body = "";
        none.error = "the host passed no response";
        s->done(HttpResponse(&none));
      }
    });
  }
  const clusterd_http_service_t *svc = nullptr;
  std::function<void(const HttpResponse &)> done;
  std::function<bool(std::string_view)> on_data;
};

}  // namespace detail

/// An HTTP(S) request in flight ("clusterd.http/1"). Resetting it cancels the request.
class HttpCall : public Handle {
 public:
  /// An empty handle.
  HttpCall() noexcept = default;

  /// Starts `request`; `done` runs once with the response (see HttpResponse). Throws Error if
  /// the host refuses.
  static HttpCall start(Host &host, const HttpRequest &request,
                        std::function<void(const HttpResponse &)> done) {
    const auto *svc = require_service<clusterd_http_service_t>(host, CLUSTERD_SERVICE_HTTP);
    if (!CLUSTERD_STRUCT_HAS(svc, clusterd_http_service_t, cancel) || svc->request == nullptr ||
        svc->cancel == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "the host's HTTP service is incomplete");
    auto s = std::make_unique<detail::HttpState>(host);
    s->svc = svc;
    s->done = std::move(done);
    s->on_data = request.on_data_;

    std::vector<const char *> headers;
    headers.reserve(request.headers_.size());
    for (const auto &h : request.headers_) headers.push_back(h.c_str());
    auto opt = [](const std::string &v) { return v.empty() ? nullptr : v.c_str(); };

    clusterd_http_request_t req{};
    req.struct_size = sizeof req;
    req.flags = request.flags_;
    req.method = request.method_.empty() ? nullptr : request.method_.c_str();
    req.url = request.url_.c_str();
    req.headers = headers.empty() ? nullptr : headers.data();
    req.header_count = static_cast<uint32_t>(headers.size());
    req.body = request.body_.empty() ? nullptr : request.body_.data();
    req.body_length = static_cast<uint64_t>(request.body_.size());
    req.timeout_ms =
        request.timeout_.count() > 0 ? static_cast<uint64_t>(request.timeout_.count()) : 0;
    req.ca_file = opt(request.ca_file_);
    req.client_cert_file = opt(request.client_cert_file_);
    req.client_key_file = opt(request.client_key_file_);
    req.max_body_bytes = request.max_body_bytes_;
    req.on_data = s->on_data ? &detail::HttpState::data : nullptr;
    req.aws_sigv4 = opt(request.aws_sigv4_);
    req.username = request.username_.empty() && request.password_.empty()
                       ? nullptr
                       : request.username_.c_str();
    req.password = req.username ? request.password_.c_str() : nullptr;

    const Status status =
        svc->request(host.raw(), &req, &detail::HttpState::finished, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot start HTTP request to " + request.url_);
    HttpCall call;
    call.adopt(s.release());
    return call;
  }
};

/// One DNS record (a copy of clusterd_dns_record_t).
struct DnsRecord {
  uint32_t type = 0;      ///< CLUSTERD_DNS_A, _AAAA or _SRV
  uint32_t ttl = 0;       ///< seconds
  uint16_t priority = 0;  ///< SRV only
  uint16_t weight = 0;    ///< SRV only
  uint16_t port = 0;      ///< SRV only
  std::string address;    ///< A / AAAA: the address as text
  std::string target;     ///< SRV: the target host name, without the trailing dot
};

/// The outcome of a DnsQuery: status CLUSTERD_OK (records may be empty), CLUSTERD_E_NOT_FOUND
/// (NXDOMAIN), CLUSTERD_E_TIMEOUT or CLUSTERD_E_IO, with `error` saying why.
struct DnsResult {
  Status status = CLUSTERD_E_GENERIC;  ///< see above
  std::vector<DnsRecord> records;      ///< the answers
  std::string error;                   ///< why status is not CLUSTERD_OK, or ""

  /// Copies the host's result, stepping through the records by their struct_size.
  static DnsResult from(const clusterd_dns_result_t *raw) {
    DnsResult r;
    if (raw == nullptr || !CLUSTERD_STRUCT_HAS(raw, clusterd_dns_result_t, status)) {
      r.error = "the host passed no DNS result";
      return r;
    }
    r.status = raw->status;
    if (CLUSTERD_STRUCT_HAS(raw, clusterd_dns_result_t, error) && raw->error != nullptr)
      r.error = raw->error;
    if (!CLUSTERD_STRUCT_HAS(raw, clusterd_dns_result_t, record_count) || raw->records == nullptr ||
        raw->record_count == 0)
      return r;
    const std::size_t stride = raw->records[0].struct_size;
    if (stride < offsetof(clusterd_dns_record_t, type) + sizeof(uint32_t)) return r;  // malformed
    const auto *base = reinterpret_cast<const unsigned char *>(raw->records);
    r.records.reserve(raw->record_count);
    for (uint32_t i = 0; i < raw->record_count; ++i) {
      const auto *rec = reinterpret_cast<const clusterd_dns_record_t *>(base + i * stride);
      DnsRecord out;
      out.type = rec->type;
      if (CLUSTERD_STRUCT_HAS(rec, clusterd_dns_record_t, ttl)) out.ttl = rec->ttl;
      if (CLUSTERD_STRUCT_HAS(rec, clusterd_dns_record_t, port)) {
        out.priority = rec->priority;
        out.weight = rec->weight;
        out.port = rec->port;
      }
      if (CLUSTERD_STRUCT_HAS(rec, clusterd_dns_record_t, address) && rec->address != nullptr)
        out.address = rec->address;
      if (CLUSTERD_STRUCT_HAS(rec, clusterd_dns_record_t, target) && rec->target != nullptr)
        out.target = rec->target;
      r.records.push_back(std::move(out));
    }
    return r;
  }
};

namespace detail {

struct DnsState final : CallbackState {
  using CallbackState::CallbackState;
  bool cancel_op() noexcept override {
    svc->cancel(host->raw(), id);
    return true;
  }
  static void CLUSTERD_ABI finished(void *user_data, clusterd_id_t,
                                    const clusterd_dns_result_t *result) noexcept {
    auto *s = static_cast<DnsState *>(user_data);
    invoke_callback(s, true, "DNS", [&] {
      if (s->done) s->done(DnsResult::from(result));
    });
  }
  const clusterd_dns_service_t *svc = nullptr;
  std::function<void(const DnsResult &)> done;
};

}  // namespace detail

/// A DNS lookup in flight ("clusterd.dns/1"). Resetting it cancels the lookup.
class DnsQuery : public Handle {
 public:
  /// An empty handle.
  DnsQuery() noexcept = default;

  /// Looks up `name` (record `type`: CLUSTERD_DNS_A, _AAAA or _SRV); `done` runs once.
  /// `server` = "ADDRESS[:PORT]" or "" for the system resolver; `timeout` 0 = host default.
  static DnsQuery resolve(Host &host, uint32_t type, std::string_view name,
                          std::function<void(const DnsResult &)> done, std::string_view server = {},
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    const auto *svc = require_service<clusterd_dns_service_t>(host, CLUSTERD_SERVICE_DNS);
    if (!CLUSTERD_STRUCT_HAS(svc, clusterd_dns_service_t, cancel) || svc->resolve == nullptr ||
        svc->cancel == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "the host's DNS service is incomplete");
    auto s = std::make_unique<detail::DnsState>(host);
    s->svc = svc;
    s->done = std::move(done);
    const std::string n(name), srv(server);
    clusterd_dns_query_t q{};
    q.struct_size = sizeof q;
    q.type = type;
    q.name = n.c_str();
    q.server = srv.empty() ? nullptr : srv.c_str();
    q.timeout_ms = timeout.count() > 0 ? static_cast<uint64_t>(timeout.count()) : 0;
    const Status status =
        svc->resolve(host.raw(), &q, &detail::DnsState::finished, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot resolve " + n);
    DnsQuery query;
    query.adopt(s.release());
    return query;
  }
};

/// What to run with Process::spawn ("clusterd.process/1", ABI 1.3): mirrors
/// clusterd_process_request_t. The child never goes through a shell; stdin is /dev/null.
struct ProcessRequest {
  std::vector<std::string> argv;  ///< argv[0]: a path, or a program name looked up in PATH
  /// "NAME=value" strings: exactly the child's environment. nullopt = the daemon's own.
  std::optional<std::vector<std::string>> env;
  std::string cwd;                       ///< working directory; "" = the daemon's
  uint64_t max_capture_bytes = 0;        ///< per stream, the tail is kept; 0 = host default 64 KiB
  std::chrono::milliseconds timeout{0};  ///< then SIGTERM to its process group; 0 = no limit
  std::chrono::milliseconds grace{0};    ///< SIGTERM -> SIGKILL; 0 = host default (2 s)
  uint32_t flags = 0;                    ///< CLUSTERD_PROCESS_MERGE_STDERR | _STOP_ON_OVERFLOW
};

/// The outcome of a Process (a copy of clusterd_process_result_t).
struct ProcessResult {
  Status status = CLUSTERD_E_GENERIC;  ///< OK: it ran (see below); NOT_FOUND / IO: it did not
  int32_t exit_code = -1;              ///< 0-255 if it exited, else -1
  int32_t term_signal = 0;             ///< the signal that ended it, else 0
  bool timed_out = false;              ///< the host terminated it at the timeout
  bool stdout_truncated = false;       ///< stdout exceeded max_capture_bytes (head dropped)
  bool stderr_truncated = false;       ///< stderr exceeded max_capture_bytes
  int32_t pid = 0;                     ///< for logs; already reaped
  std::string out;                     ///< captured stdout (its tail)
  std::string err;                     ///< captured stderr (its tail)
  std::string error;                   ///< why status is not CLUSTERD_OK, or ""

  /// Ran, exited with code 0, and was not timed out.
  bool succeeded() const noexcept { return status == CLUSTERD_OK && exit_code == 0 && !timed_out; }

  /// Copies the host's result (fields the host did not set keep their defaults).
  static ProcessResult from(const clusterd_process_result_t *raw) {
    ProcessResult r;
    if (raw == nullptr || !CLUSTERD_STRUCT_HAS(raw, clusterd_process_result_t, error)) {
      r.error = "the host passed no process result";
      return r;
    }
    r.status = raw->status;
    r.exit_code = raw->exit_code;
    r.term_signal = raw->term_signal;
    r.timed_out = raw->timed_out != 0;
    r.stdout_truncated = raw->stdout_truncated != 0;
    r.stderr_truncated = raw->stderr_truncated != 0;
    r.pid = raw->pid;
    if (raw->stdout_data != nullptr)
      r.out.assign(raw->stdout_data, static_cast<std::size_t>(raw->stdout_length));
    if (raw->stderr_data != nullptr)
      r.err.assign(raw->stderr_data, static_cast<std::size_t>(raw->stderr_length));
    if (raw->error != nullptr) r.error = raw->error;
    return r;
  }
};

namespace detail {

struct ProcessState final : CallbackState {
  using CallbackState::CallbackState;
  bool cancel_op() noexcept override {
    svc->cancel(host->raw(), id);
    return true;
  }
  static void CLUSTERD_ABI finished(void *user_data, clusterd_id_t,
                                    const clusterd_process_result_t *result) noexcept {
    auto *s = static_cast<ProcessState *>(user_data);
    invoke_callback(s, true, "process", [&] {
      if (s->done) s->done(ProcessResult::from(result));
    });
  }
  const clusterd_process_service_t *svc = nullptr;
  std::function<void(const ProcessResult &)> done;
};

}  // namespace detail

/// A child process run by the host ("clusterd.process/1", ABI 1.3). Resetting the handle
/// cancels it: `done` never runs, and the host terminates (SIGTERM, SIGKILL after the grace)
/// and reaps the child.
///   proc_ = clusterd::Process::spawn(host(), {{"/usr/bin/ssh", host, "true"}},
///                                    [this](const clusterd::ProcessResult &r) { ... });
class Process : public Handle {
 public:
  /// An empty handle.
  Process() noexcept = default;

  /// Starts `request`; `done` runs once, on the loop, after the child was reaped or could not
  /// start. Throws Error if the host refuses (no such service, bad request, stopping).
  static Process spawn(Host &host, const ProcessRequest &request,
                       std::function<void(const ProcessResult &)> done) {
    const auto *svc = require_service<clusterd_process_service_t>(host, CLUSTERD_SERVICE_PROCESS);
    if (!CLUSTERD_STRUCT_HAS(svc, clusterd_process_service_t, cancel) || svc->spawn == nullptr ||
        svc->cancel == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "the host's process service is incomplete");
    if (request.argv.empty()) throw Error(CLUSTERD_E_INVALID_ARG, "Process: empty argv");
    auto s = std::make_unique<detail::ProcessState>(host);
    s->svc = svc;
    s->done = std::move(done);
    auto pointers = [](const std::vector<std::string> &in) {
      std::vector<const char *> out;
      out.reserve(in.size());
      for (const auto &v : in) out.push_back(v.c_str());
      return out;
    };
    const std::vector<const char *> argv = pointers(request.argv);
    const std::vector<const char *> envp =
        request.env ? pointers(*request.env) : std::vector<const char *>();
    static const char *const kNoEnv[1] = {nullptr};
    clusterd_process_request_t req{};
    req.struct_size = sizeof req;
    req.flags = request.flags;
    req.argv = argv.data();
    req.argc = static_cast<uint32_t>(argv.size());
    req.envc = static_cast<uint32_t>(envp.size());
    req.envp = !request.env ? nullptr : envp.empty() ? kNoEnv : envp.data();
    req.cwd = request.cwd.empty() ? nullptr : request.cwd.c_str();
    req.max_capture_bytes = request.max_capture_bytes;
    req.timeout_ms =
        request.timeout.count() > 0 ? static_cast<uint64_t>(request.timeout.count()) : 0;
    req.grace_ms = request.grace.count() > 0 ? static_cast<uint64_t>(request.grace.count()) : 0;
    const Status status =
        svc->spawn(host.raw(), &req, &detail::ProcessState::finished, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot run '" + request.argv[0] + "'");
    Process p;
    p.adopt(s.release());
    return p;
  }
};

// ---- Plugin base classes ---------------------------------------------------------------------

/// Common base of Strategy and Transport. Derive from one of those, not from this.
/// The lifecycle is the C one: construct (must not use host()), init, start, stop, destroy.
/// Overrides report failure by throwing Error (or any exception).
class Plugin {
 public:
  /// Runs in create(): must not use host() (the table is not live yet).
  Plugin() = default;
  /// Runs in destroy(). Handles still alive here cancel their registrations (or, after stop,
  /// only free memory).
  virtual ~Plugin() = default;
  Plugin(const Plugin &) = delete;
  Plugin &operator=(const Plugin &) = delete;

  /// Reads the validated configuration; may use host services. Default: nothing.
  virtual void init(const Config &config) { (void)config; }
  /// Starts work (timers, first discovery). Must not block. Default: nothing.
  virtual void start() {}
  /// Stops all work and joins any thread the plugin owns; must return promptly. Handles still
  /// alive afterwards only free memory. Exceptions are logged. Default: nothing.
  virtual void stop() {}

  /// Control extension (ABI 1.1, control.h): a line from the client of control-socket
  /// `session` (the first one opens it). Answer with control_send(); control_end() when done.
  /// Optional: when a class does not override it, the plugin offers no control interface.
  /// Throwing answers {"error": ...} and ends the session.
  virtual void control_request(Id session, std::string_view line) {
    (void)session;
    (void)line;
  }
  /// The session is over (client gone, ended, too slow, stopping). Default: nothing.
  virtual void control_closed(Id session) { (void)session; }

  /// Queues one JSON line (no newline) for the session's client. Returns CLUSTERD_OK,
  /// CLUSTERD_E_NOT_FOUND (session over) or CLUSTERD_E_AGAIN (client too slow: the host ends
  /// the session).
  Status control_send(Id session, std::string_view line) {
    return control_sink()->send(host_.raw(), session, line.data(), line.size());
  }
  /// Ends the session once what was queued is written.
  void control_end(Id session) { control_sink()->end(host_.raw(), session); }
  /// Bytes queued for the session's client and not yet written.
  std::size_t control_buffered(Id session) {
    return control_sink()->buffered(host_.raw(), session);
  }

  /// This instance's host table (valid from init to destruction).
  Host &host() noexcept { return host_; }
  /// This instance's host table.
  const Host &host() const noexcept { return host_; }

 private:
  template <class T>
  friend struct detail::Exporter;

  // Runs `f`, turning exceptions into a status and last_error_.
  template <class F>
  Status guard(F &&f) noexcept {
    last_error_.clear();
    try {
      f();
      return CLUSTERD_OK;
    } catch (...) {
      return detail::current_exception_status(last_error_);
    }
  }
  void mark_stopped() noexcept { host_.mark_stopped(); }
  const clusterd_control_sink_t *control_sink() {
    if (control_sink_ == nullptr) {
      const auto *s = static_cast<const clusterd_control_sink_t *>(
          host_.service(CLUSTERD_SERVICE_CONTROL_SINK));
      if (s == nullptr || !CLUSTERD_STRUCT_HAS(s, clusterd_control_sink_t, buffered) ||
          s->send == nullptr || s->end == nullptr || s->buffered == nullptr)
        throw Error(CLUSTERD_E_UNSUPPORTED,
                    "the host offers no usable " CLUSTERD_SERVICE_CONTROL_SINK);
      control_sink_ = s;
    }
    return control_sink_;
  }

  Host host_;
  const clusterd_control_sink_t *control_sink_ = nullptr;
  clusterd_plugin_t raw_{};
  std::string last_error_;
  std::string local_node_;  // Transport::local_node()'s answer, kept until the next call
};

/// Base of a strategy: discovers nodes and reports them through the helpers below. Strategies
/// report, the host decides (diffing, retries, disconnects). Define `static constexpr` members
/// kName, kVersion (and optionally kDescription, kFlags, kAliases, kOptions), then
/// CLUSTERD_EXPORT_PLUGIN(YourClass) once.
class Strategy : public Plugin {
 public:
  /// The descriptor kind (deduced by CLUSTERD_EXPORT_PLUGIN).
  static constexpr uint32_t kKind = CLUSTERD_KIND_STRATEGY;

  /// Asks for a discovery round now. Optional: when a class does not override it, the
  /// interface's refresh pointer is NULL (the strategy discovers on its own schedule only).
  virtual void refresh() {}

  /// A complete discovery round: exactly `nodes` exist now (an empty list is a real answer).
  void report_nodes(const std::vector<std::string> &nodes) {
    const auto *s = sink();
    std::vector<const char *> names;
    names.reserve(nodes.size());
    for (const auto &n : nodes) names.push_back(n.c_str());
    s->set_nodes(host().raw(), names.empty() ? detail::kNoNodes : names.data(),
                 static_cast<uint32_t>(names.size()));
  }
  /// Event style: `node` appeared.
  void node_seen(std::string_view node) {
    const std::string n(node);
    sink()->node_seen(host().raw(), n.c_str());
  }
  /// Event style: `node` went away.
  void node_lost(std::string_view node) {
    const std::string n(node);
    sink()->node_lost(host().raw(), n.c_str());
  }
  /// A round failed; the host keeps the last good set and shows `reason`.
  void discovery_failed(std::string_view reason) {
    const std::string r(reason);
    sink()->discovery_failed(host().raw(), r.c_str());
  }
  /// The local node's name as the topology's transport knows it, or std::nullopt while unknown.
  std::optional<std::string> local_node_name() {
    const char *name = sink()->local_node(host().raw());
    if (name == nullptr) return std::nullopt;
    return std::string(name);
  }

 private:
  const clusterd_strategy_sink_t *sink() {
    if (sink_ == nullptr) {
      const auto *s = static_cast<const clusterd_strategy_sink_t *>(
          host().service(CLUSTERD_SERVICE_STRATEGY_SINK));
      if (s == nullptr || !CLUSTERD_STRUCT_HAS(s, clusterd_strategy_sink_t, local_node) ||
          s->set_nodes == nullptr || s->node_seen == nullptr || s->node_lost == nullptr ||
          s->discovery_failed == nullptr || s->local_node == nullptr)
        throw Error(CLUSTERD_E_UNSUPPORTED,
                    "the host offers no usable " CLUSTERD_SERVICE_STRATEGY_SINK);
      sink_ = s;
    }
    return sink_;
  }
  const clusterd_strategy_sink_t *sink_ = nullptr;
};

/// Base of a transport: connects, disconnects and lists nodes, and reports node up/down.
/// Every operation gets a host-chosen id; complete it exactly once with complete() /
/// complete_list() (possibly from inside the call), unless the call throws (then the operation
/// is over) or the host cancels it. Same static members as Strategy.
class Transport : public Plugin {
 public:
  /// The descriptor kind (deduced by CLUSTERD_EXPORT_PLUGIN).
  static constexpr uint32_t kKind = CLUSTERD_KIND_TRANSPORT;

  /// Connects the managed node(s) to `node` (borrowed for the call).
  virtual void connect(Id op, std::string_view node) = 0;
  /// Disconnects `node`; complete with CLUSTERD_E_NOT_FOUND if it was not connected.
  virtual void disconnect(Id op, std::string_view node) = 0;
  /// Lists the connected nodes (complete with complete_list()). Optional: if a class does not
  /// override it the interface's pointer is NULL; an override may also throw
  /// Error(CLUSTERD_E_UNSUPPORTED) to decline per instance.
  virtual void list_nodes(Id op) {
    (void)op;
    throw Error(CLUSTERD_E_UNSUPPORTED, "list_nodes is not supported");
  }
  /// Abandons an operation: it must not be completed afterwards. Optional (NULL if not
  /// overridden).
  virtual void cancel(Id op) { (void)op; }
  /// The local node's name, or std::nullopt while unknown. Optional (NULL if not overridden).
  virtual std::optional<std::string> local_node() { return std::nullopt; }

  /// Completes a connect or disconnect; `message` says why on failure.
  void complete(Id op, Status status, std::string_view message = {}) {
    const std::string m(message);
    sink()->complete(host().raw(), op, status, m.empty() ? nullptr : m.c_str());
  }
  /// Completes a list_nodes (on failure: a status, a message and no nodes).
  void complete_list(Id op, Status status, std::string_view message,
                     const std::vector<std::string> &nodes) {
    const std::string m(message);
    std::vector<const char *> names;
    names.reserve(nodes.size());
    for (const auto &n : nodes) names.push_back(n.c_str());
    sink()->complete_list(host().raw(), op, status, m.empty() ? nullptr : m.c_str(),
                          names.empty() ? detail::kNoNodes : names.data(),
                          static_cast<uint32_t>(names.size()));
  }
  /// The managed node gained a connection to `node`.
  void node_up(std::string_view node) {
    const std::string n(node);
    sink()->node_up(host().raw(), n.c_str());
  }
  /// The managed node lost its connection to `node`.
  void node_down(std::string_view node, std::string_view reason = {}) {
    const std::string n(node), r(reason);
    sink()->node_down(host().raw(), n.c_str(), r.empty() ? nullptr : r.c_str());
  }
  /// The local node's name changed or was lost/regained: the host re-reads it and re-lists.
  void local_changed() { sink()->local_changed(host().raw()); }

 private:
  const clusterd_transport_sink_t *sink() {
    if (sink_ == nullptr) {
      const auto *s = static_cast<const clusterd_transport_sink_t *>(
          host().service(CLUSTERD_SERVICE_TRANSPORT_SINK));
      if (s == nullptr || !CLUSTERD_STRUCT_HAS(s, clusterd_transport_sink_t, local_changed) ||
          s->complete == nullptr || s->complete_list == nullptr || s->node_up == nullptr ||
          s->node_down == nullptr || s->local_changed == nullptr)
        throw Error(CLUSTERD_E_UNSUPPORTED,
                    "the host offers no usable " CLUSTERD_SERVICE_TRANSPORT_SINK);
      sink_ = s;
    }
    return sink_;
  }
  const clusterd_transport_sink_t *sink_ = nullptr;
};

// ---- Export machinery ------------------------------------------------------------------------

namespace detail {

template <class T, class = void>
struct has_options : std::false_type {};
template <class T>
struct has_options<T, std::void_t<decltype(T::kOptions)>> : std::true_type {};
template <class T, class = void>
struct has_aliases : std::false_type {};
template <class T>
struct has_aliases<T, std::void_t<decltype(T::kAliases)>> : std::true_type {};
template <class T, class = void>
struct has_flags : std::false_type {};
template <class T>
struct has_flags<T, std::void_t<decltype(T::kFlags)>> : std::true_type {};
template <class T, class = void>
struct has_description : std::false_type {};
template <class T>
struct has_description<T, std::void_t<decltype(T::kDescription)>> : std::true_type {};
template <class T, class = void>
struct has_validate : std::false_type {};
template <class T>
struct has_validate<T, std::void_t<decltype(&T::validate)>> : std::true_type {};

// Whether T overrides an optional operation, decided at compile time so that the C interface
// can say "not implemented" with NULL. If `&T::member` is well-formed, its type tells whether
// it is the base's; if it is ill-formed, T declares the member non-public: an override.
#define CLUSTERD_DETAIL_OVERRIDE_TRAIT(trait, member, BaseMemberPtr) \
  template <class T, class = void>                                   \
  struct trait : std::true_type {};                                  \
  template <class T>                                                 \
  struct trait<T, std::void_t<decltype(&T::member)>>                 \
      : std::bool_constant<!std::is_same_v<decltype(&T::member), BaseMemberPtr>> {};
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_refresh_t, refresh, void (Strategy::*)())
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_list_nodes_t, list_nodes, void (Transport::*)(Id))
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_cancel_t, cancel, void (Transport::*)(Id))
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_local_node_t, local_node,
                               std::optional<std::string> (Transport::*)())
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_control_request_t, control_request,
                               void (Plugin::*)(Id, std::string_view))
#undef CLUSTERD_DETAIL_OVERRIDE_TRAIT

// True when `key` is `base` followed by `suffix` ("token_file" = "token" + "_file").
constexpr bool is_suffixed(const char *key, const char *base, const char *suffix) noexcept {
  for (; *base != '\0'; ++key, ++base)
    if (*key != *base) return false;
  return str_equal(key, suffix);
}

// True when every '|'-separated key of `keys` (NULL: none) names another option of `options`.
template <std::size_t N>
constexpr bool keys_declared(const char *keys, const char *self,
                             const clusterd_option_t (&options)[N]) noexcept {
  while (keys != nullptr && *keys != '\0') {
    const char *end = keys;
    while (*end != '\0' && *end != '|') ++end;
    bool found = false;
    for (std::size_t j = 0; j < N && !found; ++j) {
      const char *a = keys, *b = options[j].key;
      while (a != end && *b != '\0' && *a == *b) ++a, ++b;
      found = a == end && *b == '\0' && !str_equal(options[j].key, self);
    }
    if (!found) return false;
    keys = *end == '|' ? end + 1 : end;
  }
  return true;
}

// True when the constraints of `o` fit its type (the host checks the same at load).
constexpr bool constraints_fit(const clusterd_option_t &o) noexcept {
  const bool text = o.type == CLUSTERD_OPT_STRING || o.type == CLUSTERD_OPT_STRING_LIST;
  const bool bounded = (o.flags & (CLUSTERD_OPT_MIN | CLUSTERD_OPT_MAX)) != 0;
  if (o.format > CLUSTERD_FORMAT_NODE_BASENAME || (o.format != CLUSTERD_FORMAT_ANY && !text))
    return false;
  if ((o.flags & CLUSTERD_OPT_NONEMPTY) != 0 && !text) return false;
  if ((o.flags & CLUSTERD_OPT_FINITE) != 0 && o.type != CLUSTERD_OPT_DURATION) return false;
  if (bounded && (o.type == CLUSTERD_OPT_BOOL || o.type == CLUSTERD_OPT_DOUBLE)) return false;
  if ((o.flags & CLUSTERD_OPT_MIN) != 0 && (o.flags & CLUSTERD_OPT_MAX) != 0 && o.min > o.max)
    return false;
  return o.reserved2 == 0;
}

// Checks one option array entry by entry; returns false on the first bad one.
template <std::size_t N>
constexpr bool options_valid(const clusterd_option_t (&options)[N]) noexcept {
  constexpr uint32_t kKnownFlags = CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_SECRET |
                                   CLUSTERD_OPT_NONEMPTY | CLUSTERD_OPT_FINITE | CLUSTERD_OPT_MIN |
                                   CLUSTERD_OPT_MAX;
  for (std::size_t i = 0; i < N; ++i) {
    const clusterd_option_t &o = options[i];
    if (o.struct_size != sizeof(clusterd_option_t)) return false;
    if (o.type < CLUSTERD_OPT_STRING || o.type > CLUSTERD_OPT_STRING_LIST) return false;
    if ((o.flags & ~kKnownFlags) != 0 || o.reserved != 0) return false;
    if (!constraints_fit(o) || !keys_declared(o.needs, o.key, options) ||
        !keys_declared(o.conflicts, o.key, options))
      return false;
    if (!is_snake_name(o.key) || o.description == nullptr) return false;
    if ((o.flags & CLUSTERD_OPT_REQUIRED) != 0 && o.default_value != nullptr) return false;
    for (std::size_t j = 0; j < N; ++j) {
      if (j < i && str_equal(options[j].key, o.key)) return false;
      // The host reads a secret KEY also from KEY_file / KEY_env: those names are taken.
      if ((o.flags & CLUSTERD_OPT_SECRET) != 0 && j != i && is_snake_name(options[j].key) &&
          (is_suffixed(options[j].key, o.key, "_file") ||
           is_suffixed(options[j].key, o.key, "_env")))
        return false;
    }
  }
  return true;
}

template <class T, std::size_t... I>
struct AliasList {
  static constexpr const char *value[] = {T::kAliases[I]..., nullptr};
};
template <class T, std::size_t... I>
constexpr const char *const *alias_list(std::index_sequence<I...>) noexcept {
  return AliasList<T, I...>::value;
}

// Emits the descriptor, the instance vtable and the kind interface of plugin class T, and the
// noexcept trampolines between them. Used by CLUSTERD_EXPORT_PLUGIN.
template <class T>
struct Exporter {
  static constexpr bool kIsStrategy = std::is_base_of_v<Strategy, T>;
  static constexpr bool kIsTransport = std::is_base_of_v<Transport, T>;

  static_assert(
      kIsStrategy != kIsTransport,
      "a plugin class derives from exactly one of clusterd::Strategy, clusterd::Transport");
  static_assert(
      std::is_default_constructible_v<T>,
      "a plugin class needs a default constructor (it must not use the host before init)");
  static_assert(!std::is_abstract_v<T>, "a plugin class must implement every pure virtual");
  static_assert(std::is_convertible_v<decltype(T::kName), const char *>,
                "define `static constexpr const char *kName = \"...\";`");
  static_assert(is_snake_name(T::kName), "kName must match [a-z0-9_]+");
  static_assert(std::is_convertible_v<decltype(T::kVersion), const char *>,
                "define `static constexpr const char *kVersion = \"1.0.0\";` (semver)");

  static constexpr const char *description() noexcept {
    if constexpr (has_description<T>::value) {
      static_assert(std::is_convertible_v<decltype(T::kDescription), const char *>,
                    "kDescription must be a string");
      return T::kDescription;
    } else {
      return "";
    }
  }
  static constexpr uint32_t flags() noexcept {
    if constexpr (has_flags<T>::value) {
      static_assert(std::is_convertible_v<decltype(T::kFlags), uint32_t>,
                    "kFlags must be a uint32_t");
      return T::kFlags;
    } else {
      return 0;
    }
  }
  static constexpr const clusterd_option_t *options() noexcept {
    if constexpr (has_options<T>::value) {
      using A = std::remove_reference_t<decltype(T::kOptions)>;
      static_assert(
          std::is_array_v<A> &&
              std::is_same_v<std::remove_cv_t<std::remove_extent_t<A>>, clusterd_option_t>,
          "kOptions must be `static constexpr clusterd_option_t kOptions[] = {...};`");
      static_assert(options_valid(T::kOptions),
                    "kOptions: an entry has a bad key ([a-z0-9_]+), type, flags, no description, "
                    "a duplicate key, is required and defaulted, is named KEY_file/KEY_env "
                    "next to a secret KEY, has constraints that do not fit its type, or "
                    "needs/conflicts with a key that is not another option");
      return T::kOptions;
    } else {
      return nullptr;
    }
  }
  static constexpr uint32_t option_count() noexcept {
    if constexpr (has_options<T>::value) {
      return static_cast<uint32_t>(std::extent_v<std::remove_reference_t<decltype(T::kOptions)>>);
    } else {
      return 0;
    }
  }
  static constexpr const char *const *aliases() noexcept {
    if constexpr (has_aliases<T>::value) {
      using A = std::remove_reference_t<decltype(T::kAliases)>;
      static_assert(
          std::is_array_v<A> && std::is_convertible_v<std::remove_extent_t<A>, const char *>,
          "kAliases must be `static constexpr const char *kAliases[] = {...};`");
      return alias_list<T>(std::make_index_sequence<std::extent_v<A>>());
    } else {
      return nullptr;
    }
  }

  // ---- trampolines: noexcept, NULL-tolerant ----
  // They reach the object through Plugin*, so that the class's own members (which may have
  // any name) never hide the wrapper's.
  static Plugin *self_of(const clusterd_plugin_t *self) noexcept {
    return self != nullptr ? static_cast<Plugin *>(self->plugin_data) : nullptr;
  }

  static clusterd_plugin_t *CLUSTERD_ABI create(const clusterd_host_t *host) noexcept {
    if (host == nullptr) return nullptr;
    try {
      T *object = new T();
      Plugin *p = object;
      p->host_.bind(host);
      p->raw_.struct_size = sizeof(clusterd_plugin_t);
      p->raw_.plugin_data = p;
      p->raw_.init = &init;
      p->raw_.start = &start;
      p->raw_.stop = &stop;
      p->raw_.destroy = &destroy;
      p->raw_.last_error = &last_error;
      p->raw_.get_interface = &get_interface;
      return &p->raw_;
    } catch (...) {
      return nullptr;
    }
  }
  static Status CLUSTERD_ABI init(clusterd_plugin_t *self,
                                  const clusterd_config_t *config) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return CLUSTERD_E_INVALID_ARG;
    return p->guard([&] {
      if (config == nullptr) throw Error(CLUSTERD_E_INVALID_ARG, "init: no configuration");
      p->init(Config(config));
    });
  }
  static Status CLUSTERD_ABI start(clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return CLUSTERD_E_INVALID_ARG;
    return p->guard([&] { p->start(); });
  }
  static void CLUSTERD_ABI stop(clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return;
    const Status status = p->guard([&] { p->stop(); });
    if (status != CLUSTERD_OK) p->host_.error("exception escaped stop(): " + p->last_error_);
    p->mark_stopped();
  }
  static void CLUSTERD_ABI destroy(clusterd_plugin_t *self) noexcept {
    delete self_of(self);  // handles still alive cancel (or, after stop, just free) here
  }
  static const char *CLUSTERD_ABI last_error(const clusterd_plugin_t *self) noexcept {
    const Plugin *p = self_of(self);
    if (p == nullptr || p->last_error_.empty()) return nullptr;
    return p->last_error_.c_str();
  }
  static const void *CLUSTERD_ABI get_interface(const clusterd_plugin_t *self,
                                                const char *id) noexcept {
    if (self_of(self) == nullptr || id == nullptr) return nullptr;
    if constexpr (kIsStrategy) {
      if (std::strcmp(id, CLUSTERD_INTERFACE_STRATEGY) == 0) return &kStrategyInterface;
    } else {
      if (std::strcmp(id, CLUSTERD_INTERFACE_TRANSPORT) == 0) return &kTransportInterface;
    }
    if constexpr (overrides_control_request_t<T>::value) {
      if (std::strcmp(id, CLUSTERD_INTERFACE_CONTROL) == 0) return &kControlInterface;
    }
    return nullptr;
  }

  // Control extension
  static Status CLUSTERD_ABI control_request(clusterd_plugin_t *self, clusterd_id_t session,
                                             const char *line, size_t length) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || session == 0 || line == nullptr) return CLUSTERD_E_INVALID_ARG;
    return p->guard([&] { p->control_request(session, std::string_view(line, length)); });
  }
  static void CLUSTERD_ABI control_closed(clusterd_plugin_t *self, clusterd_id_t session) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || session == 0) return;
    const Status status = p->guard([&] { p->control_closed(session); });
    if (status != CLUSTERD_OK)
      p->host_.error("exception escaped control_closed(): " + p->last_error_);
  }
  static constexpr clusterd_control_t kControlInterface = {
      static_cast<uint32_t>(sizeof(clusterd_control_t)), 0, &control_request, &control_closed};

  // Strategy
  static Status CLUSTERD_ABI refresh(clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsStrategy) {
      return p->guard([&] { static_cast<Strategy *>(p)->refresh(); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static constexpr bool overrides_refresh() noexcept {
    if constexpr (kIsStrategy) {
      return overrides_refresh_t<T>::value;
    } else {
      return false;
    }
  }

  // Transport
  static Status CLUSTERD_ABI connect(clusterd_plugin_t *self, clusterd_id_t op,
                                     const char *node) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0 || node == nullptr) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsTransport) {
      return p->guard([&] { static_cast<Transport *>(p)->connect(op, std::string_view(node)); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static Status CLUSTERD_ABI disconnect(clusterd_plugin_t *self, clusterd_id_t op,
                                        const char *node) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0 || node == nullptr) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsTransport) {
      return p->guard([&] { static_cast<Transport *>(p)->disconnect(op, std::string_view(node)); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static Status CLUSTERD_ABI list_nodes(clusterd_plugin_t *self, clusterd_id_t op) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsTransport) {
      return p->guard([&] { static_cast<Transport *>(p)->list_nodes(op); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static void CLUSTERD_ABI cancel(clusterd_plugin_t *self, clusterd_id_t op) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0) return;
    if constexpr (kIsTransport) {
      const Status status = p->guard([&] { static_cast<Transport *>(p)->cancel(op); });
      if (status != CLUSTERD_OK) p->host_.error("exception escaped cancel(): " + p->last_error_);
    }
  }
  static const char *CLUSTERD_ABI local_node(const clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return nullptr;
    if constexpr (kIsTransport) {
      bool known = false;
      const Status status = p->guard([&] {
        std::optional<std::string> name = static_cast<Transport *>(p)->local_node();
        known = name.has_value();
        if (known) p->local_node_ = std::move(*name);
      });
      if (status != CLUSTERD_OK || !known) return nullptr;
      return p->local_node_.c_str();
    } else {
      return nullptr;
    }
  }
  static constexpr bool overrides_list_nodes() noexcept {
    if constexpr (kIsTransport) {
      return overrides_list_nodes_t<T>::value;
    } else {
      return false;
    }
  }
  static constexpr bool overrides_cancel() noexcept {
    if constexpr (kIsTransport) {
      return overrides_cancel_t<T>::value;
    } else {
      return false;
    }
  }
  static constexpr bool overrides_local_node() noexcept {
    if constexpr (kIsTransport) {
      return overrides_local_node_t<T>::value;
    } else {
      return false;
    }
  }

  static constexpr clusterd_strategy_t kStrategyInterface = {
      static_cast<uint32_t>(sizeof(clusterd_strategy_t)), 0,
      overrides_refresh() ? &refresh : nullptr};
  static constexpr clusterd_transport_t kTransportInterface = {
      static_cast<uint32_t>(sizeof(clusterd_transport_t)),
      0,
      &connect,
      &disconnect,
      overrides_list_nodes() ? &list_nodes : nullptr,
      overrides_cancel() ? &cancel : nullptr,
      overrides_local_node() ? &local_node : nullptr};

  // T's `static void validate(const Config &, Problems &)`, behind a noexcept trampoline: an
  // exception becomes one more problem, so a throwing check still refuses the config.
  static void CLUSTERD_ABI validate(const clusterd_config_t *config,
                                    const clusterd_problems_t *problems) noexcept {
    if (config == nullptr || problems == nullptr) return;
    Problems out(problems);
    try {
      T::validate(Config(config), out);
    } catch (...) {
      std::string message;
      current_exception_status(message);
      try {
        message.insert(0, "the plugin's validate() failed: ");
      } catch (...) {
      }
      out.add(message);
    }
  }
  static constexpr void(CLUSTERD_ABI *validator() noexcept)(const clusterd_config_t *,
                                                           const clusterd_problems_t *) {
    if constexpr (has_validate<T>::value) {
      static_assert(std::is_same_v<decltype(&T::validate), void (*)(const Config &, Problems &)>,
                    "validate must be `static void validate(const clusterd::Config &, "
                    "clusterd::Problems &)`");
      return &validate;
    } else {
      return nullptr;
    }
  }

  static constexpr clusterd_plugin_descriptor_t kDescriptor = {
      static_cast<uint32_t>(sizeof(clusterd_plugin_descriptor_t)),
      T::kKind,
      flags(),
      option_count(),
      T::kName,
      T::kVersion,
      description(),
      aliases(),
      options(),
      &create,
      validator()};

  static const clusterd_plugin_descriptor_t *CLUSTERD_ABI get_descriptor() noexcept {
    return &kDescriptor;
  }

  /// The entry struct CLUSTERD_EXPORT_PLUGIN exports.
  static constexpr clusterd_plugin_entry_t kEntry = {
      static_cast<uint32_t>(sizeof(clusterd_plugin_entry_t)),
      CLUSTERD_ABI_MAJOR,
      CLUSTERD_ABI_MINOR,
      0,
      nullptr,
      nullptr,
      &get_descriptor};
};

}  // namespace detail
}  // namespace clusterd

/// Exports plugin class `ClassName` (a clusterd::Strategy or clusterd::Transport subclass with
/// static constexpr kName, kVersion and optionally kDescription, kFlags, kAliases, kOptions):
/// defines the library's one exported symbol, clusterd_plugin_entry_v1, as a constant (no
/// static constructor runs). Use it once per library, at namespace scope in one source file.
#define CLUSTERD_EXPORT_PLUGIN(ClassName) \
  CLUSTERD_PLUGIN_ENTRY = ::clusterd::detail::Exporter<ClassName>::kEntry

#endif  // CLUSTERD_PLUGIN_HPP
