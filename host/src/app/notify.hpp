// systemd's service notification protocol (sd_notify(3)) without libsystemd: one datagram per
// state change to the socket named by $NOTIFY_SOCKET. Without it (not under systemd, or a unit
// that is not Type=notify) every call is a no-op.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>

namespace clusterd::app {

class Notifier {
 public:
  // Takes $NOTIFY_SOCKET and removes it from the environment, so that children (hooks, the
  // command transport's programs) cannot speak for the daemon. Construct before any thread.
  Notifier();
  ~Notifier();
  Notifier(const Notifier &) = delete;
  Notifier &operator=(const Notifier &) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Sends newline-separated assignments ("READY=1\nSTATUS=..."). Failures are ignored, as
  // sd_notify's are: the daemon works the same whether anyone listens.
  void send(std::string_view state) const;
  // READY=1 with STATUS=<summary> (at start, and at the end of a reload).
  void ready(const std::string &summary);
  // STATUS=<summary>, only when it differs from the last one sent.
  void status(const std::string &summary);

 private:
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_length_ = 0;
  std::string last_status_;
};

}  // namespace clusterd::app
