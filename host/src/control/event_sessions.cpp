#include "control/event_sessions.hpp"

namespace clusterd::control {
namespace {

std::string line_of(const nlohmann::json &event) {
  return event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void EventSessions::session_opened(const std::shared_ptr<plugin::Session> &session) {
  sessions_[session->id()] = {session, false};
}

bool EventSessions::session_line(std::uint64_t id, const std::string &line, std::string &error) {
  auto it = sessions_.find(id);
  auto session = it == sessions_.end() ? nullptr : it->second.session.lock();
  if (!session) {
    error = "the events session is over";
    return false;
  }
  if (it->second.started) {
    error = "an events session takes no further requests";
    return false;
  }
  // route() checked the line before opening the session: "recent" is absent or 0..256.
  auto request = nlohmann::json::parse(line, nullptr, false);
  const auto recent = request.is_object() ? request.value("recent", std::size_t{0}) : 0;
  it->second.started = true;
  if (session->send(R"({"ok":true})") != CLUSTERD_OK) return true;
  for (const auto &event : feed_.recent(recent))
    if (session->send(line_of(event)) != CLUSTERD_OK) break;  // too slow: the host closed it
  return true;
}

void EventSessions::on_event(const nlohmann::json &event) {
  if (sessions_.empty()) return;
  const auto line = line_of(event);
  for (const auto &[id, stream] : sessions_)
    if (auto session = stream.session.lock(); session && stream.started) session->send(line);
}

}  // namespace clusterd::control
