#include "reconcile/connected_set.hpp"

#include <algorithm>

namespace clusterd::reconcile {

std::vector<ConnectedChange> ConnectedSet::up(const std::string &node) {
  if (!nodes_.insert(node).second) return {};
  lost_.erase(node);
  return {{node, true, ""}};
}

std::vector<ConnectedChange> ConnectedSet::down(const std::string &node,
                                                const std::string &reason) {
  if (!nodes_.erase(node)) return {};
  remember_lost(node, reason);
  return {{node, false, reason}};
}

std::vector<ConnectedChange> ConnectedSet::replace(std::set<std::string> listed,
                                                   const std::string &reason) {
  std::vector<ConnectedChange> changes;
  for (const auto &node : nodes_)
    if (!listed.count(node)) {
      changes.push_back({node, false, reason});
      remember_lost(node, reason);
    }
  for (const auto &node : listed)
    if (!nodes_.count(node)) {
      changes.push_back({node, true, ""});
      lost_.erase(node);
    }
  nodes_ = std::move(listed);
  return changes;
}

void ConnectedSet::remember_lost(const std::string &node, const std::string &reason) {
  if (!lost_.count(node) && lost_.size() >= kMaxLost)
    lost_.erase(std::min_element(lost_.begin(), lost_.end(), [](const auto &a, const auto &b) {
      return a.second.order < b.second.order;
    }));
  lost_[node] = {reason,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count(),
                 ++lost_order_};
}

}  // namespace clusterd::reconcile
