#include "reconcile/topology.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <random>

namespace clusterd::reconcile {

Topology::Topology(plugin::HostServices &services, config::TopologySpec spec, TransportLink &link,
                   std::shared_ptr<const plugin::Module> module, const RestartPolicy &restart,
                   OptionsLoader options)
    : services_(services),
      spec_(std::move(spec)),
      link_(link),
      module_(std::move(module)),
      reconciler_(policy_of(spec_, module_ && module_->disconnects_removed()), link_, *this,
                  std::random_device{}()),
      wake_(services.io),
      supervisor_(services.io, restart),
      options_(std::move(options)) {
  link_.subscribe(reconciler_, [this] { local_changed(); });
}

Topology::~Topology() {
  *alive_ = false;
  strategy_.reset();  // stop + destroy the strategy first: no more reports
  link_.unsubscribe(reconciler_);
}

void Topology::fail(const std::string &error) {
  if (state_ == "failed" || state_ == "restarting") return;  // once per start
  ++counters_.plugin_failures;
  error_ = last_failure_ = error;
  if (strategy_) strategy_->stop();  // no more reports; destroyed at the restart
  // Not restarted: a plugin that could not be loaded, or a transport that failed for good
  // (both wait for a reload).
  if (!module_ || !options_ || link_.state() == "failed") {
    state_ = "failed";
    spdlog::error("[topology {}] {}", spec_.name, error);
    event({{"event", "failed"}, {"topology", spec_.name}, {"reason", error}});
    return;
  }
  state_ = "restarting";
  auto wait = supervisor_.failed([this] { restart(); });
  spdlog::error("[topology {}] {}; restart {} in {} ms", spec_.name, error,
                supervisor_.restarts() + 1, wait.count());
  event({{"event", "restarting"},
         {"topology", spec_.name},
         {"reason", error},
         {"restart_in_ms", wait.count()}});
}

void Topology::restart() {
  strategy_.reset();
  state_ = "starting";
  std::string error;
  auto values = options_(error);
  if (!values) return fail(error);
  start(std::move(values));
}

void Topology::reconfigure(std::unique_ptr<config::OptionValues> values) {
  supervisor_.cancel();
  strategy_.reset();
  state_ = "starting";
  start(std::move(values));
}

void Topology::start(std::unique_ptr<config::OptionValues> values) {
  waits_for_transport_ = !link_.running();
  if (waits_for_transport_)
    return fail("transport '" + spec_.transport + "' is not running" +
                (link_.error().empty() ? "" : ": " + link_.error()));
  reconciler_.set_local(link_.local_nodes());

  std::string error;
  strategy_ =
      plugin::Instance::create(services_, module_, "topology " + spec_.name, this, nullptr, error);
  if (!strategy_) return fail(error);
  strategy_->on_failure([this, instance = strategy_.get()](const std::string &reason) {
    if (strategy_.get() == instance) fail(reason);  // not one replaced since
  });
  state_ = "running";
  if (!strategy_->init(std::move(values)) || !strategy_->start()) return fail(strategy_->error());
  if (state_ != "running") return;  // failed from inside start()
  error_.clear();
  supervisor_.running();
  spdlog::info("[topology {}] running (strategy {} from {}, transport {}, disconnect {}{})",
               spec_.name, spec_.strategy, strategy_->module().path().string(), spec_.transport,
               config::to_string(reconciler_.policy().disconnect),
               supervisor_.restarts() ? fmt::format(", restart {}", supervisor_.restarts()) : "");
}

plugin::Instance::Call Topology::refresh(std::string &error) {
  if (state_ != "running" || !strategy_) {
    error = "topology '" + spec_.name + "' is " + state_ + (error_.empty() ? "" : ": " + error_);
    return plugin::Instance::Call::failed;
  }
  auto result = strategy_->refresh(error);
  if (result == plugin::Instance::Call::unsupported)
    error = "topology '" + spec_.name + "': strategy " + spec_.strategy +
            " does not implement refresh (it discovers on its own schedule)";
  else if (result == plugin::Instance::Call::failed)
    error = "topology '" + spec_.name + "': refresh failed: " + error;
  else
    spdlog::info("[topology {}] refresh requested", spec_.name);
  return result;
}

nlohmann::json Topology::status() const {
  auto now = Clock::now();
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto &node : reconciler_.status(now)) {
    nodes.push_back({{"name", node.name},
                     {"state", to_string(node.state)},
                     {"attempts", node.attempts},
                     {"last_error", node.last_error},
                     {"retry_in_ms",
                      node.retry_in ? nlohmann::json(node.retry_in->count()) : nlohmann::json()}});
  }
  nlohmann::json last = nullptr;
  if (auto at = reconciler_.last_discovery())
    last = std::chrono::duration_cast<std::chrono::milliseconds>(now - *at).count();
  auto formation = reconciler_.formation_status(now);
  formation["formed"] = formed_;
  nlohmann::json details = nlohmann::json::object();
  nlohmann::json refused = {{"count", 0}, {"recent", nlohmann::json::array()}};
  if (strategy_) {
    for (const auto &[k, v] : strategy_->details()) details[k] = v;
    // Names the strategy reported that break the node-name rule, refused at the sink (escaped).
    refused = {{"count", strategy_->refused_names().count},
               {"recent", strategy_->refused_names().recent}};
  }
  return {{"name", spec_.name},
          {"strategy", spec_.strategy},
          {"transport", spec_.transport},
          {"state", state_},
          {"error", error_},
          {"last_failure", last_failure_},
          {"restarts", supervisor_.restarts()},
          {"next_restart_in_ms", supervisor_.status()["next_restart_in_ms"]},
          {"disconnect", config::to_string(reconciler_.policy().disconnect)},
          {"details", details},
          {"last_discovery_ms_ago", last},
          {"discovery_error", reconciler_.discovery_error()},
          {"discovered", counters_.discovered},
          {"last_round_ms", last_round_ms_ ? nlohmann::json(*last_round_ms_) : nlohmann::json()},
          {"refused_names", refused},
          {"formation", formation},
          {"nodes", nodes}};
}

// ---- strategy reports ----------------------------------------------------------------------

void Topology::round_done(bool failed) {
  ++counters_.discovery_rounds;
  counters_.discovery_errors += failed;
  if (auto seconds = strategy_ ? strategy_->take_round_seconds() : std::nullopt) {
    counters_.discovery_seconds.observe(*seconds);
    last_round_ms_ = *seconds * 1000;
  }
}

void Topology::on_nodes(std::vector<std::string> nodes) {
  spdlog::debug("[topology {}] discovered {} node(s)", spec_.name, nodes.size());
  round_done(false);
  counters_.discovered = nodes.size();
  if (!reconciler_.discovery_error().empty())
    event({{"event", "discovery_ok"}, {"topology", spec_.name}, {"nodes", nodes.size()}});
  reconciler_.set_desired(nodes);
}
// Event-style strategies have no rounds: the discovered count follows the reconciler's set.
void Topology::on_node_seen(std::string node) {
  reconciler_.node_seen(node);
  counters_.discovered = reconciler_.desired().size();
}
void Topology::on_node_lost(std::string node) {
  reconciler_.node_lost(node);
  counters_.discovered = reconciler_.desired().size();
}

void Topology::on_discovery_failed(std::string reason) {
  if (reason != reconciler_.discovery_error()) {  // once per change of reason, not every round
    spdlog::warn("[topology {}] discovery failed, keeping the last good node set: {}", spec_.name,
                 reason);
    event({{"event", "discovery_failed"}, {"topology", spec_.name}, {"reason", reason}});
  }
  round_done(true);
  reconciler_.discovery_failed(reason);
}

std::optional<std::string> Topology::local_node() {
  auto local = link_.local_nodes();
  if (local.empty()) return std::nullopt;
  return local.front();
}

// Strategies that derive names from the local node (local_epmd's host part, gossip's announced
// name) rediscover at once instead of waiting for their next round.
void Topology::local_changed() {
  // Waiting for the transport (restarted or late)? It may be back: try now, not at the backoff.
  if (state_ == "restarting" && waits_for_transport_ && link_.running())
    return supervisor_.restart_now();
  if (!strategy_ || state_ != "running") return;
  std::string error;
  if (strategy_->refresh(error) == plugin::Instance::Call::failed)
    spdlog::debug("[topology {}] refresh failed: {}", spec_.name, error);
}

// ---- the reconciler's runtime --------------------------------------------------------------

void Topology::wake_at(std::optional<TimePoint> when) {
  if (when == wake_when_) return;
  wake_when_ = when;
  wake_.cancel();
  if (!when) return;
  wake_.expires_at(*when);
  wake_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code &ec) {
        auto a = alive.lock();
        if (ec || !a || !*a) return;
        wake_when_.reset();
        step();
      });
}

void Topology::request_step() {
  if (step_posted_) return;  // one step per batch of events
  step_posted_ = true;
  boost::asio::post(services_.io, [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (!a || !*a) return;
    step_posted_ = false;
    step();
  });
}

void Topology::step() {
  reconciler_.step(Clock::now());
  if (formed_ || !reconciler_.formed()) return;
  formed_ = true;
  if (reconciler_.policy().formation.gates())
    spdlog::info("[topology {}] formed: {} node(s) connected", spec_.name,
                 reconciler_.connected_count());
  if (on_formed_) on_formed_();
}

void Topology::gate_opened(std::size_t nodes) {
  const auto &rule = reconciler_.policy().formation;
  spdlog::info(
      "[topology {}] formation gate open: {} node(s) discovered (min_nodes {}, "
      "stable_for {} ms), connecting",
      spec_.name, nodes, rule.min_nodes, rule.stable_for.count());
}

void Topology::connecting(const std::string &node) {
  spdlog::debug("[topology {}] connecting to {}", spec_.name, node);
  ++counters_.connect_attempts;
}

void Topology::connected(const std::string &node) {
  spdlog::info("[topology {}] connected to {}", spec_.name, node);
}

void Topology::connect_failed(const std::string &node, const std::string &error, unsigned attempts,
                              milliseconds retry_in) {
  ++counters_.connect_failures;
  // The first failure and then every 10th, so an unreachable node does not flood the log.
  auto level = attempts == 1 || attempts % 10 == 0 ? spdlog::level::warn : spdlog::level::debug;
  spdlog::log(level, "[topology {}] unable to connect to {}: {} (attempt {}, retry in {} ms)",
              spec_.name, node, error, attempts, retry_in.count());
}

void Topology::disconnecting(const std::string &node) {
  spdlog::info("[topology {}] disconnecting from {} (no longer discovered)", spec_.name, node);
}

void Topology::disconnected(const std::string &node, bool ok, const std::string &error) {
  if (ok)
    spdlog::info("[topology {}] disconnected from {}", spec_.name, node);
  else
    spdlog::warn("[topology {}] disconnect from {} failed: {}", spec_.name, node, error);
}

}  // namespace clusterd::reconcile
