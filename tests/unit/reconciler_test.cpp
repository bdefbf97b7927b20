#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>

#include "reconcile/reconciler.hpp"

using namespace clusterd::reconcile;
using clusterd::config::DisconnectPolicy;
using namespace std::chrono_literals;

namespace {

TimePoint g_now = TimePoint{} + 1000h;  // the fake clock
TimePoint fake_now() {
  return g_now;
}

// Records what the reconciler asks for; the test completes operations by hand, updating the
// connected set first as TransportLink does.
struct FakeTransport : Link, Runtime {
  ConnectedSet set;
  std::map<std::uint64_t, std::string> connects, disconnects;  // in flight
  std::vector<std::string> connect_log, disconnect_log;
  std::vector<std::uint64_t> cancelled;
  std::optional<TimePoint> wake;
  int step_requests = 0;
  bool refuse = false;

  const ConnectedSet &connected() const override { return set; }
  bool connect(Reconciler &, std::uint64_t op, const std::string &node,
               std::string &error) override {
    if (refuse) return error = "refused at once", false;
    connects[op] = node;
    connect_log.push_back(node);
    return true;
  }
  bool disconnect(Reconciler &, std::uint64_t op, const std::string &node, std::string &) override {
    disconnects[op] = node;
    disconnect_log.push_back(node);
    return true;
  }
  void cancel(std::uint64_t op) override { cancelled.push_back(op), connects.erase(op); }
  void wake_at(std::optional<TimePoint> when) override { wake = when; }
  void request_step() override { ++step_requests; }
  void connecting(const std::string &) override {}
  void connected(const std::string &) override {}
  void disconnecting(const std::string &) override {}
  void connect_failed(const std::string &, const std::string &, unsigned,
                      std::chrono::milliseconds) override {}
  void disconnected(const std::string &, bool, const std::string &) override {}

  std::uint64_t op_for(const std::string &node) const {
    for (const auto &[op, n] : connects)
      if (n == node) return op;
    return 0;
  }
};

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() { use(DisconnectPolicy::never); }
  // A fresh reconciler under `disconnect` (the policy is fixed at construction).
  void use(DisconnectPolicy disconnect, FormationRule formation = {}) {
    Policy p = make_policy();
    p.disconnect = disconnect;
    p.formation = formation;
    reconciler = std::make_unique<Reconciler>(p, fake, fake, 42);
    reconciler->set_clock(fake_now);
  }
  static Policy make_policy() {
    Policy p;
    p.max_parallel = 2;
    p.connect_timeout = 5s;
    p.backoff_initial = 1s;
    p.backoff_max = 8s;
    return p;
  }
  void step() { reconciler->step(g_now); }
  std::string state_of(const std::string &node) {
    for (const auto &s : reconciler->status(g_now))
      if (s.name == node) return std::string(to_string(s.state));
    return "absent";
  }
  void complete(const std::string &node, bool ok, const std::string &error = "") {
    auto op = fake.op_for(node);
    ASSERT_NE(op, 0u) << node << " has no connect in flight";
    fake.connects.erase(op);
    if (ok) reconciler->on_connected(fake.set.up(node));
    reconciler->on_result(op, ok, error);
  }
  void complete_disconnect(std::uint64_t op, bool ok) {
    auto node = fake.disconnects.at(op);
    fake.disconnects.erase(op);
    if (ok) reconciler->on_connected(fake.set.down(node, "disconnected by clusterd"));
    reconciler->on_result(op, ok, "");
  }
  // What the link does with a listing and with nodedown.
  void listed(const std::vector<std::string> &nodes) {
    reconciler->on_connected(fake.set.replace({nodes.begin(), nodes.end()}, "no longer listed"));
  }
  void node_down(const std::string &node) {
    reconciler->on_connected(fake.set.down(node, "nodedown"));
  }

  FakeTransport fake;
  std::unique_ptr<Reconciler> reconciler;
};

}  // namespace

TEST_F(ReconcilerTest, ConnectsMissingNodesWithBoundedParallelism) {
  reconciler->set_desired({"a@h", "b@h", "c@h"});
  EXPECT_GT(fake.step_requests, 0);
  step();
  EXPECT_EQ(fake.connects.size(), 2u);  // max_parallel
  EXPECT_EQ(reconciler->in_flight(), 2u);
  complete(fake.connect_log[0], true);
  step();
  EXPECT_EQ(fake.connect_log.size(), 3u);  // a slot freed: the third starts
  for (auto node : {"a@h", "b@h", "c@h"}) {
    if (fake.op_for(node)) complete(node, true);
  }
  step();
  for (auto node : {"a@h", "b@h", "c@h"}) EXPECT_EQ(state_of(node), "connected") << node;
  EXPECT_EQ(fake.connect_log.size(), 3u);
  EXPECT_FALSE(fake.wake);  // nothing due: no wake-up
}

TEST_F(ReconcilerTest, AlreadyConnectedAndLocalNodesAreNotConnected) {
  reconciler->set_local({"me@h"});
  listed({"a@h"});
  reconciler->set_desired({"a@h", "me@h", "b@h"});
  step();
  EXPECT_EQ(fake.connect_log, std::vector<std::string>{"b@h"});
  EXPECT_EQ(state_of("a@h"), "connected");
  EXPECT_EQ(state_of("me@h"), "absent");
}

TEST_F(ReconcilerTest, FailedConnectsBackOffExponentiallyWithJitter) {
  reconciler->set_desired({"a@h"});
  step();
  std::vector<std::chrono::milliseconds> delays;
  for (int attempt = 1; attempt <= 6; ++attempt) {
    complete("a@h", false, "unreachable");
    EXPECT_EQ(state_of("a@h"), "backoff");
    ASSERT_TRUE(fake.wake);
    step();
    auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*fake.wake - g_now);
    delays.push_back(delay);
    // Equal jitter: within [d/2, d], d = 1s doubling up to 8s.
    auto full = std::min<std::int64_t>(1000LL << (attempt - 1), 8000);
    EXPECT_GE(delay.count(), full / 2) << "attempt " << attempt;
    EXPECT_LE(delay.count(), full) << "attempt " << attempt;
    g_now += delay - 1ms;
    step();
    EXPECT_EQ(fake.connects.size(), 0u) << "retried too early";
    g_now += 1ms;
    step();
    EXPECT_EQ(fake.connects.size(), 1u) << "not retried when due";
  }
  auto status = reconciler->status(g_now);
  EXPECT_EQ(status[0].attempts, 6u);
  EXPECT_EQ(status[0].last_error, "unreachable");
  complete("a@h", true);
  EXPECT_EQ(reconciler->status(g_now)[0].attempts, 0u);
}

TEST_F(ReconcilerTest, JitterStaysInBoundsOverManyDraws) {
  for (unsigned attempts = 1; attempts <= 10; ++attempts) {
    auto full = std::min<std::int64_t>(1000LL << std::min(attempts - 1, 20u), 8000);
    std::int64_t lo = full, hi = 0;
    for (int i = 0; i < 500; ++i) {
      auto d = reconciler->backoff(attempts).count();
      lo = std::min(lo, d), hi = std::max(hi, d);
    }
    EXPECT_GE(lo, full / 2);
    EXPECT_LE(hi, full);
    EXPECT_LT(lo, hi) << "no jitter at attempt " << attempts;
  }
}

TEST_F(ReconcilerTest, SlowConnectsTimeOutAndAreCancelled) {
  reconciler->set_desired({"a@h"});
  step();
  auto op = fake.op_for("a@h");
  ASSERT_TRUE(fake.wake);
  EXPECT_EQ(*fake.wake, g_now + 5s);
  g_now += 5s;
  step();
  EXPECT_EQ(fake.cancelled, std::vector<std::uint64_t>{op});
  EXPECT_EQ(state_of("a@h"), "backoff");
  EXPECT_NE(reconciler->status(g_now)[0].last_error.find("timed out"), std::string::npos);
  reconciler->on_result(op, true, "");  // a late completion of the cancelled op is ignored
  EXPECT_EQ(state_of("a@h"), "backoff");
}

TEST_F(ReconcilerTest, SynchronousRefusalCountsAsAFailedAttempt) {
  fake.refuse = true;
  reconciler->set_desired({"a@h"});
  step();
  EXPECT_EQ(state_of("a@h"), "backoff");
  EXPECT_EQ(reconciler->status(g_now)[0].last_error, "refused at once");
  EXPECT_EQ(reconciler->in_flight(), 0u);
}

TEST_F(ReconcilerTest, NeverPolicyKeepsConnectionsOfRemovedNodes) {
  reconciler->set_desired({"a@h", "b@h"});
  step();
  complete("a@h", true);
  complete("b@h", true);
  reconciler->set_desired({"a@h"});
  step();
  EXPECT_TRUE(fake.disconnect_log.empty());
  EXPECT_EQ(state_of("b@h"), "absent");
}

TEST_F(ReconcilerTest, RemovedPolicyDisconnectsOnlyWhatLeftDiscovery) {
  use(DisconnectPolicy::removed);
  listed({"other@h"});  // connected by someone else: never ours to cut
  reconciler->set_desired({"a@h", "b@h"});
  step();
  complete("a@h", true);
  complete("b@h", true);
  reconciler->set_desired({"a@h"});
  EXPECT_EQ(fake.disconnect_log, std::vector<std::string>{"b@h"});
  EXPECT_EQ(state_of("b@h"), "disconnecting");
  complete_disconnect(fake.disconnects.begin()->first, true);
  EXPECT_EQ(state_of("b@h"), "absent");
  reconciler->set_desired({});
  EXPECT_EQ(fake.disconnect_log, (std::vector<std::string>{"b@h", "a@h"}));
}

TEST_F(ReconcilerTest, RemovedWhileConnectingIsDisconnectedOnceConnected) {
  use(DisconnectPolicy::removed);
  reconciler->set_desired({"a@h"});
  step();
  reconciler->set_desired({});
  EXPECT_TRUE(fake.disconnect_log.empty());
  complete("a@h", true);
  EXPECT_EQ(fake.disconnect_log, std::vector<std::string>{"a@h"});
}

TEST_F(ReconcilerTest, FailedDiscoveryNeverShrinksTheDesiredSet) {
  use(DisconnectPolicy::removed);
  reconciler->set_desired({"a@h", "b@h"});
  step();
  complete("a@h", true);
  complete("b@h", true);
  reconciler->discovery_failed("403 Forbidden");
  step();
  EXPECT_EQ(reconciler->desired(), (std::vector<std::string>{"a@h", "b@h"}));
  EXPECT_TRUE(fake.disconnect_log.empty());
  EXPECT_EQ(reconciler->discovery_error(), "403 Forbidden");
  reconciler->set_desired({"a@h", "b@h"});
  EXPECT_EQ(reconciler->discovery_error(), "");
}

TEST_F(ReconcilerTest, NodeDownIsRetriedAtOnceWhenItWasStable) {
  reconciler->set_desired({"a@h"});
  step();
  complete("a@h", true);
  g_now += 1h;
  node_down("a@h");
  step();
  EXPECT_EQ(fake.connect_log.size(), 2u);
  EXPECT_EQ(state_of("a@h"), "connecting");
}

TEST_F(ReconcilerTest, FlappingNodeBacksOff) {
  reconciler->set_desired({"a@h"});
  step();
  complete("a@h", true);
  g_now += 100ms;
  node_down("a@h");
  step();
  EXPECT_EQ(fake.connect_log.size(), 1u);
  EXPECT_EQ(state_of("a@h"), "backoff");
}

TEST_F(ReconcilerTest, ListingDiffsBecomeUpAndDownEvents) {
  reconciler->set_desired({"a@h", "b@h"});
  listed({"a@h", "b@h"});
  step();
  EXPECT_TRUE(fake.connect_log.empty());
  g_now += 1h;
  listed({"a@h"});
  step();
  EXPECT_EQ(fake.connect_log, std::vector<std::string>{"b@h"});
}

TEST_F(ReconcilerTest, EventStyleStrategies) {
  use(DisconnectPolicy::removed);
  reconciler->node_seen("a@h");
  step();
  complete("a@h", true);
  EXPECT_EQ(state_of("a@h"), "connected");
  reconciler->node_lost("a@h");
  EXPECT_EQ(fake.disconnect_log, std::vector<std::string>{"a@h"});
}

TEST_F(ReconcilerTest, TenThousandNodeChangeIsLinearish) {
  Policy p = make_policy();
  p.max_parallel = 100000;
  FakeTransport big;
  Reconciler r(p, big, big, 1);
  r.set_clock(fake_now);
  std::vector<std::string> nodes;
  for (int i = 0; i < 10000; ++i) nodes.push_back("n" + std::to_string(i) + "@h");
  r.set_desired(nodes);
  r.step(g_now);
  EXPECT_EQ(big.connects.size(), 10000u);
}

TEST_F(ReconcilerTest, ReadsTheLinksConnectedSetWithoutCopyingIt) {
  // Another topology on the same transport connected a@h: this reconciler sees it at once.
  fake.set.up("a@h");
  reconciler->set_desired({"a@h", "b@h"});
  step();
  EXPECT_EQ(fake.connect_log, std::vector<std::string>{"b@h"});
  EXPECT_EQ(state_of("a@h"), "connected");
  EXPECT_EQ(reconciler->connected_count(), 1u);
}

TEST(ConnectedSet, ReportsOnlyTransitions) {
  ConnectedSet set;
  EXPECT_EQ(set.up("a@h").size(), 1u);
  EXPECT_TRUE(set.up("a@h").empty());
  EXPECT_TRUE(set.down("b@h", "gone").empty());
  auto changes = set.replace({"b@h"}, "no longer listed");
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].node, "a@h");
  EXPECT_FALSE(changes[0].up);
  EXPECT_EQ(changes[0].reason, "no longer listed");
  EXPECT_EQ(changes[1].node, "b@h");
  EXPECT_TRUE(changes[1].up);
  EXPECT_EQ(set.nodes(), std::set<std::string>{"b@h"});
}

TEST(PolicyOf, FillsEveryFieldFromTheSpecAndTheModuleDefault) {
  clusterd::config::TopologySpec spec;
  spec.connect_timeout = 3s;
  spec.max_parallel = 7;
  spec.backoff_initial = 2s;
  spec.backoff_max = 9s;
  spec.min_nodes = 3;
  spec.stable_for = 4s;
  auto p = policy_of(spec, true);
  EXPECT_EQ(p.formation.min_nodes, 3u);
  EXPECT_EQ(p.formation.stable_for, 4s);
  EXPECT_EQ(p.disconnect, DisconnectPolicy::removed);
  EXPECT_EQ(p.connect_timeout, 3s);
  EXPECT_EQ(p.max_parallel, 7u);
  EXPECT_EQ(p.backoff_initial, 2s);
  EXPECT_EQ(p.backoff_max, 9s);
  EXPECT_EQ(policy_of(spec, false).disconnect, DisconnectPolicy::never);
  spec.disconnect = DisconnectPolicy::never;
  EXPECT_EQ(policy_of(spec, true).disconnect, DisconnectPolicy::never);  // the spec wins
}

// ---- the formation gate (min_nodes, stable_for) ----------------------------------------------

TEST_F(ReconcilerTest, WithoutAGateItFormsAtTheFirstDiscovery) {
  EXPECT_FALSE(reconciler->formed());  // no discovery yet
  reconciler->set_desired({});
  step();
  EXPECT_TRUE(reconciler->formed());  // nothing to connect
  reconciler->set_desired({"a@h"});
  step();
  EXPECT_EQ(fake.connect_log, std::vector<std::string>{"a@h"});
  EXPECT_FALSE(reconciler->formed());  // a@h is not connected yet (Topology latches the first)
  complete("a@h", true);
  EXPECT_TRUE(reconciler->formed());
}

TEST_F(ReconcilerTest, MinNodesHoldsEveryConnectUntilEnoughAreDiscovered) {
  use(DisconnectPolicy::never, {3, 0ms});
  reconciler->set_local({"me@h"});
  reconciler->set_desired({"a@h", "me@h"});  // the local node counts once
  step();
  EXPECT_TRUE(fake.connect_log.empty());
  EXPECT_FALSE(fake.wake) << "only a report can open a count gate: no wake-up";
  auto status = reconciler->formation_status(g_now);
  EXPECT_EQ(status["gate"], "waiting");
  EXPECT_EQ(status["nodes"], 2);
  EXPECT_EQ(formation_text(status), "waiting: 2 of 3 nodes");
  EXPECT_EQ(state_of("a@h"), "pending");
  reconciler->discovery_failed("timeout");  // a failed round changes nothing
  step();
  EXPECT_TRUE(fake.connect_log.empty());
  reconciler->node_seen("b@h");
  step();
  EXPECT_EQ(fake.connect_log.size(), 2u);  // both at once, as without a gate
  EXPECT_FALSE(reconciler->formed());
  complete("a@h", true);
  complete("b@h", true);
  step();
  EXPECT_TRUE(reconciler->formed());
}

TEST_F(ReconcilerTest, StableForWaitsUntilTheSetHasNotChangedForThatLong) {
  use(DisconnectPolicy::never, {1, 5s});
  const auto t0 = g_now;
  reconciler->set_desired({"a@h"});
  step();
  EXPECT_TRUE(fake.connect_log.empty());
  ASSERT_TRUE(fake.wake);
  EXPECT_EQ(*fake.wake, t0 + 5s);  // the timer, not polling
  g_now += 3s;
  reconciler->set_desired({"a@h"});  // the same set again: the clock goes on
  step();
  EXPECT_EQ(*fake.wake, t0 + 5s);
  g_now += 200ms;
  reconciler->set_desired({"a@h", "b@h"});  // a change: it starts again
  step();
  EXPECT_EQ(*fake.wake, t0 + 3200ms + 5s);
  g_now = t0 + 4200ms;
  EXPECT_EQ(formation_text(reconciler->formation_status(g_now)), "waiting: stable 1 s of 5 s");
  g_now = t0 + 8199ms;
  step();
  EXPECT_TRUE(fake.connect_log.empty()) << "opened 1 ms early";
  g_now += 1ms;
  step();
  EXPECT_EQ(fake.connect_log.size(), 2u);
}

TEST_F(ReconcilerTest, BothRulesAndTheTextThatShowsThem) {
  use(DisconnectPolicy::never, {3, 5s});
  EXPECT_EQ(formation_text(reconciler->formation_status(g_now)),
            "waiting for a successful discovery");
  reconciler->set_local({"me@h"});
  reconciler->set_desired({"a@h"});
  g_now += 1200ms;
  EXPECT_EQ(formation_text(reconciler->formation_status(g_now)),
            "waiting: 2 of 3 nodes, stable 1.2 s of 5 s");
  step();
  EXPECT_FALSE(fake.wake) << "too few nodes: the stable clock alone cannot open it";
  reconciler->set_desired({"a@h", "b@h"});
  step();
  ASSERT_TRUE(fake.wake);
  g_now = *fake.wake;
  step();
  EXPECT_EQ(fake.connect_log.size(), 2u);
  auto status = reconciler->formation_status(g_now);
  EXPECT_EQ(formation_text(status), "connecting: 0 of 2 node(s) connected");
  status["formed"] = true;
  EXPECT_EQ(formation_text(status), "formed");
}

TEST_F(ReconcilerTest, OnceOpenTheGateStaysOpenWhenNodesLeave) {
  use(DisconnectPolicy::never, {3, 0ms});
  reconciler->set_desired({"a@h", "b@h", "c@h"});
  step();
  complete("a@h", true);
  complete("b@h", true);
  reconciler->set_desired({"a@h"});  // shrinks below min_nodes
  g_now += 11s;                      // past stable_after: a drop is retried at once
  node_down("a@h");
  step();
  EXPECT_EQ(fake.connect_log.back(), "a@h") << "reconnected although only 1 of 3 is discovered";
  EXPECT_EQ(reconciler->formation_status(g_now)["gate"], "open");
}
