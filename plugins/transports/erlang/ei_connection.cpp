// DistConnection over libei (erl_interface), erlang.md §2 and §5.3. ei does the v6 handshake,
// ticks and the external term format. We plug our own socket callbacks into it ("ussi",
// EI_SCLBK_FLG_FULL_IMPL) so that:
//  - every wait polls the socket together with the thread's Canceller: stop() interrupts a
//    connect, a handshake or an rpc at once;
//  - waits use poll(), not select(), so a daemon with more than 1024 fds still works;
//  - writes use MSG_NOSIGNAL: a peer that dropped us is an error, never SIGPIPE;
//  - the handshake is observed, to tell a wrong cookie from a refused or duplicate name.
#include <ei.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>

#include "dist_connection.hpp"

namespace clusterd::erlang {

namespace {

using std::chrono::milliseconds;

constexpr std::size_t kSniffBytes = 2048;  // handshake frames are < 300 bytes each
constexpr std::size_t kMaxPrinted = 300;   // of a term quoted in a message

// What the handshake looked like, to explain a failure (ei only says "EIO").
struct Handshake {
  std::string in, out;  // the first bytes of each direction, until the handshake completes
  bool tcp_connected = false;
  bool complete = false;
  bool eof = false;  // a read returned 0
  int last_error = 0;
};

// The socket callbacks' setup context: one per connection.
struct Setup {
  const Canceller *cancel = nullptr;
  Handshake *handshake = nullptr;
  // ei passes "infinite" for writes it does without a timeout (ei_rpc_to): bound them anyway.
  milliseconds default_timeout{30'000};
};

struct Sock {
  int fd = -1;
  Setup *setup = nullptr;
};

Deadline deadline_for(const Setup &setup, unsigned ms) {
  if (ms == 0 || ms == EI_SCLBK_INF_TMO) return deadline_after(setup.default_timeout);
  return deadline_after(milliseconds(ms));
}

int fail(Sock *s, int err) {
  s->setup->handshake->last_error = err;
  return err;
}

void sniff(std::string &buf, const Handshake &hs, const char *data, std::size_t n) {
  if (hs.complete || buf.size() >= kSniffBytes) return;
  buf.append(data, std::min(n, kSniffBytes - buf.size()));
}

int cb_socket(void **ctx, void *setup_ctx) {
  auto *setup = static_cast<Setup *>(setup_ctx);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  auto *s = new (std::nothrow) Sock{fd, setup};
  if (s == nullptr) {
    close(fd);
    return ENOMEM;
  }
  *ctx = s;
  return 0;
}

int cb_close(void *ctx) {
  auto *s = static_cast<Sock *>(ctx);
  const int rc = close(s->fd);
  delete s;
  return rc == 0 ? 0 : errno;
}

int cb_listen(void *, void *, int *, int) {
  return EOPNOTSUPP;  // a hidden client node never listens
}

int cb_accept(void **, void *, int *, unsigned) {
  return EOPNOTSUPP;
}

int cb_connect(void *ctx, void *addr, int len, unsigned ms) {
  auto *s = static_cast<Sock *>(ctx);
  if (connect(s->fd, static_cast<const sockaddr *>(addr), static_cast<socklen_t>(len)) == 0) {
    s->setup->handshake->tcp_connected = true;
    return 0;
  }
  int err = errno;
  if (err != EINPROGRESS && err != EINTR) return fail(s, err);
  err = wait_fd(s->fd, POLLOUT, *s->setup->cancel, deadline_for(*s->setup, ms));
  if (err == 0) {
    socklen_t size = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &size) != 0) err = errno;
  }
  if (err != 0) return fail(s, err);
  s->setup->handshake->tcp_connected = true;
  return 0;
}

int cb_writev(void *ctx, const void *iov, int iovcnt, ssize_t *len, unsigned ms) {
  auto *s = static_cast<Sock *>(ctx);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec *>(static_cast<const iovec *>(iov));
  msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
  const Deadline deadline = deadline_for(*s->setup, ms);
  for (;;) {
    const ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      Handshake &hs = *s->setup->handshake;
      ssize_t left = n;
      for (int i = 0; i < iovcnt && left > 0; ++i) {
        const auto &v = static_cast<const iovec *>(iov)[i];
        const auto take = std::min<std::size_t>(v.iov_len, static_cast<std::size_t>(left));
        sniff(hs.out, hs, static_cast<const char *>(v.iov_base), take);
        left -= static_cast<ssize_t>(take);
      }
      *len = n;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(s, errno);
    if (const int err = wait_fd(s->fd, POLLOUT, *s->setup->cancel, deadline); err != 0)
      return fail(s, err);
  }
}

int cb_write(void *ctx, const char *buf, ssize_t *len, unsigned ms) {
  auto *s = static_cast<Sock *>(ctx);
  const Deadline deadline = deadline_for(*s->setup, ms);
  for (;;) {
    const ssize_t n = send(s->fd, buf, static_cast<std::size_t>(*len), MSG_NOSIGNAL);
    if (n >= 0) {
      sniff(s->setup->handshake->out, *s->setup->handshake, buf, static_cast<std::size_t>(n));
      *len = n;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(s, errno);
    if (const int err = wait_fd(s->fd, POLLOUT, *s->setup->cancel, deadline); err != 0)
      return fail(s, err);
  }
}

int cb_read(void *ctx, char *buf, ssize_t *len, unsigned ms) {
  auto *s = static_cast<Sock *>(ctx);
  std::size_t got = 0;
  const int err = recv_some(s->fd, buf, static_cast<std::size_t>(*len), got, *s->setup->cancel,
                            deadline_for(*s->setup, ms));
  if (err != 0) return fail(s, err);
  Handshake &hs = *s->setup->handshake;
  if (got == 0) hs.eof = true;
  sniff(hs.in, hs, buf, got);
  *len = static_cast<ssize_t>(got);
  return 0;
}

int cb_handshake_packet_header_size(void *, int *size) {
  *size = 2;
  return 0;
}

int cb_connect_handshake_complete(void *ctx) {
  auto *s = static_cast<Sock *>(ctx);
  s->setup->handshake->complete = true;
  const int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  return 0;
}

int cb_accept_handshake_complete(void *) {
  return 0;
}

int cb_get_fd(void *ctx, int *fd) {
  *fd = static_cast<Sock *>(ctx)->fd;
  return 0;
}

// ei takes a non-const pointer but never writes to it.
ei_socket_callbacks g_callbacks = {
    EI_SCLBK_FLG_FULL_IMPL,
    cb_socket,
    cb_close,
    cb_listen,
    cb_accept,
    cb_connect,
    cb_writev,
    cb_write,
    cb_read,
    cb_handshake_packet_header_size,
    cb_connect_handshake_complete,
    cb_accept_handshake_complete,
    cb_get_fd,
};

// The frames (2-byte length + body) in a sniffed handshake stream.
std::vector<std::string_view> frames(std::string_view stream) {
  std::vector<std::string_view> out;
  while (stream.size() >= 2) {
    const std::size_t len =
        (static_cast<unsigned char>(stream[0]) << 8) | static_cast<unsigned char>(stream[1]);
    if (stream.size() < 2 + len) break;
    out.push_back(stream.substr(2, len));
    stream.remove_prefix(2 + len);
  }
  return out;
}

bool decode_atom(const char *buf, int &index, std::string &out) {
  char atom[MAXATOMLEN_UTF8];
  if (ei_decode_atom_as(buf, &index, atom, sizeof atom, ERLANG_UTF8, nullptr, nullptr) < 0)
    return false;
  out = atom;
  return true;
}

// Prints the term at `index` (and skips it); bounded.
std::string print_term(const char *buf, int &index) {
  char *text = nullptr;
  int i = index;
  if (ei_s_print_term(&text, buf, &i) < 0) {
    free(text);
    ei_skip_term(buf, &index);
    return "(unprintable term)";
  }
  index = i;
  std::string out(text != nullptr ? text : "");
  free(text);
  if (out.size() > kMaxPrinted) out = out.substr(0, kMaxPrinted) + "...";
  return out;
}

bool is_tuple(const char *buf, int index, int arity, const char *first) {
  int got = 0;
  if (ei_decode_tuple_header(buf, &index, &got) < 0 || got != arity) return false;
  std::string tag;
  return decode_atom(buf, index, tag) && tag == first;
}

// An ei_x_buff that frees itself.
struct XBuff {
  XBuff() { ei_x_new(&x); }
  ~XBuff() { ei_x_free(&x); }
  XBuff(const XBuff &) = delete;
  XBuff &operator=(const XBuff &) = delete;
  ei_x_buff x{};
};

class EiConnection final : public DistConnection {
 public:
  EiConnection(const NodeIdentity &self, const std::string &cookie, const Canceller &cancel)
      : self_(self), cookie_(cookie), cancel_(cancel) {
    static std::once_flag once;
    std::call_once(once, [] { ei_init(); });
    setup_.cancel = &cancel_;
    setup_.handshake = &handshake_;
  }

  ~EiConnection() override {
    if (fd_ >= 0) ei_close_connection(fd_);  // closes the socket through cb_close
    explicit_bzero(ec_.ei_connect_cookie, sizeof ec_.ei_connect_cookie);
    explicit_bzero(cookie_.data(), cookie_.size());
  }

  EiConnection(const EiConnection &) = delete;
  EiConnection &operator=(const EiConnection &) = delete;

  void open(const sockaddr_in &address, const std::string &peer, milliseconds timeout) override {
    peer_ = peer;
    if (cookie_.size() > EI_MAX_COOKIE_SIZE)
      throw DistError(DistError::Kind::kProtocol,
                      "the cookie is longer than " + std::to_string(EI_MAX_COOKIE_SIZE) + " bytes");
    const std::string name = self_.name();
    if (ei_connect_xinit_ussi(&ec_, self_.host.c_str(), self_.alive.c_str(), name.c_str(), nullptr,
                              cookie_.c_str(), self_.creation, &g_callbacks, sizeof g_callbacks,
                              &setup_) < 0)
      throw DistError(DistError::Kind::kProtocol, "ei cannot set up hidden node " + name);
    setup_.default_timeout = timeout;
    in_addr ip = address.sin_addr;
    const unsigned ms = static_cast<unsigned>(std::max<long long>(timeout.count(), 1));
    const int fd = ei_xconnect_host_port_tmo(&ec_, &ip, ntohs(address.sin_port), ms);
    if (fd < 0) throw handshake_error(address, timeout, erl_errno);
    fd_ = fd;
    if (ei_make_pid(&ec_, &event_pid_) < 0)
      throw DistError(DistError::Kind::kProtocol, "ei cannot make a pid");
  }

  int fd() const noexcept override { return fd_; }

  void send(Call call, std::string_view arg, milliseconds timeout) override {
    if (in_flight_)
      throw DistError(DistError::Kind::kProtocol, std::string("internal: ") + call_name(call) +
                                                      " while " + call_name(*in_flight_) +
                                                      " is in flight");
    XBuff args;
    const char *mod = "erlang";
    const char *fun = "";
    const std::string node(arg);
    switch (call) {
      case Call::kNode:
        fun = "node";
        break;
      case Call::kNodes:
        fun = "nodes";
        break;
      case Call::kIsHidden:
        mod = "init";
        fun = "get_argument";
        ei_x_encode_list_header(&args.x, 1);
        ei_x_encode_atom(&args.x, "hidden");
        break;
      case Call::kConnectNode:
        mod = "net_kernel";
        fun = "connect_node";
        ei_x_encode_list_header(&args.x, 1);
        ei_x_encode_atom_as(&args.x, node.c_str(), ERLANG_UTF8, ERLANG_UTF8);
        break;
      case Call::kDisconnectNode:
        fun = "disconnect_node";
        ei_x_encode_list_header(&args.x, 1);
        ei_x_encode_atom_as(&args.x, node.c_str(), ERLANG_UTF8, ERLANG_UTF8);
        break;
      case Call::kScanRelay:
        mod = "erl_scan";
        fun = "string";
        ei_x_encode_list_header(&args.x, 1);
        ei_x_encode_string(&args.x, kRelaySource);
        break;
      case Call::kParseRelay:
        mod = "erl_parse";
        fun = "parse_exprs";
        ei_x_encode_list_header(&args.x, 1);
        ei_x_append_buf(&args.x, tokens_.data(), static_cast<int>(tokens_.size()));
        break;
      case Call::kSpawnRelay:
        fun = "spawn";
        ei_x_encode_list_header(&args.x, 3);
        ei_x_encode_atom(&args.x, "erl_eval");
        ei_x_encode_atom(&args.x, "exprs");
        ei_x_encode_list_header(&args.x, 2);
        ei_x_append_buf(&args.x, exprs_.data(), static_cast<int>(exprs_.size()));
        ei_x_encode_list_header(&args.x, 1);  // bindings: [{'Pid', EventPid}]
        ei_x_encode_tuple_header(&args.x, 2);
        ei_x_encode_atom(&args.x, "Pid");
        ei_x_encode_pid(&args.x, &event_pid_);
        ei_x_encode_empty_list(&args.x);
        ei_x_encode_empty_list(&args.x);
        break;
    }
    ei_x_encode_empty_list(&args.x);
    setup_.default_timeout = timeout;
    if (ei_rpc_to(&ec_, fd_, const_cast<char *>(mod), const_cast<char *>(fun), args.x.buff,
                  args.x.index) < 0)
      throw io_error(std::string("sending ") + call_name(call) + " to " + peer_);
    in_flight_ = call;
  }

  Incoming receive(milliseconds timeout) override {
    erlang_msg msg{};
    x_.x.index = 0;
    setup_.default_timeout = timeout;
    const unsigned ms = static_cast<unsigned>(std::max<long long>(timeout.count(), 1));
    const int rc = ei_xreceive_msg_tmo(fd_, &msg, &x_.x, ms);
    if (rc == ERL_TICK) return {};
    if (rc == ERL_ERROR) throw io_error("receiving from " + peer_);
    switch (msg.msgtype) {
      case ERL_SEND:
      case ERL_REG_SEND:
      case ERL_SEND_TT:
      case ERL_REG_SEND_TT:
        return decode_message(x_.x.buff);
      case ERL_EXIT:
      case ERL_EXIT2:
      case ERL_EXIT_TT:
      case ERL_EXIT2_TT:
        if (relay_pid_ && ei_cmp_pids(&msg.from, &*relay_pid_) == 0) {
          Incoming in;
          in.kind = Incoming::Kind::kRelayExited;
          int index = 0;
          int version = 0;
          if (ei_decode_version(x_.x.buff, &index, &version) < 0) index = 0;
          in.reason = x_.x.index > 0 ? print_term(x_.x.buff, index) : "unknown";
          relay_pid_.reset();
          return in;
        }
        return {};
      default:
        return {};  // links, unlinks, monitors: nothing to do
    }
  }

 private:
  DistError handshake_error(const sockaddr_in &address, milliseconds timeout, int err) const {
    using Kind = DistError::Kind;
    if (cancel_.fired()) return DistError(Kind::kCancelled, "cancelled");
    const Handshake &hs = handshake_;
    const std::string where = peer_ + " at " + endpoint_text(address);
    if (hs.last_error == ETIMEDOUT || err == ETIMEDOUT)
      return DistError(Kind::kTimeout, "connecting to " + where + " timed out after " +
                                           std::to_string(timeout.count()) + " ms");
    if (!hs.tcp_connected)
      return DistError(Kind::kRefused, "cannot connect to " + where + ": " +
                                           error_text(hs.last_error != 0 ? hs.last_error : err));
    bool sent_reply = false;
    for (const auto frame : frames(hs.out))
      if (!frame.empty() && frame[0] == 'r') sent_reply = true;
    for (const auto frame : frames(hs.in)) {
      if (frame.empty() || frame[0] != 's') continue;
      const std::string status(frame.substr(1));
      if (status == "ok" || status == "ok_simultaneous") continue;
      std::string why = "status '" + status + "'";
      if (status == "alive")
        why += ": a connection from " + self_.name() + " is still up there";
      else if (status == "not_allowed")
        why += ": the node only allows some nodes (net_kernel:allow/1)";
      return DistError(Kind::kRefused, peer_ + " refused the connection (" + why + ")");
    }
    if (sent_reply)
      return DistError(Kind::kAuth, peer_ +
                                        " rejected the connection: wrong cookie? (it hung up "
                                        "after our challenge reply)");
    return DistError(Kind::kIo, "distribution handshake with " + where + " failed" +
                                    (hs.eof ? ": the node closed the connection"
                                            : ": " + error_text(err != 0 ? err : EIO)));
  }

  DistError io_error(const std::string &what) const {
    if (cancel_.fired()) return DistError(DistError::Kind::kCancelled, "cancelled");
    const int err = handshake_.last_error != 0 ? handshake_.last_error : erl_errno;
    if (err == ETIMEDOUT)
      return DistError(DistError::Kind::kTimeout, what + ": timed out mid-message");
    if (handshake_.eof) return DistError(DistError::Kind::kIo, peer_ + " closed the connection");
    return DistError(DistError::Kind::kIo, what + ": " + error_text(err != 0 ? err : EIO));
  }

  Incoming decode_message(const char *buf) {
    int index = 0;
    int version = 0;
    int arity = 0;
    std::string tag;
    if (ei_decode_version(buf, &index, &version) < 0 ||
        ei_decode_tuple_header(buf, &index, &arity) < 0 || !decode_atom(buf, index, tag))
      return {};
    Incoming in;
    if (tag == "rex" && arity == 2) {
      if (!in_flight_) return {};  // a reply nobody waits for (cannot happen: one in flight)
      in.kind = Incoming::Kind::kReply;
      in.call = *in_flight_;
      in_flight_.reset();
      in.reply = decode_reply(in.call, buf, index);
      return in;
    }
    if (tag == "clusterd_relay_ready" && arity == 2) {
      in.kind = Incoming::Kind::kRelayReady;
      return in;
    }
    if (tag == "clusterd_node_event" && arity == 4) {
      std::string event;
      if (!decode_atom(buf, index, event) || !decode_atom(buf, index, in.node)) return {};
      in.kind = Incoming::Kind::kNodeEvent;
      in.up = event == "nodeup";
      decode_info(buf, index, in);
      return in;
    }
    return {};
  }

  // [{node_type, visible | hidden}, {nodedown_reason, Reason}] in any order.
  static void decode_info(const char *buf, int &index, Incoming &in) {
    int type = 0;
    int size = 0;
    if (ei_get_type(buf, &index, &type, &size) < 0 || type != ERL_LIST_EXT) return;
    int count = 0;
    if (ei_decode_list_header(buf, &index, &count) < 0) return;
    for (int i = 0; i < count; ++i) {
      int arity = 0;
      int at = index;
      std::string key;
      if (ei_decode_tuple_header(buf, &at, &arity) == 0 && arity == 2 &&
          decode_atom(buf, at, key)) {
        if (key == "node_type") {
          std::string value;
          if (decode_atom(buf, at, value)) in.hidden = value == "hidden";
        } else if (key == "nodedown_reason") {
          in.reason = print_term(buf, at);
        }
      }
      if (ei_skip_term(buf, &index) < 0) return;
    }
  }

  Reply decode_reply(Call call, const char *buf, int index) {
    Reply reply;
    if (is_tuple(buf, index, 2, "badrpc")) {
      int at = index;
      int arity = 0;
      std::string tag;
      ei_decode_tuple_header(buf, &at, &arity);
      decode_atom(buf, at, tag);
      reply.error = "badrpc: " + print_term(buf, at);
      return reply;
    }
    const int start = index;
    switch (call) {
      case Call::kNode:
      case Call::kConnectNode:
      case Call::kDisconnectNode:
        reply.ok = decode_atom(buf, index, reply.atom);
        break;
      case Call::kIsHidden: {
        // {ok, [[]]} when started with -hidden (remote shells too), else error
        std::string atom;
        if (is_tuple(buf, index, 2, "ok")) {
          reply.atom = "true";
          reply.ok = true;
        } else if (decode_atom(buf, index, atom) && atom == "error") {
          reply.atom = "false";
          reply.ok = true;
        }
        break;
      }
      case Call::kNodes: {
        int type = 0;
        int size = 0;
        int count = 0;
        ei_get_type(buf, &index, &type, &size);
        if (type == ERL_NIL_EXT) {
          reply.ok = true;
          break;
        }
        if (type != ERL_LIST_EXT || ei_decode_list_header(buf, &index, &count) < 0) break;
        reply.ok = true;
        for (int i = 0; i < count && reply.ok; ++i) {
          std::string node;
          reply.ok = decode_atom(buf, index, node);
          reply.nodes.push_back(std::move(node));
        }
        break;
      }
      case Call::kScanRelay:
      case Call::kParseRelay: {
        // {ok, Tokens, EndLocation} / {ok, Exprs}: keep the raw term for the next step.
        int arity = 0;
        std::string tag;
        if (ei_decode_tuple_header(buf, &index, &arity) < 0 || !decode_atom(buf, index, tag) ||
            tag != "ok" || arity < 2)
          break;
        const int from = index;
        if (ei_skip_term(buf, &index) < 0) break;
        (call == Call::kScanRelay ? tokens_ : exprs_).assign(buf + from, buf + index);
        reply.ok = true;
        break;
      }
      case Call::kSpawnRelay: {
        erlang_pid pid{};
        if (ei_decode_pid(buf, &index, &pid) < 0) break;
        relay_pid_ = pid;
        reply.ok = true;
        break;
      }
    }
    if (!reply.ok) {
      int at = start;
      reply.error = "unexpected reply " + print_term(buf, at);
    }
    return reply;
  }

  NodeIdentity self_;
  std::string cookie_;
  const Canceller &cancel_;
  Handshake handshake_;
  Setup setup_;
  ei_cnode ec_{};
  int fd_ = -1;
  std::string peer_;
  erlang_pid event_pid_{};
  std::optional<erlang_pid> relay_pid_;
  std::optional<Call> in_flight_;
  std::string tokens_, exprs_;  // the relay, scanned and parsed on the managed node
  XBuff x_;
};

}  // namespace

std::unique_ptr<DistConnection> make_ei_connection(const NodeIdentity &self,
                                                   const std::string &cookie,
                                                   const Canceller &cancel) {
  return std::make_unique<EiConnection>(self, cookie, cancel);
}

}  // namespace clusterd::erlang
