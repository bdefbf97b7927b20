// Safe initial formation: the gate a topology passes before its first connect (at least
// min_nodes discovered, the local node included, and the discovered set unchanged for
// stable_for), and the one rendering of where a topology stands that status and logs show.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace clusterd::reconcile {

struct FormationRule {
  std::size_t min_nodes = 1;  // 0 or 1: no count to wait for
  std::chrono::milliseconds stable_for{0};
  bool gates() const { return min_nodes > 1 || stable_for.count() > 0; }
};

// Pure logic on times it is given. Once open it stays open: nodes lost later do not stop
// connecting (the gate is about not forming an island at start, not about quorum).
class Formation {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit Formation(FormationRule rule) : rule_(rule), open_(!rule.gates()) {}

  // A successful discovery report (a round, or a node seen or lost); the set counts as stable
  // from the first one at the earliest.
  void discovered(TimePoint now) {
    if (!discovered_) changed_at_ = now;
    discovered_ = true;
  }
  // The discovered set (or the local node) changed: the stable clock starts again.
  void changed(TimePoint now) { changed_at_ = now; }

  // Opens the gate when `nodes` discovered meet the rule at `now`. While closed, `recheck` is
  // when the rule may hold without another report (nullopt: only a report can open it).
  bool open(std::size_t nodes, TimePoint now, std::optional<TimePoint> &recheck);
  bool is_open() const { return open_; }

  // {"gate": "open"|"waiting", "discovered", "nodes", "min_nodes", "stable_ms", "stable_for_ms"}
  nlohmann::json status(std::size_t nodes, TimePoint now) const;

 private:
  FormationRule rule_;
  bool open_;
  bool discovered_ = false;
  TimePoint changed_at_{};
};

// Where a topology stands, from its status "formation" object (Topology::status): "formed",
// "waiting: 2 of 3 nodes, stable 1.2 s of 5 s", "connecting: 1 of 2 nodes connected", ... Used
// by clusterctl status and by the daemon's ready_timeout log line.
std::string formation_text(const nlohmann::json &formation);

}  // namespace clusterd::reconcile
