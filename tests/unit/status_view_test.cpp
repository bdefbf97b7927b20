// The status page's event feed (host/src/metrics/event_feed) and clusterctl graph's renderings
// (host/ctl/graph): pure parts, checked without a daemon.
#include <gtest/gtest.h>

#include "control/event_sessions.hpp"
#include "graph.hpp"
#include "metrics/event_feed.hpp"
#include "reconcile/connected_set.hpp"

namespace {

using clusterd::metrics::EventFeed;

struct Recorder : EventFeed::Listener {
  std::vector<nlohmann::json> seen;
  void on_event(const nlohmann::json &event) override { seen.push_back(event); }
};

TEST(EventFeed, KeepsTheLatestInABoundedRingWithSequenceNumbers) {
  EventFeed feed(3);
  for (int i = 0; i < 5; ++i) feed.publish({{"event", "reload"}, {"i", i}});
  auto recent = feed.recent(10);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0]["i"], 2);
  EXPECT_EQ(recent[2]["seq"], 5);
  EXPECT_TRUE(recent[2]["time_ms"].is_number_integer());
  EXPECT_EQ(feed.recent(1)[0]["i"], 4);
  EXPECT_TRUE(feed.recent(0).empty());
}

TEST(EventFeed, TellsLiveListenersAndForgetsGoneOnes) {
  EventFeed feed;
  auto kept = std::make_shared<Recorder>();
  auto gone = std::make_shared<Recorder>();
  feed.listen(kept);
  feed.listen(gone);
  EXPECT_EQ(feed.listeners(), 2u);
  feed.publish({{"event", "nodeup"}, {"node", "a@h"}});
  gone.reset();
  feed.publish({{"event", "nodedown"}, {"node", "a@h"}});
  EXPECT_EQ(feed.listeners(), 1u);
  ASSERT_EQ(kept->seen.size(), 2u);
  EXPECT_EQ(kept->seen[1]["event"], "nodedown");
  EXPECT_EQ(kept->seen[1]["seq"], 2);
}

// A control session as the event sessions see it: what they send, and a buffer that can fill.
struct FakeSession : clusterd::plugin::Session {
  explicit FakeSession(std::uint64_t id) : Session(id) {}
  clusterd_status_t send(std::string_view line) override {
    if (full) return CLUSTERD_E_AGAIN;
    lines.push_back(nlohmann::json::parse(line));
    return CLUSTERD_OK;
  }
  void end() override {}
  std::size_t buffered() const override { return 0; }
  clusterd_status_t detach(int &, std::string &) override { return CLUSTERD_E_UNSUPPORTED; }
  std::vector<nlohmann::json> lines;
  bool full = false;
};

TEST(EventSessions, ReplayTheAskedRecentEventsThenStreamAndTakeNoFurtherLines) {
  EventFeed feed;
  auto sessions = std::make_shared<clusterd::control::EventSessions>(feed);
  feed.listen(sessions);
  for (int i = 0; i < 4; ++i) feed.publish({{"event", "reload"}, {"i", i}});
  auto a = std::make_shared<FakeSession>(1), b = std::make_shared<FakeSession>(2);
  sessions->session_opened(a);
  sessions->session_opened(b);
  feed.publish({{"event", "nodeup"}});  // neither has started: nothing yet
  EXPECT_TRUE(a->lines.empty());
  std::string error;
  ASSERT_TRUE(sessions->session_line(1, R"({"cmd":"events","recent":2})", error));
  ASSERT_TRUE(sessions->session_line(2, R"({"cmd":"events"})", error));
  ASSERT_EQ(a->lines.size(), 3u);  // ok, then the latest two
  EXPECT_EQ(a->lines[0], nlohmann::json({{"ok", true}}));
  EXPECT_EQ(a->lines[1]["i"], 3);
  EXPECT_EQ(a->lines[2]["event"], "nodeup");
  ASSERT_EQ(b->lines.size(), 1u);
  feed.publish({{"event", "nodedown"}, {"node", "x@h"}});
  EXPECT_EQ(a->lines.back(), b->lines.back());  // the same object: seq and time too
  EXPECT_EQ(b->lines.back()["seq"], 6);
  EXPECT_FALSE(sessions->session_line(1, R"({"cmd":"status"})", error));
  EXPECT_EQ(error, "an events session takes no further requests");
  sessions->session_over(2);
  b.reset();
  feed.publish({{"event", "reload"}});
  EXPECT_EQ(sessions->sessions(), 1u);
  EXPECT_EQ(a->lines.back()["event"], "reload");
  EXPECT_TRUE(sessions->read_only("events"));
}

TEST(ConnectedSet, RemembersLostNodesAndWhyUntilTheyComeBackBounded) {
  clusterd::reconcile::ConnectedSet set;
  set.up("a@h");
  set.up("b@h");
  set.down("a@h", "left");
  ASSERT_EQ(set.lost().size(), 1u);
  EXPECT_EQ(set.lost().at("a@h").reason, "left");
  EXPECT_GT(set.lost().at("a@h").since_ms, 0);
  set.replace({"a@h"}, "not listed");  // a back, b gone
  EXPECT_EQ(set.lost().count("a@h"), 0u);
  EXPECT_EQ(set.lost().at("b@h").reason, "not listed");
  for (std::size_t i = 0; i < clusterd::reconcile::ConnectedSet::kMaxLost + 10; ++i) {
    auto node = "n" + std::to_string(i) + "@h";
    set.up(node);
    set.down(node, "gone");
  }
  EXPECT_EQ(set.lost().size(), clusterd::reconcile::ConnectedSet::kMaxLost);
  EXPECT_EQ(set.lost().count("b@h"), 0u);  // the oldest went first
  EXPECT_EQ(set.lost().count("n265@h"), 1u);
}

nlohmann::json status() {
  return nlohmann::json::parse(R"({
    "transports": [{"name": "beam", "plugin": "erlang", "state": "running",
                    "local_node": "self@h", "connected": ["self@h", "b@h", "x\"y@h"],
                    "down": [{"node": "d@h", "reason": "heartbeat timeout", "since_ms": 1},
                             {"node": "l@h", "reason": "left", "since_ms": 2}]}],
    "topologies": [{"name": "t", "transport": "beam", "nodes": [
      {"name": "b@h", "state": "connected"}, {"name": "c@h", "state": "backoff"},
      {"name": "self@h", "state": "connected"}]}]})");
}

TEST(Graph, DotDrawsThisNodeItsTransportAndTheOthersWithTheirState) {
  auto dot = clusterctl::graph_dot(status());
  EXPECT_EQ(dot.rfind("digraph clusterd {", 0), 0u);
  EXPECT_NE(dot.find(R"(self [shape=doublecircle, label="self@h"])"), std::string::npos);
  EXPECT_NE(dot.find(R"("transport:beam" -> "node:b@h" [color=forestgreen, label="connected\nt"])"),
            std::string::npos);
  EXPECT_NE(dot.find(R"("transport:beam" -> "node:c@h" [color=darkorange, style=dashed)"),
            std::string::npos);
  EXPECT_NE(dot.find(R"("node:x\"y@h")"), std::string::npos);  // quoted, not broken out of
  // Members down lately: why, and a graceful leave told apart.
  EXPECT_NE(
      dot.find(
          R"("transport:beam" -> "node:d@h" [color=firebrick, style=dashed, label="down: heartbeat timeout"])"),
      std::string::npos);
  EXPECT_NE(
      dot.find(R"("transport:beam" -> "node:l@h" [color=gray50, style=dashed, label="left"])"),
      std::string::npos);
  EXPECT_EQ(dot.find("node:self@h"), std::string::npos);  // the centre, not a peer
}

TEST(Graph, MermaidUsesGeneratedIdsAndQuotedLabels) {
  auto mermaid = clusterctl::graph_mermaid(status());
  EXPECT_EQ(mermaid.rfind("flowchart LR\n  self((\"self@h\"))\n", 0), 0u);
  EXPECT_NE(mermaid.find("t0 -->|\"connected\"| n0"), std::string::npos);
  EXPECT_NE(mermaid.find("-.->|\"backoff\"|"), std::string::npos);
  EXPECT_NE(mermaid.find("-.->|\"down: heartbeat timeout\"|"), std::string::npos);
  EXPECT_NE(mermaid.find("-.->|\"left\"|"), std::string::npos);
  EXPECT_NE(mermaid.find("(\"x#quot;y@h\")"), std::string::npos);
  EXPECT_EQ(mermaid.find("x\"y"), std::string::npos);
}

}  // namespace
