// One-shot and periodic timers on the loop. Periodic timers re-arm from their previous
// deadline so they do not drift; an idle daemon has exactly the timers someone asked for.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

namespace clusterd::services {

class TimerService {
 public:
  using Callback = std::function<void(std::uint64_t id)>;
  explicit TimerService(boost::asio::io_context &io) : io_(io) {}

  // Fires after `delay`, then every `period` if non-zero. Never fires from inside add().
  std::uint64_t add(std::chrono::milliseconds delay, std::chrono::milliseconds period,
                    Callback callback);
  // After this returns the callback never runs again. Unknown ids are ignored.
  void cancel(std::uint64_t id);
  std::size_t active() const { return timers_.size(); }

 private:
  struct Timer {
    explicit Timer(boost::asio::io_context &io) : timer(io) {}
    boost::asio::steady_timer timer;
    std::chrono::milliseconds period{0};
    Callback callback;
  };
  void arm(std::uint64_t id, Timer &timer);

  boost::asio::io_context &io_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Timer>> timers_;
};

}  // namespace clusterd::services
