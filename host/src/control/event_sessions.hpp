// The host's `events` command: a control session that streams the daemon's event feed (what the
// status page's /events streams), for `clusterctl events` and scripts.
#pragma once

#include <map>
#include <memory>

#include "metrics/event_feed.hpp"
#include "plugin/session.hpp"

namespace clusterd::control {

// The most a client may ask to be replayed from the ring ("recent").
inline constexpr std::size_t kMaxRecentEvents = 256;

class EventSessions final : public plugin::SessionTarget, public metrics::EventFeed::Listener {
 public:
  // Listen to `feed` with the shared pointer that owns this object.
  explicit EventSessions(const metrics::EventFeed &feed) : feed_(feed) {}

  // SessionTarget: the first line ({"cmd":"events","recent":N}) is answered with {"ok":true} and
  // the latest N events; any later line ends the session with an error.
  void session_opened(const std::shared_ptr<plugin::Session> &session) override;
  bool session_line(std::uint64_t id, const std::string &line, std::string &error) override;
  void session_over(std::uint64_t id) override { sessions_.erase(id); }
  bool read_only(std::string_view) const override { return true; }

  // EventFeed::Listener: one line per event to every session that has started.
  void on_event(const nlohmann::json &event) override;

  std::size_t sessions() const { return sessions_.size(); }

 private:
  struct Stream {
    std::weak_ptr<plugin::Session> session;
    bool started = false;  // its first line was answered
  };
  const metrics::EventFeed &feed_;
  std::map<std::uint64_t, Stream> sessions_;
};

}  // namespace clusterd::control
