// A running transport shared by the topologies that name it: owns the transport instance and
// the connected set (the only one), routes each completion to the reconciler that asked, hands
// every transition of the set to all of them, and re-lists every resync_interval.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "plugin/instance.hpp"
#include "reconcile/connected_set.hpp"
#include "reconcile/reconciler.hpp"
#include "reconcile/supervisor.hpp"

namespace clusterd::reconcile {

class TransportLink final : public Link, public plugin::TransportEvents {
 public:
  // A plugin that fails is restarted under `restart`, with options from `options` (null:
  // never restarted).
  TransportLink(plugin::HostServices &services, config::TransportSpec spec,
                const RestartPolicy &restart, OptionsLoader options);
  ~TransportLink() override;

  // Creates, initialises and starts the plugin. On failure state() is "restarting" (or
  // "failed" when it cannot be restarted) and error() says why.
  void start(std::shared_ptr<const plugin::Module> module,
             std::unique_ptr<config::OptionValues> values);
  void fail(const std::string &error);
  // A new plugin instance with `values` (same settings, a secret changed), at once. The
  // topologies stay; what they had in flight fails back to them and is retried.
  void reconfigure(std::unique_ptr<config::OptionValues> values);

  const config::TransportSpec &spec() const { return spec_; }
  const std::string &state() const { return state_; }
  const std::string &error() const { return error_; }
  bool running() const { return state_ == "running"; }
  std::vector<std::string> local_nodes() const;
  // The plugin instance (null when it could not be created), for status, metrics and control.
  const std::shared_ptr<plugin::Instance> &instance() const { return instance_; }
  std::uint64_t plugin_failures() const { return plugin_failures_; }
  const std::string &last_failure() const { return last_failure_; }
  const Supervisor &supervisor() const { return supervisor_; }

  // Called with every transition of connected() after the reconcilers have seen it: what event
  // hooks watch, so they work with every transport.
  using ConnectedChanged = std::function<void(const std::vector<ConnectedChange> &)>;
  void on_connected_changed(ConnectedChanged f) { connected_changed_ = std::move(f); }
  // A failed plugin, for people watching (metrics::EventFeed).
  void on_event(std::function<void(nlohmann::json)> f) { on_event_ = std::move(f); }

  // A reconciler using this transport; `local_changed` runs after it has the new local names.
  void subscribe(Reconciler &reconciler, std::function<void()> local_changed);
  // Cancels what `reconciler` has in flight; nothing comes back to it afterwards.
  void unsubscribe(Reconciler &reconciler);

  // Link
  const ConnectedSet &connected() const override { return connected_; }
  bool connect(Reconciler &from, std::uint64_t op, const std::string &node,
               std::string &error) override;
  bool disconnect(Reconciler &from, std::uint64_t op, const std::string &node,
                  std::string &error) override;
  void cancel(std::uint64_t op) override;

 private:
  // plugin::TransportEvents: deferred to a later loop turn, so a plugin that completes inside
  // connect() never re-enters a reconciler that is mid-step.
  void on_complete(clusterd_id_t op, clusterd_status_t status, std::string message) override;
  void on_list(clusterd_id_t op, clusterd_status_t status, std::string message,
               std::vector<std::string> nodes) override;
  void on_node_up(std::string node) override;
  void on_node_down(std::string node, std::string reason) override;
  void on_local_changed() override;

  void restart();
  // Stops the instance: resync off, operations in flight fail back to their reconcilers.
  void stop_instance(const std::string &why);
  // Hands the (new) local names to the reconcilers.
  void local_changed();
  bool call(bool connect, Reconciler &from, std::uint64_t op, const std::string &node,
            std::string &error);
  void list();
  template <typename F>
  void later(F &&f);
  // Hands transitions of connected_ to every reconciler, then to the hooks.
  void publish(const std::vector<ConnectedChange> &changes);

  plugin::HostServices &services_;
  config::TransportSpec spec_;
  std::string state_ = "starting";
  std::string error_, last_failure_;
  std::uint64_t plugin_failures_ = 0;
  std::shared_ptr<const plugin::Module> module_;
  std::shared_ptr<plugin::Instance> instance_;
  Supervisor supervisor_;
  OptionsLoader options_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  struct Subscriber {
    Reconciler *reconciler;
    std::function<void()> local_changed;
  };
  std::vector<Subscriber> subscribers_;
  struct Op {
    Reconciler *from;
    std::string node;
    bool connect;
  };
  std::map<std::uint64_t, Op> ops_;
  std::uint64_t list_op_ = 0;
  std::uint64_t resync_timer_ = 0;
  ConnectedSet connected_;
  ConnectedChanged connected_changed_;
  std::function<void(nlohmann::json)> on_event_;
  std::set<std::string> changed_since_list_;  // while a listing is in flight
};

}  // namespace clusterd::reconcile
