// clusterd plugin SDK — RAII handles for the host services: Timer, FdWatch, Work, HttpCall,
// DnsQuery, Process; destroying a handle cancels its registration.
#ifndef CLUSTERD_SERVICES_HPP
#define CLUSTERD_SERVICES_HPP

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host.hpp"

namespace clusterd {

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
  /// Since ABI 1.5: stdout (CLUSTERD_PROCESS_STDOUT) and stderr bytes as they are read, on the
  /// loop, before `done`; chunks are cut anywhere. Empty = captured only.
  std::function<void(uint32_t stream, std::string_view data)> output;
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
  static void CLUSTERD_ABI chunk(void *user_data, clusterd_id_t, uint32_t stream, const char *data,
                                 uint64_t length) noexcept {
    auto *s = static_cast<ProcessState *>(user_data);
    invoke_callback(s, false, "process output", [&] {
      if (s->output) s->output(stream, std::string_view(data, static_cast<std::size_t>(length)));
    });
  }
  const clusterd_process_service_t *svc = nullptr;
  std::function<void(const ProcessResult &)> done;
  std::function<void(uint32_t, std::string_view)> output;
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
    if (request.output && host.abi_minor() < 5)
      throw Error(CLUSTERD_E_UNSUPPORTED, "streamed process output needs a host of ABI 1.5");
    auto s = std::make_unique<detail::ProcessState>(host);
    s->svc = svc;
    s->done = std::move(done);
    s->output = request.output;
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
    req.output = request.output ? &detail::ProcessState::chunk : nullptr;
    const Status status =
        svc->spawn(host.raw(), &req, &detail::ProcessState::finished, s.get(), &s->id);
    if (status != CLUSTERD_OK) throw Error(status, "cannot run '" + request.argv[0] + "'");
    Process p;
    p.adopt(s.release());
    return p;
  }
};

}  // namespace clusterd

#endif  // CLUSTERD_SERVICES_HPP
