#include "reconcile/reconciler.hpp"

#include <algorithm>
#include <unordered_set>

#include "util/ids.hpp"

namespace clusterd::reconcile {

std::string_view to_string(NodeState state) {
  switch (state) {
    case NodeState::pending:
      return "pending";
    case NodeState::connecting:
      return "connecting";
    case NodeState::connected:
      return "connected";
    case NodeState::backoff:
      return "backoff";
    case NodeState::disconnecting:
      return "disconnecting";
  }
  return "unknown";
}

Policy policy_of(const config::TopologySpec &spec, bool module_disconnects_removed) {
  Policy policy;
  policy.disconnect =
      spec.disconnect.value_or(module_disconnects_removed ? config::DisconnectPolicy::removed
                                                          : config::DisconnectPolicy::never);
  policy.connect_timeout = spec.connect_timeout;
  policy.max_parallel = spec.max_parallel;
  policy.backoff_initial = spec.backoff_initial;
  policy.backoff_max = spec.backoff_max;
  policy.formation = {spec.min_nodes, spec.stable_for};
  return policy;
}

Reconciler::Reconciler(Policy policy, Link &link, Runtime &runtime, std::uint64_t seed)
    : policy_(policy),
      link_(link),
      runtime_(runtime),
      random_(seed),
      formation_(policy.formation) {}

milliseconds Reconciler::backoff(unsigned attempts) {
  // The SDK's one retry rule, which plugins use for their own redials too.
  return clusterd::backoff_delay(policy_.backoff_initial, policy_.backoff_max, attempts, random_);
}

// ---- strategy side -------------------------------------------------------------------------

void Reconciler::set_desired(const std::vector<std::string> &nodes) {
  auto now = now_();
  const auto changes = changes_;
  last_discovery_ = now;
  discovery_error_.clear();
  std::unordered_set<std::string> wanted(nodes.begin(), nodes.end());
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    auto next = std::next(it);
    if (!wanted.count(it->first)) {
      if (it->second.desired)
        undesire(it, now);
      else if (wants_disconnect(it))
        start_disconnect(it);  // retry a failed one
    }
    it = next;
  }
  for (const auto &node : wanted) desire(node, now);
  reported(changes, now);
}

void Reconciler::node_seen(const std::string &node) {
  auto now = now_();
  const auto changes = changes_;
  last_discovery_ = now;
  discovery_error_.clear();
  desire(node, now);
  reported(changes, now);
}

void Reconciler::node_lost(const std::string &node) {
  auto now = now_();
  const auto changes = changes_;
  last_discovery_ = now;
  if (auto it = nodes_.find(node); it != nodes_.end() && it->second.desired) undesire(it, now);
  reported(changes, now);
}

void Reconciler::reported(std::uint64_t changes_before, TimePoint now) {
  formation_.discovered(now);
  if (changes_ != changes_before) formation_.changed(now);
  runtime_.request_step();
}

void Reconciler::discovery_failed(const std::string &reason) {
  discovery_error_ = reason;
}

void Reconciler::desire(const std::string &name, TimePoint now) {
  if (local_.count(name)) return;  // never connect a node to itself
  auto [it, inserted] = nodes_.try_emplace(name);
  Node &node = it->second;
  if (node.desired) return;
  node.desired = true;
  ++desired_count_;
  ++changes_;
  node.attempts = 0;
  node.last_error.clear();
  if (!connected(name) && node.phase == Phase::idle) enqueue(it, now);
}

void Reconciler::undesire(Nodes::iterator it, TimePoint now) {
  it->second.desired = false;
  --desired_count_;
  ++changes_;
  dequeue(it);
  (void)now;
  if (wants_disconnect(it))
    start_disconnect(it);
  else
    forget_if_unused(it);
}

bool Reconciler::wants_disconnect(Nodes::const_iterator it) const {
  const Node &node = it->second;
  return policy_.disconnect == config::DisconnectPolicy::removed && !node.desired &&
         node.phase == Phase::idle && connected(it->first);
}

void Reconciler::forget_if_unused(Nodes::iterator it) {
  const Node &node = it->second;
  if (!node.desired && node.phase == Phase::idle && !wants_disconnect(it)) nodes_.erase(it);
}

// ---- transport side ------------------------------------------------------------------------

void Reconciler::on_connected(const std::vector<ConnectedChange> &changes) {
  for (const auto &change : changes) change.up ? node_up(change.node) : node_down(change.node);
}

// Transitions only: the link's set already holds the new state.
void Reconciler::node_up(const std::string &name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  Node &node = it->second;
  node.connected_since = now_();
  dequeue(it);
  if (node.desired) {
    node.attempts = 0;
    node.last_error.clear();
  } else if (wants_disconnect(it)) {
    start_disconnect(it);  // removed from discovery while it was connecting
  }
  runtime_.request_step();
}

void Reconciler::node_down(const std::string &name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  Node &node = it->second;
  auto now = now_();
  if (!node.desired) return forget_if_unused(it);
  if (node.phase != Phase::idle) return;
  if (now - node.connected_since < policy_.stable_after) {
    ++node.attempts;  // flapping: back off
    node.last_error = "connection dropped soon after connecting";
    enqueue(it, now + backoff(node.attempts));
  } else {
    node.attempts = 0;
    enqueue(it, now);  // a peer that drops is retried at once
  }
  runtime_.request_step();
}

void Reconciler::set_local(const std::vector<std::string> &names) {
  std::set<std::string> local(names.begin(), names.end());
  if (local != local_) {  // the gate counts the local node too
    formation_.changed(now_());
    runtime_.request_step();
  }
  local_ = std::move(local);
  for (const auto &name : local_) {
    auto it = nodes_.find(name);
    if (it == nodes_.end() || it->second.phase != Phase::idle) continue;
    dequeue(it);
    desired_count_ -= it->second.desired;
    nodes_.erase(it);
  }
}

void Reconciler::on_result(std::uint64_t op, bool ok, const std::string &error) {
  auto found = ops_.find(op);
  if (found == ops_.end()) return;  // cancelled or unknown: ignore
  auto it = nodes_.find(found->second);
  ops_.erase(found);
  if (it == nodes_.end() || it->second.op != op) return;
  Node &node = it->second;
  auto now = now_();
  bool was_connect = node.phase == Phase::connecting;
  node.phase = Phase::idle;
  node.op = 0;
  if (was_connect) {
    --in_flight_;
    deadlines_.erase({node.deadline, op});
    if (ok) {
      // The link has put the node in its set already (node_up set connected_since).
      node.attempts = 0;
      node.last_error.clear();
      runtime_.connected(it->first);
      if (wants_disconnect(it)) start_disconnect(it);
    } else {
      fail_attempt(it, error, now);
    }
  } else {
    runtime_.disconnected(it->first, ok, error);
    if (!ok) node.last_error = error;  // retried at the next discovery round
    if (!node.desired && ok)
      nodes_.erase(it);
    else if (node.desired && !connected(it->first))
      enqueue(it, now);
  }
  runtime_.request_step();
}

void Reconciler::fail_attempt(Nodes::iterator it, const std::string &error, TimePoint now) {
  Node &node = it->second;
  ++node.attempts;
  node.last_error = error;
  if (!node.desired || connected(it->first)) {
    forget_if_unused(it);
    return;
  }
  auto delay = backoff(node.attempts);
  runtime_.connect_failed(it->first, error, node.attempts, delay);
  enqueue(it, now + delay);
}

// ---- scheduling ----------------------------------------------------------------------------

void Reconciler::enqueue(Nodes::iterator it, TimePoint when) {
  dequeue(it);
  it->second.next_attempt = when;
  it->second.queued = true;
  waiting_.emplace(when, it->first);
}

void Reconciler::dequeue(Nodes::iterator it) {
  if (!it->second.queued) return;
  waiting_.erase({it->second.next_attempt, it->first});
  it->second.queued = false;
}

void Reconciler::start_connect(Nodes::iterator it, TimePoint now) {
  Node &node = it->second;
  auto op = util::next_id();
  node.phase = Phase::connecting;
  node.op = op;
  node.deadline = now + policy_.connect_timeout;
  ops_.emplace(op, it->first);
  deadlines_.emplace(node.deadline, op);
  ++in_flight_;
  runtime_.connecting(it->first);
  std::string error;
  if (!link_.connect(*this, op, it->first, error)) {
    ops_.erase(op);
    deadlines_.erase({node.deadline, op});
    --in_flight_;
    node.phase = Phase::idle;
    node.op = 0;
    fail_attempt(it, error, now);
  }
}

void Reconciler::start_disconnect(Nodes::iterator it) {
  Node &node = it->second;
  auto op = util::next_id();
  node.phase = Phase::disconnecting;
  node.op = op;
  ops_.emplace(op, it->first);
  runtime_.disconnecting(it->first);
  std::string error;
  if (!link_.disconnect(*this, op, it->first, error)) {
    ops_.erase(op);
    node.phase = Phase::idle;
    node.op = 0;
    node.last_error = error;
    runtime_.disconnected(it->first, false, error);
  }
}

void Reconciler::step(TimePoint now) {
  // Connects that ran out of time count as failed attempts.
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto op = deadlines_.begin()->second;
    link_.cancel(op);
    auto timeout = std::to_string(policy_.connect_timeout.count());
    on_result(op, false, "connect timed out after " + timeout + " ms");
  }
  // No connect before the formation gate opens; it says when to look again.
  const bool was_open = formation_.is_open();
  std::optional<TimePoint> recheck;
  const bool open = formation_.open(discovered_count(), now, recheck);
  if (open && !was_open) runtime_.gate_opened(discovered_count());
  while (open && in_flight_ < policy_.max_parallel && !waiting_.empty() &&
         waiting_.begin()->first <= now) {
    auto it = nodes_.find(waiting_.begin()->second);
    dequeue(it);
    start_connect(it, now);
  }
  std::optional<TimePoint> wake = recheck;
  if (!deadlines_.empty())
    wake = wake ? std::min(*wake, deadlines_.begin()->first) : deadlines_.begin()->first;
  if (open && !waiting_.empty() && in_flight_ < policy_.max_parallel) {
    auto next = std::max(waiting_.begin()->first, now);
    wake = wake ? std::min(*wake, next) : next;
  }
  runtime_.wake_at(wake);
}

// ---- introspection -------------------------------------------------------------------------

std::vector<NodeStatus> Reconciler::status(TimePoint now) const {
  std::vector<NodeStatus> out;
  for (auto it = nodes_.begin(); it != nodes_.end(); ++it) {
    const auto &[name, node] = *it;
    NodeStatus s{name, NodeState::pending, node.attempts, node.last_error, std::nullopt};
    if (node.phase == Phase::connecting)
      s.state = NodeState::connecting;
    else if (node.phase == Phase::disconnecting || wants_disconnect(it))
      s.state = NodeState::disconnecting;
    else if (connected(name))
      s.state = NodeState::connected;
    else if (node.queued && node.next_attempt > now) {
      s.state = NodeState::backoff;
      s.retry_in = std::chrono::duration_cast<milliseconds>(node.next_attempt - now);
    }
    if (!node.desired && s.state == NodeState::connected) continue;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> Reconciler::desired() const {
  std::vector<std::string> out;
  for (const auto &[name, node] : nodes_)
    if (node.desired) out.push_back(name);
  return out;
}

bool Reconciler::formed() const {
  return last_discovery_ && formation_.is_open() && connected_count() == desired_count_;
}

nlohmann::json Reconciler::formation_status(TimePoint now) const {
  auto out = formation_.status(discovered_count(), now);
  out["connected"] = connected_count();
  out["desired"] = desired_count_;
  return out;
}

std::size_t Reconciler::connected_count() const {
  std::size_t n = 0;
  for (const auto &[name, node] : nodes_) n += node.desired && connected(name);
  return n;
}

}  // namespace clusterd::reconcile
