// The reconciler of one topology: the desired node set (from the strategy) against the
// transport link's connected set. It connects what is missing with bounded parallelism,
// a timeout and jittered exponential backoff, and disconnects only under the topology's
// policy. Pure logic on an injected clock: the topology feeds events, the link does the I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <clusterd/backoff.hpp>

#include "config/config.hpp"
#include "reconcile/connected_set.hpp"
#include "reconcile/formation.hpp"

namespace clusterd::reconcile {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using std::chrono::milliseconds;

struct Policy {
  config::DisconnectPolicy disconnect = config::DisconnectPolicy::never;
  // The defaults of [topologies.NAME] (config/host_keys.hpp), for tests and benches; a running
  // topology gets every field from its spec (policy_of).
  milliseconds connect_timeout{config::host_default_int("topologies.NAME", "connect_timeout")};
  std::uint32_t max_parallel =
      static_cast<std::uint32_t>(config::host_default_int("topologies.NAME", "max_parallel"));
  milliseconds backoff_initial{config::host_default_int("topologies.NAME", "backoff_initial")};
  milliseconds backoff_max{config::host_default_int("topologies.NAME", "backoff_max")};
  // A node that drops sooner than this after connecting counts as a failed attempt (backoff),
  // so a flapping peer is not hammered.
  milliseconds stable_after{10'000};
  // The gate before the first connect (min_nodes, stable_for); the default opens at once.
  FormationRule formation;
};

// The one place a topology's policy is made: every field from its spec; `disconnect` falls back
// to "removed" for strategies whose module says so (disconnects_removed), else "never".
Policy policy_of(const config::TopologySpec &spec, bool module_disconnects_removed);

class Reconciler;

// The transport as a reconciler sees it (TransportLink; a fake in tests). Completions come back
// through Reconciler::on_result, never inline; the link updates connected() and hands the
// transitions to on_connected() before it delivers a result.
class Link {
 public:
  virtual ~Link() = default;
  virtual const ConnectedSet &connected() const = 0;
  // Starts an asynchronous connect/disconnect numbered `op` for `from`; false (with `error`) if
  // it could not even start.
  virtual bool connect(Reconciler &from, std::uint64_t op, const std::string &node,
                       std::string &error) = 0;
  virtual bool disconnect(Reconciler &from, std::uint64_t op, const std::string &node,
                          std::string &error) = 0;
  virtual void cancel(std::uint64_t op) = 0;
};

// What the reconciler asks of the loop it runs on, and what it reports (for logs and counters).
// Nothing here carries a node back into the reconciler.
class Runtime {
 public:
  virtual ~Runtime() = default;
  // Call step() at `when` (replaces the previous request); nullopt = nothing is due.
  virtual void wake_at(std::optional<TimePoint> when) = 0;
  // Call step() soon (after the current batch of events).
  virtual void request_step() = 0;
  // Reports (the reconciler itself does no I/O).
  virtual void connecting(const std::string &node) = 0;
  virtual void connected(const std::string &node) = 0;
  virtual void connect_failed(const std::string &node, const std::string &error, unsigned attempts,
                              milliseconds retry_in) = 0;
  virtual void disconnecting(const std::string &node) = 0;
  virtual void disconnected(const std::string &node, bool ok, const std::string &error) = 0;
  // The formation gate opened (never called when the policy has no gate).
  virtual void gate_opened(std::size_t nodes) { (void)nodes; }
};

enum class NodeState { pending, connecting, connected, backoff, disconnecting };
std::string_view to_string(NodeState state);

struct NodeStatus {
  std::string name;
  NodeState state;
  unsigned attempts;
  std::string last_error;
  std::optional<milliseconds> retry_in;
};

class Reconciler {
 public:
  Reconciler(Policy policy, Link &link, Runtime &runtime, std::uint64_t seed);

  // ---- strategy side ----
  void set_desired(const std::vector<std::string> &nodes);  // a full, successful round
  void node_seen(const std::string &node);
  void node_lost(const std::string &node);
  // A failed round never shrinks the desired set: only the error is recorded.
  void discovery_failed(const std::string &reason);

  // ---- transport side (from the link) ----
  // Transitions of link.connected(), whatever their source (completions, listings, events).
  void on_connected(const std::vector<ConnectedChange> &changes);
  void set_local(const std::vector<std::string> &names);  // never connect these
  void on_result(std::uint64_t op, bool ok, const std::string &error);

  // Starts what is due (connects, timeouts) and re-arms the wake-up. Call on request.
  void step(TimePoint now);

  // ---- introspection ----
  std::vector<NodeStatus> status(TimePoint now) const;
  std::vector<std::string> desired() const;
  // Desired nodes that are connected.
  std::size_t connected_count() const;
  const Policy &policy() const { return policy_; }
  std::optional<TimePoint> last_discovery() const { return last_discovery_; }
  const std::string &discovery_error() const { return discovery_error_; }
  std::size_t in_flight() const { return in_flight_; }
  // Discovered nodes as the formation gate counts them: the desired ones and the local ones.
  std::size_t discovered_count() const { return desired_count_ + local_.size(); }
  // Formed: a successful discovery, the gate open, and every desired node connected.
  bool formed() const;
  // Formation::status plus "connected" and "desired" counts.
  nlohmann::json formation_status(TimePoint now) const;
  // The backoff before attempt `attempts + 1` (jittered, within [d/2, d]).
  milliseconds backoff(unsigned attempts);

  // The time source used by event handlers (step() gets it explicitly). Tests set a fake.
  void set_clock(TimePoint (*now)()) { now_ = now; }

 private:
  enum class Phase { idle, connecting, disconnecting };
  // Connectedness is not kept here: it is link_.connected(), read through connected().
  struct Node {
    bool desired = false;
    Phase phase = Phase::idle;
    std::uint64_t op = 0;
    TimePoint deadline{};
    TimePoint next_attempt{};
    TimePoint connected_since{};
    unsigned attempts = 0;
    bool queued = false;
    std::string last_error;
  };
  using Nodes = std::map<std::string, Node>;

  bool connected(const std::string &name) const { return link_.connected().contains(name); }
  void node_up(const std::string &node);
  void node_down(const std::string &node);
  void desire(const std::string &name, TimePoint now);
  void undesire(Nodes::iterator it, TimePoint now);
  void enqueue(Nodes::iterator it, TimePoint when);
  void dequeue(Nodes::iterator it);
  void start_connect(Nodes::iterator it, TimePoint now);
  void start_disconnect(Nodes::iterator it);
  void fail_attempt(Nodes::iterator it, const std::string &error, TimePoint now);
  void forget_if_unused(Nodes::iterator it);
  bool wants_disconnect(Nodes::const_iterator it) const;
  // After a successful report: tells the gate, restarting its clock if the set changed.
  void reported(std::uint64_t changes_before, TimePoint now);

  Policy policy_;
  Link &link_;
  Runtime &runtime_;
  std::mt19937_64 random_;
  TimePoint (*now_)() = [] { return Clock::now(); };
  Nodes nodes_;
  std::set<std::pair<TimePoint, std::string>> waiting_;      // due connects, by time
  std::set<std::pair<TimePoint, std::uint64_t>> deadlines_;  // in-flight connects
  std::unordered_map<std::uint64_t, std::string> ops_;       // op → node
  std::set<std::string> local_;
  std::size_t in_flight_ = 0;  // connects only; disconnects are not rate-limited
  std::size_t desired_count_ = 0;
  std::uint64_t changes_ = 0;  // of the desired set, for the gate's stable clock
  Formation formation_;
  std::optional<TimePoint> last_discovery_;
  std::string discovery_error_;
};

}  // namespace clusterd::reconcile
