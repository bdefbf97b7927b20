// The control protocol's host side (docs/control-protocol.md): routes a connection's first line
// to a host command (ping, status) or to the plugin instance of a transport or topology.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "control/control_server.hpp"
#include "reconcile/topology.hpp"

namespace clusterd::control {

// What the control commands and the metrics listener read from the daemon. Built by the daemon
// for each request; it owns nothing and lives no longer than the request.
struct DaemonView {
  const reconcile::Transports &transports;
  const reconcile::Topologies &topologies;
  std::string config;                     // the file, or "<embedded>"
  bool applied = false;                   // the configuration has been applied
  std::function<nlohmann::json()> hooks;  // the hooks' counters, when asked for
  std::optional<std::string> metrics;     // the metrics listener's address, if any
  std::chrono::system_clock::time_point started_at;
  bool waiting = false;  // ready_when = "formed" and not formed yet (nor timed out)
  std::function<nlohmann::json()> events;  // the latest events (metrics::EventFeed), oldest first
  std::shared_ptr<plugin::SessionTarget> event_sessions;  // serves {"cmd":"events"}
};

// True once the configuration is applied, every transport and topology runs, and ready_when's
// condition has been met (app/readiness.hpp).
bool ready(const DaemonView &daemon);
// One line for systemd's STATUS= and /ready: topologies running, nodes connected.
std::string summary(const DaemonView &daemon);
// The answer of {"cmd": "status"}.
nlohmann::json status(const DaemonView &daemon);
// A control-socket first line: a host command's answer, or the instance it is routed to. Who
// may ask what is checked here, before anything is done.
Reply route(const Request &request, const DaemonView &daemon);
// The allow-lists of [clusterd] control_allow_* / control_read_*.
AccessPolicy access_policy(const config::Settings &settings);

}  // namespace clusterd::control
