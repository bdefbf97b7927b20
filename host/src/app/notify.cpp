#include "app/notify.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace clusterd::app {

Notifier::Notifier() {
  const char *path = std::getenv("NOTIFY_SOCKET");
  if (!path) return;
  std::string socket_path = path;
  ::unsetenv("NOTIFY_SOCKET");
  // "/path" or "@abstract" (a leading NUL on the wire); anything else is not ours to use.
  if (socket_path.size() < 2 || socket_path.size() >= sizeof address_.sun_path ||
      (socket_path[0] != '/' && socket_path[0] != '@'))
    return;
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, socket_path.data(), socket_path.size());
  if (socket_path[0] == '@') address_.sun_path[0] = '\0';
  address_length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path.size() +
                                           (socket_path[0] == '/' ? 1 : 0));
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

void Notifier::send(std::string_view state) const {
  if (fd_ < 0) return;
  (void)::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr *>(&address_), address_length_);
}

void Notifier::ready(const std::string &summary) {
  if (fd_ < 0) return;
  last_status_ = summary;
  send("READY=1\nSTATUS=" + summary);
}

void Notifier::status(const std::string &summary) {
  if (fd_ < 0 || summary == last_status_) return;
  last_status_ = summary;
  send("STATUS=" + summary);
}

}  // namespace clusterd::app
