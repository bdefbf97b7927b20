// A running transport instance shared by the topologies that name it: it numbers nothing
// itself (the reconcilers do), routes completions back to the topology that asked, keeps the
// connected set from listings and nodeup/nodedown, and re-lists every resync_interval.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "plugin/instance.hpp"

namespace clusterd::app {

// What a transport tells the topologies that use it.
class TransportListener {
 public:
  virtual ~TransportListener() = default;
  virtual void on_op_result(std::uint64_t op, bool ok, const std::string &error) = 0;
  virtual void on_node_up(const std::string &node) = 0;
  virtual void on_node_down(const std::string &node) = 0;
  virtual void on_listed(const std::vector<std::string> &nodes) = 0;
  virtual void on_local_changed(const std::vector<std::string> &local) = 0;
};

// A node joining (up) or leaving the connected set; `reason` of a leave when known.
struct ConnectedChange {
  std::string node;
  bool up = false;
  std::string reason;
};

class Transport final : public plugin::TransportEvents {
 public:
  Transport(plugin::HostServices &services, config::TransportSpec spec);
  ~Transport() override;

  // Creates, initialises and starts the plugin. On failure state() is "failed" and error() says
  // why.
  void start(std::shared_ptr<const plugin::Module> module,
             std::unique_ptr<config::OptionValues> values);
  void fail(const std::string &error);

  const config::TransportSpec &spec() const { return spec_; }
  const std::string &state() const { return state_; }
  const std::string &error() const { return error_; }
  bool running() const { return state_ == "running"; }
  const std::set<std::string> &connected() const { return connected_; }
  std::vector<std::string> local_nodes();
  const std::map<std::string, std::string> *details() const;
  const plugin::Module *module() const { return instance_ ? &instance_->module() : nullptr; }
  const plugin::Instance *instance() const { return instance_.get(); }
  std::uint64_t plugin_failures() const { return plugin_failures_; }

  // Called with every transition of connected(), whatever its source (completions, listings,
  // nodeup/nodedown): what event hooks watch, so they work with every transport.
  using ConnectedChanged = std::function<void(const std::vector<ConnectedChange> &)>;
  void on_connected_changed(ConnectedChanged f) { connected_changed_ = std::move(f); }

  void subscribe(TransportListener *listener);
  void unsubscribe(TransportListener *listener);
  bool connect(std::uint64_t op, const std::string &node, TransportListener *from,
               std::string &error);
  bool disconnect(std::uint64_t op, const std::string &node, TransportListener *from,
                  std::string &error);
  void cancel(std::uint64_t op);

 private:
  // plugin::TransportEvents: completions are deferred to a later loop turn, so a plugin that
  // completes inside connect() never re-enters a reconciler that is mid-step.
  void on_complete(clusterd_id_t op, clusterd_status_t status, std::string message) override;
  void on_list(clusterd_id_t op, clusterd_status_t status, std::string message,
               std::vector<std::string> nodes) override;
  void on_node_up(std::string node) override;
  void on_node_down(std::string node, std::string reason) override;
  void on_local_changed() override;

  bool call(bool connect, std::uint64_t op, const std::string &node, TransportListener *from,
            std::string &error);
  void list();
  template <typename F>
  void later(F &&f);
  void set_connected(const std::string &node, bool up, const std::string &reason);

  plugin::HostServices &services_;
  config::TransportSpec spec_;
  std::string state_ = "starting";
  std::string error_;
  std::uint64_t plugin_failures_ = 0;
  std::shared_ptr<plugin::Instance> instance_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<TransportListener *> listeners_;
  struct Op {
    TransportListener *listener;
    std::string node;
    bool connect;
  };
  std::map<std::uint64_t, Op> ops_;
  std::uint64_t list_op_ = 0;
  std::uint64_t resync_timer_ = 0;
  std::set<std::string> connected_;
  ConnectedChanged connected_changed_;
  std::set<std::string> changed_since_list_;  // while a listing is in flight
};

}  // namespace clusterd::app
