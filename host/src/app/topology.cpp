#include "app/topology.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <random>

namespace clusterd::app {

reconcile::Policy Topology::policy_of(const config::TopologySpec &spec) {
  reconcile::Policy policy;
  policy.connect_timeout = spec.connect_timeout;
  policy.max_parallel = spec.max_parallel;
  policy.backoff_initial = spec.backoff_initial;
  policy.backoff_max = spec.backoff_max;
  return policy;
}

Topology::Topology(plugin::HostServices &services, config::TopologySpec spec, Transport *transport)
    : services_(services),
      spec_(std::move(spec)),
      transport_(transport),
      reconciler_(policy_of(spec_), *this, std::random_device{}()),
      wake_(services.io) {}

Topology::~Topology() {
  *alive_ = false;
  strategy_.reset();  // stop + destroy the strategy first: no more reports
  if (transport_) transport_->unsubscribe(this);
}

void Topology::fail(const std::string &error) {
  ++counters_.plugin_failures;
  state_ = "failed";
  error_ = error;
  spdlog::error("[topology {}] {}", spec_.name, error);
}

void Topology::start(std::shared_ptr<const plugin::Module> module,
                     std::unique_ptr<config::OptionValues> values) {
  if (!transport_->running())
    return fail("transport '" + spec_.transport + "' is not running: " + transport_->error());
  disconnect_ =
      spec_.disconnect.value_or(module->disconnects_removed() ? config::DisconnectPolicy::removed
                                                              : config::DisconnectPolicy::never);
  reconciler_.set_disconnect_policy(disconnect_);
  transport_->subscribe(this);
  reconciler_.set_local(transport_->local_nodes());
  std::vector<std::string> listed(transport_->connected().begin(), transport_->connected().end());
  reconciler_.set_connected(listed);

  std::string error;
  strategy_ = plugin::Instance::create(services_, std::move(module), "topology " + spec_.name, this,
                                       nullptr, error);
  if (!strategy_) return fail(error);
  strategy_->on_failure([this](const std::string &reason) {
    fail(reason);
    strategy_->stop();
  });
  state_ = "running";
  if (!strategy_->init(std::move(values)) || !strategy_->start()) return fail(strategy_->error());
  spdlog::info("[topology {}] running (strategy {} from {}, transport {}, disconnect {})",
               spec_.name, spec_.strategy, strategy_->module().path().string(), spec_.transport,
               config::to_string(disconnect_));
}

nlohmann::json Topology::status() const {
  auto now = reconcile::Clock::now();
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto &node : reconciler_.status(now)) {
    nodes.push_back({{"name", node.name},
                     {"state", reconcile::to_string(node.state)},
                     {"attempts", node.attempts},
                     {"last_error", node.last_error},
                     {"retry_in_ms",
                      node.retry_in ? nlohmann::json(node.retry_in->count()) : nlohmann::json()}});
  }
  nlohmann::json last = nullptr;
  if (auto at = reconciler_.last_discovery())
    last = std::chrono::duration_cast<std::chrono::milliseconds>(now - *at).count();
  nlohmann::json details = nlohmann::json::object();
  if (strategy_)
    for (const auto &[k, v] : strategy_->details()) details[k] = v;
  return {{"name", spec_.name},
          {"strategy", spec_.strategy},
          {"transport", spec_.transport},
          {"state", state_},
          {"error", error_},
          {"disconnect", config::to_string(disconnect_)},
          {"details", details},
          {"last_discovery_ms_ago", last},
          {"discovery_error", reconciler_.discovery_error()},
          {"nodes", nodes}};
}

std::size_t Topology::connected_count() const {
  std::size_t n = 0;
  for (const auto &node : reconciler_.desired()) n += transport_->connected().count(node);
  return n;
}

// ---- strategy reports ----------------------------------------------------------------------

void Topology::round_done(bool failed) {
  ++counters_.discovery_rounds;
  counters_.discovery_errors += failed;
  if (auto seconds = strategy_ ? strategy_->take_round_seconds() : std::nullopt)
    counters_.discovery_seconds.observe(*seconds);
}

void Topology::on_nodes(std::vector<std::string> nodes) {
  spdlog::debug("[topology {}] discovered {} node(s)", spec_.name, nodes.size());
  round_done(false);
  counters_.discovered = nodes.size();
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
  if (reason != reconciler_.discovery_error())  // once per change of reason, not every round
    spdlog::warn("[topology {}] discovery failed, keeping the last good node set: {}", spec_.name,
                 reason);
  round_done(true);
  reconciler_.discovery_failed(reason);
}

std::optional<std::string> Topology::local_node() {
  auto local = transport_->local_nodes();
  if (local.empty()) return std::nullopt;
  return local.front();
}

// ---- reconciler actions --------------------------------------------------------------------

bool Topology::connect(std::uint64_t op, const std::string &node, std::string &error) {
  spdlog::debug("[topology {}] connecting to {}", spec_.name, node);
  ++counters_.connect_attempts;
  return transport_->connect(op, node, this, error);
}

bool Topology::disconnect(std::uint64_t op, const std::string &node, std::string &error) {
  spdlog::info("[topology {}] disconnecting from {} (no longer discovered)", spec_.name, node);
  return transport_->disconnect(op, node, this, error);
}

void Topology::cancel(std::uint64_t op) {
  transport_->cancel(op);
}

void Topology::wake_at(std::optional<reconcile::TimePoint> when) {
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
        reconciler_.step(reconcile::Clock::now());
      });
}

void Topology::request_step() {
  if (step_posted_) return;  // one step per batch of events
  step_posted_ = true;
  boost::asio::post(services_.io, [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (!a || !*a) return;
    step_posted_ = false;
    reconciler_.step(reconcile::Clock::now());
  });
}

void Topology::connected(const std::string &node) {
  spdlog::info("[topology {}] connected to {}", spec_.name, node);
}

void Topology::connect_failed(const std::string &node, const std::string &error, unsigned attempts,
                              std::chrono::milliseconds retry_in) {
  ++counters_.connect_failures;
  // The first failure and then every 10th, so an unreachable node does not flood the log.
  auto level = attempts == 1 || attempts % 10 == 0 ? spdlog::level::warn : spdlog::level::debug;
  spdlog::log(level, "[topology {}] unable to connect to {}: {} (attempt {}, retry in {} ms)",
              spec_.name, node, error, attempts, retry_in.count());
}

void Topology::disconnected(const std::string &node, bool ok, const std::string &error) {
  if (ok)
    spdlog::info("[topology {}] disconnected from {}", spec_.name, node);
  else
    spdlog::warn("[topology {}] disconnect from {} failed: {}", spec_.name, node, error);
}

// ---- transport reports ---------------------------------------------------------------------

void Topology::on_op_result(std::uint64_t op, bool ok, const std::string &error) {
  reconciler_.on_result(op, ok, error);
}
void Topology::on_node_up(const std::string &node) {
  reconciler_.node_up(node);
}
void Topology::on_node_down(const std::string &node) {
  reconciler_.node_down(node);
}
void Topology::on_listed(const std::vector<std::string> &nodes) {
  reconciler_.set_connected(nodes);
}
void Topology::on_local_changed(const std::vector<std::string> &local) {
  reconciler_.set_local(local);
  // Strategies that derive names from the local node (local_epmd's host part, gossip's
  // announced name) rediscover at once instead of waiting for their next round.
  if (strategy_ && strategy_->live() && strategy_->strategy().refresh) {
    clusterd_status_t status = CLUSTERD_OK;
    strategy_->guarded("refresh",
                       [&] { status = strategy_->strategy().refresh(strategy_->plugin()); });
    if (status != CLUSTERD_OK && status != CLUSTERD_E_UNSUPPORTED)
      spdlog::debug("[topology {}] refresh failed: {}", spec_.name,
                    strategy_->plugin_error("status " + std::to_string(status)));
  }
}

}  // namespace clusterd::app
