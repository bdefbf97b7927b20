// One application's binary session (docs/control-protocol.md, "Binary sessions"): the control
// connection the host handed over (control.h, detach; ABI 1.6), carrying length-prefixed frames
// (client/frame.h) both ways with no JSON per message. SEND frames are read in batches and
// handed to the transport; ACK and MESSAGE frames are queued and written once per loop event
// (Batch). Both directions are bounded: the transport pauses reading while the overlay
// connection a message went to is backed up, and an application that lets kMaxBuffered bytes
// (messages or acknowledgements) pile up is closed ("too slow"). A malformed frame ends the
// session with an ERROR frame.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <clusterd/control.h>
#include <clusterd/plugin.hpp>

namespace clusterd::partisan {

class AppSession : public std::enable_shared_from_this<AppSession> {
 public:
  struct Events {
    // A SEND frame: route `data` to node `to`, answer with ack(id, ...) now or later.
    std::function<void(AppSession &, std::uint64_t id, std::string_view to, std::string_view data)>
        on_send;
    // Once, after which nothing else is called: the application left, misbehaved, was too
    // slow, or close() was called.
    std::function<void(AppSession &, const std::string &reason)> on_closed;
  };

  // ACK statuses beyond the overlay's own (wire::AckStatus 0..3).
  static constexpr std::uint8_t kNotSent = 4;
  static constexpr std::size_t kMaxBuffered = CLUSTERD_CONTROL_MAX_BUFFERED;

  // Takes `fd` (detached from the host; closed by this object) with the bytes the host read
  // past the "open" line, writes `opened_line` (the JSON answer, newline added), then serves
  // frames. `max_message`: the transport's max_message_size. `id`: the control session's.
  static std::shared_ptr<AppSession> start(Host &host, Id id, int fd, std::string_view unread,
                                           std::string channel, bool receives,
                                           std::size_t max_message, std::string_view opened_line,
                                           Events events);
  ~AppSession();
  AppSession(const AppSession &) = delete;
  AppSession &operator=(const AppSession &) = delete;

  // Queues an ACK frame for message `id` (a SEND's); past kMaxBuffered (an application that
  // sends and never reads) the session is closed as too slow.
  void ack(std::uint64_t id, std::uint8_t status, std::string_view reason);
  // Queues a MESSAGE frame; false (and the session closed) when the application lets more than
  // kMaxBuffered bytes wait.
  bool deliver(std::string_view from, std::string_view data);
  // Back-pressure: no more SEND frames are read until resume().
  void pause();
  void resume();
  // Ends the session now: an ERROR frame with `reason` goes out first (best effort, never
  // blocking), then on_closed(reason).
  void close(const std::string &reason);

  Id id() const { return id_; }
  const std::string &channel() const { return channel_; }
  bool receives() const { return receives_; }
  bool closed() const { return fd_ < 0; }
  // "pid 123 uid 1000", for logs.
  const std::string &peer() const { return peer_; }

 private:
  AppSession(Host &host, Id id, int fd, std::string channel, bool receives, std::size_t max_message,
             Events events);
  void on_ready(std::uint32_t events);
  void read_some();
  void handle_frames();
  void make_room();
  // Queues a frame (its header, then two parts) for the application; false (and the session
  // closed) past kMaxBuffered.
  bool queue(const unsigned char *header, std::size_t header_length, std::string_view first,
             std::string_view second);
  void flush();
  void update_watch();
  void handle_later();

  Host &host_;
  Id id_;
  int fd_;
  std::string channel_;
  bool receives_;
  std::size_t max_frame_;
  Events events_;
  std::string peer_;
  FdWatch watch_;
  Timer handle_later_;          // handles frames already read (handed over, or read before a pause)
  std::unique_ptr<char[]> in_;  // received, not handled yet: in_[in_begin_, in_end_)
  std::size_t in_capacity_ = 0, in_begin_ = 0, in_end_ = 0;
  std::string out_;  // queued for the application: out_[out_begin_, end)
  std::size_t out_begin_ = 0;
  bool paused_ = false;
  std::uint32_t watched_ = 0;  // the events watch_ asks for
  bool flush_deferred_ = false;
};

}  // namespace clusterd::partisan
