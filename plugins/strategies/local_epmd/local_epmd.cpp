// Strategy "local_epmd": libcluster's Cluster.Strategy.LocalEpmd — every node registered in the
// local EPMD (NAMES on 127.0.0.1:4369), reported as name@HOST.
//
// HOST is what libcluster uses: the host part of the local node's name (libcluster takes it
// from node(); here the topology's transport reports the local node, through the strategy
// sink's local_node()). The `host` option overrides it. While neither is known, a round fails
// (discovery_failed) instead of guessing: a wrong host part gives names that never connect.
//
// Differences from libcluster, on purpose: libcluster scans once at start; this re-scans (so
// nodes started later join) on an adaptive schedule: every 100 ms for 3 s after start-up and
// after any change of the names, then backing off, doubling, to `polling_interval`
// (plugins/common/epmd/poll_schedule.hpp). "infinity" scans once at start and then only on
// refresh(): the host calls it whenever the transport's local nodes change, and the erlang
// transport with nodes = "local" watches this same EPMD and reports every node that comes or
// goes, so beside it (the shipped configuration) a schedule of our own would only poll the
// same EPMD twice. An unreachable EPMD fails the round (the host keeps the last good set);
// libcluster crashes its start instead. Like libcluster, it never asks the host to disconnect a
// node that left EPMD.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <clusterd/plugin.hpp>

#include "epmd_client.hpp"
#include "poll_schedule.hpp"

namespace {

using std::chrono::milliseconds;

constexpr const char *kLocalEpmdHost = "127.0.0.1";
constexpr const char *kHostKey = "node host";

class LocalEpmdStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "local_epmd";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Every node registered in the local EPMD, as name@HOST (libcluster's "
      "Cluster.Strategy.LocalEpmd)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.LocalEpmd",
                                             "Elixir.Cluster.Strategy.LocalEpmd"};
  // No CLUSTERD_PLUGIN_DISCONNECTS_REMOVED: like libcluster's LocalEpmd, never disconnects.
  static constexpr uint32_t kFlags = 0;
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::at_least(
          clusterd::option::duration(
              "polling_interval",
              "How often to ask the local EPMD for its names once they stop changing (every "
              "100 ms for 3 s after start-up and after any change, then backing off, doubling, "
              "to this). \"infinity\": once at start, as libcluster does, and again whenever "
              "the transport's local nodes change (enough beside the erlang transport with "
              "nodes = \"local\", which watches the same EPMD)",
              "\"5s\""),
          1),
      clusterd::epmd::port_option("TCP port of the local EPMD (ERL_EPMD_PORT)"),
      clusterd::option::string("host",
                               "Host part of the node names; default: that of the local node's "
                               "name, as the transport reports it"),
      clusterd::epmd::timeout_option("Time limit of one EPMD query"),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    // The host part of the node-name rule: "n@HOST" must be a node name.
    if (auto host = config.optional_string("host");
        host && !clusterd::valid_node_name("n@" + *host))
      problems.add("host", "'" + *host + "' cannot be the host part of a node name: " +
                               clusterd::node_name_error("n@" + *host));
  }

  void init(const clusterd::Config &config) override {
    interval_ = config.duration("polling_interval");
    epmd_port_ = static_cast<std::uint16_t>(config.integer("epmd_port"));
    host_ = config.optional_string("host");
    epmd_timeout_ = config.duration("epmd_timeout");
  }

  void start() override {
    if (!clusterd::is_infinite(interval_)) schedule_.emplace(interval_);
    scan();
  }

  void stop() override {
    timer_.reset();
    query_.reset();
  }

  void refresh() override { scan(); }

 private:
  // One NAMES query at a time; asked again while one runs, it runs once more afterwards (the
  // reason to ask, a change, may be newer than the running query's answer).
  void scan() {
    if (query_.active()) {
      again_ = true;
      return;
    }
    again_ = false;
    timer_.reset();
    clusterd::epmd::Target target;
    target.host = kLocalEpmdHost;
    target.port = epmd_port_;
    target.timeout = epmd_timeout_;
    query_ = clusterd::epmd::Client::names(host(), target,
                                           [this](clusterd::epmd::NamesOutcome o) { scanned(o); });
  }

  void scanned(const clusterd::epmd::NamesOutcome &outcome) {
    if (again_) return scan();
    std::optional<std::vector<std::string>> names;  // none: the round failed
    if (outcome.status == CLUSTERD_OK) {
      names.emplace();
      for (const auto &entry : outcome.names) names->push_back(entry.name);
      std::sort(names->begin(), names->end());
    }
    if (schedule_) {
      const bool changed = !scanned_once_ || (names && names != last_names_);
      timer_ = clusterd::Timer::after(host(), schedule_->next(changed), [this] { scan(); });
    }
    scanned_once_ = true;
    last_names_ = names;
    report(outcome);
  }

  void report(const clusterd::epmd::NamesOutcome &outcome) {
    if (outcome.status != CLUSTERD_OK) return discovery_failed(outcome.error());
    const std::optional<std::string> suffix = node_host();
    // At start the transport is usually still connecting to its node: wait for it quietly
    // (the host calls refresh() when the local node becomes known) for one polling_interval
    // (the quick rounds after start-up must not complain), or one round with "infinity";
    // complain afterwards.
    if (!suffix) {
      const auto now = std::chrono::steady_clock::now();
      if (!unnamed_since_) unnamed_since_ = now;
      if (schedule_ ? now - *unnamed_since_ < interval_ : ++unnamed_rounds_ == 1) return;
    }
    if (!suffix)
      return discovery_failed(
          "cannot name the " + std::to_string(outcome.names.size()) +
          " node(s) registered in the local EPMD: the local node's name is not known (the "
          "transport has not reported it); set the option `host`");
    std::vector<std::string> nodes;
    std::unordered_set<std::string> seen;
    for (const auto &entry : outcome.names) {
      std::string node = entry.name + "@" + *suffix;
      if (seen.insert(node).second) nodes.push_back(std::move(node));
    }
    report_nodes(nodes);  // an EPMD without names is a real answer: no nodes
  }

  // The host part: the option, else that of the local node's name; shown in the status.
  std::optional<std::string> node_host() {
    std::string value, shown;
    if (host_) {
      value = *host_;
      shown = value + " (configured)";
    } else {
      const std::optional<std::string> local = local_node_name();
      const auto at = local ? local->find('@') : std::string::npos;
      if (at == std::string::npos || !clusterd::valid_node_name(*local)) {
        if (!shown_.empty()) host().clear_status(kHostKey);
        shown_.clear();
        return std::nullopt;
      }
      value = local->substr(at + 1);
      shown = value + " (from the local node " + *local + ")";
    }
    if (shown != shown_) host().set_status(kHostKey, shown);
    shown_ = shown;
    return value;
  }

  milliseconds interval_{5000};
  std::uint16_t epmd_port_ = clusterd::epmd::kDefaultPort;
  std::optional<std::string> host_;
  milliseconds epmd_timeout_{5000};
  std::optional<clusterd::epmd::PollSchedule> schedule_;  // none: "infinity"
  clusterd::Timer timer_;                                 // the next scheduled scan
  clusterd::epmd::Client query_;
  bool again_ = false;  // scan() was called while query_ ran
  bool scanned_once_ = false;
  std::optional<std::vector<std::string>> last_names_;  // sorted; none after a failed round
  // The first round that found names but no local node to name them by; such rounds.
  std::optional<std::chrono::steady_clock::time_point> unnamed_since_;
  unsigned unnamed_rounds_ = 0;
  std::string shown_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(LocalEpmdStrategy);
