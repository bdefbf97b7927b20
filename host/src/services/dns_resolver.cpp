// c-ares 1.18 on Asio.
//
// Each channel reports its sockets through ARES_OPT_SOCK_STATE_CB (called with 0,0 before
// c-ares closes one, so Asio lets go of the fd first and never closes it); readiness calls
// ares_process_fd, and a steady_timer follows ares_timeout() for c-ares' retransmissions.
// The per-query deadline is ours: when it fires, the query completes with
// CLUSTERD_E_TIMEOUT and c-ares' later answer for it is dropped (c-ares 1.18 cannot cancel a
// single query). c-ares callbacks never run user code: completions are posted.
#include "services/dns_resolver.hpp"

#include "util/ids.hpp"

#include <clusterd/common.h>

#include <ares.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <exception>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace clusterd::services {

namespace asio = boost::asio;

namespace {

constexpr int kTypeA = 1, kTypeAaaa = 28, kTypeSrv = 33;
constexpr int kClassIn = 1;
// c-ares retransmits after 1 s, 2 s, 4 s (it doubles per round) and then gives up, so a dead
// server stops costing anything ~7 s after our own (usually shorter) deadline.
constexpr int kTryTimeoutMs = 1000;
constexpr int kTries = 3;

void library_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

const char *type_name(int type) {
  switch (type) {
    case kTypeA:
      return "A";
    case kTypeAaaa:
      return "AAAA";
    case kTypeSrv:
      return "SRV";
    default:
      return "unknown-type";
  }
}

bool parse_port(std::string_view text, int &port) {
  if (text.empty() || text.size() > 5) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

// "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address. Only IP addresses: a
// server given by name would need a resolver to find the resolver.
bool parse_server(const std::string &text, ares_addr_port_node &node, std::string &why) {
  if (text.empty()) {
    why = "empty";
    return false;
  }
  std::string address;
  std::string_view port_text;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string::npos) {
      why = "missing ']'";
      return false;
    }
    address = text.substr(1, close - 1);
    std::string_view rest = std::string_view(text).substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        why = "expected ':PORT' after ']'";
        return false;
      }
      port_text = rest.substr(1);
      if (port_text.empty()) port_text = "x";  // "[::1]:" is an error
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    std::size_t colon = text.find(':');
    address = text.substr(0, colon);
    port_text = std::string_view(text).substr(colon + 1);
    if (port_text.empty()) port_text = "x";
  } else {
    address = text;  // IPv4 without port, or a bare IPv6 address
  }
  int port = 53;
  if (!port_text.empty() && !parse_port(port_text, port)) {
    why = "invalid port";
    return false;
  }
  const bool bracketed = text.front() == '[';
  node = {};
  if (!bracketed && inet_pton(AF_INET, address.c_str(), &node.addr.addr4) == 1) {
    node.family = AF_INET;
  } else if (in6_addr v6; inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    node.family = AF_INET6;
    std::memcpy(&node.addr.addr6, &v6, sizeof v6);
  } else {
    why = "not an IP address";
    return false;
  }
  node.udp_port = node.tcp_port = port;
  return true;
}

std::uint32_t clamp_ttl(long long ttl) {
  // RFC 2181 §8: a TTL with the top bit set is to be read as zero.
  return ttl < 0 || ttl > 0x7fffffff ? 0u : static_cast<std::uint32_t>(ttl);
}

std::uint16_t read16(const unsigned char *p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

std::uint32_t read32(const unsigned char *p) {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// Expands (and bounds-checks) the compressed name at `at`; advances `at` past it.
bool read_name(const unsigned char *&at, const unsigned char *message, int length,
               std::string *out) {
  if (at < message || at >= message + length) return false;
  char *name = nullptr;
  long encoded_length = 0;
  if (ares_expand_name(at, message, length, &name, &encoded_length) != ARES_SUCCESS) return false;
  if (out) *out = name;
  ares_free_string(name);
  at += encoded_length;
  return at <= message + length;
}

// c-ares 1.18's ares_parse_srv_reply drops the TTL (and has no ares_dns_* API), so SRV
// answers are read here, with ares_expand_name doing the name decompression.
int parse_srv(const unsigned char *message, int length, std::vector<DnsResolver::Record> &out) {
  constexpr int kHeaderLength = 12;
  if (!message || length < kHeaderLength) return ARES_EBADRESP;
  const unsigned char *at = message + kHeaderLength;
  const unsigned char *end = message + length;
  const unsigned questions = read16(message + 4), answers = read16(message + 6);
  for (unsigned i = 0; i < questions; ++i) {
    if (!read_name(at, message, length, nullptr) || end - at < 4) return ARES_EBADRESP;
    at += 4;  // type, class
  }
  for (unsigned i = 0; i < answers; ++i) {
    if (!read_name(at, message, length, nullptr) || end - at < 10) return ARES_EBADRESP;
    const int type = read16(at), klass = read16(at + 2);
    const std::uint32_t ttl = read32(at + 4);
    const int data_length = read16(at + 8);
    at += 10;
    if (end - at < data_length) return ARES_EBADRESP;
    if (type == kTypeSrv && klass == kClassIn) {
      const unsigned char *target_at = at + 6;
      DnsResolver::Record record;
      if (data_length < 7 || !read_name(target_at, message, length, &record.target)) {
        return ARES_EBADRESP;
      }
      record.type = kTypeSrv;
      record.ttl = clamp_ttl(ttl);
      record.priority = read16(at);
      record.weight = read16(at + 2);
      record.port = read16(at + 4);
      out.push_back(std::move(record));
    }
    at += data_length;
  }
  return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

int parse_addresses(int type, const unsigned char *message, int length,
                    std::vector<DnsResolver::Record> &out) {
  char text[INET6_ADDRSTRLEN];
  // Room for every answer record (ANCOUNT, header bytes 6-7): c-ares silently stops at the
  // capacity it is given, and a cut answer would make nodes come and go between rounds.
  const int capacity = length >= 12 ? std::max(1, (message[6] << 8) | message[7]) : 1;
  if (type == kTypeA) {
    std::vector<ares_addrttl> found(static_cast<std::size_t>(capacity));
    int count = capacity;
    int rc = ares_parse_a_reply(message, length, nullptr, found.data(), &count);
    if (rc != ARES_SUCCESS) return rc;
    for (int i = 0; i < count; ++i) {
      if (!inet_ntop(AF_INET, &found[i].ipaddr, text, sizeof text)) return ARES_EBADRESP;
      out.push_back({kTypeA, clamp_ttl(found[i].ttl), 0, 0, 0, text, {}});
    }
  } else {
    std::vector<ares_addr6ttl> found(static_cast<std::size_t>(capacity));
    int count = capacity;
    int rc = ares_parse_aaaa_reply(message, length, nullptr, found.data(), &count);
    if (rc != ARES_SUCCESS) return rc;
    for (int i = 0; i < count; ++i) {
      in6_addr address;
      std::memcpy(&address, &found[i].ip6addr, sizeof address);
      if (!inet_ntop(AF_INET6, &address, text, sizeof text)) return ARES_EBADRESP;
      out.push_back({kTypeAaaa, clamp_ttl(found[i].ttl), 0, 0, 0, text, {}});
    }
  }
  return ARES_SUCCESS;
}

int set_cloexec(ares_socket_t fd, int, void *) {
  return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? ARES_SUCCESS : -1;
}

bool same_file_state(const struct stat &a, const struct stat &b) {
  return a.st_ino == b.st_ino && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

class DnsResolver::Impl : public std::enable_shared_from_this<DnsResolver::Impl> {
 public:
  Impl(asio::io_context &io, std::string resolv_conf)
      : io_(io), resolv_conf_(std::move(resolv_conf)) {
    library_init_once();
  }
  ~Impl() { shutdown(); }

  std::uint64_t resolve(Query query, Done done);
  void cancel(std::uint64_t id) { pending_.erase(id); }
  std::size_t active() const { return pending_.size(); }
  void shutdown();

 private:
  struct Pending {
    explicit Pending(asio::io_context &io) : deadline(io) {}
    Done done;
    asio::steady_timer deadline;
    std::string description;  // "DNS A query for 'x' via y"
    bool finished = false;    // result stored, delivery posted
    Result result;
  };

  struct SocketWatch {
    SocketWatch(asio::io_context &io, ares_socket_t fd_) : descriptor(io, fd_), fd(fd_) {}
    asio::posix::stream_descriptor descriptor;
    ares_socket_t fd;
    bool want_read = false, want_write = false;
    bool read_pending = false, write_pending = false;
    bool active = true;
  };

  struct Channel : std::enable_shared_from_this<Channel> {
    Channel(asio::io_context &io_, Impl &owner_) : io(io_), owner(owner_), timer(io_) {}
    ~Channel();
    static void on_sock_state(void *self, ares_socket_t fd, int readable, int writable);
    void watch(ares_socket_t fd, bool readable, bool writable);
    void forget(ares_socket_t fd);
    void arm(const std::shared_ptr<SocketWatch> &watch);
    void wait(const std::shared_ptr<SocketWatch> &watch, bool for_read);
    void update_timer();

    asio::io_context &io;
    Impl &owner;
    ares_channel channel = nullptr;
    bool system = false;
    struct stat resolv_conf_state {};  // system channel: what it was configured from
    std::string description;           // "127.0.0.1:53" or "the system resolver"
    asio::steady_timer timer;
    std::unordered_map<ares_socket_t, std::shared_ptr<SocketWatch>> sockets;
    std::size_t in_flight = 0;  // c-ares queries not called back yet (ours may have timed out)
  };

  // Passed through c-ares as the query's `arg`; deleted by its one callback.
  struct Tag {
    Channel *channel;
    std::uint64_t id;
    int type;
  };

  static void on_ares_done(void *arg, int status, int timeouts, unsigned char *answer, int length);
  std::shared_ptr<Channel> channel_for(const std::string &server, int &status, std::string &why);
  void on_answer(std::uint64_t id, int type, int status, const unsigned char *answer, int length);
  void on_deadline(std::uint64_t id);
  void finish(std::uint64_t id, Pending &pending, int status, std::string reason,
              std::vector<Record> records = {});
  void deliver(std::uint64_t id);
  Pending *find(std::uint64_t id) {
    auto it = pending_.find(id);
    return it == pending_.end() ? nullptr : it->second.get();
  }

  asio::io_context &io_;
  std::string resolv_conf_;
  bool closed_ = false;
  std::unordered_map<std::uint64_t, std::unique_ptr<Pending>> pending_;
  std::unordered_map<std::string, std::shared_ptr<Channel>> channels_;  // by server string
};

// ---- queries ----------------------------------------------------------------------------

std::uint64_t DnsResolver::Impl::resolve(Query query, Done done) {
  const std::uint64_t id = util::next_id();
  auto owned = std::make_unique<Pending>(io_);
  Pending &pending = *owned;
  pending.done = std::move(done);
  pending.description = std::string("DNS ") + type_name(query.type) + " query for '" + query.name +
                        "' via " + (query.server.empty() ? "the system resolver" : query.server);
  pending_.emplace(id, std::move(owned));

  if (query.type != kTypeA && query.type != kTypeAaaa && query.type != kTypeSrv) {
    finish(id, pending, CLUSTERD_E_INVALID_ARG,
           "unsupported record type " + std::to_string(query.type));
    return id;
  }
  if (query.name.empty() || query.name.size() > 254 || query.name.find('\0') != std::string::npos) {
    finish(id, pending, CLUSTERD_E_INVALID_ARG, "invalid name");
    return id;
  }
  if (query.timeout.count() <= 0) {
    finish(id, pending, CLUSTERD_E_INVALID_ARG, "the timeout must be positive");
    return id;
  }
  int status = CLUSTERD_OK;
  std::string why;
  std::shared_ptr<Channel> channel = closed_ ? nullptr : channel_for(query.server, status, why);
  if (!channel) {
    finish(id, pending, closed_ ? CLUSTERD_E_STATE : status, why);
    return id;
  }

  pending.deadline.expires_after(query.timeout);
  pending.deadline.async_wait([weak = weak_from_this(), id](const boost::system::error_code &ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto self = weak.lock()) self->on_deadline(id);
  });
  ++channel->in_flight;
  // c-ares may call back right away (e.g. a name it cannot encode); on_answer only posts.
  auto *tag = new Tag{channel.get(), id, query.type};
  if (channel->system) {
    ares_search(channel->channel, query.name.c_str(), kClassIn, query.type, &on_ares_done, tag);
  } else {
    ares_query(channel->channel, query.name.c_str(), kClassIn, query.type, &on_ares_done, tag);
  }
  channel->update_timer();
  return id;
}

void DnsResolver::Impl::on_ares_done(void *arg, int status, int, unsigned char *answer,
                                     int length) {
  std::unique_ptr<Tag> tag(static_cast<Tag *>(arg));
  --tag->channel->in_flight;
  if (status == ARES_EDESTRUCTION) return;  // the channel is being destroyed
  tag->channel->owner.on_answer(tag->id, tag->type, status, answer, length);
}

void DnsResolver::Impl::on_answer(std::uint64_t id, int type, int status,
                                  const unsigned char *answer, int length) {
  Pending *pending = find(id);
  if (!pending || pending->finished) return;  // cancelled or timed out: nobody waits
  std::vector<Record> records;
  if (status == ARES_SUCCESS) {
    status = type == kTypeSrv ? parse_srv(answer, length, records)
                              : parse_addresses(type, answer, length, records);
    if (status != ARES_SUCCESS && status != ARES_ENODATA && status != ARES_ENOMEM) {
      status = ARES_EBADRESP;
    }
  }
  switch (status) {
    case ARES_SUCCESS:
      return finish(id, *pending, CLUSTERD_OK, "", std::move(records));
    case ARES_ENODATA:
      return finish(id, *pending, CLUSTERD_OK, "");  // the name exists, without such records
    case ARES_ENOTFOUND:
      return finish(id, *pending, CLUSTERD_E_NOT_FOUND, "no such name (NXDOMAIN)");
    case ARES_ETIMEOUT:
      return finish(id, *pending, CLUSTERD_E_TIMEOUT, "no answer after retries");
    case ARES_EBADNAME:
      return finish(id, *pending, CLUSTERD_E_INVALID_ARG, "invalid name");
    case ARES_ENOMEM:
      return finish(id, *pending, CLUSTERD_E_NO_MEMORY, "out of memory");
    case ARES_EBADRESP:
      return finish(id, *pending, CLUSTERD_E_IO, "malformed reply");
    default:  // SERVFAIL, REFUSED, FORMERR, NOTIMP, connection refused, ...
      return finish(id, *pending, CLUSTERD_E_IO, ares_strerror(status));
  }
}

void DnsResolver::Impl::on_deadline(std::uint64_t id) {
  Pending *pending = find(id);
  if (!pending || pending->finished) return;
  finish(id, *pending, CLUSTERD_E_TIMEOUT, "no answer within the deadline");
}

void DnsResolver::Impl::finish(std::uint64_t id, Pending &pending, int status, std::string reason,
                               std::vector<Record> records) {
  pending.finished = true;
  pending.deadline.cancel();
  pending.result.status = status;
  pending.result.records = std::move(records);
  if (status != CLUSTERD_OK) pending.result.error = pending.description + ": " + reason;
  asio::post(io_, [weak = weak_from_this(), id] {
    if (auto self = weak.lock()) self->deliver(id);
  });
}

void DnsResolver::Impl::deliver(std::uint64_t id) {
  if (closed_) return;
  auto it = pending_.find(id);
  if (it == pending_.end() || !it->second->finished) return;  // cancelled meanwhile
  std::unique_ptr<Pending> pending = std::move(it->second);
  pending_.erase(it);
  Done done = std::move(pending->done);
  Result result = std::move(pending->result);
  pending.reset();  // done may destroy the resolver; nothing of ours is touched after it
  if (done) done(result);
}

void DnsResolver::Impl::shutdown() {
  if (closed_) return;
  closed_ = true;
  pending_.clear();
  channels_.clear();  // ares_destroy: in-flight queries end with ARES_EDESTRUCTION
}

// ---- channels ---------------------------------------------------------------------------

std::shared_ptr<DnsResolver::Impl::Channel> DnsResolver::Impl::channel_for(
    const std::string &server, int &status, std::string &why) {
  const bool system = server.empty();
  struct stat resolv_conf_state {};
  if (system && stat(resolv_conf_.c_str(), &resolv_conf_state) != 0) resolv_conf_state = {};
  if (auto it = channels_.find(server); it != channels_.end()) {
    Channel &existing = *it->second;
    // resolv.conf is read once per channel: start over when it changed (and nothing flies).
    if (!system || existing.in_flight > 0 ||
        same_file_state(existing.resolv_conf_state, resolv_conf_state)) {
      return it->second;
    }
    channels_.erase(it);
  }

  ares_addr_port_node address{};
  if (!system && !parse_server(server, address, why)) {
    status = CLUSTERD_E_INVALID_ARG;
    why = "invalid DNS server: " + why;
    return nullptr;
  }
  auto channel = std::make_shared<Channel>(io_, *this);
  channel->system = system;
  channel->resolv_conf_state = resolv_conf_state;
  channel->description = system ? "the system resolver" : server;

  ares_options options{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  options.sock_state_cb = &Channel::on_sock_state;
  options.sock_state_cb_data = channel.get();
  options.timeout = kTryTimeoutMs;
  options.tries = kTries;
  if (system) {
    mask |= ARES_OPT_RESOLVCONF;
    options.resolvconf_path = resolv_conf_.data();
  } else {
    // One server, nothing to fail over to: hand back its SERVFAIL or REFUSED as such (c-ares
    // would skip the server and report "Could not contact DNS servers", although it answered).
    mask |= ARES_OPT_FLAGS;
    options.flags = ARES_FLAG_NOCHECKRESP;
  }
  int rc = ares_init_options(&channel->channel, &options, mask);
  if (rc == ARES_SUCCESS && !system) rc = ares_set_servers_ports(channel->channel, &address);
  if (rc != ARES_SUCCESS) {
    status = rc == ARES_ENOMEM ? CLUSTERD_E_NO_MEMORY : CLUSTERD_E_IO;
    why = std::string("cannot set up a DNS channel: ") + ares_strerror(rc);
    return nullptr;  // ~Channel destroys a half-made channel
  }
  ares_set_socket_configure_callback(channel->channel, &set_cloexec, nullptr);
  channels_[server] = channel;
  return channel;
}

DnsResolver::Impl::Channel::~Channel() {
  if (channel) ares_destroy(channel);  // reports each socket closed (0,0) before closing it
  for (auto &[fd, watch] : sockets) {
    watch->active = false;
    watch->descriptor.release();
  }
  timer.cancel();
}

void DnsResolver::Impl::Channel::on_sock_state(void *self, ares_socket_t fd, int readable,
                                               int writable) {
  auto *channel = static_cast<Channel *>(self);
  if (!readable && !writable) {
    channel->forget(fd);  // c-ares closes it right after this
  } else {
    channel->watch(fd, readable != 0, writable != 0);
  }
}

void DnsResolver::Impl::Channel::watch(ares_socket_t fd, bool readable, bool writable) {
  try {
    auto &watch = sockets[fd];
    if (!watch) watch = std::make_shared<SocketWatch>(io, fd);
    watch->want_read = readable;
    watch->want_write = writable;
    arm(watch);
  } catch (const std::exception &) {
    // Unwatchable socket: its queries end by c-ares' timer or our deadline instead.
    if (auto it = sockets.find(fd); it != sockets.end() && !it->second) sockets.erase(it);
  }
}

void DnsResolver::Impl::Channel::forget(ares_socket_t fd) {
  auto it = sockets.find(fd);
  if (it == sockets.end()) return;
  it->second->active = false;
  it->second->descriptor.release();  // pending waits complete with operation_aborted
  sockets.erase(it);
}

void DnsResolver::Impl::Channel::arm(const std::shared_ptr<SocketWatch> &watch) {
  if (watch->want_read && !watch->read_pending) wait(watch, true);
  if (watch->want_write && !watch->write_pending) wait(watch, false);
}

void DnsResolver::Impl::Channel::wait(const std::shared_ptr<SocketWatch> &watch, bool for_read) {
  (for_read ? watch->read_pending : watch->write_pending) = true;
  auto type = for_read ? asio::posix::stream_descriptor::wait_read
                       : asio::posix::stream_descriptor::wait_write;
  watch->descriptor.async_wait(
      type, [weak_channel = weak_from_this(), weak_watch = std::weak_ptr<SocketWatch>(watch),
             for_read](const boost::system::error_code &ec) {
        auto channel = weak_channel.lock();
        auto watch = weak_watch.lock();
        if (!channel || !watch) return;
        (for_read ? watch->read_pending : watch->write_pending) = false;
        if (!watch->active || ec == asio::error::operation_aborted) return;
        if (!(for_read ? watch->want_read : watch->want_write)) return;  // stale
        // On an error c-ares' own read/write sees it too and drops the socket.
        ares_process_fd(channel->channel, for_read ? watch->fd : ARES_SOCKET_BAD,
                        for_read ? ARES_SOCKET_BAD : watch->fd);
        if (!ec && watch->active) channel->arm(watch);
        channel->update_timer();
      });
}

void DnsResolver::Impl::Channel::update_timer() {
  timeval tv{};
  if (!ares_timeout(channel, nullptr, &tv)) {
    timer.cancel();  // nothing in flight: no wake-ups
    return;
  }
  // Rounded up, so that c-ares does find its deadline passed when we wake it.
  timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec) +
                      std::chrono::milliseconds(1));
  timer.async_wait([weak = weak_from_this()](const boost::system::error_code &ec) {
    if (ec == asio::error::operation_aborted) return;
    auto channel = weak.lock();
    if (!channel) return;
    ares_process_fd(channel->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    channel->update_timer();
  });
}

// ---- public face ------------------------------------------------------------------------

DnsResolver::DnsResolver(asio::io_context &io, std::string resolv_conf)
    : impl_(std::make_shared<Impl>(io, std::move(resolv_conf))) {}

DnsResolver::~DnsResolver() {
  impl_->shutdown();
}

std::uint64_t DnsResolver::resolve(Query query, Done done) {
  return impl_->resolve(std::move(query), std::move(done));
}

void DnsResolver::cancel(std::uint64_t id) {
  impl_->cancel(id);
}

std::size_t DnsResolver::active() const {
  return impl_->active();
}

}  // namespace clusterd::services
