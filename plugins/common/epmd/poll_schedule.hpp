// The adaptive schedule of the local-EPMD pollers (the local_epmd strategy, the erlang
// transport's nodes = "local"): EPMD has no way to announce a registration, so we ask it, but
// quickly only while something is happening. After start-up and after every change, polls
// come every kQuick for kSettle; then, while nothing changes, the delay doubles up to the
// steady interval (the configured one). A node launched together with clusterd registers
// about 0.5 s later and is found within kQuick instead of a whole steady interval; a stable
// cluster costs exactly the steady interval's wake-ups. Pure (no clock, no I/O): the caller
// sleeps or arms a timer for next()'s delay.
#pragma once

#include <algorithm>
#include <chrono>

namespace clusterd::epmd {

class PollSchedule {
 public:
  static constexpr std::chrono::milliseconds kQuick{100};
  static constexpr std::chrono::milliseconds kSettle{3000};

  explicit PollSchedule(std::chrono::milliseconds steady) noexcept : steady_(steady) {}

  /// The delay before the next poll, given whether the poll that just ended found a change
  /// (the first poll counts as one: start-up is a change). Never more than the steady interval.
  std::chrono::milliseconds next(bool changed) noexcept {
    if (changed) {
      quick_left_ = kSettle / kQuick;
      delay_ = kQuick;
    } else if (quick_left_ > 0) {
      --quick_left_;
    } else {
      delay_ *= 2;
    }
    delay_ = std::min(delay_, steady_);
    return delay_;
  }

 private:
  std::chrono::milliseconds steady_;
  std::chrono::milliseconds delay_{kQuick};
  long quick_left_ = 0;
};

}  // namespace clusterd::epmd
