// Tests of the "epmd" strategy: loads the built clusterd-epmd.so with dlopen and drives it with a
// fake host whose timers the test fires by hand (that host offers no fd service, so the EPMD
// check is off), and, for the EPMD check, with a small real event loop and a fake EPMD.
#include <dlfcn.h>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include <clusterd/clusterd.h>

#include "epmd_test_support.hpp"

namespace {

struct FakeHost {
  struct Timer {
    uint64_t delay, period;
    clusterd_timer_fn fn;
    void *ud;
  };
  FakeHost() {
    table.struct_size = sizeof table;
    table.abi_major = CLUSTERD_ABI_MAJOR;
    table.abi_minor = CLUSTERD_ABI_MINOR;
    table.host_data = this;
    table.log = [](const clusterd_host_t *, int32_t, const char *) {};
    table.get_service = [](const clusterd_host_t *h, const char *id) -> const void * {
      const std::string s(id);
      if (s == CLUSTERD_SERVICE_TIMER) return &self(h)->timer_svc;
      if (s == CLUSTERD_SERVICE_STRATEGY_SINK) return &self(h)->sink;
      return nullptr;
    };
    timer_svc.struct_size = sizeof timer_svc;
    timer_svc.add = [](const clusterd_host_t *h, uint64_t delay, uint64_t period,
                       clusterd_timer_fn fn, void *ud, clusterd_id_t *out) -> clusterd_status_t {
      *out = self(h)->next_id++;
      self(h)->timers[*out] = Timer{delay, period, fn, ud};
      return CLUSTERD_OK;
    };
    timer_svc.cancel = [](const clusterd_host_t *h, clusterd_id_t id) {
      self(h)->timers.erase(id);
    };
    sink.struct_size = sizeof sink;
    sink.set_nodes = [](const clusterd_host_t *h, const char *const *nodes, uint32_t n) {
      std::vector<std::string> v;
      for (uint32_t i = 0; i < n; ++i) v.emplace_back(nodes[i]);
      self(h)->reports.push_back(v);
    };
    sink.node_seen = [](const clusterd_host_t *, const char *) {};
    sink.node_lost = [](const clusterd_host_t *, const char *) {};
    sink.discovery_failed = [](const clusterd_host_t *, const char *) {};
    sink.local_node = [](const clusterd_host_t *) -> const char * { return nullptr; };
  }
  static FakeHost *self(const clusterd_host_t *h) { return static_cast<FakeHost *>(h->host_data); }
  void fire(clusterd_id_t id) {
    const Timer t = timers.at(id);
    if (t.period == 0) timers.erase(id);
    t.fn(t.ud, id);
  }

  clusterd_host_t table{};
  clusterd_timer_service_t timer_svc{};
  clusterd_strategy_sink_t sink{};
  std::map<clusterd_id_t, Timer> timers;
  clusterd_id_t next_id = 1;
  std::vector<std::vector<std::string>> reports;
};

// Values: a string list (hosts), an integer or a duration in ms (timeout; -1 = infinity), or a
// boolean.
using Value = std::variant<std::vector<std::string>, int64_t, bool>;

struct Config {
  explicit Config(std::vector<std::string> hosts, int64_t timeout_ms = -1) {
    values["hosts"] = std::move(hosts);
    values["timeout"] = timeout_ms;
    // The defaults the host fills in for the options added in 0.2.0.
    values["epmd_port"] = int64_t{4369};
    values["epmd_timeout"] = int64_t{5000};
    values["epmd_check"] = true;
    view.struct_size = sizeof view;
    view.config_data = this;
    view.get_string = [](const clusterd_config_t *, const char *, const char **) {
      return CLUSTERD_E_TYPE;
    };
    view.get_int = [](const clusterd_config_t *c, const char *k, int64_t *out) {
      const auto *v = std::get_if<int64_t>(&self(c)->values.at(k));
      if (v == nullptr) return CLUSTERD_E_TYPE;
      *out = *v;
      return CLUSTERD_OK;
    };
    view.get_bool = [](const clusterd_config_t *c, const char *k, int32_t *out) {
      const auto *v = std::get_if<bool>(&self(c)->values.at(k));
      if (v == nullptr) return CLUSTERD_E_TYPE;
      *out = *v ? 1 : 0;
      return CLUSTERD_OK;
    };
    view.get_double = [](const clusterd_config_t *, const char *, double *) {
      return CLUSTERD_E_TYPE;
    };
    view.get_duration_ms = [](const clusterd_config_t *c, const char *k, int64_t *out) {
      const auto *v = std::get_if<int64_t>(&self(c)->values.at(k));
      if (v == nullptr) return CLUSTERD_E_TYPE;
      *out = *v;
      return CLUSTERD_OK;
    };
    view.get_list_size = [](const clusterd_config_t *c, const char *k, uint32_t *out) {
      const auto *v = std::get_if<std::vector<std::string>>(&self(c)->values.at(k));
      if (v == nullptr) return CLUSTERD_E_TYPE;
      *out = static_cast<uint32_t>(v->size());
      return CLUSTERD_OK;
    };
    view.get_list_item = [](const clusterd_config_t *c, const char *k, uint32_t i,
                            const char **out) {
      const auto *v = std::get_if<std::vector<std::string>>(&self(c)->values.at(k));
      if (v == nullptr) return CLUSTERD_E_TYPE;
      *out = v->at(i).c_str();
      return CLUSTERD_OK;
    };
    view.is_set = [](const clusterd_config_t *, const char *) -> int32_t { return 1; };
    view.source_of = [](const clusterd_config_t *, const char *k) -> const char * {
      return std::string(k) == "hosts" ? "/etc/clusterd/clusterd.toml:12:1"
                                       : "/etc/clusterd/clusterd.toml:13:1";
    };
  }
  static const Config *self(const clusterd_config_t *c) {
    return static_cast<const Config *>(c->config_data);
  }
  clusterd_config_t view{};
  std::map<std::string, Value> values;
};

const clusterd_plugin_descriptor_t *descriptor() {
  static const clusterd_plugin_descriptor_t *d = [] {
    void *lib = dlopen(CLUSTERD_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(lib, nullptr) << dlerror();
    if (lib == nullptr) return static_cast<const clusterd_plugin_descriptor_t *>(nullptr);
    const auto *entry =
        static_cast<const clusterd_plugin_entry_t *>(dlsym(lib, CLUSTERD_ENTRY_SYMBOL));
    return entry != nullptr ? entry->get_descriptor() : nullptr;
  }();
  return d;
}

class EpmdTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(descriptor(), nullptr); }
  void TearDown() override {
    if (plugin_ == nullptr) return;
    if (started_) plugin_->stop(plugin_);
    plugin_->destroy(plugin_);
  }
  clusterd_status_t init(Config &cfg) {
    plugin_ = descriptor()->create(&host_.table);
    EXPECT_NE(plugin_, nullptr);
    return plugin_->init(plugin_, &cfg.view);
  }
  void start() {
    ASSERT_EQ(plugin_->start(plugin_), CLUSTERD_OK);
    started_ = true;
  }
  std::string last_error() const {
    const char *e = plugin_->last_error(plugin_);
    return e != nullptr ? e : "";
  }

  FakeHost host_;
  clusterd_plugin_t *plugin_ = nullptr;
  bool started_ = false;
};

TEST_F(EpmdTest, Descriptor) {
  const clusterd_plugin_descriptor_t *d = descriptor();
  EXPECT_STREQ(d->name, "epmd");
  EXPECT_EQ(d->kind, static_cast<uint32_t>(CLUSTERD_KIND_STRATEGY));
  EXPECT_EQ(d->flags & CLUSTERD_PLUGIN_DISCONNECTS_REMOVED, 0u) << "Epmd never disconnects";
  ASSERT_NE(d->aliases, nullptr);
  EXPECT_STREQ(d->aliases[0], "Cluster.Strategy.Epmd");
  EXPECT_STREQ(d->aliases[1], "Elixir.Cluster.Strategy.Epmd");
  EXPECT_EQ(d->aliases[2], nullptr);
  ASSERT_EQ(d->option_count, 5u);
  EXPECT_STREQ(d->options[0].key, "hosts");
  EXPECT_EQ(d->options[0].type, static_cast<uint32_t>(CLUSTERD_OPT_STRING_LIST));
  EXPECT_STREQ(d->options[0].default_value, "[]");
  EXPECT_STREQ(d->options[1].key, "timeout");
  EXPECT_EQ(d->options[1].type, static_cast<uint32_t>(CLUSTERD_OPT_DURATION));
  EXPECT_STREQ(d->options[1].default_value, "\"infinity\"");
  // 0.2.0: the EPMD check.
  EXPECT_STREQ(d->options[2].key, "epmd_port");
  EXPECT_EQ(d->options[2].type, static_cast<uint32_t>(CLUSTERD_OPT_INT));
  EXPECT_STREQ(d->options[2].default_value, "4369");
  EXPECT_STREQ(d->options[3].key, "epmd_timeout");
  EXPECT_EQ(d->options[3].type, static_cast<uint32_t>(CLUSTERD_OPT_DURATION));
  EXPECT_STREQ(d->options[3].default_value, "\"5s\"");
  EXPECT_STREQ(d->options[4].key, "epmd_check");
  EXPECT_EQ(d->options[4].type, static_cast<uint32_t>(CLUSTERD_OPT_BOOL));
  EXPECT_STREQ(d->options[4].default_value, "true");
}

TEST_F(EpmdTest, ReportsTheHostsOnceAtStart) {
  Config cfg({"a@127.0.0.1", "b@127.0.0.1", "a@127.0.0.1"});
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  ASSERT_EQ(host_.reports.size(), 1u);
  EXPECT_EQ(host_.reports[0], (std::vector<std::string>{"a@127.0.0.1", "b@127.0.0.1"}));
  EXPECT_TRUE(host_.timers.empty()) << "timeout = infinity: report once";
}

TEST_F(EpmdTest, EmptyHostsIsAValidReport) {
  Config cfg({}, 5000);
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  ASSERT_EQ(host_.reports.size(), 1u);
  EXPECT_TRUE(host_.reports[0].empty());
  EXPECT_TRUE(host_.timers.empty());
}

TEST_F(EpmdTest, FiniteTimeoutReReports) {
  Config cfg({"a@h"}, 5000);
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  ASSERT_EQ(host_.timers.size(), 1u);
  const auto id = host_.timers.begin()->first;
  EXPECT_EQ(host_.timers[id].period, 5000u);
  host_.fire(id);
  host_.fire(id);
  EXPECT_EQ(host_.reports.size(), 3u);
  plugin_->stop(plugin_);
  started_ = false;
  EXPECT_TRUE(host_.timers.empty()) << "stop() cancels the timer";
}

TEST_F(EpmdTest, RefreshReReports) {
  Config cfg({"a@h"});
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  const auto *s = static_cast<const clusterd_strategy_t *>(
      plugin_->get_interface(plugin_, CLUSTERD_INTERFACE_STRATEGY));
  ASSERT_NE(s, nullptr);
  ASSERT_NE(s->refresh, nullptr);
  EXPECT_EQ(s->refresh(plugin_), CLUSTERD_OK);
  EXPECT_EQ(host_.reports.size(), 2u);
}

TEST_F(EpmdTest, InvalidNodeNamesFailInit) {
  for (const char *bad : {"nohost", "@h", "a@", "a b@h", "a@b@c", " a@h", ""}) {
    FakeHost fresh;
    Config cfg({"ok@h", bad});
    clusterd_plugin_t *p = descriptor()->create(&fresh.table);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->init(p, &cfg.view), CLUSTERD_E_CONFIG) << bad;
    const std::string error = p->last_error(p) != nullptr ? p->last_error(p) : "";
    EXPECT_NE(error.find("'" + std::string(bad) + "'"), std::string::npos) << error;
    EXPECT_NE(error.find("/etc/clusterd/clusterd.toml:12:1"), std::string::npos) << error;
    p->destroy(p);
  }
}

TEST_F(EpmdTest, ZeroTimeoutFailsInit) {
  Config cfg({"a@h"}, 0);
  EXPECT_EQ(init(cfg), CLUSTERD_E_CONFIG);
  EXPECT_NE(last_error().find("timeout"), std::string::npos);
}

}  // namespace

// ---- The EPMD check, on a real loop against a fake EPMD ----------------------------------------

namespace {

using epmd_test::contains;
using epmd_test::Duration;
using epmd_test::FakeEpmd;
using epmd_test::Instance;
using epmd_test::LoopHost;
using epmd_test::Mode;
using std::chrono::milliseconds;

class EpmdCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(descriptor(), nullptr); }
  void TearDown() override {
    instance_.reset();
    EXPECT_EQ(loop_.registrations(), 0u) << "stop() left registrations behind";
  }
  // Starts the strategy with these hosts, every other option at its default but `extra`.
  void start(std::vector<std::string> hosts, uint16_t port,
             std::map<std::string, epmd_test::Value> extra = {}) {
    auto values = epmd_test::defaults_of(descriptor());
    values["hosts"] = std::move(hosts);
    values["epmd_port"] = int64_t{port};
    values["epmd_timeout"] = Duration{2000};
    for (auto &[k, v] : extra) values[k] = v;
    config_ = std::make_unique<epmd_test::Config>(values);
    instance_ = std::make_unique<Instance>(descriptor(), loop_);
    ASSERT_EQ(instance_->init(*config_), CLUSTERD_OK) << instance_->last_error();
    ASSERT_EQ(instance_->start(), CLUSTERD_OK) << instance_->last_error();
  }
  bool has_status(const std::string &key) const { return loop_.status.count(key) != 0; }
  std::string status(const std::string &key) const {
    auto it = loop_.status.find(key);
    return it != loop_.status.end() ? it->second : "";
  }

  LoopHost loop_;
  std::unique_ptr<epmd_test::Config> config_;
  std::unique_ptr<Instance> instance_;
};

TEST_F(EpmdCheckTest, ShowsNodesTheirEpmdDoesNotKnow) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start({"a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"}, epmd.port());
  ASSERT_TRUE(loop_.run_until([&] { return has_status("not registered in epmd"); }));
  EXPECT_EQ(status("not registered in epmd"), "b@127.0.0.1, c@127.0.0.1");
  EXPECT_FALSE(has_status("epmd unreachable"));
  std::vector<std::string> asked = epmd.requests;
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::string>{"za", "zb", "zc"}));
  // Informational only: the reported set is the configured one, reported once.
  ASSERT_EQ(loop_.reports.size(), 1u);
  EXPECT_EQ(loop_.reports[0].size(), 3u);
  EXPECT_TRUE(loop_.failures.empty());
  // Once they register, a refresh clears the key.
  epmd.names = {{"a", 4001}, {"b", 4002}, {"c", 4003}};
  EXPECT_EQ(instance_->refresh(), CLUSTERD_OK);
  ASSERT_TRUE(loop_.run_until([&] { return !has_status("not registered in epmd"); }));
  EXPECT_EQ(loop_.reports.size(), 2u) << "refresh re-reports";
}

TEST_F(EpmdCheckTest, ShowsEpmdsThatCannotBeReached) {
  FakeEpmd epmd(loop_, Mode::refuse);
  start({"a@127.0.0.1", "b@127.0.0.1"}, epmd.port());
  ASSERT_TRUE(loop_.run_until([&] { return has_status("epmd unreachable"); }));
  // One entry per EPMD, not per node.
  EXPECT_EQ(status("epmd unreachable"),
            "127.0.0.1:" + std::to_string(epmd.port()) + ": connection refused");
  EXPECT_FALSE(has_status("not registered in epmd"));
  EXPECT_EQ(loop_.reports.size(), 1u);
  EXPECT_EQ(loop_.reports[0].size(), 2u) << "never removes a node";
  EXPECT_TRUE(loop_.failures.empty());
}

TEST_F(EpmdCheckTest, MalformedRepliesAndTimeoutsCountAsUnreachable) {
  FakeEpmd garbage(loop_, Mode::raw);
  garbage.raw_reply = "garbage";
  start({"a@127.0.0.1"}, garbage.port(), {{"epmd_timeout", Duration{150}}});
  ASSERT_TRUE(loop_.run_until([&] { return has_status("epmd unreachable"); }));
  EXPECT_TRUE(contains(status("epmd unreachable"), "malformed PORT2 reply"))
      << status("epmd unreachable");
  garbage.set_mode(Mode::hang);
  EXPECT_EQ(instance_->refresh(), CLUSTERD_OK);
  ASSERT_TRUE(loop_.run_until(
      [&] { return contains(status("epmd unreachable"), "timed out after 150 ms"); }));
}

TEST_F(EpmdCheckTest, HostsAreResolvedAndChecked) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  loop_.dns_answers[{"node.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
  start({"a@node.test", "x@nosuch.test"}, epmd.port());
  ASSERT_TRUE(loop_.run_until([&] { return has_status("epmd unreachable"); }));
  EXPECT_EQ(status("epmd unreachable"), "nosuch.test:" + std::to_string(epmd.port()) +
                                            ": cannot resolve nosuch.test: no such host");
  EXPECT_FALSE(has_status("not registered in epmd"));
}

TEST_F(EpmdCheckTest, FiniteTimeoutChecksEveryTimeout) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start({"a@127.0.0.1"}, epmd.port(), {{"timeout", Duration{50}}});
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() >= 3; }));
  EXPECT_GE(loop_.reports.size(), 3u);
}

TEST_F(EpmdCheckTest, InfiniteTimeoutChecksEvery30s) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start({"a@127.0.0.1"}, epmd.port());
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() == 1 && loop_.watches() == 0; }));
  EXPECT_EQ(loop_.timers(), 1u) << "the 30 s check timer";
  EXPECT_EQ(loop_.reports.size(), 1u);
}

TEST_F(EpmdCheckTest, CheckCanBeTurnedOff) {
  start({"a@127.0.0.1"}, 9, {{"epmd_check", false}});
  EXPECT_EQ(loop_.registrations(), 0u) << "no timer, no query";
  EXPECT_EQ(loop_.reports.size(), 1u);
}

TEST_F(EpmdCheckTest, StopCancelsQueriesInFlight) {
  FakeEpmd epmd(loop_, Mode::hang);
  start({"a@127.0.0.1", "b@127.0.0.1"}, epmd.port());
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() == 2; }));
  instance_->stop();
  EXPECT_EQ(loop_.registrations(), 0u);
}

TEST_F(EpmdCheckTest, ManyNodesAreCheckedWithBoundedParallelism) {
  FakeEpmd epmd(loop_);
  std::vector<std::string> hosts;
  for (int i = 0; i < 40; ++i) {
    hosts.push_back("n" + std::to_string(i) + "@127.0.0.1");
    if (i % 2 == 0)
      epmd.names.push_back({"n" + std::to_string(i), static_cast<uint16_t>(5000 + i)});
  }
  start(hosts, epmd.port());
  std::size_t most = 0;
  ASSERT_TRUE(loop_.run_until([&] {
    most = std::max(most, loop_.watches());
    return has_status("not registered in epmd") && loop_.watches() == 0;
  }));
  EXPECT_LE(most, 16u);
  EXPECT_EQ(epmd.requests.size(), 40u);
  EXPECT_TRUE(contains(status("not registered in epmd"), "n1@127.0.0.1, n3@127.0.0.1"));
  EXPECT_FALSE(contains(status("not registered in epmd"), "n2@"));
}

TEST_F(EpmdCheckTest, BadEpmdOptionsFailInit) {
  for (auto [key, value] :
       std::vector<std::pair<std::string, epmd_test::Value>>{{"epmd_port", int64_t{0}},
                                                             {"epmd_port", int64_t{65536}},
                                                             {"epmd_timeout", Duration{0}},
                                                             {"epmd_timeout", Duration{-1}}}) {
    auto values = epmd_test::defaults_of(descriptor());
    values[key] = value;
    epmd_test::Config cfg(values);
    Instance i(descriptor(), loop_);
    EXPECT_EQ(i.init(cfg), CLUSTERD_E_CONFIG) << key;
    EXPECT_TRUE(contains(i.last_error(), key)) << i.last_error();
    EXPECT_TRUE(contains(i.last_error(), "test.toml:7:1")) << i.last_error();
  }
}

}  // namespace
