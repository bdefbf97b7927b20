#include "app_session.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "batch.hpp"
#include "frame.h"

namespace clusterd::partisan {
namespace {

constexpr std::size_t kAppReadChunk = 256 * 1024;
constexpr std::size_t kAppMinRead = 16 * 1024;  // grow or compact below this much free room
constexpr int kAppReadsPerEvent = 16;           // then yield to the loop (level-triggered)

std::string peer_of(int fd) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return "unknown peer";
  return "pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid);
}

}  // namespace

AppSession::AppSession(Host &host, Id id, int fd, std::string channel, bool receives,
                       std::size_t max_message, Events events)
    : host_(host),
      id_(id),
      fd_(fd),
      channel_(std::move(channel)),
      receives_(receives),
      max_frame_(max_message + CLUSTERD_FRAME_SLACK),
      events_(std::move(events)),
      peer_(peer_of(fd)) {}

std::shared_ptr<AppSession> AppSession::start(Host &host, Id id, int fd, std::string_view unread,
                                              std::string channel, bool receives,
                                              std::size_t max_message, std::string_view opened_line,
                                              Events events) {
  std::shared_ptr<AppSession> s(
      new AppSession(host, id, fd, std::move(channel), receives, max_message, std::move(events)));
  if (!unread.empty()) {
    s->in_capacity_ = std::max(kAppReadChunk, unread.size() + kAppMinRead);
    s->in_ = std::make_unique_for_overwrite<char[]>(s->in_capacity_);
    std::memcpy(s->in_.get(), unread.data(), unread.size());
    s->in_end_ = unread.size();
  }
  s->out_.assign(opened_line);
  s->out_ += '\n';
  s->update_watch();
  s->flush();
  // Frames the application sent along with "open" are handled from the loop, like any read.
  if (s->in_end_ > 0) s->handle_later();
  return s;
}

AppSession::~AppSession() {
  watch_ = FdWatch();
  if (fd_ >= 0) ::close(fd_);
}

void AppSession::on_ready(std::uint32_t events) {
  auto keep = shared_from_this();  // the owner may drop us from a callback
  Batch batch;                     // the messages and acks of this event: one write per socket
  if ((events & CLUSTERD_FD_WRITE) != 0) flush();
  if (!closed() && !paused_) {
    handle_frames();  // what a pause left unhandled first
    if ((events & (CLUSTERD_FD_READ | CLUSTERD_FD_ERROR)) != 0) read_some();
  }
}

void AppSession::read_some() {
  for (int i = 0; i < kAppReadsPerEvent && !closed() && !paused_; ++i) {
    if (in_capacity_ - in_end_ < kAppMinRead) make_room();
    const std::size_t room = in_capacity_ - in_end_;
    ssize_t got;
    do got = ::recv(fd_, in_.get() + in_end_, room, 0);
    while (got < 0 && errno == EINTR);
    if (got == 0) return close("the application closed the session");
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return close(std::string("receive failed: ") + std::strerror(errno));
    }
    in_end_ += static_cast<std::size_t>(got);
    handle_frames();
    if (static_cast<std::size_t>(got) < room) break;  // drained: spare the recv saying EAGAIN
  }
  // A burst is over: give a grown buffer back.
  if (in_begin_ == in_end_ && in_capacity_ > kAppReadChunk) {
    in_.reset();
    in_capacity_ = in_begin_ = in_end_ = 0;
  }
}

void AppSession::make_room() {
  // The unfinished frame moves to the front; the buffer grows (doubling, for a long frame).
  const std::size_t held = in_end_ - in_begin_;
  std::size_t capacity = std::max(in_capacity_, kAppReadChunk);
  while (capacity - held < kAppMinRead) capacity *= 2;
  if (capacity == in_capacity_) {
    std::memmove(in_.get(), in_.get() + in_begin_, held);
  } else {
    auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
    if (held > 0) std::memcpy(bigger.get(), in_.get() + in_begin_, held);
    in_ = std::move(bigger);
    in_capacity_ = capacity;
  }
  in_begin_ = 0;
  in_end_ = held;
}

void AppSession::handle_frames() {
  while (!closed() && !paused_) {
    clusterd_frame_t frame;
    const char *why = nullptr;
    const long n = clusterd_frame_parse(in_.get() + in_begin_, in_end_ - in_begin_, max_frame_, 1,
                                        &frame, &why);
    if (n == CLUSTERD_FRAME_NEED_MORE) break;
    if (n < 0) return close(std::string("malformed frame: ") + why);
    in_begin_ += static_cast<std::size_t>(n);
    events_.on_send(*this, frame.id, std::string_view(frame.node, frame.node_length),
                    std::string_view(frame.data, frame.data_length));
  }
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
}

bool AppSession::queue(const unsigned char *header, std::size_t header_length,
                       std::string_view first, std::string_view second) {
  if (closed()) return false;
  const std::size_t waiting = out_.size() - out_begin_;
  if (waiting + header_length + first.size() + second.size() > kMaxBuffered) {
    close("too slow: " + std::to_string(waiting) + " bytes unread");
    return false;
  }
  out_.append(reinterpret_cast<const char *>(header), header_length);
  out_.append(first);
  out_.append(second);
  flush();
  return true;
}

void AppSession::ack(std::uint64_t id, std::uint8_t status, std::string_view reason) {
  unsigned char header[CLUSTERD_FRAME_MAX_HEADER];
  queue(header, clusterd_frame_ack_header(header, id, status, reason.size()), reason, {});
}

bool AppSession::deliver(std::string_view from, std::string_view data) {
  unsigned char header[CLUSTERD_FRAME_MAX_HEADER];
  return queue(header, clusterd_frame_message_header(header, from.size(), data.size()), from, data);
}

void AppSession::pause() {
  if (paused_ || closed()) return;
  paused_ = true;
  update_watch();
}

void AppSession::resume() {
  if (!paused_ || closed()) return;
  paused_ = false;
  update_watch();
  // Frames read before the pause may be all the application sends: no read event would come.
  if (in_begin_ < in_end_) handle_later();
}

void AppSession::handle_later() {
  std::weak_ptr<AppSession> weak = weak_from_this();
  handle_later_ = Timer::after(host_, std::chrono::milliseconds(0), [weak] {
    if (auto self = weak.lock()) self->on_ready(0);
  });
}

void AppSession::flush() {
  if (closed() || flush_deferred_) return;
  if (out_.size() - out_begin_ < Batch::kMaxDeferred && Batch::defer([weak = weak_from_this()] {
        if (auto self = weak.lock()) {
          self->flush_deferred_ = false;
          self->flush();
        }
      })) {
    flush_deferred_ = true;
    return;
  }
  while (out_begin_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_begin_, out_.size() - out_begin_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return close(std::string("send failed: ") + std::strerror(errno));
    }
    out_begin_ += static_cast<std::size_t>(n);
  }
  if (out_begin_ == out_.size()) {
    out_.clear();
    out_begin_ = 0;
    if (out_.capacity() > 4 * kAppReadChunk) std::string().swap(out_);
  } else if (out_begin_ > out_.size() / 2) {
    out_.erase(0, out_begin_);
    out_begin_ = 0;
  }
  update_watch();
}

void AppSession::update_watch() {
  if (closed()) return;
  const std::uint32_t events =
      (paused_ ? 0u : CLUSTERD_FD_READ) | (out_begin_ < out_.size() ? CLUSTERD_FD_WRITE : 0u);
  if (events == watched_ && (events == 0 || watch_)) return;
  watched_ = events;
  if (events == 0) {  // paused with nothing to write: the host watches nothing (it cannot)
    watch_ = FdWatch();
  } else if (watch_) {
    watch_.modify(events);
  } else {
    std::weak_ptr<AppSession> weak = weak_from_this();
    watch_ = FdWatch::watch(host_, fd_, events, [weak](std::uint32_t ready) {
      if (auto self = weak.lock()) self->on_ready(ready);
    });
  }
}

void AppSession::close(const std::string &reason) {
  if (closed()) return;
  auto keep = shared_from_this();
  unsigned char header[CLUSTERD_FRAME_MAX_HEADER];
  out_.append(reinterpret_cast<const char *>(header),
              clusterd_frame_error_header(header, reason.size()));
  out_.append(reason);
  // One attempt at what fits: the application learns why if it still reads.
  [[maybe_unused]] auto sent =
      ::send(fd_, out_.data() + out_begin_, out_.size() - out_begin_, MSG_NOSIGNAL | MSG_DONTWAIT);
  watch_ = FdWatch();
  handle_later_ = Timer();
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
  in_.reset();
  in_capacity_ = in_begin_ = in_end_ = 0;
  std::string().swap(out_);
  if (events_.on_closed) events_.on_closed(*this, reason);
}

}  // namespace clusterd::partisan
