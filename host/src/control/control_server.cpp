#include "control/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <filesystem>

#include "util/ids.hpp"

namespace clusterd::control {

struct ControlServer::Shared {
  explicit Shared(Handler handler) : handler(std::move(handler)) {}
  Handler handler;
  std::size_t connections = 0;
  std::size_t sessions = 0;
};

namespace {

using boost::asio::local::stream_protocol;
constexpr auto kFirstLineTimeout = std::chrono::seconds(5);
// How long an ending session may go without handing its client any of its queued lines.
constexpr auto kFlushTimeout = std::chrono::seconds(10);
// How long a closing connection keeps reading (and dropping) what its client still sends, so
// that the kernel does not reset the connection before the client has read our last line.
constexpr auto kLinger = std::chrono::seconds(2);
constexpr std::size_t kMaxClientLine = 64u << 20;  // what clusterctl accepts in one line

std::string error_line(const std::string &message) {
  std::string out = R"({"error":")";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;  // our own messages: no controls
    out += c;
  }
  return out + "\"}";
}

// One client connection: first a request line (bounded in size and time); then either one
// answer and close (host commands), or a session with a plugin instance.
class Connection final : public Session, public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream_protocol::socket socket, std::shared_ptr<ControlServer::Shared> shared)
      : Session(util::next_id()),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        in_(kMaxSessionLine + 1),
        shared_(std::move(shared)) {
    ++shared_->connections;
  }

  void start() {
    arm_timer(kFirstLineTimeout);
    read();
  }

  clusterd_status_t send(std::string_view line) override {
    if (mode_ != Mode::session) return CLUSTERD_E_NOT_FOUND;
    if (buffered_ + line.size() + 1 > kMaxBuffered) {
      // Ending here keeps memory bounded; the plugin learns of it from the status.
      spdlog::warn("control session {}: the client reads too slowly ({} bytes unread); closed",
                   id(), buffered_);
      finish();
      return CLUSTERD_E_AGAIN;
    }
    queue(line);
    return CLUSTERD_OK;
  }

  void end() override {
    if (mode_ != Mode::session) return;
    mode_ = Mode::ending;
    arm_timer(kFlushTimeout);
    flush();
  }

  std::size_t buffered() const override {
    return mode_ == Mode::session || mode_ == Mode::ending ? buffered_ : 0;
  }

 private:
  enum class Mode { first_line, session, ending, lingering, closed };

  void arm_timer(std::chrono::seconds after) {
    auto generation = ++timer_generation_;
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code &ec) {
      if (!ec && generation == self->timer_generation_) self->finish();
    });
  }

  void read() {
    reading_ = true;
    boost::asio::async_read_until(
        socket_, in_, '\n',
        [self = shared_from_this()](const boost::system::error_code &ec, std::size_t n) {
          self->on_read(ec, n);
        });
  }

  // Reads and drops input until the client closes (or kLinger runs out).
  void discard() {
    in_.consume(in_.size());  // room for prepare()
    reading_ = true;
    socket_.async_read_some(in_.prepare(64 * 1024),
                            [self = shared_from_this()](const boost::system::error_code &ec,
                                                        std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code &ec, std::size_t n) {
    reading_ = false;
    if (mode_ == Mode::lingering) {
      if (ec) return finish();
      in_.consume(in_.size());
      return discard();
    }
    if (mode_ == Mode::closed || mode_ == Mode::ending) return;
    if (ec == boost::asio::error::not_found) {  // the buffer filled without a newline
      if (mode_ == Mode::first_line)
        return answer(error_line("request must be one JSON line of at most 8 MiB"));
      tell_target();
      queue(error_line("a session line must be at most 8 MiB"));
      return end();
    }
    if (ec) {
      if (mode_ != Mode::session) return finish();  // gone before asking anything
      // The client is gone or done sending: the plugin stops now, queued lines still go out.
      tell_target();
      return end();
    }
    auto begin = boost::asio::buffers_begin(in_.data());
    std::string line(begin, begin + static_cast<std::ptrdiff_t>(n - 1));
    in_.consume(n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (mode_ == Mode::first_line)
      first_line(line);
    else
      deliver(line);
    if (mode_ == Mode::session) read();
  }

  void first_line(const std::string &line) {
    auto reply = shared_->handler(line);
    if (!reply.target) {
      if (line.size() > kMaxHostLine)
        return answer(error_line("request must be one JSON line of at most 64 KiB"));
      return answer(reply.line);
    }
    if (shared_->sessions >= kMaxSessions)
      return answer(error_line("too many control sessions (" + std::to_string(kMaxSessions) +
                               "); try again later"));
    ++shared_->sessions;
    in_session_ = true;
    mode_ = Mode::session;
    ++timer_generation_;  // no time limit while a session is open
    timer_.cancel();
    target_ = reply.target;
    reply.target->session_opened(shared_from_this());
    deliver(line);
  }

  void deliver(const std::string &line) {
    auto target = target_.lock();
    std::string error = "the plugin instance is gone";
    if (target && target->session_line(id(), line, error)) return;
    if (mode_ != Mode::session) return;  // the plugin ended or closed it meanwhile
    queue(error_line(error));
    end();
  }

  // A host command's answer, or a refusal: one line, then close. The first-line timer still
  // bounds the whole exchange.
  void answer(const std::string &line) {
    mode_ = Mode::ending;
    queue(line);
  }

  void queue(std::string_view line) {
    pending_.append(line.data(), line.size());
    pending_ += '\n';
    buffered_ += line.size() + 1;
    flush();
  }

  void flush() {
    if (mode_ == Mode::closed || writing_now_) return;
    if (pending_.empty()) {
      if (mode_ == Mode::ending) linger();
      return;
    }
    writing_.swap(pending_);
    pending_.clear();
    writing_now_ = true;
    boost::asio::async_write(
        socket_, boost::asio::buffer(writing_),
        [self = shared_from_this()](const boost::system::error_code &ec, std::size_t) {
          self->writing_now_ = false;
          self->buffered_ -= std::min(self->buffered_, self->writing_.size());
          self->writing_.clear();
          if (self->writing_.capacity() > (1u << 20)) std::string().swap(self->writing_);
          if (self->mode_ == Mode::closed) return;
          if (ec) return self->finish();
          if (self->mode_ == Mode::ending) self->arm_timer(kFlushTimeout);  // it made progress
          self->flush();
        });
  }

  void tell_target() {
    if (told_ || !target_.lock()) return;
    told_ = true;
    // Deferred: this may run inside a sink call, and session_over calls into the plugin.
    boost::asio::post(socket_.get_executor(), [target = target_, id = id()] {
      if (auto t = target.lock()) t->session_over(id);
    });
  }

  // The connection no longer counts against the limits, and the session is over.
  void release() {
    if (released_) return;
    released_ = true;
    std::string().swap(pending_);  // writing_ belongs to an async_write until it completes
    buffered_ = 0;
    --shared_->connections;
    if (in_session_) --shared_->sessions;
    tell_target();
  }

  // Everything is written: close our side, drop what the client still sends, then close.
  void linger() {
    release();
    mode_ = Mode::lingering;
    boost::system::error_code ignored;
    socket_.shutdown(stream_protocol::socket::shutdown_send, ignored);
    arm_timer(kLinger);
    if (!reading_) discard();
  }

  void finish() {
    if (mode_ == Mode::closed) return;
    release();
    mode_ = Mode::closed;
    ++timer_generation_;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.shutdown(stream_protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  stream_protocol::socket socket_;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  boost::asio::streambuf in_;
  std::shared_ptr<ControlServer::Shared> shared_;
  Mode mode_ = Mode::first_line;
  std::weak_ptr<SessionTarget> target_;
  bool in_session_ = false;
  bool released_ = false;
  bool reading_ = false;
  bool told_ = false;  // session_over sent (or not wanted)
  std::string pending_, writing_;
  bool writing_now_ = false;
  std::size_t buffered_ = 0;
};

}  // namespace

ControlServer::ControlServer(boost::asio::io_context &io, Handler handler)
    : io_(io), shared_(std::make_shared<Shared>(std::move(handler))) {}

ControlServer::~ControlServer() {
  close();
}

bool ControlServer::listen(const std::string &path, std::string &error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (fs::exists(path, ec)) {
    std::string probe_response, probe_error;
    if (control_request(path, "{\"cmd\":\"ping\"}", probe_response, probe_error)) {
      error = "control socket " + path + " is in use by another running clusterd";
      return false;
    }
    fs::remove(path, ec);  // stale, from a daemon that died
  }
  try {
    auto acceptor = std::make_unique<stream_protocol::acceptor>(io_);
    acceptor->open();
    acceptor->bind(stream_protocol::endpoint(path));
    acceptor->listen();
    ::chmod(path.c_str(), 0660);
    acceptor_ = std::move(acceptor);
  } catch (const std::exception &e) {
    error = "cannot listen on control socket " + path + ": " + e.what();
    return false;
  }
  path_ = path;
  accept();
  return true;
}

void ControlServer::close() {
  if (!acceptor_) return;
  boost::system::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
  std::error_code fs_ec;
  std::filesystem::remove(path_, fs_ec);
}

void ControlServer::accept() {
  acceptor_->async_accept([this, alive = std::weak_ptr<bool>(alive_)](
                              const boost::system::error_code &ec, stream_protocol::socket socket) {
    auto a = alive.lock();
    if (!a || !acceptor_) return;
    if (!ec && shared_->connections >= kMaxConnections) {
      // A fresh socket's send buffer takes this short line without blocking.
      auto line = error_line("too many control connections; try again later") + "\n";
      [[maybe_unused]] auto sent =
          ::send(socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } else if (!ec) {
      std::make_shared<Connection>(std::move(socket), shared_)->start();
    }
    accept();
  });
}

bool control_stream(const std::string &path, const std::string &request, int timeout_ms,
                    const std::function<bool(const std::string &line)> &on_line,
                    std::string &error) {
  try {
    boost::asio::io_context io;
    stream_protocol::socket socket(io);
    socket.connect(stream_protocol::endpoint(path));
    if (timeout_ms > 0) {  // a wedged daemon must not hang clusterctl
      timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    }
    std::string line = request + "\n";
    boost::asio::write(socket, boost::asio::buffer(line));
    boost::asio::streambuf buffer(kMaxClientLine);
    for (;;) {
      boost::system::error_code ec;
      auto n = boost::asio::read_until(socket, buffer, '\n', ec);
      if (ec == boost::asio::error::eof) return true;
      if (ec) throw boost::system::system_error(ec);
      auto begin = boost::asio::buffers_begin(buffer.data());
      std::string received(begin, begin + static_cast<std::ptrdiff_t>(n - 1));
      buffer.consume(n);
      if (!on_line(received)) return true;
    }
  } catch (const std::exception &e) {
    error = "cannot talk to clusterd at " + path + ": " + e.what();
    return false;
  }
}

bool control_request(const std::string &path, const std::string &request, std::string &response,
                     std::string &error) {
  bool got = false;
  if (!control_stream(
          path, request, 5000,
          [&](const std::string &line) {
            response = line;
            got = true;
            return false;
          },
          error))
    return false;
  if (!got) error = "cannot talk to clusterd at " + path + ": it closed without answering";
  return got;
}

}  // namespace clusterd::control
