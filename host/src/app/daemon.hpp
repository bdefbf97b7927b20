// The composition root: loads the configuration and plugins, runs transports and topologies
// on one Asio loop, serves the control socket, and handles SIGTERM/SIGINT (stop, never
// disconnecting anything) and SIGHUP (reload: unchanged topologies keep running untouched).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "app/notify.hpp"
#include "app/readiness.hpp"
#include "config/config.hpp"
#include "control/commands.hpp"
#include "control/control_server.hpp"
#include "control/event_sessions.hpp"
#include "hooks/runner.hpp"
#include "metrics/http_server.hpp"
#include "plugin/registry.hpp"
#include "reconcile/topology.hpp"

namespace clusterd::app {

// A configuration with its plugins found and their options checked.
struct Prepared {
  struct Unit {
    std::shared_ptr<const plugin::Module> module;  // null: load_error says why
    std::string load_error;
    std::unique_ptr<config::OptionValues> values;
  };
  config::DaemonConfig config;
  std::map<std::string, Unit> transports, topologies;
};

// Finds every plugin of a parsed file (its plugin_path, then the usual directories) and checks
// their options. Returns every problem of the file and of the options, sorted by position
// (`out` is usable only when there are none); a plugin that cannot be found or loaded fails
// only its own unit (Unit::load_error).
std::vector<config::Problem> prepare(config::ParseResult parsed, Prepared &out);

class Daemon {
 public:
  Daemon();
  ~Daemon();

  // Runs until SIGTERM/SIGINT. `path` empty = the embedded default. Returns the exit code.
  int run(const std::string &path);

 private:
  // What control/ and metrics/ read: the units and settings, for one request.
  control::DaemonView view() const;
  std::string summary() const { return control::summary(view()); }
  bool load(std::vector<std::string> &problems, std::unique_ptr<Prepared> &out);
  void apply(std::unique_ptr<Prepared> prepared);
  void reload();
  void shutdown();
  void wait_signal();
  // Starts, replaces or stops the metrics listener to match metrics_listen ("" = none).
  bool configure_metrics(const std::string &address, std::string &error);
  // How a restart gets a unit's options: checked again from the applied configuration, so
  // secrets (`*_file`, `*_env`) are read again too.
  reconcile::OptionsLoader options_loader(const config::DaemonConfig &config,
                                          const config::TransportSpec *transport,
                                          const config::TopologySpec *topology) const;

  // First: it takes NOTIFY_SOCKET out of the environment before any thread starts.
  Notifier notifier_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  plugin::HostServices services_;
  std::string path_;
  config::Settings settings_;
  hooks::Runner hooks_{io_};
  reconcile::RestartPolicy restart_policy_;  // from settings_; the units hold a reference
  // What happened lately (status "events", the status page's /events); outlives the units.
  metrics::EventFeed events_;
  // {"cmd":"events"} sessions: the feed's listener while the daemon lives.
  std::shared_ptr<control::EventSessions> event_sessions_ =
      std::make_shared<control::EventSessions>(events_);
  // Topologies hold references to transport links: declared after, so destroyed first.
  reconcile::Transports transports_;
  reconcile::Topologies topologies_;
  Readiness readiness_{io_, notifier_, topologies_, [this] { return summary(); }};
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<metrics::HttpServer> metrics_;
  std::string metrics_address_;  // as configured (the listener's may resolve port 0)
  bool applied_ = false;
  std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
};

}  // namespace clusterd::app
