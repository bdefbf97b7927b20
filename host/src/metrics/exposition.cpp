#include "metrics/exposition.hpp"

#include <fmt/format.h>

#include <cmath>

namespace clusterd::metrics {

void Histogram::observe(double seconds) {
  ++count;
  sum += seconds;
  for (std::size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++buckets[i];
      return;
    }
  }
}

bool valid_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

namespace {

// HELP text escapes \ and newline; label values also escape ".
void escape(std::string &out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out += c;
  }
}

void number(std::string &out, double value) {
  if (std::isnan(value))
    out += "NaN";
  else if (std::isinf(value))
    out += value > 0 ? "+Inf" : "-Inf";
  else
    fmt::format_to(std::back_inserter(out), "{}", value);
}

}  // namespace

void Exposition::family(std::string_view name, std::string_view help, std::string_view type) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  escape(text_, help, false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void Exposition::series(std::string_view name, const Labels &labels, std::string_view extra_key,
                        std::string_view extra_value) {
  text_ += name;
  if (labels.empty() && extra_key.empty()) return;
  char separator = '{';
  auto label = [&](std::string_view key, std::string_view value) {
    text_ += separator;
    separator = ',';
    text_ += key;
    text_ += "=\"";
    escape(text_, value, true);
    text_ += '"';
  };
  for (const auto &[key, value] : labels) label(key, value);
  if (!extra_key.empty()) label(extra_key, extra_value);
  text_ += '}';
}

void Exposition::sample(std::string_view name, const Labels &labels, double value) {
  series(name, labels);
  text_ += ' ';
  number(text_, value);
  text_ += '\n';
}

void Exposition::histogram(std::string_view name, const Labels &labels, const Histogram &h) {
  std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
    cumulative += h.buckets[i];
    series(bucket, labels, "le", fmt::format("{}", kLatencyBuckets[i]));
    fmt::format_to(std::back_inserter(text_), " {}\n", cumulative);
  }
  series(bucket, labels, "le", "+Inf");
  fmt::format_to(std::back_inserter(text_), " {}\n", h.count);
  series(std::string(name) + "_sum", labels);
  text_ += ' ';
  number(text_, h.sum);
  text_ += '\n';
  series(std::string(name) + "_count", labels);
  fmt::format_to(std::back_inserter(text_), " {}\n", h.count);
}

}  // namespace clusterd::metrics
