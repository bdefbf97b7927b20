// The figures one plugin instance exports through clusterd.metrics/1, kept by its Instance
// so that they go away with it. Bounded: a plugin bug cannot grow the daemon without limit.
#pragma once

#include <clusterd/common.h>

#include <map>
#include <string>

#include "metrics/exposition.hpp"

namespace clusterd::metrics {

// Families gathered from all instances before they are written: one HELP/TYPE per name.
struct Family {
  std::string help;
  std::string type;  // "counter" or "gauge"
  std::vector<std::pair<Labels, double>> samples;
};
using Families = std::map<std::string, Family>;
void write(Exposition &out, const Families &families);

class PluginMetrics {
 public:
  static constexpr std::size_t kMaxSeries = 1000;  // per instance

  clusterd_status_t counter_add(const char *name, const char *help, const char *label_name,
                                const char *label_value, std::uint64_t delta);
  clusterd_status_t gauge_set(const char *name, const char *help, const char *label_name,
                              const char *label_value, double value);
  // Adds this instance's series to `out`, each labelled with `instance` first.
  void collect(Families &out, const Labels &instance) const;

 private:
  struct Series {
    bool counter = true;
    std::string help;
    std::map<std::pair<std::string, std::string>, double> values;  // (label, value) → value
  };
  clusterd_status_t update(bool counter, const char *name, const char *help, const char *label_name,
                           const char *label_value, double value);
  std::map<std::string, Series> series_;  // by exported name ("clusterd_<name>")
  std::size_t count_ = 0;
};

}  // namespace clusterd::metrics
