// One running topology: its strategy instance feeds a reconciler, which drives the shared
// transport. Stopping a topology never disconnects a node.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "app/transport.hpp"
#include "metrics/exposition.hpp"
#include "reconcile/reconciler.hpp"

namespace clusterd::app {

class Topology final : public plugin::StrategyEvents,
                       public reconcile::Actions,
                       public TransportListener {
 public:
  Topology(plugin::HostServices &services, config::TopologySpec spec, Transport *transport);
  ~Topology() override;

  void start(std::shared_ptr<const plugin::Module> module,
             std::unique_ptr<config::OptionValues> values);
  void fail(const std::string &error);

  const config::TopologySpec &spec() const { return spec_; }
  const std::string &state() const { return state_; }
  nlohmann::json status() const;
  const reconcile::Reconciler &reconciler() const { return reconciler_; }
  const plugin::Instance *strategy() const { return strategy_.get(); }

  // What the metrics listener exports (since this topology was started).
  struct Counters {
    std::uint64_t connect_attempts = 0, connect_failures = 0;
    std::uint64_t discovery_rounds = 0, discovery_errors = 0;
    std::uint64_t plugin_failures = 0;
    std::size_t discovered = 0;  // names in the strategy's last report
    metrics::Histogram discovery_seconds;
  };
  const Counters &counters() const { return counters_; }
  // How many of the nodes this topology wants are connected.
  std::size_t connected_count() const;

 private:
  // plugin::StrategyEvents
  void on_nodes(std::vector<std::string> nodes) override;
  void on_node_seen(std::string node) override;
  void on_node_lost(std::string node) override;
  void on_discovery_failed(std::string reason) override;
  std::optional<std::string> local_node() override;

  // reconcile::Actions
  bool connect(std::uint64_t op, const std::string &node, std::string &error) override;
  bool disconnect(std::uint64_t op, const std::string &node, std::string &error) override;
  void cancel(std::uint64_t op) override;
  void wake_at(std::optional<reconcile::TimePoint> when) override;
  void request_step() override;
  void connected(const std::string &node) override;
  void connect_failed(const std::string &node, const std::string &error, unsigned attempts,
                      std::chrono::milliseconds retry_in) override;
  void disconnected(const std::string &node, bool ok, const std::string &error) override;

  // TransportListener
  void on_op_result(std::uint64_t op, bool ok, const std::string &error) override;
  void on_node_up(const std::string &node) override;
  void on_node_down(const std::string &node) override;
  void on_listed(const std::vector<std::string> &nodes) override;
  void on_local_changed(const std::vector<std::string> &local) override;

  static reconcile::Policy policy_of(const config::TopologySpec &spec);
  void round_done(bool failed);

  plugin::HostServices &services_;
  config::TopologySpec spec_;
  Transport *transport_;
  std::string state_ = "starting";
  std::string error_;
  config::DisconnectPolicy disconnect_ = config::DisconnectPolicy::never;
  reconcile::Reconciler reconciler_;
  boost::asio::steady_timer wake_;
  std::optional<reconcile::TimePoint> wake_when_;
  bool step_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<plugin::Instance> strategy_;
  Counters counters_;
};

}  // namespace clusterd::app
