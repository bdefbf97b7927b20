// Cancellable blocking socket I/O for the erlang transport's connection threads. Every wait
// polls the socket together with a Canceller, so stop() can interrupt a thread at any point
// (TCP connect, EPMD query, distribution handshake, rpc) and join it promptly. Sockets are
// non-blocking and written with MSG_NOSIGNAL: a peer that went away is an error, never SIGPIPE.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace clusterd::erlang {

using Clock = std::chrono::steady_clock;
// When a blocking operation gives up; std::nullopt waits forever (but stays cancellable).
using Deadline = std::optional<Clock::time_point>;

inline Deadline deadline_after(std::chrono::milliseconds timeout) {
  return Clock::now() + timeout;
}

// An eventfd that becomes (and stays) readable once signalled. Used twice per thread: as the
// Canceller of all its I/O and as the "work queued" doorbell of its receive loop.
class EventFd {
 public:
  EventFd();  // throws std::system_error
  ~EventFd();
  EventFd(const EventFd &) = delete;
  EventFd &operator=(const EventFd &) = delete;

  void signal() const noexcept;  // [thread-safe]
  void drain() const noexcept;   // makes it unreadable again
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

// Fired once by stop(); every wait below then fails with ECANCELED. [thread-safe]
class Canceller {
 public:
  void fire() noexcept {
    fired_.store(true, std::memory_order_release);
    event_.signal();
  }
  bool fired() const noexcept { return fired_.load(std::memory_order_acquire); }
  int fd() const noexcept { return event_.fd(); }

 private:
  EventFd event_;
  std::atomic<bool> fired_{false};
};

// Waits until `fd` is ready for `events` (POLLIN / POLLOUT; hang-up and errors count as
// ready), `cancel` fires or `deadline` passes. Returns 0, ECANCELED, ETIMEDOUT or an errno.
int wait_fd(int fd, short events, const Canceller &cancel, Deadline deadline) noexcept;

// Sleeps until `deadline` unless `cancel` fires first. Returns false when cancelled.
bool sleep_until(const Canceller &cancel, Clock::time_point deadline) noexcept;

// Opens a non-blocking, close-on-exec TCP connection to `address`. Returns 0 and the socket in
// `out`, or an errno (ECANCELED, ETIMEDOUT, ECONNREFUSED...) and no socket.
int tcp_connect(const sockaddr_in &address, const Canceller &cancel, Deadline deadline,
                int &out) noexcept;

// Sends all of `data` (MSG_NOSIGNAL). Returns 0 or an errno.
int send_all(int fd, const char *data, std::size_t size, const Canceller &cancel,
             Deadline deadline) noexcept;

// Receives at most `size` bytes, waiting for at least one. Returns 0 and the count in `got`
// (0 = the peer closed), or an errno.
int recv_some(int fd, char *data, std::size_t size, std::size_t &got, const Canceller &cancel,
              Deadline deadline) noexcept;

// strerror(err), thread-safe.
std::string error_text(int err);

// "a.b.c.d:port".
std::string endpoint_text(const sockaddr_in &address);

}  // namespace clusterd::erlang
