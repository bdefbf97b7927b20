#include "services/timer_service.hpp"

#include "util/ids.hpp"

namespace clusterd::services {

std::uint64_t TimerService::add(std::chrono::milliseconds delay, std::chrono::milliseconds period,
                                Callback callback) {
  auto id = util::next_id();
  auto timer = std::make_unique<Timer>(io_);
  timer->period = period;
  timer->callback = std::move(callback);
  timer->timer.expires_after(delay);
  arm(id, *timer);
  timers_.emplace(id, std::move(timer));
  return id;
}

void TimerService::arm(std::uint64_t id, Timer &timer) {
  timer.timer.async_wait([this, id](const boost::system::error_code &ec) {
    if (ec) return;  // cancelled: the Timer may already be gone
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    Timer &fired = *it->second;
    if (fired.period.count() > 0) {
      fired.timer.expires_at(fired.timer.expiry() + fired.period);
      arm(id, fired);
      auto callback = fired.callback;  // the callback may cancel (and so destroy) the timer
      callback(id);
    } else {
      auto callback = std::move(fired.callback);
      timers_.erase(it);
      callback(id);
    }
  });
}

void TimerService::cancel(std::uint64_t id) {
  timers_.erase(id);
}

}  // namespace clusterd::services
