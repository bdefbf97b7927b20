// What happened lately, for people watching: nodeup/nodedown, discovery failures and recoveries,
// restarts, reloads. A bounded ring (the status document's "events") and live listeners (the
// status page's /events stream). Publishing costs one ring slot and nothing else when nobody
// listens.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace clusterd::metrics {

class EventFeed {
 public:
  // A live listener; held weakly, so one that goes away simply stops being called.
  struct Listener {
    virtual ~Listener() = default;
    virtual void on_event(const nlohmann::json &event) = 0;
  };

  explicit EventFeed(std::size_t capacity = 256) : capacity_(capacity) {}

  // Adds "seq" (from 1, per daemon run) and "time_ms" (Unix time) to `event` ({"event": ..}).
  void publish(nlohmann::json event);
  // The last `n` events, oldest first.
  nlohmann::json recent(std::size_t n) const;
  void listen(std::weak_ptr<Listener> listener);
  std::size_t listeners() const;

 private:
  std::size_t capacity_;
  std::deque<nlohmann::json> ring_;
  std::uint64_t seq_ = 0;
  std::vector<std::weak_ptr<Listener>> listeners_;
};

}  // namespace clusterd::metrics
