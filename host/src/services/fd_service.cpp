#include "services/fd_service.hpp"

#include <poll.h>

#include <boost/asio/post.hpp>

#include "util/ids.hpp"

namespace clusterd::services {

FdService::~FdService() {
  for (auto &[id, watch] : watches_) watch->descriptor.release();  // never close a plugin's fd
}

std::uint64_t FdService::watch(int fd, std::uint32_t events, Callback callback) {
  if (fd < 0 || !(events & (kRead | kWrite))) return 0;
  auto id = util::next_id();
  std::unique_ptr<Watch> entry;
  try {
    entry = std::make_unique<Watch>(io_, fd);
  } catch (const std::exception &) {
    return 0;  // e.g. the fd is already registered with the reactor
  }
  entry->events = events;
  entry->callback = std::move(callback);
  watches_.emplace(id, std::move(entry));
  arm(id);
  return id;
}

bool FdService::modify(std::uint64_t id, std::uint32_t events) {
  auto it = watches_.find(id);
  if (it == watches_.end() || !(events & (kRead | kWrite))) return false;
  it->second->events = events;
  arm(id);
  return true;
}

void FdService::unwatch(std::uint64_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  it->second->descriptor.release();  // cancels pending waits without closing the fd
  watches_.erase(it);
}

std::uint32_t FdService::poll_now(int fd, std::uint32_t events) {
  pollfd p{fd,
           static_cast<short>(((events & kRead) ? POLLIN : 0) | ((events & kWrite) ? POLLOUT : 0)),
           0};
  if (::poll(&p, 1, 0) <= 0) return 0;
  std::uint32_t ready = 0;
  if (p.revents & (POLLIN | POLLHUP)) ready |= kRead & events;
  if (p.revents & POLLOUT) ready |= kWrite & events;
  if (p.revents & (POLLERR | POLLNVAL | POLLHUP)) ready |= kError;
  return ready;
}

void FdService::arm(std::uint64_t id) {
  Watch &w = *watches_.at(id);
  auto waiter = [this, id](std::uint32_t which) {
    return [this, id, which](const boost::system::error_code &ec) {
      auto it = watches_.find(id);
      if (it == watches_.end()) return;
      (which == kRead ? it->second->waiting_read : it->second->waiting_write) = false;
      if (ec) return;
      dispatch(id, poll_now(it->second->fd, it->second->events));
    };
  };
  if ((w.events & kRead) && !w.waiting_read) {
    w.waiting_read = true;
    w.descriptor.async_wait(boost::asio::posix::descriptor_base::wait_read, waiter(kRead));
  }
  if ((w.events & kWrite) && !w.waiting_write) {
    w.waiting_write = true;
    w.descriptor.async_wait(boost::asio::posix::descriptor_base::wait_write, waiter(kWrite));
  }
}

void FdService::dispatch(std::uint64_t id, std::uint32_t ready) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (ready == 0) return arm(id);
  auto callback = it->second->callback;  // may unwatch (destroying the Watch) while running
  callback(id, it->second->fd, ready);
  it = watches_.find(id);
  if (it == watches_.end()) return;
  // Still ready (the plugin did not drain it)? Call again on a later turn, as level mode does;
  // posting keeps other handlers from starving.
  if (auto still = poll_now(it->second->fd, it->second->events); still != 0) {
    if (!it->second->dispatch_posted) {
      it->second->dispatch_posted = true;
      boost::asio::post(io_, [this, id] {
        auto again = watches_.find(id);
        if (again == watches_.end()) return;
        again->second->dispatch_posted = false;
        dispatch(id, poll_now(again->second->fd, again->second->events));
      });
    }
  } else {
    arm(id);
  }
}

}  // namespace clusterd::services
