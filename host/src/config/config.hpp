// The daemon's configuration: the TOML file parsed into typed specs (daemon settings, named
// transports, named topologies), every problem reported with file:line:column and key.
// Plugin-specific keys are kept as TOML and checked later against each plugin's schema.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/host_keys.hpp"

namespace clusterd::config {

// "file:line:column", or just "file" when the position is unknown.
std::string where(const std::string &file, const toml::source_region &region);

struct Problem {
  std::string where;  // file:line:column
  std::string key;    // dotted key, e.g. "topologies.example.config.hosts"
  std::string message;
  std::string str() const;  // "where: key: message"
};

enum class DisconnectPolicy { never, removed };
std::string_view to_string(DisconnectPolicy policy);

// The specs below are filled by parse(); their defaults come from kHostKeys (host_keys.hpp), the
// one place a default is written.
struct Settings {
  std::vector<std::string> plugin_path;
  std::string log_level{host_default("clusterd", "log_level")};
  std::string log_format{host_default("clusterd", "log_format")};
  std::string control_socket{host_default("clusterd", "control_socket")};
  // Who may use the control socket (control_allow_* / control_read_*), resolved to ids.
  std::vector<unsigned> control_allow_uids, control_allow_groups, control_read_uids,
      control_read_groups;
  std::string metrics_listen;  // "HOST:PORT" of the Prometheus listener; empty = none
  std::string ready_when{host_default("clusterd", "ready_when")};  // "started" or "formed"
  std::chrono::milliseconds ready_timeout{
      host_default_int("clusterd", "ready_timeout")};  // 0: none
  // Supervised restarts of failed units: first wait, and the cap (also the stable period).
  std::chrono::milliseconds restart_backoff{host_default_int("clusterd", "restart_backoff")};
  std::chrono::milliseconds restart_max{host_default_int("clusterd", "restart_max")};
  bool allow_no_topologies = false;  // a file without topologies is accepted
};

struct TransportSpec {
  std::string name;
  std::string plugin;
  std::string where;                        // of the [transports.NAME] table
  std::chrono::milliseconds resync_interval{// 0 = never re-list
                                            host_default_int("transports.NAME", "resync_interval")};
  // The [transports.NAME] table as parsed (with source positions): the plugin's keys are all
  // of it but kHostTransportKeys. Points into `document`.
  const toml::table *options = nullptr;
  std::shared_ptr<const toml::table> document;
  const toml::table *table = nullptr;  // the whole [transports.NAME] table, into `document`
};

struct TopologySpec {
  std::string name;
  std::string strategy;
  std::string transport;                       // resolved (defaulted when only one exists)
  std::optional<DisconnectPolicy> disconnect;  // nullopt = the strategy's default
  std::string where;
  std::string config_where;  // of [topologies.NAME.config]
  std::chrono::milliseconds connect_timeout{host_default_int("topologies.NAME", "connect_timeout")};
  std::uint32_t max_parallel =  // connects in flight at once
      static_cast<std::uint32_t>(host_default_int("topologies.NAME", "max_parallel"));
  std::chrono::milliseconds backoff_initial{host_default_int("topologies.NAME", "backoff_initial")};
  std::chrono::milliseconds backoff_max{host_default_int("topologies.NAME", "backoff_max")};
  // The formation gate before the first connect.
  std::size_t min_nodes =
      static_cast<std::size_t>(host_default_int("topologies.NAME", "min_nodes"));
  std::chrono::milliseconds stable_for{host_default_int("topologies.NAME", "stable_for")};
  const toml::table *options = nullptr;  // [topologies.NAME.config], or null; into `document`
  std::shared_ptr<const toml::table> document;
  const toml::table *table = nullptr;  // the whole [topologies.NAME] table, into `document`
};

// [hooks]: commands run when a node joins or leaves a transport's connected set.
struct HooksSpec {
  std::vector<std::string> on_nodeup, on_nodedown;  // argv; empty = no command
  std::chrono::milliseconds timeout{host_default_int("hooks", "timeout")};  // then TERM, KILL
  std::uint32_t max_running = static_cast<std::uint32_t>(host_default_int("hooks", "max_running"));
  // Events waiting for a free slot; more are dropped.
  std::uint32_t queue_size = static_cast<std::uint32_t>(host_default_int("hooks", "queue_size"));
};

// Keys of a [transports.NAME] table that belong to the host, not to the plugin.
inline const std::vector<std::string> kHostTransportKeys = host_keys_of("transports.NAME");

struct DaemonConfig {
  std::string file;  // path, or "<embedded>"
  Settings settings;
  std::vector<TransportSpec> transports;
  std::vector<TopologySpec> topologies;
  HooksSpec hooks;
};

struct ParseResult {
  std::optional<DaemonConfig> config;  // set only when problems is empty
  std::vector<Problem> problems;       // sorted by position
  // With problems: what could be read, so that the plugins' options are still checked and
  // every problem is reported at once. Never to be run.
  std::optional<DaemonConfig> partial;
  // A file that reads well but is not one to run: empty (blanks and comments only), or without
  // a topology and without allow_no_topologies. Fine for reading plugin_path (`plugins list`);
  // prepare() makes it a problem of `check`, `run` and a reload. Unset when the file has other
  // problems (a misspelt [topology.x] is not also a missing topology).
  std::optional<Problem> not_runnable;
};

// Sorts by file, then line and column (numerically); stable, so problems at one position keep
// their order.
void sort_problems(std::vector<Problem> &problems);

// Parses and checks everything that does not need the plugins.
ParseResult parse(std::string_view text, const std::string &file);
// Why `path` cannot be a control socket: "" when nothing is there or it is a socket, else a
// message naming the path and what it is (only a stale socket may be replaced).
std::string not_a_socket(const std::string &path);
ParseResult parse_file(const std::string &path);

// True when two specs are configured alike (same values: comments and layout do not count), so
// that a reload keeps the running unit.
bool same_settings(const TransportSpec &a, const TransportSpec &b);
bool same_settings(const TopologySpec &a, const TopologySpec &b);

// The default configuration compiled into the binary (conf/clusterd.toml).
std::string_view embedded_default();

}  // namespace clusterd::config
