// Shared support for the unit tests of the in-tree plugins, which load the built .so with dlopen
// and drive it the way the daemon does:
//  - LoopHost: a small real event loop (poll + timers) that implements the host table of the C
//    ABI: timers, fd watches, a fake DNS with canned answers, status details, the strategy and
//    the transport sinks, post() from any thread and log() from any thread; it records what the
//    plugin reported, and polls the test's own fds (fake servers) with the plugin's.
//  - Config: a config view over values of every option type, and defaults_of(descriptor).
//  - load_descriptor / descriptor() and Instance: the plugin under test (CLUSTERD_TEST_PLUGIN),
//    create, init, start, stop, destroy.
// Header-only; test code only (it uses gtest). Each test target adds tests/support to its
// include path (the clusterd_plugin_test_support target in tests/unit/sdk.cmake).
#pragma once

#include <dlfcn.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <clusterd/clusterd.h>

namespace clusterd_test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

inline bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---- The loop host ------------------------------------------------------------------------------

// What the fake DNS answers for one (name, record type).
struct DnsAnswer {
  clusterd_status_t status = CLUSTERD_OK;
  std::vector<std::string> addresses;  // of the queried type
  bool hang = false;                   // never answer (until cancelled)
};

// One transport operation's completion (complete or complete_list).
struct Completion {
  clusterd_id_t op;
  clusterd_status_t status;
  std::string message;
  std::vector<std::string> nodes;
};

// node_up / node_down from a transport.
struct NodeEvent {
  bool up;
  std::string node;
  std::string reason;
};

// One host table on a real poll() loop, run by the test thread (the "loop thread"): every
// callback into the plugin runs inside run_until / run_for (or fire_timer). Only log() and
// post() may be called from other threads.
class LoopHost {
 public:
  explicit LoopHost(const char *instance_name = "plugin test")
      : wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    EXPECT_GE(wake_, 0);
    table_.struct_size = sizeof table_;
    table_.abi_major = CLUSTERD_ABI_MAJOR;
    table_.abi_minor = CLUSTERD_ABI_MINOR;
    table_.host_version = "test";
    table_.instance_name = instance_name;
    table_.host_data = this;
    table_.log = [](const clusterd_host_t *h, int32_t level, const char *m) {  // any thread
      std::lock_guard<std::mutex> lock(self(h)->mutex_);
      self(h)->logs_.push_back(std::to_string(level) + " " + m);
    };
    table_.get_service = [](const clusterd_host_t *h, const char *id) -> const void * {
      LoopHost *l = self(h);
      const std::string s(id);
      if (s == CLUSTERD_SERVICE_TIMER && l->offer_timer) return &l->timer_svc_;
      if (s == CLUSTERD_SERVICE_FD && l->offer_fd) return &l->fd_svc_;
      if (s == CLUSTERD_SERVICE_DNS && l->offer_dns) return &l->dns_svc_;
      if (s == CLUSTERD_SERVICE_STATUS && l->offer_status) return &l->status_svc_;
      if (s == CLUSTERD_SERVICE_STRATEGY_SINK && l->offer_strategy_sink) return &l->strategy_;
      if (s == CLUSTERD_SERVICE_TRANSPORT_SINK && l->offer_transport_sink) return &l->transport_;
      auto extra = l->extra_services.find(s);
      return extra == l->extra_services.end() ? nullptr : extra->second;
    };
    table_.post = [](const clusterd_host_t *h, clusterd_task_fn fn,
                     void *ud) -> clusterd_status_t {  // any thread
      LoopHost *l = self(h);
      {
        std::lock_guard<std::mutex> lock(l->mutex_);
        if (!l->offer_post) return CLUSTERD_E_UNSUPPORTED;
        if (l->refuse_posts_) return CLUSTERD_E_STATE;
        l->tasks_.emplace_back(fn, ud);
      }
      const uint64_t one = 1;
      if (write(l->wake_, &one, sizeof one) < 0) { /* counter full: readable anyway */
      }
      return CLUSTERD_OK;
    };
    init_timer_and_fd();
    init_dns_and_status();
    init_sinks();
  }
  ~LoopHost() {
    if (wake_ >= 0) close(wake_);
  }
  LoopHost(const LoopHost &) = delete;
  LoopHost &operator=(const LoopHost &) = delete;

  const clusterd_host_t *table() const { return &table_; }

  // Which services get_service offers (turn one off to test a plugin without it), and whether
  // post() works (else CLUSTERD_E_UNSUPPORTED).
  bool offer_timer = true;
  bool offer_fd = true;
  bool offer_dns = true;
  bool offer_status = true;
  bool offer_strategy_sink = true;
  bool offer_transport_sink = true;
  bool offer_post = true;
  // Services a test brings itself (id -> vtable), e.g. the host's real process service, and
  // what drives them: called after every loop turn.
  std::map<std::string, const void *> extra_services;
  std::function<void()> each_turn;
  // Offers only the services in `ids` (CLUSTERD_SERVICE_* ids and the sinks' ids).
  void offer_only(std::initializer_list<std::string> ids) {
    auto in = [&](const char *id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); };
    offer_timer = in(CLUSTERD_SERVICE_TIMER);
    offer_fd = in(CLUSTERD_SERVICE_FD);
    offer_dns = in(CLUSTERD_SERVICE_DNS);
    offer_status = in(CLUSTERD_SERVICE_STATUS);
    offer_strategy_sink = in(CLUSTERD_SERVICE_STRATEGY_SINK);
    offer_transport_sink = in(CLUSTERD_SERVICE_TRANSPORT_SINK);
  }

  // Plugin registrations still alive (timers, fd watches, DNS queries).
  std::size_t registrations() const { return timers_.size() + watches_.size() + dns_.size(); }
  std::size_t watches() const { return watches_.size(); }
  std::size_t timers() const { return timers_.size(); }
  std::vector<clusterd_id_t> timer_ids() const {
    std::vector<clusterd_id_t> out;
    for (const auto &t : timers_) out.push_back(t.first);
    return out;
  }
  std::vector<uint64_t> timer_periods() const {
    std::vector<uint64_t> out;
    for (const auto &t : timers_) out.push_back(t.second.period);
    return out;
  }
  // Fires timer `id` now, by hand (a one-shot is removed first, as when it falls due).
  void fire_timer(clusterd_id_t id) {
    auto it = timers_.find(id);
    ASSERT_NE(it, timers_.end()) << "no timer " << id;
    const TimerReg t = it->second;
    if (t.period == 0) timers_.erase(it);
    t.fn(t.ud, id);
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

  // Runs the loop until `done()` or `limit` passes; returns done(). `done` is re-checked after
  // every turn, at least every 10 ms (for conditions outside the loop, like a file a child
  // writes or another process's state).
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

  // post() as for an instance that is stopping: refused (CLUSTERD_E_STATE) while `refuse`.
  void refuse_posts(bool refuse) {
    std::lock_guard<std::mutex> lock(mutex_);
    refuse_posts_ = refuse;
  }
  // Drops the posted tasks not run yet (their user_data stays the plugin's).
  void drop_tasks() {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.clear();
  }

  // What the plugin logged ("LEVEL message"), from any thread.
  std::vector<std::string> logs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }
  // How many log lines contain `needle`; whether one does.
  std::size_t log_count(const std::string &needle) const {
    const std::vector<std::string> lines = logs();
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](const std::string &l) { return contains(l, needle); }));
  }
  bool logged(const std::string &needle) const { return log_count(needle) != 0; }
  // Whether a transport reported node_up (`up`) or node_down of `node`.
  bool saw(bool up, const std::string &node) const {
    for (const auto &e : node_events)
      if (e.up == up && e.node == node) return true;
    return false;
  }

  // The fake DNS: (name, record type) -> answer; unknown names get NXDOMAIN.
  std::map<std::pair<std::string, uint32_t>, DnsAnswer> dns_answers;
  // What the strategy sink's local_node returns (nullopt: NULL, not known).
  std::optional<std::string> local_node;

  // Records. Strategy sink: every set_nodes, every discovery_failed reason, and the calls in
  // order ("set_nodes", "node_seen", "node_lost", "discovery_failed").
  std::vector<std::vector<std::string>> reports;
  std::vector<std::string> failures;
  std::vector<std::string> events;
  // Transport sink.
  std::vector<Completion> completions;
  std::vector<NodeEvent> node_events;
  int local_changes = 0;
  // Status service (key -> value), and every DNS query as "name/type".
  std::map<std::string, std::string> status;
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

  void init_timer_and_fd() {
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
  }

  void init_dns_and_status() {
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
  }

  void init_sinks() {
    strategy_.struct_size = sizeof strategy_;
    strategy_.set_nodes = [](const clusterd_host_t *h, const char *const *nodes, uint32_t n) {
      std::vector<std::string> v;
      for (uint32_t i = 0; i < n; ++i) v.emplace_back(nodes[i]);
      self(h)->reports.push_back(v);
      self(h)->events.push_back("set_nodes");
    };
    strategy_.node_seen = [](const clusterd_host_t *h, const char *) {
      self(h)->events.push_back("node_seen");
    };
    strategy_.node_lost = [](const clusterd_host_t *h, const char *) {
      self(h)->events.push_back("node_lost");
    };
    strategy_.discovery_failed = [](const clusterd_host_t *h, const char *reason) {
      self(h)->failures.push_back(reason);
      self(h)->events.push_back("discovery_failed");
    };
    strategy_.local_node = [](const clusterd_host_t *h) -> const char * {
      LoopHost *l = self(h);
      return l->local_node ? l->local_node->c_str() : nullptr;
    };
    transport_.struct_size = sizeof transport_;
    transport_.complete = [](const clusterd_host_t *h, clusterd_id_t op, clusterd_status_t st,
                             const char *m) {
      self(h)->completions.push_back({op, st, m != nullptr ? m : "", {}});
    };
    transport_.complete_list = [](const clusterd_host_t *h, clusterd_id_t op, clusterd_status_t st,
                                  const char *m, const char *const *nodes, uint32_t n) {
      Completion c{op, st, m != nullptr ? m : "", {}};
      for (uint32_t i = 0; i < n; ++i) c.nodes.emplace_back(nodes[i]);
      self(h)->completions.push_back(c);
    };
    transport_.node_up = [](const clusterd_host_t *h, const char *node) {
      self(h)->node_events.push_back({true, node, ""});
    };
    transport_.node_down = [](const clusterd_host_t *h, const char *node, const char *reason) {
      self(h)->node_events.push_back({false, node, reason != nullptr ? reason : ""});
    };
    transport_.local_changed = [](const clusterd_host_t *h) { ++self(h)->local_changes; };
  }

  bool dns_due() const {
    for (const auto &d : dns_) {
      auto it = dns_answers.find({d.second.name, d.second.type});
      if (it == dns_answers.end() || !it->second.hang) return true;
    }
    return false;
  }

  void turn(Clock::time_point deadline) {
    const auto now = Clock::now();
    auto wake = std::min(deadline, now + milliseconds(10));
    for (auto &t : timers_) wake = std::min(wake, t.second.due);
    if (dns_due()) wake = now;
    std::vector<pollfd> fds;
    std::vector<std::pair<bool, uint64_t>> ids;  // (test fd?, watch id or fd)
    fds.push_back(pollfd{wake_, POLLIN, 0});     // posted tasks
    ids.emplace_back(true, 0);
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
    const auto wait = std::chrono::ceil<milliseconds>(wake - now).count();
    const int n = poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait, 0)));
    for (std::size_t i = 1; n > 0 && i < fds.size(); ++i) {
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
    run_posted();
    answer_dns();
    fire_due_timers();
    if (each_turn) each_turn();
  }

  // Posted tasks, in order; a task may post again (it runs on a later turn).
  void run_posted() {
    uint64_t value = 0;
    if (read(wake_, &value, sizeof value) < 0) { /* nothing pending */
    }
    std::deque<std::pair<clusterd_task_fn, void *>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batch.swap(tasks_);
    }
    for (auto &[fn, ud] : batch) fn(ud);
  }

  // DNS answers (never from inside resolve(): here, on a later turn).
  void answer_dns() {
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
  }

  void fire_due_timers() {
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
  clusterd_strategy_sink_t strategy_{};
  clusterd_transport_sink_t transport_{};
  std::map<clusterd_id_t, TimerReg> timers_;
  std::map<clusterd_id_t, WatchReg> watches_;
  std::map<clusterd_id_t, DnsReg> dns_;
  std::map<int, TestFd> test_fds_;
  clusterd_id_t next_id_ = 1;
  // Shared with other threads (log, post), under mutex_.
  int wake_;
  mutable std::mutex mutex_;
  bool refuse_posts_ = false;
  std::deque<std::pair<clusterd_task_fn, void *>> tasks_;
  std::vector<std::string> logs_;
};

// ---- Config -------------------------------------------------------------------------------------

struct Duration {
  int64_t ms;  // -1 = infinity
};
// One value per option type: CLUSTERD_OPT_STRING, _INT, _BOOL, _DOUBLE, _DURATION, _STRING_LIST.
using Value = std::variant<std::string, int64_t, bool, double, Duration, std::vector<std::string>>;

// A config view over `values` (what the host would pass after validation and defaults). A getter
// of another type than the value's answers CLUSTERD_E_TYPE, an absent key CLUSTERD_E_NOT_FOUND.
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
    view.get_double = [](const clusterd_config_t *c, const char *k, double *out) {
      return get<double>(c, k, [&](double v) { *out = v; });
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
      bool in_range = false;
      const clusterd_status_t st = get<std::vector<std::string>>(c, k, [&](const auto &v) {
        in_range = i < v.size();
        if (in_range) *out = v[i].c_str();
      });
      return st == CLUSTERD_OK && !in_range ? CLUSTERD_E_INVALID_ARG : st;
    };
    view.is_set = [](const clusterd_config_t *c, const char *k) -> int32_t {
      return self(c)->values.count(k) != 0;
    };
    view.source_of = [](const clusterd_config_t *c, const char *k) -> const char * {
      const Config *cfg = self(c);
      if (cfg->values.count(k) == 0) return "";
      auto it = cfg->sources.find(k);
      return it != cfg->sources.end() ? it->second.c_str() : cfg->source.c_str();
    };
  }
  // Copies get their own view (pointing at the copy).
  Config(const Config &other) : Config(other.values) {
    source = other.source;
    sources = other.sources;
  }
  Config &operator=(const Config &other) {
    values = other.values;
    source = other.source;
    sources = other.sources;
    return *this;
  }

  Config &set(const std::string &key, Value v) {
    values[key] = std::move(v);
    return *this;
  }

  clusterd_config_t view{};
  // Every key in `values` counts as set (is_set 1), in the file at source_of: sources[key] if
  // there, else `source`; other keys are not set (is_set 0, source_of "").
  std::map<std::string, Value> values;
  std::string source = "test.toml:7:1";
  std::map<std::string, std::string> sources;

 private:
  static const Config *self(const clusterd_config_t *c) {
    return static_cast<const Config *>(c->config_data);
  }
  template <class T, class F>
  static clusterd_status_t get(const clusterd_config_t *c, const char *k, F &&f) {
    const auto &values = self(c)->values;
    auto it = values.find(k);
    if (it == values.end()) return CLUSTERD_E_NOT_FOUND;
    const T *v = std::get_if<T>(&it->second);
    if (v == nullptr) return CLUSTERD_E_TYPE;
    f(*v);
    return CLUSTERD_OK;
  }
};

namespace detail {

// The text of a TOML basic string literal ("..." with \" \\ \n \t escapes) at `text[*at]`.
inline std::optional<std::string> toml_string(const std::string &text, std::size_t *at) {
  std::size_t i = *at;
  if (i >= text.size() || text[i] != '"') return std::nullopt;
  std::string out;
  for (++i; i < text.size() && text[i] != '"'; ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      c = text[++i];
      if (c == 'n') c = '\n';
      if (c == 't') c = '\t';
    }
    out += c;
  }
  if (i >= text.size()) return std::nullopt;
  *at = i + 1;
  return out;
}

// A duration default ("250ms", "5s", "2m", "1h", "infinity") in ms.
inline std::optional<int64_t> duration_ms(const std::string &s) {
  if (s == "infinity") return -1;
  std::size_t end = 0;
  int64_t n = 0;
  try {
    n = std::stoll(s, &end);
  } catch (...) {
    return std::nullopt;
  }
  const std::string unit = s.substr(end);
  if (unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60 * 1000;
  if (unit == "h") return n * 60 * 60 * 1000;
  return std::nullopt;
}

// A TOML array of strings (["a", "b"], []).
inline std::optional<std::vector<std::string>> toml_string_list(const std::string &text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
  };
  if (text.empty() || text[i++] != '[') return std::nullopt;
  for (skip(); i < text.size() && text[i] != ']'; skip()) {
    auto s = toml_string(text, &i);
    if (!s) return std::nullopt;
    out.push_back(*s);
  }
  if (i + 1 != text.size()) return std::nullopt;
  return out;
}

}  // namespace detail

// The descriptor's defaults as config values (what the host fills in), for every option type.
inline std::map<std::string, Value> defaults_of(const clusterd_plugin_descriptor_t *d) {
  std::map<std::string, Value> out;
  for (uint32_t i = 0; i < d->option_count; ++i) {
    const clusterd_option_t &o = d->options[i];
    if (o.default_value == nullptr) continue;
    const std::string v = o.default_value;
    std::size_t at = 0;
    const std::optional<std::string> quoted = detail::toml_string(v, &at);
    std::optional<Value> value;
    try {
      switch (o.type) {
        case CLUSTERD_OPT_INT:
          value = int64_t{std::stoll(v)};
          break;
        case CLUSTERD_OPT_BOOL:
          if (v == "true" || v == "false") value = v == "true";
          break;
        case CLUSTERD_OPT_DOUBLE:
          value = std::stod(v);
          break;
        case CLUSTERD_OPT_STRING:
          if (quoted && at == v.size()) value = *quoted;
          break;
        case CLUSTERD_OPT_DURATION: {
          const auto ms = quoted && at == v.size() ? detail::duration_ms(*quoted)
                                                   : detail::duration_ms(v + "ms");
          if (ms) value = Duration{*ms};
          break;
        }
        case CLUSTERD_OPT_STRING_LIST:
          if (quoted && at == v.size()) {
            value = std::vector<std::string>{*quoted};  // a single string is a list of one
          } else if (auto list = detail::toml_string_list(v)) {
            value = *list;
          }
          break;
        default:
          break;
      }
    } catch (...) {
      value.reset();
    }
    if (value) {
      out[o.key] = *value;
    } else {
      ADD_FAILURE() << "unhandled default " << v << " of " << o.key;
    }
  }
  return out;
}

// The declaration of option `key` (ADD_FAILURE and a blank option when there is none), to test
// the constraints a plugin declares (ABI 1.3); the host's own tests check what they mean.
inline clusterd_option_t option_of(const clusterd_plugin_descriptor_t *d, const std::string &key) {
  for (uint32_t i = 0; i < d->option_count; ++i)
    if (key == d->options[i].key) return d->options[i];
  ADD_FAILURE() << "no option " << key;
  return clusterd_option_t{};
}

// What the plugin's validate() (ABI 1.3) reports for `cfg`, one "key: message" per problem
// (": message" for the table as a whole); empty when it has no validate().
inline std::vector<std::string> validate(const clusterd_plugin_descriptor_t *d, Config &cfg) {
  std::vector<std::string> out;
  if (!CLUSTERD_STRUCT_HAS(d, clusterd_plugin_descriptor_t, validate) || d->validate == nullptr)
    return out;
  clusterd_problems_t problems{};
  problems.struct_size = sizeof problems;
  problems.host_data = &out;
  problems.report = [](const clusterd_problems_t *p, const char *key, const char *message) {
    static_cast<std::vector<std::string> *>(p->host_data)
        ->push_back(std::string(key ? key : "") + ": " + (message ? message : ""));
  };
  d->validate(&cfg.view, &problems);
  return out;
}

// ---- The plugin under test ----------------------------------------------------------------------

// Opens the plugin library at `path` (never closed, like the host) and returns its descriptor.
inline const clusterd_plugin_descriptor_t *load_descriptor(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  EXPECT_NE(lib, nullptr) << dlerror();
  if (lib == nullptr) return nullptr;
  const auto *entry =
      static_cast<const clusterd_plugin_entry_t *>(dlsym(lib, CLUSTERD_ENTRY_SYMBOL));
  EXPECT_NE(entry, nullptr);
  return entry != nullptr ? entry->get_descriptor() : nullptr;
}

#ifdef CLUSTERD_TEST_PLUGIN
// The descriptor of the plugin this test target is built for (its .so, loaded once).
inline const clusterd_plugin_descriptor_t *descriptor() {
  static const clusterd_plugin_descriptor_t *d = load_descriptor(CLUSTERD_TEST_PLUGIN);
  return d;
}
#endif

// One instance on `host`: created by the constructor, stopped (if started) and destroyed by the
// destructor.
class Instance {
 public:
  Instance(const clusterd_plugin_descriptor_t *d, LoopHost &host) : host_(host) {
    plugin_ = d->create(host.table());
    EXPECT_NE(plugin_, nullptr);
  }
  ~Instance() {
    if (plugin_ == nullptr) return;
    stop();
    plugin_->destroy(plugin_);
  }
  Instance(const Instance &) = delete;
  Instance &operator=(const Instance &) = delete;

  // From init on, the host accepts this instance's posts.
  clusterd_status_t init(Config &cfg) {
    host_.refuse_posts(false);
    return plugin_->init(plugin_, &cfg.view);
  }
  clusterd_status_t start() {
    started_ = true;
    return plugin_->start(plugin_);
  }
  // Stops the instance if started, as the host does: posts fail from the start of stop(), and
  // tasks not run when it returns are dropped. Returns how long stop() took, in ms.
  double stop() {
    if (!started_) return 0;
    started_ = false;
    host_.refuse_posts(true);
    const auto t0 = Clock::now();
    plugin_->stop(plugin_);
    const double took = ms_since(t0);
    host_.drop_tasks();
    return took;
  }
  bool started() const { return started_; }

  const clusterd_strategy_t *strategy() const {
    return static_cast<const clusterd_strategy_t *>(
        plugin_->get_interface(plugin_, CLUSTERD_INTERFACE_STRATEGY));
  }
  const clusterd_transport_t *transport() const {
    return static_cast<const clusterd_transport_t *>(
        plugin_->get_interface(plugin_, CLUSTERD_INTERFACE_TRANSPORT));
  }
  clusterd_status_t refresh() {
    const clusterd_strategy_t *s = strategy();
    return s != nullptr && s->refresh != nullptr ? s->refresh(plugin_) : CLUSTERD_E_UNSUPPORTED;
  }
  std::string last_error() const {
    const char *e = plugin_->last_error(plugin_);
    return e != nullptr ? e : "";
  }
  clusterd_plugin_t *raw() const { return plugin_; }

 private:
  LoopHost &host_;
  clusterd_plugin_t *plugin_ = nullptr;
  bool started_ = false;
};

}  // namespace clusterd_test
