// `clusterctl graph`: the cluster as this daemon sees it, from its status document, as Graphviz
// DOT or a Mermaid flowchart (for docs and incident reports). Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace clusterctl {

// This node, its transports, and each transport's nodes: the connected ones and those its
// topologies want, with their state (a connected node wins over a topology's view of it).
std::string graph_dot(const nlohmann::json &status);
std::string graph_mermaid(const nlohmann::json &status);

}  // namespace clusterctl
