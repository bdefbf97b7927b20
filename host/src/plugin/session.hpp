// The plugin side of a control session: what a plugin instance needs from the control socket.
// Declared here so the loader does not depend on the socket; control/ implements Session.
#pragma once

#include <clusterd/clusterd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace clusterd::plugin {

class Session;

// What a control session is routed to (a plugin instance with a control interface).
class SessionTarget {
 public:
  virtual ~SessionTarget() = default;
  // A new session: the target keeps it (weakly) to serve its sink calls.
  virtual void session_opened(const std::shared_ptr<Session> &session) = 0;
  // A line of the client's; false: `error` is answered and the session ends.
  virtual bool session_line(std::uint64_t id, const std::string &line, std::string &error) = 0;
  // The session is over. Always from its own loop turn, never from inside a sink call.
  virtual void session_over(std::uint64_t id) = 0;
  // True if the request `cmd` only reports (the plugin lists it as read-only; control.h).
  virtual bool read_only(std::string_view cmd) const = 0;
};

// One client's session, as the plugin side sees it. [loop-thread]
class Session {
 public:
  virtual ~Session() = default;
  std::uint64_t id() const { return id_; }
  // Queues a line (newline added). CLUSTERD_OK, CLUSTERD_E_NOT_FOUND once the session is over
  // or ending, CLUSTERD_E_AGAIN past the buffer limit (the session is then closed at once).
  virtual clusterd_status_t send(std::string_view line) = 0;
  // Closes once the queued lines are written (bounded in time).
  virtual void end() = 0;
  virtual std::size_t buffered() const = 0;
  // Hands the connected socket to the plugin (control.h, detach; ABI 1.6): `fd` becomes the
  // caller's, `unread` gets what the client sent after the line being delivered. Only while
  // that line is delivered and nothing is queued; the session is then over for the host.
  virtual clusterd_status_t detach(int &fd, std::string &unread) = 0;

 protected:
  explicit Session(std::uint64_t id) : id_(id) {}

 private:
  std::uint64_t id_;
};

}  // namespace clusterd::plugin
