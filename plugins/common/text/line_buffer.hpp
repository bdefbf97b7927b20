// Splits a streamed HTTP body into lines: the framing of the watch streams of the Kubernetes
// API and of etcd's JSON gateway (one JSON object per line). Header-only: the plugins, their
// parser tests and the fuzz targets include it without linking anything.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace clusterd {

// Splits a byte stream into '\n'-terminated lines ('\r' stripped, blank lines skipped). A line
// longer than the limit is an error (the stream must be dropped).
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line) : max_line_(max_line) {}

  // Calls `line` for each complete line; stops and returns false when `line` returns false or
  // a line exceeds the limit (then overflow() is true).
  bool feed(std::string_view chunk, const std::function<bool(std::string_view)> &line) {
    if (overflow_) return false;
    while (!chunk.empty()) {
      const std::size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (pending_.size() + chunk.size() > max_line_) {
          overflow_ = true;
          return false;
        }
        pending_.append(chunk);
        return true;
      }
      std::string_view text = chunk.substr(0, nl);
      chunk.remove_prefix(nl + 1);
      std::string joined;
      if (!pending_.empty()) {
        joined = std::exchange(pending_, std::string());
        joined.append(text);
        text = joined;
      }
      if (text.size() > max_line_) {
        overflow_ = true;
        return false;
      }
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
      if (!line(text)) return false;
    }
    return true;
  }

  bool overflow() const noexcept { return overflow_; }

  void clear() {
    pending_.clear();
    overflow_ = false;
  }

 private:
  std::size_t max_line_;
  std::string pending_;
  bool overflow_ = false;
};

}  // namespace clusterd
