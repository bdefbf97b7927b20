// One live plugin instance: the plugin's vtable, the host table it was given, and everything
// it registered (timers, watches, requests), so the host can call it safely, contain its
// failures, and cancel what it leaves behind at stop().
#pragma once

#include <clusterd/clusterd.h>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/schema.hpp"
#include "metrics/plugin_metrics.hpp"
#include "plugin/module.hpp"
#include "plugin/session.hpp"
#include "services/dns_resolver.hpp"
#include "services/fd_service.hpp"
#include "services/http_client.hpp"
#include "services/process_service.hpp"
#include "services/timer_service.hpp"
#include "services/work_pool.hpp"

namespace clusterd::plugin {

// A service built on first use: libcurl's TLS set-up and c-ares' resolver state cost memory
// that a daemon whose plugins never use HTTP or DNS should not pay.
template <typename Service>
class Lazy {
 public:
  explicit Lazy(boost::asio::io_context &io) : io_(io) {}
  Service &operator*() {
    if (!service_) service_ = std::make_unique<Service>(io_);
    return *service_;
  }
  Service *operator->() { return &**this; }
  Service *if_created() { return service_.get(); }

 private:
  boost::asio::io_context &io_;
  std::unique_ptr<Service> service_;
};

class Instance;

// The host-wide services instances draw on. Owned by the daemon.
struct HostServices {
  explicit HostServices(boost::asio::io_context &io)
      : io(io), timers(io), fds(io), work(io, 2), http(io), dns(io), processes(io) {}
  boost::asio::io_context &io;
  services::TimerService timers;
  services::FdService fds;
  services::WorkPool work;
  Lazy<services::HttpClient> http;
  Lazy<services::DnsResolver> dns;
  services::ProcessService processes;
};

// What a strategy instance reports; implemented by its topology.
struct StrategyEvents {
  virtual ~StrategyEvents() = default;
  virtual void on_nodes(std::vector<std::string> nodes) = 0;
  virtual void on_node_seen(std::string node) = 0;
  virtual void on_node_lost(std::string node) = 0;
  virtual void on_discovery_failed(std::string reason) = 0;
  virtual std::optional<std::string> local_node() = 0;
};

// What a transport instance reports; implemented by the transport link.
struct TransportEvents {
  virtual ~TransportEvents() = default;
  virtual void on_complete(clusterd_id_t op, clusterd_status_t status, std::string message) = 0;
  virtual void on_list(clusterd_id_t op, clusterd_status_t status, std::string message,
                       std::vector<std::string> nodes) = 0;
  virtual void on_node_up(std::string node) = 0;
  virtual void on_node_down(std::string node, std::string reason) = 0;
  virtual void on_local_changed() = 0;
};

// Node names a strategy reported against the node-name rule (clusterd/node_name.h), which the
// host refused at the sink: how many, and the last few distinct ones (escaped, newest last).
struct RefusedNames {
  static constexpr std::size_t kRecent = 8;
  std::uint64_t count = 0;
  std::deque<std::string> recent;
};

class Instance : public std::enable_shared_from_this<Instance>, public SessionTarget {
 public:
  enum class State { created, initialized, started, stopping, stopped, failed };

  // `label` is "topology NAME" / "transport NAME": it prefixes every log line. Exactly one
  // of `strategy_events` / `transport_events` is set, matching the module's kind.
  static std::shared_ptr<Instance> create(HostServices &services,
                                          std::shared_ptr<const Module> module, std::string label,
                                          StrategyEvents *strategy_events,
                                          TransportEvents *transport_events, std::string &error);
  ~Instance();  // stops (if needed) and destroys the plugin instance

  bool init(std::unique_ptr<config::OptionValues> values);
  bool start();
  void stop();

  State state() const { return state_.load(); }
  bool live() const;  // may call the host and be called back
  const std::string &error() const { return error_; }
  const std::string &label() const { return label_; }
  const Module &module() const { return *module_; }
  // The options it was initialised with (null before init): a reload compares their resolved
  // values (secrets read from files and the environment) with fresh ones.
  const config::OptionValues *options() const { return values_.get(); }
  const std::map<std::string, std::string> &details() const { return details_; }
  const metrics::PluginMetrics &metrics() const { return metrics_; }
  const RefusedNames &refused_names() const { return refused_names_; }
  // A discovery round's latency: from the first HTTP/DNS request after the previous report to
  // this report (set_nodes or discovery_failed). nullopt when the round made no request.
  std::optional<double> take_round_seconds();

  // Called (on a later loop turn) when the plugin misbehaves badly enough to be failed.
  void on_failure(std::function<void(const std::string &)> handler) {
    failure_handler_ = std::move(handler);
  }

  // ---- typed calls into the plugin [loop-thread]; the C vtables stay inside plugin/ ----
  // What an optional call came to: done, not implemented by the plugin, or failed (`error`).
  enum class Call { ok, unsupported, failed };
  // clusterd.transport/1: starts connect/disconnect numbered `op` (completion through
  // TransportEvents::on_complete); false with `error` when it did not start.
  bool connect(std::uint64_t op, const std::string &node, std::string &error);
  bool disconnect(std::uint64_t op, const std::string &node, std::string &error);
  // Cancels `op`; nothing when the plugin has no cancel or is not live.
  void cancel(std::uint64_t op);
  bool can_list() const { return transport_.list_nodes != nullptr; }
  // Starts a listing numbered `op` (answer through TransportEvents::on_list).
  Call list(std::uint64_t op, std::string &error);
  // This node's name as the transport knows it; nullopt when unknown or not live.
  std::optional<std::string> local_node();
  // clusterd.strategy/1: asks for a discovery round now.
  Call refresh(std::string &error);
  // The control extension (clusterd.control/1), if the plugin offers a usable one.
  bool has_control() const { return control_.request != nullptr; }

  // SessionTarget: sessions routed to this instance by the control socket.
  void session_opened(const std::shared_ptr<Session> &session) override;
  bool session_line(std::uint64_t id, const std::string &line, std::string &error) override;
  void session_over(std::uint64_t id) override;
  bool read_only(std::string_view cmd) const override;

  // Runs `call` (a call into the plugin) with exceptions contained. Returns false if it
  // threw; the instance is then failed.
  bool guarded(const char *what, const std::function<void()> &call);
  // The plugin's last_error(), or `fallback`.
  std::string plugin_error(const std::string &fallback);
  void log(int level, std::string_view message) const;
  void fail(const std::string &reason);

 private:
  friend struct Bridge;
  Instance(HostServices &services, std::shared_ptr<const Module> module, std::string label);
  bool start_op(bool connect, std::uint64_t op, const std::string &node, std::string &error);
  Call optional_call(const char *what, const std::function<clusterd_status_t()> &call,
                     std::string &error);
  void cancel_leftovers();
  void end_sessions();
  void session_closed(std::uint64_t id);

  HostServices &services_;
  std::shared_ptr<const Module> module_;
  std::string label_;
  std::atomic<State> state_{State::created};
  std::string error_;
  bool start_called_ = false;
  clusterd_host_t host_{};
  clusterd_plugin_t *plugin_ = nullptr;
  clusterd_plugin_t vtable_{};  // size-clamped copy of *plugin_
  clusterd_strategy_t strategy_{};
  clusterd_transport_t transport_{};
  clusterd_control_t control_{};
  std::vector<std::string> read_only_commands_;  // copied from control_ (ABI 1.4)
  // Open sessions, so sink calls reach only this instance's own.
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions_;
  std::unique_ptr<config::OptionValues> values_;
  StrategyEvents *strategy_events_ = nullptr;
  TransportEvents *transport_events_ = nullptr;
  std::function<void(const std::string &)> failure_handler_;
  std::map<std::string, std::string> details_;
  metrics::PluginMetrics metrics_;
  std::optional<std::chrono::steady_clock::time_point> round_started_;
  std::string local_node_buffer_;
  // The bytes a detached session's client sent past the line being handled (control.h, detach):
  // kept here until the plugin's request() returns.
  std::string detached_unread_;
  RefusedNames refused_names_;
  std::set<std::string> refused_logged_;  // distinct refused names already logged (bounded)

  // What the instance registered, for cancellation at stop().
  std::set<std::uint64_t> timers_, fds_, http_, dns_, work_;
  std::set<std::uint64_t> processes_;  // clusterd.process/1: cancel kills and reaps
};

}  // namespace clusterd::plugin
