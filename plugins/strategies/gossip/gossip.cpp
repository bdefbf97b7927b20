// Strategy "gossip": libcluster's Cluster.Strategy.Gossip. UDP multicast (or broadcast)
// heartbeats that carry the sender's node name; every node heard is reported. Wire-compatible
// with libcluster (same packet, same `secret` mode, same keys and defaults, SO_REUSEADDR so it
// shares a host with libcluster nodes), and on purpose different where libcluster is weak:
//  - announces at once (and again as soon as the local node becomes known) and answers a
//    heartbeat from a node never heard before with a unicast heartbeat: two nodes know each
//    other within one round trip instead of up to 5 s;
//  - a strict decoder: malformed datagrams are dropped and counted by reason (libcluster's
//    worker crashes on them), never decoded past the packet;
//  - `keys`: authenticated heartbeats (AES-256-GCM, replay window, seen-nonce cache, key
//    rotation); libcluster's unauthenticated CBC `secret` only with compat = "libcluster";
//  - a node not heard for `expire_after` is reported lost (the topology's `disconnect` policy
//    decides what that means; "never" by default, as libcluster);
//  - a non-distributed node's "nonode@nohost" is dropped instead of retried forever.
// libcrypto is loaded only when `secret` or `keys` is configured (see plugins/common/crypto).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <clusterd/plugin.hpp>

#include "crypto.hpp"
#include "envelope.hpp"
#include "heartbeat.hpp"

namespace {

using clusterd::gossip::Drop;
using clusterd::gossip::Envelope;
using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

// Datagrams read per readiness event, so a flood cannot starve the loop.
constexpr int kReadsPerEvent = 64;
// Larger than any heartbeat (a libcluster one is < 300 bytes); longer datagrams are dropped.
constexpr std::size_t kReadBuffer = 2048;
// Nodes remembered at once: unauthenticated input must not grow memory without bound.
constexpr std::size_t kMaxPeers = 4096;
// Names listed in the status ("peers heard"); the count is always complete.
constexpr std::size_t kMaxListed = 32;
// Unicast answers to new nodes: a token bucket, so forged heartbeats cannot turn this node
// into a packet reflector.
constexpr double kReplyBurst = 32;
constexpr double kRepliesPerSecond = 16;

namespace opt = clusterd::option;

// An address the host already checked (CLUSTERD_FORMAT_IPV4).
in_addr ipv4(const std::string &text) {
  in_addr addr{};
  ::inet_pton(AF_INET, text.c_str(), &addr);
  return addr;
}

std::string to_text(const sockaddr_in &a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

std::string to_text(in_addr a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char *hint(Drop reason) {
  switch (reason) {
    case Drop::kBadPadding:
      return " (a different secret?)";
    case Drop::kUnknownKey:
    case Drop::kAuthFailed:
      return " (a different key?)";
    case Drop::kBadMagic:
      return " (not an authenticated clusterd heartbeat: a sender without `keys`?)";
    case Drop::kStale:
      return " (outside the replay window: a replay, or clocks apart?)";
    case Drop::kReplay:
      return " (seen before: a replayed packet)";
    case Drop::kNoPrefix:
      return " (not a heartbeat: encrypted, or another protocol on this port?)";
    default:
      return "";
  }
}

class GossipStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "gossip";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Nodes that announce themselves by UDP multicast/broadcast heartbeats (libcluster's "
      "Cluster.Strategy.Gossip, wire-compatible; optional authenticated mode)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Gossip",
                                             "Elixir.Cluster.Strategy.Gossip"};
  // No CLUSTERD_PLUGIN_DISCONNECTS_REMOVED: like libcluster's Gossip, never disconnects.
  static constexpr uint32_t kFlags = 0;
  static constexpr clusterd_option_t kOptions[] = {
      opt::range(opt::integer("port", "UDP port to bind and to send heartbeats to", "45892"), 1,
                 65535),
      opt::format(opt::string("if_addr",
                              "Local IPv4 address to bind (only 0.0.0.0 receives multicast and "
                              "broadcast)",
                              "\"0.0.0.0\""),
                  CLUSTERD_FORMAT_IPV4),
      opt::format(opt::string("multicast_if",
                              "IPv4 address of the interface to send on and to join the group "
                              "on; default: the kernel's choice"),
                  CLUSTERD_FORMAT_IPV4),
      opt::format(opt::string("multicast_addr",
                              "Multicast group to send to; with broadcast_only, the broadcast "
                              "address",
                              "\"233.252.1.32\""),
                  CLUSTERD_FORMAT_IPV4),
      opt::range(opt::integer("multicast_ttl", "IP TTL of multicast heartbeats (0..255)", "1"), 0,
                 255),
      clusterd::option::boolean("broadcast_only",
                                "Broadcast to multicast_addr instead of multicasting", "false"),
      opt::nonempty(opt::secret(
          opt::string("secret",
                      "libcluster's shared secret (unauthenticated AES-256-CBC); needs compat = "
                      "\"libcluster\""))),
      clusterd::option::choices(
          clusterd::option::string("compat",
                                   "\"libcluster\" allows libcluster's CBC `secret` mode; "
                                   "\"none\" refuses it",
                                   "\"none\""),
          "none|libcluster"),
      opt::conflicts(
          opt::nonempty(opt::secret(opt::string_list(
              "keys",
              "Authenticated mode (AES-256-GCM, clusterd only): the first key seals, every key "
              "opens (key rotation); each at least 16 bytes"))),
          "secret"),
      opt::finite(opt::positive(
          opt::duration("replay_window",
                        "Authenticated mode: heartbeats older or newer than this are refused, "
                        "and their nonces remembered this long",
                        "\"30s\""))),
      opt::finite(opt::positive(opt::duration("heartbeat_interval",
                                              "Heartbeats go out after a random delay of 1 ms up "
                                              "to this (libcluster: 1..5000 ms)",
                                              "\"5s\""))),
      opt::positive(opt::duration("expire_after",
                                  "A node not heard for this long is reported lost "
                                  "(\"infinity\": never, as libcluster)",
                                  "\"30s\"")),
      opt::format(opt::string("node_name",
                              "Name to announce; default: the local node the transport reports"),
                  CLUSTERD_FORMAT_NODE_NAME),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    if (auto node = config.optional_string("node_name");
        node && !clusterd::gossip::announceable(*node))  // the format rule, and not nonode@nohost
      problems.add("node_name", "'" + *node + "' cannot be announced");
    in_addr group{};
    if (!config.boolean("broadcast_only") &&
        ::inet_pton(AF_INET, config.string("multicast_addr").c_str(), &group) == 1 &&
        !IN_MULTICAST(ntohl(group.s_addr)))
      problems.add("multicast_addr", to_text(group) +
                                         " is not a multicast address (224.0.0.0/4); set "
                                         "broadcast_only = true to broadcast to it");
    const bool libcluster = config.string("compat") == "libcluster";
    if (config.is_set("secret") && !libcluster)
      problems.add("secret",
                   "libcluster's secret mode is unauthenticated AES-256-CBC (no integrity, no "
                   "replay protection); set compat = \"libcluster\" to use it with libcluster "
                   "nodes, or use keys = [...] for authenticated gossip between clusterd nodes");
    const auto keys = config.optional_strings("keys");
    if (keys && libcluster)
      problems.add("keys",
                   "libcluster nodes do not understand authenticated heartbeats; drop compat = "
                   "\"libcluster\" or use `secret`");
    for (std::size_t i = 0; keys && i < keys->size(); ++i)
      if ((*keys)[i].size() < clusterd::gossip::kMinAeadKeySize)
        problems.add("keys", "key #" + std::to_string(i + 1) +
                                 " is shorter than 16 bytes (use e.g. `openssl rand -base64 32`)");
  }

  GossipStrategy() : random_(std::random_device{}()) {}
  ~GossipStrategy() override { close_socket(); }

  void init(const clusterd::Config &config) override {
    port_ = static_cast<std::uint16_t>(config.integer("port"));
    if_addr_ = ipv4(config.string("if_addr"));
    if (auto text = config.optional_string("multicast_if")) multicast_if_ = ipv4(*text);
    group_ = ipv4(config.string("multicast_addr"));
    broadcast_only_ = config.boolean("broadcast_only");
    ttl_ = static_cast<int>(config.integer("multicast_ttl"));
    interval_ = config.duration("heartbeat_interval");
    expire_after_ = config.duration("expire_after");
    node_name_ = config.optional_string("node_name");
    init_envelope(config);
  }

  void start() override {
    open_socket();
    watch_ = clusterd::FdWatch::watch(host(), fd_, CLUSTERD_FD_READ,
                                      [this](uint32_t) { on_readable(); });
    host().set_status("mode", envelope_.mode_name());
    host().set_status("socket", socket_text());
    host().set_status("peers", "0");
    announce();
    schedule_heartbeat();
  }

  void stop() override {
    heartbeat_.reset();
    expiry_.reset();
    watch_.reset();
    close_socket();
  }

  // The host calls this when the local node changes: announce the new name at once.
  void refresh() override { announce(); }

 private:
  // ---- configuration ----

  void init_envelope(const clusterd::Config &config) {
    const auto secret = config.optional_string("secret");
    const auto keys = config.optional_strings("keys");
    if (!secret && !keys) return;  // plain: no crypto, libcrypto never loaded
    std::string error;
    if (!clusterd::crypto::load(error))
      throw clusterd::Error(CLUSTERD_E_UNSUPPORTED,
                            std::string(secret ? "secret" : "keys") + ": " + error);
    if (secret) {
      envelope_ = Envelope::libcluster(*secret);
      return;
    }
    envelope_ = Envelope::aead(*keys, config.duration("replay_window"));
  }

  // ---- socket ----

  void open_socket() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) io_error("socket");
    const int one = 1;
    // SO_REUSEADDR (as libcluster, whose "SO_REUSEPORT" is a no-op on Linux): shares the port
    // with libcluster nodes and other clusterd instances on this host. Not SO_REUSEPORT: it
    // would spread unicast answers over the sockets sharing the port.
    set(SOL_SOCKET, SO_REUSEADDR, one, "SO_REUSEADDR");
    set(SOL_SOCKET, SO_BROADCAST, one, "SO_BROADCAST");
    if (!broadcast_only_) {
      if (multicast_if_ && ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &*multicast_if_,
                                        sizeof *multicast_if_) != 0)
        io_error("IP_MULTICAST_IF " + to_text(*multicast_if_) + " (multicast_if)");
      set(IPPROTO_IP, IP_MULTICAST_TTL, ttl_, "IP_MULTICAST_TTL");
      set(IPPROTO_IP, IP_MULTICAST_LOOP, one, "IP_MULTICAST_LOOP");
      // Only this socket's group, not every group some other socket of the host joined.
      const int zero = 0;
      set(IPPROTO_IP, IP_MULTICAST_ALL, zero, "IP_MULTICAST_ALL");
    }
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr = if_addr_;
    local.sin_port = htons(port_);
    if (::bind(fd_, reinterpret_cast<const sockaddr *>(&local), sizeof local) != 0)
      io_error("bind " + to_text(local) + " (if_addr, port)");
    if (!broadcast_only_) join();
  }

  void set(int level, int option, int value, const char *name) {
    if (::setsockopt(fd_, level, option, &value, sizeof value) != 0) io_error(name);
  }

  [[noreturn]] void io_error(const std::string &what) {
    const std::string message = what + ": " + std::strerror(errno);
    close_socket();
    throw clusterd::Error(CLUSTERD_E_IO, message);
  }

  void close_socket() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Joins the group; retried on every heartbeat while it fails (an interface that is not up
  // yet at boot would otherwise leave the node deaf until restarted, as libcluster's is).
  void join() {
    if (joined_) return;
    ip_mreq request{};
    request.imr_multiaddr = group_;
    request.imr_interface = multicast_if_.value_or(in_addr{htonl(INADDR_ANY)});
    if (::setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &request, sizeof request) == 0) {
      joined_ = true;
      host().clear_status("multicast");
      if (join_failed_) host().info("joined multicast group " + to_text(group_));
      return;
    }
    const std::string why = "cannot join " + to_text(group_) + ": " + std::strerror(errno) +
                            " (retrying with every heartbeat; check multicast_if and the "
                            "multicast route)";
    if (!join_failed_) host().warn(why);
    join_failed_ = true;
    host().set_status("multicast", why);
  }

  std::string socket_text() const {
    std::string text = to_text(if_addr_) + ":" + std::to_string(port_) + " -> " + to_text(group_) +
                       ":" + std::to_string(port_);
    if (broadcast_only_) return text + " (broadcast)";
    text += " (multicast, ttl " + std::to_string(ttl_);
    if (multicast_if_) text += ", interface " + to_text(*multicast_if_);
    return text + ")";
  }

  // ---- sending ----

  // The name to announce: node_name, else the transport's local node; nullopt while unknown.
  std::optional<std::string> own_name() {
    if (node_name_) return node_name_;
    auto local = local_node_name();
    if (local && !clusterd::gossip::announceable(*local)) return std::nullopt;
    return local;
  }

  // Sends a heartbeat to the group now if the name is known (first one, or a new name).
  void announce() {
    const auto name = own_name();
    if (!name) {
      host().set_status("announcing",
                        "nothing yet: the local node is not known (listening meanwhile)");
      return;
    }
    if (*name == announced_) return;
    announced_ = *name;
    host().set_status("announcing", announced_);
    host().debug("announcing " + announced_);
    send_to(group_address());
  }

  sockaddr_in group_address() const {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr = group_;
    to.sin_port = htons(port_);
    return to;
  }

  void send_to(const sockaddr_in &to) {
    if (announced_.empty() || fd_ < 0) return;
    const std::string packet =
        envelope_.seal(clusterd::gossip::encode_heartbeat(announced_), unix_ms());
    const ssize_t n = ::sendto(fd_, packet.data(), packet.size(), MSG_DONTWAIT,
                               reinterpret_cast<const sockaddr *>(&to), sizeof to);
    if (n >= 0) {
      ++sent_;
      host().count("gossip_heartbeats_sent_total", "Heartbeats sent.");
      if (send_error_ != 0) host().info("heartbeats go out again to " + to_text(to));
      send_error_ = 0;
      return;
    }
    // libcluster ignores send errors; say it once per change of error.
    const int error = errno;
    ++send_errors_;
    host().set_status("send errors", std::to_string(send_errors_));
    host().count("gossip_send_errors_total", "Heartbeats that could not be sent.");
    if (error != send_error_)
      host().warn("cannot send a heartbeat to " + to_text(to) + ": " + std::strerror(error));
    send_error_ = error;
  }

  void schedule_heartbeat() {
    std::uniform_int_distribution<std::int64_t> delay(1, interval_.count());
    heartbeat_ = clusterd::Timer::after(host(), milliseconds(delay(random_)), [this] {
      if (!broadcast_only_) join();
      if (announced_.empty()) announce();
      send_to(group_address());
      schedule_heartbeat();
    });
  }

  // A unicast heartbeat to a node heard for the first time, so it knows us at once.
  void answer(const sockaddr_in &to) {
    const SteadyTime now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - bucket_time_).count();
    bucket_time_ = now;
    tokens_ = std::min(kReplyBurst, tokens_ + elapsed * kRepliesPerSecond);
    if (tokens_ < 1) return;
    tokens_ -= 1;
    send_to(to);
  }

  // ---- receiving ----

  void on_readable() {
    std::array<std::uint8_t, kReadBuffer> buf{};
    for (int i = 0; i < kReadsPerEvent && fd_ >= 0; ++i) {
      sockaddr_in from{};
      socklen_t from_size = sizeof from;
      const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                                   reinterpret_cast<sockaddr *>(&from), &from_size);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          host().debug(std::string("recvfrom: ") + std::strerror(errno));
        return;
      }
      if (static_cast<std::size_t>(n) > buf.size()) {
        dropped(Drop::kOversize, from);
        continue;
      }
      received(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)), from);
    }
  }

  void received(std::span<const std::uint8_t> packet, const sockaddr_in &from) {
    std::string heartbeat, node;
    Drop reason{};
    if (!envelope_.open(packet, unix_ms(), heartbeat, reason)) return dropped(reason, from);
    if (!clusterd::gossip::decode_heartbeat(clusterd::crypto::bytes(heartbeat), node, reason))
      return dropped(reason, from);
    if (node == announced_) return;  // our own, looped back
    host().count("gossip_heartbeats_received_total", "Valid heartbeats received from peers.");
    heard(node, from);
  }

  void heard(const std::string &node, const sockaddr_in &from) {
    const SteadyTime now = std::chrono::steady_clock::now();
    if (auto it = peers_.find(node); it != peers_.end()) {
      it->second = now;
      return;
    }
    if (peers_.size() >= kMaxPeers) return dropped(Drop::kTooManyPeers, from);
    peers_.emplace(node, now);
    host().info("heard " + node + " (from " + to_text(from) + ")");
    node_seen(node);
    answer(from);
    peers_changed();
    arm_expiry();
  }

  void dropped(Drop reason, const sockaddr_in &from) {
    const auto index = static_cast<std::size_t>(reason);
    const std::uint64_t count = ++drops_[index];
    ++drops_total_;
    host().set_status("dropped", std::to_string(drops_total_));
    host().set_status(std::string("dropped.") + clusterd::gossip::drop_name(reason),
                      std::to_string(count));
    host().count("gossip_dropped_total", "Gossip datagrams dropped, by reason.", "reason",
                 clusterd::gossip::drop_name(reason));
    // The 1st, 10th, 100th... of each reason: visible, but a flood cannot flood the log.
    bool power_of_ten = true;
    for (std::uint64_t c = count; c > 1 && power_of_ten; c /= 10) power_of_ten = c % 10 == 0;
    if (power_of_ten)
      host().warn("dropped a datagram from " + to_text(from) + ": " +
                  clusterd::gossip::drop_name(reason) + hint(reason) + " (" +
                  std::to_string(count) + " so far; counted in the status)");
  }

  // ---- expiry ----

  void arm_expiry() {
    if (clusterd::is_infinite(expire_after_) || expiry_.active() || peers_.empty()) return;
    SteadyTime oldest = SteadyTime::max();
    for (const auto &[node, last] : peers_) oldest = std::min(oldest, last);
    const auto due = oldest + expire_after_ - std::chrono::steady_clock::now();
    const auto delay = std::max(milliseconds(1), std::chrono::ceil<milliseconds>(due));
    expiry_ = clusterd::Timer::after(host(), delay, [this] { expire(); });
  }

  void expire() {
    const SteadyTime now = std::chrono::steady_clock::now();
    bool changed = false;
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (now - it->second < expire_after_) {
        ++it;
        continue;
      }
      const std::string node = it->first;
      it = peers_.erase(it);
      changed = true;
      host().info("lost " + node + ": not heard for " + std::to_string(expire_after_.count()) +
                  " ms");
      node_lost(node);
    }
    if (changed) peers_changed();
    arm_expiry();
  }

  void peers_changed() {
    host().set_status("peers", std::to_string(peers_.size()));
    std::vector<std::string> names;
    for (const auto &entry : peers_) names.push_back(entry.first);
    std::sort(names.begin(), names.end());
    std::string list;
    for (std::size_t i = 0; i < names.size() && i < kMaxListed; ++i)
      list += (i ? ", " : "") + names[i];
    if (names.size() > kMaxListed) list += ", ...";
    host().set_status("peers heard", list);
  }

  // configuration
  std::uint16_t port_ = 45892;
  in_addr if_addr_{};
  std::optional<in_addr> multicast_if_;
  in_addr group_{};
  bool broadcast_only_ = false;
  int ttl_ = 1;
  milliseconds interval_{5000};
  milliseconds expire_after_{30000};
  std::optional<std::string> node_name_;
  Envelope envelope_;

  // state
  int fd_ = -1;
  bool joined_ = false;
  bool join_failed_ = false;
  std::string announced_;
  std::unordered_map<std::string, SteadyTime> peers_;
  std::array<std::uint64_t, clusterd::gossip::kDropCount> drops_{};
  std::uint64_t drops_total_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t send_errors_ = 0;
  int send_error_ = 0;
  double tokens_ = kReplyBurst;
  SteadyTime bucket_time_ = std::chrono::steady_clock::now();
  std::mt19937_64 random_;
  clusterd::FdWatch watch_;
  clusterd::Timer heartbeat_;
  clusterd::Timer expiry_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(GossipStrategy);
