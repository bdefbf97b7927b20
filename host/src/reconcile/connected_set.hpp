// The nodes a transport is connected to: one set per transport link, the only record of it.
// Every change goes through here and comes out as transitions, which the link hands on.
#pragma once

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

class ConnectedSet {
 public:
  bool contains(const std::string &node) const { return nodes_.count(node) > 0; }
  const std::set<std::string> &nodes() const { return nodes_; }
  std::size_t size() const { return nodes_.size(); }

  // Each returns the transitions it made (none when the node was already in that state).
  std::vector<ConnectedChange> up(const std::string &node);
  std::vector<ConnectedChange> down(const std::string &node, const std::string &reason);
  // A complete listing: what is missing from `listed` leaves with `reason`.
  std::vector<ConnectedChange> replace(std::set<std::string> listed, const std::string &reason);

 private:
  std::set<std::string> nodes_;
};

}  // namespace clusterd::reconcile
