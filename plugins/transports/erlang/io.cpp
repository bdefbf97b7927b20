#include "io.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace clusterd::erlang {

EventFd::EventFd() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

EventFd::~EventFd() {
  if (fd_ >= 0) close(fd_);
}

void EventFd::signal() const noexcept {
  const uint64_t one = 1;
  // EAGAIN only when the counter is about to overflow: it is readable then anyway.
  while (write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void EventFd::drain() const noexcept {
  uint64_t value = 0;
  while (read(fd_, &value, sizeof value) < 0 && errno == EINTR) {
  }
}

namespace {

// Milliseconds until `deadline` for poll(): -1 = forever, rounded up so that we never spin.
int poll_timeout(Deadline deadline) {
  if (!deadline) return -1;
  const auto left = *deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));  // re-checked in the caller's loop
}

}  // namespace

int wait_fd(int fd, short events, const Canceller &cancel, Deadline deadline) noexcept {
  for (;;) {
    if (cancel.fired()) return ECANCELED;
    pollfd fds[2] = {{fd, events, 0}, {cancel.fd(), POLLIN, 0}};
    const int timeout = poll_timeout(deadline);
    const int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (fds[1].revents != 0 || cancel.fired()) return ECANCELED;
    if (fds[0].revents != 0) return 0;
    if (deadline && Clock::now() >= *deadline) return ETIMEDOUT;
  }
}

bool sleep_until(const Canceller &cancel, Clock::time_point deadline) noexcept {
  for (;;) {
    if (cancel.fired()) return false;
    pollfd fd{cancel.fd(), POLLIN, 0};
    const int n = poll(&fd, 1, poll_timeout(deadline));
    if (n < 0 && errno != EINTR) return !cancel.fired();  // cannot wait: treat as elapsed
    if (cancel.fired()) return false;
    if (Clock::now() >= deadline) return true;
  }
}

int tcp_connect(const sockaddr_in &address, const Canceller &cancel, Deadline deadline,
                int &out) noexcept {
  out = -1;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int rc = connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof address);
  int err = rc == 0 ? 0 : errno;
  if (err == EINPROGRESS || err == EINTR) {
    err = wait_fd(fd, POLLOUT, cancel, deadline);
    if (err == 0) {
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
  }
  if (err != 0) {
    close(fd);
    return err;
  }
  out = fd;
  return 0;
}

int send_all(int fd, const char *data, std::size_t size, const Canceller &cancel,
             Deadline deadline) noexcept {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
    if (const int err = wait_fd(fd, POLLOUT, cancel, deadline); err != 0) return err;
  }
  return 0;
}

int recv_some(int fd, char *data, std::size_t size, std::size_t &got, const Canceller &cancel,
              Deadline deadline) noexcept {
  got = 0;
  for (;;) {
    const ssize_t n = recv(fd, data, size, 0);
    if (n >= 0) {
      got = static_cast<std::size_t>(n);
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
    if (const int err = wait_fd(fd, POLLIN, cancel, deadline); err != 0) return err;
  }
}

std::string error_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message (possibly not in buf).
  return strerror_r(err, buf, sizeof buf);
}

std::string endpoint_text(const sockaddr_in &address) {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
}

}  // namespace clusterd::erlang
