#include "metrics/plugin_metrics.hpp"

#include <cstring>

namespace clusterd::metrics {

void write(Exposition &out, const Families &families) {
  for (const auto &[name, family] : families) {
    out.family(name, family.help, family.type);
    for (const auto &[labels, value] : family.samples) out.sample(name, labels, value);
  }
}

namespace {
// Plugin metric names are lower case; the instance's own label names are reserved.
bool plugin_name_ok(const char *name) {
  return name && name[0] >= 'a' && name[0] <= 'z' && valid_name(name);
}
}  // namespace

clusterd_status_t PluginMetrics::update(bool counter, const char *name, const char *help,
                                        const char *label_name, const char *label_value,
                                        double value) {
  if (!plugin_name_ok(name) || (label_name && (!valid_name(label_name) || !label_value)) ||
      (label_name && (!std::strcmp(label_name, "topology") ||
                      !std::strcmp(label_name, "transport") || !std::strcmp(label_name, "le"))))
    return CLUSTERD_E_INVALID_ARG;
  auto &series = series_["clusterd_" + std::string(name)];
  if (series.values.empty() && series.help.empty()) {
    series.counter = counter;
    series.help = help && *help ? help : "Plugin figure " + std::string(name) + ".";
  } else if (series.counter != counter) {
    return CLUSTERD_E_TYPE;
  }
  std::pair<std::string, std::string> key(label_name ? label_name : "",
                                          label_name ? label_value : "");
  auto it = series.values.find(key);
  if (it == series.values.end()) {
    if (count_ >= kMaxSeries) return CLUSTERD_E_AGAIN;
    ++count_;
    it = series.values.emplace(std::move(key), 0.0).first;
  }
  it->second = counter ? it->second + value : value;
  return CLUSTERD_OK;
}

clusterd_status_t PluginMetrics::counter_add(const char *name, const char *help,
                                             const char *label_name, const char *label_value,
                                             std::uint64_t delta) {
  return update(true, name, help, label_name, label_value, static_cast<double>(delta));
}

clusterd_status_t PluginMetrics::gauge_set(const char *name, const char *help,
                                           const char *label_name, const char *label_value,
                                           double value) {
  return update(false, name, help, label_name, label_value, value);
}

void PluginMetrics::collect(Families &out, const Labels &instance) const {
  for (const auto &[name, series] : series_) {
    auto &family = out[name];
    if (family.type.empty()) {
      family.help = series.help;
      family.type = series.counter ? "counter" : "gauge";
    } else if (family.type != (series.counter ? "counter" : "gauge")) {
      continue;  // two plugins disagree on a name's kind: the first one wins
    }
    for (const auto &[label, value] : series.values) {
      Labels labels = instance;
      if (!label.first.empty()) labels.emplace_back(label.first, label.second);
      family.samples.emplace_back(std::move(labels), value);
    }
  }
}

}  // namespace clusterd::metrics
