// libcurl multi (socket API) on Asio.
//
// curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it up
// (CURLMOPT_TIMERFUNCTION); we wait with stream_descriptor::async_wait and a steady_timer
// and call curl_multi_socket_action. The sockets are opened and closed by us
// (CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION) so a socket is always released from
// Asio before its fd is closed, and Asio never closes an fd itself.
//
// Re-entrancy: user code (on_data) runs inside curl_multi_socket_action, where curl forbids
// adding or removing handles. So while curl runs (in_curl_), cancel() only parks the transfer
// in graveyard_ and start() queues the add; both are finished in after_curl(). `done` always
// runs from its own posted handler, outside curl.
#include "services/http_client.hpp"

#include "util/ids.hpp"

#include <clusterd/common.h>
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "services/curl_api.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace clusterd::services {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr long kMaxConnectTimeoutMs = 15000;

// Drops " after N ms" / " after N milliseconds" from a curl error message.
std::string without_timings(std::string_view message) {
  std::string out;
  while (!message.empty()) {
    const auto at = message.find(" after ");
    if (at == std::string_view::npos) break;
    out.append(message.substr(0, at));
    std::size_t end = at + 7;
    while (end < message.size() && message[end] >= '0' && message[end] <= '9') ++end;
    const auto rest = message.substr(end);
    if (end == at + 7 || !(rest.rfind(" ms", 0) == 0 || rest.rfind(" milliseconds", 0) == 0)) {
      out.append(message.substr(at, 7));  // not a timing: keep it
      message.remove_prefix(at + 7);
      continue;
    }
    message = rest.substr(rest.rfind(" milliseconds", 0) == 0 ? 13 : 3);
  }
  out.append(message);
  return out;
}

// A server sending endless headers must not eat memory; curl 7.88 has no total limit.
constexpr std::size_t kMaxHeaderBytes = 256 * 1024;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool valid_method(const std::string &method) {
  return !method.empty() && method.size() <= 32 &&
         std::all_of(method.begin(), method.end(), is_token_char);
}

bool valid_header(const std::string &header) {
  return !header.empty() &&
         header.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// "scheme://host:port" of a URL: what error messages name (never the path or query, which
// may carry tokens). Empty if the URL is not a valid http(s) URL; `why` then says why.
std::string origin_of(const std::string &url, std::string &why) {
  CURLU *parsed = curl_url();
  if (!parsed) {
    why = "out of memory";
    return {};
  }
  std::string origin;
  CURLUcode rc = curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0);
  if (rc != CURLUE_OK) {
    why = curl_url_strerror(rc);
  } else {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(parsed, CURLUPART_HOST, &host, 0);
    curl_url_get(parsed, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    std::string_view scheme_text = scheme ? scheme : "";
    if (scheme_text != "http" && scheme_text != "https") {
      why = "only http:// and https:// URLs are supported";
    } else if (!host || !*host) {
      why = "the URL has no host";
    } else {
      origin = std::string(scheme_text) + "://" + host + (port ? std::string(":") + port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(parsed);
  return origin;
}

}  // namespace

class HttpClient::Impl : public std::enable_shared_from_this<HttpClient::Impl> {
 public:
  explicit Impl(asio::io_context &io) : io_(io), timer_(io) {
    if (!curl_api(unavailable_)) return;  // every request will fail, saying why
    global_init_once();
    multi_ = curl_multi_init();
    if (multi_) {
      curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Impl::on_curl_socket);
      curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
      curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Impl::on_curl_timer);
      curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    }
  }
  ~Impl() {
    shutdown();
    release_curl();  // no-op unless shutdown was deferred
  }

  std::uint64_t start(Request request, Done done);
  void cancel(std::uint64_t id);
  std::size_t active() const { return transfers_.size(); }
  void shutdown();

 private:
  enum class Stop { none, reader, reader_threw, body_too_large, headers_too_large, idle, watch };

  struct Transfer {
    std::uint64_t id = 0;
    Done done;
    std::function<bool(std::string_view)> on_data;
    std::string method;
    std::string origin;        // for messages
    std::string request_body;  // curl sends it in place (CURLOPT_POSTFIELDS)
    std::size_t max_body_bytes = 0;
    std::chrono::milliseconds idle_timeout{0};  // streams only
    CURLM *multi = nullptr;
    CURL *easy = nullptr;
    curl_slist *header_list = nullptr;
    bool in_multi = false;
    bool cancelled = false;  // its callbacks must not reach user code any more
    bool finished = false;   // response complete, delivery posted
    Stop stop = Stop::none;  // why we (not curl) ended it
    std::string stop_detail;
    std::size_t header_bytes = 0;
    Clock::time_point last_data;
    std::unique_ptr<asio::steady_timer> idle_timer;
    Response response;
    char error_buffer[CURL_ERROR_SIZE] = {};

    ~Transfer() { detach(); }
    // Gives the easy handle back to curl. Never call while curl runs (see in_curl_).
    void detach() {
      if (idle_timer) idle_timer->cancel();
      if (easy) {
        if (in_multi) curl_multi_remove_handle(multi, easy);
        curl_easy_cleanup(easy);
      }
      easy = nullptr;
      in_multi = false;
      curl_slist_free_all(header_list);
      header_list = nullptr;
    }
  };

  struct SocketWatch {
    SocketWatch(asio::io_context &io, curl_socket_t fd_) : descriptor(io, fd_), fd(fd_) {}
    asio::posix::stream_descriptor descriptor;
    curl_socket_t fd;
    int wanted = 0;  // CURL_POLL_IN / _OUT bits
    bool read_pending = false, write_pending = false;
    bool active = true;
  };

  // curl callbacks: plain functions called from C, so they must never throw.
  static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *self, void *);
  static int on_curl_timer(CURLM *, long timeout_ms, void *self);
  static curl_socket_t on_open_socket(void *, curlsocktype purpose, curl_sockaddr *address);
  static int on_close_socket(void *self, curl_socket_t fd);
  static size_t on_body(char *data, size_t size, size_t count, void *transfer);
  static size_t on_header(char *data, size_t size, size_t count, void *transfer);

  int configure(Transfer &t, Request &request, std::string &error);
  void add_to_multi(Transfer &t);
  void watch_socket(CURL *easy, curl_socket_t fd, int what);
  void forget_socket(curl_socket_t fd);
  void arm(const std::shared_ptr<SocketWatch> &watch);
  void wait(const std::shared_ptr<SocketWatch> &watch, bool for_read);
  void drive(curl_socket_t fd, int events);
  void after_curl();
  void arm_idle_timer(Transfer &t);
  void on_idle_timer(std::uint64_t id);
  void on_curl_done(Transfer &t, CURLcode code);
  void fail(Transfer &t, int status, std::string error);
  void complete(Transfer &t);
  void deliver(std::uint64_t id);
  void release_curl();
  Transfer *find(std::uint64_t id) {
    auto it = transfers_.find(id);
    return it == transfers_.end() ? nullptr : it->second.get();
  }

  asio::io_context &io_;
  asio::steady_timer timer_;
  std::string unavailable_;  // why libcurl could not be loaded
  CURLM *multi_ = nullptr;
  bool in_curl_ = false;  // inside curl_multi_socket_action: no add/remove allowed
  bool closed_ = false;
  std::unordered_map<std::uint64_t, std::unique_ptr<Transfer>> transfers_;
  std::unordered_map<curl_socket_t, std::shared_ptr<SocketWatch>> sockets_;
  std::vector<std::unique_ptr<Transfer>> graveyard_;  // cancelled while curl ran
  std::vector<std::uint64_t> pending_adds_;           // started while curl ran
  std::vector<std::uint64_t> doomed_;                 // failed by us while curl ran
};

// ---- starting and configuring -----------------------------------------------------------

std::uint64_t HttpClient::Impl::start(Request request, Done done) {
  auto owned = std::make_unique<Transfer>();
  Transfer &t = *owned;
  t.id = util::next_id();
  t.done = std::move(done);
  t.method = request.method;
  transfers_.emplace(t.id, std::move(owned));

  std::string why;
  if (!unavailable_.empty()) {
    fail(t, CLUSTERD_E_UNSUPPORTED, "HTTP support is unavailable: " + unavailable_);
    return t.id;
  }
  t.origin = origin_of(request.url, why);
  if (t.origin.empty()) {
    fail(t, CLUSTERD_E_INVALID_ARG, "HTTP request: invalid URL: " + why);
  } else if (closed_ || !multi_) {
    fail(t, CLUSTERD_E_STATE, request.method + " " + t.origin + ": HTTP client unavailable");
  } else if (int status = configure(t, request, why); status != CLUSTERD_OK) {
    fail(t, status, t.method + " " + t.origin + ": " + why);
  } else if (in_curl_) {
    pending_adds_.push_back(t.id);
  } else {
    add_to_multi(t);
    after_curl();  // in case curl already failed something while adding
  }
  return t.id;
}

// Sets up t.easy from the request; on failure returns the status and says why in `error`.
int HttpClient::Impl::configure(Transfer &t, Request &request, std::string &error) {
  auto invalid = [&error](const char *why) {
    error = why;
    return CLUSTERD_E_INVALID_ARG;
  };
  auto out_of_memory = [&error] {
    error = "out of memory";
    return CLUSTERD_E_NO_MEMORY;
  };
  if (!valid_method(request.method)) return invalid("invalid method");
  if (request.timeout.count() <= 0) return invalid("the timeout must be positive");
  for (const auto &header : request.headers) {
    if (!valid_header(header)) return invalid("invalid header (empty, or has CR, LF or NUL)");
  }
  const bool head = request.method == "HEAD";
  if (head && !request.body.empty()) return invalid("a HEAD request cannot have a body");

  t.easy = curl_easy_init();
  if (!t.easy) return out_of_memory();
  t.multi = multi_;
  t.on_data = std::move(request.on_data);
  t.request_body = std::move(request.body);
  t.max_body_bytes = request.max_body_bytes;
  CURL *e = t.easy;

  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075700
  // Removing a handle whose name lookup still runs would otherwise join curl's resolver
  // thread, blocking the loop for as long as getaddrinfo() takes; this detaches it instead.
  curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
  // HTTP/1.1 only: one request per connection keeps streams independent and is what the
  // tests exercise.
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Impl::on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);

  // TLS is verified unless explicitly skipped. A CA file replaces the system store.
  const long verify = request.insecure_skip_verify ? 0L : 1L;
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify * 2);
  if (!request.ca_file.empty()) {
    curl_easy_setopt(e, CURLOPT_CAINFO, request.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
  }
  if (!request.client_cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, request.client_cert_file.c_str());
  }
  if (!request.client_key_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLKEY, request.client_key_file.c_str());
  }

  // libcurl copies these strings. Without aws_sigv4 the credentials go out with curl's default
  // auth, Basic; with it curl signs the request with them instead.
  if (!request.aws_sigv4.empty()) {
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
  }
  if (!request.username.empty() || !request.password.empty()) {
    curl_easy_setopt(e, CURLOPT_USERNAME, request.username.c_str());
    curl_easy_setopt(e, CURLOPT_PASSWORD, request.password.c_str());
  }

  bool has_expect = false;
  for (const auto &header : request.headers) {
    has_expect = has_expect || starts_with_nocase(header, "Expect:");
    curl_slist *grown = curl_slist_append(t.header_list, header.c_str());
    if (!grown) return out_of_memory();
    t.header_list = grown;
  }
  if (!has_expect) {
    // No "Expect: 100-continue" round trip (a server that ignores it costs a second).
    curl_slist *grown = curl_slist_append(t.header_list, "Expect:");
    if (!grown) return out_of_memory();
    t.header_list = grown;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);

  const std::string &method = request.method;
  if (head) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && t.request_body.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    if (!t.request_body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(t.request_body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.request_body.data());
    }
    if (method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  const long timeout_ms = static_cast<long>(
      std::min<std::chrono::milliseconds::rep>(request.timeout.count(), 0x7fffffff));
  // Connecting (TCP + TLS) takes seconds at worst: a long-lived stream (a watch) must not wait
  // its whole timeout on a blackholed server before the caller can retry.
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, kMaxConnectTimeoutMs));
  if (t.on_data) {
    t.idle_timeout = std::chrono::milliseconds(timeout_ms);  // enforced by our idle timer
  } else {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    // Refuses an announced Content-Length above the cap before reading the body.
    if (t.max_body_bytes > 0) {
      curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(std::min<std::size_t>(t.max_body_bytes, INT64_MAX)));
    }
  }
  return CLUSTERD_OK;
}

void HttpClient::Impl::add_to_multi(Transfer &t) {
  CURLMcode rc = curl_multi_add_handle(multi_, t.easy);
  if (rc != CURLM_OK) {
    fail(t, CLUSTERD_E_IO, t.method + " " + t.origin + ": " + curl_multi_strerror(rc));
    return;
  }
  t.in_multi = true;
  if (t.on_data) {
    t.last_data = Clock::now();
    t.idle_timer = std::make_unique<asio::steady_timer>(io_);
    arm_idle_timer(t);
  }
}

// ---- cancel and shutdown ----------------------------------------------------------------

void HttpClient::Impl::cancel(std::uint64_t id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  transfers_.erase(it);
  t->cancelled = true;
  // Inside curl the handle cannot be removed (and on_data may be running right now).
  if (in_curl_) graveyard_.push_back(std::move(t));
}

void HttpClient::Impl::shutdown() {
  if (closed_) return;
  closed_ = true;
  for (auto &[id, t] : transfers_) {
    t->cancelled = true;
    graveyard_.push_back(std::move(t));
  }
  transfers_.clear();
  if (!in_curl_) release_curl();  // else drive() does it when curl returns
}

void HttpClient::Impl::release_curl() {
  graveyard_.clear();                      // removes every easy handle from the multi
  if (multi_) curl_multi_cleanup(multi_);  // closes cached connections via on_close_socket
  multi_ = nullptr;
  for (auto &[fd, watch] : sockets_) {
    watch->active = false;
    watch->descriptor.release();
  }
  sockets_.clear();
  timer_.cancel();
}

// ---- sockets and timer ------------------------------------------------------------------

curl_socket_t HttpClient::Impl::on_open_socket(void *, curlsocktype purpose,
                                               curl_sockaddr *address) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

int HttpClient::Impl::on_close_socket(void *self, curl_socket_t fd) {
  static_cast<Impl *>(self)->forget_socket(fd);  // out of Asio (and epoll) before close
  return ::close(fd);
}

int HttpClient::Impl::on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *self, void *) {
  auto *impl = static_cast<Impl *>(self);
  if (what == CURL_POLL_REMOVE) {
    impl->forget_socket(fd);
  } else {
    impl->watch_socket(easy, fd, what);
  }
  return 0;
}

void HttpClient::Impl::watch_socket(CURL *easy, curl_socket_t fd, int what) {
  try {
    auto &watch = sockets_[fd];
    if (!watch) watch = std::make_shared<SocketWatch>(io_, fd);
    watch->wanted = what;
    arm(watch);
  } catch (const std::exception &e) {
    // Cannot watch the socket: fail the transfer using it rather than letting it hang.
    if (auto it = sockets_.find(fd); it != sockets_.end() && !it->second) sockets_.erase(it);
    char *p = nullptr;
    if (easy && curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) == CURLE_OK && p) {
      auto *t = reinterpret_cast<Transfer *>(p);
      t->stop = Stop::watch;
      t->stop_detail = e.what();
      doomed_.push_back(t->id);
    }
  }
}

void HttpClient::Impl::forget_socket(curl_socket_t fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  it->second->active = false;
  it->second->descriptor.release();  // pending waits complete with operation_aborted
  sockets_.erase(it);
}

void HttpClient::Impl::arm(const std::shared_ptr<SocketWatch> &watch) {
  if ((watch->wanted & CURL_POLL_IN) && !watch->read_pending) wait(watch, true);
  if ((watch->wanted & CURL_POLL_OUT) && !watch->write_pending) wait(watch, false);
}

void HttpClient::Impl::wait(const std::shared_ptr<SocketWatch> &watch, bool for_read) {
  (for_read ? watch->read_pending : watch->write_pending) = true;
  auto type = for_read ? asio::posix::stream_descriptor::wait_read
                       : asio::posix::stream_descriptor::wait_write;
  watch->descriptor.async_wait(
      type, [weak_self = weak_from_this(), weak_watch = std::weak_ptr<SocketWatch>(watch),
             for_read](const boost::system::error_code &ec) {
        auto self = weak_self.lock();
        auto watch = weak_watch.lock();
        if (!self || !watch) return;
        (for_read ? watch->read_pending : watch->write_pending) = false;
        if (!watch->active || ec == asio::error::operation_aborted) return;
        if (!(watch->wanted & (for_read ? CURL_POLL_IN : CURL_POLL_OUT))) return;  // stale
        if (ec) {
          // Let curl see the error; re-arming a broken descriptor would spin.
          self->drive(watch->fd, CURL_CSELECT_ERR);
          return;
        }
        self->drive(watch->fd, for_read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
        if (watch->active) self->arm(watch);
      });
}

int HttpClient::Impl::on_curl_timer(CURLM *, long timeout_ms, void *self) {
  auto *impl = static_cast<Impl *>(self);
  if (timeout_ms < 0) {
    impl->timer_.cancel();
    return 0;
  }
  try {
    impl->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    impl->timer_.async_wait([weak = impl->weak_from_this()](const boost::system::error_code &ec) {
      if (ec == asio::error::operation_aborted) return;
      if (auto self = weak.lock()) self->drive(CURL_SOCKET_TIMEOUT, 0);
    });
  } catch (const std::exception &) {
    return -1;
  }
  return 0;
}

void HttpClient::Impl::drive(curl_socket_t fd, int events) {
  if (!multi_) return;
  int running = 0;
  in_curl_ = true;
  curl_multi_socket_action(multi_, fd, events, &running);
  in_curl_ = false;
  if (closed_) {
    release_curl();  // destroyed from inside on_data
    return;
  }
  after_curl();
}

void HttpClient::Impl::after_curl() {
  int left = 0;
  while (CURLMsg *message = curl_multi_info_read(multi_, &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURLcode code = message->data.result;
    char *p = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &p);
    auto *t = reinterpret_cast<Transfer *>(p);
    if (t && !t->cancelled && !t->finished) on_curl_done(*t, code);
  }
  graveyard_.clear();
  for (std::uint64_t id : std::exchange(doomed_, {})) {
    if (Transfer *t = find(id); t && !t->finished) {
      fail(*t, CLUSTERD_E_IO,
           t->method + " " + t->origin + ": cannot watch a socket: " + t->stop_detail);
    }
  }
  for (std::uint64_t id : std::exchange(pending_adds_, {})) {
    if (Transfer *t = find(id); t && !t->finished) add_to_multi(*t);
  }
}

// ---- stream idle timeout ----------------------------------------------------------------

void HttpClient::Impl::arm_idle_timer(Transfer &t) {
  t.idle_timer->expires_at(t.last_data + t.idle_timeout);
  t.idle_timer->async_wait(
      [weak = weak_from_this(), id = t.id](const boost::system::error_code &ec) {
        if (ec == asio::error::operation_aborted) return;
        if (auto self = weak.lock()) self->on_idle_timer(id);
      });
}

void HttpClient::Impl::on_idle_timer(std::uint64_t id) {
  Transfer *t = find(id);
  if (!t || t->finished || !t->in_multi) return;
  // Data moves last_data forward without touching the timer; catch up lazily here.
  if (Clock::now() - t->last_data < t->idle_timeout) {
    arm_idle_timer(*t);
    return;
  }
  t->stop = Stop::idle;
  fail(*t, CLUSTERD_E_TIMEOUT,
       t->method + " " + t->origin + ": no data for " + std::to_string(t->idle_timeout.count()) +
           " ms");
}

// ---- data callbacks (run inside curl) ---------------------------------------------------

size_t HttpClient::Impl::on_body(char *data, size_t size, size_t count, void *transfer) {
  auto *t = static_cast<Transfer *>(transfer);
  const size_t length = size * count;
  if (t->cancelled) return 0;  // 0 != length aborts the transfer
  if (t->on_data) {
    t->last_data = Clock::now();
    bool keep_going = false;
    try {
      keep_going = t->on_data(std::string_view(data, length));
    } catch (const std::exception &e) {
      t->stop = Stop::reader_threw;
      t->stop_detail = e.what();
      return 0;
    } catch (...) {
      t->stop = Stop::reader_threw;
      t->stop_detail = "unknown exception";
      return 0;
    }
    if (t->cancelled) return 0;  // cancelled (or client destroyed) from on_data
    if (!keep_going) {
      t->stop = Stop::reader;
      return 0;
    }
    return length;
  }
  if (length > t->max_body_bytes - std::min(t->max_body_bytes, t->response.body.size())) {
    t->stop = Stop::body_too_large;
    return 0;
  }
  try {
    t->response.body.append(data, length);
  } catch (const std::exception &) {
    t->stop = Stop::body_too_large;
    return 0;
  }
  return length;
}

size_t HttpClient::Impl::on_header(char *data, size_t size, size_t count, void *transfer) {
  auto *t = static_cast<Transfer *>(transfer);
  const size_t length = size * count;
  if (t->cancelled) return 0;
  t->last_data = Clock::now();
  t->header_bytes += length;
  if (t->header_bytes > kMaxHeaderBytes) {
    t->stop = Stop::headers_too_large;
    return 0;
  }
  std::string_view line(data, length);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  try {
    if (line.substr(0, 5) == "HTTP/") {
      t->response.headers.clear();  // a new response begins (after 1xx): keep only the last
    } else if (!line.empty()) {
      t->response.headers.emplace_back(line);
    }
  } catch (const std::exception &) {
    t->stop = Stop::headers_too_large;
    return 0;
  }
  return length;
}

// ---- completion -------------------------------------------------------------------------

void HttpClient::Impl::on_curl_done(Transfer &t, CURLcode code) {
  long http_status = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &http_status);
  t.response.http_status = http_status;
  const std::string what = t.method + " " + t.origin + ": ";
  switch (t.stop) {
    case Stop::reader:
      return fail(t, CLUSTERD_E_CANCELLED, what + "stream aborted by its reader");
    case Stop::reader_threw:
      return fail(t, CLUSTERD_E_GENERIC, what + "stream reader threw: " + t.stop_detail);
    case Stop::body_too_large:
      return fail(t, CLUSTERD_E_IO,
                  what + "response body exceeds the limit of " + std::to_string(t.max_body_bytes) +
                      " bytes");
    case Stop::headers_too_large:
      return fail(t, CLUSTERD_E_IO,
                  what + "response headers exceed " + std::to_string(kMaxHeaderBytes) + " bytes");
    case Stop::idle:
    case Stop::watch:
      return;  // already failed
    case Stop::none:
      break;
  }
  if (code == CURLE_OK) {
    t.response.status = CLUSTERD_OK;
    complete(t);
    return;
  }
  // curl's detailed message, without the timings it puts in ("... after 3 ms: ..."): the same
  // failure must give the same text every round, or plugins log it as a new error each time.
  std::string reason =
      t.error_buffer[0] ? without_timings(t.error_buffer) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return fail(t, CLUSTERD_E_TIMEOUT, what + "timed out");
    case CURLE_FILESIZE_EXCEEDED:
      return fail(t, CLUSTERD_E_IO,
                  what + "response body exceeds the limit of " + std::to_string(t.max_body_bytes) +
                      " bytes");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return fail(t, CLUSTERD_E_INVALID_ARG, what + reason);
    case CURLE_OUT_OF_MEMORY:
      return fail(t, CLUSTERD_E_NO_MEMORY, what + reason);
    default:
      return fail(t, CLUSTERD_E_IO, what + reason);
  }
}

void HttpClient::Impl::fail(Transfer &t, int status, std::string error) {
  t.response.status = status;
  t.response.error = std::move(error);
  t.response.body.clear();  // a partial body is not a body
  complete(t);
}

void HttpClient::Impl::complete(Transfer &t) {
  t.finished = true;
  t.detach();  // the connection goes back to curl's cache now, not when done runs
  asio::post(io_, [weak = weak_from_this(), id = t.id] {
    if (auto self = weak.lock()) self->deliver(id);
  });
}

void HttpClient::Impl::deliver(std::uint64_t id) {
  if (closed_) return;
  auto it = transfers_.find(id);
  if (it == transfers_.end() || !it->second->finished) return;  // cancelled meanwhile
  std::unique_ptr<Transfer> t = std::move(it->second);
  transfers_.erase(it);
  Done done = std::move(t->done);
  Response response = std::move(t->response);
  t.reset();  // done may destroy the client; nothing of ours is touched after it
  if (done) done(response);
}

// ---- public face ------------------------------------------------------------------------

HttpClient::HttpClient(asio::io_context &io) : impl_(std::make_shared<Impl>(io)) {}

HttpClient::~HttpClient() {
  impl_->shutdown();
}

std::uint64_t HttpClient::start(Request request, Done done) {
  return impl_->start(std::move(request), std::move(done));
}

void HttpClient::cancel(std::uint64_t id) {
  impl_->cancel(id);
}

std::size_t HttpClient::active() const {
  return impl_->active();
}

}  // namespace clusterd::services
