#include "graph.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace clusterctl {
namespace {

struct Edge {
  std::string node, state, via;  // via: the topologies that want it ("" for a connected-only)
  std::string reason;            // why it went down, for a node the transport reported down
};
struct Transport {
  std::string name, plugin, state;
  std::vector<Edge> nodes;
};
struct Graph {
  std::string self;
  std::vector<Transport> transports;
};

std::string str(const nlohmann::json &value) {
  return value.is_string() ? value.get<std::string>() : std::string();
}

Graph build(const nlohmann::json &status) {
  Graph graph;
  std::map<std::string, std::map<std::string, Edge>> nodes;  // transport -> node -> edge
  std::set<std::string> local;                               // the transports' own: "self"
  for (const auto &t : status.value("transports", nlohmann::json::array()))
    if (auto node = str(t.value("local_node", nlohmann::json())); !node.empty()) {
      local.insert(node);
      if (graph.self.empty()) graph.self = node;
    }
  for (const auto &t : status.value("transports", nlohmann::json::array())) {
    auto name = str(t.value("name", nlohmann::json()));
    graph.transports.push_back({name,
                                str(t.value("plugin", nlohmann::json())),
                                str(t.value("state", nlohmann::json())),
                                {}});
    for (const auto &n : t.value("connected", nlohmann::json::array()))
      if (!local.count(str(n))) nodes[name][str(n)] = {str(n), "connected", "", ""};
    // Down lately (an overlay's failed or departed members): "left" is a graceful leave.
    for (const auto &d : t.value("down", nlohmann::json::array())) {
      auto node = str(d.value("node", nlohmann::json()));
      auto reason = str(d.value("reason", nlohmann::json()));
      if (!local.count(node))
        nodes[name][node] = {node, reason == "left" ? "left" : "down", "", reason};
    }
  }
  for (const auto &topology : status.value("topologies", nlohmann::json::array())) {
    auto transport = str(topology.value("transport", nlohmann::json()));
    auto name = str(topology.value("name", nlohmann::json()));
    for (const auto &n : topology.value("nodes", nlohmann::json::array())) {
      if (local.count(str(n.value("name", nlohmann::json())))) continue;
      auto &edge = nodes[transport][str(n.value("name", nlohmann::json()))];
      edge.node = str(n.value("name", nlohmann::json()));
      if (edge.state != "connected") edge.state = str(n.value("state", nlohmann::json()));
      edge.via += (edge.via.empty() ? "" : ", ") + name;
    }
  }
  for (auto &t : graph.transports)
    for (auto &[_, edge] : nodes[t.name]) t.nodes.push_back(edge);
  if (graph.self.empty()) graph.self = "this node";
  return graph;
}

std::string dot_quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

const char *colour(const std::string &state) {
  if (state == "connected" || state == "running") return "forestgreen";
  if (state == "connecting" || state == "backoff" || state == "pending" ||
      state == "disconnecting" || state == "restarting" || state == "starting")
    return "darkorange";
  if (state == "failed" || state == "down") return "firebrick";
  return "gray50";
}

// Mermaid labels are quoted strings: no '"' inside (its entity code instead).
std::string mermaid_label(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"')
      out += "#quot;";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out + "\"";
}

// An edge's label: the state, why the node went down (unless it left), and (DOT) the
// topologies that want it.
std::string label(const Edge &e, bool with_via) {
  auto text = e.state;
  if (e.state != "connected" && e.state != "left" && !e.reason.empty()) text += ": " + e.reason;
  if (with_via && !e.via.empty()) text += "\n" + e.via;
  return text;
}

}  // namespace

std::string graph_dot(const nlohmann::json &status) {
  auto graph = build(status);
  std::string out = "digraph clusterd {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n";
  out += "  self [shape=doublecircle, label=" + dot_quote(graph.self) + "];\n";
  for (const auto &t : graph.transports) {
    auto id = dot_quote("transport:" + t.name);
    out += "  " + id + " [shape=box, color=" + colour(t.state) +
           ", label=" + dot_quote(t.name + "\n" + t.plugin + " (" + t.state + ")") + "];\n";
    out += "  self -> " + id + ";\n";
    for (const auto &e : t.nodes) {
      auto node = dot_quote("node:" + e.node);
      out += "  " + node + " [shape=ellipse, color=" + colour(e.state) +
             ", label=" + dot_quote(e.node) + "];\n";
      out += "  " + id + " -> " + node + " [color=" + colour(e.state) +
             (e.state == "connected" ? "" : ", style=dashed") +
             ", label=" + dot_quote(label(e, true)) + "];\n";
    }
  }
  return out + "}\n";
}

std::string graph_mermaid(const nlohmann::json &status) {
  auto graph = build(status);
  std::string out = "flowchart LR\n  self((" + mermaid_label(graph.self) + "))\n";
  std::map<std::string, std::string> node_ids;  // node name -> n<i>: names are not identifiers
  std::vector<std::string> styles;
  int transport_index = 0;
  for (const auto &t : graph.transports) {
    auto id = "t" + std::to_string(transport_index++);
    out += "  " + id + "[" + mermaid_label(t.name + " (" + t.plugin + ", " + t.state + ")") + "]\n";
    out += "  self --> " + id + "\n";
    for (const auto &e : t.nodes) {
      auto [it, added] = node_ids.emplace(e.node, "n" + std::to_string(node_ids.size()));
      if (added) {
        out += "  " + it->second + "(" + mermaid_label(e.node) + ")\n";
        styles.push_back("  style " + it->second + " stroke:" + colour(e.state));
      }
      out += "  " + id + (e.state == "connected" ? " -->|" : " -.->|") +
             mermaid_label(label(e, false)) + "| " + it->second + "\n";
    }
  }
  for (const auto &s : styles) out += s + "\n";
  return out;
}

}  // namespace clusterctl
