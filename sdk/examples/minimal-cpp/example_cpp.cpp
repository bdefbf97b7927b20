// Example clusterd strategy written with the C++ wrapper (clusterd/plugin.hpp, C++17): reports
// the node names of its required `nodes` option once at start and again on every refresh.
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
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::required(
          clusterd::option::string_list("nodes", "Node names (name@host) to report")),
  };

  // Throwing here (e.g. clusterd::Error(CLUSTERD_E_CONFIG, "...")) fails init with that
  // status and message; the wrapper never lets an exception reach the host.
  void init(const clusterd::Config &config) override { nodes_ = config.strings("nodes"); }
  void start() override { report_nodes(nodes_); }
  void refresh() override { report_nodes(nodes_); }

 private:
  std::vector<std::string> nodes_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(ExampleStrategy);
