// Test support for the EPMD client and the EPMD strategies: a small real event loop (poll +
// timers) that implements the host table a strategy needs, a fake DNS service, a fake config
// view, a plugin loader, and a FAKE EPMD: a TCP server on 127.0.0.1 (or ::1) at an ephemeral
// port, driven by the same loop, that answers correctly or misbehaves on purpose.
// Header-only; test code only (it uses gtest).
#pragma once

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <clusterd/clusterd.h>

#include "epmd.hpp"

namespace epmd_test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- The loop host ------------------------------------------------------------------------------

class LoopHost {
 public:
  struct DnsAnswer {
    clusterd_status_t status = CLUSTERD_OK;
    std::vector<std::string> addresses;  // of the queried type
    bool hang = false;                   // never answer (until cancelled)
  };

  LoopHost() {
    table_.struct_size = sizeof table_;
    table_.abi_major = CLUSTERD_ABI_MAJOR;
    table_.abi_minor = CLUSTERD_ABI_MINOR;
    table_.host_version = "test";
    table_.instance_name = "topology test";
    table_.host_data = this;
    table_.log = [](const clusterd_host_t *h, int32_t level, const char *m) {
      self(h)->logs.push_back(std::to_string(level) + " " + m);
    };
    table_.get_service = [](const clusterd_host_t *h, const char *id) -> const void * {
      LoopHost *l = self(h);
      const std::string s(id);
      if (s == CLUSTERD_SERVICE_TIMER) return &l->timer_svc_;
      if (s == CLUSTERD_SERVICE_FD && l->offer_fd) return &l->fd_svc_;
      if (s == CLUSTERD_SERVICE_DNS && l->offer_dns) return &l->dns_svc_;
      if (s == CLUSTERD_SERVICE_STATUS) return &l->status_svc_;
      if (s == CLUSTERD_SERVICE_STRATEGY_SINK) return &l->sink_;
      return nullptr;
    };
    table_.post = [](const clusterd_host_t *, clusterd_task_fn, void *) -> clusterd_status_t {
      return CLUSTERD_E_UNSUPPORTED;
    };
    timer_svc_.struct_size = sizeof timer_svc_;
    timer_svc_.add = [](const clusterd_host_t *h, uint64_t delay, uint64_t period,
                        clusterd_timer_fn fn, void *ud, clusterd_id_t *out) -> clusterd_status_t {
      LoopHost *l = self(h);
      *out = l->next_id_++;
      l->timers_[*out] = TimerReg{Clock::now() + milliseconds(delay), period, fn, ud};
      return CLUSTERD_OK;
    };
    timer_svc_.cancel = [](const clusterd_host_t *h, clusterd_id_t id) {
      self(h)->timers_.erase(id);
    };
    fd_svc_.struct_size = sizeof fd_svc_;
    fd_svc_.watch = [](const clusterd_host_t *h, int fd, uint32_t events, clusterd_fd_fn fn,
                       void *ud, clusterd_id_t *out) -> clusterd_status_t {
      LoopHost *l = self(h);
      if (fd < 0 || !(events & (CLUSTERD_FD_READ | CLUSTERD_FD_WRITE)))
        return CLUSTERD_E_INVALID_ARG;
      *out = l->next_id_++;
      l->watches_[*out] = WatchReg{fd, events, fn, ud};
      return CLUSTERD_OK;
    };
    fd_svc_.modify = [](const clusterd_host_t *h, clusterd_id_t id,
                        uint32_t events) -> clusterd_status_t {
      auto it = self(h)->watches_.find(id);
      if (it == self(h)->watches_.end()) return CLUSTERD_E_NOT_FOUND;
      it->second.events = events;
      return CLUSTERD_OK;
    };
    fd_svc_.unwatch = [](const clusterd_host_t *h, clusterd_id_t id) {
      self(h)->watches_.erase(id);
    };
    dns_svc_.struct_size = sizeof dns_svc_;
    dns_svc_.resolve = [](const clusterd_host_t *h, const clusterd_dns_query_t *q,
                          clusterd_dns_done_fn done, void *ud,
                          clusterd_id_t *out) -> clusterd_status_t {
      LoopHost *l = self(h);
      *out = l->next_id_++;
      l->dns_queries.push_back(std::string(q->name) + "/" + std::to_string(q->type));
      l->dns_[*out] = DnsReg{q->name, q->type, done, ud};
      return CLUSTERD_OK;
    };
    dns_svc_.cancel = [](const clusterd_host_t *h, clusterd_id_t id) { self(h)->dns_.erase(id); };
    status_svc_.struct_size = sizeof status_svc_;
    status_svc_.set = [](const clusterd_host_t *h, const char *key, const char *value) {
      if (value == nullptr) {
        self(h)->status.erase(key);
      } else {
        self(h)->status[key] = value;
      }
    };
    sink_.struct_size = sizeof sink_;
    sink_.set_nodes = [](const clusterd_host_t *h, const char *const *nodes, uint32_t n) {
      std::vector<std::string> v;
      for (uint32_t i = 0; i < n; ++i) v.emplace_back(nodes[i]);
      self(h)->reports.push_back(v);
      self(h)->events.push_back("set_nodes");
    };
    sink_.node_seen = [](const clusterd_host_t *h, const char *) {
      self(h)->events.push_back("node_seen");
    };
    sink_.node_lost = [](const clusterd_host_t *h, const char *) {
      self(h)->events.push_back("node_lost");
    };
    sink_.discovery_failed = [](const clusterd_host_t *h, const char *reason) {
      self(h)->failures.push_back(reason);
      self(h)->events.push_back("discovery_failed");
    };
    sink_.local_node = [](const clusterd_host_t *h) -> const char * {
      LoopHost *l = self(h);
      return l->local_node ? l->local_node->c_str() : nullptr;
    };
  }
  LoopHost(const LoopHost &) = delete;
  LoopHost &operator=(const LoopHost &) = delete;

  const clusterd_host_t *table() const { return &table_; }
  // Plugin registrations still alive (timers, fd watches, DNS queries).
  std::size_t registrations() const { return timers_.size() + watches_.size() + dns_.size(); }
  std::size_t watches() const { return watches_.size(); }
  std::size_t timers() const { return timers_.size(); }
  std::vector<uint64_t> timer_periods() const {
    std::vector<uint64_t> out;
    for (const auto &t : timers_) out.push_back(t.second.period);
    return out;
  }

  // Test-side fds (the fake servers), polled with the plugin's. `fn(revents)`.
  void add_test_fd(int fd, short events, std::function<void(short)> fn) {
    test_fds_[fd] = TestFd{events, std::move(fn)};
  }
  void set_test_fd_events(int fd, short events) {
    auto it = test_fds_.find(fd);
    if (it != test_fds_.end()) it->second.events = events;
  }
  void remove_test_fd(int fd) { test_fds_.erase(fd); }

  // Runs the loop until `done()` or `limit` passes; returns done(). `done` is re-checked
  // after every turn (at least every 10 ms).
  bool run_until(const std::function<bool()> &done, milliseconds limit = milliseconds(10000)) {
    const auto deadline = Clock::now() + limit;
    // Bounded by the deadline: every turn waits at most 10 ms.
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      turn(deadline);
    }
    return true;
  }
  // Runs the loop for `span` (to check that something does NOT happen within it).
  void run_for(milliseconds span) {
    const auto deadline = Clock::now() + span;
    while (Clock::now() < deadline) turn(deadline);
  }

  // Name -> answer for the fake DNS (per record type); unknown names get NXDOMAIN.
  std::map<std::pair<std::string, uint32_t>, DnsAnswer> dns_answers;
  bool offer_fd = true;
  bool offer_dns = true;
  std::optional<std::string> local_node;

  std::vector<std::vector<std::string>> reports;
  std::vector<std::string> failures;
  std::vector<std::string> events;
  std::map<std::string, std::string> status;
  std::vector<std::string> logs;
  std::vector<std::string> dns_queries;

 private:
  struct TimerReg {
    Clock::time_point due;
    uint64_t period;
    clusterd_timer_fn fn;
    void *ud;
  };
  struct WatchReg {
    int fd;
    uint32_t events;
    clusterd_fd_fn fn;
    void *ud;
  };
  struct DnsReg {
    std::string name;
    uint32_t type;
    clusterd_dns_done_fn done;
    void *ud;
  };
  struct TestFd {
    short events;
    std::function<void(short)> fn;
  };
  static LoopHost *self(const clusterd_host_t *h) { return static_cast<LoopHost *>(h->host_data); }

  void turn(Clock::time_point deadline) {
    const auto now = Clock::now();
    auto wake = std::min(deadline, now + milliseconds(10));
    for (auto &t : timers_) wake = std::min(wake, t.second.due);
    bool dns_due = false;
    for (auto &d : dns_) {
      auto it = dns_answers.find({d.second.name, d.second.type});
      if (it == dns_answers.end() || !it->second.hang) dns_due = true;
    }
    if (dns_due) wake = now;
    std::vector<pollfd> fds;
    std::vector<std::pair<bool, uint64_t>> ids;  // (test fd?, watch id or fd)
    for (auto &w : watches_) {
      short ev = 0;
      if (w.second.events & CLUSTERD_FD_READ) ev |= POLLIN;
      if (w.second.events & CLUSTERD_FD_WRITE) ev |= POLLOUT;
      fds.push_back(pollfd{w.second.fd, ev, 0});
      ids.emplace_back(false, w.first);
    }
    for (auto &t : test_fds_) {
      fds.push_back(pollfd{t.first, t.second.events, 0});
      ids.emplace_back(true, static_cast<uint64_t>(t.first));
    }
    const auto wait = std::chrono::duration_cast<milliseconds>(wake - now).count();
    const int n = poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait, 0)));
    for (std::size_t i = 0; n > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      if (ids[i].first) {
        auto it = test_fds_.find(static_cast<int>(ids[i].second));
        if (it == test_fds_.end()) continue;
        auto fn = it->second.fn;  // may remove itself
        fn(fds[i].revents);
        continue;
      }
      auto it = watches_.find(ids[i].second);
      if (it == watches_.end()) continue;  // unwatched by an earlier callback: never call it
      uint32_t ready = 0;
      if (fds[i].revents & (POLLIN | POLLHUP)) ready |= CLUSTERD_FD_READ & it->second.events;
      if (fds[i].revents & POLLOUT) ready |= CLUSTERD_FD_WRITE & it->second.events;
      if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) ready |= CLUSTERD_FD_ERROR;
      if (ready == 0) continue;
      const WatchReg w = it->second;
      w.fn(w.ud, ids[i].second, w.fd, ready);
    }
    // DNS answers (never from inside resolve(): here, on a later turn).
    std::vector<clusterd_id_t> dns_ids;
    for (auto &d : dns_) dns_ids.push_back(d.first);
    for (clusterd_id_t id : dns_ids) {
      auto it = dns_.find(id);
      if (it == dns_.end()) continue;
      const DnsReg reg = it->second;
      DnsAnswer answer;
      answer.status = CLUSTERD_E_NOT_FOUND;
      auto a = dns_answers.find({reg.name, reg.type});
      if (a != dns_answers.end()) answer = a->second;
      if (answer.hang) continue;
      dns_.erase(it);
      std::vector<clusterd_dns_record_t> records;
      for (const auto &addr : answer.addresses) {
        clusterd_dns_record_t r{};
        r.struct_size = sizeof r;
        r.type = reg.type;
        r.ttl = 60;
        r.address = addr.c_str();
        records.push_back(r);
      }
      const std::string error =
          answer.status == CLUSTERD_OK ? "" : "fake DNS: " + reg.name + ": no such name";
      clusterd_dns_result_t result{};
      result.struct_size = sizeof result;
      result.status = answer.status;
      result.records = records.empty() ? nullptr : records.data();
      result.record_count = static_cast<uint32_t>(records.size());
      result.error = error.c_str();
      reg.done(reg.ud, id, &result);
    }
    std::vector<clusterd_id_t> due;
    for (auto &t : timers_)
      if (t.second.due <= Clock::now()) due.push_back(t.first);
    for (clusterd_id_t id : due) {
      auto it = timers_.find(id);
      if (it == timers_.end()) continue;
      const TimerReg t = it->second;
      if (t.period == 0) {
        timers_.erase(it);
      } else {
        it->second.due += milliseconds(t.period);
      }
      t.fn(t.ud, id);
    }
  }

  clusterd_host_t table_{};
  clusterd_timer_service_t timer_svc_{};
  clusterd_fd_service_t fd_svc_{};
  clusterd_dns_service_t dns_svc_{};
  clusterd_status_service_t status_svc_{};
  clusterd_strategy_sink_t sink_{};
  std::map<clusterd_id_t, TimerReg> timers_;
  std::map<clusterd_id_t, WatchReg> watches_;
  std::map<clusterd_id_t, DnsReg> dns_;
  std::map<int, TestFd> test_fds_;
  clusterd_id_t next_id_ = 1;
};

// ---- The fake EPMD ------------------------------------------------------------------------------

// How the fake EPMD treats a connection.
enum class Mode {
  answer,         // a correct reply, then close
  answer_open,    // a correct reply, but keep the connection open (PORT2 completes anyway)
  dribble,        // a correct reply, one byte per loop turn, then close
  truncate,       // the first `truncate_at` bytes of the correct reply, then close
  raw,            // `raw_reply` as is, then close
  oversize,       // a valid NAMES header and more than kMaxReplyBytes of valid lines
  hang,           // read the request, never answer, keep the connection open
  no_accept,      // never accept (the kernel completes the handshake; nothing is read)
  close_at_once,  // accept and close without reading or answering
  refuse,         // the port is bound but not listening: connection refused
};

class FakeEpmd {
 public:
  // Listens on `address` (127.0.0.1 or ::1) at `port` (0: an ephemeral one).
  explicit FakeEpmd(LoopHost &loop, Mode mode = Mode::answer,
                    const std::string &address = "127.0.0.1", uint16_t port = 0)
      : loop_(loop), mode_(mode) {
    const bool ipv6 = address.find(':') != std::string::npos;
    listen_fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(listen_fd_, 0) << std::strerror(errno);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ipv6) ::setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (ipv6) {
      auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
      a->sin6_family = AF_INET6;
      inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
      a->sin6_port = htons(port);
      len = sizeof *a;
    } else {
      auto *a = reinterpret_cast<sockaddr_in *>(&ss);
      a->sin_family = AF_INET;
      inet_pton(AF_INET, address.c_str(), &a->sin_addr);
      a->sin_port = htons(port);
      len = sizeof *a;
    }
    ok_ = ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&ss), len) == 0;
    EXPECT_TRUE(ok_) << "bind: " << std::strerror(errno);
    socklen_t got = sizeof ss;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&ss), &got);
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                       : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    if (mode_ == Mode::refuse) return;  // bound, never listening
    EXPECT_EQ(::listen(listen_fd_, 64), 0) << std::strerror(errno);
    if (mode_ == Mode::no_accept) return;
    loop_.add_test_fd(listen_fd_, POLLIN, [this](short) { accept_all(); });
  }
  ~FakeEpmd() {
    for (auto &c : conns_) {
      loop_.remove_test_fd(c.first);
      ::close(c.first);
    }
    loop_.remove_test_fd(listen_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  FakeEpmd(const FakeEpmd &) = delete;
  FakeEpmd &operator=(const FakeEpmd &) = delete;

  uint16_t port() const { return port_; }
  bool ok() const { return ok_; }
  void set_mode(Mode m) { mode_ = m; }

  // The registry the correct replies come from.
  std::vector<clusterd::epmd::Registered> names;
  std::size_t truncate_at = 0;
  std::string raw_reply;
  // What arrived: every complete request body (after the 2-byte length), in order.
  std::vector<std::string> requests;
  std::size_t accepted = 0;

  // The correct reply to request body `body`.
  std::string reply_to(const std::string &body) const {
    std::string out;
    if (body == "n") {
      out = {0, 0, static_cast<char>(port_ >> 8), static_cast<char>(port_ & 0xff)};
      for (const auto &n : names)
        out += "name " + n.name + " at port " + std::to_string(n.port) + "\n";
      return out;
    }
    if (!body.empty() && body[0] == 'z') {
      const std::string alive = body.substr(1);
      for (const auto &n : names)
        if (n.name == alive) {
          out = {119,
                 0,
                 static_cast<char>(n.port >> 8),
                 static_cast<char>(n.port & 0xff),
                 77,
                 0,
                 0,
                 6,
                 0,
                 5,
                 static_cast<char>(alive.size() >> 8),
                 static_cast<char>(alive.size() & 0xff)};
          out += alive;
          out += std::string(2, '\0');
          return out;
        }
      return std::string{119, 1};
    }
    return {};  // unknown request: EPMD closes
  }

 private:
  struct Conn {
    std::string in, out;
    std::size_t sent = 0;
    bool replying = false;
    bool keep_open = false;
    bool dribble = false;
  };

  void accept_all() {
    for (int i = 0; i < 64; ++i) {  // bounded: at most 64 per turn
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      ++accepted;
      if (mode_ == Mode::close_at_once) {
        ::close(fd);
        continue;
      }
      conns_[fd] = Conn{};
      loop_.add_test_fd(fd, POLLIN, [this, fd](short revents) { serve(fd, revents); });
    }
  }

  void drop(int fd) {
    loop_.remove_test_fd(fd);
    ::close(fd);
    conns_.erase(fd);
  }

  void serve(int fd, short revents) {
    Conn &c = conns_.at(fd);
    if (c.replying && !(revents & POLLOUT)) {  // hang-up or error after (or while) replying
      drop(fd);
      return;
    }
    if (!c.replying) {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) drop(fd);
        return;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      if (c.in.size() < 2) return;
      const std::size_t length =
          (static_cast<unsigned char>(c.in[0]) << 8) | static_cast<unsigned char>(c.in[1]);
      if (c.in.size() < 2 + length) return;
      const std::string body = c.in.substr(2, length);
      requests.push_back(body);
      if (mode_ == Mode::hang) {
        loop_.set_test_fd_events(fd, 0);  // keep it open, do nothing
        return;
      }
      c.out = compose(body);
      c.replying = true;
      c.keep_open = mode_ == Mode::answer_open;
      c.dribble = mode_ == Mode::dribble;
      loop_.set_test_fd_events(fd, POLLOUT);
      return;
    }
    if (c.sent < c.out.size()) {
      const std::size_t chunk = c.dribble ? 1 : c.out.size() - c.sent;
      const ssize_t n = ::send(fd, c.out.data() + c.sent, chunk, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) drop(fd);  // the client gave up (EPIPE, RST)
        return;
      }
      c.sent += static_cast<std::size_t>(n);
    }
    if (c.sent == c.out.size()) {
      if (c.keep_open) {
        loop_.set_test_fd_events(fd, 0);
      } else {
        drop(fd);
      }
    }
  }

  std::string compose(const std::string &body) const {
    switch (mode_) {
      case Mode::truncate:
        return reply_to(body).substr(0, truncate_at);
      case Mode::raw:
        return raw_reply;
      case Mode::oversize: {
        std::string out = {0, 0, 0x11, 0x11};
        const std::string line = "name filler at port 1\n";
        while (out.size() <= clusterd::epmd::kMaxReplyBytes + 4096) out += line;
        return out;
      }
      default:
        return reply_to(body);
    }
  }

  LoopHost &loop_;
  Mode mode_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  bool ok_ = false;
  std::map<int, Conn> conns_;
};

// True when this machine has an IPv6 loopback to bind to.
inline bool have_ipv6_loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A port free on both 127.0.0.1 and ::1 right now (for a pair of fakes on one port), or 0.
inline uint16_t port_free_on_both() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int v6 = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int v4 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof a6;
    uint16_t port = 0;
    if (::bind(v6, reinterpret_cast<sockaddr *>(&a6), sizeof a6) == 0 &&
        ::getsockname(v6, reinterpret_cast<sockaddr *>(&a6), &len) == 0) {
      sockaddr_in a4{};
      a4.sin_family = AF_INET;
      a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a4.sin_port = a6.sin6_port;
      if (::bind(v4, reinterpret_cast<sockaddr *>(&a4), sizeof a4) == 0) port = ntohs(a6.sin6_port);
    }
    ::close(v4);
    ::close(v6);
    if (port != 0) return port;
  }
  return 0;
}

// ---- Config -------------------------------------------------------------------------------------

struct Duration {
  int64_t ms;  // -1 = infinity
};
using Value = std::variant<std::string, int64_t, bool, Duration, std::vector<std::string>>;

// A config view over `values` (what the host would pass after validation and defaults).
struct Config {
  explicit Config(std::map<std::string, Value> v = {}) : values(std::move(v)) {
    view.struct_size = sizeof view;
    view.config_data = this;
    view.get_string = [](const clusterd_config_t *c, const char *k, const char **out) {
      return get<std::string>(c, k, [&](const std::string &v) { *out = v.c_str(); });
    };
    view.get_int = [](const clusterd_config_t *c, const char *k, int64_t *out) {
      return get<int64_t>(c, k, [&](int64_t v) { *out = v; });
    };
    view.get_bool = [](const clusterd_config_t *c, const char *k, int32_t *out) {
      return get<bool>(c, k, [&](bool v) { *out = v ? 1 : 0; });
    };
    view.get_double = [](const clusterd_config_t *, const char *, double *) {
      return CLUSTERD_E_TYPE;
    };
    view.get_duration_ms = [](const clusterd_config_t *c, const char *k, int64_t *out) {
      return get<Duration>(c, k, [&](Duration v) { *out = v.ms; });
    };
    view.get_list_size = [](const clusterd_config_t *c, const char *k, uint32_t *out) {
      return get<std::vector<std::string>>(
          c, k, [&](const auto &v) { *out = static_cast<uint32_t>(v.size()); });
    };
    view.get_list_item = [](const clusterd_config_t *c, const char *k, uint32_t i,
                            const char **out) {
      return get<std::vector<std::string>>(c, k, [&](const auto &v) { *out = v.at(i).c_str(); });
    };
    view.is_set = [](const clusterd_config_t *c, const char *k) -> int32_t {
      return static_cast<const Config *>(c->config_data)->values.count(k) != 0;
    };
    view.source_of = [](const clusterd_config_t *, const char *) -> const char * {
      return "test.toml:7:1";
    };
  }
  template <class T, class F>
  static clusterd_status_t get(const clusterd_config_t *c, const char *k, F &&f) {
    const auto &values = static_cast<const Config *>(c->config_data)->values;
    auto it = values.find(k);
    if (it == values.end()) return CLUSTERD_E_NOT_FOUND;
    const T *v = std::get_if<T>(&it->second);
    if (v == nullptr) return CLUSTERD_E_TYPE;
    f(*v);
    return CLUSTERD_OK;
  }
  Config(const Config &) = delete;
  Config &operator=(const Config &) = delete;

  clusterd_config_t view{};
  std::map<std::string, Value> values;
};

// The descriptor's defaults as config values (what the host fills in), for the option types
// these plugins use.
inline std::map<std::string, Value> defaults_of(const clusterd_plugin_descriptor_t *d) {
  std::map<std::string, Value> out;
  for (uint32_t i = 0; i < d->option_count; ++i) {
    const clusterd_option_t &o = d->options[i];
    if (o.default_value == nullptr) continue;
    const std::string v = o.default_value;
    switch (o.type) {
      case CLUSTERD_OPT_INT:
        out[o.key] = int64_t{std::stoll(v)};
        break;
      case CLUSTERD_OPT_BOOL:
        out[o.key] = v == "true";
        break;
      case CLUSTERD_OPT_STRING:
        out[o.key] = v.substr(1, v.size() - 2);
        break;
      case CLUSTERD_OPT_DURATION: {
        const std::string s = v.substr(1, v.size() - 2);
        if (s == "infinity") {
          out[o.key] = Duration{-1};
        } else if (s.size() > 2 && s.substr(s.size() - 2) == "ms") {
          out[o.key] = Duration{std::stoll(s)};
        } else if (!s.empty() && s.back() == 's') {
          out[o.key] = Duration{std::stoll(s) * 1000};
        } else {
          ADD_FAILURE() << "unhandled duration default " << v;
        }
        break;
      }
      case CLUSTERD_OPT_STRING_LIST:
        if (v == "[]") out[o.key] = std::vector<std::string>{};
        break;
      default:
        ADD_FAILURE() << "unhandled option type of " << o.key;
    }
  }
  return out;
}

// ---- The plugin under test ----------------------------------------------------------------------

inline const clusterd_plugin_descriptor_t *load_descriptor(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);  // never closed, like the host
  EXPECT_NE(lib, nullptr) << dlerror();
  if (lib == nullptr) return nullptr;
  const auto *entry =
      static_cast<const clusterd_plugin_entry_t *>(dlsym(lib, CLUSTERD_ENTRY_SYMBOL));
  EXPECT_NE(entry, nullptr);
  return entry != nullptr ? entry->get_descriptor() : nullptr;
}

// One instance: create + init (+ start), stopped and destroyed by the destructor.
class Instance {
 public:
  Instance(const clusterd_plugin_descriptor_t *d, LoopHost &loop) {
    plugin_ = d->create(loop.table());
    EXPECT_NE(plugin_, nullptr);
  }
  ~Instance() {
    if (plugin_ == nullptr) return;
    if (started_) plugin_->stop(plugin_);
    plugin_->destroy(plugin_);
  }
  Instance(const Instance &) = delete;
  Instance &operator=(const Instance &) = delete;

  clusterd_status_t init(Config &cfg) { return plugin_->init(plugin_, &cfg.view); }
  clusterd_status_t start() {
    started_ = true;
    return plugin_->start(plugin_);
  }
  void stop() {
    if (started_) plugin_->stop(plugin_);
    started_ = false;
  }
  clusterd_status_t refresh() {
    const auto *s = static_cast<const clusterd_strategy_t *>(
        plugin_->get_interface(plugin_, CLUSTERD_INTERFACE_STRATEGY));
    return s != nullptr && s->refresh != nullptr ? s->refresh(plugin_) : CLUSTERD_E_UNSUPPORTED;
  }
  std::string last_error() const {
    const char *e = plugin_->last_error(plugin_);
    return e != nullptr ? e : "";
  }
  clusterd_plugin_t *raw() { return plugin_; }

 private:
  clusterd_plugin_t *plugin_ = nullptr;
  bool started_ = false;
};

inline bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace epmd_test
