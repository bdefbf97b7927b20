// One running topology: its strategy instance reports node names, which its reconciler turns
// into connects on the shared transport link. Stopping a topology never disconnects a node.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "metrics/exposition.hpp"
#include "reconcile/reconciler.hpp"
#include "reconcile/supervisor.hpp"
#include "reconcile/transport_link.hpp"

namespace clusterd::reconcile {

class Topology final : public plugin::StrategyEvents, public Runtime {
 public:
  // `module` null: it could not be loaded (fail() follows). The policy is fixed here, from the
  // spec and the module's default. A strategy that fails is restarted under `restart`, with
  // options from `options` (null: never restarted).
  Topology(plugin::HostServices &services, config::TopologySpec spec, TransportLink &link,
           std::shared_ptr<const plugin::Module> module, const RestartPolicy &restart,
           OptionsLoader options);
  ~Topology() override;

  void start(std::unique_ptr<config::OptionValues> values);
  // The strategy failed: "restarting" (after the supervisor's backoff), or "failed" for good
  // when it cannot be restarted (its plugin could not be loaded).
  void fail(const std::string &error);
  // A new strategy instance with `values` (same settings, a secret changed), at once.
  void reconfigure(std::unique_ptr<config::OptionValues> values);
  // A discovery round now (clusterctl refresh); `error` says why not.
  plugin::Instance::Call refresh(std::string &error);

  const config::TopologySpec &spec() const { return spec_; }
  const std::string &state() const { return state_; }
  nlohmann::json status() const;
  const Reconciler &reconciler() const { return reconciler_; }
  // Formed once (a successful discovery, the formation gate passed, every discovered node
  // connected); it stays formed. `f` runs once, when it becomes formed.
  bool formed() const { return formed_; }
  void on_formed(std::function<void()> f) { on_formed_ = std::move(f); }
  // What people watching are told (metrics::EventFeed): a discovery that starts failing (and its
  // reason) or recovers, a failed strategy.
  void on_event(std::function<void(nlohmann::json)> f) { on_event_ = std::move(f); }
  // The strategy instance (null before start or when it could not be created).
  const std::shared_ptr<plugin::Instance> &strategy() const { return strategy_; }

  // What the metrics listener exports (since this topology was started).
  struct Counters {
    std::uint64_t connect_attempts = 0, connect_failures = 0;
    std::uint64_t discovery_rounds = 0, discovery_errors = 0;
    std::uint64_t plugin_failures = 0;  // restarts: supervisor().restarts()
    std::size_t discovered = 0;         // names in the strategy's last report
    metrics::Histogram discovery_seconds;
  };
  const Counters &counters() const { return counters_; }
  const Supervisor &supervisor() const { return supervisor_; }

 private:
  // plugin::StrategyEvents: where a node name enters the core.
  void on_nodes(std::vector<std::string> nodes) override;
  void on_node_seen(std::string node) override;
  void on_node_lost(std::string node) override;
  void on_discovery_failed(std::string reason) override;
  std::optional<std::string> local_node() override;

  // Runtime
  void wake_at(std::optional<TimePoint> when) override;
  void request_step() override;
  void connecting(const std::string &node) override;
  void connected(const std::string &node) override;
  void connect_failed(const std::string &node, const std::string &error, unsigned attempts,
                      milliseconds retry_in) override;
  void disconnecting(const std::string &node) override;
  void disconnected(const std::string &node, bool ok, const std::string &error) override;
  void gate_opened(std::size_t nodes) override;

  void step();  // the reconciler's step, then whether it has formed
  void restart();
  void round_done(bool failed);
  void local_changed();

  plugin::HostServices &services_;
  config::TopologySpec spec_;
  TransportLink &link_;
  std::shared_ptr<const plugin::Module> module_;
  std::string state_ = "starting";
  std::string error_, last_failure_;
  bool waits_for_transport_ = false;  // the last start failed because the transport did not run
  Reconciler reconciler_;
  boost::asio::steady_timer wake_;
  std::optional<TimePoint> wake_when_;
  bool step_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<plugin::Instance> strategy_;
  Counters counters_;
  std::optional<double> last_round_ms_;  // the latest round's latency, when it was measured
  bool formed_ = false;
  std::function<void()> on_formed_;
  std::function<void(nlohmann::json)> on_event_;
  void event(nlohmann::json e) {
    if (on_event_) on_event_(std::move(e));
  }
  Supervisor supervisor_;
  OptionsLoader options_;
};

using Transports = std::map<std::string, std::unique_ptr<TransportLink>>;
using Topologies = std::map<std::string, std::unique_ptr<Topology>>;

}  // namespace clusterd::reconcile
