// Prometheus text exposition (format 0.0.4): families with HELP and TYPE, then their samples.
// Label values are escaped here, so callers pass plugin-supplied text as it is.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterd::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Bucket bounds (seconds) of every latency histogram: 5 ms to 30 s.
inline constexpr double kLatencyBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10,  30};

// A latency histogram with the kLatencyBuckets bounds.
struct Histogram {
  std::uint64_t buckets[std::size(kLatencyBuckets)] = {};  // per bound, not cumulative
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

class Exposition {
 public:
  // Starts a family; its samples follow. type: "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const Labels &labels, double value);
  void histogram(std::string_view name, const Labels &labels, const Histogram &h);
  const std::string &text() const { return text_; }

 private:
  void series(std::string_view name, const Labels &labels, std::string_view extra_key = {},
              std::string_view extra_value = {});
  std::string text_;
};

// [a-zA-Z_][a-zA-Z0-9_]* (metric and label names; exporters must not emit anything else).
bool valid_name(std::string_view name);

}  // namespace clusterd::metrics
