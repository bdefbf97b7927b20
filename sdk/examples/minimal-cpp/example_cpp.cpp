// Example clusterd strategy written with the C++ wrapper (clusterd/plugin.hpp, C++17): reports
// the node names of its required `nodes` option once at start and again on every refresh.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <clusterd/plugin.hpp>

namespace {

class ExampleStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "example_cpp";
  static constexpr const char *kVersion = "1.0.0";
  static constexpr const char *kDescription =
      "Example strategy in C++: reports a fixed list of nodes";
  // Constraints the host checks at `clusterd check`, start and reload (ABI 1.3).
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::nonempty(
          clusterd::option::format(clusterd::option::required(clusterd::option::string_list(
                                       "nodes", "Node names (name@host) to report")),
                                   CLUSTERD_FORMAT_NODE_NAME)),
      clusterd::option::finite(clusterd::option::positive(clusterd::option::duration(
          "interval", "Report again this often (the host reconnects what dropped)", "\"30s\""))),
  };

  // What the declarations cannot say; pure (no I/O), it runs at `clusterd check` too.
  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    auto nodes = config.strings("nodes");
    for (std::size_t i = 1; i < nodes.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (nodes[i] == nodes[j]) problems.add("nodes", "lists " + nodes[i] + " twice");
  }

  // Throwing here (e.g. clusterd::Error(CLUSTERD_E_CONFIG, "...")) fails init with that
  // status and message; the wrapper never lets an exception reach the host.
  void init(const clusterd::Config &config) override {
    nodes_ = config.strings("nodes");
    interval_ = config.duration("interval");
  }
  void start() override {
    report_nodes(nodes_);
    timer_ = clusterd::Timer::every(host(), interval_, [this] { report_nodes(nodes_); });
  }
  void stop() override { timer_.reset(); }
  void refresh() override { report_nodes(nodes_); }

 private:
  std::vector<std::string> nodes_;
  std::chrono::milliseconds interval_{};
  clusterd::Timer timer_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(ExampleStrategy);
