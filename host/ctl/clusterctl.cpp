// clusterctl: asks a running clusterd over its control socket what it knows.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "control/control_server.hpp"
#include "graph.hpp"
#include "reconcile/formation.hpp"
#include "watch.hpp"

namespace {

constexpr const char *kUsage = R"(usage: clusterctl [--socket PATH | -c CONFIG] COMMAND [--json]
commands:
  status       transports, topologies, every node's state and last error
  members [--transport T]
               overlay members of each transport with a control interface (or of T):
               NODE STATE ADDRESS LAST-HEARD RTT; without such a transport, the nodes of
               each topology and their state
  topologies   one line per topology
  refresh [TOPOLOGY]             a discovery round now, in TOPOLOGY or in every topology
                                 whose strategy can refresh; exit 1 on error
  events [--recent N] [--transport T]
               what happens in the daemon (nodeup/nodedown, discovery failures, restarts,
               reloads), one JSON line each, after the latest N (0); with --transport T the
               overlay T's membership events instead; until interrupted
  watch [--interval MS] [--count N]
               a live view (topologies, nodes, recent events) redrawn every MS (1000) ms; q
               quits. When stdout is not a terminal: one line per change instead
  graph [--format dot|mermaid]   the cluster as this daemon sees it, as Graphviz DOT (the
                                 default) or a Mermaid flowchart
  send T NODE CHANNEL TEXT       sends TEXT to NODE on CHANNEL of transport T; exit 1 on error
  receive T CHANNEL [--count N]  prints messages arriving on CHANNEL (exits after N)
  request JSON                   sends one raw request line; prints every reply line;
                                 exit 1 if one is an error ({"error": ...} or "ok": false)
The socket is --socket PATH, else control_socket from -c CONFIG, else /run/clusterd/clusterd.sock.
)";

std::string text(const nlohmann::json &value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// "  restarts: 3 (next in 812 ms), last failure: ..." for a unit that was ever restarted.
void print_restarts(const nlohmann::json &unit) {
  auto restarts = unit.value("restarts", 0);
  auto next = unit.value("next_restart_in_ms", nlohmann::json());
  if (restarts == 0 && next.is_null()) return;
  std::string when = next.is_null() ? "" : " (next in " + text(next) + " ms)";
  std::printf("  restarts: %d%s, last failure: %s\n", restarts, when.c_str(),
              text(unit.value("last_failure", nlohmann::json())).c_str());
}

int count_state(const nlohmann::json &nodes, const std::string &state) {
  int n = 0;
  for (const auto &node : nodes) n += node["state"] == state;
  return n;
}

void print_topologies(const nlohmann::json &status) {
  std::printf("%-20s %-16s %-12s %-9s %s\n", "TOPOLOGY", "STRATEGY", "TRANSPORT", "STATE",
              "CONNECTED/DESIRED");
  for (const auto &t : status["topologies"]) {
    std::printf("%-20s %-16s %-12s %-9s %d/%zu\n", text(t["name"]).c_str(),
                text(t["strategy"]).c_str(), text(t["transport"]).c_str(), text(t["state"]).c_str(),
                count_state(t["nodes"], "connected"), t["nodes"].size());
  }
}

void print_members(const nlohmann::json &status) {
  for (const auto &t : status["topologies"]) {
    std::printf("%s:\n", text(t["name"]).c_str());
    if (t["nodes"].empty()) std::printf("  (no nodes)\n");
    for (const auto &n : t["nodes"])
      std::printf("  %-40s %s\n", text(n["name"]).c_str(), text(n["state"]).c_str());
  }
}

void print_status(const nlohmann::json &status) {
  std::printf("clusterd %s (pid %s), config %s\n", text(status["version"]).c_str(),
              text(status["pid"]).c_str(), text(status["config"]).c_str());
  if (status.contains("ready"))
    std::printf("%s%s%s\n", status["ready"] == true ? "ready" : "not ready",
                status["metrics"].is_string() ? ", metrics on http://" : "",
                status["metrics"].is_string() ? text(status["metrics"]).c_str() : "");
  for (const auto &t : status["transports"]) {
    std::printf("\ntransport %s (%s): %s%s%s, local node %s, %zu connected%s\n",
                text(t["name"]).c_str(), text(t["plugin"]).c_str(), text(t["state"]).c_str(),
                t["error"] == "" ? "" : ": ", text(t["error"]).c_str(),
                text(t["local_node"]).c_str(), t["connected"].size(),
                t.value("control", false) ? ", serves control sessions" : "");
    print_restarts(t);
    for (const auto &[k, v] : t["details"].items())
      std::printf("  %s: %s\n", k.c_str(), text(v).c_str());
    for (const auto &d : t.value("down", nlohmann::json::array()))
      std::printf("  down: %s (%s)\n", text(d["node"]).c_str(),
                  d["reason"] == "" ? "no reason given" : text(d["reason"]).c_str());
  }
  for (const auto &t : status["topologies"]) {
    std::printf("\ntopology %s (strategy %s, transport %s, disconnect %s): %s%s%s\n",
                text(t["name"]).c_str(), text(t["strategy"]).c_str(), text(t["transport"]).c_str(),
                text(t["disconnect"]).c_str(), text(t["state"]).c_str(),
                t["error"] == "" ? "" : ": ", text(t["error"]).c_str());
    std::printf(
        "  last discovery: %s ms ago%s%s\n", text(t["last_discovery_ms_ago"]).c_str(),
        t["discovery_error"] == "" ? "" : ", failing: ", text(t["discovery_error"]).c_str());
    if (t.contains("formation"))
      std::printf("  formation: %s\n", clusterd::reconcile::formation_text(t["formation"]).c_str());
    print_restarts(t);
    for (const auto &[k, v] : t["details"].items())
      std::printf("  %s: %s\n", k.c_str(), text(v).c_str());
    if (const auto refused = t.value("refused_names", nlohmann::json::object());
        refused.value("count", 0) > 0) {
      std::string recent;
      for (const auto &name : refused["recent"])
        recent += (recent.empty() ? "" : ", ") + text(name);
      std::printf("  refused node names (not name@host): %s, last: %s\n",
                  text(refused["count"]).c_str(), recent.c_str());
    }
    for (const auto &n : t["nodes"]) {
      std::printf("  %-40s %-13s", text(n["name"]).c_str(), text(n["state"]).c_str());
      if (n["attempts"].get<int>() > 0) std::printf(" attempts %d", n["attempts"].get<int>());
      if (!n["retry_in_ms"].is_null())
        std::printf(" retry in %s ms", text(n["retry_in_ms"]).c_str());
      if (n["last_error"] != "") std::printf(" (%s)", text(n["last_error"]).c_str());
      std::printf("\n");
    }
  }
}

// A JSON object line from the daemon, or a discarded value.
nlohmann::json parse_object(const std::string &line) {
  auto value = nlohmann::json::parse(line, nullptr, false);
  return value.is_object() ? value : nlohmann::json(nlohmann::json::value_t::discarded);
}

struct Ctl {
  std::string socket;
  bool json = false;

  // One request, one answer (5 s timeouts). Prints the problem and returns a discarded value
  // when the daemon is unreachable, answers garbage or answers {"error": ...}.
  nlohmann::json ask(const nlohmann::json &request) const {
    std::string response, error;
    if (!clusterd::control::control_request(socket, request.dump(), response, error)) {
      std::cerr << "clusterctl: " << error << "\n";
      return nlohmann::json(nlohmann::json::value_t::discarded);
    }
    auto answer = parse_object(response);
    if (answer.is_discarded())
      std::cerr << "clusterctl: the daemon sent something that is not a JSON object\n";
    else if (answer.contains("error"))
      std::cerr << "clusterctl: " << text(answer["error"]) << "\n";
    else
      return answer;
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }

  // A session (no receive timeout unless `timeout_ms`): hands each line to `on_line` until the
  // daemon closes, `on_line` returns false, or, unless `raw`, the daemon answers an error
  // line (exit status 1).
  int stream(const std::string &request,
             const std::function<bool(const nlohmann::json &, const std::string &)> &on_line,
             int timeout_ms = 0, bool raw = false) const {
    int status = 0;
    std::string error;
    bool ok = clusterd::control::control_stream(
        socket, request, timeout_ms,
        [&](const std::string &line) {
          auto value = parse_object(line);
          if (!raw && !value.is_discarded() && value.contains("error") && !value.contains("id")) {
            std::cerr << "clusterctl: " << text(value["error"]) << "\n";
            status = 1;
            return false;
          }
          bool go_on = on_line(value, line);
          std::fflush(stdout);
          return go_on;
        },
        error);
    if (!ok) std::cerr << "clusterctl: " << error << "\n";
    return ok ? status : 1;
  }

  // The transports that serve control sessions (or just `only`, checked).
  std::vector<std::string> control_transports(const std::string &only) const {
    auto status = ask({{"cmd", "status"}});
    std::vector<std::string> names;
    if (status.is_discarded()) return names;
    for (const auto &t : status["transports"])
      if (t.value("control", false) && (only.empty() || t["name"] == only))
        names.push_back(t["name"].get<std::string>());
    return names;
  }
};

void print_overlay_members(const std::string &transport, const nlohmann::json &answer) {
  std::printf("transport %s", transport.c_str());
  if (answer.contains("self") && answer["self"].contains("node"))
    std::printf(" (self %s)", text(answer["self"]["node"]).c_str());
  std::printf(":\n  %-32s %-11s %-22s %-11s %s\n", "NODE", "STATE", "ADDRESS", "LAST-HEARD", "RTT");
  for (const auto &m : answer.value("members", nlohmann::json::array())) {
    auto heard = m.value("last_heard_ms_ago", nlohmann::json());
    auto rtt = m.value("rtt_us", nlohmann::json());
    std::printf("  %-32s %-11s %-22s %-11s %s\n", text(m.value("node", nlohmann::json())).c_str(),
                text(m.value("state", nlohmann::json())).c_str(),
                text(m.value("address", nlohmann::json())).c_str(),
                heard.is_number() ? (heard.dump() + " ms").c_str() : "-",
                rtt.is_number() ? (rtt.dump() + " us").c_str() : "-");
  }
}

// The overlay members of every transport with control (or of `only`); the topologies' nodes
// when there is none and none was named.
int members(const Ctl &ctl, const std::string &only) {
  auto names = ctl.control_transports(only);
  if (names.empty() && !only.empty()) {
    std::cerr << "clusterctl: transport '" << only
              << "' is unknown, not running or has no control interface\n";
    return 1;
  }
  if (names.empty()) {
    auto status = ctl.ask({{"cmd", "members"}});
    if (status.is_discarded()) return 1;
    if (ctl.json)
      std::cout << status.dump(2) << "\n";
    else
      print_members(status);
    return 0;
  }
  nlohmann::json all = nlohmann::json::object();
  int exit_status = 0;
  for (const auto &name : names) {
    auto answer = ctl.ask({{"cmd", "members"}, {"transport", name}});
    if (answer.is_discarded()) {
      exit_status = 1;
      continue;
    }
    if (ctl.json)
      all[name] = answer;
    else
      print_overlay_members(name, answer);
  }
  if (ctl.json) std::cout << all.dump(2) << "\n";
  return exit_status;
}

int events(const Ctl &ctl, const std::string &only, long recent) {
  auto print = [](const nlohmann::json &value, const std::string &line) {
    if (value.is_discarded() || !value.contains("event")) return true;  // the {"ok":true}
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);  // a pipe (| jq, | grep) sees each event when it happens
    return true;
  };
  if (only.empty()) {
    nlohmann::json request = {{"cmd", "events"}, {"recent", recent}};
    return ctl.stream(request.dump(), print);
  }
  auto names = ctl.control_transports(only);
  if (names.size() != 1) {
    std::cerr << "clusterctl: "
              << (names.empty() ? "no running transport with a control interface"
                                : "several transports have a control interface; name one "
                                  "with --transport")
              << (only.empty() ? "" : " ('" + only + "')") << "\n";
    return 1;
  }
  nlohmann::json request = {{"cmd", "subscribe"}, {"transport", names[0]}};
  return ctl.stream(request.dump(), print);
}

// An answer line that reports an error: {"error": ...} or {"ok": false, ...}.
bool is_error(const nlohmann::json &value) {
  return value.is_object() && (value.contains("error") || value.value("ok", true) == false);
}

int refresh(const Ctl &ctl, const std::vector<std::string> &w) {
  nlohmann::json request = {{"cmd", "refresh"}};
  if (w.size() == 2) request["topology"] = w[1];
  std::string response, error;
  if (!clusterd::control::control_request(ctl.socket, request.dump(), response, error)) {
    std::cerr << "clusterctl: " << error << "\n";
    return 1;
  }
  auto answer = parse_object(response);
  if (answer.is_discarded()) {
    std::cerr << "clusterctl: the daemon sent something that is not a JSON object\n";
    return 1;
  }
  if (ctl.json) {
    std::cout << answer.dump(2) << "\n";
  } else {
    for (const auto &name : answer.value("refreshed", nlohmann::json::array()))
      std::printf("refreshed %s\n", text(name).c_str());
    for (const auto &name : answer.value("unsupported", nlohmann::json::array()))
      if (w.size() == 1)
        std::printf("skipped %s (its strategy cannot refresh)\n", text(name).c_str());
  }
  if (answer.contains("error")) std::cerr << "clusterctl: " << text(answer["error"]) << "\n";
  return is_error(answer) ? 1 : 0;
}

int send(const Ctl &ctl, const std::vector<std::string> &w) {
  nlohmann::json request = {{"cmd", "send"},   {"transport", w[1]}, {"to", w[2]},
                            {"channel", w[3]}, {"data", w[4]},      {"id", 1}};
  int status = 1;
  int failed = ctl.stream(
      request.dump(),
      [&](const nlohmann::json &value, const std::string &) {
        if (value.is_discarded() || value.value("id", 0) != 1) return true;  // not the answer
        if (value.value("ok", false)) {
          std::printf("ok\n");
          status = 0;
        } else {
          std::printf("error: %s\n", text(value.value("error", nlohmann::json())).c_str());
        }
        return false;
      },
      5000);  // one answer: a wedged daemon must not hang the caller
  return failed ? failed : status;
}

int receive(const Ctl &ctl, const std::vector<std::string> &w, long count) {
  nlohmann::json request = {{"cmd", "receive"}, {"transport", w[1]}, {"channel", w[2]}};
  long seen = 0;
  if (count == 0) return 0;
  return ctl.stream(request.dump(), [&](const nlohmann::json &value, const std::string &line) {
    if (value.is_discarded() || value.value("event", "") != "message") return true;
    if (ctl.json)
      std::printf("%s\n", line.c_str());
    else
      std::printf("%s: %s\n", text(value.value("from", nlohmann::json())).c_str(),
                  text(value.value("data", nlohmann::json())).c_str());
    return count < 0 || ++seen < count;
  });
}

}  // namespace

int main(int argc, char **argv) {
  Ctl ctl;
  std::string config_file, transport;
  std::vector<std::string> w;  // the command and its arguments
  long count = -1, interval_ms = 1000, recent = 0;
  std::string format = "dot";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if ((arg == "--socket" || arg == "-s") && has_value)
      ctl.socket = argv[++i];
    else if ((arg == "-c" || arg == "--config") && has_value)
      config_file = argv[++i];
    else if (arg == "--transport" && has_value)
      transport = argv[++i];
    else if (arg == "--count" && has_value)
      count = std::strtol(argv[++i], nullptr, 10);
    else if (arg == "--recent" && has_value)
      recent = std::strtol(argv[++i], nullptr, 10);
    else if (arg == "--interval" && has_value)
      interval_ms = std::strtol(argv[++i], nullptr, 10);
    else if (arg == "--format" && has_value)
      format = argv[++i];
    else if (arg == "--json")
      ctl.json = true;
    else if (arg == "-h" || arg == "--help")
      return std::cout << kUsage, 0;
    else if (arg.empty() || arg[0] != '-' || !w.empty())
      w.push_back(arg);  // after the command, words may start with '-' (TEXT)
    else
      return std::cerr << kUsage, 2;
  }
  auto arity = [&](std::size_t n) { return !w.empty() && w.size() == n; };
  std::string command = w.empty() ? "" : w[0];
  bool valid = ((command == "status" || command == "topologies") && arity(1)) ||
               ((command == "members" || command == "events") && arity(1)) ||
               ((command == "watch" || command == "graph") && arity(1)) ||
               (command == "send" && arity(5)) || (command == "receive" && arity(3)) ||
               (command == "request" && arity(2)) ||
               (command == "refresh" && (arity(1) || arity(2)));
  if (!valid || count < -1 || recent < 0 || recent > 256 || interval_ms < 100 ||
      interval_ms > 3600000 || (format != "dot" && format != "mermaid"))
    return std::cerr << kUsage, 2;
  if (ctl.socket.empty() && !config_file.empty()) {
    auto parsed = clusterd::config::parse_file(config_file);
    for (const auto &p : parsed.problems) std::cerr << p.str() << "\n";
    if (!parsed.config) return 1;
    ctl.socket = parsed.config->settings.control_socket;
  }
  if (ctl.socket.empty()) ctl.socket = clusterd::config::Settings{}.control_socket;

  if (command == "members") return members(ctl, transport);
  if (command == "watch")
    return clusterctl::watch({ctl.socket, static_cast<int>(interval_ms), count});
  if (command == "graph") {
    auto status = ctl.ask({{"cmd", "status"}});
    if (status.is_discarded()) return 1;
    std::cout << (format == "dot" ? clusterctl::graph_dot(status)
                                  : clusterctl::graph_mermaid(status));
    return 0;
  }
  if (command == "events") return events(ctl, transport, recent);
  if (command == "send") return send(ctl, w);
  if (command == "receive") return receive(ctl, w, count);
  if (command == "refresh") return refresh(ctl, w);
  if (command == "request") {
    bool error_reply = false;
    int failed = ctl.stream(
        w[1],
        [&](const nlohmann::json &value, const std::string &line) {
          error_reply = error_reply || is_error(value);
          std::printf("%s\n", line.c_str());
          return true;
        },
        0, true);
    return failed ? failed : error_reply ? 1 : 0;
  }
  auto status = ctl.ask({{"cmd", command}});
  if (status.is_discarded()) return 1;
  if (ctl.json) {
    std::cout << status.dump(2) << "\n";
    return 0;
  }
  if (command == "status")
    print_status(status);
  else
    print_topologies(status);
  return 0;
}
