// Strategy "rancher": libcluster's Cluster.Strategy.Rancher — the containers of this service as
// Rancher 1.x's metadata service lists them (GET metadata_url, Accept: application/json),
// reported as node_basename@IP with the first IP of each container. A round at start, then one
// polling_interval after each round ends (libcluster's schedule).
// Fixed against libcluster: a failed request, a non-2xx answer or a malformed body keep the
// last good node set (libcluster reports [] and disconnects everyone); a container without an
// IP is skipped and shown in the status (libcluster crashes); requests have a time limit
// (libcluster: none); the URL is configurable.
#include <string>
#include <vector>

#include <clusterd/plugin.hpp>
#include <dns_poll.hpp>

#include "rancher_metadata.hpp"

namespace {

using std::chrono::milliseconds;
namespace opt = clusterd::option;
namespace dns = clusterd::dns_poll;

constexpr uint64_t kMaxBodyBytes = 4 << 20;
constexpr std::size_t kMaxExcerpt = 200;
constexpr const char *kSkippedKey = "containers without IP";

// The start of a body for a message: printable ASCII only, bounded.
std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kMaxExcerpt)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return body.size() > kMaxExcerpt ? out + "..." : out;
}

class RancherStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "rancher";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "node_basename@IP for every container of this service in Rancher 1.x's metadata service "
      "(libcluster's Cluster.Strategy.Rancher)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Rancher",
                                             "Elixir.Cluster.Strategy.Rancher"};
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::nonempty(
          opt::format(opt::required(opt::string("node_basename", "Node name part before '@'")),
                      CLUSTERD_FORMAT_NODE_BASENAME)),
      opt::finite(opt::positive(opt::duration(
          "polling_interval", "Time from the end of one round to the next", "\"5s\""))),
      opt::format(opt::string("metadata_url", "The metadata service's URL of this service",
                              "\"http://rancher-metadata/latest/self/service\""),
                  CLUSTERD_FORMAT_URL),
      opt::finite(opt::positive(
          opt::duration("request_timeout", "Time limit of one metadata request", "\"10s\""))),
  };

  void init(const clusterd::Config &config) override {
    basename_ = config.string("node_basename");
    interval_ = config.duration("polling_interval");
    timeout_ = config.duration("request_timeout");
    url_ = config.string("metadata_url");
    host().set_status("metadata url", url_);
  }

  void start() override { round(); }

  void stop() override {
    timer_.reset();
    call_.reset();
  }

  void refresh() override {
    if (call_) return;  // a round is in flight
    timer_.reset();
    round();
  }

 private:
  void round() {
    try {
      call_ = clusterd::HttpCall::start(host(),
                                        clusterd::HttpRequest(url_)
                                            .header("Accept", "application/json")
                                            .timeout(timeout_)
                                            .max_body_bytes(kMaxBodyBytes),
                                        [this](const clusterd::HttpResponse &r) { answered(r); });
    } catch (const std::exception &e) {
      failed(std::string("cannot query the Rancher metadata service: ") + e.what());
    }
  }

  void answered(const clusterd::HttpResponse &response) {
    if (response.status() != CLUSTERD_OK)
      return failed("request to the Rancher metadata service failed: " +
                    std::string(response.error()));
    if (!response.ok())
      return failed("the Rancher metadata service answered HTTP " +
                    std::to_string(response.http_status()) + ": " + excerpt(response.body()));
    clusterd::rancher::Service service;
    std::string error;
    if (!clusterd::rancher::parse_service(response.body(), service, error))
      return failed("malformed Rancher metadata reply from " + url_ + ": " + error);
    show_skipped(service.skipped);
    if (failing_) host().info("the Rancher metadata service answers again");
    failing_ = false;
    report_nodes(dns::node_names(basename_, service.ips));
    schedule();
  }

  void failed(const std::string &reason) {
    failing_ = true;
    discovery_failed(reason);  // the host keeps the last good set and logs once per reason
    schedule();
  }

  void show_skipped(const std::vector<std::string> &skipped) {
    std::string text;
    for (const auto &s : skipped) text += (text.empty() ? "" : "; ") + s;
    if (text == last_skipped_) return;  // log once per change, not every round
    last_skipped_ = text;
    if (text.empty()) return host().clear_status(kSkippedKey);
    host().set_status(kSkippedKey, text);
    host().info("skipping containers without a usable IP: " + text);
  }

  void schedule() {
    timer_ = clusterd::Timer::after(host(), interval_, [this] { round(); });
  }

  std::string basename_, url_;
  milliseconds interval_{5000}, timeout_{10000};
  clusterd::Timer timer_;
  clusterd::HttpCall call_;
  bool failing_ = false;
  std::string last_skipped_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(RancherStrategy);
