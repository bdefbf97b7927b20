#include "control/control_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>

#include "config/config.hpp"
#include "util/ids.hpp"
#include "util/strings.hpp"

namespace clusterd::control {

struct ControlServer::Shared {
  explicit Shared(Handler handler) : handler(std::move(handler)) {}
  Handler handler;
  AccessPolicy access;
  std::size_t connections = 0;
  std::size_t sessions = 0;
  std::size_t input = 0;  // bytes of input buffers, all connections (kMaxInput)
};

Access AccessPolicy::of(const Peer &peer) const {
  if (uids.empty() && groups.empty() && read_uids.empty() && read_groups.empty())
    return Access::all;  // no lists: the socket's file mode is the only control
  if (peer.uid == 0 || peer.uid == ::geteuid()) return Access::all;
  auto has = [](const auto &list, auto id) {
    return std::find(list.begin(), list.end(), id) != list.end();
  };
  auto member = [&](const std::vector<gid_t> &list) {
    if (has(list, peer.gid)) return true;
    return std::any_of(peer.groups.begin(), peer.groups.end(),
                       [&](gid_t g) { return has(list, g); });
  };
  if (has(uids, peer.uid) || member(groups)) return Access::all;
  if (has(read_uids, peer.uid) || member(read_groups)) return Access::read;
  return Access::none;
}

namespace {

using boost::asio::local::stream_protocol;
constexpr auto kFirstLineTimeout = std::chrono::seconds(5);
// How long an ending session may go without handing its client any of its queued lines.
constexpr auto kFlushTimeout = std::chrono::seconds(10);
// How long a closing connection keeps reading (and dropping) what its client still sends, so
// that the kernel does not reset the connection before the client has read our last line.
constexpr auto kLinger = std::chrono::seconds(2);
constexpr std::size_t kMaxClientLine = 64u << 20;  // what clusterctl accepts in one line
// Input is read at most kChunk at a time, into a buffer that starts at kMinRead (what an idle
// connection holds) and grows, doubling, only while a line is longer.
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMinRead = 4096;
constexpr std::size_t kMaxWrite = 256 * 1024;               // bytes handed to one async_write
constexpr auto kClientIoTimeout = std::chrono::seconds(5);  // clusterctl: connect and send

std::string error_line(const std::string &message) {
  std::string out = R"({"error":")";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;  // our own messages: no controls
    out += c;
  }
  return out + "\"}";
}

// One pass over a line, before any parse: false if arrays and objects nest deeper than `limit`
// (a line of "[[[[..." costs this pass and no allocation; the parser would recurse per level).
// Calls on_member(key, value) for each member of a top-level object: `value` is the text of a
// string (empty if it has escapes; names route() and read-only checks compare have none), or
// nullopt for any other value; a key with escapes is passed as "".
template <class OnMember>
bool scan_line(std::string_view line, std::size_t limit, OnMember &&on_member) {
  std::size_t depth = 0, start = 0;
  bool in_string = false, escaped = false, has_escape = false;
  bool want_key = false, want_value = false;  // at depth 1, in the top-level object
  std::string_view key;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = has_escape = true;
      } else if (c == '"') {
        in_string = false;
        const auto text = has_escape ? std::string_view() : line.substr(start, i - start);
        if (depth == 1 && want_key) {
          key = text;
          want_key = false;
        } else if (depth == 1 && want_value) {
          on_member(key, std::optional<std::string_view>(text));
          want_value = false;
        }
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        has_escape = false;
        start = i + 1;
        break;
      case '{':
      case '[':
        if (depth == 1 && want_value) on_member(key, std::optional<std::string_view>());
        if (++depth > limit) return false;
        want_key = depth == 1 && c == '{';
        want_value = false;
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      case ':':
        want_value = depth == 1;
        break;
      case ',':
        want_key = depth == 1;
        want_value = false;
        break;
      case ' ':
      case '\t':
      case '\r':
      case '\n':
        break;
      default:  // a number, true, false, null: a value that is not a name
        if (depth == 1 && want_value) on_member(key, std::optional<std::string_view>());
        want_value = false;
    }
  }
  return true;
}

// The first line's members route() reads ("cmd", "transport", "topology"), into `routing`: a
// line over kMaxHostLine is never parsed by the host, only routed (its plugin parses it).
bool scan_first_line(std::string_view line, std::size_t limit, nlohmann::json *routing) {
  return scan_line(line, limit, [&](std::string_view key, std::optional<std::string_view> value) {
    if (routing && value && (key == "cmd" || key == "transport" || key == "topology"))
      (*routing)[std::string(key)] = std::string(*value);
  });
}

// The "cmd" of a session line if it names one unambiguously, else "": given once, as a string
// without escapes, and no top-level key has escapes (the plugin decodes those, and its parser
// might then read another "cmd" than this scan). Costs one pass and no allocation but the
// result; only lines of peers with read-only access pay it.
std::string command_of(std::string_view line) {
  std::optional<std::string_view> cmd;
  bool ambiguous = false;
  scan_line(line, SIZE_MAX, [&](std::string_view key, std::optional<std::string_view> value) {
    if (key.empty() || (key == "cmd" && (cmd || !value))) ambiguous = true;
    if (key == "cmd") cmd = value;
  });
  return ambiguous || !cmd ? std::string() : std::string(*cmd);
}

Peer peer_of(int fd) {
  Peer peer;
  ucred cred{};
  socklen_t length = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0)
    peer = {cred.pid, cred.uid, cred.gid, {}};
  std::vector<gid_t> groups(32);
  for (int attempt = 0; attempt < 2; ++attempt) {  // ERANGE once: the length it needs is set
    length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length) == 0) {
      groups.resize(length / sizeof(gid_t));
      peer.groups = std::move(groups);
      break;
    }
    if (errno != ERANGE) break;
    groups.resize(length / sizeof(gid_t) + 1);
  }
  return peer;
}

// One client connection: first a request line (bounded in size and time); then either one
// answer and close (host commands), or a session with a plugin instance.
class Connection final : public Session, public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream_protocol::socket socket, std::shared_ptr<ControlServer::Shared> shared)
      : Session(util::next_id()),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        shared_(std::move(shared)),
        peer_(peer_of(socket_.native_handle())) {
    ++shared_->connections;
  }

  ~Connection() override {
    std::string().swap(in_);
    account();
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

  clusterd_status_t detach(int &fd, std::string &unread) override {
    if (mode_ != Mode::session) return CLUSTERD_E_NOT_FOUND;
    if (!delivering_) return CLUSTERD_E_INVALID_ARG;  // a read may be in flight: bytes lost
    if (buffered_ > 0 || writing_now_) return CLUSTERD_E_AGAIN;
    unread.assign(in_);  // first: if it throws (no memory), nothing changed yet
    boost::system::error_code ec;
    const int taken = socket_.release(ec);
    if (ec || taken < 0) return CLUSTERD_E_IO;
    // asio may have left it blocking; the contract says non-blocking and close-on-exec.
    ::fcntl(taken, F_SETFL, ::fcntl(taken, F_GETFL) | O_NONBLOCK);
    ::fcntl(taken, F_SETFD, FD_CLOEXEC);
    fd = taken;
    spdlog::debug("control connection {}: socket handed to the plugin", id());
    release();  // no longer counted; session_over follows from its own loop turn
    mode_ = Mode::closed;
    ++timer_generation_;
    timer_.cancel();
    return CLUSTERD_OK;
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

  // Keeps the server-wide count of input bytes in step with this buffer's allocation.
  void account() {
    shared_->input = shared_->input + in_.capacity() - counted_;
    counted_ = in_.capacity();
  }

  // Gives a grown buffer back once the long line it held is handled.
  void shrink() {
    if (in_.capacity() <= 4 * kMinRead || in_.size() > in_.capacity() / 4) return;
    std::string(in_).swap(in_);
    account();
  }

  // Handles the complete lines buffered, then reads more (the line so far stays buffered).
  void read() {
    while (mode_ == Mode::first_line || mode_ == Mode::session) {
      auto newline = in_.find('\n', scanned_);
      if (newline == std::string::npos) break;
      std::string line = in_.substr(0, newline);
      in_.erase(0, newline + 1);
      scanned_ = 0;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (mode_ == Mode::first_line)
        first_line(line);
      else
        deliver(line);
    }
    shrink();
    if (mode_ != Mode::first_line && mode_ != Mode::session) return;
    scanned_ = in_.size();
    if (in_.size() > kMaxSessionLine) return refuse("a session line must be at most 8 MiB");
    const auto old = in_.size();
    if (in_.capacity() - old < kMinRead) {
      in_.reserve(std::min(kMaxSessionLine + 1, std::max(old + kMinRead, 2 * in_.capacity())));
      account();
      if (shared_->input > kMaxInput) {
        spdlog::warn(
            "control connection {} (uid {}, pid {}): closed, the input of all control "
            "connections would exceed {} MiB",
            id(), peer_.uid, peer_.pid, kMaxInput >> 20);
        return refuse("the daemon holds too much unread control input; try again later");
      }
    }
    const auto want = std::min({kChunk, in_.capacity() - old, kMaxSessionLine + 1 - old});
    in_.resize(old + want);
    reading_ = true;
    socket_.async_read_some(
        boost::asio::buffer(in_.data() + old, want),
        [self = shared_from_this(), old](const boost::system::error_code &ec, std::size_t n) {
          self->in_.resize(old + n);
          self->on_read(ec);
        });
  }

  // Ends the connection over its input: one error line, then close. The buffer goes at once.
  void refuse(const std::string &message) {
    std::string().swap(in_);
    account();
    if (mode_ == Mode::first_line) return answer(error_line(message));
    tell_target();
    queue(error_line(message));
    end();
  }

  // Reads and drops input until the client closes (or kLinger runs out).
  void discard() {
    in_.assign(4096, '\0');
    account();
    reading_ = true;
    socket_.async_read_some(boost::asio::buffer(in_),
                            [self = shared_from_this()](const boost::system::error_code &ec,
                                                        std::size_t) { self->on_read(ec); });
  }

  void on_read(const boost::system::error_code &ec) {
    reading_ = false;
    if (mode_ == Mode::lingering) return ec ? finish() : discard();
    if (mode_ == Mode::closed || mode_ == Mode::ending) return;
    if (ec) {
      if (mode_ != Mode::session) return finish();  // gone before asking anything
      // The client is gone or done sending: the plugin stops now, queued lines still go out.
      tell_target();
      return end();
    }
    read();
  }

  void first_line(const std::string &line) {
    const bool long_line = line.size() > kMaxHostLine;
    auto document = nlohmann::json::object();
    if (!scan_first_line(line, kMaxDepth, long_line ? &document : nullptr))
      return answer(
          error_line("request nests deeper than " + std::to_string(kMaxDepth) + " levels"));
    if (!long_line) document = nlohmann::json::parse(line, nullptr, false);
    access_ = shared_->access.of(peer_);
    auto reply = shared_->handler({document, line.size(), peer_, access_});
    spdlog::log(reply.read_only ? spdlog::level::debug : spdlog::level::info,
                "control connection {} from uid {} (pid {}): {}", id(), peer_.uid, peer_.pid,
                reply.what);
    if (!reply.target) return answer(reply.line);
    if (auto denied = refusal(*reply.target, line); !denied.empty())
      return answer(error_line(denied));
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
    deliver(line, true);
  }
  // For a peer with read-only access, every line of a session (the first too: this scan is
  // stricter than route()'s parse) must name a command the plugin lists as read-only: the
  // refusal's text, or "" if the line may go. Peers with full access pay nothing here.
  std::string refusal(const SessionTarget &target, std::string_view line) const {
    if (access_ == Access::all) return "";
    const auto cmd = command_of(line);
    if (target.read_only(cmd)) return "";
    const auto what = cmd.empty() ? std::string("a request without a plain \"cmd\"")
                                  : util::quote_for_message(cmd);
    spdlog::info("control connection {} from uid {} (pid {}): {} refused (read-only access)", id(),
                 peer_.uid, peer_.pid, what);
    return "permission denied: uid " + std::to_string(peer_.uid) +
           " may only send read-only requests (" + what + " changes state)";
  }

  // A line for the plugin. A refused later line ends the session (see refusal()): the client's
  // next lines were written after it, and none of them may run out of that context.
  void deliver(const std::string &line, bool first = false) {
    auto target = target_.lock();
    if (target && !first) {
      if (auto denied = refusal(*target, line); !denied.empty()) return refuse(denied);
    }
    std::string error = "the plugin instance is gone";
    delivering_ = true;  // the plugin may detach() the socket meanwhile
    const bool taken = target && target->session_line(id(), line, error);
    delivering_ = false;
    if (taken) return;
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
    // A piece at a time, so that a slow client's progress re-arms the ending timer.
    if (pending_.size() <= kMaxWrite) {
      writing_.swap(pending_);
      pending_.clear();
    } else {
      writing_.assign(pending_, 0, kMaxWrite);
      pending_.erase(0, kMaxWrite);
    }
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
    if (!reading_) std::string().swap(in_);  // else the read's completion still writes into it
    account();
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
  std::shared_ptr<ControlServer::Shared> shared_;
  Peer peer_;
  std::string in_;           // input not handled yet: a partial line (and what followed it)
  std::size_t counted_ = 0;  // in_'s allocation as counted in shared_->input
  std::size_t scanned_ = 0;  // bytes of in_ known to hold no newline
  Mode mode_ = Mode::first_line;
  Access access_ = Access::none;  // decided at the first line
  std::weak_ptr<SessionTarget> target_;
  bool in_session_ = false;
  bool released_ = false;
  bool reading_ = false;
  bool told_ = false;        // session_over sent (or not wanted)
  bool delivering_ = false;  // a line of ours is with the plugin (detach() is allowed)
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

namespace {

// A Unix socket address for `path`; false if the path does not fit.
bool unix_address(const std::string &path, sockaddr_un &address) {
  address = {};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path) return false;
  std::memcpy(address.sun_path, path.data(), path.size());
  return true;
}

// Does a process accept connections on the socket at `path`? A non-blocking connect answers
// at once: refused if nobody listens (a stale socket), done or "backlog full" if somebody does.
// Nothing is sent: a listener that never answers cannot hold us up.
bool someone_listens(const std::string &path) {
  sockaddr_un address;
  if (!unix_address(path, address)) return false;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int rc = ::connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof address);
  int error = rc == 0 ? 0 : errno;
  ::close(fd);
  return rc == 0 || error == EAGAIN || error == EINPROGRESS;
}

}  // namespace

bool ControlServer::listen(const std::string &path, std::string &error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (auto why = config::not_a_socket(path); !why.empty()) {
    error = why;
    return false;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (someone_listens(path)) {
      error = "control socket " + path +
              " is in use: a process accepts connections on it (another clusterd?)";
      return false;
    }
    ::unlink(path.c_str());  // stale, from a daemon that died
  }
  try {
    auto acceptor = std::make_unique<stream_protocol::acceptor>(io_);
    acceptor->open();
    acceptor->bind(stream_protocol::endpoint(path));
    acceptor->listen();
    ::chmod(path.c_str(), 0660);
    if (::stat(path.c_str(), &st) != 0) throw std::runtime_error(std::strerror(errno));
    acceptor_ = std::move(acceptor);
  } catch (const std::exception &e) {
    error = "cannot listen on control socket " + path + ": " + e.what();
    return false;
  }
  path_ = path;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  accept();
  return true;
}

bool ControlServer::listens_at(const std::string &path) const {
  struct stat st {};
  return acceptor_ && ::stat(path.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

void ControlServer::set_access(AccessPolicy policy) {
  shared_->access = std::move(policy);
}

void ControlServer::close() {
  if (!acceptor_) return;
  const bool ours = listens_at(path_);  // not a socket someone put there since
  boost::system::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
  if (ours) ::unlink(path_.c_str());
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

namespace {

using Clock = std::chrono::steady_clock;

// Waits until `fd` is ready for `events` or `deadline` passes (none: Clock::time_point::max()).
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int ms = -1;
    if (deadline != Clock::time_point::max()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      ms = static_cast<int>(std::min<long long>(left, 60'000));
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // the next call reports the error
  }
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

bool control_stream(const std::string &path, const std::string &request, int timeout_ms,
                    const std::function<bool(const std::string &line)> &on_line,
                    std::string &error) {
  // Non-blocking I/O with poll() and a deadline: a blocking read would wait again after each
  // EAGAIN of SO_RCVTIMEO, so that a daemon that never answers would hang us for good.
  const auto start = Clock::now();
  const auto deadline =
      timeout_ms > 0 ? start + std::chrono::milliseconds(timeout_ms) : Clock::time_point::max();
  const auto io_deadline = std::min(deadline, start + kClientIoTimeout);
  auto fail = [&](const std::string &why) {
    error = "cannot talk to clusterd at " + path + ": " + why;
    return false;
  };
  auto timed_out = [&] {
    return fail(
        "no answer within " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()) +
        " ms");
  };
  sockaddr_un address;
  if (!unix_address(path, address)) return fail("not a usable socket path");
  Fd socket{::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (socket.fd < 0) return fail(std::strerror(errno));
  while (::connect(socket.fd, reinterpret_cast<const sockaddr *>(&address), sizeof address) != 0) {
    if (errno == EINTR) continue;
    if (errno == EINPROGRESS) {
      if (!wait_for(socket.fd, POLLOUT, io_deadline)) return timed_out();
      int so_error = 0;
      socklen_t length = sizeof so_error;
      ::getsockopt(socket.fd, SOL_SOCKET, SO_ERROR, &so_error, &length);
      if (so_error != 0) return fail(std::strerror(so_error));
      break;
    }
    if (errno != EAGAIN) return fail(std::strerror(errno));
    // Its backlog is full: try again shortly, within the deadline.
    if (Clock::now() >= io_deadline) return timed_out();
    ::poll(nullptr, 0, 10);
  }
  const std::string line = request + "\n";
  for (std::size_t sent = 0; sent < line.size();) {
    if (!wait_for(socket.fd, POLLOUT, io_deadline)) return timed_out();
    auto n = ::send(socket.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return fail(std::strerror(errno));
    if (n > 0) sent += static_cast<std::size_t>(n);
  }
  std::string buffer;
  std::size_t scanned = 0;
  for (;;) {
    if (auto newline = buffer.find('\n', scanned); newline != std::string::npos) {
      std::string received = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      scanned = 0;
      if (!on_line(received)) return true;
      continue;
    }
    scanned = buffer.size();
    if (buffer.size() > kMaxClientLine) return fail("an answer line is over 64 MiB");
    if (!wait_for(socket.fd, POLLIN, deadline)) return timed_out();
    char chunk[kChunk];
    auto n = ::recv(socket.fd, chunk, sizeof chunk, 0);
    if (n == 0) return true;  // the daemon closed: done
    if (n < 0 && errno != EAGAIN && errno != EINTR) return fail(std::strerror(errno));
    if (n > 0) buffer.append(chunk, static_cast<std::size_t>(n));
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
