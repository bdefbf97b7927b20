// Tests of the "epmd" strategy: loads the built clusterd-epmd.so with dlopen and drives it with a
// fake host whose timers the test fires by hand.
#include <dlfcn.h>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include <clusterd/clusterd.h>

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

// Values: a string list (hosts) or a duration in ms (timeout; -1 = infinity).
using Value = std::variant<std::vector<std::string>, int64_t>;

struct Config {
  explicit Config(std::vector<std::string> hosts, int64_t timeout_ms = -1) {
    values["hosts"] = std::move(hosts);
    values["timeout"] = timeout_ms;
    view.struct_size = sizeof view;
    view.config_data = this;
    view.get_string = [](const clusterd_config_t *, const char *, const char **) {
      return CLUSTERD_E_TYPE;
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
  ASSERT_EQ(d->option_count, 2u);
  EXPECT_STREQ(d->options[0].key, "hosts");
  EXPECT_EQ(d->options[0].type, static_cast<uint32_t>(CLUSTERD_OPT_STRING_LIST));
  EXPECT_STREQ(d->options[0].default_value, "[]");
  EXPECT_STREQ(d->options[1].key, "timeout");
  EXPECT_EQ(d->options[1].type, static_cast<uint32_t>(CLUSTERD_OPT_DURATION));
  EXPECT_STREQ(d->options[1].default_value, "\"infinity\"");
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
