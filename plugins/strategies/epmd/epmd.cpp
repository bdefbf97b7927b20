// Strategy "epmd": libcluster's Cluster.Strategy.Epmd — a fixed list of node names, reported
// as the full set at start (and again every `timeout` if finite, and on refresh).
//
// In addition (informational only, it never changes the reported set; the host's reconciler
// retries the connects): for each configured node alive@host, ask that host's EPMD
// (PORT_PLEASE2) whether `alive` is registered, at start and then every `timeout` when finite,
// else every 30 s, and show the answer in the status details:
//   "not registered in epmd" = "b@10.0.0.2, c@10.0.0.3"  (EPMD answered: no such name)
//   "epmd unreachable"       = "10.0.0.4:4369: connection refused; ..."  (no valid answer)
// A key is removed when nothing is left under it.
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <clusterd/plugin.hpp>

#include "epmd_client.hpp"

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kCheckEveryWhenInfinite{30000};
constexpr std::size_t kMaxParallelChecks = 16;
constexpr const char *kNotRegisteredKey = "not registered in epmd";
constexpr const char *kUnreachableKey = "epmd unreachable";

class EpmdStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "epmd";
  static constexpr const char *kVersion = "0.2.0";
  static constexpr const char *kDescription =
      "A fixed list of nodes to connect to (libcluster's Cluster.Strategy.Epmd); also shows "
      "which of them their host's EPMD does not know";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Epmd",
                                             "Elixir.Cluster.Strategy.Epmd"};
  // No CLUSTERD_PLUGIN_DISCONNECTS_REMOVED: like libcluster's Epmd, never disconnects.
  static constexpr uint32_t kFlags = 0;
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::format(
          clusterd::option::string_list("hosts", "Node names (name@host) to connect to", "[]"),
          CLUSTERD_FORMAT_NODE_NAME),
      clusterd::option::at_least(
          clusterd::option::duration(
              "timeout",
              "Re-report the hosts this often so dropped nodes are reconnected; \"infinity\" "
              "reports once (the host's reconciler already retries failed connects with backoff)",
              "\"infinity\""),
          1),
      clusterd::epmd::port_option("TCP port of the EPMDs asked whether the nodes are registered"),
      clusterd::epmd::timeout_option("Time limit of one EPMD query"),
      clusterd::option::boolean("epmd_check",
                                "Ask each host's EPMD whether the node is registered and show "
                                "the missing ones in the status (never changes the node set)",
                                "true"),
  };

  void init(const clusterd::Config &config) override {
    std::unordered_set<std::string> seen;
    for (auto &node : config.strings("hosts"))
      if (seen.insert(node).second) hosts_.push_back(std::move(node));
    timeout_ = config.duration("timeout");
    epmd_port_ = static_cast<std::uint16_t>(config.integer("epmd_port"));
    epmd_timeout_ = config.duration("epmd_timeout");
    check_ = config.boolean("epmd_check");
  }

  void start() override {
    report_nodes(hosts_);  // an empty list is a valid report: nothing to connect
    if (hosts_.empty()) return;
    if (check_ && !services_for_check()) {
      check_ = false;
      host().info("EPMD check disabled: the host offers no " CLUSTERD_SERVICE_FD
                  " or " CLUSTERD_SERVICE_TIMER);
    }
    if (!clusterd::is_infinite(timeout_)) {
      timer_ = clusterd::Timer::every(host(), timeout_, [this] {
        report_nodes(hosts_);
        check();
      });
    } else if (check_) {
      timer_ = clusterd::Timer::every(host(), kCheckEveryWhenInfinite, [this] { check(); });
    }
    check();
  }

  void stop() override {
    timer_.reset();
    queries_.clear();  // cancels every EPMD query in flight
  }

  void refresh() override {
    report_nodes(hosts_);
    check();
  }

 private:
  struct Result {
    bool done = false;
    bool registered = false;
    std::string endpoint, reason;  // reason empty: EPMD answered
  };

  bool services_for_check() {
    return host().service(CLUSTERD_SERVICE_FD) != nullptr &&
           host().service(CLUSTERD_SERVICE_TIMER) != nullptr;
  }

  // Starts a round of PORT_PLEASE2 queries, one per node, at most kMaxParallelChecks at once.
  // A round still running is left alone (the next tick starts a fresh one).
  void check() {
    if (!check_ || !queries_.empty()) return;
    results_.assign(hosts_.size(), Result{});
    next_ = 0;
    launch();
  }

  void launch() {
    while (next_ < hosts_.size() && queries_.size() < kMaxParallelChecks) {
      const std::size_t i = next_++;
      // init() admitted only names that follow the rule, whose name part EPMD can register.
      const auto node = clusterd::parse_node_name(hosts_[i]);
      const std::string alive(node->name);
      clusterd::epmd::Target target;
      target.host = std::string(node->host);
      target.port = epmd_port_;
      target.timeout = epmd_timeout_;
      results_[i].endpoint = clusterd::epmd::endpoint_text(target.host, target.port);
      try {
        queries_.emplace(i, clusterd::epmd::Client::port_please2(
                                host(), target, alive,
                                [this, i](clusterd::epmd::PortOutcome o) { answered(i, o); }));
      } catch (const std::exception &e) {
        results_[i].done = true;
        results_[i].reason = e.what();
      }
    }
    if (queries_.empty()) publish();
  }

  void answered(std::size_t i, const clusterd::epmd::PortOutcome &outcome) {
    Result &r = results_[i];
    r.done = true;
    if (outcome.status == CLUSTERD_OK) {
      r.registered = outcome.reply.registered;
    } else {
      r.reason = outcome.reason;
    }
    queries_.erase(i);  // destroys the finished client (allowed from inside its callback)
    launch();
  }

  // Publishes the round's answers in the status details; logs when they change.
  void publish() {
    std::string missing, unreachable;
    std::unordered_set<std::string> endpoints;
    for (std::size_t i = 0; i < results_.size(); ++i) {
      const Result &r = results_[i];
      if (!r.done) continue;
      if (!r.reason.empty()) {
        if (endpoints.insert(r.endpoint).second)
          unreachable += (unreachable.empty() ? "" : "; ") + r.endpoint + ": " + r.reason;
      } else if (!r.registered) {
        missing += (missing.empty() ? "" : ", ") + hosts_[i];
      }
    }
    show(kNotRegisteredKey, missing, last_missing_);
    show(kUnreachableKey, unreachable, last_unreachable_);
  }

  void show(const char *key, const std::string &value, std::string &last) {
    if (value == last) return;
    if (value.empty()) {
      host().clear_status(key);
      host().info(std::string(key) + ": none any more");
    } else {
      host().set_status(key, value);
      host().warn(std::string(key) + ": " + value);
    }
    last = value;
  }

  std::vector<std::string> hosts_;
  std::chrono::milliseconds timeout_{clusterd::kInfinite};
  std::uint16_t epmd_port_ = clusterd::epmd::kDefaultPort;
  milliseconds epmd_timeout_{5000};
  bool check_ = true;
  clusterd::Timer timer_;

  std::vector<Result> results_;
  std::size_t next_ = 0;
  std::map<std::size_t, clusterd::epmd::Client> queries_;
  std::string last_missing_, last_unreachable_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(EpmdStrategy);
