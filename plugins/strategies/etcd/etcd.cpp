// Strategy "etcd": the nodes registered under a prefix of an etcd v3 cluster, through etcd's
// JSON gateway (/v3/..., etcd 3.4 and later) and the host's HTTP client.
//
// Registration: the node puts `<prefix>/<node>` (value: the node name) under a lease of
// `lease_ttl` and keeps the lease alive every third of it. A crashed node stops the keepalives
// and etcd deletes its key when the lease expires; a node that stops revokes its lease, which
// deletes the key at once. A lease etcd no longer knows (it expired while etcd was unreachable)
// is granted anew and the key put again.
//
// Discovery: one range read of `<prefix>/`, then one long-lived watch from the revision after
// it, so joins and leaves arrive as they happen. After the stream breaks (etcd restarted, the
// connection dropped, no data for watch_timeout) the watch resumes from the revision after the
// last event seen; only when that revision was compacted away is the prefix read again.
//
// Errors never shrink the node set: the host keeps the last good set and shows the reason;
// requests are retried with exponential backoff (250 ms doubling up to 30 s, ±20 % jitter),
// on the next of `endpoints` (every member serves the same data). With `username`, a token from
// /v3/auth/authenticate goes into every request; a request refused as unauthenticated (the
// token expired) authenticates again.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

#include "etcd_parse.hpp"
#include "line_buffer.hpp"

namespace {

namespace etcd = clusterd::etcd;
using std::chrono::milliseconds;

constexpr milliseconds kBackoffInitial{250};
constexpr milliseconds kBackoffMax{30000};
constexpr milliseconds kNameWait{1000};      // polls for the transport's local node name
constexpr milliseconds kRevokeTimeout{900};  // stop() must return promptly
constexpr std::uint64_t kMaxRangeBytes = 64ull << 20;
constexpr std::size_t kMaxWatchLine = 16u << 20;  // one watch message (a batch of events)
constexpr std::size_t kHeadBytes = 4096;          // of a watch body, kept for error messages

// The random ±20 % jitter of a backoff, doubled for next time up to kBackoffMax.
class Backoff {
 public:
  milliseconds next() {
    const milliseconds base = current_;
    current_ = std::min(current_ * 2, kBackoffMax);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    return std::max(
        milliseconds(1),
        milliseconds(static_cast<long long>(static_cast<double>(base.count()) * jitter(random_))));
  }
  void reset() { current_ = kBackoffInitial; }

 private:
  milliseconds current_ = kBackoffInitial;
  std::minstd_rand random_{std::random_device{}()};
};

bool is_unauthenticated(const clusterd::HttpResponse &response, const std::string &body) {
  if (response.http_status() == 401) return true;
  const auto error = etcd::parse_error(body);
  return error && error->code == etcd::kUnauthenticated;
}

class EtcdStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "etcd";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Nodes registered under a key prefix of etcd v3 (leased keys, watched), through etcd's "
      "JSON gateway";
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::nonempty(clusterd::option::required(clusterd::option::string_list(
          "endpoints",
          "etcd client URLs (http:// or https://), e.g. [\"https://10.0.0.1:2379\"]; tried in "
          "turn after a failure"))),
      clusterd::option::nonempty(clusterd::option::string(
          "prefix", "Key prefix: each node registers <prefix>/<node name>", "\"/clusterd/nodes\"")),
      clusterd::option::format(
          clusterd::option::nonempty(clusterd::option::string(
              "node_name",
              "The name this node registers; default: the topology transport's local node")),
          CLUSTERD_FORMAT_NODE_NAME),
      clusterd::option::boolean("register", "Register this node (false: only watch the others)",
                                "true"),
      clusterd::option::finite(clusterd::option::at_least(
          clusterd::option::duration(
              "lease_ttl",
              "TTL of the registration's lease: a crashed node disappears after at most this "
              "long (whole seconds; kept alive every third of it)",
              "\"10s\""),
          2000)),
      clusterd::option::finite(clusterd::option::positive(clusterd::option::duration(
          "request_timeout", "Time limit of one request (range, lease, put, authenticate)",
          "\"5s\""))),
      clusterd::option::finite(clusterd::option::at_least(
          clusterd::option::duration(
              "watch_timeout",
              "A watch without any data for this long is resumed on a new connection (catches "
              "silently dead connections)",
              "\"5m\""),
          1000)),
      clusterd::option::nonempty(clusterd::option::string(
          "username", "etcd user: authenticate for a token (needs password)")),
      clusterd::option::secret(clusterd::option::string(
          "password", "Password of `username` (prefer password_file or password_env)")),
      clusterd::option::nonempty(clusterd::option::string(
          "ca_file", "PEM CA bundle that verifies etcd's certificate; default: the system's")),
      clusterd::option::nonempty(clusterd::option::string(
          "cert_file", "PEM client certificate (etcd's --client-cert-auth); needs key_file")),
      clusterd::option::nonempty(
          clusterd::option::string("key_file", "PEM private key of cert_file")),
      clusterd::option::boolean("insecure_skip_tls_verify",
                                "Do not verify etcd's certificate (logs a warning)", "false"),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    for (const std::string &url : config.strings("endpoints"))
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
        problems.add("endpoints", "'" + url + "' is not an http:// or https:// URL");
    if (config.is_set("username") != config.is_set("password"))
      problems.add(config.is_set("username") ? "username" : "password",
                   "username and password go together");
    if (config.is_set("cert_file") != config.is_set("key_file"))
      problems.add(config.is_set("cert_file") ? "cert_file" : "key_file",
                   "cert_file and key_file go together");
    const std::string prefix = config.string("prefix");
    if (prefix.back() == '/')
      problems.add("prefix", "'" + prefix + "' ends with '/' (keys are <prefix>/<node name>)");
  }

  void init(const clusterd::Config &config) override {
    for (std::string url : config.strings("endpoints")) {
      while (url.size() > 8 && url.back() == '/') url.pop_back();
      endpoints_.push_back(std::move(url));
    }
    prefix_ = config.string("prefix") + "/";
    node_name_ = config.optional_string("node_name");
    register_ = config.boolean("register");
    lease_ttl_seconds_ = std::max<long long>(2, config.duration("lease_ttl").count() / 1000);
    request_timeout_ = config.duration("request_timeout");
    watch_timeout_ = config.duration("watch_timeout");
    username_ = config.optional_string("username").value_or("");
    password_ = config.optional_string("password").value_or("");
    ca_file_ = config.optional_string("ca_file").value_or("");
    cert_file_ = config.optional_string("cert_file").value_or("");
    key_file_ = config.optional_string("key_file").value_or("");
    insecure_ = config.boolean("insecure_skip_tls_verify");
    host().set_status("prefix", prefix_);
    if (insecure_)
      host().warn(
          "insecure_skip_tls_verify = true: etcd's certificate is NOT verified; anyone on the "
          "path can impersonate it");
    for (const std::string &url : endpoints_)
      if (!username_.empty() && url.rfind("http://", 0) == 0)
        host().warn("endpoint " + url + " is plain http: the password and token travel in clear");
  }

  void start() override {
    read_all();
    if (register_) session();
  }

  void stop() override {
    watch_call_.reset();
    watch_timer_.reset();
    session_call_.reset();
    session_timer_.reset();
    if (lease_ != 0) revoke_lease();
  }

  // A fresh read unless one is in flight (a live watch needs none).
  void refresh() override {
    if (watch_call_.active()) return;
    read_all();
  }

 private:
  // ---- requests ----

  clusterd::HttpRequest request(const std::string &path, std::string body) const {
    clusterd::HttpRequest r(endpoint() + path);
    r.method("POST").body(std::move(body)).timeout(request_timeout_);
    r.header("Content-Type", "application/json");
    if (!token_.empty()) r.header("Authorization", token_);
    if (insecure_) r.insecure_skip_verify();
    if (!ca_file_.empty()) r.ca_file(ca_file_);
    if (!cert_file_.empty()) r.client_cert(cert_file_, key_file_);
    return r;
  }

  const std::string &endpoint() const { return endpoints_[endpoint_index_ % endpoints_.size()]; }

  // Starts `r` on `call`; false (after `fail` with the reason) when the host refuses.
  bool start_call(clusterd::HttpCall &call, const clusterd::HttpRequest &r,
                  std::function<void(const clusterd::HttpResponse &)> done,
                  const std::function<void(const std::string &)> &fail) {
    try {
      call = clusterd::HttpCall::start(host(), r, std::move(done));
      return true;
    } catch (const std::exception &e) {
      fail(r.url() + ": " + e.what());
      return false;
    }
  }

  // Why a unary request failed, or "" when it succeeded (HTTP 2xx). Forgets the token when
  // etcd says it is no longer valid.
  std::string failure(const std::string &what, const clusterd::HttpResponse &response) {
    if (response.status() != CLUSTERD_OK) return what + ": " + std::string(response.error());
    const std::string body(response.body());
    if (is_unauthenticated(response, body)) token_.clear();
    if (response.ok()) return {};
    std::string text = what + ": HTTP " + std::to_string(response.http_status());
    if (const auto e = etcd::parse_error(body)) text += ": " + etcd::describe(*e);
    return text;
  }

  // Runs `then` once a token is at hand (at once without `username`).
  void authenticated(clusterd::HttpCall &call, std::function<void()> then,
                     std::function<void(const std::string &)> fail) {
    if (username_.empty() || !token_.empty()) return then();
    const clusterd::HttpRequest r =
        request("/v3/auth/authenticate", etcd::authenticate_request(username_, password_));
    const std::string what = "authenticate as '" + username_ + "' at " + endpoint();
    start_call(
        call, r,
        [this, what, then, fail](const clusterd::HttpResponse &response) {
          if (std::string error = failure(what, response); !error.empty()) return fail(error);
          if (std::string error = etcd::parse_authenticate(response.body(), token_); !error.empty())
            return fail(what + ": " + error);
          then();
        },
        fail);
  }

  // ---- discovery: range read, then watch ----

  void read_all() {
    watch_timer_.reset();
    authenticated(
        watch_call_, [this] { range(); }, [this](const std::string &e) { discovery_error(e); });
  }

  void range() {
    const std::string what = "read " + prefix_ + " at " + endpoint();
    clusterd::HttpRequest r = request("/v3/kv/range", etcd::range_request(prefix_));
    r.max_body_bytes(kMaxRangeBytes);
    start_call(
        watch_call_, r,
        [this, what](const clusterd::HttpResponse &response) {
          if (std::string error = failure(what, response); !error.empty())
            return discovery_error(error);
          etcd::RangeResult result;
          if (std::string error = etcd::parse_range(response.body(), result); !error.empty())
            return discovery_error(what + ": " + error);
          nodes_.clear();
          for (const etcd::KeyValue &kv : result.kvs) add_key(kv.key);
          discovery_succeeded();
          publish();
          watch(result.revision + 1);
        },
        [this](const std::string &e) { discovery_error(e); });
  }

  void watch(std::int64_t from) {
    watch_timer_.reset();
    next_revision_ = from;
    authenticated(
        watch_call_, [this] { open_watch(); },
        [this](const std::string &e) { discovery_error(e); });
  }

  void open_watch() {
    watch_what_ = "watch " + prefix_ + " at " + endpoint();
    lines_.clear();
    watch_head_.clear();
    watch_error_.clear();
    watch_compacted_ = false;
    watch_unauthenticated_ = false;
    watch_created_ = false;
    clusterd::HttpRequest r = request("/v3/watch", etcd::watch_request(prefix_, next_revision_));
    // For a stream the timeout bounds the time without data.
    r.timeout(watch_timeout_).on_data([this](std::string_view chunk) {
      return on_watch_data(chunk);
    });
    if (start_call(
            watch_call_, r,
            [this](const clusterd::HttpResponse &response) { on_watch_end(response); },
            [this](const std::string &e) { discovery_error(e); }))
      host().set_status("watch", "from revision " + std::to_string(next_revision_));
  }

  bool on_watch_data(std::string_view chunk) {
    if (watch_head_.size() < kHeadBytes)
      watch_head_.append(chunk.substr(0, kHeadBytes - watch_head_.size()));
    dirty_ = false;
    const bool go_on =
        lines_.feed(chunk, [this](std::string_view line) { return on_watch_line(line); });
    if (lines_.overflow())
      watch_error_ =
          watch_what_ + ": a message larger than " + std::to_string(kMaxWatchLine) + " bytes";
    if (dirty_) publish();  // once per chunk: a burst of events costs one reconcile
    return go_on;
  }

  bool on_watch_line(std::string_view line) {
    etcd::WatchMessage message;
    if (std::string error = etcd::parse_watch_line(line, message); !error.empty()) {
      watch_error_ = watch_what_ + ": " + error;
      return false;
    }
    if (message.error) {
      watch_unauthenticated_ = message.error->code == etcd::kUnauthenticated;
      watch_error_ = watch_what_ + ": " + etcd::describe(*message.error);
      return false;
    }
    if (message.canceled) {
      if (message.compact_revision > 0) {
        watch_compacted_ = true;
      } else {
        watch_unauthenticated_ = message.cancel_reason.find("Unauthenticated") != std::string::npos;
        watch_error_ = watch_what_ + ": cancelled by etcd: " + message.cancel_reason;
      }
      return false;
    }
    if (message.created) {
      watch_created_ = true;
      if (!failure_.empty()) discovery_succeeded();  // resumed: healthy again
    }
    for (const etcd::Event &event : message.events) {
      if (event.type == etcd::EventType::kPut) {
        dirty_ = add_key(event.key) || dirty_;
      } else {
        dirty_ = remove_key(event.key) || dirty_;
      }
    }
    if (const std::int64_t resume = message.resume_revision(); resume > next_revision_)
      next_revision_ = resume;
    return true;
  }

  void on_watch_end(const clusterd::HttpResponse &response) {
    if (watch_compacted_) {
      // The revision to resume from is gone (compaction): the way back is a fresh read.
      host().info(watch_what_ + ": revision " + std::to_string(next_revision_) +
                  " was compacted; reading " + prefix_ + " again");
      return read_all();
    }
    if (watch_unauthenticated_) token_.clear();
    if (watch_created_ && watch_error_.empty() && response.status() == CLUSTERD_E_TIMEOUT) {
      // An established watch without data for watch_timeout: routine on a quiet prefix.
      host().debug(watch_what_ + ": nothing for a while; resuming on a new connection");
      return watch(next_revision_);
    }
    std::string reason = watch_error_;
    if (reason.empty() && response.status() != CLUSTERD_OK)
      reason = watch_what_ + ": " + std::string(response.error());
    if (reason.empty() && !response.ok()) {
      reason = watch_what_ + ": HTTP " + std::to_string(response.http_status());
      if (const auto e = etcd::parse_error(watch_head_)) reason += ": " + e->message;
    }
    if (reason.empty()) reason = watch_what_ + ": the stream ended";
    // Resume from the revision after the last event: nothing in between is lost.
    discovery_error(reason, /*resume=*/true);
  }

  // `key` is <prefix>/<node>: the node joins. True when the set changed.
  bool add_key(const std::string &key) {
    if (key.size() <= prefix_.size() || key.compare(0, prefix_.size(), prefix_) != 0) return false;
    return nodes_.insert(key.substr(prefix_.size())).second;
  }

  bool remove_key(const std::string &key) {
    if (key.size() <= prefix_.size() || key.compare(0, prefix_.size(), prefix_) != 0) return false;
    return nodes_.erase(key.substr(prefix_.size())) > 0;
  }

  void publish() {
    std::vector<std::string> names(nodes_.begin(), nodes_.end());
    if (names != reported_ || !reported_once_ || recovered_) {
      report_nodes(names);
      reported_ = std::move(names);
      reported_once_ = true;
      recovered_ = false;
    }
  }

  void discovery_succeeded() {
    if (!failure_.empty()) {
      host().info("etcd answers again at " + endpoint());
      recovered_ = true;  // report even an unchanged set: it clears the host's error
      publish();
    }
    failure_.clear();
    watch_backoff_.reset();
    host().clear_status("retry");
  }

  // The host keeps the last good set; retry later: resume the watch when a revision is known,
  // else read everything again.
  void discovery_error(const std::string &reason, bool resume = false) {
    watch_call_.reset();
    ++endpoint_index_;  // any member serves the same data: try the next one
    failure_ = reason;
    discovery_failed(reason);
    const milliseconds delay = watch_backoff_.next();
    const bool can_resume = resume && next_revision_ > 0;
    host().set_status("retry", std::string(can_resume ? "watch resumes" : "a fresh read") + " in " +
                                   std::to_string(delay.count()) + " ms");
    watch_timer_ = clusterd::Timer::after(host(), delay, [this, can_resume] {
      if (can_resume) {
        watch(next_revision_);
      } else {
        read_all();
      }
    });
  }

  // ---- registration: lease, key, keepalive ----

  std::optional<std::string> own_name() {
    if (node_name_) return node_name_;
    return local_node_name();
  }

  // The next step towards a live registration: a token, a lease, the key; then keepalives.
  void session() {
    session_timer_.reset();
    const std::optional<std::string> name = own_name();
    if (!name) {
      host().set_status("registration", "waiting for the transport's local node name");
      session_timer_ = clusterd::Timer::after(host(), kNameWait, [this] { session(); });
      return;
    }
    authenticated(
        session_call_,
        [this, name = *name] {
          if (lease_ == 0) return grant();
          if (registered_key_ != prefix_ + name) return put(name);
          session_timer_ =
              clusterd::Timer::after(host(), keepalive_interval(), [this] { keepalive(); });
        },
        [this](const std::string &e) { session_error(e); });
  }

  milliseconds keepalive_interval() const { return milliseconds(lease_ttl_seconds_ * 1000 / 3); }

  void grant() {
    const std::string what = "grant a lease at " + endpoint();
    start_call(
        session_call_, request("/v3/lease/grant", etcd::grant_request(lease_ttl_seconds_)),
        [this, what](const clusterd::HttpResponse &response) {
          if (std::string error = failure(what, response); !error.empty())
            return session_error(error);
          etcd::Lease lease;
          if (std::string error = etcd::parse_grant(response.body(), lease); !error.empty())
            return session_error(what + ": " + error);
          lease_ = lease.id;
          registered_key_.clear();
          session();
        },
        [this](const std::string &e) { session_error(e); });
  }

  void put(const std::string &name) {
    const std::string key = prefix_ + name;
    const std::string what = "put " + key + " at " + endpoint();
    start_call(
        session_call_, request("/v3/kv/put", etcd::put_request(key, name, lease_)),
        [this, what, key](const clusterd::HttpResponse &response) {
          if (std::string error = failure(what, response); !error.empty()) {
            // A lease etcd does not know any more: grant a new one.
            if (const auto e = etcd::parse_error(response.body()); e && e->code == 5) lease_ = 0;
            return session_error(error);
          }
          const std::string old_key = std::exchange(registered_key_, key);
          session_succeeded("registered " + key + " (lease " + std::to_string(lease_) + ")");
          if (!old_key.empty()) return remove_old_key(old_key);
          session();
        },
        [this](const std::string &e) { session_error(e); });
  }

  // The local node was renamed: its old key goes (the lease still holds it).
  void remove_old_key(const std::string &key) {
    const std::string what = "delete " + key + " at " + endpoint();
    start_call(
        session_call_, request("/v3/kv/deleterange", etcd::delete_request(key)),
        [this, what](const clusterd::HttpResponse &response) {
          if (std::string error = failure(what, response); !error.empty())
            host().warn(error + " (it goes when the lease expires)");
          session();
        },
        [this](const std::string &e) { session_error(e); });
  }

  void keepalive() {
    const std::string what = "keep lease " + std::to_string(lease_) + " alive at " + endpoint();
    start_call(
        session_call_, request("/v3/lease/keepalive", etcd::keepalive_request(lease_)),
        [this, what](const clusterd::HttpResponse &response) {
          if (std::string error = failure(what, response); !error.empty())
            return session_error(error);
          etcd::Lease lease;
          if (std::string error = etcd::parse_keepalive(response.body(), lease); !error.empty())
            return session_error(what + ": " + error);
          if (lease.ttl <= 0) {
            host().warn("lease " + std::to_string(lease_) + " expired (etcd was out of reach " +
                        "longer than lease_ttl); registering again");
            lease_ = 0;
            registered_key_.clear();
          } else if (!session_failure_.empty()) {
            session_succeeded("registered " + registered_key_ + " (lease " +
                              std::to_string(lease_) + ")");
          }
          session();
        },
        [this](const std::string &e) { session_error(e); });
  }

  void session_succeeded(const std::string &state) {
    if (!session_failure_.empty()) host().info("registration works again: " + state);
    session_failure_.clear();
    session_backoff_.reset();
    host().set_status("registration", state);
  }

  // Logged once per change of reason; retried with backoff (the lease, if any, is kept: etcd
  // holds it for its TTL).
  void session_error(const std::string &reason) {
    session_call_.reset();
    ++endpoint_index_;
    if (reason != session_failure_) host().warn("registration: " + reason);
    session_failure_ = reason;
    const milliseconds delay = std::min(session_backoff_.next(), keepalive_interval());
    host().set_status("registration",
                      reason + "; retry in " + std::to_string(delay.count()) + " ms");
    session_timer_ = clusterd::Timer::after(host(), delay, [this] {
      if (lease_ != 0 && !registered_key_.empty()) return keepalive();
      session();
    });
  }

  // The node leaves: revoking the lease deletes its key, so the others see it go at once
  // rather than after lease_ttl. Blocking, bounded by kRevokeTimeout: stop() cannot wait for
  // an asynchronous request (the host cancels them when stop() returns). On failure the lease
  // simply expires.
  void revoke_lease() {
    CURL *curl = curl_easy_init();
    if (curl == nullptr) return;
    const std::string url = endpoint() + "/v3/lease/revoke";
    const std::string body = etcd::revoke_request(lease_);
    curl_slist *headers = curl_slist_append(nullptr, "Content-Type: application/json");
    const std::string auth = "Authorization: " + token_;
    if (!token_.empty()) headers = curl_slist_append(headers, auth.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(kRevokeTimeout.count()));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(
        curl, CURLOPT_WRITEFUNCTION,
        +[](char *, size_t size, size_t n, void *) { return size * n; });
    if (!ca_file_.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file_.c_str());
    if (!cert_file_.empty()) {
      curl_easy_setopt(curl, CURLOPT_SSLCERT, cert_file_.c_str());
      curl_easy_setopt(curl, CURLOPT_SSLKEY, key_file_.c_str());
    }
    if (insecure_) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    const CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (code != CURLE_OK || status / 100 != 2)
      host().info("could not revoke lease " + std::to_string(lease_) + " at " + endpoint() + ": " +
                  (code != CURLE_OK ? curl_easy_strerror(code) : "HTTP " + std::to_string(status)) +
                  "; " + registered_key_ + " goes when the lease expires");
    lease_ = 0;
  }

  // Configuration.
  std::vector<std::string> endpoints_;
  std::string prefix_;  // with the trailing '/'
  std::optional<std::string> node_name_;
  bool register_ = true, insecure_ = false;
  long long lease_ttl_seconds_ = 10;
  milliseconds request_timeout_{5000}, watch_timeout_{300000};
  std::string username_, password_, ca_file_, cert_file_, key_file_;

  // Shared.
  std::size_t endpoint_index_ = 0;
  std::string token_;

  // Discovery.
  std::set<std::string> nodes_;
  std::vector<std::string> reported_;
  bool reported_once_ = false, recovered_ = false, dirty_ = false;
  std::int64_t next_revision_ = 0;
  std::string failure_;
  Backoff watch_backoff_;
  clusterd::HttpCall watch_call_;
  clusterd::Timer watch_timer_;
  clusterd::LineBuffer lines_{kMaxWatchLine};
  std::string watch_what_, watch_head_, watch_error_;
  bool watch_created_ = false, watch_compacted_ = false, watch_unauthenticated_ = false;

  // Registration.
  std::int64_t lease_ = 0;
  std::string registered_key_, session_failure_;
  Backoff session_backoff_;
  clusterd::HttpCall session_call_;
  clusterd::Timer session_timer_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(EtcdStrategy);
