// Tests of the "command" transport: loads the built clusterd-command.so with dlopen and drives it
// with a small real event loop (poll + timers) that implements the host table it needs.
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <clusterd/clusterd.h>

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- A minimal loop host ----------------------------------------------------------------------

struct Completion {
  clusterd_id_t op;
  clusterd_status_t status;
  std::string message;
  std::vector<std::string> nodes;
};

class LoopHost {
 public:
  LoopHost() {
    table_.struct_size = sizeof table_;
    table_.abi_major = CLUSTERD_ABI_MAJOR;
    table_.abi_minor = CLUSTERD_ABI_MINOR;
    table_.host_version = "test";
    table_.instance_name = "transport test";
    table_.host_data = this;
    table_.log = [](const clusterd_host_t *h, int32_t level, const char *m) {
      self(h)->logs.push_back(std::to_string(level) + " " + m);
    };
    table_.get_service = [](const clusterd_host_t *h, const char *id) -> const void * {
      const std::string s(id);
      if (s == CLUSTERD_SERVICE_TIMER) return &self(h)->timer_svc_;
      if (s == CLUSTERD_SERVICE_FD) return &self(h)->fd_svc_;
      if (s == CLUSTERD_SERVICE_TRANSPORT_SINK) return &self(h)->sink_;
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
    sink_.struct_size = sizeof sink_;
    sink_.complete = [](const clusterd_host_t *h, clusterd_id_t op, clusterd_status_t st,
                        const char *m) {
      self(h)->completions.push_back({op, st, m != nullptr ? m : "", {}});
    };
    sink_.complete_list = [](const clusterd_host_t *h, clusterd_id_t op, clusterd_status_t st,
                             const char *m, const char *const *nodes, uint32_t n) {
      Completion c{op, st, m != nullptr ? m : "", {}};
      for (uint32_t i = 0; i < n; ++i) c.nodes.emplace_back(nodes[i]);
      self(h)->completions.push_back(c);
    };
    sink_.node_up = [](const clusterd_host_t *, const char *) {};
    sink_.node_down = [](const clusterd_host_t *, const char *, const char *) {};
    sink_.local_changed = [](const clusterd_host_t *) {};
  }

  const clusterd_host_t *table() const { return &table_; }
  std::size_t registrations() const { return timers_.size() + watches_.size(); }

  // Runs the loop until `done()` or `limit` passes. Returns done(). `done` is re-checked after
  // every dispatch and at least every 10 ms (for conditions outside the loop, like a file the
  // child writes).
  bool run_until(const std::function<bool()> &done, milliseconds limit = milliseconds(10000)) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      const auto now = Clock::now();
      if (now >= deadline) return false;
      auto wake = std::min(deadline, now + milliseconds(10));
      for (auto &t : timers_) wake = std::min(wake, t.second.due);
      std::vector<pollfd> fds;
      std::vector<clusterd_id_t> ids;
      for (auto &w : watches_) {
        short ev = 0;
        if (w.second.events & CLUSTERD_FD_READ) ev |= POLLIN;
        if (w.second.events & CLUSTERD_FD_WRITE) ev |= POLLOUT;
        fds.push_back(pollfd{w.second.fd, ev, 0});
        ids.push_back(w.first);
      }
      const auto wait = std::chrono::duration_cast<milliseconds>(wake - now).count();
      const int n =
          poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait, 0) + 1));
      if (n < 0 && errno != EINTR) return false;
      for (std::size_t i = 0; n > 0 && i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        auto it = watches_.find(ids[i]);
        if (it == watches_.end()) continue;  // unwatched by an earlier callback: never call it
        uint32_t ready = 0;
        if (fds[i].revents & (POLLIN | POLLHUP)) ready |= CLUSTERD_FD_READ;
        if (fds[i].revents & POLLOUT) ready |= CLUSTERD_FD_WRITE;
        if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) ready |= CLUSTERD_FD_ERROR;
        const WatchReg w = it->second;
        w.fn(w.ud, ids[i], w.fd, ready);
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
    return true;
  }

  std::vector<Completion> completions;
  std::vector<std::string> logs;

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
  static LoopHost *self(const clusterd_host_t *h) { return static_cast<LoopHost *>(h->host_data); }

  clusterd_host_t table_{};
  clusterd_timer_service_t timer_svc_{};
  clusterd_fd_service_t fd_svc_{};
  clusterd_transport_sink_t sink_{};
  std::map<clusterd_id_t, TimerReg> timers_;
  std::map<clusterd_id_t, WatchReg> watches_;
  clusterd_id_t next_id_ = 1;
};

// ---- Config ------------------------------------------------------------------------------------

using Value =
    std::variant<std::string, int64_t, std::vector<std::string>>;  // int64_t = duration ms

struct Config {
  Config() {
    view.struct_size = sizeof view;
    view.config_data = this;
    view.get_string = [](const clusterd_config_t *c, const char *k, const char **out) {
      return get<std::string>(c, k, [&](const std::string &v) { *out = v.c_str(); });
    };
    view.get_int = [](const clusterd_config_t *, const char *, int64_t *) {
      return CLUSTERD_E_TYPE;
    };
    view.get_bool = [](const clusterd_config_t *, const char *, int32_t *) {
      return CLUSTERD_E_TYPE;
    };
    view.get_double = [](const clusterd_config_t *, const char *, double *) {
      return CLUSTERD_E_TYPE;
    };
    view.get_duration_ms = [](const clusterd_config_t *c, const char *k, int64_t *out) {
      return get<int64_t>(c, k, [&](int64_t v) { *out = v; });
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
      return "test.toml:1:1";
    };
    values["timeout"] = int64_t{10000};  // the plugin's declared default
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
  clusterd_config_t view{};
  std::map<std::string, Value> values;
};

// ---- The plugin under test ---------------------------------------------------------------------

const clusterd_plugin_descriptor_t *descriptor() {
  static const clusterd_plugin_descriptor_t *d = [] {
    void *lib = dlopen(CLUSTERD_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);  // never closed, like the host
    EXPECT_NE(lib, nullptr) << dlerror();
    if (lib == nullptr) return static_cast<const clusterd_plugin_descriptor_t *>(nullptr);
    const auto *entry =
        static_cast<const clusterd_plugin_entry_t *>(dlsym(lib, CLUSTERD_ENTRY_SYMBOL));
    EXPECT_NE(entry, nullptr);
    return entry != nullptr ? entry->get_descriptor() : nullptr;
  }();
  return d;
}

std::vector<std::string> sh(const std::string &script) {
  return {"/bin/sh", "-c", script, "sh"};
}

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(descriptor(), nullptr);
    char tmpl[] = "/tmp/clusterd-command-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (plugin_ != nullptr) {
      if (started_) plugin_->stop(plugin_);
      plugin_->destroy(plugin_);
    }
    for (pid_t pid : strays_) kill(pid, SIGKILL);  // grandchildren the tests started on purpose
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // Creates, inits and starts an instance with `cfg`; returns init's status.
  clusterd_status_t start(Config &cfg) {
    plugin_ = descriptor()->create(host_.table());
    EXPECT_NE(plugin_, nullptr);
    const clusterd_status_t st = plugin_->init(plugin_, &cfg.view);
    if (st != CLUSTERD_OK) return st;
    EXPECT_EQ(plugin_->start(plugin_), CLUSTERD_OK);
    started_ = true;
    t_ = static_cast<const clusterd_transport_t *>(
        plugin_->get_interface(plugin_, CLUSTERD_INTERFACE_TRANSPORT));
    EXPECT_NE(t_, nullptr);
    return st;
  }
  std::string last_error() const {
    const char *e = plugin_->last_error(plugin_);
    return e != nullptr ? e : "";
  }
  std::vector<Completion> of(clusterd_id_t op) const {
    std::vector<Completion> out;
    for (const auto &c : host_.completions)
      if (c.op == op) out.push_back(c);
    return out;
  }
  bool wait_for(clusterd_id_t op, milliseconds limit = milliseconds(10000)) {
    return host_.run_until([&] { return !of(op).empty(); }, limit);
  }
  std::string pidfile(const std::string &name) const { return dir_ + "/" + name; }
  std::optional<pid_t> read_pid(const std::string &name) const {
    std::ifstream in(pidfile(name));
    long pid = 0;
    if (!(in >> pid) || pid <= 0) return std::nullopt;
    return static_cast<pid_t>(pid);
  }
  // True once `pid` no longer exists at all (killed AND reaped).
  static bool gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

  LoopHost host_;
  clusterd_plugin_t *plugin_ = nullptr;
  const clusterd_transport_t *t_ = nullptr;
  bool started_ = false;
  std::string dir_;
  std::vector<pid_t> strays_;
};

TEST_F(CommandTest, Descriptor) {
  const clusterd_plugin_descriptor_t *d = descriptor();
  EXPECT_STREQ(d->name, "command");
  EXPECT_EQ(d->kind, static_cast<uint32_t>(CLUSTERD_KIND_TRANSPORT));
  std::map<std::string, const clusterd_option_t *> opts;
  for (uint32_t i = 0; i < d->option_count; ++i) opts[d->options[i].key] = &d->options[i];
  ASSERT_EQ(opts.size(), 5u);
  EXPECT_EQ(opts["connect"]->flags & CLUSTERD_OPT_REQUIRED, CLUSTERD_OPT_REQUIRED);
  EXPECT_EQ(opts["connect"]->type, static_cast<uint32_t>(CLUSTERD_OPT_STRING_LIST));
  EXPECT_EQ(opts["disconnect"]->flags, 0u);
  EXPECT_EQ(opts["list_nodes"]->flags, 0u);
  EXPECT_EQ(opts["timeout"]->type, static_cast<uint32_t>(CLUSTERD_OPT_DURATION));
  EXPECT_STREQ(opts["timeout"]->default_value, "\"10s\"");
  EXPECT_EQ(opts["local_node"]->type, static_cast<uint32_t>(CLUSTERD_OPT_STRING));
}

TEST_F(CommandTest, ConnectPassesTheNodeAsLastArgument) {
  Config cfg;
  cfg.values["connect"] = sh("test \"$1\" = a@127.0.0.1 && test $# -eq 1");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "a@127.0.0.1"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  ASSERT_EQ(of(1).size(), 1u);
  EXPECT_EQ(of(1)[0].status, CLUSTERD_OK) << of(1)[0].message;
  EXPECT_TRUE(host_.run_until([&] { return host_.registrations() == 0; }))
      << "every watch and timer of a finished command is released";
}

TEST_F(CommandTest, NonZeroExitIsUnreachableWithCodeAndLastStderrLine) {
  Config cfg;
  cfg.values["connect"] = sh("echo first >&2; echo 'no route to b' >&2; echo out; exit 3");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 5, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(5));
  const Completion c = of(5).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_UNREACHABLE);
  EXPECT_NE(c.message.find("exited with code 3"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("no route to b"), std::string::npos) << c.message;
  EXPECT_EQ(c.message.find("first"), std::string::npos) << c.message;
}

TEST_F(CommandTest, StderrLineIsBounded) {
  Config cfg;
  cfg.values["connect"] = sh("head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  const Completion c = of(1).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_UNREACHABLE);
  EXPECT_LT(c.message.size(), 1000u);
}

TEST_F(CommandTest, KilledBySignalIsIo) {
  Config cfg;
  cfg.values["connect"] = sh("kill -TERM $$");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_E_IO);
  EXPECT_NE(of(1).at(0).message.find("signal 15"), std::string::npos) << of(1).at(0).message;
}

TEST_F(CommandTest, TimeoutKillsAndReaps) {
  Config cfg;
  cfg.values["connect"] = sh("echo $$ > '" + pidfile("pid") + "'; exec sleep 60");
  cfg.values["timeout"] = int64_t{1000};
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  const auto t0 = Clock::now();
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1, milliseconds(20000)));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(20));
  const Completion c = of(1).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_TIMEOUT);
  EXPECT_NE(c.message.find("timed out after 1s"), std::string::npos) << c.message;
  if (auto pid = read_pid("pid")) {  // absent only if killed before the shell wrote it
    EXPECT_TRUE(host_.run_until([&] { return gone(*pid); })) << "the killed child is reaped";
  }
  EXPECT_EQ(of(1).size(), 1u);
}

TEST_F(CommandTest, ListNodesParsesLines) {
  Config cfg;
  cfg.values["connect"] = sh("exit 0");
  cfg.values["list_nodes"] = sh("printf ' a@h \\n\\n\\tb@h\\r\\n   \\nc@h'");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_NE(t_->list_nodes, nullptr);
  ASSERT_EQ(t_->list_nodes(plugin_, 9), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(9));
  const Completion c = of(9).at(0);
  EXPECT_EQ(c.status, CLUSTERD_OK) << c.message;
  EXPECT_EQ(c.nodes, (std::vector<std::string>{"a@h", "b@h", "c@h"}));
}

TEST_F(CommandTest, ListNodesOutputIsBounded) {
  Config cfg;
  cfg.values["connect"] = sh("exit 0");
  cfg.values["list_nodes"] = {std::vector<std::string>{"yes", "a@h"}};  // endless output
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->list_nodes(plugin_, 2), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(2));
  const Completion c = of(2).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_IO);
  EXPECT_NE(c.message.find("1 MiB"), std::string::npos) << c.message;
  EXPECT_TRUE(c.nodes.empty());
}

TEST_F(CommandTest, UnconfiguredOperationsAreUnsupported) {
  Config cfg;
  cfg.values["connect"] = sh("exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_NE(t_->list_nodes, nullptr);
  EXPECT_EQ(t_->list_nodes(plugin_, 1), CLUSTERD_E_UNSUPPORTED);
  EXPECT_EQ(t_->disconnect(plugin_, 2, "a@h"), CLUSTERD_E_UNSUPPORTED);
  EXPECT_NE(last_error().find("disconnect"), std::string::npos);
  EXPECT_TRUE(host_.completions.empty()) << "a failed call is not completed";
  EXPECT_EQ(t_->local_node(plugin_), nullptr);
}

TEST_F(CommandTest, DisconnectAndLocalNode) {
  Config cfg;
  cfg.values["connect"] = sh("exit 1");
  cfg.values["disconnect"] = sh("test \"$1\" = gone@h");
  cfg.values["local_node"] = std::string("me@127.0.0.1");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  EXPECT_STREQ(t_->local_node(plugin_), "me@127.0.0.1");
  ASSERT_EQ(t_->disconnect(plugin_, 3, "gone@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(3));
  EXPECT_EQ(of(3).at(0).status, CLUSTERD_OK);
}

TEST_F(CommandTest, CancelKillsWithoutCompleting) {
  Config cfg;
  cfg.values["connect"] = sh("echo $$ > '" + pidfile("pid") + "'; exec sleep 60");
  cfg.values["list_nodes"] = sh("exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 4, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(host_.run_until([&] { return read_pid("pid").has_value(); }));
  const pid_t pid = *read_pid("pid");
  t_->cancel(plugin_, 4);
  EXPECT_TRUE(host_.run_until([&] { return gone(pid); })) << "cancel kills and reaps the child";
  // Something else completes later, so the loop had every chance to report op 4.
  ASSERT_EQ(t_->list_nodes(plugin_, 5), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(5));
  EXPECT_TRUE(of(4).empty());
}

TEST_F(CommandTest, StopCompletesKillsAndReapsEverything) {
  Config cfg;
  cfg.values["connect"] = sh("echo $$ > '" + pidfile("pid-") + "'\"$1\"; exec sleep 60");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "a"), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 2, "b"), CLUSTERD_OK);
  ASSERT_TRUE(host_.run_until([&] { return read_pid("pid-a") && read_pid("pid-b"); }));
  plugin_->stop(plugin_);
  started_ = false;
  for (const char *n : {"pid-a", "pid-b"})
    EXPECT_TRUE(gone(*read_pid(n))) << n << " reaped by stop()";
  ASSERT_EQ(of(1).size(), 1u);
  ASSERT_EQ(of(2).size(), 1u);
  EXPECT_EQ(of(1)[0].status, CLUSTERD_E_CANCELLED);
  EXPECT_EQ(host_.registrations(), 0u) << "stop() releases every watch and timer";
}

TEST_F(CommandTest, ParallelOperations) {
  Config cfg;
  cfg.values["connect"] = sh("case \"$1\" in *3*) exit 2;; esac; exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  for (clusterd_id_t op = 1; op <= 6; ++op)
    ASSERT_EQ(t_->connect(plugin_, op, ("n" + std::to_string(op) + "@h").c_str()), CLUSTERD_OK);
  ASSERT_TRUE(host_.run_until([&] { return host_.completions.size() >= 6; }));
  for (clusterd_id_t op = 1; op <= 6; ++op) {
    ASSERT_EQ(of(op).size(), 1u) << "op " << op;
    EXPECT_EQ(of(op)[0].status, op == 3 ? CLUSTERD_E_UNREACHABLE : CLUSTERD_OK) << "op " << op;
  }
}

TEST_F(CommandTest, ExitDoesNotWaitForGrandchildrenHoldingThePipes) {
  Config cfg;
  cfg.values["connect"] = sh("sleep 60 & echo $! > '" + pidfile("grandchild") + "'; exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1, milliseconds(20000)));
  if (auto pid = read_pid("grandchild")) strays_.push_back(*pid);
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_OK);
}

TEST_F(CommandTest, StdinIsDevNull) {
  Config cfg;
  cfg.values["connect"] = sh("n=$(cat | wc -c); test \"$n\" -eq 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_OK) << of(1).at(0).message;
}

TEST_F(CommandTest, MissingProgramCompletesWithIo) {
  Config cfg;
  cfg.values["connect"] = std::vector<std::string>{"/nonexistent/clusterd-connect"};
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_EQ(of(1).size(), 1u) << "completed from inside the call";
  EXPECT_EQ(of(1)[0].status, CLUSTERD_E_IO);
  EXPECT_NE(of(1)[0].message.find("/nonexistent/clusterd-connect"), std::string::npos);
}

TEST_F(CommandTest, NodeNamesThatLookLikeOptionsAreRefused) {
  Config cfg;
  cfg.values["connect"] = sh("exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  EXPECT_EQ(t_->connect(plugin_, 1, "-rf"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(t_->connect(plugin_, 2, "a\nb"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(t_->connect(plugin_, 3, ""), CLUSTERD_E_INVALID_ARG);
  EXPECT_TRUE(host_.completions.empty());
}

TEST_F(CommandTest, InitRejectsEmptyCommands) {
  Config cfg;
  cfg.values["connect"] = std::vector<std::string>{};
  EXPECT_EQ(start(cfg), CLUSTERD_E_CONFIG);
  EXPECT_NE(last_error().find("connect"), std::string::npos);
  EXPECT_NE(last_error().find("test.toml:1:1"), std::string::npos);
}

TEST_F(CommandTest, InitRejectsZeroTimeout) {
  Config cfg;
  cfg.values["connect"] = sh("exit 0");
  cfg.values["timeout"] = int64_t{0};
  EXPECT_EQ(start(cfg), CLUSTERD_E_CONFIG);
}

TEST_F(CommandTest, InfiniteTimeoutArmsNoTimer) {
  Config cfg;
  cfg.values["connect"] = sh("exit 0");
  cfg.values["timeout"] = int64_t{-1};
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_OK);
}

}  // namespace
