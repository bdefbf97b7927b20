// clusterd plugin SDK — the one retry rule: exponential backoff with equal jitter. The host's
// reconciler uses it for connects, and plugins for their own redials (header-only C++).
#ifndef CLUSTERD_BACKOFF_HPP
#define CLUSTERD_BACKOFF_HPP

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>

namespace clusterd {

/// The wait before retry number `attempts` (1 = after the first failure; 0 counts as 1):
/// exponential from `initial`, doubling per attempt, capped at `max`, with "equal jitter" --
/// uniform in [d/2, d] -- so peers that failed together do not retry in lockstep, yet never
/// retry much too early. This is the host reconciler's formula (same doubling, cap and
/// distribution): with the same engine and seed it yields the same delays. `random` is any
/// UniformRandomBitGenerator (std::mt19937_64 in Backoff and in the host). [thread-safe] as far
/// as `random` is.
template <typename Random>
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds initial,
                                        std::chrono::milliseconds max, unsigned attempts,
                                        Random &random) {
  const std::int64_t cap = std::max<std::int64_t>(max.count(), 0);
  std::int64_t full = std::max<std::int64_t>(initial.count(), 0);
  for (unsigned i = 1;
       i < attempts && full < cap && full <= std::numeric_limits<std::int64_t>::max() / 2; ++i)
    full *= 2;
  full = std::min<std::int64_t>(full, cap);
  std::uniform_int_distribution<std::int64_t> jitter(full / 2, full);
  return std::chrono::milliseconds(jitter(random));
}

/// One retry loop's backoff: next() after each failure, reset() after a success. Not
/// synchronised: use it from one thread at a time (the loop, or the plugin's own thread).
class Backoff {
 public:
  using Random = std::mt19937_64;

  /// Seeded from std::random_device, so processes that start together spread out. Throws
  /// std::exception if the system has no random device.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : Backoff(
            initial, max,
            (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {}
  /// Seeded with `seed`: the same delays every time (tests).
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
          std::uint64_t seed) noexcept
      : initial_(initial), max_(max), random_(seed) {}

  /// The wait before the next retry (backoff_delay of one more failed attempt).
  std::chrono::milliseconds next() {
    if (attempts_ < std::numeric_limits<unsigned>::max()) ++attempts_;
    return backoff_delay(initial_, max_, attempts_, random_);
  }
  /// It worked: the next failure waits about `initial` again.
  void reset() noexcept { attempts_ = 0; }
  /// Failed attempts since the last reset().
  unsigned attempts() const noexcept { return attempts_; }

 private:
  std::chrono::milliseconds initial_, max_;
  Random random_;
  unsigned attempts_ = 0;
};

}  // namespace clusterd

#endif  // CLUSTERD_BACKOFF_HPP
