// Tests of the "epmd" strategy: loads the built clusterd-epmd.so with dlopen and drives it with
// the shared loop host: first offering only timers (fired by hand) and the strategy sink, so the
// EPMD check is off (no fd service); then, for the EPMD check, on the real loop against a fake
// EPMD.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <clusterd/clusterd.h>

#include "epmd_test_support.hpp"

namespace {

using namespace clusterd_test;  // the loop host, Config, Instance, descriptor()
using epmd_test::FakeEpmd;
using epmd_test::Mode;
using std::chrono::milliseconds;

// Every option at its default (as the host fills them in) but `hosts` and `timeout` (ms; -1 =
// infinity), which are set in /etc/clusterd/clusterd.toml.
Config config(std::vector<std::string> hosts, int64_t timeout_ms = -1) {
  Config cfg(defaults_of(descriptor()));
  cfg.values["hosts"] = std::move(hosts);
  cfg.values["timeout"] = Duration{timeout_ms};
  cfg.source = "/etc/clusterd/clusterd.toml:13:1";
  cfg.sources["hosts"] = "/etc/clusterd/clusterd.toml:12:1";
  return cfg;
}

class EpmdTest : public ::testing::Test {
 protected:
  // Timers (fired by hand) and the strategy sink only: no fd service, so no EPMD check.
  EpmdTest() { host_.offer_only({CLUSTERD_SERVICE_TIMER, CLUSTERD_SERVICE_STRATEGY_SINK}); }
  void SetUp() override { ASSERT_NE(descriptor(), nullptr); }
  clusterd_status_t init(Config &cfg) {
    plugin_ = std::make_unique<Instance>(descriptor(), host_);
    return plugin_->init(cfg);
  }
  void start() { ASSERT_EQ(plugin_->start(), CLUSTERD_OK); }
  std::string last_error() const { return plugin_->last_error(); }

  LoopHost host_;
  std::unique_ptr<Instance> plugin_;  // stopped and destroyed before host_
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
  auto cfg = config({"a@127.0.0.1", "b@127.0.0.1", "a@127.0.0.1"});
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  ASSERT_EQ(host_.reports.size(), 1u);
  EXPECT_EQ(host_.reports[0], (std::vector<std::string>{"a@127.0.0.1", "b@127.0.0.1"}));
  EXPECT_EQ(host_.timers(), 0u) << "timeout = infinity: report once";
}

TEST_F(EpmdTest, EmptyHostsIsAValidReport) {
  auto cfg = config({}, 5000);
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  ASSERT_EQ(host_.reports.size(), 1u);
  EXPECT_TRUE(host_.reports[0].empty());
  EXPECT_EQ(host_.timers(), 0u);
}

TEST_F(EpmdTest, FiniteTimeoutReReports) {
  auto cfg = config({"a@h"}, 5000);
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  ASSERT_EQ(host_.timers(), 1u);
  const auto id = host_.timer_ids().at(0);
  EXPECT_EQ(host_.timer_periods().at(0), 5000u);
  host_.fire_timer(id);
  host_.fire_timer(id);
  EXPECT_EQ(host_.reports.size(), 3u);
  plugin_->stop();
  EXPECT_EQ(host_.timers(), 0u) << "stop() cancels the timer";
}

TEST_F(EpmdTest, RefreshReReports) {
  auto cfg = config({"a@h"});
  ASSERT_EQ(init(cfg), CLUSTERD_OK);
  start();
  const clusterd_strategy_t *s = plugin_->strategy();
  ASSERT_NE(s, nullptr);
  ASSERT_NE(s->refresh, nullptr);
  EXPECT_EQ(s->refresh(plugin_->raw()), CLUSTERD_OK);
  EXPECT_EQ(host_.reports.size(), 2u);
}

// What init() checked by hand before ABI 1.3 is declared now, and refused by the host at
// `clusterd check` (tests/integration/test_check.py runs these against the real host).
TEST_F(EpmdTest, DeclaresItsConstraints) {
  EXPECT_EQ(option_of(descriptor(), "hosts").format, uint32_t{CLUSTERD_FORMAT_NODE_NAME});
  const auto timeout = option_of(descriptor(), "timeout");
  EXPECT_TRUE(timeout.flags & CLUSTERD_OPT_MIN);
  EXPECT_EQ(timeout.min, 1);
  EXPECT_FALSE(timeout.flags & CLUSTERD_OPT_FINITE) << "\"infinity\" reports once";
  const auto port = option_of(descriptor(), "epmd_port");
  EXPECT_EQ(port.min, 1);
  EXPECT_EQ(port.max, 65535);
  EXPECT_TRUE(option_of(descriptor(), "epmd_timeout").flags & CLUSTERD_OPT_FINITE);
}

}  // namespace

// ---- The EPMD check, on a real loop against a fake EPMD ----------------------------------------

namespace {

class EpmdCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(descriptor(), nullptr); }
  void TearDown() override {
    instance_.reset();
    EXPECT_EQ(loop_.registrations(), 0u) << "stop() left registrations behind";
  }
  // Starts the strategy with these hosts, every other option at its default but `extra`.
  void start(std::vector<std::string> hosts, uint16_t port,
             std::map<std::string, Value> extra = {}) {
    auto values = defaults_of(descriptor());
    values["hosts"] = std::move(hosts);
    values["epmd_port"] = int64_t{port};
    values["epmd_timeout"] = Duration{2000};
    for (auto &[k, v] : extra) values[k] = v;
    config_ = std::make_unique<Config>(values);
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
  std::unique_ptr<Config> config_;
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

}  // namespace
