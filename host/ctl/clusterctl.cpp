// clusterctl: asks a running clusterd over its control socket what it knows.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "config/config.hpp"
#include "control/control_server.hpp"

namespace {

constexpr const char *kUsage = R"(usage: clusterctl [--socket PATH | -c CONFIG] COMMAND [--json]
commands:
  status       transports, topologies, every node's state and last error
  members      the nodes of each topology and their state
  topologies   one line per topology
The socket is --socket PATH, else control_socket from -c CONFIG, else /run/clusterd/clusterd.sock.
)";

std::string text(const nlohmann::json &value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
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
  for (const auto &t : status["transports"]) {
    std::printf("\ntransport %s (%s): %s%s%s, local node %s, %zu connected\n",
                text(t["name"]).c_str(), text(t["plugin"]).c_str(), text(t["state"]).c_str(),
                t["error"] == "" ? "" : ": ", text(t["error"]).c_str(),
                text(t["local_node"]).c_str(), t["connected"].size());
    for (const auto &[k, v] : t["details"].items())
      std::printf("  %s: %s\n", k.c_str(), text(v).c_str());
  }
  for (const auto &t : status["topologies"]) {
    std::printf("\ntopology %s (strategy %s, transport %s, disconnect %s): %s%s%s\n",
                text(t["name"]).c_str(), text(t["strategy"]).c_str(), text(t["transport"]).c_str(),
                text(t["disconnect"]).c_str(), text(t["state"]).c_str(),
                t["error"] == "" ? "" : ": ", text(t["error"]).c_str());
    std::printf(
        "  last discovery: %s ms ago%s%s\n", text(t["last_discovery_ms_ago"]).c_str(),
        t["discovery_error"] == "" ? "" : ", failing: ", text(t["discovery_error"]).c_str());
    for (const auto &[k, v] : t["details"].items())
      std::printf("  %s: %s\n", k.c_str(), text(v).c_str());
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

}  // namespace

int main(int argc, char **argv) {
  std::string socket, config_file, command;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--socket" || arg == "-s") && i + 1 < argc)
      socket = argv[++i];
    else if ((arg == "-c" || arg == "--config") && i + 1 < argc)
      config_file = argv[++i];
    else if (arg == "--json")
      json = true;
    else if (arg == "-h" || arg == "--help")
      return std::cout << kUsage, 0;
    else if (command.empty() && arg[0] != '-')
      command = arg;
    else
      return std::cerr << kUsage, 2;
  }
  if (command != "status" && command != "members" && command != "topologies")
    return std::cerr << kUsage, 2;
  if (socket.empty() && !config_file.empty()) {
    auto parsed = clusterd::config::parse_file(config_file);
    for (const auto &p : parsed.problems) std::cerr << p.str() << "\n";
    if (!parsed.config) return 1;
    socket = parsed.config->settings.control_socket;
  }
  if (socket.empty()) socket = clusterd::config::Settings{}.control_socket;

  std::string response, error;
  if (!clusterd::control::control_request(socket, nlohmann::json({{"cmd", command}}).dump(),
                                          response, error)) {
    std::cerr << "clusterctl: " << error << "\n";
    return 1;
  }
  auto status = nlohmann::json::parse(response, nullptr, false);
  if (status.is_discarded() || !status.is_object()) {
    std::cerr << "clusterctl: the daemon sent something that is not JSON\n";
    return 1;
  }
  if (status.contains("error")) {
    std::cerr << "clusterctl: " << text(status["error"]) << "\n";
    return 1;
  }
  if (json) {
    std::cout << status.dump(2) << "\n";
    return 0;
  }
  if (command == "status")
    print_status(status);
  else if (command == "members")
    print_members(status);
  else
    print_topologies(status);
  return 0;
}
