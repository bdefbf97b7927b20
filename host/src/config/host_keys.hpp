// The host's own configuration keys, documented in one table: config.cpp takes its "known
// here" lists from it and `clusterd manual` prints it into clusterd.toml(5), so neither drifts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clusterd::config {

struct HostKey {
  std::string_view table;          // "clusterd", "hooks", "transports.NAME", "topologies.NAME"
  std::string_view key;            // as written in that table
  std::string_view type;           // as the manual shows it
  std::string_view default_value;  // "" = none
  std::string_view example;        // a valid TOML value (the unit test parses every one)
  std::string_view description;
};

inline constexpr HostKey kHostKeys[] = {
    {"clusterd", "plugin_path", "string list", "[]", R"(["/opt/clusterd/plugins"])",
     "Directories searched for clusterd-NAME.so before /usr/local/lib/clusterd/plugins and the "
     "built-in plugin directory; the first plugin of a name wins."},
    {"clusterd", "log_level", "string", "\"info\"", "\"debug\"",
     "One of trace, debug, info, warn, error."},
    {"clusterd", "log_format", "string", "\"text\"", "\"json\"",
     "text, or json (one object per line)."},
    {"clusterd", "control_socket", "string", "\"/run/clusterd/clusterd.sock\"",
     "\"/tmp/clusterd.sock\"", "Path of the control socket that clusterctl talks to."},
    {"clusterd", "metrics_listen", "string", "\"\" (none)", "\"127.0.0.1:9568\"",
     "IP:PORT ([v6]:PORT for IPv6; port 0 picks a free one) of the Prometheus listener: GET "
     "/metrics, /health, and /ready (200 once every transport and topology runs, else 503). "
     "Empty: no listener."},
    {"hooks", "on_nodeup", "string list (argv)", "none", R"(["true", "up"])",
     "Command run, without a shell, when a node joins the connected set of a transport; NODE "
     "and TOPOLOGY are appended, CLUSTERD_EVENT, CLUSTERD_NODE, CLUSTERD_TOPOLOGY, "
     "CLUSTERD_TRANSPORT and CLUSTERD_REASON are set. The program is absolute or found in "
     "PATH."},
    {"hooks", "on_nodedown", "string list (argv)", "none", R"(["true", "down"])",
     "Command run when a node leaves the connected set of a transport; as on_nodeup."},
    {"hooks", "timeout", "duration", "\"10s\"", "\"5s\"",
     "A hook still running after this gets SIGTERM, then SIGKILL 2 s later."},
    {"hooks", "max_running", "integer (1-1024)", "4", "2", "Hooks running at once."},
    {"hooks", "queue_size", "integer (0-1000000)", "256", "16",
     "Events waiting for a free slot; further events are dropped and counted."},
    {"transports.NAME", "plugin", "string", "required", "\"command\"",
     "The transport plugin (clusterd plugins list). Every other key of the table is the "
     "plugin's own (see PLUGINS)."},
    {"transports.NAME", "resync_interval", "duration", "\"30s\"", "\"1m\"",
     "How often the host re-lists the transport's connected nodes; 0 = never."},
    {"topologies.NAME", "strategy", "string", "required", "\"epmd\"",
     "The strategy plugin; libcluster module names (Cluster.Strategy.Epmd) are accepted."},
    {"topologies.NAME", "transport", "string", "the only transport", "\"t\"",
     "The [transports.NAME] this topology connects through; optional when exactly one "
     "transport is defined."},
    {"topologies.NAME", "disconnect", "string", "the strategy's", "\"never\"",
     "never, or removed: disconnect nodes the strategy stopped reporting."},
    {"topologies.NAME", "config", "table", "{}", "{}",
     "The strategy's own options, as [topologies.NAME.config] (see PLUGINS)."},
    {"topologies.NAME", "connect_timeout", "duration", "\"10s\"", "\"5s\"",
     "A connect attempt that takes longer counts as failed."},
    {"topologies.NAME", "max_parallel", "integer (1-4096)", "16", "4",
     "Connects in flight at once."},
    {"topologies.NAME", "backoff_initial", "duration", "\"500ms\"", "\"1s\"",
     "Retry delay after the first failed connect; doubles with jitter up to backoff_max."},
    {"topologies.NAME", "backoff_max", "duration", "\"30s\"", "\"1m\"",
     "Longest retry delay; not shorter than backoff_initial."},
};

// The tables of the file, in the order the manual presents them.
inline constexpr std::string_view kHostTables[] = {"clusterd", "hooks", "transports.NAME",
                                                   "topologies.NAME"};

// The keys of one table.
inline std::vector<std::string> host_keys_of(std::string_view table) {
  std::vector<std::string> keys;
  for (const auto &k : kHostKeys)
    if (k.table == table) keys.emplace_back(k.key);
  return keys;
}

// "a, b, c": for "unknown key (known here: ...)" messages.
inline std::string known_keys(std::string_view table) {
  std::string out;
  for (const auto &k : host_keys_of(table)) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// The top-level tables: "clusterd, hooks, transports, topologies".
inline std::string known_tables() {
  std::string out;
  for (auto table : kHostTables)
    out += std::string(out.empty() ? "" : ", ") + std::string(table.substr(0, table.find('.')));
  return out;
}

}  // namespace clusterd::config
