// Tests of the "local_epmd" strategy: loads the built clusterd-local_epmd.so with dlopen and
// drives it with a small real event loop against a fake EPMD on 127.0.0.1.
#include <gtest/gtest.h>

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

class LocalEpmdTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(descriptor(), nullptr); }
  void TearDown() override {
    instance_.reset();
    EXPECT_EQ(loop_.registrations(), 0u) << "stop() left registrations behind";
  }
  clusterd_status_t init(uint16_t port, std::map<std::string, Value> extra = {}) {
    auto values = defaults_of(descriptor());
    values["epmd_port"] = int64_t{port};
    for (auto &[k, v] : extra) values[k] = v;
    config_ = std::make_unique<Config>(values);
    instance_ = std::make_unique<Instance>(descriptor(), loop_);
    return instance_->init(*config_);
  }
  void start(uint16_t port, std::map<std::string, Value> extra = {}) {
    ASSERT_EQ(init(port, std::move(extra)), CLUSTERD_OK) << instance_->last_error();
    ASSERT_EQ(instance_->start(), CLUSTERD_OK) << instance_->last_error();
  }
  bool run_until_event(std::size_t n) {
    return loop_.run_until([&] { return loop_.events.size() >= n; });
  }

  LoopHost loop_;
  std::unique_ptr<Config> config_;
  std::unique_ptr<Instance> instance_;
};

TEST_F(LocalEpmdTest, Descriptor) {
  const clusterd_plugin_descriptor_t *d = descriptor();
  EXPECT_STREQ(d->name, "local_epmd");
  EXPECT_EQ(d->kind, static_cast<uint32_t>(CLUSTERD_KIND_STRATEGY));
  EXPECT_EQ(d->flags & CLUSTERD_PLUGIN_DISCONNECTS_REMOVED, 0u) << "LocalEpmd never disconnects";
  ASSERT_NE(d->aliases, nullptr);
  EXPECT_STREQ(d->aliases[0], "Cluster.Strategy.LocalEpmd");
  EXPECT_STREQ(d->aliases[1], "Elixir.Cluster.Strategy.LocalEpmd");
  EXPECT_EQ(d->aliases[2], nullptr);
  ASSERT_EQ(d->option_count, 4u);
  EXPECT_STREQ(d->options[0].key, "polling_interval");
  EXPECT_STREQ(d->options[0].default_value, "\"5s\"");
  EXPECT_STREQ(d->options[1].key, "epmd_port");
  EXPECT_STREQ(d->options[1].default_value, "4369");
  EXPECT_STREQ(d->options[2].key, "host");
  EXPECT_EQ(d->options[2].default_value, nullptr);
  EXPECT_STREQ(d->options[3].key, "epmd_timeout");
}

TEST_F(LocalEpmdTest, ReportsEveryNameWithTheLocalNodesHost) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}, {"b", 4002}, {"me", 4003}};
  loop_.local_node = "me@myhost";
  start(epmd.port());
  ASSERT_TRUE(run_until_event(1));
  ASSERT_EQ(loop_.reports.size(), 1u) << (loop_.failures.empty() ? "" : loop_.failures[0]);
  // Self included: the host's reconciler skips it.
  EXPECT_EQ(loop_.reports[0], (std::vector<std::string>{"a@myhost", "b@myhost", "me@myhost"}));
  EXPECT_EQ(loop_.status["node host"], "myhost (from the local node me@myhost)");
  EXPECT_EQ(epmd.requests, (std::vector<std::string>{"n"}));
}

TEST_F(LocalEpmdTest, HostOptionWins) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  loop_.local_node = "me@myhost";
  start(epmd.port(), {{"host", std::string("127.0.0.1")}});
  ASSERT_TRUE(run_until_event(1));
  ASSERT_EQ(loop_.reports.size(), 1u);
  EXPECT_EQ(loop_.reports[0], (std::vector<std::string>{"a@127.0.0.1"}));
  EXPECT_EQ(loop_.status["node host"], "127.0.0.1 (configured)");
}

TEST_F(LocalEpmdTest, UnknownLocalNodeFailsTheRoundInsteadOfGuessing) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start(epmd.port(), {{"polling_interval", Duration{400}}});
  // Quiet for one polling_interval (the transport is usually still connecting), although
  // the quick rounds after start-up ask the EPMD every 100 ms.
  loop_.run_for(milliseconds(300));
  EXPECT_GE(epmd.accepted, 2u);
  EXPECT_TRUE(loop_.events.empty());
  ASSERT_TRUE(run_until_event(1));
  ASSERT_EQ(loop_.failures.size(), 1u);
  EXPECT_TRUE(contains(loop_.failures[0], "local node's name is not known")) << loop_.failures[0];
  EXPECT_TRUE(contains(loop_.failures[0], "`host`")) << loop_.failures[0];
  EXPECT_TRUE(loop_.reports.empty());
  // The transport learns the local node: the next round names the nodes.
  loop_.local_node = "x@h2";
  EXPECT_EQ(instance_->refresh(), CLUSTERD_OK);
  ASSERT_TRUE(run_until_event(2));
  ASSERT_EQ(loop_.reports.size(), 1u);
  EXPECT_EQ(loop_.reports[0], (std::vector<std::string>{"a@h2"}));
}

TEST_F(LocalEpmdTest, RescansSoThatLaterNodesJoin) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start(epmd.port(), {{"host", std::string("h")}, {"polling_interval", Duration{30}}});
  ASSERT_TRUE(run_until_event(1));
  epmd.names.push_back({"late", 4002});
  ASSERT_TRUE(
      loop_.run_until([&] { return !loop_.reports.empty() && loop_.reports.back().size() == 2; }));
  EXPECT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@h", "late@h"}));
}

// The schedule is quick after start-up (and after any change), so a node registering just
// after clusterd started is found long before one polling_interval.
TEST_F(LocalEpmdTest, QuickAfterStartUpThoughTheIntervalIsLong) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start(epmd.port(), {{"host", std::string("h")}, {"polling_interval", Duration{600000}}});
  ASSERT_TRUE(run_until_event(1));
  epmd.names.push_back({"late", 4002});
  ASSERT_TRUE(
      loop_.run_until([&] { return !loop_.reports.empty() && loop_.reports.back().size() == 2; },
                      milliseconds(5000)));
  EXPECT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@h", "late@h"}));
}

// A refresh (the transport's local nodes changed) while a scan runs is not lost: the scan runs
// again, and the older answer is not reported.
TEST_F(LocalEpmdTest, ARefreshWhileAScanRunsScansAgainAfterIt) {
  FakeEpmd epmd(loop_, Mode::hang);
  epmd.names = {{"a", 4001}};
  start(epmd.port(), {{"host", std::string("h")},
                      {"polling_interval", Duration{-1}},
                      {"epmd_timeout", Duration{300}}});
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() == 1; }));
  epmd.set_mode(Mode::answer);
  EXPECT_EQ(instance_->refresh(), CLUSTERD_OK);
  ASSERT_TRUE(run_until_event(1));
  EXPECT_EQ(epmd.accepted, 2u);
  EXPECT_EQ(loop_.events, (std::vector<std::string>{"set_nodes"})) << "no failure for the old scan";
  EXPECT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@h"}));
}

TEST_F(LocalEpmdTest, InfinityScansOnce) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start(epmd.port(), {{"host", std::string("h")}, {"polling_interval", Duration{-1}}});
  ASSERT_TRUE(run_until_event(1));
  EXPECT_EQ(loop_.registrations(), 0u) << "no timer: one scan, like libcluster";
}

TEST_F(LocalEpmdTest, EmptyEpmdIsARealAnswer) {
  FakeEpmd epmd(loop_);
  start(epmd.port(), {{"host", std::string("h")}});
  ASSERT_TRUE(run_until_event(1));
  ASSERT_EQ(loop_.reports.size(), 1u);
  EXPECT_TRUE(loop_.reports[0].empty());
}

TEST_F(LocalEpmdTest, UnreachableEpmdFailsTheRoundNeverAnEmptySet) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  start(epmd.port(), {{"host", std::string("h")}});
  ASSERT_TRUE(run_until_event(1));
  ASSERT_EQ(loop_.reports.size(), 1u);
  for (Mode bad : {Mode::close_at_once, Mode::raw, Mode::truncate}) {
    epmd.set_mode(bad);
    epmd.raw_reply = "garbage";
    epmd.truncate_at = 9;
    const std::size_t before = loop_.events.size();
    EXPECT_EQ(instance_->refresh(), CLUSTERD_OK);
    ASSERT_TRUE(run_until_event(before + 1));
    EXPECT_EQ(loop_.events.back(), "discovery_failed");
    EXPECT_TRUE(contains(loop_.failures.back(), "EPMD at 127.0.0.1:" + std::to_string(epmd.port())))
        << loop_.failures.back();
  }
  EXPECT_EQ(loop_.reports.size(), 1u) << "the last good set stays";
}

TEST_F(LocalEpmdTest, RefusedAndTimedOut) {
  FakeEpmd refusing(loop_, Mode::refuse);
  start(refusing.port(), {{"host", std::string("h")}});
  ASSERT_TRUE(run_until_event(1));
  ASSERT_EQ(loop_.failures.size(), 1u);
  EXPECT_EQ(loop_.failures[0],
            "EPMD at 127.0.0.1:" + std::to_string(refusing.port()) + ": connection refused");
  instance_.reset();
  FakeEpmd hanging(loop_, Mode::hang);
  loop_.failures.clear();
  start(hanging.port(), {{"host", std::string("h")}, {"epmd_timeout", Duration{100}}});
  ASSERT_TRUE(loop_.run_until([&] { return !loop_.failures.empty(); }));
  EXPECT_TRUE(contains(loop_.failures[0], "timed out after 100 ms")) << loop_.failures[0];
}

TEST_F(LocalEpmdTest, ATickWhileAScanRunsIsSkipped) {
  FakeEpmd epmd(loop_, Mode::hang);
  start(epmd.port(), {{"host", std::string("h")},
                      {"polling_interval", Duration{10}},
                      {"epmd_timeout", Duration{2000}}});
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() == 1; }));
  loop_.run_for(milliseconds(100));  // ~10 ticks
  EXPECT_EQ(epmd.accepted, 1u);
  instance_->stop();
  EXPECT_EQ(loop_.registrations(), 0u) << "stop cancels the scan in flight";
}

TEST_F(LocalEpmdTest, DeclaresItsConstraintsAndValidatesTheHost) {
  EXPECT_EQ(option_of(descriptor(), "epmd_port").max, 65535);
  EXPECT_EQ(option_of(descriptor(), "polling_interval").min, 1);
  EXPECT_TRUE(option_of(descriptor(), "epmd_timeout").flags & CLUSTERD_OPT_FINITE);
  for (const char *bad : {"a@b", "", "a b"}) {
    auto values = defaults_of(descriptor());
    values["host"] = std::string(bad);
    Config cfg(values);
    auto problems = validate(descriptor(), cfg);
    ASSERT_EQ(problems.size(), 1u) << bad;
    EXPECT_EQ(problems[0].rfind("host: ", 0), 0u) << problems[0];
  }
  auto values = defaults_of(descriptor());
  values["host"] = std::string("127.0.0.1");
  Config good(values);
  EXPECT_TRUE(validate(descriptor(), good).empty());
}

}  // namespace
