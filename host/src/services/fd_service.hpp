// Level-triggered readiness of file descriptors that plugins own. Asio's reactor is
// edge-triggered, so after each callback we re-check with poll(2) and call again while the
// descriptor stays ready, as epoll in level mode would.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

namespace clusterd::services {

class FdService {
 public:
  static constexpr std::uint32_t kRead = 0x1, kWrite = 0x2, kError = 0x4;
  using Callback = std::function<void(std::uint64_t id, int fd, std::uint32_t ready)>;
  explicit FdService(boost::asio::io_context &io) : io_(io) {}
  ~FdService();

  // 0 on failure (bad fd or no events); the fd stays owned by the caller.
  std::uint64_t watch(int fd, std::uint32_t events, Callback callback);
  bool modify(std::uint64_t id, std::uint32_t events);
  void unwatch(std::uint64_t id);
  std::size_t active() const { return watches_.size(); }

 private:
  struct Watch {
    Watch(boost::asio::io_context &io, int fd) : descriptor(io, fd), fd(fd) {}
    boost::asio::posix::stream_descriptor descriptor;
    int fd;
    std::uint32_t events = 0;
    bool waiting_read = false, waiting_write = false, dispatch_posted = false;
    Callback callback;
  };
  void arm(std::uint64_t id);
  void dispatch(std::uint64_t id, std::uint32_t ready);
  static std::uint32_t poll_now(int fd, std::uint32_t events);

  boost::asio::io_context &io_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Watch>> watches_;
};

}  // namespace clusterd::services
