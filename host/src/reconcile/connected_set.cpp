#include "reconcile/connected_set.hpp"

namespace clusterd::reconcile {

std::vector<ConnectedChange> ConnectedSet::up(const std::string &node) {
  if (!nodes_.insert(node).second) return {};
  return {{node, true, ""}};
}

std::vector<ConnectedChange> ConnectedSet::down(const std::string &node,
                                                const std::string &reason) {
  if (!nodes_.erase(node)) return {};
  return {{node, false, reason}};
}

std::vector<ConnectedChange> ConnectedSet::replace(std::set<std::string> listed,
                                                   const std::string &reason) {
  std::vector<ConnectedChange> changes;
  for (const auto &node : nodes_)
    if (!listed.count(node)) changes.push_back({node, false, reason});
  for (const auto &node : listed)
    if (!nodes_.count(node)) changes.push_back({node, true, ""});
  nodes_ = std::move(listed);
  return changes;
}

}  // namespace clusterd::reconcile
