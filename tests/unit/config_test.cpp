#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace clusterd::config;

namespace {

ParseResult parse_text(const std::string &text) {
  return parse(text, "test.toml");
}

// The single problem of a config, as "where: key: message".
std::string only_problem(const std::string &text) {
  auto result = parse_text(text);
  EXPECT_FALSE(result.config);
  EXPECT_EQ(result.problems.size(), 1u);
  return result.problems.empty() ? "" : result.problems[0].str();
}

const char *kValid = R"(
[clusterd]
plugin_path = ["/opt/plugins", "/usr/local/lib/clusterd/plugins"]
log_level = "debug"
log_format = "json"
control_socket = "/tmp/c.sock"

[transports.beam]
plugin = "command"
connect = ["/bin/true"]
resync_interval = "5s"

[topologies.example]
strategy = "Cluster.Strategy.Epmd"
disconnect = "removed"
connect_timeout = 2500
max_parallel = 4
backoff_initial = "100ms"
backoff_max = "1m"
[topologies.example.config]
hosts = ["a@127.0.0.1"]
)";

}  // namespace

TEST(Config, ParsesEverySection) {
  auto result = parse_text(kValid);
  ASSERT_TRUE(result.config) << (result.problems.empty() ? "" : result.problems[0].str());
  const auto &c = *result.config;
  EXPECT_EQ(c.settings.plugin_path.size(), 2u);
  EXPECT_EQ(c.settings.log_level, "debug");
  EXPECT_EQ(c.settings.log_format, "json");
  EXPECT_EQ(c.settings.control_socket, "/tmp/c.sock");
  ASSERT_EQ(c.transports.size(), 1u);
  EXPECT_EQ(c.transports[0].plugin, "command");
  EXPECT_EQ(c.transports[0].resync_interval.count(), 5000);
  ASSERT_TRUE(c.transports[0].options);
  EXPECT_TRUE(c.transports[0].options->contains("connect"));
  // Plugin options keep their source positions (toml++ copies would drop them).
  EXPECT_EQ(where("test.toml", c.transports[0].options->get("connect")->source()),
            "test.toml:10:11");
  ASSERT_EQ(c.topologies.size(), 1u);
  const auto &t = c.topologies[0];
  EXPECT_EQ(t.strategy, "Cluster.Strategy.Epmd");
  EXPECT_EQ(t.transport, "beam");  // the only transport is the default
  EXPECT_EQ(t.disconnect, DisconnectPolicy::removed);
  EXPECT_EQ(t.connect_timeout.count(), 2500);
  EXPECT_EQ(t.max_parallel, 4u);
  EXPECT_EQ(t.backoff_initial.count(), 100);
  EXPECT_EQ(t.backoff_max.count(), 60000);
  ASSERT_TRUE(t.options);
  EXPECT_TRUE(t.options->contains("hosts"));
  EXPECT_EQ(where("test.toml", t.options->get("hosts")->source()), "test.toml:21:9");
  EXPECT_EQ(t.config_where, "test.toml:20:1");
}

TEST(Config, EmbeddedDefaultIsValid) {
  auto result = parse(embedded_default(), "<embedded>");
  EXPECT_TRUE(result.config) << (result.problems.empty() ? "" : result.problems[0].str());
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  auto problem = only_problem("[clusterd]\nlog_level = \"info\"\nbroken = = 1\n");
  EXPECT_EQ(problem.rfind("test.toml:3:", 0), 0u) << problem;
}

TEST(Config, UnknownKeysAreErrorsWithPosition) {
  EXPECT_EQ(only_problem("[clusterd]\nlog_levle = \"info\"\n"),
            "test.toml:2:13: clusterd.log_levle: unknown key (did you mean 'log_level'?)");
  EXPECT_EQ(only_problem("[clusterd]\nwhatever = 1\n"),
            "test.toml:2:12: clusterd.whatever: unknown key (known here: plugin_path, log_level, "
            "log_format, control_socket, control_allow_uids, control_allow_groups, "
            "control_read_uids, control_read_groups, metrics_listen, ready_when, ready_timeout, "
            "restart_backoff, restart_max, allow_no_topologies)");
  EXPECT_NE(
      only_problem("[clusterdd]\n").find("clusterdd: unknown table (did you mean [clusterd]?)"),
      std::string::npos);
  EXPECT_EQ(only_problem("[topology.x]\nstrategy = \"epmd\"\n"),
            "test.toml:1:1: topology: unknown table (did you mean [topologies.x]?)");
  EXPECT_EQ(only_problem("[transport]\nplugin = \"erlang\"\n"),
            "test.toml:1:1: transport: unknown table (did you mean [transports]?)");
  EXPECT_EQ(only_problem("strategy = \"epmd\"\n"),
            "test.toml:1:12: strategy: unknown key at the top level: it belongs in a "
            "[topologies.NAME] table, after the table's header");
  // A host key: one problem, the typo with its suggestion (not also "missing required key").
  EXPECT_EQ(only_problem("[transports.t]\nplugin = \"x\"\n[topologies.a]\nstratgy = \"epmd\"\n"),
            "test.toml:4:11: topologies.a.stratgy: unknown key (did you mean 'strategy'?)");
  EXPECT_EQ(only_problem("[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\n"
                         "[topologies.a.confg]\nhosts = []\n"),
            "test.toml:5:1: topologies.a.confg: unknown key (did you mean 'config'?)");
  EXPECT_EQ(only_problem("[transports.t]\nplugn = \"erlang\"\nnodes = \"local\"\n"),
            "test.toml:2:9: transports.t.plugn: unknown key (did you mean 'plugin'?)");
  auto topo = only_problem(
      "[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\nstrateg = \"y\"\n");
  EXPECT_NE(topo.find("test.toml:5:11: topologies.a.strateg: unknown key"), std::string::npos)
      << topo;
}

TEST(Config, TypeAndValueErrors) {
  EXPECT_NE(
      only_problem("[clusterd]\nlog_level = 3\n").find("clusterd.log_level: expected a string"),
      std::string::npos);
  EXPECT_NE(only_problem("[clusterd]\nlog_level = \"loud\"\n").find("expected one of trace"),
            std::string::npos);
  EXPECT_NE(only_problem("[clusterd]\nlog_format = \"xml\"\n").find("expected one of text, json"),
            std::string::npos);
  EXPECT_NE(only_problem("[clusterd]\nplugin_path = [1]\n").find("expected an array of strings"),
            std::string::npos);
  for (const char *bad :
       {"9568", "localhost:9568", "::1:9568", "[::1]", "1.2.3.4:65536", "1.2.3.4:x"})
    EXPECT_NE(only_problem(std::string("[clusterd]\nmetrics_listen = \"") + bad + "\"\n")
                  .find("clusterd.metrics_listen: \"" + std::string(bad) + "\" is not IP:PORT"),
              std::string::npos)
        << bad;
  const std::string base = "[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\n";
  EXPECT_NE(only_problem(base + "disconnect = \"sometimes\"\n")
                .find("topologies.a.disconnect: expected one of never, removed"),
            std::string::npos);
  EXPECT_NE(only_problem(base + "connect_timeout = \"soon\"\n")
                .find("topologies.a.connect_timeout: expected a duration"),
            std::string::npos);
  EXPECT_NE(only_problem(base + "connect_timeout = 0\n").find("must be at least 1ms, not 0ms"),
            std::string::npos);
  EXPECT_NE(only_problem(base + "connect_timeout = \"infinity\"\n").find("finite"),
            std::string::npos);
  EXPECT_NE(only_problem(base + "max_parallel = 0\n").find("from 1 to 4096"), std::string::npos);
  EXPECT_NE(only_problem(base + "config = 5\n").find("topologies.a.config: expected a table"),
            std::string::npos);
  EXPECT_NE(only_problem(base + "backoff_initial = \"10s\"\nbackoff_max = \"1s\"\n")
                .find("must not be shorter"),
            std::string::npos);
  EXPECT_NE(only_problem("[transports.t]\nplugin = \"x\"\nresync_interval = \"often\"\n")
                .find("resync_interval"),
            std::string::npos);
}

// "expected X, found <type> <value>" and the hints, for host keys too.
TEST(Config, TypeErrorsShowWhatWasFound) {
  const std::string base = "[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\n";
  EXPECT_EQ(only_problem(base + "max_parallel = \"8\"\n"),
            "test.toml:5:16: topologies.a.max_parallel: expected an integer, found string \"8\"; "
            "remove the quotes");
  EXPECT_EQ(only_problem(base + "connect_timeout = \"5\"\n"),
            "test.toml:5:19: topologies.a.connect_timeout: \"5\" has no unit: write \"5s\" or "
            "\"5ms\", or the integer 5 for milliseconds as in libcluster");
  EXPECT_EQ(only_problem(base + "config = \"hosts\"\n"),
            "test.toml:5:10: topologies.a.config: expected a table, found string \"hosts\"");
  EXPECT_EQ(only_problem(base + "disconnect = \"remove\"\n"),
            "test.toml:5:14: topologies.a.disconnect: expected one of never, removed; found "
            "\"remove\" (did you mean 'removed'?)");
  EXPECT_EQ(only_problem("[clusterd]\nplugin_path = \"/opt/plugins\"\n"),
            "test.toml:2:15: clusterd.plugin_path: expected an array of strings, found string "
            "\"/opt/plugins\"; write [\"/opt/plugins\"]");
}

// libcluster's topology-level MFAs: what to write instead, not just "unknown key".
TEST(Config, LibclusterMfasSayWhatToWrite) {
  const std::string base = "[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\n";
  EXPECT_EQ(only_problem(base + "connect = \"{:net_kernel, :connect_node, []}\"\n"),
            "test.toml:5:11: topologies.a.connect: libcluster's connect MFA is the transport's "
            "job here: the erlang transport ([transports.NAME] plugin = \"erlang\") connects with "
            "net_kernel:connect_node, as this MFA does; remove this key");
  EXPECT_EQ(only_problem(base + "connect = [\"MyApp.Cluster\", \"connect\", []]\n"),
            "test.toml:5:11: topologies.a.connect: libcluster's connect MFA is the transport's "
            "job here: for another function, use the command transport ([transports.NAME] plugin "
            "= \"command\", connect = [\"/path/program\"] (the node is appended as the last "
            "argument)) and name it in transport = \"NAME\"; remove this key");
  EXPECT_NE(only_problem(base + "connect = \"{:rpc, :call, [:a@h, :net_kernel, :connect_node]}\"\n")
                .find("for another function, use the command transport"),
            std::string::npos);
  EXPECT_EQ(only_problem(base + "disconnect = \"{:erlang, :disconnect_node, []}\"\n"),
            "test.toml:5:14: topologies.a.disconnect: libcluster's disconnect MFA is the "
            "transport's job here: the erlang transport ([transports.NAME] plugin = \"erlang\") "
            "disconnects with erlang:disconnect_node, as this MFA does; disconnect here is the "
            "policy: \"removed\" (disconnect nodes the strategy stops reporting, as libcluster's "
            "polling strategies do) or \"never\"");
  EXPECT_EQ(only_problem(base + "list_nodes = \"{:erlang, :nodes, [:connected]}\"\n"),
            "test.toml:5:14: topologies.a.list_nodes: libcluster's list_nodes MFA is the "
            "transport's job here: the erlang transport ([transports.NAME] plugin = \"erlang\") "
            "lists the connected nodes with erlang:nodes(), as this MFA does; remove this key");
  EXPECT_NE(only_problem(base + "list_nodes = [\"MyApp\", \"members\", []]\n")
                .find("list_nodes = [\"/path/program\"] (printing one node per line)"),
            std::string::npos);
}

// Problems come sorted by position, whatever order the checks found them in.
TEST(Config, ProblemsAreSortedByPosition) {
  auto result = parse_text(
      "[topologies.a]\nstrategy = \"epmd\"\nmax_parallel = 0\n[hooks]\ntimeout = \"x\"\n"
      "[clusterd]\nlog_level = 3\n");
  std::string text;
  for (const auto &p : result.problems) text += p.str() + "\n";
  EXPECT_EQ(text,
            "test.toml:1:1: topologies.a.transport: no transport is defined: add a "
            "[transports.NAME] table\n"
            "test.toml:3:16: topologies.a.max_parallel: must be from 1 to 4096, not 0\n"
            "test.toml:5:11: hooks.timeout: expected a duration such as \"5s\", \"250ms\" or "
            "integer milliseconds, found string \"x\"\n"
            "test.toml:7:13: clusterd.log_level: expected a string, found integer 3; put it in "
            "quotes\n");
  // What could be read is kept, so that the plugins' options are checked too.
  ASSERT_TRUE(result.partial);
  EXPECT_EQ(result.partial->topologies.at(0).strategy, "epmd");
  std::vector<Problem> mixed{{"b.toml:10:1", "", "c"},
                             {"b.toml:9:30", "", "b"},
                             {"a.toml:99:1", "", "a"},
                             {"b.toml", "", "first of b"},
                             {"b.toml:10:1", "", "d"}};
  sort_problems(mixed);
  std::string order;
  for (const auto &p : mixed) order += p.message + ",";
  EXPECT_EQ(order, "a,first of b,b,c,d,");
}

TEST(Config, MissingRequiredKeys) {
  EXPECT_NE(only_problem("[transports.t]\nconnect = []\n")
                .find("transports.t.plugin: missing required key"),
            std::string::npos);
  EXPECT_NE(only_problem("[transports.t]\nplugin = \"x\"\n[topologies.a]\n")
                .find("topologies.a.strategy: missing required key"),
            std::string::npos);
}

TEST(Config, TransportResolution) {
  EXPECT_NE(only_problem("[topologies.a]\nstrategy = \"epmd\"\n").find("no transport is defined"),
            std::string::npos);
  EXPECT_NE(only_problem("[transports.t]\nplugin = \"x\"\n[transports.u]\nplugin = \"y\"\n"
                         "[topologies.a]\nstrategy = \"epmd\"\n")
                .find("several transports are defined"),
            std::string::npos);
  EXPECT_EQ(only_problem("[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = "
                         "\"epmd\"\ntransport = \"nope\"\n"),
            "test.toml:5:13: topologies.a.transport: no transport named 'nope' (defined: t; a "
            "topology names a [transports.NAME] table, not a plugin)");
  EXPECT_EQ(only_problem("[transports.beam]\nplugin = \"x\"\n[transports.cmd]\nplugin = \"y\"\n"
                         "[topologies.a]\nstrategy = \"epmd\"\ntransport = \"bema\"\n"),
            "test.toml:7:13: topologies.a.transport: no transport named 'bema' (did you mean "
            "'beam'?)");
}

TEST(Config, BadNames) {
  EXPECT_NE(only_problem("[transports.\"a b\"]\nplugin = \"x\"\n").find("names may use"),
            std::string::npos);
}

TEST(Config, SameSettingsTracksChanges) {
  std::string base =
      "[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\n"
      "[topologies.b]\nstrategy = \"epmd\"\n";
  auto one = parse_text(base);
  auto same = parse_text("# a comment moves nothing\n" + base);
  auto changed = parse_text(base + "[topologies.b.config]\nhosts = [\"x@y\"]\n");
  auto reordered = parse_text(
      "[topologies.b]\nstrategy = \"epmd\"\n[topologies.a]\nstrategy = \"epmd\"\n"
      "[transports.t]\nplugin = \"x\"\n");
  ASSERT_TRUE(one.config && same.config && changed.config && reordered.config);
  const auto &a = one.config->topologies[0], &b = one.config->topologies[1];
  EXPECT_TRUE(same_settings(a, same.config->topologies[0]));
  EXPECT_TRUE(same_settings(a, changed.config->topologies[0]));
  EXPECT_FALSE(same_settings(b, changed.config->topologies[1]));
  EXPECT_TRUE(same_settings(b, reordered.config->topologies[0]));  // "b" first now
  // A transport's own keys count, host keys included.
  auto transport_changed = parse_text(
      "[transports.t]\nplugin = \"x\"\nconnect = [\"a\"]\n"
      "[topologies.a]\nstrategy = \"epmd\"\n");
  ASSERT_TRUE(transport_changed.config);
  EXPECT_TRUE(same_settings(one.config->transports[0], same.config->transports[0]));
  EXPECT_FALSE(same_settings(one.config->transports[0], transport_changed.config->transports[0]));
}

// Issue 14, point 8: an emptied file would stop everything at a reload; no topology is an
// opt-in. Such a file still reads (plugin_path for `plugins list`); prepare() refuses to run it.
std::string not_runnable(const std::string &text) {
  auto result = parse_text(text);
  EXPECT_TRUE(result.config) << (result.problems.empty() ? "" : result.problems[0].str());
  return result.not_runnable ? result.not_runnable->str() : "";
}

TEST(Config, EmptyFileIsNotRunnableNamingTheFile) {
  for (const char *text : {"", "\n  \n\t\n", "# only a comment\n  # and another\n"})
    EXPECT_EQ(not_runnable(text),
              "test.toml: the file is empty (nothing but blanks and comments): a configuration "
              "needs a [transports.NAME] and a [topologies.NAME] table")
        << "[" << text << "]";
}

TEST(Config, NoTopologyIsNotRunnableUnlessAllowed) {
  const std::string message =
      "topologies: no [topologies.NAME] table: nothing would form a cluster (add one, or set "
      "allow_no_topologies = true in [clusterd] to run the transports alone)";
  const std::string transport = "[transports.t]\nplugin = \"x\"\n";
  EXPECT_EQ(not_runnable(transport), "test.toml: " + message);
  EXPECT_EQ(not_runnable("[clusterd]\nplugin_path = [\"/p\"]\n"), "test.toml: " + message);
  EXPECT_EQ(not_runnable(transport + "[topologies]\n"), "test.toml:3:1: " + message);
  EXPECT_EQ(not_runnable("[clusterd]\nallow_no_topologies = true\n" + transport), "");
  EXPECT_EQ(not_runnable(transport + "[topologies.a]\nstrategy = \"epmd\"\n"), "");
  // Another problem is the one reported (a misspelt table is no missing topology).
  auto misspelt = parse_text(transport + "[topology.a]\nstrategy = \"epmd\"\n");
  EXPECT_FALSE(misspelt.not_runnable);
  ASSERT_EQ(misspelt.problems.size(), 1u);
  EXPECT_EQ(misspelt.problems[0].str(),
            "test.toml:3:1: topology: unknown table (did you mean [topologies.a]?)");
}

TEST(Config, UnreadableFile) {
  auto result = parse_file("/nonexistent/clusterd.toml");
  ASSERT_EQ(result.problems.size(), 1u);
  EXPECT_NE(result.problems[0].str().find("/nonexistent/clusterd.toml: cannot read"),
            std::string::npos);
}

// host_keys.hpp is the documentation (clusterd.toml(5)) and the source of the "known here"
// lists: every key it names must be one the parser accepts, with its example value.
TEST(HostKeys, EveryDocumentedKeyIsAccepted) {
  for (const auto &k : kHostKeys) {
    std::string key(k.option.key), value(k.example);
    std::string text;
    if (k.table == "clusterd" || k.table == "hooks") {
      text = "[" + std::string(k.table) + "]\n" + key + " = " + value + "\n";
      if (key == "ready_timeout") text += "ready_when = \"formed\"\n";  // only used with it
    } else if (k.table == "transports.NAME") {
      text = "[transports.t]\n" + std::string(key == "plugin" ? "" : "plugin = \"command\"\n") +
             key + " = " + value + "\n";
    } else {
      ASSERT_EQ(k.table, "topologies.NAME");
      text = "[transports.t]\nplugin = \"command\"\n[topologies.x]\n" +
             std::string(key == "strategy" ? "" : "strategy = \"epmd\"\n") + key + " = " + value +
             "\n";
    }
    auto result = parse(text, "keys.toml");
    EXPECT_TRUE(result.config) << k.table << "." << key << " = " << value << ": "
                               << (result.problems.empty() ? "" : result.problems[0].str());
    EXPECT_NE(std::string_view(k.option.description), "") << key;
  }
}

TEST(HostKeys, UnknownKeyListsTheDocumentedOnes) {
  auto result = parse("[clusterd]\nbogus = 1\n", "keys.toml");
  ASSERT_EQ(result.problems.size(), 1u);
  std::string known;
  for (const auto &k : host_keys_of("clusterd")) known += (known.empty() ? "" : ", ") + k;
  EXPECT_NE(result.problems[0].message.find("(known here: " + known + ")"), std::string::npos);
  EXPECT_NE(known.find("metrics_listen"), std::string::npos);
  EXPECT_EQ(kHostTransportKeys, host_keys_of("transports.NAME"));
}

// A default is written once, in kHostKeys: the parser's (through the options validator) and the
// specs' own (read from the table at compile time) are the same values.
TEST(HostKeys, DefaultsAreTheTables) {
  auto result = parse_text("[transports.t]\nplugin = \"x\"\n[topologies.a]\nstrategy = \"epmd\"\n");
  ASSERT_TRUE(result.config);
  const auto &c = *result.config;
  const Settings settings;
  EXPECT_EQ(c.settings.log_level, settings.log_level);
  EXPECT_EQ(c.settings.control_socket, settings.control_socket);
  EXPECT_EQ(c.settings.control_socket, "/run/clusterd/clusterd.sock");
  const HooksSpec hooks;
  EXPECT_EQ(c.hooks.timeout, hooks.timeout);
  EXPECT_EQ(c.hooks.max_running, hooks.max_running);
  EXPECT_EQ(c.hooks.queue_size, hooks.queue_size);
  const TransportSpec transport;
  EXPECT_EQ(c.transports[0].resync_interval, transport.resync_interval);
  const TopologySpec topology;
  EXPECT_EQ(c.topologies[0].connect_timeout, topology.connect_timeout);
  EXPECT_EQ(c.topologies[0].connect_timeout.count(), 10'000);
  EXPECT_EQ(c.topologies[0].max_parallel, topology.max_parallel);
  EXPECT_EQ(c.topologies[0].backoff_initial, topology.backoff_initial);
  EXPECT_EQ(c.topologies[0].backoff_max, topology.backoff_max);
  static_assert(host_default_int("topologies.NAME", "backoff_initial") == 500);
  static_assert(host_default("clusterd", "log_format") == "text");
}

TEST(HostKeys, ReadyTimeoutOnlyWithReadyWhenFormed) {
  auto result = parse("[clusterd]\nready_timeout = \"30s\"\n", "keys.toml");
  ASSERT_EQ(result.problems.size(), 1u);
  EXPECT_EQ(result.problems[0].str(),
            "keys.toml:2:17: clusterd.ready_timeout: only used with ready_when = \"formed\" "
            "(READY=1 is sent at start otherwise)");
  result = parse("[clusterd]\nready_when = \"formed\"\nready_timeout = \"30s\"\n", "keys.toml");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->settings.ready_when, "formed");
  EXPECT_EQ(result.config->settings.ready_timeout.count(), 30'000);
}
