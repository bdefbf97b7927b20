// Strategy "kubernetes": libcluster's Cluster.Strategy.Kubernetes. Lists Endpoints, Pods or
// EndpointSlices matching a label selector through the Kubernetes API and names a node for
// each endpoint that counts (mode ip | dns | hostname, libcluster's names). What counts is
// libcluster's rule by default: every pod with an IP in pods mode, the ready addresses of
// Endpoints (and ready endpoints of slices); `readiness` changes it. Either polls (a list
// every polling_interval, libcluster's way) or, with `watch = true`, lists once and then
// watches from the list's resourceVersion (bookmarks on; a 410 Expired re-lists), so a pod that
// becomes ready is reported as soon as the API server says so.
//
// The API server: kubernetes_master when set (libcluster's host rule, or an https:// URL),
// else https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT when set (libcluster ignores
// them), else https://kubernetes.default.svc.<domain>. Token, CA and namespace come from the
// service-account directory and are re-read for every request (bound tokens rotate). TLS is
// always verified: against ca.crt when present, else the system store; only
// insecure_skip_tls_verify = true turns verification off (with a warning).
//
// Errors (HTTP errors including 403, timeouts, TLS failures, malformed JSON, wrong shapes)
// never shrink the node set: the host keeps the last good set and shows the reason (logged once
// per change of reason); the strategy retries with exponential backoff (250 ms doubling, capped
// at polling_interval when polling and 30 s when watching, ±20 % jitter). After an error it
// always re-lists. Nodes that leave the listing are reported gone; whether they are
// disconnected is the topology's `disconnect` policy (default "removed", as in libcluster).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

#include "k8s_parse.hpp"
#include "line_buffer.hpp"

namespace {

namespace k8s = clusterd::kubernetes;
using std::chrono::milliseconds;

constexpr milliseconds kBackoffInitial{250};
constexpr milliseconds kWatchBackoffMax{30000};
constexpr std::uint64_t kMaxListBytes = 256ull << 20;  // 10,000 endpoints are ~5 MB
constexpr std::size_t kMaxEventBytes = 16u << 20;      // one watch event (one whole object)
constexpr std::size_t kHeadBytes = 4096;               // of a watch body, kept for error messages
constexpr std::size_t kMaxSmallFile = 64 << 10;
constexpr const char *kDefaultSaPath = "/var/run/secrets/kubernetes.io/serviceaccount";

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s.substr(first);
}

// Reads a small file; false when it does not exist or cannot be read.
bool read_small_file(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string text(kMaxSmallFile, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  out = trim(std::move(text));
  return true;
}

bool file_exists(const std::string &path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string env(const char *name) {
  const char *v = std::getenv(name);
  return v != nullptr ? v : "";
}

class KubernetesStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "kubernetes";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Ready endpoints of Endpoints, Pods or EndpointSlices matching a label selector, from the "
      "Kubernetes API, polled or watched (libcluster's Cluster.Strategy.Kubernetes)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Kubernetes",
                                             "Elixir.Cluster.Strategy.Kubernetes"};
  // Like libcluster: nodes that leave the listing are disconnected (topology default).
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::format(
          clusterd::option::nonempty(clusterd::option::required(clusterd::option::string(
              "kubernetes_node_basename", "The node name's part before '@' (e.g. \"myapp\")"))),
          CLUSTERD_FORMAT_NODE_BASENAME),
      clusterd::option::nonempty(clusterd::option::required(clusterd::option::string(
          "kubernetes_selector", "Label selector of the listed objects (e.g. \"app=myapp\")"))),
      clusterd::option::string("kubernetes_namespace",
                               "Namespace to list; default: the service account's namespace "
                               "file, re-read every request"),
      clusterd::option::string("kubernetes_service_name",
                               "Service name in hostname mode; default: the one the API gives "
                               "(Endpoints name, slice label, pod subdomain)"),
      clusterd::option::choices(
          clusterd::option::string("mode", "How node names are built", "\"ip\""),
          "ip|dns|hostname"),
      clusterd::option::choices(
          clusterd::option::string("kubernetes_ip_lookup_mode", "What to list", "\"endpoints\""),
          "endpoints|pods|endpointslices"),
      clusterd::option::nonempty(clusterd::option::string(
          "kubernetes_master",
          "API server host (libcluster's rule appends the cluster domain), HOST:PORT, or an "
          "https:// URL; default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT "
          "when set (every pod has them), else kubernetes.default.svc")),
      clusterd::option::string("kubernetes_cluster_name",
                               "Cluster name: the cluster domain is <name>.local (libcluster)",
                               "\"cluster\""),
      clusterd::option::conflicts(
          clusterd::option::nonempty(clusterd::option::string(
              "kubernetes_cluster_domain",
              "The cluster domain, for clusters not named <name>.local (libcluster #137); "
              "default: <kubernetes_cluster_name>.local")),
          "kubernetes_cluster_name"),
      clusterd::option::string("kubernetes_service_account_path",
                               "Directory of token, ca.crt and namespace",
                               "\"/var/run/secrets/kubernetes.io/serviceaccount\""),
      clusterd::option::boolean("kubernetes_use_cached_resources",
                                "List with resourceVersion=0 (the API server's cache)", "false"),
      clusterd::option::finite(clusterd::option::positive(clusterd::option::duration(
          "polling_interval", "How often to list when not watching", "\"5s\""))),
      clusterd::option::boolean(
          "watch", "List once, then watch for changes (needs the 'watch' verb)", "false"),
      clusterd::option::choices(
          clusterd::option::string(
              "readiness",
              "Which endpoints count: ready; serving (also terminating ones that still "
              "serve); all (every endpoint with an IP). Default as libcluster: \"all\" with "
              "pods (every pod with a podIP), \"ready\" otherwise (Endpoints' addresses, not "
              "notReadyAddresses)"),
          "ready|serving|all"),
      clusterd::option::boolean("insecure_skip_tls_verify",
                                "Do not verify the API server's certificate (logs a warning)",
                                "false"),
      clusterd::option::finite(clusterd::option::positive(clusterd::option::duration(
          "request_timeout", "Time limit of one list request", "\"15s\""))),
      clusterd::option::finite(clusterd::option::at_least(
          clusterd::option::duration(
              "watch_timeout", "How long the API server keeps one watch open (timeoutSeconds)",
              "\"5m\""),
          1000)),
      clusterd::option::secret(clusterd::option::string(
          "token", "A fixed bearer token instead of the service account's (not rotated)")),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    if (!k8s::valid_dns_name(config.string("kubernetes_cluster_name")))
      problems.add("kubernetes_cluster_name", "is not a DNS name");
    if (auto domain = config.optional_string("kubernetes_cluster_domain");
        domain && !k8s::valid_dns_name(*domain))
      problems.add("kubernetes_cluster_domain",
                   "'" + *domain + "' is not a DNS name (such as \"cluster.local\")");
    if (auto service = config.optional_string("kubernetes_service_name");
        service && !service->empty() && !k8s::valid_dns_name(*service))
      problems.add("kubernetes_service_name", "is not a DNS name");
    const std::string master = config.optional_string("kubernetes_master").value_or("");
    if (master.find("://") != std::string::npos && master.rfind("https://", 0) != 0)
      problems.add(
          "kubernetes_master",
          "'" + master + "': only https:// is allowed (the bearer token must not travel in clear)");
  }

  void init(const clusterd::Config &config) override {
    naming_.basename = config.string("kubernetes_node_basename");
    selector_ = config.string("kubernetes_selector");
    namespace_ = config.optional_string("kubernetes_namespace").value_or("");
    naming_.service_name = config.optional_string("kubernetes_service_name").value_or("");
    configured_domain_ = config.optional_string("kubernetes_cluster_domain").value_or("");
    naming_.domain = configured_domain_.empty()
                         ? config.string("kubernetes_cluster_name") + ".local"
                         : configured_domain_;

    const std::string mode = config.string("mode");
    naming_.mode = mode == "dns"        ? k8s::Mode::kDns
                   : mode == "hostname" ? k8s::Mode::kHostname
                                        : k8s::Mode::kIp;
    const std::string lookup = config.string("kubernetes_ip_lookup_mode");
    lookup_ = lookup == "pods"             ? k8s::Lookup::kPods
              : lookup == "endpointslices" ? k8s::Lookup::kEndpointSlices
                                           : k8s::Lookup::kEndpoints;
    resource_ = lookup;
    // libcluster's rule unless told otherwise: pods mode takes every pod with a podIP.
    const std::string readiness = config.optional_string("readiness")
                                      .value_or(lookup_ == k8s::Lookup::kPods ? "all" : "ready");
    naming_.readiness = readiness == "serving" ? k8s::Readiness::kServing
                        : readiness == "all"   ? k8s::Readiness::kAll
                                               : k8s::Readiness::kReady;

    sa_path_ = config.string("kubernetes_service_account_path");
    cached_ = config.boolean("kubernetes_use_cached_resources");
    watch_ = config.boolean("watch");
    insecure_ = config.boolean("insecure_skip_tls_verify");
    token_ = config.optional_string("token").value_or("");
    polling_interval_ = config.duration("polling_interval");
    request_timeout_ = config.duration("request_timeout");
    watch_timeout_ = config.duration("watch_timeout");
    backoff_ = kBackoffInitial;

    base_url_ = api_base(config);
    host().set_status("api", base_url_);
    if (insecure_)
      host().warn(
          "insecure_skip_tls_verify = true: the API server's certificate is NOT verified; "
          "anyone on the path can impersonate it and read the token");
  }

  void start() override { list(); }

  void stop() override {
    call_.reset();
    timer_.reset();
  }

  // A round now, unless a request is in flight (a live watch needs none).
  void refresh() override {
    if (call_.active()) return;
    timer_.reset();
    list();
  }

 private:
  // The API server's base URL (scheme, host, port), decided once: the environment is fixed.
  std::string api_base(const clusterd::Config &config) const {
    if (auto configured = config.optional_string("kubernetes_master")) {
      const std::string &master = *configured;
      if (master.rfind("https://", 0) == 0) {
        std::string url = master;
        while (url.size() > 8 && url.back() == '/') url.pop_back();
        return url;
      }
      // "HOST:PORT" (or an IPv6 literal) is taken as is; a plain host gets libcluster's rule.
      if (master.find(':') != std::string::npos) return "https://" + master;
      return "https://" + k8s::api_host(master, domain());
    }
    const std::string service_host = env("KUBERNETES_SERVICE_HOST");
    if (!service_host.empty()) {
      std::string port = env("KUBERNETES_SERVICE_PORT");
      if (port.empty()) port = "443";
      const bool v6 = service_host.find(':') != std::string::npos;
      return "https://" + (v6 ? "[" + service_host + "]" : service_host) + ":" + port;
    }
    return "https://" + k8s::api_host("kubernetes.default.svc", domain());
  }

  // The API host's domain: kubernetes_cluster_domain, else (libcluster) $CLUSTER_DOMAIN, else
  // <kubernetes_cluster_name>.local. Node names ignore $CLUSTER_DOMAIN, as in libcluster.
  std::string domain() const {
    if (!configured_domain_.empty()) return configured_domain_;
    const std::string d = env("CLUSTER_DOMAIN");
    return d.empty() ? naming_.domain : d;
  }

  // ---- requests ----

  // The request for the collection with `query_tail` (empty = a list). False with `error`
  // when the namespace is unknown. Token and CA are read now: they rotate.
  bool build(const std::string &query_tail, clusterd::HttpRequest &request, std::string &ns,
             std::string &error) {
    ns = namespace_;
    if (ns.empty()) {
      const std::string path = sa_path_ + "/namespace";
      if (!read_small_file(path, ns) || ns.empty()) {
        error =
            "no namespace: kubernetes_namespace is not set and " + path + " is missing or empty";
        return false;
      }
    }
    std::string query = "labelSelector=" + k8s::percent_encode(selector_);
    if (query_tail.empty() && cached_) query = "resourceVersion=0&" + query;
    request.url(base_url_ + k8s::collection_path(lookup_, ns) + "?" + query + query_tail);
    request.header("Accept", "application/json");
    std::string token = token_;
    if (token.empty()) read_small_file(sa_path_ + "/token", token);  // re-read: tokens rotate
    if (!token.empty()) request.header("Authorization", "Bearer " + token);
    if (insecure_) {
      request.insecure_skip_verify();
    } else if (const std::string ca = sa_path_ + "/ca.crt"; file_exists(ca)) {
      request.ca_file(ca);
    }
    return true;
  }

  void list() {
    timer_.reset();
    clusterd::HttpRequest request;
    std::string ns, error;
    if (!build("", request, ns, error)) return fail(error);
    what_ = "list " + resource_ + " in " + ns;
    request.timeout(request_timeout_).max_body_bytes(kMaxListBytes);
    try {
      call_ = clusterd::HttpCall::start(host(), request,
                                        [this](const clusterd::HttpResponse &r) { on_list(r); });
    } catch (const std::exception &e) {
      fail(what_ + ": " + e.what());
    }
  }

  void on_list(const clusterd::HttpResponse &response) {
    if (!response.ok()) return fail(describe(response, response.body()));
    k8s::ListResult result;
    if (std::string error = k8s::parse_list(response.body(), lookup_, result); !error.empty())
      return fail(what_ + ": " + error);
    objects_.clear();
    for (std::size_t i = 0; i < result.objects.size(); ++i) {
      k8s::Object &o = result.objects[i];
      std::string key = o.key;
      if (objects_.count(key) != 0) key += "#" + std::to_string(i);  // nameless duplicates
      objects_.emplace(std::move(key), std::move(o));
    }
    resource_version_ = result.resource_version;
    succeeded();
    publish();
    if (watch_ && !resource_version_.empty()) return watch();
    if (watch_) host().set_status("watch", "not possible: the list has no resourceVersion");
    timer_ = clusterd::Timer::after(host(), polling_interval_, [this] { list(); });
  }

  void watch() {
    timer_.reset();
    clusterd::HttpRequest request;
    std::string ns, error;
    const long long seconds = std::max<long long>(1, watch_timeout_.count() / 1000);
    const std::string tail = "&watch=1&allowWatchBookmarks=true&resourceVersion=" +
                             k8s::percent_encode(resource_version_) +
                             "&timeoutSeconds=" + std::to_string(seconds);
    if (!build(tail, request, ns, error)) return fail(error);
    what_ = "watch " + resource_ + " in " + ns;
    lines_.clear();
    watch_head_.clear();
    watch_error_.clear();
    watch_expired_ = false;
    watch_events_ = 0;
    watch_began_ = std::chrono::steady_clock::now();
    // For a stream the timeout bounds the time without data: the server's own timeout plus
    // the request timeout, so a silently dead connection is noticed.
    request.timeout(watch_timeout_ + request_timeout_).on_data([this](std::string_view chunk) {
      return on_watch_data(chunk);
    });
    try {
      call_ = clusterd::HttpCall::start(
          host(), request, [this](const clusterd::HttpResponse &r) { on_watch_done(r); });
    } catch (const std::exception &e) {
      return fail(what_ + ": " + e.what());
    }
    host().set_status("watch", "from resourceVersion " + resource_version_);
  }

  bool on_watch_data(std::string_view chunk) {
    if (watch_head_.size() < kHeadBytes)
      watch_head_.append(chunk.substr(0, kHeadBytes - watch_head_.size()));
    dirty_ = false;
    const bool go_on = lines_.feed(chunk, [this](std::string_view line) { return on_event(line); });
    if (lines_.overflow())
      watch_error_ = what_ + ": an event larger than " + std::to_string(kMaxEventBytes) + " bytes";
    if (dirty_) publish();  // once per chunk: a burst of events costs one reconcile
    return go_on;
  }

  bool on_event(std::string_view line) {
    k8s::Event event;
    if (std::string error = k8s::parse_event(line, lookup_, event); !error.empty()) {
      watch_error_ = what_ + ": " + error;
      return false;
    }
    switch (event.type) {
      case k8s::EventType::kAdded:
      case k8s::EventType::kModified:
        objects_[event.object.key] = std::move(event.object);
        dirty_ = true;
        break;
      case k8s::EventType::kDeleted:
        dirty_ = objects_.erase(event.object.key) > 0 || dirty_;
        break;
      case k8s::EventType::kBookmark:
        break;
      case k8s::EventType::kError:
        if (event.code == 410) {
          watch_expired_ = true;
        } else {
          watch_error_ = what_ + ": error event " + std::to_string(event.code) + " " +
                         event.reason + ": " + event.message;
        }
        return false;
    }
    if (!event.resource_version.empty()) resource_version_ = std::move(event.resource_version);
    ++watch_events_;
    return true;
  }

  void on_watch_done(const clusterd::HttpResponse &response) {
    const int code = response.http_status();
    if (code == 410 || watch_expired_) {
      // The resourceVersion is too old (compaction): the normal way back is a fresh list.
      host().info(what_ + ": resourceVersion " + resource_version_ + " expired; re-listing");
      return list();
    }
    if (code != 0 && code / 100 != 2) return fail(describe(response, watch_head_));
    if (!watch_error_.empty()) return fail(watch_error_);
    if (response.status() != CLUSTERD_OK) return fail(describe(response, watch_head_));
    // The server ended the watch (timeoutSeconds): resume from the last resourceVersion. A
    // server that ends watches at once without news is not hammered.
    const auto lasted = std::chrono::steady_clock::now() - watch_began_;
    if (watch_events_ == 0 && lasted < std::chrono::seconds(1)) {
      timer_ = clusterd::Timer::after(host(), next_backoff(kWatchBackoffMax), [this] { watch(); });
      return;
    }
    watch();
  }

  std::string describe(const clusterd::HttpResponse &response, std::string_view body) const {
    if (response.status() != CLUSTERD_OK) return what_ + ": " + std::string(response.error());
    const int code = response.http_status();
    std::string text = what_ + ": HTTP " + std::to_string(code);
    if (code == 401) text += " Unauthorized (token missing or rejected)";
    if (code == 403) text += " Forbidden";
    const std::string message = k8s::status_message(body);
    return message.empty() ? text : text + ": " + message;
  }

  // ---- outcome ----

  void publish() {
    k8s::NameSet set = k8s::node_names(objects_, naming_);
    if (set.names != reported_ || !reported_once_ || recovered_) {
      report_nodes(set.names);
      reported_ = std::move(set.names);
      reported_once_ = true;
      recovered_ = false;
    }
    const std::string skipped =
        set.skipped == 0 ? std::string() : std::to_string(set.skipped) + " (" + set.why + ")";
    if (skipped != skipped_) {
      if (skipped.empty()) {
        host().clear_status("skipped endpoints");
      } else {
        host().set_status("skipped endpoints", skipped);
        host().warn("endpoints without a node name: " + skipped);
      }
      skipped_ = skipped;
    }
  }

  void succeeded() {
    if (!failure_.empty()) {
      host().info("the Kubernetes API answers again");
      recovered_ = true;  // report even an unchanged set: it clears the host's error
    }
    failure_.clear();
    backoff_ = kBackoffInitial;
    host().clear_status("retry");
  }

  // The round failed: the host keeps the last good set; retry (with a fresh list) later.
  void fail(const std::string &reason) {
    call_.reset();
    failure_ = reason;
    discovery_failed(reason);
    const milliseconds delay = next_backoff(watch_ ? kWatchBackoffMax : polling_interval_);
    host().set_status("retry", "a fresh list in " + std::to_string(delay.count()) + " ms");
    timer_ = clusterd::Timer::after(host(), delay, [this] { list(); });
  }

  // The current backoff with ±20 % jitter; doubles it for next time, up to `cap`.
  milliseconds next_backoff(milliseconds cap) {
    const milliseconds base = std::min(backoff_, cap);
    backoff_ = std::min(backoff_ * 2, cap);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    return std::max(
        milliseconds(1),
        milliseconds(static_cast<long long>(static_cast<double>(base.count()) * jitter(random_))));
  }

  // Configuration.
  k8s::Naming naming_;
  k8s::Lookup lookup_ = k8s::Lookup::kEndpoints;
  std::string resource_;  // "endpoints" | "pods" | "endpointslices", for messages
  std::string selector_, namespace_, sa_path_ = kDefaultSaPath, token_, base_url_;
  std::string configured_domain_;  // kubernetes_cluster_domain, "" when not set
  bool cached_ = false, watch_ = false, insecure_ = false;
  milliseconds polling_interval_{5000}, request_timeout_{15000}, watch_timeout_{300000};

  // State.
  std::map<std::string, k8s::Object> objects_;  // the last good listing, kept up to date
  std::string resource_version_;
  std::vector<std::string> reported_;
  bool reported_once_ = false, recovered_ = false, dirty_ = false;
  std::string skipped_, failure_, what_;
  milliseconds backoff_{kBackoffInitial};
  std::minstd_rand random_{std::random_device{}()};
  clusterd::HttpCall call_;
  clusterd::Timer timer_;

  // The watch in flight.
  clusterd::LineBuffer lines_{kMaxEventBytes};
  std::string watch_head_, watch_error_;
  bool watch_expired_ = false;
  std::size_t watch_events_ = 0;
  std::chrono::steady_clock::time_point watch_began_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(KubernetesStrategy);
