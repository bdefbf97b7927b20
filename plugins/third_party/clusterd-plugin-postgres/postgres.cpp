// Strategy "postgres": libcluster_postgres's LibclusterPostgres.Strategy. Every node LISTENs on
// a PostgreSQL channel and sends `NOTIFY "<channel>", '<node name>'` at once and then every
// heartbeat_interval; every node heard is reported. Wire-compatible with libcluster_postgres
// (the same SQL, byte for byte), so clusterd-managed nodes and Elixir nodes find each other,
// and on purpose different where libcluster_postgres is weak:
//  - channel_name is required: libcluster_postgres defaults it to the Erlang cookie, which puts
//    the distribution secret into pg_stat_activity, pg_listening_channels() and server logs,
//    and any fixed default would merge unrelated clusters that share a database;
//  - a node not heard for expire_after is reported lost ("infinity": never, as
//    libcluster_postgres); expiry pauses while the database is unreachable, since silence then
//    says nothing about the nodes;
//  - a lost or refused connection is retried with the SDK's backoff (libcluster_postgres stays
//    idle), the last good node set kept meanwhile; the heartbeat goes out with the LISTEN, and
//    a node hearing a new one answers with its own at once, so a new node knows and is known
//    within one round trip;
//  - payloads that are not node names are refused and counted, never connected to.
// libpq runs asynchronously on the host's fd service: a non-blocking connect (PQconnectPoll),
// then PQsendQuery / PQflush / PQconsumeInput / PQnotifies on readiness. One connection both
// listens and notifies; no thread.
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <clusterd/plugin.hpp>

#include "notify.hpp"

namespace {

namespace opt = clusterd::option;
namespace pg = clusterd_postgres;
using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

// Nodes remembered at once: anyone allowed to NOTIFY on the channel must not grow memory
// without bound.
constexpr std::size_t kMaxPeers = 4096;
// Names listed in the status ("peers heard"); the count is always complete.
constexpr std::size_t kMaxListed = 32;

struct ConnDeleter {
  void operator()(PGconn *conn) const noexcept { PQfinish(conn); }
};
using Connection = std::unique_ptr<PGconn, ConnDeleter>;

// libpq's messages span lines ("...failed: FATAL:  password authentication failed..."): one
// line for the log and the status.
std::string one_line(const char *message) {
  std::string out;
  for (const char *p = message != nullptr ? message : ""; *p != '\0'; ++p) {
    const char c = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "unknown error" : out;
}

// A DNS name, not an IP address, a socket directory or a comma-separated host list (all
// of which libpq handles without a lookup, or as a whole).
bool is_host_name(const std::string &host) {
  unsigned char address[sizeof(in6_addr)];
  return !host.empty() && host[0] != '/' && host[0] != '@' && host.find(',') == std::string::npos &&
         ::inet_pton(AF_INET, host.c_str(), address) != 1 &&
         ::inet_pton(AF_INET6, host.c_str(), address) != 1;
}

std::string ms_text(milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

class PostgresStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "postgres";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Nodes that announce themselves with NOTIFY on a PostgreSQL channel (libcluster_postgres's "
      "LibclusterPostgres.Strategy, wire-compatible)";
  static constexpr const char *kAliases[] = {
      "LibclusterPostgres.Strategy", "Elixir.LibclusterPostgres.Strategy",
      "Cluster.Strategy.Postgres", "Elixir.Cluster.Strategy.Postgres"};
  // No CLUSTERD_PLUGIN_DISCONNECTS_REMOVED: like libcluster_postgres, never disconnects.
  static constexpr uint32_t kFlags = 0;
  static constexpr clusterd_option_t kOptions[] = {
      opt::required(opt::string(
          "channel_name",
          "Channel to LISTEN and NOTIFY on, the same on every node (libcluster_postgres: set "
          "it there too; its default is the Erlang cookie, which would leak the secret)")),
      opt::conflicts(
          opt::nonempty(opt::string("hostname",
                                    "Server host name or IP address, or a Unix-socket "
                                    "directory; unset: from url/service, PGHOST, else the "
                                    "local socket")),
          "socket_dir"),
      opt::nonempty(opt::string("socket_dir", "Directory of the server's Unix socket")),
      opt::range(opt::integer("port", "Server port; unset: from url/service, PGPORT, else 5432"), 1,
                 65535),
      opt::nonempty(opt::string("database", "Database; unset: from url/service, else the user")),
      opt::nonempty(opt::string("username",
                                "Role to connect as; unset: from url/service, else "
                                "the system user")),
      opt::secret(opt::string("password", "Password; unset: from url, PGPASSWORD or ~/.pgpass")),
      opt::boolean("ssl",
                   "true: require TLS (sslmode=require); false: never (sslmode=disable); "
                   "unset: the url's sslmode, else libpq's \"prefer\""),
      opt::string_list("parameters",
                       "Server run-time parameters, \"name=value\" (Postgrex's parameters), "
                       "e.g. [\"application_name=web\"]"),
      opt::nonempty(opt::secret(opt::string(
          "url",
          "libpq connection URI or key=value string (postgresql://user@host/db?sslmode="
          "verify-full); the options above override its parts; a secret, as it may hold a "
          "password"))),
      opt::nonempty(opt::string("service",
                                "Service in the libpq service file (PGSERVICEFILE, "
                                "~/.pg_service.conf or the system's pg_service.conf)")),
      opt::format(opt::string("node_name",
                              "Name to announce; default: the local node the transport reports"),
                  CLUSTERD_FORMAT_NODE_NAME),
      opt::finite(opt::positive(
          opt::duration("heartbeat_interval",
                        "Time between heartbeats (libcluster_postgres: 5000 ms)", "\"5s\""))),
      opt::positive(opt::duration("expire_after",
                                  "A node not heard for this long is reported lost "
                                  "(\"infinity\": never, as libcluster_postgres)",
                                  "\"30s\"")),
      opt::finite(opt::positive(
          opt::duration("connect_timeout", "Time limit of one connection attempt", "\"10s\""))),
      opt::finite(opt::positive(opt::duration(
          "query_timeout",
          "A LISTEN or NOTIFY unanswered this long means a dead connection: reconnect",
          "\"10s\""))),
      opt::finite(opt::positive(
          opt::duration("reconnect_initial",
                        "First wait before reconnecting (doubling, with jitter)", "\"500ms\""))),
      opt::finite(opt::positive(
          opt::duration("reconnect_max", "Longest wait before reconnecting", "\"30s\""))),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    if (auto problem = pg::channel_problem(config.string("channel_name")); !problem.empty())
      problems.add("channel_name", problem);
    if (auto parameters = config.optional_strings("parameters")) {
      std::string options, application_name;
      if (auto problem = pg::startup_options(*parameters, options, application_name);
          !problem.empty())
        problems.add("parameters", problem);
    }
    if (config.optional_string("node_name") == "nonode@nohost")
      problems.add("node_name", "nonode@nohost is a node without a name; it cannot be announced");
    const auto expire = config.duration("expire_after");
    if (!clusterd::is_infinite(expire) && expire <= config.duration("heartbeat_interval"))
      problems.add("expire_after",
                   "must be longer than heartbeat_interval (several heartbeats: a node is lost "
                   "after missing them all)");
    if (config.duration("reconnect_max") < config.duration("reconnect_initial"))
      problems.add("reconnect_max", "must not be shorter than reconnect_initial");
  }

  void init(const clusterd::Config &config) override {
    channel_ = config.string("channel_name");
    node_name_ = config.optional_string("node_name");
    interval_ = config.duration("heartbeat_interval");
    expire_after_ = config.duration("expire_after");
    connect_timeout_ = config.duration("connect_timeout");
    query_timeout_ = config.duration("query_timeout");
    backoff_.emplace(config.duration("reconnect_initial"), config.duration("reconnect_max"));

    // Later entries override earlier ones: the url first, then the explicit options.
    if (auto url = config.optional_string("url")) {
      keyword("dbname", *url);
      expand_dbname_ = 1;
    }
    keyword("application_name", "clusterd");
    if (auto v = config.optional_string("service")) keyword("service", *v);
    if (auto v = config.optional_string("hostname")) {
      keyword("host", *v);
      if (is_host_name(*v)) lookup_name_ = *v;
    }
    if (auto v = config.optional_string("socket_dir")) keyword("host", *v);
    if (auto v = config.optional_integer("port")) keyword("port", std::to_string(*v));
    if (auto v = config.optional_string("database")) keyword("dbname", *v);
    if (auto v = config.optional_string("username")) keyword("user", *v);
    if (auto v = config.optional_string("password")) keyword("password", *v);
    if (auto v = config.optional_boolean("ssl")) keyword("sslmode", *v ? "require" : "disable");
    if (auto parameters = config.optional_strings("parameters")) {
      std::string options, application_name;
      pg::startup_options(*parameters, options, application_name);  // validate() checked them
      if (!options.empty()) keyword("options", options);
      if (!application_name.empty()) keyword("application_name", application_name);
    }
  }

  void start() override {
    host().set_status("channel", channel_);
    host().set_status("peers", "0");
    announce();
    connect();
  }

  void stop() override {
    close_connection();
    retry_.reset();
  }

  // The host calls this when the local node changes, and `clusterctl` to ask for a round:
  // announce at once.
  void refresh() override {
    announce();
    send_heartbeat();
  }

 private:
  void keyword(const char *key, std::string value) {
    keywords_.emplace_back(key);
    values_.push_back(std::move(value));
  }

  // ---- connecting ----

  // libpq resolves host names with getaddrinfo inside PQconnectPoll, which would block the
  // loop on a slow DNS: a `hostname` that is a name is looked up with the host's DNS service
  // (c-ares) first and handed to libpq as hostaddr (the name still serves TLS checks and
  // ~/.pgpass). A name the DNS does not know (/etc/hosts, an AAAA-only host) is left to libpq;
  // a lookup that times out fails the attempt, as getaddrinfo would block on it too. Names from
  // url or service are left to libpq.
  void connect() {
    if (!lookup_name_) return start_connect("");
    host().set_status("connection", "looking up " + *lookup_name_);
    lookup_ = clusterd::DnsQuery::resolve(
        host(), CLUSTERD_DNS_A, *lookup_name_,
        [this](const clusterd::DnsResult &result) {
          for (const auto &record : result.records)
            if (!record.address.empty()) return start_connect(record.address);
          if (result.status == CLUSTERD_E_TIMEOUT)
            return lost("cannot resolve " + *lookup_name_ + ": " + result.error);
          start_connect("");
        },
        {}, connect_timeout_);
  }

  void start_connect(const std::string &hostaddr) {
    std::vector<const char *> keys, values;
    for (std::size_t i = 0; i < keywords_.size(); ++i) {
      keys.push_back(keywords_[i].c_str());
      values.push_back(values_[i].c_str());
    }
    if (!hostaddr.empty()) {
      keys.push_back("hostaddr");
      values.push_back(hostaddr.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    host().set_status("connection", "connecting");
    conn_.reset(PQconnectStartParams(keys.data(), values.data(), expand_dbname_));
    if (!conn_) return lost("cannot connect: out of memory");
    if (PQstatus(conn_.get()) == CONNECTION_BAD)
      return lost("cannot connect: " + one_line(PQerrorMessage(conn_.get())));
    connect_deadline_ = clusterd::Timer::after(host(), connect_timeout_, [this] {
      lost("cannot connect to " + server() + ": no answer within " + ms_text(connect_timeout_));
    });
    connect_wait(PGRES_POLLING_WRITING);  // libpq's rule for the first PQconnectPoll
  }

  void connect_wait(PostgresPollingStatusType status) {
    const int fd = PQsocket(conn_.get());
    if (fd < 0) return lost("cannot connect: libpq has no socket");
    const uint32_t events = status == PGRES_POLLING_READING ? CLUSTERD_FD_READ : CLUSTERD_FD_WRITE;
    watch_ = clusterd::FdWatch::watch(host(), fd, events, [this](uint32_t) { connect_step(); });
  }

  void connect_step() {
    // libpq may close the socket and open another (next address, TLS fallback): unwatch first.
    watch_.reset();
    switch (PQconnectPoll(conn_.get())) {
      case PGRES_POLLING_OK:
        return connected();
      case PGRES_POLLING_FAILED:
        return lost("cannot connect: " + one_line(PQerrorMessage(conn_.get())));
      case PGRES_POLLING_READING:
        return connect_wait(PGRES_POLLING_READING);
      default:
        return connect_wait(PGRES_POLLING_WRITING);
    }
  }

  void connected() {
    connect_deadline_.reset();
    if (PQsetnonblocking(conn_.get(), 1) != 0)
      return lost("cannot switch the connection to non-blocking mode: " +
                  one_line(PQerrorMessage(conn_.get())));
    watch_ = clusterd::FdWatch::watch(host(), PQsocket(conn_.get()), CLUSTERD_FD_READ,
                                      [this](uint32_t events) { on_ready(events); });
    host().set_status("connection", "connected to " + server() + ", LISTEN pending");
    // LISTEN and the first heartbeat in one round trip: a new node is known at once.
    std::string sql = pg::listen_sql(channel_);
    if (!announced_.empty()) sql += "; " + pg::notify_sql(channel_, announced_);
    send(sql, "LISTEN");
  }

  // Where the connection goes, for messages: never the password.
  std::string server() const {
    if (!conn_) return "the server";
    const char *h = PQhost(conn_.get());
    const char *p = PQport(conn_.get());
    const char *db = PQdb(conn_.get());
    const char *user = PQuser(conn_.get());
    std::string text = "PostgreSQL ";
    text += (h != nullptr && *h != '\0') ? h : "(default)";
    if (p != nullptr && *p != '\0') text += std::string(":") + p;
    if (db != nullptr && *db != '\0') text += std::string(" database ") + db;
    if (user != nullptr && *user != '\0') text += std::string(" as ") + user;
    return text;
  }

  // The connection failed or broke: keep the node set, say why, retry after the backoff.
  void lost(const std::string &reason) {
    close_connection();
    failing_ = true;
    discovery_failed(reason);  // the host keeps the last good set and logs once per reason
    const milliseconds delay = backoff_->next();
    host().set_status("connection", "down (reconnecting in " + ms_text(delay) + "): " + reason);
    host().set_status("failed attempts", std::to_string(backoff_->attempts()));
    retry_ = clusterd::Timer::after(host(), delay, [this] { connect(); });
  }

  void close_connection() {
    lookup_.reset();
    heartbeat_.reset();
    query_deadline_.reset();
    connect_deadline_.reset();
    expiry_.reset();  // silence while disconnected says nothing about the nodes
    watch_.reset();   // before PQfinish closes the socket
    conn_.reset();
    listening_ = false;
    busy_ = false;
    beat_pending_ = false;
  }

  // ---- queries ----

  void send(const std::string &sql, const char *what) {
    if (PQsendQuery(conn_.get(), sql.c_str()) == 0)
      return lost(std::string("cannot send ") + what + ": " +
                  one_line(PQerrorMessage(conn_.get())));
    busy_ = true;
    pending_ = what;
    query_deadline_ = clusterd::Timer::after(host(), query_timeout_, [this] {
      lost(server() + ": no answer to " + pending_ + " within " + ms_text(query_timeout_));
    });
    flush();
  }

  void flush() {
    const int more = PQflush(conn_.get());
    if (more < 0) return lost("connection lost: " + one_line(PQerrorMessage(conn_.get())));
    watch_.modify(more == 1 ? CLUSTERD_FD_READ | CLUSTERD_FD_WRITE : CLUSTERD_FD_READ);
  }

  void on_ready(uint32_t events) {
    if ((events & CLUSTERD_FD_WRITE) != 0) {
      flush();
      if (!conn_) return;
    }
    if ((events & (CLUSTERD_FD_READ | CLUSTERD_FD_ERROR)) != 0) receive();
  }

  void receive() {
    PGconn *conn = conn_.get();
    if (PQconsumeInput(conn) == 0)
      return lost("connection to " + server() + " lost: " + one_line(PQerrorMessage(conn)));
    std::string error;
    while (busy_ && PQisBusy(conn) == 0) {
      PGresult *result = PQgetResult(conn);
      if (result == nullptr) {
        busy_ = false;
        query_deadline_.reset();
        break;
      }
      if (PQresultStatus(result) != PGRES_COMMAND_OK && error.empty())
        error = one_line(PQresultErrorMessage(result));
      PQclear(result);
    }
    if (!error.empty()) return lost(pending_ + " on " + server() + " failed: " + error);
    std::vector<std::pair<std::string, int>> heartbeats;
    while (PGnotify *notify = PQnotifies(conn)) {
      if (channel_ == notify->relname)
        heartbeats.emplace_back(notify->extra != nullptr ? notify->extra : "", notify->be_pid);
      PQfreemem(notify);
    }
    if (PQstatus(conn) == CONNECTION_BAD)
      return lost("connection to " + server() + " lost: " + one_line(PQerrorMessage(conn)));
    if (!busy_ && !listening_) listening();
    // heard() may send, and a failed send closes the connection: `conn` is not used below.
    for (const auto &[payload, pid] : heartbeats) heard(payload, pid);
    if (listening_ && !busy_ && beat_pending_) send_heartbeat();
  }

  // The LISTEN is in place (and the first heartbeat sent with it).
  void listening() {
    listening_ = true;
    backoff_->reset();
    host().clear_status("failed attempts");
    host().set_status("connection", "listening, connected to " + server());
    if (failing_) {
      host().info("listening on channel \"" + channel_ + "\" of " + server());
      // Back from a failure: what was heard before still stands; saying so clears the error.
      for (const auto &[node, last] : peers_) node_seen(node);
      if (!announced_.empty() && local_node_name() == announced_) node_seen(announced_);
    }
    failing_ = false;
    // Silence while disconnected said nothing: every node gets a full expire_after again.
    const SteadyTime now = std::chrono::steady_clock::now();
    for (auto &entry : peers_) entry.second = now;
    arm_expiry();
    heartbeat_ = clusterd::Timer::every(host(), interval_, [this] { send_heartbeat(); });
  }

  // ---- heartbeats ----

  // The name to announce: node_name, else the transport's local node; nullopt while unknown.
  std::optional<std::string> own_name() {
    if (node_name_) return node_name_;
    auto local = local_node_name();
    if (local && pg::classify_payload(*local) != pg::Payload::kNode) return std::nullopt;
    return local;
  }

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
  }

  void send_heartbeat() {
    if (announced_.empty()) announce();
    if (!listening_ || announced_.empty()) return;
    // libpq runs one query at a time: a beat asked for meanwhile goes out when it is answered
    // (and the query's deadline watches the connection).
    beat_pending_ = busy_;
    if (!busy_) send(pg::notify_sql(channel_, announced_), "NOTIFY");
  }

  // ---- receiving ----

  void heard(const std::string &payload, int pid) {
    const pg::Payload kind = pg::classify_payload(payload);
    if (kind != pg::Payload::kNode) return refused(kind, payload, pid);
    if (payload == announced_) return;  // our own, delivered to us as a listener too
    host().count("postgres_heartbeats_received_total", "Valid heartbeats heard from peers.");
    const SteadyTime now = std::chrono::steady_clock::now();
    if (auto it = peers_.find(payload); it != peers_.end()) {
      it->second = now;
      return;
    }
    if (peers_.size() >= kMaxPeers) {
      host().count("postgres_refused_total", "NOTIFY payloads refused, by reason.", "reason",
                   "too_many_peers");
      return;
    }
    peers_.emplace(payload, now);
    host().info("heard " + payload + " (from backend pid " + std::to_string(pid) + ")");
    node_seen(payload);
    peers_changed();
    arm_expiry();
    // Answer a new node at once, so it knows this one within a round trip too, instead of
    // after up to heartbeat_interval. At most one NOTIFY is in flight, so a flood of new names
    // costs one NOTIFY per round trip at most.
    send_heartbeat();
  }

  void refused(pg::Payload kind, const std::string &payload, int pid) {
    const std::string label = pg::payload_label(kind);
    const std::uint64_t count = ++refusals_[label];
    ++refused_total_;
    host().set_status("refused", std::to_string(refused_total_));
    host().set_status("refused." + label, std::to_string(count));
    host().count("postgres_refused_total", "NOTIFY payloads refused, by reason.", "reason",
                 label.c_str());
    // The 1st, 10th, 100th... of each reason: visible, but a flood cannot flood the log.
    bool power_of_ten = true;
    for (std::uint64_t c = count; c > 1 && power_of_ten; c /= 10) power_of_ten = c % 10 == 0;
    if (power_of_ten)
      host().warn("refused a heartbeat on \"" + channel_ + "\" from backend pid " +
                  std::to_string(pid) + ": '" + pg::printable(payload) +
                  "': " + pg::payload_problem(payload) + " (" + std::to_string(count) +
                  " so far; counted in the status)");
  }

  // ---- expiry ----

  void arm_expiry() {
    if (clusterd::is_infinite(expire_after_) || !listening_ || expiry_.active() || peers_.empty())
      return;
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
      host().info("lost " + node + ": not heard for " + ms_text(expire_after_));
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
  std::string channel_;
  std::optional<std::string> node_name_;
  milliseconds interval_{5000}, expire_after_{30000}, connect_timeout_{10000},
      query_timeout_{10000};
  std::vector<std::string> keywords_, values_;  // libpq connection keywords, in order
  int expand_dbname_ = 0;
  std::optional<std::string> lookup_name_;  // `hostname`, when it is a name to look up
  std::optional<clusterd::Backoff> backoff_;

  // connection
  Connection conn_;
  clusterd::FdWatch watch_;
  clusterd::DnsQuery lookup_;
  clusterd::Timer connect_deadline_, query_deadline_, retry_, heartbeat_, expiry_;
  bool listening_ = false;     // the LISTEN succeeded on this connection
  bool busy_ = false;          // a query is in flight (libpq runs one at a time)
  bool beat_pending_ = false;  // a heartbeat to send once it is answered
  std::string pending_;        // what it is, for messages
  bool failing_ = false;       // the last attempt or connection failed

  // nodes
  std::string announced_;
  std::unordered_map<std::string, SteadyTime> peers_;
  std::unordered_map<std::string, std::uint64_t> refusals_;
  std::uint64_t refused_total_ = 0;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(PostgresStrategy);
