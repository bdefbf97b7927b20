// The asynchronous EPMD client (see epmd_client.hpp).
#include "epmd_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace clusterd::epmd {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Bounds: a hosts file larger than this is not read; a name resolves to at most this many
// addresses; one read takes at most this many bytes.
constexpr std::size_t kMaxHostsFileBytes = 1 << 20;
constexpr std::size_t kMaxAddresses = 16;
constexpr std::size_t kReadChunk = 64 * 1024;

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // for messages
};

// "Connection refused" -> "connection refused".
std::string error_text(int error) {
  std::string text = std::strerror(error);
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z' &&
      (text.size() < 2 || !(text[1] >= 'A' && text[1] <= 'Z')))
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

// A numeric address ("10.0.0.1", "::1", "fe80::1%eth0") with `port`, or false. IPv4 must be a
// dotted quad (inet_pton), not one of inet_aton's short forms ("127.1").
bool numeric_address(const std::string &text, std::uint16_t port, Address &out) {
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    auto *sin = reinterpret_cast<sockaddr_in *>(&out.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = v4;
    out.length = sizeof(sockaddr_in);
    out.text = text;
    return true;
  }
  if (text.find(':') == std::string::npos) return false;
  addrinfo hints{};
  hints.ai_family = AF_INET6;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;  // never blocks: no lookup
  addrinfo *res = nullptr;
  if (getaddrinfo(text.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return false;
  bool ok = false;
  if (res->ai_addrlen <= sizeof out.storage && res->ai_family == AF_INET6) {
    std::memcpy(&out.storage, res->ai_addr, res->ai_addrlen);
    reinterpret_cast<sockaddr_in6 *>(&out.storage)->sin6_port = htons(port);
    out.length = static_cast<socklen_t>(res->ai_addrlen);
    out.text = text;
    ok = true;
  }
  freeaddrinfo(res);
  return ok;
}

// "[::1]" -> "::1"; anything else unchanged.
std::string strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return std::string(host.substr(1, host.size() - 2));
  return std::string(host);
}

bool plausible_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '/' || c == '@') return false;
  }
  return true;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string endpoint_text(std::string_view host, std::uint16_t port) {
  std::string h(host);
  if (h.find(':') != std::string::npos && !(h.size() >= 2 && h.front() == '[')) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

std::vector<std::string> hosts_file_lookup(std::string_view contents, std::string_view name) {
  std::vector<std::string> out;
  if (name.empty()) return out;
  std::size_t pos = 0;
  // One iteration per line; every iteration advances `pos` past a '\n' or to the end.
  while (pos < contents.size()) {
    auto end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    std::vector<std::string_view> fields;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      const std::size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      if (i > start) fields.push_back(line.substr(start, i - start));
    }
    if (fields.size() < 2) continue;
    for (std::size_t f = 1; f < fields.size(); ++f) {
      if (ascii_iequal(fields[f], name)) {
        out.emplace_back(fields[0]);
        break;
      }
    }
  }
  return out;
}

// ---- One request -------------------------------------------------------------------------------

struct Client::Op {
  enum class Kind { names, port2 };
  enum class Phase { starting, resolving, connecting, sending, reading };

  Op(Host &h, Target t, Kind k) : host(&h), target(std::move(t)), kind(k) {
    endpoint = endpoint_text(target.host, target.port);
    name = strip_brackets(target.host);
  }
  ~Op() { release(); }
  Op(const Op &) = delete;
  Op &operator=(const Op &) = delete;

  void begin() {
    started = Clock::now();
    deadline = Timer::after(*host, target.timeout, [this] { on_timeout(); });
    // Deferred, so that `done` never runs from inside the call that started the request.
    kick = Timer::after(*host, milliseconds(0), [this] { guarded([this] { resolve(); }); });
  }

  // Runs one step; an exception (a host service refusing, no memory) fails the request.
  template <class F>
  void guarded(F &&step) noexcept {
    try {
      step();
    } catch (const Error &e) {
      fail(e.status(), e.what());
    } catch (const std::exception &e) {
      fail(CLUSTERD_E_GENERIC, e.what());
    } catch (...) {
      fail(CLUSTERD_E_GENERIC, "unknown error");
    }
  }

  // ---- resolve ----
  void resolve() {
    phase = Phase::resolving;
    Address literal;
    if (numeric_address(name, target.port, literal)) {
      is_literal = true;
      addresses.push_back(std::move(literal));
      return connect_next();
    }
    if (!plausible_host_name(name))
      return fail(CLUSTERD_E_NOT_FOUND, "invalid host name \"" + printable(name) + "\"");
    if (!target.hosts_file.empty()) {
      std::string contents;
      if (std::string error; read_file(target.hosts_file, contents, error, kMaxHostsFileBytes)) {
        for (const auto &text : hosts_file_lookup(contents, name)) add_address(text);
        if (!addresses.empty()) {
          ipv4_first();
          return connect_next();
        }
      }
    }
    dns_pending = 2;
    try {
      dns_a = DnsQuery::resolve(
          *host, CLUSTERD_DNS_A, name,
          [this](const DnsResult &r) { guarded([&] { on_dns(r, dns_result_a); }); }, {},
          remaining());
      dns_aaaa = DnsQuery::resolve(
          *host, CLUSTERD_DNS_AAAA, name,
          [this](const DnsResult &r) { guarded([&] { on_dns(r, dns_result_aaaa); }); }, {},
          remaining());
    } catch (const Error &e) {
      return fail(e.status(), "cannot resolve " + name + ": " + e.what());
    }
  }

  void add_address(const std::string &text) {
    Address a;
    if (addresses.size() < kMaxAddresses && numeric_address(text, target.port, a))
      addresses.push_back(std::move(a));
  }
  void ipv4_first() {
    std::stable_sort(addresses.begin(), addresses.end(), [](const Address &x, const Address &y) {
      return x.storage.ss_family == AF_INET && y.storage.ss_family != AF_INET;
    });
  }

  void on_dns(const DnsResult &result, DnsResult &slot) {
    slot = result;
    if (--dns_pending > 0) return;
    phase = Phase::connecting;
    for (const DnsResult *r : {&dns_result_a, &dns_result_aaaa})
      if (r->status == CLUSTERD_OK)
        for (const auto &record : r->records)
          if (record.type == CLUSTERD_DNS_A || record.type == CLUSTERD_DNS_AAAA)
            add_address(record.address);
    if (!addresses.empty()) return connect_next();
    const DnsResult &a = dns_result_a, &aaaa = dns_result_aaaa;
    if ((a.status == CLUSTERD_OK || a.status == CLUSTERD_E_NOT_FOUND) &&
        (aaaa.status == CLUSTERD_OK || aaaa.status == CLUSTERD_E_NOT_FOUND)) {
      const bool nx = a.status == CLUSTERD_E_NOT_FOUND && aaaa.status == CLUSTERD_E_NOT_FOUND;
      return fail(CLUSTERD_E_NOT_FOUND,
                  "cannot resolve " + name + (nx ? ": no such host" : ": no A or AAAA record"));
    }
    const DnsResult &bad = a.status != CLUSTERD_OK && a.status != CLUSTERD_E_NOT_FOUND ? a : aaaa;
    fail(bad.status, "cannot resolve " + name + ": " +
                         (bad.error.empty() ? std::string(status_name(bad.status)) : bad.error));
  }

  // ---- connect ----
  void connect_next() {
    phase = Phase::connecting;
    // At most addresses.size() iterations: every one consumes an address or returns.
    while (next < addresses.size()) {
      const Address &a = addresses[next++];
      fd = ::socket(a.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        connect_failed(a, errno);
        continue;
      }
      if (::connect(fd, reinterpret_cast<const sockaddr *>(&a.storage), a.length) == 0)
        return connected();
      const int error = errno;
      if (error == EINPROGRESS || error == EINTR) {
        watch_for(CLUSTERD_FD_WRITE);
        return;
      }
      close_fd();
      connect_failed(a, error);
    }
    std::string reason;
    for (const auto &e : connect_errors) reason += (reason.empty() ? "" : "; ") + e;
    fail(CLUSTERD_E_UNREACHABLE, reason.empty() ? "no address to connect to" : reason);
  }

  void connect_failed(const Address &a, int error) {
    connect_errors.push_back(is_literal ? error_text(error)
                                        : error_text(error) + " (" + a.text + ")");
  }

  void on_connect_ready(std::uint32_t events) {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error == 0 && (events & CLUSTERD_FD_WRITE) == 0) return;  // not yet
    if (error != 0) {
      watch.reset();
      close_fd();
      connect_failed(addresses[next - 1], error);
      return connect_next();
    }
    connected();
  }

  // ---- send, read ----
  void connected() {
    phase = Phase::sending;
    send_some();
  }

  void send_some() {
    // Bounded: every iteration sends at least one byte or returns.
    while (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return watch_for(CLUSTERD_FD_WRITE);  // called again when writable
      return fail(CLUSTERD_E_IO, "sending the request failed: " + error_text(errno));
    }
    phase = Phase::reading;
    watch_for(CLUSTERD_FD_READ);
  }

  void on_readable() {
    const std::size_t room = kMaxReplyBytes + 1 - reply.size();  // one byte more: detects excess
    const std::size_t chunk = std::min(room, kReadChunk);
    const std::size_t old = reply.size();
    reply.resize(old + chunk);
    const ssize_t n = ::recv(fd, reply.data() + old, chunk, 0);
    const int error = errno;
    reply.resize(old + (n > 0 ? static_cast<std::size_t>(n) : 0));
    if (n > 0) {
      if (reply.size() > kMaxReplyBytes)
        return fail(CLUSTERD_E_IO,
                    "reply larger than " + std::to_string(kMaxReplyBytes) + " bytes");
      return parse(false);
    }
    if (n == 0) return parse(true);
    if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) return;
    fail(CLUSTERD_E_IO, "reading the reply failed: " + error_text(error));
  }

  void parse(bool eof) {
    if (eof && reply.empty()) return fail(CLUSTERD_E_IO, "closed the connection without replying");
    std::string error;
    if (kind == Kind::names) {
      std::vector<Registered> names;
      switch (parse_names(reply, eof, names, error)) {
        case Parse::need_more:
          return;
        case Parse::error:
          return fail(CLUSTERD_E_IO, "malformed NAMES reply: " + error);
        case Parse::complete: {
          NamesOutcome o;
          o.status = CLUSTERD_OK;
          o.endpoint = endpoint;
          o.names = std::move(names);
          return deliver(std::move(o), names_done);
        }
      }
    } else {
      PortReply port;
      switch (parse_port2(reply, eof, port, error)) {
        case Parse::need_more:
          return;
        case Parse::error:
          return fail(CLUSTERD_E_IO, "malformed PORT2 reply: " + error);
        case Parse::complete: {
          PortOutcome o;
          o.status = CLUSTERD_OK;
          o.endpoint = endpoint;
          o.reply = std::move(port);
          return deliver(std::move(o), port_done);
        }
      }
    }
  }

  // One watch per socket, its events following the phase.
  void watch_for(std::uint32_t events) {
    if (watch.active()) return watch.modify(events);
    watch = FdWatch::watch(*host, fd, events, [this](std::uint32_t ready) {
      guarded([&] {
        switch (phase) {
          case Phase::connecting:
            return on_connect_ready(ready);
          case Phase::sending:
            return send_some();
          case Phase::reading:
            return on_readable();
          default:
            return;
        }
      });
    });
  }

  // ---- ending ----
  void on_timeout() {
    const char *what = "starting";
    switch (phase) {
      case Phase::starting:
        break;
      case Phase::resolving:
        what = "resolving the host name";
        break;
      case Phase::connecting:
        what = "connecting";
        break;
      case Phase::sending:
        what = "sending the request";
        break;
      case Phase::reading:
        what = reply.empty() ? "waiting for the reply" : "reading the reply";
        break;
    }
    std::string reason =
        "timed out after " + std::to_string(target.timeout.count()) + " ms (" + what;
    if (!reply.empty()) reason += ", " + std::to_string(reply.size()) + " bytes so far";
    reason += ")";
    fail(CLUSTERD_E_TIMEOUT, reason);
  }

  milliseconds remaining() const {
    const auto left =
        std::chrono::duration_cast<milliseconds>(started + target.timeout - Clock::now());
    return std::max(left, milliseconds(1));
  }

  void fail(Status status, const std::string &reason) noexcept {
    if (finished) return;
    try {
      if (kind == Kind::names) {
        NamesOutcome o;
        o.status = status;
        o.endpoint = endpoint;
        o.reason = reason;
        deliver(std::move(o), names_done);
      } else {
        PortOutcome o;
        o.status = status;
        o.endpoint = endpoint;
        o.reason = reason;
        deliver(std::move(o), port_done);
      }
    } catch (...) {
      // No memory for the outcome: the request ends without a callback rather than throwing
      // into the host. The deadline timer is already cancelled by release().
      finished = true;
      release();
    }
  }

  // Ends the request and runs `done` last: `done` may destroy this Op (reset the Client), so
  // nothing here touches a member after calling it.
  template <class O>
  void deliver(O outcome, std::function<void(O)> &slot) {
    finished = true;
    release();
    std::function<void(O)> done = std::move(slot);
    slot = nullptr;
    Host *h = host;
    if (!done) return;
    try {
      done(std::move(outcome));
    } catch (const std::exception &e) {
      h->error(std::string("exception escaped an EPMD client callback: ") + e.what());
    } catch (...) {
      h->error("exception escaped an EPMD client callback");
    }
  }

  void close_fd() noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  // Cancels everything; the watch goes before its fd is closed.
  void release() noexcept {
    kick.reset();
    deadline.reset();
    dns_a.reset();
    dns_aaaa.reset();
    watch.reset();
    close_fd();
  }

  Host *host;
  Target target;
  Kind kind;
  std::string endpoint, name, request;
  std::function<void(NamesOutcome)> names_done;
  std::function<void(PortOutcome)> port_done;
  Phase phase = Phase::starting;
  bool finished = false;
  bool is_literal = false;
  Clock::time_point started{};

  Timer deadline, kick;
  DnsQuery dns_a, dns_aaaa;
  int dns_pending = 0;
  DnsResult dns_result_a, dns_result_aaaa;
  std::vector<Address> addresses;
  std::size_t next = 0;
  std::vector<std::string> connect_errors;
  int fd = -1;
  FdWatch watch;
  std::size_t sent = 0;
  std::string reply;
};

// ---- Client ------------------------------------------------------------------------------------

Client::Client() noexcept = default;
Client::Client(Client &&other) noexcept = default;
Client &Client::operator=(Client &&other) noexcept {
  if (this != &other) {
    reset();
    op_ = std::move(other.op_);
  }
  return *this;
}
Client::~Client() {
  reset();
}

void Client::reset() noexcept {
  // Moved out first: if this runs inside `done`, a re-entrant reset() sees no Op.
  std::unique_ptr<Op> op = std::move(op_);
  op.reset();
}

bool Client::active() const noexcept {
  return op_ != nullptr && !op_->finished;
}

namespace {

void check_target(const Target &target) {
  if (target.host.empty()) throw Error(CLUSTERD_E_INVALID_ARG, "EPMD client: empty host");
  if (target.timeout.count() <= 0 || clusterd::is_infinite(target.timeout))
    throw Error(CLUSTERD_E_INVALID_ARG, "EPMD client: the timeout must be positive and finite");
}

}  // namespace

Client Client::names(Host &host, Target target, std::function<void(NamesOutcome)> done) {
  check_target(target);
  auto op = std::make_unique<Op>(host, std::move(target), Op::Kind::names);
  op->request = names_request();
  op->names_done = std::move(done);
  op->begin();
  Client client;
  client.op_ = std::move(op);
  return client;
}

Client Client::port_please2(Host &host, Target target, std::string_view alive,
                            std::function<void(PortOutcome)> done) {
  check_target(target);
  if (!valid_alive_name(alive))
    throw Error(CLUSTERD_E_INVALID_ARG,
                "EPMD client: invalid alive name \"" + printable(alive) + "\"");
  auto op = std::make_unique<Op>(host, std::move(target), Op::Kind::port2);
  op->request = port_please2_request(alive);
  op->port_done = std::move(done);
  op->begin();
  Client client;
  client.op_ = std::move(op);
  return client;
}

}  // namespace clusterd::epmd
