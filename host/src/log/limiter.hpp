// Rate limit for what plugins log: a peer that makes a plugin warn on every connection must
// not flood the log. Repeats are dropped and counted, and a summary line says how many.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace clusterd::log {

// Token buckets per (source, level, message shape) and per (source, level): the first stops
// one message repeated with different numbers, addresses or quoted names; the second a flood
// of messages that differ in their words. Thread-safe (plugins may log from any thread).
class Limiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    double shape_burst = 10, shape_per_second = 1;      // one message shape
    double source_burst = 100, source_per_second = 10;  // everything of one source and level
    std::chrono::seconds window{10};  // how often suppressed counts are summarised
  };
  // What was dropped from one source at one level since the last summary of it.
  struct Summary {
    std::string source;
    int level = 0;
    std::uint64_t count = 0;
    std::string example;  // the first dropped message
  };

  Limiter() = default;
  explicit Limiter(Limits limits) : limits_(limits) {}

  // True when `message` may be logged now; false when it is dropped (and counted).
  bool admit(std::string_view source, int level, std::string_view message, Clock::time_point now);
  // Summaries of drops whose window has ended (all of them with `all`), and resets their count.
  std::vector<Summary> take_summaries(Clock::time_point now, bool all = false);
  // When take_summaries() will next have something; Clock::time_point::max() when nothing waits.
  Clock::time_point next_summary() const;

  // "refused peer 10.0.0.5:41234 (claims 'x@h'): bad MAC" -> "refused peer # (claims '*'): bad
  // MAC": digits, hex and address runs that contain a digit, and quoted text are masked.
  static std::uint64_t shape_of(std::string_view message);

 private:
  struct Bucket {
    double tokens = -1;  // < 0: new (full)
    Clock::time_point refilled{};
    std::uint64_t dropped = 0;
    Clock::time_point first_drop{};
    std::string example;
  };
  using Key = std::tuple<std::string, int, std::uint64_t>;  // shape 0: the source's bucket
  static constexpr std::size_t kMaxBuckets = 4096;

  static bool take(Bucket &b, double burst, double per_second, Clock::time_point now);
  void dropped(Bucket &b, std::string_view message, Clock::time_point now);

  Limits limits_;
  mutable std::mutex mutex_;
  std::map<Key, Bucket> buckets_;
  Clock::time_point next_summary_ = Clock::time_point::max();
};

}  // namespace clusterd::log
