// Strategy "consul": libcluster_consul's Cluster.Strategy.Consul — the instances of a Consul
// service, named by node_name_template ("<%= node_basename %>@<%= ip %>"), from the endpoints
// of list_using: Agent (/v1/agent/services), Catalog (/v1/catalog/service/S), Health
// (/v1/health/service/S, optionally passing only) and Multisite (those once per datacenter: a
// list, or all of /v1/catalog/datacenters).
//
// Each query (an endpoint in a datacenter) is a watch of its own. Catalog and Health are
// blocking queries (index + wait, the reply's X-Consul-Index): a change reaches the host as
// soon as Consul answers, not a polling interval later. The index is reset when it goes
// backwards, and immediate answers are spaced by min_query_interval. Agent and datacenters,
// which Consul cannot block on, are polled, as everything is with blocking = false.
//
// The node set is the union of every watch's last good answer. A failing watch keeps its last
// good answer (a watch that never answered blocks removals: its nodes are unknown), and the
// failure shows as discovery_error until it answers again. The ACL token (X-Consul-Token) is
// access_token (also _file/_env, read by the host at start and reload) or token_file, which
// is read before every request and again after a 403, so a rotated token is used at once.
//
// register = true also registers the local node as an instance of the service, with a TTL
// check that this plugin keeps passing, and deregisters it on a clean stop.
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <clusterd/plugin.hpp>

#include "consul_api.hpp"

namespace {

namespace opt = clusterd::option;
namespace api = clusterd_consul;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kMaxBodyBytes = 16 << 20;
constexpr std::size_t kMaxTokenBytes = 4096;
constexpr milliseconds kDeregisterLimit{2000};
constexpr const char *kSkippedKey = "instances skipped";

std::string without_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class ConsulStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "consul";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "The instances of a Consul service, from the Agent, Catalog or Health API, in one or "
      "several datacenters, with blocking queries (libcluster_consul's "
      "Cluster.Strategy.Consul)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Consul",
                                             "Elixir.Cluster.Strategy.Consul"};
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::format(opt::string("base_url", "Consul agent URL (http:// or https://)",
                              "\"http://localhost:8500\""),
                  CLUSTERD_FORMAT_URL),
      opt::conflicts(opt::secret(opt::string("access_token", "ACL token, sent as X-Consul-Token")),
                     "token_file"),
      opt::nonempty(opt::string("token_file",
                                "File holding the ACL token, read before every request and "
                                "again after HTTP 403 (a rotated token is used at once)")),
      opt::nonempty(opt::required(opt::string("service_name", "Consul service to list"))),
      opt::nonempty(opt::string_list(
          "list_using",
          "Endpoints whose instances are joined: agent, catalog, health, multisite (or "
          "libcluster's module names, such as Cluster.Strategy.Consul.Health)",
          "[\"health\"]")),
      opt::boolean("passing", "Health: only instances whose checks all pass", "false"),
      opt::string("dc", "Datacenter to query; unset: the agent's own"),
      opt::nonempty(opt::string_list(
          "datacenters", "Multisite: the datacenters; unset: all, from /v1/catalog/datacenters")),
      opt::nonempty(opt::string_list("endpoints", "Multisite: the endpoints run in each datacenter",
                                     "[\"health\"]")),
      opt::nonempty(opt::format(opt::string("node_basename",
                                            "Node name part before '@'; unset: the local node's, "
                                            "as the topology's transport knows it"),
                                CLUSTERD_FORMAT_NODE_BASENAME)),
      opt::nonempty(opt::string("node_name_template",
                                "EEx template of a node name over ip, dc and node_basename",
                                "\"<%= node_basename %>@<%= ip %>\"")),
      opt::nonempty(opt::string("tag", "Only instances with this service tag")),
      opt::nonempty(opt::string("namespace", "Consul Enterprise namespace (?ns=)")),
      opt::nonempty(opt::string("partition", "Consul Enterprise admin partition")),
      opt::nonempty(opt::string("filter", "Consul filter expression (?filter=)")),
      opt::nonempty(opt::string(
          "near",
          "Catalog/Health: sort by round-trip time from this node (\"_agent\": the agent)")),
      opt::boolean("blocking",
                   "Catalog and Health as blocking queries (changes arrive at once); false: "
                   "poll every polling_interval",
                   "true"),
      opt::range(opt::duration("wait", "Longest time Consul holds a blocking query", "\"5m\""),
                 1000, 600000),
      opt::finite(opt::duration("min_query_interval",
                                "Least time between the starts of two requests of one query "
                                "(a rate limit when Consul answers at once)",
                                "\"100ms\"")),
      opt::finite(opt::positive(opt::duration(
          "polling_interval",
          "Polling period (agent, datacenters, blocking = false) and retry delay after a "
          "failure",
          "\"5s\""))),
      opt::finite(opt::positive(
          opt::duration("request_timeout",
                        "Time limit of a request (on top of wait for blocking ones)", "\"10s\""))),
      opt::nonempty(opt::string("ca_file",
                                "PEM bundle to verify an https:// agent with; unset: system "
                                "store")),
      opt::needs(
          opt::nonempty(opt::string("client_cert_file", "Mutual TLS: client certificate (PEM)")),
          "client_key_file"),
      opt::needs(opt::nonempty(opt::string("client_key_file", "Mutual TLS: its key (PEM)")),
                 "client_cert_file"),
      opt::boolean("register",
                   "Register the local node as an instance of register_service (a TTL check "
                   "kept passing), deregistered on a clean stop",
                   "false"),
      opt::nonempty(opt::string("register_service", "Service to register; unset: service_name")),
      opt::nonempty(opt::string(
          "register_id", "Service instance ID; unset: SERVICE-NODE (the local node's name)")),
      opt::nonempty(
          opt::string("register_address", "Address to register; unset: the local node's host")),
      opt::range(opt::integer("register_port", "Port to register (0: none)", "0"), 0, 65535),
      opt::string_list("register_tags", "Tags of the registered instance", "[]"),
      opt::range(opt::duration("check_ttl", "TTL of the registered check; passed every third of it",
                               "\"15s\""),
                 1000, 86400000),
      opt::range(opt::duration("deregister_after",
                               "Consul removes the instance after its check was critical this "
                               "long (a crashed daemon)",
                               "\"1m\""),
                 60000, 86400000),
  };

  // What the declared constraints cannot say; pure, so `clusterd check` runs it.
  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    auto endpoints = [&](const char *key, bool multisite_allowed) {
      for (const auto &name : config.optional_strings(key).value_or(std::vector<std::string>{})) {
        api::Endpoint e;
        if (!api::parse_endpoint(name, e))
          problems.add(key, "\"" + api::excerpt(name) +
                                "\" is not an endpoint (agent, catalog, health, multisite)");
        else if (e == api::Endpoint::multisite && !multisite_allowed)
          problems.add(key, "multisite cannot run inside multisite");
      }
    };
    endpoints("list_using", true);
    endpoints("endpoints", false);
    api::NameTemplate tpl;
    std::string error;
    if (auto text = config.optional_string("node_name_template"); text && !tpl.parse(*text, error))
      problems.add("node_name_template", error);
  }

  void init(const clusterd::Config &config) override {
    base_url_ = without_trailing_slash(config.string("base_url"));
    token_ = config.optional_string("access_token").value_or("");
    token_file_ = config.optional_string("token_file").value_or("");
    selection_.service_name = config.string("service_name");
    selection_.passing = config.boolean("passing");
    selection_.dc = config.optional_string("dc").value_or("");
    selection_.tag = config.optional_string("tag").value_or("");
    selection_.ns = config.optional_string("namespace").value_or("");
    selection_.partition = config.optional_string("partition").value_or("");
    selection_.filter = config.optional_string("filter").value_or("");
    selection_.near = config.optional_string("near").value_or("");
    for (const auto &name : config.strings("list_using")) list_using_.push_back(endpoint(name));
    for (const auto &name : config.strings("endpoints")) multisite_.push_back(endpoint(name));
    if (auto dcs = config.optional_strings("datacenters")) datacenters_ = *dcs;
    basename_ = config.optional_string("node_basename").value_or("");
    std::string error;
    template_.parse(config.string("node_name_template"), error);  // validate() checked it
    blocking_ = config.boolean("blocking");
    wait_ = config.duration("wait");
    min_interval_ = config.duration("min_query_interval");
    interval_ = config.duration("polling_interval");
    timeout_ = config.duration("request_timeout");
    ca_file_ = config.optional_string("ca_file").value_or("");
    client_cert_ = config.optional_string("client_cert_file").value_or("");
    client_key_ = config.optional_string("client_key_file").value_or("");

    register_ = config.boolean("register");
    reg_service_ = config.optional_string("register_service").value_or(selection_.service_name);
    reg_id_ = config.optional_string("register_id").value_or("");
    reg_address_ = config.optional_string("register_address").value_or("");
    reg_port_ = config.integer("register_port");
    reg_tags_ = config.strings("register_tags");
    check_ttl_ = config.duration("check_ttl");
    deregister_after_ = config.duration("deregister_after");

    std::string modes;
    for (auto e : list_using_)
      modes += (modes.empty() ? "" : ", ") + std::string(api::endpoint_name(e));
    host().set_status("list_using", modes);
    host().set_status("queries", blocking_ ? "blocking (catalog, health)" : "polling");
  }

  void start() override {
    const bool all_datacenters =
        datacenters_.empty() && std::find(list_using_.begin(), list_using_.end(),
                                          api::Endpoint::multisite) != list_using_.end();
    if (all_datacenters)
      list_datacenters();
    else
      build_watches();
    if (register_) register_self();
  }

  void stop() override {
    watches_.clear();
    dcs_call_.reset();
    dcs_timer_.reset();
    publish_timer_.reset();
    reg_timer_.reset();
    reg_call_.reset();
    if (registered_) deregister_self();
  }

  void refresh() override {
    for (auto &w : watches_)
      if (!w->call) run(*w);  // a watch waiting for its next poll or retry goes now
  }

 private:
  struct Watch {
    api::Endpoint endpoint;
    std::string dc;  // "" = the agent's
    uint64_t index = 0;
    std::optional<std::vector<api::Found>> found;  // the last good answer
    std::vector<std::string> skipped;
    std::string error;  // the current failure, "" when the last request worked
    bool retried_403 = false;
    Clock::time_point started{};
    clusterd::HttpCall call;
    clusterd::Timer timer;
  };

  static api::Endpoint endpoint(const std::string &name) {
    api::Endpoint e = api::Endpoint::health;
    api::parse_endpoint(name, e);  // validate() checked it
    return e;
  }

  // ---- the watches ----

  void build_watches() {
    std::vector<std::unique_ptr<Watch>> old;
    old.swap(watches_);
    auto add = [&](api::Endpoint e, const std::string &requested_dc) {
      const std::string dc = e == api::Endpoint::agent ? "" : requested_dc;  // agent: its own
      for (auto &w : watches_)
        if (w->endpoint == e && w->dc == dc) return;  // listed twice
      for (auto &w : old) {  // a query that stays keeps its answer, index and request
        if (w && w->endpoint == e && w->dc == dc) {
          watches_.push_back(std::move(w));
          return;
        }
      }
      auto w = std::make_unique<Watch>();
      w->endpoint = e;
      w->dc = dc;
      watches_.push_back(std::move(w));
    };
    for (auto e : list_using_) {
      if (e != api::Endpoint::multisite) {
        add(e, selection_.dc);
        continue;
      }
      for (const auto &dc : datacenters_)
        for (auto m : multisite_) add(m, dc);
    }
    for (auto &w : watches_)
      if (!w->call && !w->timer) run(*w);
    if (!old.empty()) publish();  // a datacenter went away: its nodes with it
  }

  void run(Watch &w) {
    w.timer.reset();
    api::Selection s = selection_;
    s.dc = w.dc;
    std::string url = base_url_ + api::request_path(w.endpoint, s);
    const std::string what = "GET " + url.substr(base_url_.size());
    const bool blocking = blocking_ && api::supports_blocking(w.endpoint) && w.index != 0;
    milliseconds limit = timeout_;
    if (blocking) {
      url += (url.find('?') == std::string::npos ? "?" : "&") +
             api::blocking_query(w.index, static_cast<uint64_t>(wait_.count()));
      limit += wait_ + wait_ / 16;  // Consul adds up to wait/16 of jitter
    }
    w.started = Clock::now();
    Watch *watch = &w;
    request(
        clusterd::HttpRequest(url), limit, what, w.call,
        [this, watch](const clusterd::HttpResponse &r) { answered(*watch, r); },
        [this, watch](const std::string &why, bool token_changed) {
          failed(*watch, why, token_changed);
        });
  }

  void answered(Watch &w, const clusterd::HttpResponse &r) {
    std::vector<api::Found> found;
    std::vector<std::string> skipped;
    std::string error;
    bool ok = false;
    switch (w.endpoint) {
      case api::Endpoint::agent:
        ok = api::parse_agent_services(r.body(), selection_.service_name, selection_.tag, found,
                                       skipped, error);
        break;
      case api::Endpoint::catalog:
        ok = api::parse_catalog(r.body(), found, skipped, error);
        break;
      case api::Endpoint::health:
      case api::Endpoint::multisite:
        ok = api::parse_health(r.body(), found, skipped, error);
        break;
    }
    if (!ok) return failed(w, "Consul " + label(w) + ": malformed reply: " + error, false);
    const bool blocking = blocking_ && api::supports_blocking(w.endpoint);
    const auto index = api::next_index(w.index, r.header("X-Consul-Index"));
    if (blocking) w.index = index.value_or(0);
    w.found = std::move(found);
    w.skipped = std::move(skipped);
    w.error.clear();
    w.retried_403 = false;
    publish();
    if (blocking && index) {
      // Next query at once, but never sooner than min_query_interval after this one started.
      const auto due = w.started + min_interval_;
      const auto now = Clock::now();
      if (due <= now) return run(w);
      Watch *watch = &w;
      w.timer = clusterd::Timer::after(
          host(), std::chrono::duration_cast<milliseconds>(due - now) + milliseconds(1),
          [this, watch] { run(*watch); });
      return;
    }
    schedule(w, interval_);  // polled (or no X-Consul-Index came back: polled this time)
  }

  void failed(Watch &w, const std::string &why, bool token_changed) {
    // A 403 with a token that changed since the request: the rotated token, once, at once.
    if (token_changed && !w.retried_403) {
      w.retried_403 = true;
      return run(w);
    }
    w.error = why;
    w.index = 0;  // the retry reads at once: a recovery shows without waiting for a change
    publish();
    schedule(w, interval_);
  }

  void schedule(Watch &w, milliseconds delay) {
    Watch *watch = &w;
    w.timer = clusterd::Timer::after(host(), delay, [this, watch] { run(*watch); });
  }

  std::string label(const Watch &w) const {
    std::string text = api::endpoint_name(w.endpoint);
    if (!w.dc.empty()) text += " (dc " + w.dc + ")";
    return text;
  }

  // ---- requests ----

  // The token for the next request: token_file's content, read now, or access_token.
  bool token(std::string &out, std::string &error) {
    if (token_file_.empty()) {
      out = token_;
      return true;
    }
    if (!clusterd::read_file(token_file_, out, error, kMaxTokenBytes)) return false;
    out = trimmed(std::move(out));
    return true;
  }

  // One GET to Consul: `ok` gets a 2xx answer; `fail` gets the reason of anything else (and
  // for a 403, whether token_file now holds another token than the one sent).
  void request(clusterd::HttpRequest req, milliseconds limit, const std::string &what,
               clusterd::HttpCall &call, std::function<void(const clusterd::HttpResponse &)> ok,
               std::function<void(const std::string &, bool)> fail) {
    std::string sent, error;
    if (!token(sent, error)) return fail("token_file " + error, false);
    if (!sent.empty()) req.header("X-Consul-Token", sent);
    tls(req);
    try {
      call = clusterd::HttpCall::start(
          host(), req.timeout(limit).max_body_bytes(kMaxBodyBytes),
          [this, what, sent, ok = std::move(ok), fail](const clusterd::HttpResponse &r) {
            if (r.status() != CLUSTERD_OK)
              return fail("Consul " + what + " failed: " + std::string(r.error()), false);
            if (!r.ok()) {
              bool changed = false;
              if (r.http_status() == 403 && !token_file_.empty()) {
                std::string now, error;
                changed = token(now, error) && now != sent;
              }
              return fail("Consul " + what + " answered HTTP " + std::to_string(r.http_status()) +
                              ": " + api::excerpt(trimmed(std::string(r.body()))),
                          changed);
            }
            ok(r);
          });
    } catch (const std::exception &e) {
      fail("Consul " + what + ": " + e.what(), false);
    }
  }

  void tls(clusterd::HttpRequest &req) const {
    if (!ca_file_.empty()) req.ca_file(ca_file_);
    if (!client_cert_.empty()) req.client_cert(client_cert_, client_key_);
  }

  // ---- Multisite with every datacenter ----

  void list_datacenters() {
    const std::string what = "GET " + api::datacenters_path(selection_);
    request(
        clusterd::HttpRequest(base_url_ + api::datacenters_path(selection_)), timeout_, what,
        dcs_call_,
        [this, what](const clusterd::HttpResponse &r) {
          std::vector<std::string> dcs;
          std::string error;
          if (!api::parse_datacenters(r.body(), dcs, error))
            return datacenters_failed("Consul " + what + ": malformed reply: " + error);
          std::sort(dcs.begin(), dcs.end());
          dcs_error_.clear();
          if (dcs != datacenters_ || watches_.empty()) {
            datacenters_ = dcs;
            host().set_status("datacenters", dcs.empty() ? "(none)" : join(dcs, ", "));
            build_watches();
          }
          publish();
          dcs_timer_ = clusterd::Timer::after(host(), interval_, [this] { list_datacenters(); });
        },
        [this](const std::string &why, bool) { datacenters_failed(why); });
  }

  void datacenters_failed(const std::string &why) {
    dcs_error_ = why;
    publish();
    dcs_timer_ = clusterd::Timer::after(host(), interval_, [this] { list_datacenters(); });
  }

  // ---- reporting ----

  static std::string join(const std::vector<std::string> &items, const char *sep) {
    std::string out;
    for (const auto &i : items) out += (out.empty() ? "" : sep) + i;
    return out;
  }

  // The node basename: node_basename, else the local node's as the transport knows it.
  std::optional<std::string> basename() {
    if (!basename_.empty()) return basename_;
    if (!template_.uses_basename()) return std::string();
    auto local = local_node_name();
    if (!local) return std::nullopt;
    return local->substr(0, local->find('@'));
  }

  // Reports the union of the watches' last good answers, once every watch has answered (or
  // failed). A watch that failed before any answer holds nodes we do not know: the others'
  // nodes are then added to the last report and none are removed.
  void publish() {
    publish_timer_.reset();
    std::string failure = dcs_error_;
    bool unknown = datacenters_unknown();
    for (const auto &w : watches_) {
      if (!w->found && w->error.empty()) return;  // its first answer is on its way
      if (!w->found) unknown = true;
      if (!w->error.empty() && failure.empty()) failure = w->error;
    }
    const auto base = basename();
    if (!base) {
      discovery_failed(
          "node_basename is not set and the transport does not know its local node yet");
      publish_timer_ = clusterd::Timer::after(host(), interval_, [this] { publish(); });
      return;
    }
    std::set<std::string> nodes;
    std::vector<std::string> skipped;
    for (const auto &w : watches_) {
      for (const auto &s : w->skipped) skipped.push_back(label(*w) + ": " + s);
      if (!w->found) continue;
      for (const auto &f : *w->found) {
        std::string name = template_.render(f.address, w->dc.empty() ? f.datacenter : w->dc, *base);
        if (const char *why = clusterd::node_name_error(name); *why != '\0') {
          skipped.push_back(label(*w) + ": \"" + api::excerpt(name) + "\": " + why);
          continue;
        }
        nodes.insert(std::move(name));
      }
    }
    if (unknown) nodes.insert(reported_.begin(), reported_.end());
    show_skipped(skipped);
    if (!unknown || !nodes.empty()) {
      reported_.assign(nodes.begin(), nodes.end());
      report_nodes(reported_);
    }
    if (!failure.empty()) {
      discovery_failed(failure);
      failing_ = true;
    } else if (failing_) {
      failing_ = false;
      host().info("Consul discovery works again");
    }
  }

  // Multisite over every datacenter, whose list never came: its nodes are unknown.
  bool datacenters_unknown() const { return !dcs_error_.empty() && watches_.empty(); }

  void show_skipped(const std::vector<std::string> &skipped) {
    const std::string text = join(skipped, "; ");
    if (text == last_skipped_) return;  // log once per change, not every answer
    last_skipped_ = text;
    if (text.empty()) return host().clear_status(kSkippedKey);
    host().set_status(kSkippedKey, text);
    host().info("skipping instances that give no node name: " + text);
  }

  // ---- self-registration ----

  // The local node: register_id/register_address, else from the transport's local node.
  bool registration(std::string &id, std::string &address) {
    auto local = local_node_name();
    address = reg_address_;
    id = reg_id_;
    if (address.empty() || id.empty()) {
      if (!local) return false;
      const auto parsed = clusterd::parse_node_name(*local);
      if (!parsed) return false;
      if (address.empty()) address = std::string(parsed->host);
      if (id.empty()) id = reg_service_ + "-" + *local;
    }
    return true;
  }

  void register_self() {
    std::string id, address;
    if (!registration(id, address)) {
      host().set_status("registration", "waiting for the transport's local node");
      reg_timer_ = clusterd::Timer::after(host(), milliseconds(500), [this] { register_self(); });
      return;
    }
    reg_check_ = "clusterd:" + id;
    reg_sent_id_ = id;
    const std::string body =
        api::registration_body({id, reg_service_, address, reg_check_, reg_port_, reg_tags_,
                                static_cast<uint64_t>(check_ttl_.count()),
                                static_cast<uint64_t>(deregister_after_.count())});
    put("/v1/agent/service/register" + api::write_query(selection_), body, "registration of " + id,
        [this, id] {
          registered_ = true;
          host().set_status("registration", "registered as " + id);
          host().info("registered in Consul as " + id);
          reg_timer_ = clusterd::Timer::after(host(), check_ttl_ / 3, [this] { pass_check(); });
        });
  }

  void pass_check() {
    put("/v1/agent/check/pass/" + api::url_encode(reg_check_) + api::write_query(selection_), "",
        "TTL check " + reg_check_, [this] {
          reg_timer_ = clusterd::Timer::after(host(), check_ttl_ / 3, [this] { pass_check(); });
        });
  }

  // A PUT for the registration; a failure is logged, shown and retried: a check that is not
  // found (the agent restarted and forgot it) registers again.
  void put(const std::string &path, std::string body, const std::string &what,
           std::function<void()> next) {
    clusterd::HttpRequest req(base_url_ + path);
    req.method("PUT").body(std::move(body)).header("Content-Type", "application/json");
    request(
        std::move(req), timeout_, "PUT " + path, reg_call_,
        [this, next = std::move(next)](const clusterd::HttpResponse &) {
          if (!reg_error_.empty()) host().info("Consul registration works again");
          reg_error_.clear();
          next();
        },
        [this, what](const std::string &why, bool) {
          if (why != reg_error_) host().warn(what + ": " + why);
          reg_error_ = why;
          host().set_status("registration", "failing: " + why);
          reg_timer_ = clusterd::Timer::after(host(), interval_, [this] { register_self(); });
        });
  }

  // On a clean stop. The host cancels what is in flight when stop() returns and runs no
  // callback after it, so this is one blocking request, bounded by kDeregisterLimit (Consul's
  // deregister_after removes the instance anyway if it fails).
  void deregister_self() {
    registered_ = false;
    CURL *curl = curl_easy_init();
    if (curl == nullptr) return;
    const std::string url = base_url_ + "/v1/agent/service/deregister/" +
                            api::url_encode(reg_sent_id_) + api::write_query(selection_);
    curl_slist *headers = nullptr;
    std::string token_value, error;
    if (token(token_value, error) && !token_value.empty())
      headers = curl_slist_append(headers, ("X-Consul-Token: " + token_value).c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::min(timeout_, kDeregisterLimit).count()));
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(
        curl, CURLOPT_WRITEFUNCTION,
        +[](char *, size_t size, size_t n, void *) { return size * n; });
    if (!ca_file_.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file_.c_str());
    if (!client_cert_.empty()) {
      curl_easy_setopt(curl, CURLOPT_SSLCERT, client_cert_.c_str());
      curl_easy_setopt(curl, CURLOPT_SSLKEY, client_key_.c_str());
    }
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK && status / 100 == 2)
      host().info("deregistered " + reg_sent_id_ + " from Consul");
    else
      host().warn("deregistering " + reg_sent_id_ + " from Consul failed: " +
                  (rc != CURLE_OK ? std::string(curl_easy_strerror(rc))
                                  : "HTTP " + std::to_string(status)) +
                  " (Consul removes it after deregister_after)");
  }

  std::string base_url_, token_, token_file_;
  api::Selection selection_;
  std::vector<api::Endpoint> list_using_, multisite_;
  std::vector<std::string> datacenters_;
  std::string basename_;
  api::NameTemplate template_;
  bool blocking_ = true;
  milliseconds wait_{300000}, min_interval_{100}, interval_{5000}, timeout_{10000};
  std::string ca_file_, client_cert_, client_key_;

  std::vector<std::unique_ptr<Watch>> watches_;
  clusterd::HttpCall dcs_call_;
  clusterd::Timer dcs_timer_, publish_timer_;
  std::string dcs_error_;
  std::vector<std::string> reported_;
  bool failing_ = false;
  std::string last_skipped_;

  bool register_ = false, registered_ = false;
  std::string reg_service_, reg_id_, reg_address_, reg_check_, reg_sent_id_, reg_error_;
  int64_t reg_port_ = 0;
  std::vector<std::string> reg_tags_;
  milliseconds check_ttl_{15000}, deregister_after_{60000};
  clusterd::HttpCall reg_call_;
  clusterd::Timer reg_timer_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(ConsulStrategy);
