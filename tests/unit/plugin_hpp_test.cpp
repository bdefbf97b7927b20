// Tests of clusterd/plugin.hpp against a fake host table: descriptor and option emission,
// trampolines (exceptions → status + last_error, NULL tolerance), typed config, RAII handles.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <clusterd/plugin.hpp>

#include "plugin_test_host.hpp"

namespace {

using clusterd::Id;
using clusterd::Status;
using std::chrono::milliseconds;

// ---- Fake host ------------------------------------------------------------------------------

struct FakeHost {
  struct Reg {
    // timer
    uint64_t delay = 0, period = 0;
    clusterd_timer_fn timer_fn = nullptr;
    // fd
    int fd = -1;
    uint32_t events = 0;
    clusterd_fd_fn fd_fn = nullptr;
    // work
    clusterd_work_fn work = nullptr;
    clusterd_work_done_fn work_done = nullptr;
    // http
    std::string method, url, body, ca_file;
    std::vector<std::string> headers;
    uint32_t flags = 0;
    uint64_t timeout_ms = 0, max_body = 0;
    clusterd_http_done_fn http_done = nullptr;
    clusterd_http_data_fn http_data = nullptr;
    // dns
    std::string name, server;
    uint32_t type = 0;
    clusterd_dns_done_fn dns_done = nullptr;
    // process
    clusterd_process_done_fn process_done = nullptr;
    clusterd_process_output_fn process_output = nullptr;
    void *user_data = nullptr;
  };

  FakeHost() {
    table.struct_size = sizeof table;
    table.abi_major = CLUSTERD_ABI_MAJOR;
    table.abi_minor = CLUSTERD_ABI_MINOR;
    table.host_version = "9.9.9";
    table.instance_name = "topology test";
    table.host_data = this;
    table.log = [](const clusterd_host_t *h, int32_t level, const char *m) {
      self(h)->logs.emplace_back(level, m);
    };
    table.get_service = [](const clusterd_host_t *h, const char *id) -> const void * {
      FakeHost *f = self(h);
      const std::string s(id);
      if (f->hidden.count(s) != 0) return nullptr;
      if (s == CLUSTERD_SERVICE_TIMER) return &f->timer_svc;
      if (s == CLUSTERD_SERVICE_FD) return &f->fd_svc;
      if (s == CLUSTERD_SERVICE_WORK) return &f->work_svc;
      if (s == CLUSTERD_SERVICE_HTTP) return &f->http_svc;
      if (s == CLUSTERD_SERVICE_DNS) return &f->dns_svc;
      if (s == CLUSTERD_SERVICE_PROCESS) return &f->process_svc;
      if (s == CLUSTERD_SERVICE_STATUS) return &f->status_svc;
      if (s == CLUSTERD_SERVICE_STRATEGY_SINK) return &f->strategy_sink;
      if (s == CLUSTERD_SERVICE_TRANSPORT_SINK) return &f->transport_sink;
      return nullptr;
    };
    table.post = [](const clusterd_host_t *h, clusterd_task_fn fn, void *ud) -> Status {
      FakeHost *f = self(h);
      if (f->post_result != CLUSTERD_OK) return f->post_result;
      f->posted.emplace_back(fn, ud);
      return CLUSTERD_OK;
    };

    timer_svc.struct_size = sizeof timer_svc;
    timer_svc.add = [](const clusterd_host_t *h, uint64_t delay, uint64_t period,
                       clusterd_timer_fn fn, void *ud, clusterd_id_t *out) -> Status {
      FakeHost *f = self(h);
      if (f->fail_next != CLUSTERD_OK) return std::exchange(f->fail_next, CLUSTERD_OK);
      Reg r;
      r.delay = delay;
      r.period = period;
      r.timer_fn = fn;
      r.user_data = ud;
      *out = f->add(r);
      return CLUSTERD_OK;
    };
    timer_svc.cancel = [](const clusterd_host_t *h, clusterd_id_t id) { self(h)->cancel(id); };

    fd_svc.struct_size = sizeof fd_svc;
    fd_svc.watch = [](const clusterd_host_t *h, int fd, uint32_t events, clusterd_fd_fn fn,
                      void *ud, clusterd_id_t *out) -> Status {
      Reg r;
      r.fd = fd;
      r.events = events;
      r.fd_fn = fn;
      r.user_data = ud;
      *out = self(h)->add(r);
      return CLUSTERD_OK;
    };
    fd_svc.modify = [](const clusterd_host_t *h, clusterd_id_t id, uint32_t events) -> Status {
      auto &regs = self(h)->regs;
      if (regs.count(id) == 0) return CLUSTERD_E_NOT_FOUND;
      regs[id].events = events;
      return CLUSTERD_OK;
    };
    fd_svc.unwatch = [](const clusterd_host_t *h, clusterd_id_t id) { self(h)->cancel(id); };

    work_svc.struct_size = sizeof work_svc;
    work_svc.submit = [](const clusterd_host_t *h, clusterd_work_fn work,
                         clusterd_work_done_fn done, void *ud, clusterd_id_t *out) -> Status {
      Reg r;
      r.work = work;
      r.work_done = done;
      r.user_data = ud;
      *out = self(h)->add(r);
      return CLUSTERD_OK;
    };
    work_svc.cancel = [](const clusterd_host_t *h, clusterd_id_t id) -> Status {
      FakeHost *f = self(h);
      f->cancel(id);
      return f->work_cancel_result;
    };

    http_svc.struct_size = sizeof http_svc;
    http_svc.request = [](const clusterd_host_t *h, const clusterd_http_request_t *req,
                          clusterd_http_done_fn done, void *ud, clusterd_id_t *out) -> Status {
      Reg r;
      r.method = req->method != nullptr ? req->method : "(null)";
      r.url = req->url;
      for (uint32_t i = 0; i < req->header_count; ++i) r.headers.emplace_back(req->headers[i]);
      r.body.assign(req->body != nullptr ? req->body : "", req->body_length);
      r.flags = req->flags;
      r.timeout_ms = req->timeout_ms;
      r.max_body = req->max_body_bytes;
      r.ca_file = req->ca_file != nullptr ? req->ca_file : "";
      r.http_done = done;
      r.http_data = req->on_data;
      r.user_data = ud;
      *out = self(h)->add(r);
      return CLUSTERD_OK;
    };
    http_svc.cancel = [](const clusterd_host_t *h, clusterd_id_t id) { self(h)->cancel(id); };

    dns_svc.struct_size = sizeof dns_svc;
    dns_svc.resolve = [](const clusterd_host_t *h, const clusterd_dns_query_t *q,
                         clusterd_dns_done_fn done, void *ud, clusterd_id_t *out) -> Status {
      Reg r;
      r.name = q->name;
      r.server = q->server != nullptr ? q->server : "";
      r.type = q->type;
      r.timeout_ms = q->timeout_ms;
      r.dns_done = done;
      r.user_data = ud;
      *out = self(h)->add(r);
      return CLUSTERD_OK;
    };
    dns_svc.cancel = [](const clusterd_host_t *h, clusterd_id_t id) { self(h)->cancel(id); };

    process_svc.struct_size = sizeof process_svc;
    process_svc.spawn = [](const clusterd_host_t *h, const clusterd_process_request_t *q,
                           clusterd_process_done_fn done, void *ud, clusterd_id_t *out) -> Status {
      Reg r;
      r.name = q->argv[0];
      r.process_done = done;
      r.process_output = q->output;
      r.user_data = ud;
      *out = self(h)->add(r);
      return CLUSTERD_OK;
    };
    process_svc.cancel = [](const clusterd_host_t *h, clusterd_id_t id) { self(h)->cancel(id); };

    status_svc.struct_size = sizeof status_svc;
    status_svc.set = [](const clusterd_host_t *h, const char *key, const char *value) {
      if (value != nullptr) {
        self(h)->status[key] = value;
      } else {
        self(h)->status.erase(key);
      }
    };

    strategy_sink.struct_size = sizeof strategy_sink;
    strategy_sink.set_nodes = [](const clusterd_host_t *h, const char *const *nodes, uint32_t n) {
      std::vector<std::string> v;
      for (uint32_t i = 0; i < n; ++i) v.emplace_back(nodes[i]);
      self(h)->reports.push_back(v);
    };
    strategy_sink.node_seen = [](const clusterd_host_t *h, const char *n) {
      self(h)->events.push_back(std::string("seen ") + n);
    };
    strategy_sink.node_lost = [](const clusterd_host_t *h, const char *n) {
      self(h)->events.push_back(std::string("lost ") + n);
    };
    strategy_sink.discovery_failed = [](const clusterd_host_t *h, const char *r) {
      self(h)->events.push_back(std::string("failed ") + r);
    };
    strategy_sink.local_node = [](const clusterd_host_t *h) -> const char * {
      return self(h)->local.empty() ? nullptr : self(h)->local.c_str();
    };

    transport_sink.struct_size = sizeof transport_sink;
    transport_sink.complete = [](const clusterd_host_t *h, clusterd_id_t op, Status st,
                                 const char *m) {
      self(h)->events.push_back("complete " + std::to_string(op) + " " + std::to_string(st) + " " +
                                (m != nullptr ? m : "(null)"));
    };
    transport_sink.complete_list = [](const clusterd_host_t *h, clusterd_id_t op, Status st,
                                      const char *m, const char *const *nodes, uint32_t n) {
      std::string e = "list " + std::to_string(op) + " " + std::to_string(st) + " " +
                      (m != nullptr ? m : "(null)");
      for (uint32_t i = 0; i < n; ++i) e += std::string(" ") + nodes[i];
      self(h)->events.push_back(e);
    };
    transport_sink.node_up = [](const clusterd_host_t *h, const char *n) {
      self(h)->events.push_back(std::string("up ") + n);
    };
    transport_sink.node_down = [](const clusterd_host_t *h, const char *n, const char *r) {
      self(h)->events.push_back(std::string("down ") + n + " " + (r != nullptr ? r : "(null)"));
    };
    transport_sink.local_changed = [](const clusterd_host_t *h) {
      self(h)->events.push_back("local_changed");
    };
  }

  static FakeHost *self(const clusterd_host_t *h) { return static_cast<FakeHost *>(h->host_data); }

  Id add(const Reg &r) {
    const Id id = next_id++;
    regs[id] = r;
    return id;
  }
  void cancel(Id id) {
    cancelled.push_back(id);
    regs.erase(id);
  }
  // The only live registration (most tests make one).
  Id only() const {
    EXPECT_EQ(regs.size(), 1u);
    return regs.empty() ? 0 : regs.begin()->first;
  }
  void fire_timer(Id id) {
    const Reg r = regs.at(id);
    if (r.period == 0) regs.erase(id);
    r.timer_fn(r.user_data, id);
  }
  void fire_fd(Id id, uint32_t events) {
    const Reg r = regs.at(id);
    r.fd_fn(r.user_data, id, r.fd, events);
  }
  void run_posted() {
    auto tasks = std::move(posted);
    posted.clear();
    for (auto &t : tasks) t.first(t.second);
  }
  bool any_error_logged() const {
    for (const auto &l : logs)
      if (l.first == CLUSTERD_LOG_ERROR) return true;
    return false;
  }

  clusterd_host_t table{};
  clusterd_timer_service_t timer_svc{};
  clusterd_fd_service_t fd_svc{};
  clusterd_work_service_t work_svc{};
  clusterd_http_service_t http_svc{};
  clusterd_dns_service_t dns_svc{};
  clusterd_process_service_t process_svc{};
  clusterd_status_service_t status_svc{};
  clusterd_strategy_sink_t strategy_sink{};
  clusterd_transport_sink_t transport_sink{};

  std::map<Id, Reg> regs;
  std::vector<Id> cancelled;
  Id next_id = 1;
  Status fail_next = CLUSTERD_OK;
  Status work_cancel_result = CLUSTERD_OK;
  Status post_result = CLUSTERD_OK;
  std::vector<std::pair<clusterd_task_fn, void *>> posted;
  std::vector<std::pair<int32_t, std::string>> logs;
  std::map<std::string, std::string> status;
  std::vector<std::vector<std::string>> reports;
  std::vector<std::string> events;
  std::set<std::string> hidden;
  std::string local;
};

// ---- Fake config ------------------------------------------------------------------------------

// The config view shared with the plugin tests (tests/support/plugin_test_host.hpp).
using FakeConfig = clusterd_test::Config;
using clusterd_test::Duration;

// ---- Plugins under test ----------------------------------------------------------------------

// What the test strategy does in each call, chosen by the test.
enum class Throw { kNone, kError, kStd, kInt, kBadAlloc };

[[noreturn]] void do_throw(Throw t) {
  switch (t) {
    case Throw::kError:
      throw clusterd::Error(CLUSTERD_E_CONFIG, "bad hosts");
    case Throw::kStd:
      throw std::runtime_error("std failure");
    case Throw::kBadAlloc:
      throw std::bad_alloc();
    case Throw::kInt:
      throw 42;
    case Throw::kNone:
      break;
  }
  throw 0;
}

class TestStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "test_strategy";
  static constexpr const char *kVersion = "1.2.3";
  static constexpr const char *kDescription = "A strategy for tests";
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr const char *kAliases[] = {"Test.Strategy", "Elixir.Test.Strategy"};
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::required(clusterd::option::string_list("nodes", "Nodes to report")),
      clusterd::option::duration("interval", "How often", "\"5s\""),
      clusterd::option::secret(clusterd::option::string("token", "API token")),
      clusterd::option::choices(clusterd::option::string("mode", "Mode", "\"ip\""), "ip|dns"),
  };

  static inline Throw next_throw = Throw::kNone;

  void init(const clusterd::Config &config) override {
    if (next_throw != Throw::kNone) do_throw(std::exchange(next_throw, Throw::kNone));
    nodes_ = config.strings("nodes");
  }
  void start() override {
    if (next_throw != Throw::kNone) do_throw(std::exchange(next_throw, Throw::kNone));
    report_nodes(nodes_);
    timer_ = clusterd::Timer::every(host(), milliseconds(100), [this] { report_nodes(nodes_); });
  }
  void stop() override {
    if (keep_timer_on_stop) return;  // leaves it to the host, like a forgetful plugin
    timer_.reset();
  }
  void refresh() override {
    if (next_throw != Throw::kNone) do_throw(std::exchange(next_throw, Throw::kNone));
    report_nodes(nodes_);
  }

  static inline bool keep_timer_on_stop = false;
  std::vector<std::string> nodes_;
  clusterd::Timer timer_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(TestStrategy);

namespace {

class MinimalStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "minimal";
  static constexpr const char *kVersion = "0.0.1";
};

class TestTransport final : public clusterd::Transport {
 public:
  static constexpr const char *kName = "test_transport";
  static constexpr const char *kVersion = "2.0.0";

  void connect(Id op, std::string_view node) override {
    if (node == "throw") throw clusterd::Error(CLUSTERD_E_UNREACHABLE, "cannot reach");
    complete(op, CLUSTERD_OK);  // from inside the call: allowed
  }
  void disconnect(Id op, std::string_view node) override {
    complete(op, CLUSTERD_E_NOT_FOUND, std::string(node) + " not connected");
  }
  void list_nodes(Id op) override {
    if (decline_list) throw clusterd::Error(CLUSTERD_E_UNSUPPORTED, "no list command");
    complete_list(op, CLUSTERD_OK, {}, {"a@h", "b@h"});
  }
  void cancel(Id op) override { cancelled.push_back(op); }
  std::optional<std::string> local_node() override { return local; }

  bool decline_list = false;
  std::vector<Id> cancelled;
  std::optional<std::string> local;
};

class ConnectOnlyTransport final : public clusterd::Transport {
 public:
  static constexpr const char *kName = "connect_only";
  static constexpr const char *kVersion = "1.0.0";
  void connect(Id op, std::string_view) override { complete(op, CLUSTERD_OK); }
  void disconnect(Id op, std::string_view) override { complete(op, CLUSTERD_OK); }
};

// Control with and without read-only commands (ABI 1.4).
class ControlTransport : public clusterd::Transport {
 public:
  static constexpr const char *kName = "control_transport";
  static constexpr const char *kVersion = "1.0.0";
  void connect(Id op, std::string_view) override { complete(op, CLUSTERD_OK); }
  void disconnect(Id op, std::string_view) override { complete(op, CLUSTERD_OK); }
  void control_request(Id session, std::string_view) override { control_end(session); }
};
class ReadingTransport final : public ControlTransport {
 public:
  static constexpr const char *kName = "reading_transport";
  static constexpr const char *kReadOnlyCommands[] = {"members", "subscribe"};
};

// Overrides declared private (a common style) are still detected.
class PrivateOverrides final : public clusterd::Transport {
 public:
  static constexpr const char *kName = "private_overrides";
  static constexpr const char *kVersion = "1.0.0";

 private:
  void connect(Id op, std::string_view) override { complete(op, CLUSTERD_OK); }
  void disconnect(Id op, std::string_view) override { complete(op, CLUSTERD_OK); }
  void list_nodes(Id op) override { complete_list(op, CLUSTERD_OK, {}, {}); }
  std::optional<std::string> local_node() override { return "private@h"; }
};
static_assert(clusterd::detail::Exporter<PrivateOverrides>::kTransportInterface.cancel == nullptr);

using StrategyExport = clusterd::detail::Exporter<TestStrategy>;
using TransportExport = clusterd::detail::Exporter<TestTransport>;

// A live instance of plugin T on a fake host, destroyed at scope exit.
template <class T>
struct Instance {
  explicit Instance(FakeHost &host) {
    raw = clusterd::detail::Exporter<T>::kDescriptor.create(&host.table);
    EXPECT_NE(raw, nullptr);
  }
  ~Instance() {
    if (raw != nullptr) raw->destroy(raw);
  }
  T &object() { return *static_cast<T *>(static_cast<clusterd::Plugin *>(raw->plugin_data)); }
  template <class I>
  const I *iface(const char *id) {
    return static_cast<const I *>(raw->get_interface(raw, id));
  }
  clusterd_plugin_t *raw = nullptr;
};

// ---- Descriptor and entry --------------------------------------------------------------------

TEST(PluginHppDescriptor, EntrySymbolDescribesThePlugin) {
  const clusterd_plugin_entry_t &entry = clusterd_plugin_entry_v1;
  EXPECT_EQ(entry.struct_size, sizeof(clusterd_plugin_entry_t));
  EXPECT_EQ(entry.abi_major, static_cast<uint32_t>(CLUSTERD_ABI_MAJOR));
  EXPECT_EQ(entry.abi_minor, static_cast<uint32_t>(CLUSTERD_ABI_MINOR));
  EXPECT_EQ(entry.init, nullptr);
  EXPECT_EQ(entry.deinit, nullptr);
  ASSERT_NE(entry.get_descriptor, nullptr);
  const clusterd_plugin_descriptor_t *d = entry.get_descriptor();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d, &StrategyExport::kDescriptor);
  EXPECT_EQ(d->struct_size, sizeof(clusterd_plugin_descriptor_t));
  EXPECT_EQ(d->kind, static_cast<uint32_t>(CLUSTERD_KIND_STRATEGY));
  EXPECT_EQ(d->flags, CLUSTERD_PLUGIN_DISCONNECTS_REMOVED);
  EXPECT_STREQ(d->name, "test_strategy");
  EXPECT_STREQ(d->version, "1.2.3");
  EXPECT_STREQ(d->description, "A strategy for tests");
  ASSERT_NE(d->aliases, nullptr);
  EXPECT_STREQ(d->aliases[0], "Test.Strategy");
  EXPECT_STREQ(d->aliases[1], "Elixir.Test.Strategy");
  EXPECT_EQ(d->aliases[2], nullptr);
  EXPECT_NE(d->create, nullptr);
}

TEST(PluginHppDescriptor, OptionsAreEmittedAsDeclared) {
  const clusterd_plugin_descriptor_t &d = StrategyExport::kDescriptor;
  ASSERT_EQ(d.option_count, 4u);
  ASSERT_EQ(d.options, TestStrategy::kOptions);
  for (uint32_t i = 0; i < d.option_count; ++i) {
    EXPECT_EQ(d.options[i].struct_size, sizeof(clusterd_option_t));
    EXPECT_EQ(d.options[i].reserved, 0u);
  }
  EXPECT_STREQ(d.options[0].key, "nodes");
  EXPECT_EQ(d.options[0].type, static_cast<uint32_t>(CLUSTERD_OPT_STRING_LIST));
  EXPECT_EQ(d.options[0].flags, CLUSTERD_OPT_REQUIRED);
  EXPECT_EQ(d.options[0].default_value, nullptr);
  EXPECT_STREQ(d.options[0].description, "Nodes to report");
  EXPECT_EQ(d.options[1].type, static_cast<uint32_t>(CLUSTERD_OPT_DURATION));
  EXPECT_STREQ(d.options[1].default_value, "\"5s\"");
  EXPECT_EQ(d.options[1].flags, 0u);
  EXPECT_EQ(d.options[2].flags, CLUSTERD_OPT_SECRET);
  EXPECT_STREQ(d.options[3].choices, "ip|dns");
  EXPECT_STREQ(d.options[3].default_value, "\"ip\"");
}

TEST(PluginHppDescriptor, DefaultsForOptionalMembers) {
  const clusterd_plugin_descriptor_t &d = TransportExport::kDescriptor;
  EXPECT_EQ(d.kind, static_cast<uint32_t>(CLUSTERD_KIND_TRANSPORT));
  EXPECT_EQ(d.flags, 0u);
  EXPECT_EQ(d.option_count, 0u);
  EXPECT_EQ(d.options, nullptr);
  EXPECT_EQ(d.aliases, nullptr);
  EXPECT_STREQ(d.description, "");
  EXPECT_STREQ(d.name, "test_transport");
}

TEST(PluginHppDescriptor, OptionHelpersAreConstantExpressions) {
  constexpr clusterd_option_t o = clusterd::option::secret(
      clusterd::option::required(clusterd::option::integer("port", "Port")));
  static_assert(o.flags == (CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_SECRET));
  static_assert(o.type == CLUSTERD_OPT_INT);
  static_assert(clusterd::detail::is_snake_name("k8s_api_2"));
  static_assert(!clusterd::detail::is_snake_name("Bad-Name"));
  static_assert(!clusterd::detail::is_snake_name(""));
  constexpr clusterd_option_t dup[] = {clusterd::option::string("a", "x"),
                                       clusterd::option::string("a", "y")};
  static_assert(!clusterd::detail::options_valid(dup));
  constexpr clusterd_option_t req_default[] = {
      clusterd::option::required(clusterd::option::string("a", "x", "\"v\""))};
  static_assert(!clusterd::detail::options_valid(req_default));
  constexpr clusterd_option_t secret_file[] = {
      clusterd::option::secret(clusterd::option::string("token", "x")),
      clusterd::option::string("token_file", "y")};
  static_assert(!clusterd::detail::options_valid(secret_file));
  constexpr clusterd_option_t plain_file[] = {clusterd::option::string("token", "x"),
                                              clusterd::option::string("token_file", "y")};
  static_assert(clusterd::detail::options_valid(plain_file));
  EXPECT_EQ(o.struct_size, sizeof(clusterd_option_t));
}

TEST(PluginHppDescriptor, OptionalOperationsAreNullUnlessOverridden) {
  FakeHost host;
  Instance<TestTransport> full(host);
  const auto *t = full.iface<clusterd_transport_t>(CLUSTERD_INTERFACE_TRANSPORT);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->struct_size, sizeof(clusterd_transport_t));
  EXPECT_NE(t->connect, nullptr);
  EXPECT_NE(t->disconnect, nullptr);
  EXPECT_NE(t->list_nodes, nullptr);
  EXPECT_NE(t->cancel, nullptr);
  EXPECT_NE(t->local_node, nullptr);
  EXPECT_EQ(full.iface<void>(CLUSTERD_INTERFACE_STRATEGY), nullptr);

  Instance<ConnectOnlyTransport> small(host);
  const auto *c = small.iface<clusterd_transport_t>(CLUSTERD_INTERFACE_TRANSPORT);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->connect, nullptr);
  EXPECT_EQ(c->list_nodes, nullptr);
  EXPECT_EQ(c->cancel, nullptr);
  EXPECT_EQ(c->local_node, nullptr);

  Instance<PrivateOverrides> priv(host);
  const auto *pi = priv.iface<clusterd_transport_t>(CLUSTERD_INTERFACE_TRANSPORT);
  EXPECT_NE(pi->list_nodes, nullptr);
  EXPECT_EQ(pi->cancel, nullptr);
  ASSERT_NE(pi->local_node, nullptr);
  EXPECT_STREQ(pi->local_node(priv.raw), "private@h");
  EXPECT_EQ(pi->list_nodes(priv.raw, 3), CLUSTERD_OK);
  EXPECT_EQ(host.events.back(), "list 3 0 (null)");

  Instance<MinimalStrategy> minimal(host);
  const auto *s = minimal.iface<clusterd_strategy_t>(CLUSTERD_INTERFACE_STRATEGY);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->refresh, nullptr);
  Instance<TestStrategy> strategy(host);
  EXPECT_NE(strategy.iface<clusterd_strategy_t>(CLUSTERD_INTERFACE_STRATEGY)->refresh, nullptr);
}

TEST(PluginHppDescriptor, ReadOnlyCommandsAreANullTerminatedList) {
  FakeHost host;
  Instance<ReadingTransport> reading(host);
  const auto *c = reading.iface<clusterd_control_t>(CLUSTERD_INTERFACE_CONTROL);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->struct_size, sizeof(clusterd_control_t));
  ASSERT_NE(c->read_only_commands, nullptr);
  EXPECT_STREQ(c->read_only_commands[0], "members");
  EXPECT_STREQ(c->read_only_commands[1], "subscribe");
  EXPECT_EQ(c->read_only_commands[2], nullptr);

  Instance<ControlTransport> acting(host);  // no list: every command changes state
  const auto *a = acting.iface<clusterd_control_t>(CLUSTERD_INTERFACE_CONTROL);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->read_only_commands, nullptr);
  Instance<TestTransport> none(host);  // no control at all
  EXPECT_EQ(none.iface<void>(CLUSTERD_INTERFACE_CONTROL), nullptr);
}

// ---- Trampolines -----------------------------------------------------------------------------

TEST(PluginHppTrampolines, LifecycleReachesTheSinks) {
  FakeHost host;
  FakeConfig cfg;
  cfg.set("nodes", std::vector<std::string>{"a@h", "b@h"});
  Instance<TestStrategy> p(host);
  ASSERT_EQ(p.raw->struct_size, sizeof(clusterd_plugin_t));
  EXPECT_TRUE(host.regs.empty()) << "create() must not use the host";
  ASSERT_EQ(p.raw->init(p.raw, &cfg.view), CLUSTERD_OK);
  ASSERT_EQ(p.raw->start(p.raw), CLUSTERD_OK);
  ASSERT_EQ(host.reports.size(), 1u);
  EXPECT_EQ(host.reports[0], (std::vector<std::string>{"a@h", "b@h"}));
  const auto *s = p.iface<clusterd_strategy_t>(CLUSTERD_INTERFACE_STRATEGY);
  ASSERT_EQ(s->refresh(p.raw), CLUSTERD_OK);
  EXPECT_EQ(host.reports.size(), 2u);
  host.fire_timer(host.only());
  EXPECT_EQ(host.reports.size(), 3u);
  const Id timer = host.only();
  p.raw->stop(p.raw);
  EXPECT_EQ(host.cancelled, std::vector<Id>{timer});
  EXPECT_EQ(p.raw->last_error(p.raw), nullptr);
}

TEST(PluginHppTrampolines, ExceptionsBecomeStatusAndLastError) {
  FakeHost host;
  FakeConfig cfg;
  cfg.set("nodes", std::vector<std::string>{});
  Instance<TestStrategy> p(host);
  const auto *s = p.iface<clusterd_strategy_t>(CLUSTERD_INTERFACE_STRATEGY);

  TestStrategy::next_throw = Throw::kError;
  EXPECT_EQ(p.raw->init(p.raw, &cfg.view), CLUSTERD_E_CONFIG);
  EXPECT_STREQ(p.raw->last_error(p.raw), "bad hosts");

  ASSERT_EQ(p.raw->init(p.raw, &cfg.view), CLUSTERD_OK);
  EXPECT_EQ(p.raw->last_error(p.raw), nullptr) << "a successful call clears last_error";

  TestStrategy::next_throw = Throw::kStd;
  EXPECT_EQ(p.raw->start(p.raw), CLUSTERD_E_GENERIC);
  EXPECT_STREQ(p.raw->last_error(p.raw), "std failure");

  TestStrategy::next_throw = Throw::kInt;
  EXPECT_EQ(s->refresh(p.raw), CLUSTERD_E_GENERIC);
  EXPECT_STREQ(p.raw->last_error(p.raw), "unknown exception");

  TestStrategy::next_throw = Throw::kBadAlloc;
  EXPECT_EQ(s->refresh(p.raw), CLUSTERD_E_NO_MEMORY);
  EXPECT_STREQ(p.raw->last_error(p.raw), "out of memory");
  p.raw->stop(p.raw);
}

TEST(PluginHppTrampolines, ErrorNeverReportsSuccess) {
  EXPECT_EQ(clusterd::Error(CLUSTERD_OK, "x").status(), CLUSTERD_E_GENERIC);
  EXPECT_EQ(clusterd::Error(5, "x").status(), CLUSTERD_E_GENERIC);
  EXPECT_EQ(clusterd::Error(CLUSTERD_E_TIMEOUT, "x").status(), CLUSTERD_E_TIMEOUT);
}

TEST(PluginHppTrampolines, ToleratesNull) {
  FakeHost host;
  FakeConfig cfg;
  EXPECT_EQ(StrategyExport::kDescriptor.create(nullptr), nullptr);
  Instance<TestStrategy> p(host);
  const clusterd_plugin_t &raw = *p.raw;
  EXPECT_EQ(raw.init(nullptr, &cfg.view), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(raw.init(p.raw, nullptr), CLUSTERD_E_INVALID_ARG);
  EXPECT_NE(raw.last_error(p.raw), nullptr);
  EXPECT_EQ(raw.start(nullptr), CLUSTERD_E_INVALID_ARG);
  raw.stop(nullptr);
  raw.destroy(nullptr);
  EXPECT_EQ(raw.last_error(nullptr), nullptr);
  EXPECT_EQ(raw.get_interface(nullptr, CLUSTERD_INTERFACE_STRATEGY), nullptr);
  EXPECT_EQ(raw.get_interface(p.raw, nullptr), nullptr);
  EXPECT_EQ(raw.get_interface(p.raw, "clusterd.unknown/1"), nullptr);
  EXPECT_EQ(p.iface<clusterd_strategy_t>(CLUSTERD_INTERFACE_STRATEGY)->refresh(nullptr),
            CLUSTERD_E_INVALID_ARG);

  Instance<TestTransport> t(host);
  const auto *ti = t.iface<clusterd_transport_t>(CLUSTERD_INTERFACE_TRANSPORT);
  EXPECT_EQ(ti->connect(nullptr, 1, "a@h"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(ti->connect(t.raw, 1, nullptr), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(ti->connect(t.raw, 0, "a@h"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(ti->disconnect(nullptr, 1, "a@h"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(ti->disconnect(t.raw, 1, nullptr), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(ti->list_nodes(nullptr, 1), CLUSTERD_E_INVALID_ARG);
  ti->cancel(nullptr, 1);
  EXPECT_EQ(ti->local_node(nullptr), nullptr);
  EXPECT_TRUE(host.events.empty());

  // A plugin_t whose plugin_data is NULL (a host bug) is treated like NULL.
  clusterd_plugin_t hollow = *p.raw;
  hollow.plugin_data = nullptr;
  EXPECT_EQ(raw.start(&hollow), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(raw.last_error(&hollow), nullptr);
}

TEST(PluginHppTrampolines, TransportOperationsAndSinks) {
  FakeHost host;
  FakeConfig cfg;
  Instance<TestTransport> t(host);
  const auto *ti = t.iface<clusterd_transport_t>(CLUSTERD_INTERFACE_TRANSPORT);
  ASSERT_EQ(t.raw->init(t.raw, &cfg.view), CLUSTERD_OK);
  ASSERT_EQ(t.raw->start(t.raw), CLUSTERD_OK);

  EXPECT_EQ(ti->connect(t.raw, 7, "a@h"), CLUSTERD_OK);
  EXPECT_EQ(ti->connect(t.raw, 8, "throw"), CLUSTERD_E_UNREACHABLE);
  EXPECT_STREQ(t.raw->last_error(t.raw), "cannot reach");
  EXPECT_EQ(ti->disconnect(t.raw, 9, "b@h"), CLUSTERD_OK);
  EXPECT_EQ(ti->list_nodes(t.raw, 10), CLUSTERD_OK);
  t.object().decline_list = true;
  EXPECT_EQ(ti->list_nodes(t.raw, 11), CLUSTERD_E_UNSUPPORTED);
  ti->cancel(t.raw, 12);
  EXPECT_EQ(t.object().cancelled, std::vector<Id>{12});

  EXPECT_EQ(ti->local_node(t.raw), nullptr);
  t.object().local = "me@h";
  EXPECT_STREQ(ti->local_node(t.raw), "me@h");

  t.object().node_up("c@h");
  t.object().node_down("c@h", "connection_closed");
  t.object().node_down("d@h");
  t.object().local_changed();
  EXPECT_EQ(host.events, (std::vector<std::string>{
                             "complete 7 0 (null)",
                             "complete 9 -11 b@h not connected",
                             "list 10 0 (null) a@h b@h",
                             "up c@h",
                             "down c@h connection_closed",
                             "down d@h (null)",
                             "local_changed",
                         }));
  t.raw->stop(t.raw);
}

TEST(PluginHppTrampolines, StrategyEventHelpers) {
  FakeHost host;
  Instance<TestStrategy> p(host);
  TestStrategy &s = p.object();
  s.node_seen("a@h");
  s.node_lost("a@h");
  s.discovery_failed("NXDOMAIN");
  s.report_nodes({});
  EXPECT_EQ(host.events, (std::vector<std::string>{"seen a@h", "lost a@h", "failed NXDOMAIN"}));
  ASSERT_EQ(host.reports.size(), 1u);
  EXPECT_TRUE(host.reports[0].empty()) << "an empty report is a real answer";
  EXPECT_EQ(s.local_node_name(), std::nullopt);
  host.local = "me@h";
  EXPECT_EQ(s.local_node_name(), std::optional<std::string>("me@h"));

  host.hidden.insert(CLUSTERD_SERVICE_STRATEGY_SINK);
  Instance<TestStrategy> q(host);
  EXPECT_THROW(q.object().report_nodes({"a@h"}), clusterd::Error);
}

// ---- Config ----------------------------------------------------------------------------------

TEST(PluginHppConfig, TypedGetters) {
  FakeConfig cfg;
  cfg.set("s", std::string("text"))
      .set("i", int64_t{45892})
      .set("b", true)
      .set("d", 2.5)
      .set("t", Duration{1500})
      .set("forever", Duration{-1})
      .set("l", std::vector<std::string>{"x", "y"});
  const clusterd::Config c(&cfg.view);
  EXPECT_EQ(c.string("s"), "text");
  EXPECT_EQ(c.integer("i"), 45892);
  EXPECT_TRUE(c.boolean("b"));
  EXPECT_DOUBLE_EQ(c.number("d"), 2.5);
  EXPECT_EQ(c.duration("t"), milliseconds(1500));
  EXPECT_EQ(c.duration("forever"), clusterd::kInfinite);
  EXPECT_TRUE(clusterd::is_infinite(c.duration("forever")));
  EXPECT_EQ(c.strings("l"), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(c.is_set("s"));
  EXPECT_FALSE(c.is_set("missing"));
  EXPECT_EQ(c.source_of("s"), "test.toml:7:1");
  EXPECT_EQ(c.source_of("missing"), "");
}

TEST(PluginHppConfig, MissingAndMistypedOptions) {
  FakeConfig cfg;
  cfg.set("s", std::string("text"));
  const clusterd::Config c(&cfg.view);
  EXPECT_EQ(c.optional_string("missing"), std::nullopt);
  EXPECT_EQ(c.optional_strings("missing"), std::nullopt);
  EXPECT_EQ(c.optional_duration("missing"), std::nullopt);
  EXPECT_EQ(c.optional_string("s"), std::optional<std::string>("text"));
  try {
    c.integer("missing");
    FAIL() << "no exception";
  } catch (const clusterd::Error &e) {
    EXPECT_EQ(e.status(), CLUSTERD_E_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("'missing'"), std::string::npos);
  }
  try {
    c.integer("s");
    FAIL() << "no exception";
  } catch (const clusterd::Error &e) {
    EXPECT_EQ(e.status(), CLUSTERD_E_TYPE);
  }
  EXPECT_THROW(c.optional_boolean("s"), clusterd::Error) << "only NOT_FOUND becomes nullopt";
}

TEST(PluginHppConfig, ShortViewIsRejectedNotRead) {
  FakeConfig cfg;
  cfg.set("s", std::string("text"));
  cfg.view.struct_size = offsetof(clusterd_config_t, get_string);  // a broken, too-old host
  const clusterd::Config c(&cfg.view);
  try {
    c.string("s");
    FAIL() << "no exception";
  } catch (const clusterd::Error &e) {
    EXPECT_EQ(e.status(), CLUSTERD_E_UNSUPPORTED);
  }
  EXPECT_FALSE(c.is_set("s"));
}

// ---- RAII handles ----------------------------------------------------------------------------

TEST(PluginHppTimer, OneShotFiresOnceAndFreesItsCallback) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto token = std::make_shared<int>(0);
  int fired = 0;
  clusterd::Timer t = clusterd::Timer::after(host, milliseconds(250), [token, &fired] { ++fired; });
  EXPECT_TRUE(t.active());
  const Id id = fake.only();
  EXPECT_EQ(t.id(), id);
  EXPECT_EQ(fake.regs[id].delay, 250u);
  EXPECT_EQ(fake.regs[id].period, 0u);
  EXPECT_EQ(token.use_count(), 2);
  fake.fire_timer(id);
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(t.active());
  EXPECT_EQ(token.use_count(), 1) << "the callback is freed after a one-shot fires";
  t.reset();
  EXPECT_TRUE(fake.cancelled.empty()) << "nothing to cancel after firing";
}

TEST(PluginHppTimer, DestructorCancels) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto token = std::make_shared<int>(0);
  Id id = 0;
  {
    clusterd::Timer t = clusterd::Timer::every(host, milliseconds(10), [token] {});
    id = t.id();
    EXPECT_EQ(fake.regs[id].period, 10u);
    EXPECT_EQ(fake.regs[id].delay, 10u);
  }
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_TRUE(fake.regs.empty());
}

TEST(PluginHppTimer, MoveKeepsOneRegistration) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  int fired = 0;
  clusterd::Timer a = clusterd::Timer::every(host, milliseconds(5), [&fired] { ++fired; });
  clusterd::Timer b = std::move(a);
  EXPECT_FALSE(a.active());  // NOLINT(bugprone-use-after-move): moved-from handles are empty
  EXPECT_TRUE(b.active());
  clusterd::Timer c;
  c = std::move(b);
  fake.fire_timer(fake.only());
  EXPECT_EQ(fired, 1);
  c = clusterd::Timer();  // move-assigning an empty handle cancels the old registration
  EXPECT_EQ(fake.cancelled.size(), 1u);
  EXPECT_TRUE(fake.regs.empty());
}

TEST(PluginHppTimer, ResetFromInsideItsOwnCallback) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto token = std::make_shared<int>(0);
  clusterd::Timer t;
  int fired = 0;
  t = clusterd::Timer::every(host, milliseconds(5), [&t, &fired, token] {
    ++fired;
    t.reset();
    EXPECT_EQ(*token, 0) << "the callback's captures stay alive until it returns";
  });
  const Id id = t.id();
  fake.fire_timer(id);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
  EXPECT_EQ(token.use_count(), 1) << "freed once the callback returned";
}

TEST(PluginHppTimer, DestroyedFromInsideItsOwnCallback) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto t = std::make_unique<clusterd::Timer>();
  *t = clusterd::Timer::every(host, milliseconds(5), [&t] { t.reset(); });
  fake.fire_timer(t->id());
  EXPECT_EQ(t, nullptr);
  EXPECT_TRUE(fake.regs.empty());
}

TEST(PluginHppTimer, RearmedFromInsideItsOwnCallback) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  clusterd::Timer t;
  int fired = 0;
  std::function<void()> arm = [&] {
    t = clusterd::Timer::after(host, milliseconds(1), [&] {
      if (++fired < 3) arm();
    });
  };
  arm();
  for (int i = 0; i < 3; ++i) fake.fire_timer(fake.only());
  EXPECT_EQ(fired, 3);
  EXPECT_FALSE(t.active());
  EXPECT_TRUE(fake.regs.empty());
  EXPECT_TRUE(fake.cancelled.empty());
}

TEST(PluginHppTimer, RefusalThrowsAndLeaksNothing) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto token = std::make_shared<int>(0);
  fake.fail_next = CLUSTERD_E_STATE;
  try {
    clusterd::Timer::after(host, milliseconds(1), [token] {});
    FAIL() << "no exception";
  } catch (const clusterd::Error &e) {
    EXPECT_EQ(e.status(), CLUSTERD_E_STATE);
  }
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_THROW(clusterd::Timer::every(host, milliseconds(0), [] {}), clusterd::Error);
  fake.hidden.insert(CLUSTERD_SERVICE_TIMER);
  try {
    clusterd::Timer::after(host, milliseconds(1), [] {});
    FAIL() << "no exception";
  } catch (const clusterd::Error &e) {
    EXPECT_EQ(e.status(), CLUSTERD_E_UNSUPPORTED);
  }
}

TEST(PluginHppTimer, CallbackExceptionIsLoggedNotPropagated) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  clusterd::Timer t =
      clusterd::Timer::every(host, milliseconds(1), [] { throw std::runtime_error("boom"); });
  fake.fire_timer(t.id());
  EXPECT_TRUE(t.active());
  ASSERT_TRUE(fake.any_error_logged());
  EXPECT_NE(fake.logs.back().second.find("boom"), std::string::npos);
}

TEST(PluginHppTimer, AfterStopHandlesOnlyFreeMemory) {
  FakeHost fake;
  FakeConfig cfg;
  cfg.set("nodes", std::vector<std::string>{"a@h"});
  TestStrategy::keep_timer_on_stop = true;
  {
    Instance<TestStrategy> p(fake);
    ASSERT_EQ(p.raw->init(p.raw, &cfg.view), CLUSTERD_OK);
    ASSERT_EQ(p.raw->start(p.raw), CLUSTERD_OK);
    p.raw->stop(p.raw);
    EXPECT_TRUE(fake.cancelled.empty());
    fake.regs.clear();  // what the host does with leftovers after stop()
  }                     // destroy: the Timer member must not call the host any more
  TestStrategy::keep_timer_on_stop = false;
  EXPECT_TRUE(fake.cancelled.empty());
}

TEST(PluginHppFdWatch, WatchModifyAndReset) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  std::vector<uint32_t> seen;
  clusterd::FdWatch w =
      clusterd::FdWatch::watch(host, 5, CLUSTERD_FD_READ, [&](uint32_t ev) { seen.push_back(ev); });
  const Id id = w.id();
  EXPECT_EQ(w.fd(), 5);
  EXPECT_EQ(fake.regs[id].events, CLUSTERD_FD_READ);
  fake.fire_fd(id, CLUSTERD_FD_READ);
  fake.fire_fd(id, CLUSTERD_FD_READ | CLUSTERD_FD_ERROR);
  EXPECT_EQ(seen, (std::vector<uint32_t>{CLUSTERD_FD_READ, CLUSTERD_FD_READ | CLUSTERD_FD_ERROR}));
  w.modify(CLUSTERD_FD_READ | CLUSTERD_FD_WRITE);
  EXPECT_EQ(fake.regs[id].events, CLUSTERD_FD_READ | CLUSTERD_FD_WRITE);
  w.reset();
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
  EXPECT_EQ(w.fd(), -1);
  EXPECT_THROW(w.modify(CLUSTERD_FD_READ), clusterd::Error);
}

TEST(PluginHppFdWatch, UnwatchFromInsideTheCallback) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  clusterd::FdWatch w;
  w = clusterd::FdWatch::watch(host, 7, CLUSTERD_FD_READ, [&](uint32_t) { w.reset(); });
  const Id id = w.id();
  fake.fire_fd(id, CLUSTERD_FD_READ);
  EXPECT_FALSE(w.active());
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
}

TEST(PluginHppWork, RunsThenCompletes) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  int result = 0;
  bool done = false;
  clusterd::Work w = clusterd::Work::submit(
      host, [&] { result = 42; },
      [&](std::exception_ptr e) {
        EXPECT_EQ(e, nullptr);
        done = true;
      });
  const FakeHost::Reg r = fake.regs.at(w.id());
  r.work(r.user_data);  // the pool thread
  r.work_done(r.user_data, w.id());
  EXPECT_EQ(result, 42);
  EXPECT_TRUE(done);
  EXPECT_FALSE(w.active());
}

TEST(PluginHppWork, ExceptionsReachDone) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  std::string message;
  clusterd::Work w = clusterd::Work::submit(
      host, [] { throw std::runtime_error("disk on fire"); },
      [&](std::exception_ptr e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception &x) {
          message = x.what();
        }
      });
  const Id id = w.id();
  const FakeHost::Reg r = fake.regs.at(id);
  r.work(r.user_data);
  r.work_done(r.user_data, id);
  EXPECT_EQ(message, "disk on fire");
}

TEST(PluginHppWork, CancelBeforeStartFreesAtOnce) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto token = std::make_shared<int>(0);
  clusterd::Work w = clusterd::Work::submit(
      host, [token] {}, [token](std::exception_ptr) {});
  const Id id = w.id();
  w.reset();
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
  EXPECT_EQ(token.use_count(), 1);
}

TEST(PluginHppWork, CancelWhileRunningKeepsStateUntilSafe) {
  FakeHost fake;
  auto token = std::make_shared<int>(0);
  clusterd_work_fn run = nullptr;
  void *ud = nullptr;
  {
    clusterd::Host host(&fake.table);
    clusterd::Work w = clusterd::Work::submit(
        host, [token] {}, [](std::exception_ptr) {});
    run = fake.regs.at(w.id()).work;
    ud = fake.regs.at(w.id()).user_data;
    fake.work_cancel_result = CLUSTERD_E_AGAIN;  // "work is running"
    w.reset();
    EXPECT_EQ(token.use_count(), 2) << "the pool thread may still use it";
    run(ud);  // the pool thread finishes; done never runs
    EXPECT_EQ(token.use_count(), 2);
  }  // the Host (instance) goes away: parked states are freed
  EXPECT_EQ(token.use_count(), 1);
}

TEST(PluginHppHttp, RequestIsMirroredAndResponseViewed) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  clusterd::HttpRequest req("https://10.0.0.1/api/v1/pods");
  req.method("POST")
      .header("Accept: application/json")
      .header("Authorization", "Bearer x")
      .body("{}")
      .timeout(std::chrono::seconds(5))
      .ca_file("/etc/ca.pem")
      .max_body_bytes(1024)
      .insecure_skip_verify();
  int status = 0;
  std::string body, ctype;
  clusterd::HttpCall call =
      clusterd::HttpCall::start(host, req, [&](const clusterd::HttpResponse &r) {
        status = r.http_status();
        body = std::string(r.body());
        ctype = std::string(r.header("content-type").value_or("none"));
        EXPECT_TRUE(r.ok());
      });
  const Id id = call.id();
  const FakeHost::Reg r = fake.regs.at(id);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://10.0.0.1/api/v1/pods");
  EXPECT_EQ(r.headers,
            (std::vector<std::string>{"Accept: application/json", "Authorization: Bearer x"}));
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.timeout_ms, 5000u);
  EXPECT_EQ(r.ca_file, "/etc/ca.pem");
  EXPECT_EQ(r.max_body, 1024u);
  EXPECT_EQ(r.flags, CLUSTERD_HTTP_INSECURE_SKIP_VERIFY);
  EXPECT_EQ(r.http_data, nullptr);

  const char *headers[] = {"Content-Type:  application/json ", "X-Other: 1"};
  clusterd_http_response_t resp{};
  resp.struct_size = sizeof resp;
  resp.status = CLUSTERD_OK;
  resp.http_status = 200;
  resp.header_count = 2;
  resp.headers = headers;
  resp.body = "{\"items\":[]}";
  resp.body_length = std::strlen(resp.body);
  resp.error = "";
  r.http_done(r.user_data, id, &resp);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "{\"items\":[]}");
  EXPECT_EQ(ctype, "application/json");
  EXPECT_FALSE(call.active());
}

TEST(PluginHppHttp, StreamingAndCancelFromOnData) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  std::string got;
  clusterd::HttpCall call;
  clusterd::HttpRequest req("http://127.0.0.1/watch");
  req.on_data([&](std::string_view chunk) {
    got += chunk;
    if (got.size() >= 6) call.reset();  // enough: abandon the stream
    return true;
  });
  call = clusterd::HttpCall::start(host, req, [](const clusterd::HttpResponse &) { FAIL(); });
  const Id id = call.id();
  const FakeHost::Reg r = fake.regs.at(id);
  ASSERT_NE(r.http_data, nullptr);
  EXPECT_EQ(r.http_data(r.user_data, id, "abc", 3), 0);
  EXPECT_EQ(r.http_data(r.user_data, id, "def", 3), 1) << "a released stream asks to abort";
  EXPECT_EQ(got, "abcdef");
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
}

// A host newer than the plugin: records carry a field the plugin does not know.
struct NewerRecord {
  clusterd_dns_record_t v1;
  uint64_t appended_field;
};

TEST(PluginHppDns, RecordsAreSteppedByTheirStructSize) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  clusterd::DnsResult got;
  clusterd::DnsQuery q = clusterd::DnsQuery::resolve(
      host, CLUSTERD_DNS_SRV, "_erlang._tcp.example",
      [&](const clusterd::DnsResult &r) { got = r; }, "10.0.0.53:53", milliseconds(750));
  const Id id = q.id();
  const FakeHost::Reg reg = fake.regs.at(id);
  EXPECT_EQ(reg.name, "_erlang._tcp.example");
  EXPECT_EQ(reg.server, "10.0.0.53:53");
  EXPECT_EQ(reg.type, static_cast<uint32_t>(CLUSTERD_DNS_SRV));
  EXPECT_EQ(reg.timeout_ms, 750u);

  NewerRecord recs[2] = {};
  for (int i = 0; i < 2; ++i) {
    recs[i].v1.struct_size = sizeof(NewerRecord);
    recs[i].v1.type = CLUSTERD_DNS_SRV;
    recs[i].v1.ttl = 30;
    recs[i].v1.port = static_cast<uint16_t>(9000 + i);
    recs[i].v1.target = i == 0 ? "a.example" : "b.example";
    recs[i].v1.address = "";
    recs[i].appended_field = 0xdeadbeef;
  }
  clusterd_dns_result_t res{};
  res.struct_size = sizeof res;
  res.status = CLUSTERD_OK;
  res.records = &recs[0].v1;
  res.record_count = 2;
  res.error = "";
  reg.dns_done(reg.user_data, id, &res);
  EXPECT_EQ(got.status, CLUSTERD_OK);
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[1].target, "b.example");
  EXPECT_EQ(got.records[1].port, 9001);
  EXPECT_EQ(got.records[0].ttl, 30u);
  EXPECT_FALSE(q.active());
}

TEST(PluginHppDns, DestructorCancels) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  Id id = 0;
  {
    clusterd::DnsQuery q =
        clusterd::DnsQuery::resolve(host, CLUSTERD_DNS_A, "x", [](const clusterd::DnsResult &) {});
    id = q.id();
  }
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
}

TEST(PluginHppProcess, OutputIsStreamedAndResetFromItStopsIt) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  std::string got;
  clusterd::Process proc;
  clusterd::ProcessRequest req;
  req.argv = {"watch-inventory"};
  req.output = [&](uint32_t stream, std::string_view data) {
    got += (stream == CLUSTERD_PROCESS_STDERR ? "err:" : "out:") + std::string(data);
    if (got.size() >= 10) proc.reset();  // enough: stop the child
  };
  proc = clusterd::Process::spawn(host, req, [](const clusterd::ProcessResult &) { FAIL(); });
  const Id id = proc.id();
  const FakeHost::Reg r = fake.regs.at(id);
  EXPECT_EQ(r.name, "watch-inventory");
  ASSERT_NE(r.process_output, nullptr);
  r.process_output(r.user_data, id, CLUSTERD_PROCESS_STDOUT, "+a@h", 4);
  EXPECT_TRUE(proc.active());
  r.process_output(r.user_data, id, CLUSTERD_PROCESS_STDERR, "x", 1);
  EXPECT_EQ(got, "out:+a@herr:x");
  EXPECT_FALSE(proc.active());
  EXPECT_EQ(fake.cancelled, std::vector<Id>{id});
}

TEST(PluginHppProcess, NoOutputCallbackUnlessAskedAndNoneFromAnOlderHost) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  clusterd::ProcessRequest req;
  req.argv = {"list-nodes"};
  clusterd::Process proc =
      clusterd::Process::spawn(host, req, [](const clusterd::ProcessResult &) {});
  EXPECT_EQ(fake.regs.at(proc.id()).process_output, nullptr);

  // A 1.4 host would ignore the field: the wrapper refuses rather than stream nothing.
  fake.table.abi_minor = 4;
  req.output = [](uint32_t, std::string_view) {};
  try {
    clusterd::Process::spawn(host, req, [](const clusterd::ProcessResult &) {});
    FAIL() << "no error";
  } catch (const clusterd::Error &e) {
    EXPECT_EQ(e.status(), CLUSTERD_E_UNSUPPORTED);
  }
  EXPECT_EQ(fake.regs.size(), 1u);
}

// ---- Host helpers ----------------------------------------------------------------------------

TEST(PluginHppHost, PostRunsOnceAndFrees) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  auto token = std::make_shared<int>(0);
  int ran = 0;
  EXPECT_EQ(host.post([token, &ran] { ++ran; }), CLUSTERD_OK);
  EXPECT_EQ(token.use_count(), 2);
  fake.run_posted();
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(token.use_count(), 1);
}

TEST(PluginHppHost, RefusedOrDroppedPostsAreFreed) {
  FakeHost fake;
  auto token = std::make_shared<int>(0);
  {
    clusterd::Host host(&fake.table);
    fake.post_result = CLUSTERD_E_STATE;
    EXPECT_EQ(host.post([token] {}), CLUSTERD_E_STATE);
    EXPECT_EQ(token.use_count(), 1);
    fake.post_result = CLUSTERD_OK;
    EXPECT_EQ(host.post([token] {}), CLUSTERD_OK);
    EXPECT_EQ(host.post([token] {}), CLUSTERD_OK);
    EXPECT_EQ(token.use_count(), 3);
    fake.posted.clear();  // the host dropped them at stop()
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(PluginHppHost, PostFromAnotherThread) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  std::atomic<int> ran{0};
  std::thread worker([&] {
    for (int i = 0; i < 100; ++i) EXPECT_EQ(host.post([&ran] { ++ran; }), CLUSTERD_OK);
  });
  worker.join();
  fake.run_posted();
  EXPECT_EQ(ran.load(), 100);
}

TEST(PluginHppHost, LogAndStatusDetails) {
  FakeHost fake;
  clusterd::Host host(&fake.table);
  EXPECT_EQ(host.instance_name(), "topology test");
  EXPECT_EQ(host.host_version(), "9.9.9");
  host.log(clusterd::LogLevel::kWarn, std::string_view("not terminated here", 3));
  host.info("hello");
  ASSERT_EQ(fake.logs.size(), 2u);
  EXPECT_EQ(fake.logs[0], (std::pair<int32_t, std::string>{CLUSTERD_LOG_WARN, "not"}));
  EXPECT_EQ(fake.logs[1].first, CLUSTERD_LOG_INFO);
  host.set_status("hosts without node", "b@10.0.0.2");
  EXPECT_EQ(fake.status["hosts without node"], "b@10.0.0.2");
  host.clear_status("hosts without node");
  EXPECT_TRUE(fake.status.empty());

  clusterd::Host none;  // no table: everything is a harmless no-op
  none.info("dropped");
  none.set_status("k", "v");
  EXPECT_EQ(none.post([] {}), CLUSTERD_E_UNSUPPORTED);
  EXPECT_THROW(clusterd::Timer::after(none, milliseconds(1), [] {}), clusterd::Error);
}

TEST(PluginHppHost, StatusNames) {
  EXPECT_STREQ(clusterd::status_name(CLUSTERD_E_TIMEOUT), "CLUSTERD_E_TIMEOUT");
  EXPECT_STREQ(clusterd::status_name(CLUSTERD_OK), "CLUSTERD_OK");
  EXPECT_STREQ(clusterd::status_name(-999), "CLUSTERD_E_GENERIC (unknown code)");
}

}  // namespace
