// The nodes a transport is connected to: one set per transport link, the only record of it.
// Every change goes through here and comes out as transitions, which the link hands on. It also
// remembers the nodes that went down lately and why (for status: "which members are down").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace clusterd::reconcile {

// A node joining (up) or leaving the connected set; `reason` of a leave when known.
struct ConnectedChange {
  std::string node;
  bool up = false;
  std::string reason;
};

// A node that left the set and has not come back: why, and since when (Unix ms).
struct LostNode {
  std::string reason;
  std::int64_t since_ms = 0;
  std::uint64_t order = 0;  // for evicting the oldest
};

class ConnectedSet {
 public:
  // Lost nodes remembered at most (the oldest is forgotten first).
  static constexpr std::size_t kMaxLost = 256;

  bool contains(const std::string &node) const { return nodes_.count(node) > 0; }
  const std::set<std::string> &nodes() const { return nodes_; }
  std::size_t size() const { return nodes_.size(); }
  const std::map<std::string, LostNode> &lost() const { return lost_; }

  // Each returns the transitions it made (none when the node was already in that state).
  std::vector<ConnectedChange> up(const std::string &node);
  std::vector<ConnectedChange> down(const std::string &node, const std::string &reason);
  // A complete listing: what is missing from `listed` leaves with `reason`.
  std::vector<ConnectedChange> replace(std::set<std::string> listed, const std::string &reason);

 private:
  void remember_lost(const std::string &node, const std::string &reason);

  std::set<std::string> nodes_;
  std::map<std::string, LostNode> lost_;
  std::uint64_t lost_order_ = 0;
};

}  // namespace clusterd::reconcile
