// Strategy "epmd": libcluster's Cluster.Strategy.Epmd — a fixed list of node names, reported
// as the full set at start (and again every `timeout` if finite, and on refresh).
#include <chrono>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <clusterd/plugin.hpp>

namespace {

// libcluster node names are atoms "name@host"; anything else would never connect, so it is a
// configuration error, reported with where it was written.
bool valid_node_name(std::string_view node) {
  const auto at = node.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == node.size()) return false;
  if (node.find('@', at + 1) != std::string_view::npos) return false;
  for (const char c : node)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;  // whitespace, control
  return true;
}

class EpmdStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "epmd";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "A fixed list of nodes to connect to (libcluster's Cluster.Strategy.Epmd)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Epmd",
                                             "Elixir.Cluster.Strategy.Epmd"};
  // No CLUSTERD_PLUGIN_DISCONNECTS_REMOVED: like libcluster's Epmd, never disconnects.
  static constexpr uint32_t kFlags = 0;
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::string_list("hosts", "Node names (name@host) to connect to", "[]"),
      clusterd::option::duration(
          "timeout",
          "Re-report the hosts this often so dropped nodes are reconnected; \"infinity\" reports "
          "once (the host's reconciler already retries failed connects with backoff)",
          "\"infinity\""),
  };

  void init(const clusterd::Config &config) override {
    std::unordered_set<std::string> seen;
    for (auto &node : config.strings("hosts")) {
      if (!valid_node_name(node)) {
        std::string where = config.source_of("hosts");
        throw clusterd::Error(CLUSTERD_E_CONFIG,
                              "hosts: invalid node name '" + node +
                                  "' (expected name@host, without whitespace)" +
                                  (where.empty() ? std::string() : " at " + where));
      }
      if (seen.insert(node).second) hosts_.push_back(std::move(node));
    }
    timeout_ = config.duration("timeout");
    if (!clusterd::is_infinite(timeout_) && timeout_.count() <= 0) {
      std::string where = config.source_of("timeout");
      throw clusterd::Error(CLUSTERD_E_CONFIG,
                            "timeout: must be a positive duration or \"infinity\"" +
                                (where.empty() ? std::string() : " at " + where));
    }
  }

  void start() override {
    report_nodes(hosts_);  // an empty list is a valid report: nothing to connect
    if (!hosts_.empty() && !clusterd::is_infinite(timeout_))
      timer_ = clusterd::Timer::every(host(), timeout_, [this] { report_nodes(hosts_); });
  }

  void stop() override { timer_.reset(); }

  void refresh() override { report_nodes(hosts_); }

 private:
  std::vector<std::string> hosts_;
  std::chrono::milliseconds timeout_{clusterd::kInfinite};
  clusterd::Timer timer_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(EpmdStrategy);
