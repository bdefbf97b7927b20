// The host's own configuration keys, in one table: config.cpp parses and checks the file with it
// (through the plugins' validator), and `clusterd manual` prints it into clusterd.toml(5).
#pragma once

#include <clusterd/options.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::config {

// One key: declared as a plugin option is (clusterd/options.hpp), so the same validator checks
// it, with the same constraints, and the manual prints it the same way.
struct HostKey {
  std::string_view table;    // "clusterd", "hooks", "transports.NAME", "topologies.NAME"
  clusterd_option_t option;  // key, type, default, choices, constraints, description
  std::string_view example;  // a valid TOML value (the unit test parses every one)
  // The default in words when it is not a value ("the strategy's"); "" = the option's default.
  std::string_view default_text = "";
};

namespace opt = clusterd::option;

inline constexpr HostKey kHostKeys[] = {
    {"clusterd",
     opt::string_list("plugin_path",
                      "Directories searched for clusterd-NAME.so before "
                      "/usr/local/lib/clusterd/plugins and the built-in plugin directory; the "
                      "first plugin of a name wins.",
                      "[]"),
     R"(["/opt/clusterd/plugins"])"},
    {"clusterd",
     opt::choices(opt::string("log_level", "One of trace, debug, info, warn, error.", "\"info\""),
                  "trace|debug|info|warn|error"),
     "\"debug\""},
    {"clusterd",
     opt::choices(opt::string("log_format", "text, or json (one object per line).", "\"text\""),
                  "text|json"),
     "\"json\""},
    {"clusterd",
     opt::nonempty(opt::string("control_socket",
                               "Path of the control socket that clusterctl talks to.",
                               "\"/run/clusterd/clusterd.sock\"")),
     "\"/tmp/clusterd.sock\""},
    {"clusterd",
     opt::string_list("control_allow_uids",
                      "Users (names or numeric uids) that may send any control request. With "
                      "this or another control_allow_* / control_read_* list set, a peer (its "
                      "SO_PEERCRED uid, gid and groups) must be on one of them; root and the "
                      "daemon's own user always may. All empty: the socket's file mode decides.",
                      "[]"),
     R"(["root", "1001"])"},
    {"clusterd",
     opt::string_list("control_allow_groups",
                      "Groups (names or numeric gids) whose members may send any control "
                      "request; as control_allow_uids.",
                      "[]"),
     R"(["root"])"},
    {"clusterd",
     opt::string_list("control_read_uids",
                      "Users that may send read-only control requests only (ping, status, "
                      "members, topologies, and the plugins' requests they mark read-only): "
                      "a monitoring user that may look but not act.",
                      "[]"),
     R"(["1002"])"},
    {"clusterd",
     opt::string_list("control_read_groups",
                      "Groups whose members may send read-only control requests only.", "[]"),
     R"(["1003"])"},
    {"clusterd",
     opt::format(opt::string("metrics_listen",
                             "IP:PORT ([v6]:PORT for IPv6; port 0 picks a free one) of the "
                             "Prometheus listener: GET /metrics, /health, and /ready (200 once "
                             "every transport and topology runs, else 503). Empty: no listener.",
                             "\"\""),
                 CLUSTERD_FORMAT_IP_PORT),
     "\"127.0.0.1:9568\"", "\"\" (none)"},
    {"clusterd",
     opt::choices(opt::string("ready_when",
                              "When the daemon tells systemd READY=1 and /ready turns 200: "
                              "\"started\" (every transport and topology runs) or \"formed\" "
                              "(also every topology has had a successful discovery, passed its "
                              "min_nodes/stable_for gate and connected every node it discovered), "
                              "so that a unit ordered After= clusterd starts only once it can "
                              "join the others. The first time counts: later losses do not make "
                              "the daemon not ready again.",
                              "\"started\""),
                  "started|formed"),
     "\"formed\""},
    {"clusterd",
     opt::finite(opt::duration(
         "ready_timeout",
         "With ready_when = \"formed\": READY=1 is sent anyway after this long, logging which "
         "topology was not formed and where it stood; 0 = wait forever (then set the unit's "
         "TimeoutStartSec=infinity). Keep it below TimeoutStartSec (90 s by default).",
         "\"60s\"")),
     "\"30s\""},
    {"clusterd",
     opt::finite(opt::positive(opt::duration(
         "restart_backoff",
         "Wait before restarting a transport or topology whose plugin failed (init, start, or "
         "while running); doubles with jitter per failure up to restart_max.",
         "\"1s\""))),
     "\"500ms\""},
    {"clusterd",
     opt::finite(opt::positive(opt::duration(
         "restart_max",
         "Longest wait between restarts; not shorter than restart_backoff. A unit that ran "
         "this long without failing starts again from restart_backoff.",
         "\"30s\""))),
     "\"1m\""},
    {"clusterd",
     opt::boolean("allow_no_topologies",
                  "true: a file without any [topologies.NAME] table is accepted (a transport "
                  "that only accepts peers, such as an overlay member others join, or one used "
                  "only through the control API). Otherwise such a file is an error, so that an "
                  "emptied or truncated file cannot stop every topology at a reload.",
                  "false"),
     "true"},
    {"hooks",
     opt::positive(opt::string_list(
         "on_nodeup",
         "Command run, without a shell, when a node joins the connected set of a transport; NODE "
         "and TOPOLOGY are appended, CLUSTERD_EVENT, CLUSTERD_NODE, CLUSTERD_TOPOLOGY, "
         "CLUSTERD_TRANSPORT and CLUSTERD_REASON are set. The program is absolute or found in "
         "PATH.")),
     R"(["true", "up"])", "none"},
    {"hooks",
     opt::positive(opt::string_list(
         "on_nodedown",
         "Command run when a node leaves the connected set of a transport; as on_nodeup.")),
     R"(["true", "down"])", "none"},
    {"hooks",
     opt::finite(opt::positive(opt::duration(
         "timeout", "A hook still running after this gets SIGTERM, then SIGKILL 2 s later.",
         "\"10s\""))),
     "\"5s\""},
    {"hooks", opt::range(opt::integer("max_running", "Hooks running at once.", "4"), 1, 1024), "2"},
    {"hooks",
     opt::range(opt::integer("queue_size",
                             "Events waiting for a free slot; further events are dropped and "
                             "counted.",
                             "256"),
                0, 1'000'000),
     "16"},
    {"transports.NAME",
     opt::nonempty(opt::required(
         opt::string("plugin",
                     "The transport plugin (clusterd plugins list). Every other key of the table "
                     "is the plugin's own (see PLUGINS)."))),
     "\"command\""},
    {"transports.NAME",
     opt::finite(opt::duration(
         "resync_interval",
         "How often the host re-lists the transport's connected nodes; 0 = never.", "\"30s\"")),
     "\"1m\""},
    {"topologies.NAME",
     opt::nonempty(opt::required(opt::string(
         "strategy",
         "The strategy plugin; libcluster module names (Cluster.Strategy.Epmd) are accepted."))),
     "\"epmd\""},
    {"topologies.NAME",
     opt::nonempty(opt::string("transport",
                               "The [transports.NAME] this topology connects through; optional "
                               "when exactly one transport is defined.")),
     "\"t\"", "the only transport"},
    {"topologies.NAME",
     opt::choices(opt::string("disconnect",
                              "never, or removed: disconnect nodes the strategy stopped "
                              "reporting."),
                  "never|removed"),
     "\"never\"", "the strategy's"},
    {"topologies.NAME",
     opt::finite(opt::positive(opt::duration(
         "connect_timeout", "A connect attempt that takes longer counts as failed.", "\"10s\""))),
     "\"5s\""},
    {"topologies.NAME",
     opt::range(opt::integer("max_parallel", "Connects in flight at once.", "16"), 1, 4096), "4"},
    {"topologies.NAME",
     opt::finite(opt::positive(opt::duration(
         "backoff_initial",
         "Retry delay after the first failed connect; doubles with jitter up to backoff_max.",
         "\"500ms\""))),
     "\"1s\""},
    {"topologies.NAME",
     opt::finite(opt::positive(opt::duration(
         "backoff_max", "Longest retry delay; not shorter than backoff_initial.", "\"30s\""))),
     "\"1m\""},
    {"topologies.NAME",
     opt::range(opt::integer("min_nodes",
                             "Safe initial formation: no connect until this many nodes are "
                             "discovered, the local node included (1: no wait). Once the "
                             "topology has started connecting it goes on when nodes leave.",
                             "1"),
                1, 1'000'000),
     "3"},
    {"topologies.NAME",
     opt::finite(opt::duration("stable_for",
                               "Safe initial formation: no connect until the discovered set has "
                               "not changed for this long (0: no wait). Checked before the first "
                               "connect only, like min_nodes.",
                               "\"0s\"")),
     "\"5s\""},
};

// ---- Defaults, read from the table at compile time ------------------------------------------
// The specs (config.hpp) and reconcile::Policy take their defaults from here, so a default is
// written once: in kHostKeys. A typo in a key is a compile error.

constexpr const clusterd_option_t &host_key(std::string_view table, std::string_view key) {
  for (const auto &k : kHostKeys)
    if (k.table == table && std::string_view(k.option.key) == key) return k.option;
  throw "no such host key";  // in constant evaluation: a compile error
}

// The default literal without its quotes ("\"10s\"" -> "10s").
constexpr std::string_view host_default(std::string_view table, std::string_view key) {
  std::string_view v = host_key(table, key).default_value;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

// An INT default, or a DURATION default in milliseconds ("500ms", "10s", "1m", "2h").
constexpr std::int64_t host_default_int(std::string_view table, std::string_view key) {
  std::string_view v = host_default(table, key);
  std::int64_t n = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) n = n * 10 + (v[i] - '0');
  const std::string_view unit = v.substr(i);
  if (unit.empty() || unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60'000;
  if (unit == "h") return n * 3'600'000;
  throw "not an integer or duration default";
}

// Keys of a host table that are not options: [topologies.NAME.config] is the strategy's table.
inline constexpr std::string_view kTopologyConfigKey = "config";

// The tables of the file, in the order the manual presents them.
inline constexpr std::string_view kHostTables[] = {"clusterd", "hooks", "transports.NAME",
                                                   "topologies.NAME"};

// The keys of one table.
inline std::vector<std::string> host_keys_of(std::string_view table) {
  std::vector<std::string> keys;
  for (const auto &k : kHostKeys)
    if (k.table == table) keys.emplace_back(k.option.key);
  if (table == "topologies.NAME") keys.emplace_back(kTopologyConfigKey);
  return keys;
}

// The top-level tables: "clusterd, hooks, transports, topologies".
inline std::string known_tables() {
  std::string out;
  for (auto table : kHostTables)
    out += std::string(out.empty() ? "" : ", ") + std::string(table.substr(0, table.find('.')));
  return out;
}

}  // namespace clusterd::config
