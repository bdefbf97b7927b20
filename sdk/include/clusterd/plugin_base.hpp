// clusterd plugin SDK — the base classes a plugin derives from: Plugin, Strategy, Transport, with
// the calls the host makes into them and the sinks they report through.
#ifndef CLUSTERD_PLUGIN_BASE_HPP
#define CLUSTERD_PLUGIN_BASE_HPP

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "host.hpp"
#include "services.hpp"

namespace clusterd {

// ---- Plugin base classes ---------------------------------------------------------------------

/// Common base of Strategy and Transport. Derive from one of those, not from this.
/// The lifecycle is the C one: construct (must not use host()), init, start, stop, destroy.
/// Overrides report failure by throwing Error (or any exception).
class Plugin {
 public:
  /// Runs in create(): must not use host() (the table is not live yet).
  Plugin() = default;
  /// Runs in destroy(). Handles still alive here cancel their registrations (or, after stop,
  /// only free memory).
  virtual ~Plugin() = default;
  Plugin(const Plugin &) = delete;
  Plugin &operator=(const Plugin &) = delete;

  /// Reads the validated configuration; may use host services. Default: nothing.
  virtual void init(const Config &config) { (void)config; }
  /// Starts work (timers, first discovery). Must not block. Default: nothing.
  virtual void start() {}
  /// Stops all work and joins any thread the plugin owns; must return promptly. Handles still
  /// alive afterwards only free memory. Exceptions are logged. Default: nothing.
  virtual void stop() {}

  /// Control extension (ABI 1.1, control.h): a line from the client of control-socket
  /// `session` (the first one opens it). Answer with control_send(); control_end() when done.
  /// Optional: when a class does not override it, the plugin offers no control interface.
  /// Throwing answers {"error": ...} and ends the session. Commands that only report may be
  /// listed in `static constexpr const char *kReadOnlyCommands[] = {"members"};` (ABI 1.4):
  /// peers with read-only access may use those and no others (control.h).
  virtual void control_request(Id session, std::string_view line) {
    (void)session;
    (void)line;
  }
  /// The session is over (client gone, ended, too slow, stopping). Default: nothing.
  virtual void control_closed(Id session) { (void)session; }

  /// Queues one JSON line (no newline) for the session's client. Returns CLUSTERD_OK,
  /// CLUSTERD_E_NOT_FOUND (session over) or CLUSTERD_E_AGAIN (client too slow: the host ends
  /// the session).
  Status control_send(Id session, std::string_view line) {
    return control_sink()->send(host_.raw(), session, line.data(), line.size());
  }
  /// Ends the session once what was queued is written.
  void control_end(Id session) { control_sink()->end(host_.raw(), session); }
  /// Bytes queued for the session's client and not yet written.
  std::size_t control_buffered(Id session) {
    return control_sink()->buffered(host_.raw(), session);
  }

  /// ABI 1.6 (control.h, detach): takes the socket of `session` over from the host, from
  /// inside control_request() for that session. On CLUSTERD_OK `fd` is the plugin's (a
  /// non-blocking connected Unix socket; close it when done) and `unread` the bytes the client
  /// sent after the current line (valid until control_request() returns). CLUSTERD_E_UNSUPPORTED
  /// from a host older than 1.6; the other statuses are the C call's.
  Status control_detach(Id session, int &fd, std::string_view &unread) {
    const auto *sink = control_sink();
    if (!CLUSTERD_STRUCT_HAS(sink, clusterd_control_sink_t, detach) || sink->detach == nullptr)
      return CLUSTERD_E_UNSUPPORTED;
    const char *bytes = nullptr;
    std::size_t length = 0;
    const Status status = sink->detach(host_.raw(), session, &fd, &bytes, &length);
    unread = status == CLUSTERD_OK && bytes ? std::string_view(bytes, length) : std::string_view();
    return status;
  }

  /// This instance's host table (valid from init to destruction).
  Host &host() noexcept { return host_; }
  /// This instance's host table.
  const Host &host() const noexcept { return host_; }

 private:
  template <class T>
  friend struct detail::Exporter;

  // Runs `f`, turning exceptions into a status and last_error_.
  template <class F>
  Status guard(F &&f) noexcept {
    last_error_.clear();
    try {
      f();
      return CLUSTERD_OK;
    } catch (...) {
      return detail::current_exception_status(last_error_);
    }
  }
  void mark_stopped() noexcept { host_.mark_stopped(); }
  const clusterd_control_sink_t *control_sink() {
    if (control_sink_ == nullptr) {
      const auto *s = static_cast<const clusterd_control_sink_t *>(
          host_.service(CLUSTERD_SERVICE_CONTROL_SINK));
      if (s == nullptr || !CLUSTERD_STRUCT_HAS(s, clusterd_control_sink_t, buffered) ||
          s->send == nullptr || s->end == nullptr || s->buffered == nullptr)
        throw Error(CLUSTERD_E_UNSUPPORTED,
                    "the host offers no usable " CLUSTERD_SERVICE_CONTROL_SINK);
      control_sink_ = s;
    }
    return control_sink_;
  }

  Host host_;
  const clusterd_control_sink_t *control_sink_ = nullptr;
  clusterd_plugin_t raw_{};
  std::string last_error_;
  std::string local_node_;  // Transport::local_node()'s answer, kept until the next call
};

/// Base of a strategy: discovers nodes and reports them through the helpers below. Strategies
/// report, the host decides (diffing, retries, disconnects). Define `static constexpr` members
/// kName, kVersion (and optionally kDescription, kFlags, kAliases, kOptions), then
/// CLUSTERD_EXPORT_PLUGIN(YourClass) once.
class Strategy : public Plugin {
 public:
  /// The descriptor kind (deduced by CLUSTERD_EXPORT_PLUGIN).
  static constexpr uint32_t kKind = CLUSTERD_KIND_STRATEGY;

  /// Asks for a discovery round now. Optional: when a class does not override it, the
  /// interface's refresh pointer is NULL (the strategy discovers on its own schedule only).
  virtual void refresh() {}

  /// A complete discovery round: exactly `nodes` exist now (an empty list is a real answer).
  void report_nodes(const std::vector<std::string> &nodes) {
    const auto *s = sink();
    std::vector<const char *> names;
    names.reserve(nodes.size());
    for (const auto &n : nodes) names.push_back(n.c_str());
    s->set_nodes(host().raw(), names.empty() ? detail::kNoNodes : names.data(),
                 static_cast<uint32_t>(names.size()));
  }
  /// Event style: `node` appeared.
  void node_seen(std::string_view node) {
    const std::string n(node);
    sink()->node_seen(host().raw(), n.c_str());
  }
  /// Event style: `node` went away.
  void node_lost(std::string_view node) {
    const std::string n(node);
    sink()->node_lost(host().raw(), n.c_str());
  }
  /// A round failed; the host keeps the last good set and shows `reason`.
  void discovery_failed(std::string_view reason) {
    const std::string r(reason);
    sink()->discovery_failed(host().raw(), r.c_str());
  }
  /// The local node's name as the topology's transport knows it, or std::nullopt while unknown.
  std::optional<std::string> local_node_name() {
    const char *name = sink()->local_node(host().raw());
    if (name == nullptr) return std::nullopt;
    return std::string(name);
  }

 private:
  const clusterd_strategy_sink_t *sink() {
    if (sink_ == nullptr) {
      const auto *s = static_cast<const clusterd_strategy_sink_t *>(
          host().service(CLUSTERD_SERVICE_STRATEGY_SINK));
      if (s == nullptr || !CLUSTERD_STRUCT_HAS(s, clusterd_strategy_sink_t, local_node) ||
          s->set_nodes == nullptr || s->node_seen == nullptr || s->node_lost == nullptr ||
          s->discovery_failed == nullptr || s->local_node == nullptr)
        throw Error(CLUSTERD_E_UNSUPPORTED,
                    "the host offers no usable " CLUSTERD_SERVICE_STRATEGY_SINK);
      sink_ = s;
    }
    return sink_;
  }
  const clusterd_strategy_sink_t *sink_ = nullptr;
};

/// Base of a transport: connects, disconnects and lists nodes, and reports node up/down.
/// Every operation gets a host-chosen id; complete it exactly once with complete() /
/// complete_list() (possibly from inside the call), unless the call throws (then the operation
/// is over) or the host cancels it. Same static members as Strategy.
class Transport : public Plugin {
 public:
  /// The descriptor kind (deduced by CLUSTERD_EXPORT_PLUGIN).
  static constexpr uint32_t kKind = CLUSTERD_KIND_TRANSPORT;

  /// Connects the managed node(s) to `node` (borrowed for the call).
  virtual void connect(Id op, std::string_view node) = 0;
  /// Disconnects `node`; complete with CLUSTERD_E_NOT_FOUND if it was not connected.
  virtual void disconnect(Id op, std::string_view node) = 0;
  /// Lists the connected nodes (complete with complete_list()). Optional: if a class does not
  /// override it the interface's pointer is NULL; an override may also throw
  /// Error(CLUSTERD_E_UNSUPPORTED) to decline per instance.
  virtual void list_nodes(Id op) {
    (void)op;
    throw Error(CLUSTERD_E_UNSUPPORTED, "list_nodes is not supported");
  }
  /// Abandons an operation: it must not be completed afterwards. Optional (NULL if not
  /// overridden).
  virtual void cancel(Id op) { (void)op; }
  /// The local node's name, or std::nullopt while unknown. Optional (NULL if not overridden).
  virtual std::optional<std::string> local_node() { return std::nullopt; }

  /// Completes a connect or disconnect; `message` says why on failure.
  void complete(Id op, Status status, std::string_view message = {}) {
    const std::string m(message);
    sink()->complete(host().raw(), op, status, m.empty() ? nullptr : m.c_str());
  }
  /// Completes a list_nodes (on failure: a status, a message and no nodes).
  void complete_list(Id op, Status status, std::string_view message,
                     const std::vector<std::string> &nodes) {
    const std::string m(message);
    std::vector<const char *> names;
    names.reserve(nodes.size());
    for (const auto &n : nodes) names.push_back(n.c_str());
    sink()->complete_list(host().raw(), op, status, m.empty() ? nullptr : m.c_str(),
                          names.empty() ? detail::kNoNodes : names.data(),
                          static_cast<uint32_t>(names.size()));
  }
  /// The managed node gained a connection to `node`.
  void node_up(std::string_view node) {
    const std::string n(node);
    sink()->node_up(host().raw(), n.c_str());
  }
  /// The managed node lost its connection to `node`.
  void node_down(std::string_view node, std::string_view reason = {}) {
    const std::string n(node), r(reason);
    sink()->node_down(host().raw(), n.c_str(), r.empty() ? nullptr : r.c_str());
  }
  /// The local node's name changed or was lost/regained: the host re-reads it and re-lists.
  void local_changed() { sink()->local_changed(host().raw()); }

 private:
  const clusterd_transport_sink_t *sink() {
    if (sink_ == nullptr) {
      const auto *s = static_cast<const clusterd_transport_sink_t *>(
          host().service(CLUSTERD_SERVICE_TRANSPORT_SINK));
      if (s == nullptr || !CLUSTERD_STRUCT_HAS(s, clusterd_transport_sink_t, local_changed) ||
          s->complete == nullptr || s->complete_list == nullptr || s->node_up == nullptr ||
          s->node_down == nullptr || s->local_changed == nullptr)
        throw Error(CLUSTERD_E_UNSUPPORTED,
                    "the host offers no usable " CLUSTERD_SERVICE_TRANSPORT_SINK);
      sink_ = s;
    }
    return sink_;
  }
  const clusterd_transport_sink_t *sink_ = nullptr;
};

}  // namespace clusterd

#endif  // CLUSTERD_PLUGIN_BASE_HPP
