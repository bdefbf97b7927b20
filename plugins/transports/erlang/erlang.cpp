// Transport "erlang": drives BEAM nodes over Erlang distribution, as a hidden C node (libei
// behind the DistConnection interface, dist_connection.hpp). What libcluster does from inside
// the node, clusterd does from outside, with the same MFAs:
//   connect    = rpc net_kernel:connect_node(Node) on the managed node(s)
//                true -> OK, false -> CLUSTERD_E_UNREACHABLE, ignored -> CLUSTERD_E_NOT_ALIVE
//   disconnect = rpc erlang:disconnect_node(Node)   true -> OK, false -> CLUSTERD_E_NOT_FOUND
//   list_nodes = rpc erlang:nodes() (visible nodes: never hidden ones, never the node itself)
// A managed node that is not connected fails operations at once with CLUSTERD_E_AGAIN, with a
// message naming it and the last connection error (e.g. "... rejected the connection: wrong
// cookie?"); the host's reconciler retries with backoff. Only while the first connection
// attempts after start() run (bounded by connect_timeout) do operations wait for them, so a
// freshly started daemon meshes without a retry delay. Reconnects back off exponentially
// (100 ms doubling to 5 s, jittered).
//
// Managed nodes. `node = "app@host"` manages one node. `nodes = "local"` manages every node
// registered in the local EPMD (127.0.0.1:epmd_port; asked every 100 ms for 3 s after start-up
// and after every change of its names, then less and less often, down to every
// local_poll_interval), each over its own connection; nodes registered as hidden (remote
// shells, probes) are left alone.
// In that mode:
//   - connect(X) runs on every connected managed node except X itself (every pair is
//     connected directly; we never wait for `global` to connect nodes transitively);
//   - local_node() is the managed node with the smallest name (NULL while none is connected);
//   - a node X counts as connected (list_nodes, node_up/node_down) when every connected
//     managed node other than X is connected to it. So the other local nodes are listed once
//     they are meshed, and a managed node that lacks a connection makes the host reconnect.
//
// Events. After every (re)connect the transport installs a relay on the managed node (erlang.md
// §2.6: erl_scan + erl_parse + spawn(erl_eval, ...) -- stdlib only, nothing to load) that
// forwards nodeup/nodedown to a pid of our hidden node; hidden nodes are filtered out. The relay
// links to that pid, so it dies with our connection; if it dies on its own it is installed
// again. Every list_interval erlang:nodes() is polled as a consistency check. node_up /
// node_down reach the host as the managed set changes; local_changed() is called whenever a
// managed node's connection comes up or goes down (the host then re-reads local_node() and
// re-lists).
//
// Threads. ei is blocking, so each managed node has its own thread (and nodes = "local" one
// more for EPMD), joined in stop(); they reach the loop only through host->post. All their I/O
// is poll()-based and interruptible, so stop() returns promptly. One rpc is in flight per
// connection (replies carry no correlation id); the others queue. Writes use MSG_NOSIGNAL, so a
// dropped connection never raises SIGPIPE (no dependency on the daemon ignoring it, and no signal
// handler here). The thread reads its socket whenever data arrives, so ticks are always answered.
// stop() only closes our hidden connections: it never disconnects any node.
//
// Cookie, first found: `cookie` (a secret: never logged; the host may also fill it from
// `cookie_file` or `cookie_env`, of which at most one may be set), then the environment
// variable CLUSTERD_ERLANG_COOKIE, then the first line of $HOME/.erlang.cookie of the user
// running the daemon (re-read on every connection attempt, so it may appear later).
//
// Our node: alive name "<name_prefix>_<pid>_<random>" (unique per instance, so two daemons or a
// restart never collide with a connection that is still being torn down), a random non-zero
// creation, host part = this machine's short host name. IPv4 only (ei).
//
// disconnect = "removed" and OTP 25+: prevent_overlapping_partitions defaults to true, and then
// one erlang:disconnect_node/1 makes `global` on the other nodes disconnect as well, to avoid
// overlapping partitions: in a full 3-node mesh a single disconnect left NO node connected to
// any other (erlang.md §6). Only use disconnect = "removed" when you mean it, expect collateral
// nodedowns (the host reconnects the nodes it still wants), or run the nodes with
// -kernel prevent_overlapping_partitions false.
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <clusterd/plugin.hpp>

#include "dist_connection.hpp"
#include "epmd_query.hpp"
#include "io.hpp"
#include "poll_schedule.hpp"  // plugins/common/epmd
#include "session.hpp"

namespace {

using clusterd::Error;
using clusterd::Id;
using clusterd::Status;
using std::chrono::milliseconds;
namespace erl = clusterd::erlang;

constexpr const char *kCookieEnv = "CLUSTERD_ERLANG_COOKIE";
constexpr std::size_t kMaxCookie = 512;  // EI_MAX_COOKIE_SIZE
namespace opt = clusterd::option;
constexpr milliseconds kADay = std::chrono::hours(24);

// A duration of 1 ms up to 24 h (what the session threads can wait for).
constexpr clusterd_option_t up_to_a_day(clusterd_option_t o) noexcept {
  return opt::range(o, 1, kADay.count());
}
constexpr std::size_t kMaxMessage = 2000;  // aggregated failure messages
constexpr std::size_t kMaxPrefix = 150;    // node names must stay atoms (<= 255 bytes)

// Why `node` is no Erlang node name, or "": the SDK's rule, narrowed to what a BEAM node can be
// called: no port, and IPv6 written bare (a@::1), never in partisan's brackets.
std::string erlang_name_error(std::string_view node) {
  const auto parsed = clusterd::parse_node_name(node);
  if (!parsed) return clusterd::node_name_error(node);
  // The parts cover the whole text only without a port and without brackets.
  if (parsed->name.size() + 1 + parsed->host.size() != node.size())
    return "an Erlang node name has no port and no brackets";
  return {};
}

bool valid_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > kMaxPrefix) return false;
  for (const char c : prefix)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

std::string home_directory() {
  if (const char *home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd *result = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr &&
      result->pw_dir != nullptr)
    return result->pw_dir;
  return {};
}

// The first line of a cookie file, like erl and ei read it. Errors name the file, never content.
bool read_cookie_file(const std::string &path, std::string &cookie, std::string &error) {
  std::string line;
  if (!clusterd::read_file(path, line, error)) {
    error = "cannot read the cookie file " + error;
    return false;
  }
  if (const auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  if (const auto cr = line.find('\r'); cr != std::string::npos) line.resize(cr);
  if (line.empty()) {
    error = "the cookie file " + path + " is empty";
    return false;
  }
  if (line.size() > kMaxCookie) {
    error = "the cookie in " + path + " is longer than 512 bytes";
    return false;
  }
  cookie = std::move(line);
  return true;
}

std::string short_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string host(buf);
  host = host.substr(0, host.find('.'));
  for (const char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return "localhost";
  return host;
}

class ErlangTransport final : public clusterd::Transport, private erl::SessionOwner {
 public:
  static constexpr const char *kName = "erlang";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Drives BEAM nodes over Erlang distribution as a hidden node (connect_node, "
      "disconnect_node, nodes(), nodeup/nodedown)";
  static constexpr clusterd_option_t kOptions[] = {
      opt::conflicts(
          opt::format(
              opt::string("node", "The managed BEAM node, name@host (set either this or nodes)"),
              CLUSTERD_FORMAT_NODE_NAME),
          "nodes"),
      opt::choices(opt::string("nodes",
                               "\"local\": manage every node registered in the local epmd (set "
                               "either this or node)"),
                   "local"),
      opt::range(opt::secret(opt::string(
                     "cookie",
                     "The distribution cookie; default: $CLUSTERD_ERLANG_COOKIE, else the first "
                     "line of ~/.erlang.cookie of the user running clusterd")),
                 1, kMaxCookie),
      up_to_a_day(opt::duration(
          "connect_timeout",
          "Time limit of the epmd lookup and of the handshake with a managed node", "\"5s\"")),
      up_to_a_day(opt::duration("rpc_timeout",
                                "Time limit of one rpc on a managed node (connect_node waits up to "
                                "net_setuptime, 7 s by default); the connection is then reopened",
                                "\"15s\"")),
      opt::positive(opt::duration("list_interval",
                                  "How often erlang:nodes() is polled as a check of the "
                                  "nodeup/nodedown events; \"infinity\" = never",
                                  "\"10s\"")),
      up_to_a_day(opt::duration(
          "local_poll_interval",
          "nodes = \"local\": how often the local epmd is asked for its nodes once they stop "
          "changing (every 100 ms for 3 s after start-up and after any change, then backing "
          "off, doubling, to this). Topologies on this transport rescan when a local node comes "
          "or goes",
          "\"2s\"")),
      opt::range(opt::integer("epmd_port", "The port of epmd (on the managed node's host)", "4369"),
                 1, 65535),
      opt::string("name_prefix", "Start of our hidden node's name: PREFIX_<pid>_<random>@<host>",
                  "\"clusterd\""),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    if (auto node = config.optional_string("node"))  // the node-name rule plus Erlang's own
      if (const auto why = erlang_name_error(*node); !why.empty())
        problems.add("node", "'" + *node + "' is not an Erlang node name: " + why);
    if (!config.is_set("node") && !config.is_set("nodes"))
      problems.add("set node (\"app@host\") or nodes (\"local\")");
    if (const auto list = config.duration("list_interval");
        list > kADay && !clusterd::is_infinite(list))
      problems.add("list_interval", "must be at most 24h, or \"infinity\"");
    if (const std::string prefix = config.string("name_prefix"); !valid_prefix(prefix))
      problems.add("name_prefix", "'" + prefix + "' must be 1-150 characters of [A-Za-z0-9_-]");
  }

  ~ErlangTransport() override { stop_threads(); }

  void init(const clusterd::Config &config) override {
    const auto node = config.optional_string("node");
    if (node) node_ = *node;
    local_ = config.is_set("nodes");

    connect_timeout_ = config.duration("connect_timeout");
    rpc_timeout_ = config.duration("rpc_timeout");
    const milliseconds list = config.duration("list_interval");
    if (!clusterd::is_infinite(list)) list_interval_ = list;
    local_poll_interval_ = config.duration("local_poll_interval");
    epmd_port_ = static_cast<uint16_t>(config.integer("epmd_port"));
    const std::string prefix = config.string("name_prefix");

    if (auto cookie = config.optional_string("cookie")) {
      cookie_ = std::move(*cookie);
      cookie_source_ = "the cookie option";
    } else if (const char *env = std::getenv(kCookieEnv); env != nullptr && *env != '\0') {
      if (std::strlen(env) > kMaxCookie)
        throw Error(CLUSTERD_E_CONFIG, std::string(kCookieEnv) + ": longer than 512 bytes");
      cookie_ = env;
      cookie_source_ = kCookieEnv;
    } else {
      const std::string home = home_directory();
      if (home.empty())
        throw Error(CLUSTERD_E_CONFIG, "no cookie: set cookie, cookie_file, cookie_env or " +
                                           std::string(kCookieEnv) +
                                           " (no home directory for ~/.erlang.cookie)");
      cookie_file_ = home + "/.erlang.cookie";
      cookie_source_ = cookie_file_;
    }

    std::random_device random;
    const uint32_t tag = random() & 0xFFFFFFu;
    char hex[8];
    std::snprintf(hex, sizeof hex, "%06x", tag);
    self_.alive = prefix + "_" + std::to_string(getpid()) + "_" + hex;
    self_.host = short_host_name();
    self_.creation = 4 + random() % 0xFFFFFFF0u;  // random, non-zero (ei bumps 0..3)
  }

  void start() override {
    running_ = true;
    host().info("hidden node " + self_.name() + "; cookie from " + cookie_source_ +
                (local_ ? "; managing every node in the local epmd (127.0.0.1:" +
                              std::to_string(epmd_port_) + ")"
                        : "; managing " + node_));
    if (!local_) {
      const auto parts = clusterd::parse_node_name(node_);  // checked in init()
      add_session(std::string(parts->name), std::string(parts->host), node_);
    } else {
      discovery_ = std::thread([this] { discover(); });
    }
    show_status();
  }

  void stop() override {
    running_ = false;
    stop_threads();
    // Operations the host did not cancel still get their one completion.
    auto pending = std::exchange(pending_, {});
    requests_.clear();
    for (auto &h : std::exchange(held_, {})) pending[h.op].kind = h.kind;
    for (auto &[op, p] : pending) {
      if (p.kind == Kind::kList) {
        complete_list(op, CLUSTERD_E_CANCELLED, "transport stopped", {});
      } else {
        complete(op, CLUSTERD_E_CANCELLED, "transport stopped");
      }
    }
    views_.clear();
  }

  void connect(Id op, std::string_view node) override {
    std::string name = checked(node);
    wanted_.insert(name);
    dispatch(op, Kind::kConnect, erl::Call::kConnectNode, name);
  }

  void disconnect(Id op, std::string_view node) override {
    std::string name = checked(node);
    wanted_.erase(name);
    dispatch(op, Kind::kDisconnect, erl::Call::kDisconnectNode, name);
  }

  void list_nodes(Id op) override { dispatch(op, Kind::kList, erl::Call::kNodes, {}); }

  void cancel(Id op) override {
    pending_.erase(op);
    held_.erase(
        std::remove_if(held_.begin(), held_.end(), [op](const Held &h) { return h.op == op; }),
        held_.end());
  }

  std::optional<std::string> local_node() override { return managed_local(); }

 private:
  enum class Kind { kConnect, kDisconnect, kList };

  struct View {
    std::unique_ptr<erl::Session> session;
    std::string alive;
    std::string label;
    bool up = false;
    bool hidden = false;
    bool settled = false;  // its first connection attempt ended (either way)
    std::string name;
    std::set<std::string> peers;
    std::string error;  // the last connection error, "" when fine
  };

  // An operation that arrived while the first connection attempts were still running.
  struct Held {
    Id op;
    Kind kind;
    erl::Call call;
    std::string node;
  };

  struct Pending {
    Kind kind = Kind::kConnect;
    std::string node;
    std::size_t outstanding = 0;
    std::size_t ok = 0, not_found = 0;
    Status failure = CLUSTERD_OK;
    std::string message;
  };

  static std::string checked(std::string_view node) {
    if (const auto why = erlang_name_error(node); !why.empty())
      throw Error(CLUSTERD_E_INVALID_ARG,
                  "invalid node name '" + std::string(node.substr(0, 300)) + "': " + why);
    return std::string(node);
  }

  // The managed node (single) or the smallest connected one (nodes = "local").
  std::optional<std::string> managed_local() const {
    if (!local_) {
      for (const auto &[id, v] : views_)
        if (v.up && !v.name.empty()) return v.name;
      return node_;
    }
    std::optional<std::string> first;
    for (const auto &[id, v] : views_)
      if (v.up && (!first || v.name < *first)) first = v.name;
    return first;
  }

  // ---- sessions (loop thread) ----

  void add_session(const std::string &alive, const std::string &where, const std::string &label) {
    erl::SessionConfig c;
    c.id = ++next_session_;
    c.label = label;
    c.alive = alive;
    c.host = where;
    c.epmd_port = epmd_port_;
    c.skip_hidden = local_;
    c.self = self_;
    c.cookie = [this](std::string &cookie, std::string &error) {
      // Runs on session threads: only reads members fixed since init().
      if (cookie_file_.empty()) {
        cookie = cookie_;
        return true;
      }
      return read_cookie_file(cookie_file_, cookie, error);
    };
    c.connect_timeout = connect_timeout_;
    c.rpc_timeout = rpc_timeout_;
    c.list_interval = list_interval_;
    c.factory = &erl::make_ei_connection;
    View &v = views_[c.id];
    v.alive = alive;
    v.label = label;
    v.session =
        std::make_unique<erl::Session>(std::move(c), static_cast<erl::SessionOwner &>(*this));
    v.session->start();
  }

  void stop_threads() noexcept {
    discovery_cancel_.fire();
    if (discovery_.joinable()) discovery_.join();
    for (auto &[id, v] : views_)
      if (v.session) v.session->cancel();  // all at once, then wait
    for (auto &[id, v] : views_)
      if (v.session) v.session->join();
  }

  // nodes = "local": the EPMD poller (its own thread), on the adaptive schedule (quick after
  // start-up and after every change of the registered names, backing off to
  // local_poll_interval). Each managed node that comes up or goes away calls local_changed(),
  // which makes the host refresh the topologies on this transport: a local_epmd strategy
  // beside us needs no schedule of its own.
  void discover() noexcept {
    sockaddr_in epmd{};
    epmd.sin_family = AF_INET;
    epmd.sin_port = htons(epmd_port_);
    epmd.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    clusterd::epmd::PollSchedule schedule(local_poll_interval_);
    // The previous answer (a node restarted between two polls has a new port); none after a
    // failure. An unchanged answer is not handed to the loop: nothing would change there.
    std::optional<std::set<std::pair<std::string, uint16_t>>> last;
    bool first = true;  // start-up counts as a change (the epmd may not be running yet)
    while (!discovery_cancel_.fired()) {
      bool changed = std::exchange(first, false);
      try {
        try {
          auto names = erl::epmd_names(epmd, discovery_cancel_, connect_timeout_);
          std::set<std::pair<std::string, uint16_t>> now;
          for (const auto &n : names) now.emplace(n.alive, n.port);
          const bool different = now != last;
          changed = changed || different;
          last = std::move(now);
          if (different)
            post([this, names = std::move(names)]() mutable { on_names(std::move(names), {}); });
        } catch (const erl::DistError &e) {
          if (e.kind() == erl::DistError::Kind::kCancelled) break;
          last.reset();
          post([this, error = std::string(e.what())] { on_names({}, error); });
        }
      } catch (...) {
        // out of memory: try again next round
      }
      if (!erl::sleep_until(discovery_cancel_, erl::Clock::now() + schedule.next(changed))) break;
    }
  }

  void on_names(std::vector<erl::EpmdEntry> names, const std::string &error) {
    if (!running_) return;
    discovered_ = true;
    if (!error.empty()) {
      if (error != epmd_error_) host().warn(error + " (nodes = \"local\"; retrying)");
      epmd_error_ = error;
      show_status();
      release_held();
      return;  // keep what we have: the sessions notice lost nodes themselves
    }
    epmd_error_.clear();
    std::set<std::string> present;
    for (const auto &n : names) present.insert(n.alive);
    std::vector<uint64_t> gone;
    std::set<std::string> known;
    for (auto &[id, v] : views_) {
      if (present.count(v.alive) == 0)
        gone.push_back(id);
      else
        known.insert(v.alive);
    }
    bool was_up = false;
    for (uint64_t id : gone) views_[id].session->cancel();
    for (uint64_t id : gone) {
      View &v = views_[id];
      v.session->join();  // its queued requests were failed (posted) before it ended
      was_up = was_up || v.up;
      if (!v.hidden) host().info("'" + v.alive + "' left the local epmd: no longer managed");
      views_.erase(id);
    }
    for (const auto &alive : present)
      if (known.count(alive) == 0) add_session(alive, "127.0.0.1", "'" + alive + "' (local epmd)");
    if (was_up) {
      publish({});
      local_changed();
    }
    show_status();
    release_held();
  }

  // ---- SessionOwner: called on session threads, handed to the loop ----

  void post(std::function<void()> fn) {
    host().post(std::move(fn));  // fails only once stopping: then nothing needs to run
  }
  void session_failed(uint64_t id, bool hidden, std::string error) override {
    post([this, id, hidden, error = std::move(error)] { on_failed(id, hidden, error); });
  }
  void session_up(uint64_t id, std::string name, std::set<std::string> peers) override {
    post([this, id, name = std::move(name), peers = std::move(peers)]() mutable {
      on_up(id, std::move(name), std::move(peers));
    });
  }
  void session_down(uint64_t id, std::string error) override {
    post([this, id, error = std::move(error)] { on_down(id, error); });
  }
  void session_peers(uint64_t id, std::set<std::string> peers,
                     std::map<std::string, std::string> reasons) override {
    post([this, id, peers = std::move(peers), reasons = std::move(reasons)]() mutable {
      on_peers(id, std::move(peers), reasons);
    });
  }
  void session_result(uint64_t id, erl::Result result) override {
    post([this, id, result = std::move(result)]() mutable { on_result(id, std::move(result)); });
  }
  void session_log(int32_t level, std::string message) override {
    host().log(static_cast<clusterd::LogLevel>(level), message);  // [thread-safe]
  }

  // ---- session reports, on the loop ----

  View *view(uint64_t id) {
    auto it = views_.find(id);
    return it == views_.end() ? nullptr : &it->second;
  }

  void on_failed(uint64_t id, bool hidden, const std::string &error) {
    View *v = view(id);
    if (v == nullptr || !running_) return;
    if (hidden) {
      if (!v->hidden)
        host().info("'" + v->alive + "' in the local epmd is a hidden node: not managed");
    } else if (error != v->error) {
      host().warn("cannot connect to managed node " + v->label + ": " + error + " (retrying)");
    }
    v->hidden = hidden;
    v->error = error;
    v->settled = true;
    show_status();
    release_held();
  }

  void on_up(uint64_t id, std::string name, std::set<std::string> peers) {
    View *v = view(id);
    if (v == nullptr || !running_) return;
    if (!local_ && name != node_)
      host().warn("managed node " + node_ + " calls itself " + name + "; using " + name);
    v->up = true;
    v->hidden = false;
    v->settled = true;
    v->error.clear();
    v->name = std::move(name);
    v->peers = std::move(peers);
    host().info("connected to managed node " + v->name + " (" + std::to_string(v->peers.size()) +
                " visible nodes; relay installed)");
    catch_up(*v);
    publish({});
    local_changed();
    show_status();
    release_held();
  }

  // nodes = "local": a managed node that comes up after the host asked for connects joins
  // them directly, so every pair is connected without waiting for `global` (~200 ms) and
  // without the host seeing the pair as down and backing off. The asked-for set, not the
  // reported one: at start-up the host's connects are still in flight when managed nodes come
  // up one by one, and joining only what was already reported left the newcomer to the host's
  // backoff (a full mesh of 3 running nodes took 235 ms instead of 25 ms). Results are not the
  // host's operations; the peers relay reports what came of them.
  void catch_up(View &v) {
    if (!local_) return;
    for (const auto &node : wanted_) {
      if (node == v.name || v.peers.count(node) != 0) continue;
      v.session->submit(erl::Request{++next_request_, erl::Call::kConnectNode, node});
    }
  }

  void on_down(uint64_t id, const std::string &error) {
    View *v = view(id);
    if (v == nullptr || !running_) return;
    host().warn("lost managed node " + v->name + ": " + error + " (reconnecting)");
    v->up = false;
    v->error = error;
    v->peers.clear();
    std::map<std::string, std::string> reasons;
    for (const auto &n : reported_) reasons[n] = "the connection to " + v->name + " was lost";
    publish(reasons);
    local_changed();
    show_status();
  }

  void on_peers(uint64_t id, std::set<std::string> peers,
                const std::map<std::string, std::string> &reasons) {
    View *v = view(id);
    if (v == nullptr || !v->up || !running_) return;
    v->peers = std::move(peers);
    publish(reasons);
  }

  void on_result(uint64_t id, erl::Result r) {
    if (!running_) return;
    auto req = requests_.find(r.id);
    if (req == requests_.end()) return;
    const Id op = req->second;
    requests_.erase(req);
    auto it = pending_.find(op);
    if (it == pending_.end()) return;  // cancelled (the session sent the peers separately)
    Pending &p = it->second;
    if (p.kind == Kind::kList && r.status == CLUSTERD_OK) {
      if (View *v = view(id); v != nullptr && v->up) {
        v->peers = std::set<std::string>(r.nodes.begin(), r.nodes.end());
        publish({});
      }
    }
    record(p, r.status, r.message);
    if (--p.outstanding == 0) finish(op);
  }

  // ---- operations ----

  // True while the first connection attempts run (and, for nodes = "local", before the first
  // answer of epmd): operations wait for them instead of failing at once, so that a daemon
  // that just started connects its nodes without a retry delay. Bounded by connect_timeout.
  bool starting() const {
    if (local_ && !discovered_) return true;
    for (const auto &[id, v] : views_)
      if (!v.settled) return true;
    return false;
  }

  void release_held() {
    bool any_up = false;
    for (const auto &[id, v] : views_) any_up = any_up || v.up;
    if (held_.empty() || (starting() && !any_up)) return;
    for (auto &h : std::exchange(held_, {})) {
      try {
        dispatch(h.op, h.kind, h.call, h.node);
      } catch (const Error &e) {
        if (h.kind == Kind::kList)
          complete_list(h.op, e.status(), e.what(), {});
        else
          complete(h.op, e.status(), e.what());
      }
    }
  }

  void dispatch(Id op, Kind kind, erl::Call call, const std::string &node) {
    if (!running_) throw Error(CLUSTERD_E_STATE, "transport not running");
    if (pending_.count(op) != 0 ||
        std::any_of(held_.begin(), held_.end(), [op](const Held &h) { return h.op == op; }))
      throw Error(CLUSTERD_E_INVALID_ARG, "operation id in use");
    std::vector<View *> targets;
    bool any_up = false;
    for (auto &[id, v] : views_) {
      if (!v.up) continue;
      any_up = true;
      if (kind != Kind::kList && local_ && v.name == node) continue;  // not on the node itself
      targets.push_back(&v);
    }
    if (targets.empty()) {
      if (!any_up && starting()) {
        held_.push_back(Held{op, kind, call, node});
        return;
      }
      if (any_up) {
        complete(op, CLUSTERD_OK);  // the only connected managed node is `node` itself
      } else if (kind == Kind::kList) {
        complete_list(op, CLUSTERD_E_AGAIN, not_connected(), {});
      } else {
        complete(op, CLUSTERD_E_AGAIN, not_connected());
      }
      return;
    }
    Pending &p = pending_[op];
    p.kind = kind;
    p.node = node;
    for (View *v : targets) {
      const uint64_t request = ++next_request_;
      requests_[request] = op;
      if (v->session->submit(erl::Request{request, call, node})) {
        ++p.outstanding;
      } else {
        requests_.erase(request);
        record(p, CLUSTERD_E_AGAIN, "the connection to " + v->name + " was just lost");
      }
    }
    if (p.outstanding == 0) finish(op);
  }

  static void record(Pending &p, Status status, const std::string &message) {
    if (status == CLUSTERD_OK) {
      ++p.ok;
    } else if (status == CLUSTERD_E_NOT_FOUND && p.kind == Kind::kDisconnect) {
      ++p.not_found;  // not connected there: fine, unless it is so everywhere
      if (p.message.empty()) p.message = message;
    } else if (p.failure == CLUSTERD_OK) {
      p.failure = status;
      p.message = message;
    } else if (p.message.size() < kMaxMessage) {
      p.message += "; " + message;
    }
  }

  void finish(Id op) {
    auto it = pending_.find(op);
    if (it == pending_.end()) return;
    const Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.kind == Kind::kList) {
      if (p.ok > 0) {
        const auto connected = aggregate();
        complete_list(op, CLUSTERD_OK, {},
                      std::vector<std::string>(connected.begin(), connected.end()));
      } else {
        complete_list(op, p.failure, p.message, {});
      }
      return;
    }
    if (p.failure != CLUSTERD_OK) {
      complete(op, p.failure, p.message);
    } else if (p.ok == 0 && p.not_found > 0) {
      complete(op, CLUSTERD_E_NOT_FOUND, p.message);
    } else {
      complete(op, CLUSTERD_OK);
    }
  }

  std::string not_connected() const {
    if (!local_) {
      for (const auto &[id, v] : views_)
        return "managed node " + node_ + " is not connected" +
               (v.error.empty() ? std::string(" (connecting)") : ": " + v.error);
      return "managed node " + node_ + " is not connected";
    }
    std::string message = "no managed node is connected";
    if (!epmd_error_.empty()) return message + ": " + epmd_error_;
    std::size_t shown = 0;
    for (const auto &[id, v] : views_) {
      if (v.hidden || v.error.empty() || shown >= 3) continue;
      message += (shown++ == 0 ? ": " : "; ") + v.error;
    }
    if (views_.empty()) message += " (no node registered in the local epmd)";
    return message;
  }

  // What the host sees as connected (see the header comment for nodes = "local").
  std::set<std::string> aggregate() const {
    std::vector<const View *> up;
    for (const auto &[id, v] : views_)
      if (v.up) up.push_back(&v);
    std::set<std::string> out;
    if (up.empty()) return out;
    if (!local_) {
      out = up.front()->peers;
      out.erase(up.front()->name);
      return out;
    }
    std::set<std::string> candidates;
    for (const View *v : up) {
      candidates.insert(v->name);
      candidates.insert(v->peers.begin(), v->peers.end());
    }
    for (const auto &c : candidates) {
      bool everywhere = true;
      for (const View *v : up)
        if (v->name != c && v->peers.count(c) == 0) everywhere = false;
      if (everywhere) out.insert(c);
    }
    if (auto local = managed_local()) out.erase(*local);
    return out;
  }

  void publish(const std::map<std::string, std::string> &reasons) {
    std::set<std::string> now = aggregate();
    for (const auto &n : reported_) {
      if (now.count(n) != 0) continue;
      auto r = reasons.find(n);
      node_down(n, r != reasons.end() ? r->second : std::string());
    }
    for (const auto &n : now)
      if (reported_.count(n) == 0) node_up(n);
    reported_ = std::move(now);
  }

  void show_status() {
    std::string text;
    if (!local_) {
      for (const auto &[id, v] : views_)
        text = v.up ? v.name + " connected"
                    : node_ + " " + (v.error.empty() ? "connecting" : "not connected: " + v.error);
    } else {
      std::size_t up = 0, managed = 0;
      for (const auto &[id, v] : views_) {
        if (v.hidden) continue;
        ++managed;
        if (v.up) ++up;
      }
      text = std::to_string(up) + " of " + std::to_string(managed) + " local nodes connected";
      if (!epmd_error_.empty()) text += "; epmd: " + epmd_error_;
    }
    try {
      host().set_status("managed", text.substr(0, 500));
    } catch (...) {
      // a status line is not worth failing for
    }
  }

  // Configuration (fixed after init; session threads read some of it).
  std::string node_;
  bool local_ = false;
  milliseconds connect_timeout_{5000}, rpc_timeout_{15000}, local_poll_interval_{2000};
  std::optional<milliseconds> list_interval_;
  uint16_t epmd_port_ = 4369;
  std::string cookie_;  // when it comes from the option or the environment
  std::string cookie_file_;
  std::string cookie_source_;
  erl::NodeIdentity self_;

  // Loop-thread state.
  bool running_ = false;
  std::map<uint64_t, View> views_;
  uint64_t next_session_ = 0;
  uint64_t next_request_ = 0;
  std::map<Id, Pending> pending_;
  std::vector<Held> held_;
  bool discovered_ = false;          // nodes = "local": epmd answered (or failed) once
  std::map<uint64_t, Id> requests_;  // session request -> host operation
  std::set<std::string> reported_;   // what node_up/node_down told the host
  std::set<std::string> wanted_;     // nodes the host asked to connect (and not to disconnect)
  std::string epmd_error_;

  std::thread discovery_;
  erl::Canceller discovery_cancel_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(ErlangTransport);
