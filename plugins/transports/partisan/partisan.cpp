// Transport "partisan": a clusterd-to-clusterd TCP overlay (the idea behind Partisan), so that
// any service gets membership and messaging. Protocol: docs/overlay-protocol.md.
//  - Node names are identities ("web1@10.0.0.5"); the host part, with an optional ":port"
//    (default_port otherwise), is where a discovered node is dialed.
//  - Full mesh: every node dials one `membership` connection to each member it knows of
//    (heartbeats, member lists, leave), and data connections per channel on first use. Member
//    lists are exchanged on every new connection and pushed when a member comes up, so
//    joining one peer joins all.
//  - A member is up while our membership connection to it is open and heard from within
//    heartbeat_timeout; down otherwise (redialed with backoff: by the host while discovery
//    lists it, by this plugin while other members say it is alive, for forget_after). LEAVE,
//    sent when clusterd stops, marks it left: down with reason "left", and not redialed.
//  - Applications use the control socket (control_request below; docs/control-protocol.md).
//  - membership = "swim" replaces the full mesh by swim.hpp's membership (SWIM + Lifeguard +
//    HyParView views): every member still known, a bounded number of connections held (the
//    "membership = swim" section below; design notes in swim.hpp).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <clusterd/plugin.hpp>

#include "app_session.hpp"
#include "connection.hpp"
#include "crypto.hpp"
#include "json_line.hpp"
#include "swim.hpp"
#include "wire.hpp"

namespace {

using clusterd::Error;
using clusterd::Id;
using clusterd::partisan::AppSession;
using clusterd::partisan::Connection;
using clusterd::partisan::Endpoint;
using clusterd::partisan::Identity;
using clusterd::partisan::parse_endpoint;
namespace wire = clusterd::partisan::wire;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using clusterd::partisan::JsonLine;
using clusterd::partisan::Request;

constexpr const char *kMembershipChannel = "membership";
constexpr const char *kSwimChannel = "swim";  // membership = "swim": probes, gossip, views
constexpr int kAcceptsPerEvent = 64;
constexpr int kListenBacklog = 512;
// After a round that had to refuse connections the listener rests this long: a peer that
// reopens every refused socket at once would otherwise keep the loop busy accepting and
// closing (measured: 15-19 % CPU for 300 reopening sockets, 1 % with the rest). A member's
// connection waits in the backlog meanwhile, which each round drains whole.
constexpr milliseconds kAcceptRest{50};
constexpr std::size_t kMaxMembers = 4096;  // members learned from others
// Accepted connections before their handshake completes (docs/overlay-protocol.md, "Limits
// before authentication"). Addresses the membership knows (members' addresses, sources of
// authenticated connections) keep kReservedForMembers of the slots: a flood from anywhere else
// cannot lock a member out.
constexpr std::size_t kMaxHandshaking = 256;
constexpr std::size_t kReservedForMembers = 64;
constexpr std::size_t kMaxHandshakingPerSource = 8;   // an address the membership does not know
constexpr std::size_t kMaxHandshakingPerMember = 64;  // one it knows (parallel data channels)
constexpr std::size_t kMaxKnownSources = 2 * kMaxMembers;
namespace opt = clusterd::option;

constexpr milliseconds kFirstBackoff{200};
constexpr milliseconds kGossipCoalesce{5};  // member-list pushes within this share one

[[noreturn]] void config_error(const clusterd::Config &config, std::string_view key,
                               const std::string &message) {
  throw Error(CLUSTERD_E_CONFIG, std::string(key) + ": " + message + config.where(key));
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t monotonic_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// Where `node` (a valid node name) is dialed: its host, IPv6 in brackets, and its own port or
// `default_port`.
std::string address_of(const std::string &node, std::uint16_t default_port) {
  const auto parts = clusterd::parse_node_name(node);
  return parts->address_host() + ":" + std::to_string(parts->port.value_or(default_port));
}

// Why a node name is unusable, or "".
std::string bad_node_name(const std::string &node) {
  if (clusterd::valid_node_name(node)) return {};
  return "'" + node +
         "' is not a node name (name@host or name@host:port): " + clusterd::node_name_error(node);
}

struct Channel {
  std::string name;
  std::uint16_t parallelism = 1;
};

enum class State { kIdle, kConnecting, kUp, kDown, kLeft };

const char *state_name(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kConnecting:
      return "connecting";
    case State::kUp:
      return "up";
    case State::kDown:
      return "down";
    case State::kLeft:
      return "left";
  }
  return "?";
}

struct Peer {
  std::string node;
  std::string address;  // host:port to dial
  std::uint64_t incarnation = 0;
  State state = State::kIdle;
  bool discovered = false;  // the host asked to connect it (and did not disconnect it since)
  bool excluded = false;    // the host disconnected it: gossip about it is ignored
  std::shared_ptr<Connection> membership;                                // dialed by us
  std::map<std::string, std::vector<std::shared_ptr<Connection>>> data;  // by channel
  std::vector<Id> waiting_ops;
  Clock::time_point last_heard{}, down_since{}, next_dial{};
  unsigned dial_failures = 0;  // since it was last up: drives the redial backoff
  std::int64_t rtt_us = -1;
  std::string last_error;
  bool suspect = false;  // membership = "swim": up, but suspected (not yet refuted)
};

// A message waiting for its ACK (or for its connection to open).
struct PendingSend {
  Id session = 0;
  std::string client_id;  // the request's "id", as JSON text
  bool sent = false;
  std::string data;            // kept only until the connection opens and it is sent
  bool binary = false;         // from a binary session (app_sessions_): ACK frame, not JSON
  std::uint64_t frame_id = 0;  // its SEND frame's id
};

class PartisanTransport final : public clusterd::Transport {
 public:
  static constexpr const char *kName = "partisan";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "clusterd-to-clusterd TCP overlay: full-mesh membership, heartbeats, authenticated "
      "handshake, named channels for application messages";
  // What a read-only control peer may ask: membership and its events. Not `receive` (it takes
  // application messages, and turns the senders' "no receiver" into "delivered"), not `send`.
  static constexpr const char *kReadOnlyCommands[] = {"members", "subscribe"};
  static constexpr clusterd_option_t kOptions[] = {
      opt::format(opt::string("node_name",
                              "This node's name in the overlay (name@host or name@host:port); "
                              "default clusterd@<hostname>"),
                  CLUSTERD_FORMAT_NODE_NAME),
      opt::string("listen", "TCP address to accept peers on (host:port)", "\"0.0.0.0:9200\""),
      opt::string("advertise",
                  "host:port that peers dial to reach this node; default: the host of node_name "
                  "with the listen port"),
      opt::range(opt::integer("default_port", "Port of peers whose name has none", "9200"), 1,
                 65535),
      opt::range(opt::string("cluster", "Cluster name: peers of another cluster are refused",
                             "\"clusterd\""),
                 1, 255),
      opt::at_least(opt::secret(opt::string("secret",
                                            "Shared cluster secret (HMAC-SHA-256 "
                                            "challenge-response; never sent); at least 16 bytes")),
                    16),
      opt::finite(opt::positive(
          opt::duration("heartbeat_interval", "How often a PING goes to each member", "\"1s\""))),
      opt::finite(opt::positive(opt::duration(
          "heartbeat_timeout", "A member not heard for this long is reported down", "\"5s\""))),
      opt::finite(opt::positive(opt::duration(
          "gossip_interval", "How often the member list goes to every member", "\"10s\""))),
      opt::finite(opt::positive(
          opt::duration("connect_timeout", "Bound of one dial plus its handshake", "\"5s\""))),
      opt::finite(opt::positive(opt::duration(
          "handshake_timeout",
          "An accepted connection that has not completed its handshake within this is closed",
          "\"3s\""))),
      opt::finite(opt::positive(opt::duration(
          "max_backoff", "Longest wait between redials of a member that is down", "\"30s\""))),
      opt::duration("forget_after",
                    "A member down this long that discovery does not list is forgotten", "\"1h\""),
      opt::nonempty(opt::string_list("channels",
                                     "Data channels, \"name\" or \"name:N\" for N parallel "
                                     "connections (1..64)",
                                     "[\"default\"]")),
      opt::range(opt::integer("max_message_size", "Largest message in bytes", "1048576"), 1,
                 256 << 20),
      opt::string("membership",
                  "\"mesh\": every member connected to every other (small clusters); \"swim\": "
                  "SWIM failure detection, gossip, a bounded active view of connections",
                  "\"mesh\""),
      opt::finite(opt::positive(opt::duration(
          "probe_interval", "membership = swim: how often a member is probed", "\"1s\""))),
      opt::finite(opt::positive(opt::duration(
          "probe_timeout", "membership = swim: a probe unanswered this long goes indirect",
          "\"500ms\""))),
      opt::finite(opt::positive(opt::duration(
          "dissemination_interval",
          "membership = swim: how often queued membership changes go to the neighbours",
          "\"200ms\""))),
      opt::finite(opt::positive(opt::duration(
          "push_pull_interval",
          "membership = swim: how often the whole member table is exchanged with one member",
          "\"30s\""))),
      opt::range(opt::integer("suspicion_mult",
                              "membership = swim: suspicion lasts suspicion_mult * "
                              "log10(N+1) * probe_interval at least, 6 times that at most",
                              "4"),
                 1, 100),
      opt::range(opt::integer("max_active_view",
                              "membership = swim: the most neighbour connections held (the "
                              "active view aims at log2(N+1)+1 up to this)",
                              "8"),
                 1, 64),
      opt::needs(opt::string("tls_cert_file",
                             "Mutual TLS: this node's certificate chain (PEM); with tls_key_file "
                             "and tls_ca_file"),
                 "tls_key_file|tls_ca_file"),
      opt::needs(opt::string("tls_key_file", "Mutual TLS: this node's private key (PEM)"),
                 "tls_cert_file|tls_ca_file"),
      opt::needs(opt::string("tls_ca_file",
                             "Mutual TLS: the CA (PEM) every peer's certificate must chain to"),
                 "tls_cert_file|tls_key_file"),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    const std::string listen = config.string("listen");
    if (!parse_endpoint(listen))
      problems.add("listen",
                   "'" + listen + "' is not an IP address and port (a.b.c.d:port, [v6]:port)");
    if (auto advertise = config.optional_string("advertise");
        advertise && !parse_endpoint(*advertise))
      problems.add("advertise", "'" + *advertise + "' is not an IP address and port");
    if (const std::string mode = config.string("membership"); mode != "mesh" && mode != "swim")
      problems.add("membership", "'" + mode + "' is not \"mesh\" or \"swim\"");
    if (config.duration("probe_timeout") >= config.duration("probe_interval"))
      problems.add("probe_timeout", "must be shorter than probe_interval");
    if (config.duration("heartbeat_timeout") <= config.duration("heartbeat_interval"))
      problems.add("heartbeat_timeout", "must be longer than heartbeat_interval");
    for (const std::string &spec : config.strings("channels")) {
      Channel c;
      if (auto why = parse_channel(spec, c); !why.empty()) problems.add("channels", why);
    }
  }

  ~PartisanTransport() override { shutdown(); }

  void init(const clusterd::Config &config) override {
    self_.node = config.optional_string("node_name").value_or("clusterd@" + hostname());
    // The default name comes from the host name, which validate() cannot know.
    if (auto why = bad_node_name(self_.node); !why.empty()) config_error(config, "node_name", why);
    default_port_ = static_cast<std::uint16_t>(config.integer("default_port"));
    const std::string listen_text = config.string("listen");
    listen_ = *parse_endpoint(listen_text);
    const std::string listen_port = listen_text.substr(listen_text.rfind(':') + 1);
    self_.address =
        config.optional_string("advertise")
            .value_or(clusterd::parse_node_name(self_.node)->address_host() + ":" + listen_port);
    self_.cluster = config.string("cluster");
    if (auto secret = config.optional_string("secret")) {
      std::string error;
      if (!clusterd::crypto::load(error)) config_error(config, "secret", error);
      self_.secret = std::move(*secret);
    }
    init_tls(config);
    heartbeat_interval_ = config.duration("heartbeat_interval");
    heartbeat_timeout_ = config.duration("heartbeat_timeout");
    gossip_interval_ = config.duration("gossip_interval");
    connect_timeout_ = config.duration("connect_timeout");
    handshake_timeout_ = config.duration("handshake_timeout");
    max_backoff_ = config.duration("max_backoff");
    forget_after_ = config.duration("forget_after");
    for (const std::string &spec : config.strings("channels")) {
      Channel c;
      parse_channel(spec, c);
      channels_[c.name] = c;
    }
    max_frame_ = static_cast<std::size_t>(config.integer("max_message_size")) + wire::kFrameSlack;
    self_.incarnation = static_cast<std::uint64_t>(unix_ms()) * 1000 +
                        static_cast<std::uint64_t>(::getpid() % 1000);
    if (config.string("membership") == "swim") init_swim(config);
  }

  void start() override {
    listen_socket();
    if (swim_) start_swim();
    if (!self_.secret && !self_.tls)
      host().warn("no cluster secret: any process that can reach " + listen_.text +
                  " and knows the cluster name may join (set secret or secret_file)");
    if (!swim_) {
      tick_ = clusterd::Timer::every(host(), heartbeat_interval_, [this] { heartbeat(); });
      gossip_ = clusterd::Timer::every(host(), gossip_interval_, [this] { gossip_all(); });
    }
    if (!parse_endpoint(self_.address))
      host().warn("advertised address '" + self_.address +
                  "' is not an IP address and port: peers that learn of this node from others "
                  "cannot dial it (host names are not resolved yet); set advertise");
    host().set_status("node", self_.node);
    host().set_status("listen", listen_.text);
    host().set_status("advertise", self_.address);
    host().set_status("auth", self_.secret ? "hmac-sha256" : "none");
    host().set_status("tls", self_.tls ? "mutual" : "off");
    host().set_status("membership", swim_ ? "swim" : "mesh");
    publish_counts();
    host().info("overlay node " + self_.node + " listening on " + listen_.text + " (cluster '" +
                self_.cluster + "')");
  }

  void stop() override {
    if (swim_) {
      // Our LEFT state to every neighbour, written before the close on each stream.
      swim_->leave(swim_now());
      drain_swim();
      return shutdown();
    }
    // Graceful leave: tell every member, best effort and without waiting. On the connections
    // we accepted too: there LEAVE comes before the close on the same stream, so the member
    // cannot mistake the close for a crash.
    for (auto &[name, peer] : peers_)
      if (peer.membership && peer.membership->open()) peer.membership->send(wire::Leave{});
    for (auto &[raw, conn] : inbound_)
      if (conn->open() && conn->channel() == kMembershipChannel) conn->send(wire::Leave{});
    shutdown();
  }

  // ---- clusterd::Transport ----

  void connect(Id op, std::string_view node_view) override {
    const std::string node(node_view);
    if (node == self_.node) return complete(op, CLUSTERD_OK);
    if (auto why = bad_node_name(node); !why.empty())
      return complete(op, CLUSTERD_E_INVALID_ARG, why);
    Peer &peer = peers_[node];
    if (peer.node.empty()) {
      peer.node = node;
      peer.address = address_of(node, default_port_);
      know(peer.address);
    }
    peer.discovered = true;
    peer.excluded = false;
    if (peer.state == State::kUp) return complete(op, CLUSTERD_OK);
    peer.waiting_ops.push_back(op);
    if (!swim_) return dial(peer);
    swim_->join(node, peer.address, swim_now());  // completed when it is a member (swim_event)
    drain_swim();
  }

  void disconnect(Id op, std::string_view node_view) override {
    auto it = peers_.find(std::string(node_view));
    if (it == peers_.end() || it->second.state != State::kUp) {
      if (it != peers_.end()) it->second.discovered = false;
      return complete(op, CLUSTERD_E_NOT_FOUND, "not connected");
    }
    Peer &peer = it->second;
    peer.discovered = false;
    // A SWIM member stays one while it answers probes: its membership is the cluster's, not
    // this node's to end. Only the mesh can exclude a member.
    if (swim_) return complete(op, CLUSTERD_OK);
    peer.excluded = true;
    drop_connections(peer, "disconnected by clusterd");
    complete(op, CLUSTERD_OK);
  }

  void list_nodes(Id op) override { complete_list(op, CLUSTERD_OK, {}, up_nodes()); }

  void cancel(Id op) override {
    for (auto &[name, peer] : peers_) std::erase(peer.waiting_ops, op);
  }

  std::optional<std::string> local_node() override { return self_.node; }

  // ---- control socket (docs/control-protocol.md) ----

  void control_request(Id session, std::string_view line) override {
    Request request;
    std::string error;
    if (!request.parse(line, error)) return reply(session, JsonLine().field("error", error));
    const std::string_view cmd = request.string("cmd").value_or("");
    if (cmd == "members") {
      reply(session, members_json());
      return control_end(session);
    }
    if (cmd == "subscribe") {
      sessions_[session].events = true;
      return reply(session, JsonLine().field("ok", true).field("node", self_.node));
    }
    if (cmd == "receive") {
      const std::string channel(request.string("channel").value_or("default"));
      if (!channels_.count(channel))
        return reply(session, JsonLine().field("error", "unknown channel '" + channel + "'"));
      sessions_[session].channels.insert(channel);
      receivers_[channel].insert(session);
      return reply(session, JsonLine().field("ok", true).field("channel", channel));
    }
    if (cmd == "send") return send_request(session, request);
    if (cmd == "open") return open_app_session(session, request);
    reply(session, JsonLine().field("error", "unknown command '" + std::string(cmd) +
                                                 "' (members, subscribe, receive, send, open)"));
  }

  void control_closed(Id session) override {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    for (const auto &channel : it->second.channels) receivers_[channel].erase(session);
    sessions_.erase(it);
  }

 private:
  struct Session {
    bool events = false;
    std::set<std::string> channels;
  };

  void init_tls(const clusterd::Config &config) {
    const auto cert = config.optional_string("tls_cert_file");
    const auto key = config.optional_string("tls_key_file");
    const auto ca = config.optional_string("tls_ca_file");
    if (!cert) return;  // the three come together (declared with needs)
    std::string error;
    if (!clusterd::partisan::tls::load(error)) config_error(config, "tls_cert_file", error);
    try {
      self_.tls = std::make_shared<clusterd::partisan::tls::Context>(*cert, *key, *ca);
    } catch (const std::runtime_error &e) {
      const std::string what = e.what();
      const char *key_name = what.rfind("tls_key_file", 0) == 0  ? "tls_key_file"
                             : what.rfind("tls_ca_file", 0) == 0 ? "tls_ca_file"
                                                                 : "tls_cert_file";
      config_error(config, key_name, what);
    }
  }

  // Reads "name" or "name:N" into `c`; "" when fine, else what is wrong.
  static std::string parse_channel(const std::string &spec, Channel &c) {
    const auto colon = spec.find(':');
    c.name = spec.substr(0, colon);
    if (c.name.empty() || c.name == kMembershipChannel || c.name.size() > 64)
      return "bad channel name '" + c.name + "' (1..64 bytes, not \"" + kMembershipChannel + "\")";
    if (colon == std::string::npos) return "";
    const std::string n = spec.substr(colon + 1);
    if (n.empty() || n.size() > 2 || n.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(n) < 1 || std::stoi(n) > 64)
      return "'" + spec + "': parallelism must be 1..64";
    c.parallelism = static_cast<std::uint16_t>(std::stoi(n));
    return "";
  }

  // ---- listening ----

  void listen_socket() {
    const int fd = ::socket(listen_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw Error(CLUSTERD_E_IO, std::string("socket: ") + std::strerror(errno));
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, reinterpret_cast<const sockaddr *>(&listen_.addr), listen_.length) != 0 ||
        ::listen(fd, kListenBacklog) != 0) {
      const int err = errno;
      ::close(fd);
      throw Error(CLUSTERD_E_IO, "cannot listen on " + listen_.text + ": " + std::strerror(err));
    }
    listen_fd_ = fd;
    watch_listener();
  }

  void watch_listener() {
    listen_watch_ = clusterd::FdWatch::watch(host(), listen_fd_, CLUSTERD_FD_READ,
                                             [this](std::uint32_t) { accept_some(); });
  }

  void accept_some() {
    bool refused = false;
    // Normally a share of the loop per event; once refusing, the whole backlog (see kAcceptRest).
    for (int i = 0; i < (refused ? kListenBacklog : kAcceptsPerEvent); ++i) {
      sockaddr_storage from{};
      socklen_t length = sizeof from;
      const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr *>(&from), &length,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;  // EAGAIN, or a transient error (EMFILE: retried on the next event)
      std::string source = source_of(from);
      if (!admit(source)) {
        // Closed, not left in the backlog: the backlog is where a member's connection waits,
        // and a full one makes the kernel drop its SYN.
        ::close(fd);
        ++refused_busy_;
        refused = true;
        continue;
      }
      auto c = Connection::accept(host(), self_, fd, text_of(from), max_frame_, handshake_timeout_,
                                  inbound_events());
      const bool known = known_sources_.count(source) > 0;
      unknown_handshaking_ += !known;
      ++handshaking_by_source_[source];
      handshaking_.emplace(c.get(), Handshake{std::move(source), known});
      inbound_[c.get()] = c;
    }
    if (!refused) return;
    listen_watch_ = clusterd::FdWatch();
    accept_rest_ = clusterd::Timer::after(host(), kAcceptRest, [this] { watch_listener(); });
  }

  // An accepted connection whose handshake has not completed.
  struct Handshake {
    std::string source;
    bool known = false;  // its source was known when it was accepted
  };

  // Whether a connection from `source` may start a handshake (see kMaxHandshaking).
  bool admit(const std::string &source) const {
    auto it = handshaking_by_source_.find(source);
    const std::size_t from_source = it == handshaking_by_source_.end() ? 0 : it->second;
    if (handshaking_.size() >= kMaxHandshaking) return false;
    if (known_sources_.count(source)) return from_source < kMaxHandshakingPerMember;
    return unknown_handshaking_ < kMaxHandshaking - kReservedForMembers &&
           from_source < kMaxHandshakingPerSource;
  }

  // Ends the handshake bookkeeping of `c` (opened or closed).
  void handshake_over(const Connection &c) {
    auto it = handshaking_.find(&c);
    if (it == handshaking_.end()) return;
    unknown_handshaking_ -= !it->second.known;
    if (auto n = handshaking_by_source_.find(it->second.source); --n->second == 0)
      handshaking_by_source_.erase(n);
    handshaking_.erase(it);
  }

  // `address` (an IP literal with a port, as members advertise themselves) is a member's:
  // connections from it get the reserved handshake slots.
  void know(const std::string &address) {
    if (auto endpoint = parse_endpoint(address)) know_source(source_of(endpoint->addr));
  }
  void know_source(const std::string &source) {
    if (known_sources_.size() >= kMaxKnownSources) {  // forget the sources of former members
      known_sources_.clear();
      for (const auto &[name, peer] : peers_)
        if (auto endpoint = parse_endpoint(peer.address))
          known_sources_.insert(source_of(endpoint->addr));
    }
    known_sources_.insert(source);
  }

  // What the per-source limits count by: an IPv4 address (IPv4-mapped ones too), or an IPv6
  // /64, which one holder usually has whole.
  static std::string source_of(const sockaddr_storage &a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
      const auto *v4 = reinterpret_cast<const sockaddr_in *>(&a);
      return ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf) ? buf : "";
    }
    in6_addr prefix = reinterpret_cast<const sockaddr_in6 *>(&a)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&prefix))
      return ::inet_ntop(AF_INET, &prefix.s6_addr[12], buf, sizeof buf) ? buf : "";
    std::fill(prefix.s6_addr + 8, prefix.s6_addr + 16, 0);
    return ::inet_ntop(AF_INET6, &prefix, buf, sizeof buf) ? std::string(buf) + "/64" : "";
  }

  static std::string text_of(const sockaddr_storage &a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
      const auto *v4 = reinterpret_cast<const sockaddr_in *>(&a);
      ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
    }
    const auto *v6 = reinterpret_cast<const sockaddr_in6 *>(&a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    std::string text = "[";  // appended, not `+`: GCC 12's -Wrestrict misfires on the latter
    text += buf;
    text += "]:";
    text += std::to_string(ntohs(v6->sin6_port));
    return text;
  }

  // ---- connections we accepted: the peer sends, we answer ----

  Connection::Events inbound_events() {
    Connection::Events e;
    e.on_open = [this](Connection &c) {
      if (auto it = handshaking_.find(&c); it != handshaking_.end()) {
        know_source(it->second.source);  // authenticated: a member's address from now on
        handshake_over(c);
      }
      if (c.channel() == kSwimChannel || (swim_ && c.channel() == kMembershipChannel))
        return swim_inbound_open(c);
      if (c.channel() == kMembershipChannel) {
        // A node has one membership connection to us: an older one is a leftover (restart,
        // partition) that would otherwise linger half-open.
        std::vector<std::shared_ptr<Connection>> older;
        for (const auto &[raw, other] : inbound_)
          if (raw != &c && other->open() && other->channel() == kMembershipChannel &&
              other->peer_node() == c.peer_node())
            older.push_back(other);
        for (auto &other : older) other->close("replaced by a new connection");
        learn(c.peer_node(), c.peer_address(), c.peer_incarnation());
        c.send(members_frame());
      } else if (!channels_.count(c.channel())) {
        c.close("unknown channel '" + c.channel() + "'", "unknown channel");
      }
    };
    e.on_frame = [this](Connection &c, wire::Frame &frame) { on_inbound_frame(c, frame); };
    e.on_closed = [this](Connection &c, const std::string &reason, bool rejected) {
      log_refusal(c, reason, rejected);
      handshake_over(c);
      if (swim_ && c.channel() == kSwimChannel) swim_closed(c.peer_node());
      inbound_.erase(&c);
    };
    return e;
  }

  void log_refusal(const Connection &c, const std::string &reason, bool rejected) {
    if (!rejected) return;  // an ordinary close of an open connection is not news
    ++refused_;
    host().warn("refused peer " + c.peer_text() +
                (c.peer_node().empty() ? "" : " (claims '" + c.peer_node() + "')") + ": " + reason);
    publish_counts();
  }

  void on_inbound_frame(Connection &c, wire::Frame &frame) {
    if (c.channel() == kSwimChannel) return swim_frame(c.peer_node(), c, frame);
    heard(c.peer_node());
    if (auto *ping = std::get_if<wire::Ping>(&frame)) {
      c.send(wire::Pong{ping->id, ping->sent_ns});
    } else if (auto *members = std::get_if<wire::Members>(&frame)) {
      merge(*members);
    } else if (std::holds_alternative<wire::Leave>(frame)) {
      left(c.peer_node(), c.peer_incarnation());
    } else if (auto *message = std::get_if<wire::Message>(&frame)) {
      deliver(c, *message);
    } else {
      c.close(std::string("unexpected ") + wire::type_name(frame) + " from " + c.peer_node(),
              "unexpected frame");
    }
  }

  // ---- members ----

  void heard(const std::string &node) {
    auto it = peers_.find(node);
    if (it != peers_.end()) it->second.last_heard = Clock::now();
  }

  // A member exists at `address` (from its own HELLO, or from another member's list).
  void learn(const std::string &node, const std::string &address, std::uint64_t incarnation) {
    if (node == self_.node || !bad_node_name(node).empty()) return;
    auto it = peers_.find(node);
    if (it == peers_.end()) {
      if (peers_.size() >= kMaxMembers) return;
      it = peers_.emplace(node, Peer{}).first;
      it->second.node = node;
      it->second.address = address;
      know(address);
      emit("joined", node, "address", address);
    }
    Peer &peer = it->second;
    if (peer.excluded) return;
    if (peer.state == State::kLeft && incarnation <= peer.incarnation) return;
    if (incarnation > peer.incarnation) {
      peer.incarnation = incarnation;
      if (!address.empty() && parse_endpoint(address)) peer.address = address;
      know(peer.address);
    }
    if (peer.state == State::kDown || peer.state == State::kLeft) peer.next_dial = Clock::now();
    if (peer.state != State::kUp && peer.state != State::kConnecting) dial(peer);
  }

  void merge(const wire::Members &members) {
    for (const auto &m : members.members) {
      if (m.state == wire::MemberState::kLeft)
        left(m.node, m.incarnation);
      else
        learn(m.node, m.address, m.incarnation);
    }
  }

  void left(const std::string &node, std::uint64_t incarnation) {
    auto it = peers_.find(node);
    if (it == peers_.end() || incarnation < it->second.incarnation) return;
    Peer &peer = it->second;
    if (peer.state == State::kLeft) return;
    peer.incarnation = incarnation;
    const bool was_up = peer.state == State::kUp;
    drop_connections(peer, "left");
    peer.state = State::kLeft;
    if (!was_up) emit("left", node);
    host().info("member " + node + " left the overlay");
  }

  wire::Frame members_frame() const {
    wire::Members m;
    m.members.push_back({self_.node, self_.address, self_.incarnation, wire::MemberState::kAlive});
    for (const auto &[name, peer] : peers_) {
      if (peer.state == State::kUp)
        m.members.push_back({name, peer.address, peer.incarnation, wire::MemberState::kAlive});
      else if (peer.state == State::kLeft)
        m.members.push_back({name, peer.address, peer.incarnation, wire::MemberState::kLeft});
    }
    return m;
  }

  void gossip_all() {
    std::string frame;
    wire::encode(members_frame(), frame);
    for (auto &[name, peer] : peers_)
      if (peer.state == State::kUp) peer.membership->send_encoded(frame);
  }

  // A member came up: push the list to everyone soon. Members coming up together (a node
  // joining a large overlay meets them all at once) share one push instead of one each.
  void gossip_soon() {
    if (gossip_pending_) return;
    gossip_pending_ = true;
    gossip_soon_ = clusterd::Timer::after(host(), kGossipCoalesce, [this] {
      gossip_pending_ = false;
      gossip_all();
    });
  }

  // ---- dialing ----

  void dial(Peer &peer) {
    if (peer.membership || peer.state == State::kUp) return;  // dialing or up already
    auto endpoint = parse_endpoint(peer.address);
    if (!endpoint) {
      return fail_dial(peer,
                       "cannot dial '" + peer.address +
                           "': not an IP address and port (hostnames are not resolved)",
                       false);
    }
    const std::string node = peer.node;
    Connection::Events e;
    e.on_open = [this, node](Connection &c) { membership_open(node, c); };
    e.on_frame = [this, node](Connection &c, wire::Frame &frame) {
      on_membership_frame(node, c, frame);
    };
    e.on_closed = [this, node](Connection &c, const std::string &reason, bool rejected) {
      membership_closed(node, c, reason, rejected);
    };
    peer.state = State::kConnecting;
    try {
      peer.membership = Connection::dial(host(), self_, *endpoint, node, kMembershipChannel, 0,
                                         max_frame_, connect_timeout_, std::move(e));
    } catch (const Error &error) {
      peer.membership.reset();
      fail_dial(peer, error.what(), false);
    }
  }

  void fail_dial(Peer &peer, const std::string &reason, bool rejected) {
    peer.last_error = reason;
    peer.state = peer.state == State::kLeft ? State::kLeft : State::kDown;
    if (peer.down_since == Clock::time_point{}) peer.down_since = Clock::now();
    schedule_redial(peer);
    auto ops = std::exchange(peer.waiting_ops, {});
    for (Id op : ops)
      complete(op, rejected ? CLUSTERD_E_GENERIC : CLUSTERD_E_UNREACHABLE,
               peer.node + ": " + reason);
    if (rejected) host().warn("cannot join " + peer.node + ": " + reason);
  }

  // The next redial of `peer`, one failure later: the SDK's backoff, as the host's reconciler.
  void schedule_redial(Peer &peer) {
    peer.next_dial = Clock::now() + clusterd::backoff_delay(kFirstBackoff, max_backoff_,
                                                            ++peer.dial_failures, random_);
  }

  void membership_open(const std::string &node, Connection &c) {
    Peer &peer = peers_[node];
    know(peer.address);
    peer.state = State::kUp;
    peer.incarnation = c.peer_incarnation();
    peer.last_heard = Clock::now();
    peer.down_since = {};
    peer.dial_failures = 0;
    peer.last_error.clear();
    auto ops = std::exchange(peer.waiting_ops, {});
    for (Id op : ops) complete(op, CLUSTERD_OK);
    node_up(node);
    emit("up", node, "address", peer.address);
    host().info("member " + node + " up (" + c.peer_text() + ")");
    publish_counts();
    gossip_soon();  // the new member learns everyone, everyone learns the new member
  }

  void on_membership_frame(const std::string &node, Connection &c, wire::Frame &frame) {
    heard(node);
    if (auto *pong = std::get_if<wire::Pong>(&frame)) {
      const std::uint64_t now = monotonic_ns();
      if (pong->sent_ns <= now)
        peers_[node].rtt_us = static_cast<std::int64_t>((now - pong->sent_ns) / 1000);
    } else if (auto *members = std::get_if<wire::Members>(&frame)) {
      merge(*members);
    } else if (std::holds_alternative<wire::Leave>(frame)) {
      left(node, c.peer_incarnation());
    } else {
      c.close(std::string("unexpected ") + wire::type_name(frame) + " from " + node,
              "unexpected frame");
    }
  }

  void membership_closed(const std::string &node, Connection &c, const std::string &reason,
                         bool rejected) {
    auto it = peers_.find(node);
    if (it == peers_.end() || it->second.membership.get() != &c) return;
    Peer &peer = it->second;
    auto keep = std::move(peer.membership);  // `c` lives until this returns
    const bool was_up = peer.state == State::kUp;
    fail_data(peer, reason);
    if (was_up) {
      peer.state = State::kDown;
      peer.down_since = Clock::now();
      node_down(node, reason);
      emit("down", node, "reason", reason);
      host().warn("member " + node + " down: " + reason);
      peer.last_error = reason;
      peer.dial_failures = 0;
      schedule_redial(peer);  // it was up: the first redial comes soon
    } else if (peer.state != State::kLeft) {
      fail_dial(peer, reason, rejected);
    }
    publish_counts();
  }

  // Closes every connection to `peer` (reason "left" marks a graceful leave).
  void drop_connections(Peer &peer, const std::string &reason) {
    const bool was_up = peer.state == State::kUp;
    fail_data(peer, reason);
    if (peer.membership) {
      auto keep = std::move(peer.membership);
      keep->close(reason);
    }
    if (was_up) {
      peer.state = State::kDown;
      peer.down_since = Clock::now();
      node_down(peer.node, reason);
      emit(reason == "left" ? "left" : "down", peer.node, "reason", reason);
    }
    publish_counts();
  }

  // ---- heartbeats, redials, forgetting ----

  void heartbeat() {
    const auto now = Clock::now();
    std::vector<std::string> forget;
    for (auto &[name, peer] : peers_) {
      if (peer.state == State::kUp) {
        if (now - peer.last_heard > heartbeat_timeout_) {
          const auto silent = std::chrono::duration_cast<milliseconds>(now - peer.last_heard);
          peer.membership->close("no heartbeat for " + std::to_string(silent.count()) + " ms");
        } else {
          peer.membership->send(wire::Ping{++ping_id_, monotonic_ns()});
        }
      } else if (peer.state == State::kDown && !peer.excluded && !peer.membership) {
        if (!peer.discovered && !clusterd::is_infinite(forget_after_) &&
            now - peer.down_since > forget_after_)
          forget.push_back(name);
        else if (now >= peer.next_dial)
          dial(peer);
      }
    }
    // Connections we accepted whose dialer fell silent (a partition leaves them half-open:
    // no FIN ever comes): membership ones carry PINGs, data ones belong to a member we see
    // down. Twice the timeout: the dialer pings at its own interval, which may differ.
    std::vector<std::shared_ptr<Connection>> stale;
    for (const auto &[raw, conn] : inbound_) {
      if (!conn->open() || now - conn->last_received() <= 2 * heartbeat_timeout_) continue;
      auto peer = peers_.find(conn->peer_node());
      if (conn->channel() == kMembershipChannel || peer == peers_.end() ||
          peer->second.state != State::kUp)
        stale.push_back(conn);
    }
    for (auto &conn : stale) conn->close("silent for longer than heartbeat_timeout");
    for (const auto &name : forget) {
      host().info("forgetting member " + name + " (down for longer than forget_after)");
      peers_.erase(name);
    }
  }

  // ---- messages ----

  void send_request(Id session, const Request &request) {
    const std::string id = request.raw("id");
    auto fail = [&](const std::string &why) {
      reply(session, JsonLine().raw("id", id).field("error", why));
    };
    const auto to_view = request.string("to");
    if (!to_view) return fail("\"to\" must be a node name");
    const auto data_view = request.string("data");
    if (!data_view) return fail("\"data\" must be a string");
    const std::string channel(request.string("channel").value_or("default"));
    PendingSend pending;
    pending.session = session;
    pending.client_id = id;
    if (auto why = route(channel, *to_view, *data_view, std::move(pending)); !why.empty())
      fail(why);
  }

  // Sends `data` to member `to` on `channel` for `pending.session` (its ACK goes back to it):
  // "" once it is on its way, else why not. One session's messages on a channel share one
  // connection, so they stay in order. `used` (if given) gets that connection.
  std::string route(const std::string &channel_name, std::string_view to_view,
                    std::string_view data, PendingSend pending, Connection **used = nullptr) {
    auto channel = channels_.find(channel_name);
    if (channel == channels_.end()) return "unknown channel '" + channel_name + "'";
    if (data.size() + wire::kFrameSlack > max_frame_)
      return "message of " + std::to_string(data.size()) + " bytes exceeds max_message_size";
    const std::string to(to_view);
    auto it = peers_.find(to);
    if (it == peers_.end() || it->second.state != State::kUp)
      return to + " is not an up member" +
             (it == peers_.end() || it->second.last_error.empty()
                  ? std::string()
                  : " (" + it->second.last_error + ")");
    Peer &peer = it->second;
    const std::uint16_t index =
        static_cast<std::uint16_t>(pending.session % channel->second.parallelism);
    auto &slots = peer.data[channel_name];
    if (slots.size() < channel->second.parallelism) slots.resize(channel->second.parallelism);
    auto &conn = slots[index];
    if (!conn || conn->closed()) {
      conn = dial_data(peer, channel_name, index);
      if (!conn) return "cannot open a connection to " + to;
    }
    if (used) *used = conn.get();
    const std::uint64_t msg = ++message_id_;
    auto &waiting = pending_[conn.get()];
    if (conn->open()) {
      if (!conn->send_message(msg, data))
        return conn->closed()
                   ? "the connection to " + to + " was lost"
                   : "the connection to " + to + " is backed up (the peer does not read)";
      pending.sent = true;
    } else {
      if (backlog(*conn) > Connection::kMaxQueued)
        return "too many messages wait for the connection to " + to;
      pending.data.assign(data);
    }
    waiting.emplace(msg, std::move(pending));
    return "";
  }

  // Bytes on their way to `c`'s peer: queued on it, or waiting for it to open.
  std::size_t backlog(const Connection &c) const {
    std::size_t bytes = c.queued();
    if (auto it = pending_.find(&c); it != pending_.end() && !c.open())
      for (const auto &[msg, p] : it->second) bytes += p.data.size();
    return bytes;
  }

  std::shared_ptr<Connection> dial_data(Peer &peer, const std::string &channel,
                                        std::uint16_t index) {
    auto endpoint = parse_endpoint(peer.address);
    if (!endpoint) return nullptr;
    Connection::Events e;
    e.on_open = [this](Connection &c) {
      // Messages queued while the handshake ran go out now, in order.
      for (auto &[msg, p] : pending_[&c]) {
        if (p.sent) continue;
        c.send_message(msg, p.data);
        p.sent = true;
        std::string().swap(p.data);
      }
      unblock(c);
    };
    e.on_drained = [this](Connection &c) { unblock(c); };
    e.on_frame = [this](Connection &c, wire::Frame &frame) {
      heard(c.peer_node());
      if (auto *ack = std::get_if<wire::Ack>(&frame)) return acked(c, *ack);
      c.close(std::string("unexpected ") + wire::type_name(frame) + " on a data connection",
              "unexpected frame");
    };
    e.on_closed = [this](Connection &c, const std::string &reason, bool) {
      unblock(c);
      fail_pending(c, "the connection to " + c.peer_node() +
                          " was lost before the "
                          "acknowledgement (the message may or may not have arrived): " +
                          reason);
    };
    try {
      return Connection::dial(host(), self_, *endpoint, peer.node, channel, index, max_frame_,
                              connect_timeout_, std::move(e));
    } catch (const Error &) {
      return nullptr;
    }
  }

  void acked(Connection &c, const wire::Ack &ack) {
    auto &pending = pending_[&c];
    auto it = pending.find(ack.id);
    if (it == pending.end()) return;
    const PendingSend p = std::move(it->second);
    pending.erase(it);
    if (p.binary)
      return app_ack(
          p, static_cast<std::uint8_t>(ack.status),
          ack.status == wire::AckStatus::kDelivered
              ? std::string()
              : c.peer_node() + ": " + (ack.reason.empty() ? "not delivered" : ack.reason));
    if (ack.status == wire::AckStatus::kDelivered) {
      reply(p.session, JsonLine().raw("id", p.client_id).field("ok", true));
    } else {
      reply(p.session,
            JsonLine()
                .raw("id", p.client_id)
                .field("error",
                       c.peer_node() + ": " + (ack.reason.empty() ? "not delivered" : ack.reason)));
    }
  }

  void fail_pending(Connection &c, const std::string &why) {
    auto node = pending_.extract(&c);
    if (node.empty()) return;
    for (auto &[msg, p] : node.mapped()) {
      if (p.binary)
        app_ack(p, AppSession::kNotSent, why);
      else
        reply(p.session, JsonLine().raw("id", p.client_id).field("error", why));
    }
  }

  void fail_data(Peer &peer, const std::string &reason) {
    auto data = std::move(peer.data);
    peer.data.clear();
    for (auto &[channel, slots] : data)
      for (auto &conn : slots)
        if (conn) conn->close(reason);
  }

  void deliver(Connection &c, const wire::Message &message) {
    auto receivers = receivers_.find(c.channel());
    auto app_receivers = app_receivers_.find(c.channel());
    const bool json = receivers != receivers_.end() && !receivers->second.empty();
    const bool binary = app_receivers != app_receivers_.end() && !app_receivers->second.empty();
    if (!json && !binary) {
      c.send(wire::Ack{message.id, wire::AckStatus::kNoReceiver,
                       "no receiver for channel '" + c.channel() + "' on " + self_.node});
      return;
    }
    std::size_t delivered = 0;
    if (binary) {
      const std::set<Id> sessions = app_receivers->second;  // a too-slow one is removed meanwhile
      for (Id id : sessions)
        if (auto s = app_sessions_.find(id); s != app_sessions_.end())
          delivered += s->second->deliver(c.peer_node(), message.data);
    }
    if (json) {
      JsonLine event;
      event.field("event", "message")
          .field("from", c.peer_node())
          .field("channel", c.channel())
          .field("data", message.data);
      if (!event.ok() && delivered == 0) {
        c.send(wire::Ack{message.id, wire::AckStatus::kMalformed, "the message is not UTF-8 text"});
        return;
      }
      const std::set<Id> sessions = receivers->second;  // a too-slow one is removed meanwhile
      if (event.ok())
        for (Id session : sessions) delivered += control_send(session, event.text()) == CLUSTERD_OK;
    }
    if (delivered > 0)
      c.send(wire::Ack{message.id, wire::AckStatus::kDelivered, {}});
    else
      c.send(wire::Ack{message.id, wire::AckStatus::kReceiverTooSlow,
                       "the receiver on " + self_.node + " is too slow"});
  }

  // ---- binary sessions (app_session.hpp; docs/control-protocol.md, "Binary sessions") ----

  // {"cmd":"open","channel":C,"receive":true}: the session's socket becomes a binary session.
  void open_app_session(Id session, const Request &request) {
    auto refuse = [&](const std::string &why) {
      reply(session, JsonLine().field("error", why));
      control_end(session);
    };
    const std::string channel(request.string("channel").value_or("default"));
    if (!channels_.count(channel)) return refuse("unknown channel '" + channel + "'");
    if (app_sessions_.size() >= kMaxAppSessions)
      return refuse("too many binary sessions (" + std::to_string(kMaxAppSessions) +
                    "); try again later");
    const bool receives = request.raw("receive") != "false";
    int fd = -1;
    std::string_view unread;
    if (auto status = control_detach(session, fd, unread); status != CLUSTERD_OK)
      return refuse(status == CLUSTERD_E_UNSUPPORTED
                        ? "this clusterd cannot hand sessions over (ABI 1.6 needed)"
                        : "cannot take the session over (status " + std::to_string(status) + ")");
    AppSession::Events events;
    events.on_send = [this](AppSession &app, std::uint64_t id, std::string_view to,
                            std::string_view data) { app_send(app, id, to, data); };
    events.on_closed = [this](AppSession &app, const std::string &reason) {
      host().info("binary session " + std::to_string(app.id()) + " (" + app.peer() + ", channel '" +
                  app.channel() + "') closed: " + reason);
      app_receivers_[app.channel()].erase(app.id());
      app_sessions_.erase(app.id());
    };
    JsonLine opened;
    opened.field("ok", true)
        .field("protocol", std::int64_t{1})
        .field("node", self_.node)
        .field("channel", channel)
        .field("max_message_size", static_cast<std::int64_t>(max_frame_ - wire::kFrameSlack));
    auto app = AppSession::start(host(), session, fd, unread, channel, receives,
                                 max_frame_ - wire::kFrameSlack, opened.text(), std::move(events));
    if (app->closed()) return;  // the application went away at once
    app_sessions_[session] = app;
    if (receives) app_receivers_[channel].insert(session);
    host().info("binary session " + std::to_string(session) + " (" + app->peer() +
                ") opened on channel '" + channel + "'");
  }

  void app_send(AppSession &app, std::uint64_t id, std::string_view to, std::string_view data) {
    Connection *used = nullptr;
    PendingSend pending;
    pending.session = app.id();
    pending.binary = true;
    pending.frame_id = id;
    if (auto why = route(app.channel(), to, data, std::move(pending), &used); !why.empty())
      return app.ack(id, AppSession::kNotSent, why);
    // Back-pressure: a sender faster than the peer connection waits until it drains.
    if (used && backlog(*used) > kAppBacklog) {
      app.pause();
      blocked_[used].push_back(app.id());
    }
  }

  void app_ack(const PendingSend &p, std::uint8_t status, const std::string &reason) {
    if (auto it = app_sessions_.find(p.session); it != app_sessions_.end())
      it->second->ack(p.frame_id, status, reason);
  }

  // `c` drained, opened or closed: the sessions waiting on it read again.
  void unblock(const Connection &c) {
    auto waiting = blocked_.extract(&c);
    if (waiting.empty()) return;
    for (Id id : waiting.mapped())
      if (auto it = app_sessions_.find(id); it != app_sessions_.end()) it->second->resume();
  }

  // ---- control helpers ----

  void reply(Id session, JsonLine &body) {
    if (session != 0) control_send(session, body.text());
  }
  void reply(Id session, JsonLine &&body) { reply(session, body); }

  // A membership event to every subscribed session.
  void emit(std::string_view event, const std::string &node, std::string_view detail_key = {},
            std::string_view detail = {}) {
    JsonLine line;
    line.field("event", event).field("node", node);
    if (!detail_key.empty()) line.field(detail_key, detail);
    line.field("time_ms", unix_ms());
    std::vector<Id> subscribers;
    for (const auto &[id, s] : sessions_)
      if (s.events) subscribers.push_back(id);
    for (Id id : subscribers) control_send(id, line.text());
  }

  JsonLine members_json() const {
    const auto now = Clock::now();
    JsonLine self;
    self.field("node", self_.node)
        .field("address", self_.address)
        .field("cluster", self_.cluster)
        .field("incarnation", self_.incarnation);
    JsonLine out;
    out.raw("self", self.text()).begin_array("members");
    for (const auto &[name, peer] : peers_) {
      JsonLine m;
      m.field("node", name)
          .field("address", peer.address)
          .field("state", peer.suspect ? "suspect" : state_name(peer.state))
          .field("incarnation", peer.incarnation)
          .field("discovered", peer.discovered);
      if (peer.last_heard == Clock::time_point{})
        m.null("last_heard_ms_ago");
      else
        m.field("last_heard_ms_ago",
                static_cast<std::int64_t>(
                    std::chrono::duration_cast<milliseconds>(now - peer.last_heard).count()));
      if (peer.rtt_us >= 0)
        m.field("rtt_us", peer.rtt_us);
      else
        m.null("rtt_us");
      if (!peer.last_error.empty()) m.field("last_error", peer.last_error);
      if (swim_) m.field("neighbor", swim_->neighbour(name));
      out.element(m.text());
    }
    out.end_array();
    return out;
  }

  std::vector<std::string> up_nodes() const {
    std::vector<std::string> nodes;
    for (const auto &[name, peer] : peers_)
      if (peer.state == State::kUp) nodes.push_back(name);
    return nodes;
  }

  void publish_counts() {
    std::size_t up = 0;
    for (const auto &[name, peer] : peers_) up += peer.state == State::kUp;
    host().set_status("members", std::to_string(up) + " up of " + std::to_string(peers_.size()));
    if (refused_ > 0) host().set_status("refused", std::to_string(refused_));
    if (refused_busy_ > 0)
      host().set_status("refused_before_handshake", std::to_string(refused_busy_));
    if (swim_) {
      host().set_status("active_view", std::to_string(swim_->active_view().size()) +
                                           " of at most " + std::to_string(swim_max_active_));
      host().set_status("incarnation", std::to_string(swim_->incarnation()));
      host().set_status("refutations", std::to_string(swim_->refutations()));
      host().set_status("health_awareness", std::to_string(swim_->awareness()));
    }
  }

  void shutdown() {
    stopping_ = true;
    swim_tick_ = clusterd::Timer();
    auto links = std::move(swim_links_);
    swim_links_.clear();
    for (auto &[node, link] : links)
      if (link.out) link.out->close("clusterd is stopping");
    tick_ = clusterd::Timer();
    gossip_ = clusterd::Timer();
    gossip_soon_ = clusterd::Timer();
    accept_rest_ = clusterd::Timer();
    listen_watch_ = clusterd::FdWatch();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    auto peers = std::move(peers_);
    peers_.clear();
    for (auto &[name, peer] : peers) {
      for (auto &[channel, slots] : peer.data)
        for (auto &conn : slots)
          if (conn) conn->close("clusterd is stopping");
      if (peer.membership) peer.membership->close("clusterd is stopping");
    }
    auto inbound = std::move(inbound_);
    inbound_.clear();
    handshaking_.clear();
    handshaking_by_source_.clear();
    unknown_handshaking_ = 0;
    for (auto &[raw, conn] : inbound) conn->close("clusterd is stopping");
    pending_.clear();
    blocked_.clear();
    auto apps = std::move(app_sessions_);
    app_sessions_.clear();
    for (auto &[id, app] : apps) app->close("clusterd is stopping");
    app_receivers_.clear();
  }

  Identity self_;
  Endpoint listen_;
  std::uint16_t default_port_ = 9200;
  milliseconds heartbeat_interval_{1000}, heartbeat_timeout_{5000}, gossip_interval_{10000},
      connect_timeout_{5000}, handshake_timeout_{3000}, max_backoff_{30000}, forget_after_{3600000};
  clusterd::Backoff::Random random_{std::random_device{}()};  // redial jitter
  std::map<std::string, Channel> channels_;
  std::size_t max_frame_ = 0;

  int listen_fd_ = -1;
  clusterd::FdWatch listen_watch_;
  clusterd::Timer tick_, gossip_, gossip_soon_, accept_rest_;
  bool gossip_pending_ = false;
  std::map<std::string, Peer> peers_;
  std::map<const Connection *, std::shared_ptr<Connection>> inbound_;
  std::map<const Connection *, Handshake> handshaking_;  // the not yet open ones of inbound_
  std::map<std::string, std::size_t> handshaking_by_source_;
  std::size_t unknown_handshaking_ = 0;  // of handshaking_, from sources not known then
  std::set<std::string> known_sources_;  // see know()
  std::map<const Connection *, std::map<std::uint64_t, PendingSend>> pending_;
  std::size_t refused_ = 0, refused_busy_ = 0;
  std::uint64_t ping_id_ = 0, message_id_ = 0;
  std::map<Id, Session> sessions_;
  std::map<std::string, std::set<Id>> receivers_;
  std::map<Id, std::shared_ptr<AppSession>> app_sessions_;  // binary sessions, by session id
  std::map<std::string, std::set<Id>> app_receivers_;       // ... that receive, by channel
  std::map<const Connection *, std::vector<Id>> blocked_;   // paused until it drains
  // Bytes queued towards a peer beyond which a binary session stops reading (back-pressure).
  static constexpr std::size_t kAppBacklog = 4u << 20;
  static constexpr std::size_t kMaxAppSessions = 256;

  // ---- membership = "swim" (swim.hpp: the protocol; here only its sockets) ----
  //  - One "swim" connection per member pair carries probes, gossip and the active view's
  //    requests, in both directions; either side may dial it. When both did, the one dialed by
  //    the smaller node name is used and the other, idle, closes.
  //  - Connections to neighbours (the active view) stay open; any other closes after
  //    swim_idle_ (twice probe_timeout) without traffic: it served a probe, a relayed probe
  //    or a push/pull, each answered within probe_timeout.
  //  - Member events become the host's nodeup/nodedown and peers_ entries (state "up",
  //    "suspect" while suspected, "down", "left"), so that members, subscribe and the data
  //    channels work as in the mesh.
  struct SwimLink {
    std::shared_ptr<Connection> out;   // dialed by us
    std::weak_ptr<Connection> in;      // accepted (owned by inbound_)
    std::vector<std::string> waiting;  // encoded frames until `out` opens
    Clock::time_point last_used{};
  };

  void init_swim(const clusterd::Config &config) {
    clusterd::partisan::swim::Config c;
    c.probe_interval = config.duration("probe_interval");
    c.probe_timeout = config.duration("probe_timeout");
    c.gossip_interval = config.duration("dissemination_interval");
    c.push_pull_interval = config.duration("push_pull_interval");
    c.suspicion_mult = static_cast<unsigned>(config.integer("suspicion_mult"));
    c.max_active = static_cast<std::size_t>(config.integer("max_active_view"));
    c.dead_retention =
        clusterd::is_infinite(forget_after_) ? milliseconds(24 * 3600 * 1000) : forget_after_;
    c.max_members = kMaxMembers;
    swim_max_active_ = c.max_active;
    swim_idle_ = 2 * c.probe_timeout;  // a probe's, a relay's or a push/pull's exchange
    swim_ = std::make_unique<clusterd::partisan::swim::Membership>(
        c, self_.node, self_.address, self_.incarnation, std::random_device{}());
    swim_tick_every_ = std::clamp(c.probe_timeout / 5, milliseconds(20), milliseconds(100));
  }

  void start_swim() {
    swim_tick_ = clusterd::Timer::every(host(), swim_tick_every_, [this] { swim_tick(); });
  }

  static clusterd::partisan::swim::Time swim_now() {
    return std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch());
  }

  void swim_tick() {
    swim_->tick(swim_now());
    drain_swim();
    const auto now = Clock::now();
    std::vector<std::shared_ptr<Connection>> idle;
    for (auto &[node, link] : swim_links_) {
      auto in = link.in.lock();
      if (!swim_->neighbour(node) && now - link.last_used >= swim_idle_) {
        if (link.out) idle.push_back(link.out);
        if (in) idle.push_back(in);
      } else if (link.out && link.out->open() && in && in->open()) {
        // Both sides dialed: the one neither uses goes once what was in flight on it arrived.
        auto unused = self_.node < node ? in : link.out;
        if (now - unused->last_received() >= swim_idle_) idle.push_back(unused);
      }
    }
    for (auto &c : idle) c->close("idle");
    if (now - last_published_ < milliseconds(1000)) return;
    last_published_ = now;
    // The core forgets dead and left members after forget_after; so does the member list.
    std::erase_if(peers_, [this](const auto &entry) {
      const Peer &peer = entry.second;
      return (peer.state == State::kDown || peer.state == State::kLeft) && !peer.discovered &&
             !swim_->member(entry.first);
    });
    publish_counts();
  }

  // The open connection to `node` both sides prefer (see SwimLink), or null.
  Connection *swim_connection(const std::string &node) {
    auto it = swim_links_.find(node);
    if (it == swim_links_.end()) return nullptr;
    auto in = it->second.in.lock();
    Connection *out = it->second.out && it->second.out->open() ? it->second.out.get() : nullptr;
    Connection *accepted = in && in->open() ? in.get() : nullptr;
    if (out && accepted) return self_.node < node ? out : accepted;
    return out ? out : accepted;
  }

  // Carries out what the core asked for. Re-entrant calls (a dial that fails at once) only
  // feed the core; the outermost loop sends what results.
  void drain_swim() {
    if (draining_) return;
    draining_ = true;
    bool changed = false;
    for (int round = 0; round < 64; ++round) {
      auto sends = swim_->take_sends();
      auto closes = swim_->take_closes();
      auto events = swim_->take_events();
      if (sends.empty() && closes.empty() && events.empty()) break;
      for (auto &s : sends) swim_send(s);
      for (const auto &node : closes) swim_close(node, "member is dead");
      for (const auto &e : events) swim_event(e);
      changed |= !events.empty();
    }
    draining_ = false;
    if (changed) publish_counts();
  }

  void swim_send(clusterd::partisan::swim::Send &s) {
    SwimLink &link = swim_links_[s.to];
    link.last_used = Clock::now();
    if (Connection *c = swim_connection(s.to)) {
      c->send(s.frame);
      return;
    }
    if (link.out && !link.out->closed()) {  // dialing: sent once it opens
      if (link.waiting.size() < 64) wire::encode(s.frame, link.waiting.emplace_back());
      return;
    }
    const std::string address = s.address.empty() ? peer_address(s.to) : s.address;
    auto endpoint = parse_endpoint(address);
    if (!endpoint) return;
    wire::encode(s.frame, link.waiting.emplace_back());
    const std::string node = s.to;
    Connection::Events e;
    e.on_open = [this, node](Connection &c) {
      auto it = swim_links_.find(node);
      if (it == swim_links_.end()) return;
      for (const auto &frame : std::exchange(it->second.waiting, {})) c.send_encoded(frame);
    };
    e.on_frame = [this, node](Connection &c, wire::Frame &frame) { swim_frame(node, c, frame); };
    e.on_closed = [this, node](Connection &c, const std::string &reason, bool rejected) {
      if (rejected) host().warn("member " + node + " refused the connection: " + reason);
      auto it = swim_links_.find(node);
      if (it != swim_links_.end() && it->second.out.get() == &c) {
        auto keep = std::move(it->second.out);
        it->second.waiting.clear();
      }
      fail_waiting_ops(node, reason, rejected);  // a join that did not get its answer
      swim_closed(node);
    };
    std::shared_ptr<Connection> conn;
    try {
      conn = Connection::dial(host(), self_, *endpoint, node, kSwimChannel, 0, max_frame_,
                              connect_timeout_, std::move(e));
    } catch (const Error &error) {
      swim_links_[node].waiting.clear();
      fail_waiting_ops(node, error.what(), false);
      return swim_closed(node);
    }
    // Looked up again: a dial that failed at once has been through on_closed already.
    if (!conn->closed()) swim_links_[node].out = std::move(conn);
  }

  std::string peer_address(const std::string &node) const {
    auto it = peers_.find(node);
    return it == peers_.end() ? std::string() : it->second.address;
  }

  void swim_close(const std::string &node, const std::string &reason) {
    auto it = swim_links_.find(node);
    if (it == swim_links_.end()) return;
    auto out = it->second.out;
    auto in = it->second.in.lock();
    if (out) out->close(reason);
    if (in) in->close(reason);
  }

  // A connection to `node` closed: the core hears of it once none is left.
  void swim_closed(const std::string &node) {
    if (stopping_) return;
    auto it = swim_links_.find(node);
    if (it != swim_links_.end()) {
      auto in = it->second.in.lock();
      const bool out_alive = it->second.out && !it->second.out->closed();
      if (out_alive || (in && in->open())) return;
      swim_links_.erase(it);
    }
    if (!swim_) return;
    swim_->connection_lost(node, swim_now());
    drain_swim();
  }

  void swim_inbound_open(Connection &c) {
    if (!swim_ || c.channel() != kSwimChannel)
      return c.close("channel '" + c.channel() + "' from " + c.peer_node() +
                         ": this node runs membership = " + (swim_ ? "swim" : "mesh"),
                     std::string("this node runs membership = ") + (swim_ ? "swim" : "mesh"));
    SwimLink &link = swim_links_[c.peer_node()];
    if (auto older = link.in.lock(); older && older.get() != &c)
      older->close("replaced by a new connection");
    link.in = inbound_.at(&c);
    link.last_used = Clock::now();
    know(c.peer_address());
  }

  void swim_frame(const std::string &node, Connection &c, wire::Frame &frame) {
    heard(node);
    if (auto it = swim_links_.find(node); it != swim_links_.end())
      it->second.last_used = Clock::now();
    if (std::holds_alternative<wire::Members>(frame) ||
        std::holds_alternative<wire::Leave>(frame) ||
        std::holds_alternative<wire::Message>(frame) || std::holds_alternative<wire::Ack>(frame))
      return c.close(std::string("unexpected ") + wire::type_name(frame) + " from " + node,
                     "unexpected frame");
    // What members say about others names nodes and addresses: unusable ones are dropped.
    auto unusable = [](const wire::Update &u) {
      return !bad_node_name(u.node).empty() || !parse_endpoint(u.address) ||
             (!u.from.empty() && !bad_node_name(u.from).empty());
    };
    if (auto *gossip = std::get_if<wire::Gossip>(&frame)) std::erase_if(gossip->updates, unusable);
    if (auto *state = std::get_if<wire::State>(&frame)) std::erase_if(state->members, unusable);
    if (auto *req = std::get_if<wire::ProbeReq>(&frame);
        req && (!bad_node_name(req->target).empty() || !parse_endpoint(req->address)))
      return c.close("PROBE_REQ from " + node + " names an invalid member", "invalid member");
    swim_->receive(node, frame, swim_now());
    drain_swim();
  }

  void swim_event(const clusterd::partisan::swim::Event &e) {
    using Kind = clusterd::partisan::swim::Event::Kind;
    Peer &peer = peers_[e.node];
    if (peer.node.empty()) peer.node = e.node;
    if (const auto *m = swim_->member(e.node)) peer.incarnation = m->incarnation;
    if (!e.address.empty()) peer.address = e.address;
    switch (e.kind) {
      case Kind::kUp: {
        know(peer.address);
        peer.state = State::kUp;
        peer.suspect = false;
        peer.last_heard = Clock::now();
        peer.down_since = {};
        peer.last_error.clear();
        auto ops = std::exchange(peer.waiting_ops, {});
        for (Id op : ops) complete(op, CLUSTERD_OK);
        node_up(e.node);
        emit("up", e.node, "address", peer.address);
        host().info("member " + e.node + " up (" + peer.address + ")");
        break;
      }
      case Kind::kSuspect:
        peer.suspect = true;
        emit("suspect", e.node, "reason", e.reason);
        break;
      case Kind::kAlive:
        peer.suspect = false;
        emit("alive", e.node, "reason", e.reason);
        break;
      case Kind::kDown:
      case Kind::kLeft: {
        const bool left = e.kind == Kind::kLeft;
        const std::string reason = left ? "left" : e.reason;
        fail_data(peer, reason);
        peer.state = left ? State::kLeft : State::kDown;
        peer.suspect = false;
        peer.down_since = Clock::now();
        peer.last_error = reason;
        node_down(e.node, reason);
        emit(left ? "left" : "down", e.node, "reason", reason);
        if (left)
          host().info("member " + e.node + " left the overlay");
        else
          host().warn("member " + e.node + " down: " + reason);
        break;
      }
    }
  }

  void fail_waiting_ops(const std::string &node, const std::string &reason, bool rejected) {
    auto it = peers_.find(node);
    if (it == peers_.end() || it->second.state == State::kUp) return;
    it->second.last_error = reason;
    for (Id op : std::exchange(it->second.waiting_ops, {}))
      complete(op, rejected ? CLUSTERD_E_GENERIC : CLUSTERD_E_UNREACHABLE, node + ": " + reason);
  }

  std::unique_ptr<clusterd::partisan::swim::Membership> swim_;  // null: membership = "mesh"
  std::map<std::string, SwimLink> swim_links_;
  clusterd::Timer swim_tick_;
  milliseconds swim_tick_every_{100}, swim_idle_{2000};
  std::size_t swim_max_active_ = 8;
  Clock::time_point last_published_{};
  bool draining_ = false, stopping_ = false;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(PartisanTransport);
