#include "metrics/event_feed.hpp"

#include <algorithm>
#include <chrono>

namespace clusterd::metrics {

void EventFeed::publish(nlohmann::json event) {
  event["seq"] = ++seq_;
  event["time_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  if (ring_.size() == capacity_) ring_.pop_front();
  ring_.push_back(event);
  std::erase_if(listeners_, [](const auto &weak) { return weak.expired(); });
  // A copy: a listener may close (and so expire) while being told.
  auto listeners = listeners_;
  for (const auto &weak : listeners)
    if (auto listener = weak.lock()) listener->on_event(event);
}

nlohmann::json EventFeed::recent(std::size_t n) const {
  auto from = ring_.size() > n ? ring_.end() - static_cast<std::ptrdiff_t>(n) : ring_.begin();
  return nlohmann::json(std::vector<nlohmann::json>(from, ring_.end()));
}

void EventFeed::listen(std::weak_ptr<Listener> listener) {
  std::erase_if(listeners_, [](const auto &weak) { return weak.expired(); });
  listeners_.push_back(std::move(listener));
}

std::size_t EventFeed::listeners() const {
  return std::count_if(listeners_.begin(), listeners_.end(),
                       [](const auto &weak) { return !weak.expired(); });
}

}  // namespace clusterd::metrics
