// The status page's event feed (host/src/metrics/event_feed) and clusterctl graph's renderings
// (host/ctl/graph): pure parts, checked without a daemon.
#include <gtest/gtest.h>

#include "graph.hpp"
#include "metrics/event_feed.hpp"

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

nlohmann::json status() {
  return nlohmann::json::parse(R"({
    "transports": [{"name": "beam", "plugin": "erlang", "state": "running",
                    "local_node": "self@h", "connected": ["self@h", "b@h", "x\"y@h"]}],
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
  EXPECT_EQ(dot.find("node:self@h"), std::string::npos);       // the centre, not a peer
}

TEST(Graph, MermaidUsesGeneratedIdsAndQuotedLabels) {
  auto mermaid = clusterctl::graph_mermaid(status());
  EXPECT_EQ(mermaid.rfind("flowchart LR\n  self((\"self@h\"))\n", 0), 0u);
  EXPECT_NE(mermaid.find("t0 -->|\"connected\"| n0"), std::string::npos);
  EXPECT_NE(mermaid.find("-.->|\"backoff\"|"), std::string::npos);
  EXPECT_NE(mermaid.find("(\"x#quot;y@h\")"), std::string::npos);
  EXPECT_EQ(mermaid.find("x\"y"), std::string::npos);
}

}  // namespace
