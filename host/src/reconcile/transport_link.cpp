#include "reconcile/transport_link.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <algorithm>

#include "util/ids.hpp"

namespace clusterd::reconcile {

TransportLink::TransportLink(plugin::HostServices &services, config::TransportSpec spec,
                             const RestartPolicy &restart, OptionsLoader options)
    : services_(services),
      spec_(std::move(spec)),
      supervisor_(services.io, restart),
      options_(std::move(options)) {}

TransportLink::~TransportLink() {
  *alive_ = false;
  if (resync_timer_) services_.timers.cancel(resync_timer_);
  instance_.reset();  // stop + destroy; never disconnects anything
}

template <typename F>
void TransportLink::later(F &&f) {
  boost::asio::post(services_.io,
                    [alive = std::weak_ptr<bool>(alive_), f = std::forward<F>(f)]() mutable {
                      if (auto a = alive.lock(); a && *a) f();
                    });
}

void TransportLink::fail(const std::string &error) {
  if (state_ == "failed" || state_ == "restarting") return;  // once per start
  ++plugin_failures_;
  error_ = last_failure_ = error;
  stop_instance("transport '" + spec_.name + "' failed");
  if (!module_ || !options_) {
    state_ = "failed";
    spdlog::error("[transport {}] {}", spec_.name, error);
    if (on_event_) on_event_({{"event", "failed"}, {"transport", spec_.name}, {"reason", error}});
    return;
  }
  state_ = "restarting";
  auto wait = supervisor_.failed([this] { restart(); });
  spdlog::error("[transport {}] {}; restart {} in {} ms", spec_.name, error,
                supervisor_.restarts() + 1, wait.count());
  if (on_event_)
    on_event_({{"event", "restarting"},
               {"transport", spec_.name},
               {"reason", error},
               {"restart_in_ms", wait.count()}});
}

void TransportLink::stop_instance(const std::string &why) {
  if (resync_timer_) services_.timers.cancel(resync_timer_);
  resync_timer_ = 0;
  list_op_ = 0;
  changed_since_list_.clear();
  if (instance_) instance_->stop();
  // What was in flight will never complete: each reconciler counts it failed and retries.
  std::vector<std::uint64_t> ops;
  for (const auto &[op, _] : ops_) ops.push_back(op);
  later([this, ops = std::move(ops), why] {
    for (auto op : ops) {
      auto it = ops_.find(op);  // still there: its reconciler did not unsubscribe since
      if (it == ops_.end()) continue;
      auto from = it->second.from;
      ops_.erase(it);
      from->on_result(op, false, why);
    }
  });
}

void TransportLink::restart() {
  instance_.reset();
  state_ = "starting";
  std::string error;
  auto values = options_(error);
  if (!values) return fail(error);
  start(module_, std::move(values));
}

void TransportLink::reconfigure(std::unique_ptr<config::OptionValues> values) {
  supervisor_.cancel();
  stop_instance("transport '" + spec_.name + "' restarted with new settings");
  instance_.reset();
  state_ = "starting";
  start(module_, std::move(values));
}

void TransportLink::start(std::shared_ptr<const plugin::Module> module,
                          std::unique_ptr<config::OptionValues> values) {
  bool again = instance_ == nullptr && module_ != nullptr;  // a restart, not the first start
  module_ = std::move(module);
  std::string error;
  instance_ =
      plugin::Instance::create(services_, module_, "transport " + spec_.name, nullptr, this, error);
  if (!instance_) return fail(error);
  instance_->on_failure([this, instance = instance_.get()](const std::string &reason) {
    if (instance_.get() == instance) fail(reason);  // not one replaced since
  });
  if (!instance_->init(std::move(values)) || !instance_->start()) return fail(instance_->error());
  if (!instance_->live()) return;  // failed from inside start()
  state_ = "running";
  error_.clear();
  supervisor_.running();
  spdlog::info("[transport {}] running (plugin {} from {}{})", spec_.name, spec_.plugin,
               instance_->module().path().string(),
               supervisor_.restarts() ? fmt::format(", restart {}", supervisor_.restarts()) : "");
  // The new instance knows nothing of the old one's connections: a listing says which
  // survived; without one, the topologies connect their nodes again.
  if (again && !instance_->can_list()) publish(connected_.replace({}, "transport restarted"));
  list();
  if (spec_.resync_interval.count() > 0 && instance_->can_list()) {
    resync_timer_ = services_.timers.add(spec_.resync_interval, spec_.resync_interval,
                                         [this](std::uint64_t) { list(); });
  }
  if (again) local_changed();
}

std::vector<std::string> TransportLink::local_nodes() const {
  if (!running()) return {};
  auto name = instance_->local_node();
  if (!name) return {};
  return {*name};
}

void TransportLink::subscribe(Reconciler &reconciler, std::function<void()> local_changed) {
  subscribers_.push_back({&reconciler, std::move(local_changed)});
}

void TransportLink::unsubscribe(Reconciler &reconciler) {
  std::erase_if(subscribers_, [&](const Subscriber &s) { return s.reconciler == &reconciler; });
  for (auto it = ops_.begin(); it != ops_.end();) {
    if (it->second.from == &reconciler) {
      cancel(it->first);
      it = ops_.begin();  // cancel() erased it
    } else {
      ++it;
    }
  }
}

bool TransportLink::connect(Reconciler &from, std::uint64_t op, const std::string &node,
                            std::string &error) {
  return call(true, from, op, node, error);
}

bool TransportLink::disconnect(Reconciler &from, std::uint64_t op, const std::string &node,
                               std::string &error) {
  return call(false, from, op, node, error);
}

bool TransportLink::call(bool connect, Reconciler &from, std::uint64_t op, const std::string &node,
                         std::string &error) {
  if (!running()) {
    error = "transport '" + spec_.name + "' is " + state_ + (error_.empty() ? "" : ": " + error_);
    return false;
  }
  ops_[op] = Op{&from, node, connect};
  bool started =
      connect ? instance_->connect(op, node, error) : instance_->disconnect(op, node, error);
  if (!started) ops_.erase(op);
  return started;
}

void TransportLink::cancel(std::uint64_t op) {
  if (!ops_.erase(op)) return;
  if (running()) instance_->cancel(op);
}

void TransportLink::list() {
  if (!running() || !instance_->can_list() || list_op_) return;
  auto op = util::next_id();
  list_op_ = op;
  changed_since_list_.clear();
  std::string error;
  auto result = instance_->list(op, error);
  if (result != plugin::Instance::Call::ok && list_op_ == op) {
    list_op_ = 0;
    if (result == plugin::Instance::Call::failed)
      spdlog::warn("[transport {}] list_nodes failed: {}", spec_.name, error);
  }
}

void TransportLink::publish(const std::vector<ConnectedChange> &changes) {
  if (changes.empty()) return;
  for (const auto &subscriber : subscribers_) subscriber.reconciler->on_connected(changes);
  if (connected_changed_) connected_changed_(changes);
}

void TransportLink::on_complete(clusterd_id_t op, clusterd_status_t status, std::string message) {
  later([this, op, status, message = std::move(message)] {
    auto it = ops_.find(op);
    if (it == ops_.end()) {
      spdlog::debug("[transport {}] ignored completion of unknown or cancelled op {}", spec_.name,
                    op);
      return;
    }
    auto done = std::move(it->second);
    ops_.erase(it);
    // Keep the connected set current even for transports that send no nodeup/nodedown.
    if (status == CLUSTERD_OK) {
      if (list_op_) changed_since_list_.insert(done.node);
      publish(done.connect ? connected_.up(done.node)
                           : connected_.down(done.node, "disconnected by clusterd"));
    }
    std::string error = message;
    if (status != CLUSTERD_OK && error.empty())
      error = "failed with status " + std::to_string(status);
    done.from->on_result(op, status == CLUSTERD_OK, error);
  });
}

void TransportLink::on_list(clusterd_id_t op, clusterd_status_t status, std::string message,
                            std::vector<std::string> nodes) {
  later([this, op, status, message = std::move(message), nodes = std::move(nodes)] {
    if (op != list_op_) return;
    list_op_ = 0;
    if (status != CLUSTERD_OK) {
      spdlog::warn("[transport {}] list_nodes failed: {}", spec_.name, message);
      return;
    }
    auto local = local_nodes();
    std::set<std::string> listed_now;
    for (const auto &node : nodes)
      if (std::find(local.begin(), local.end(), node) == local.end()) listed_now.insert(node);
    // The listing is a snapshot from when list_nodes ran: a connect, disconnect, nodeup or
    // nodedown seen since then is newer, so those nodes keep the state we know.
    for (const auto &node : changed_since_list_) {
      if (connected_.contains(node))
        listed_now.insert(node);
      else
        listed_now.erase(node);
    }
    changed_since_list_.clear();
    publish(connected_.replace(std::move(listed_now), "no longer listed"));
  });
}

void TransportLink::on_node_up(std::string node) {
  later([this, node = std::move(node)] {
    if (list_op_) changed_since_list_.insert(node);
    publish(connected_.up(node));
  });
}

void TransportLink::on_node_down(std::string node, std::string reason) {
  later([this, node = std::move(node), reason = std::move(reason)] {
    spdlog::info("[transport {}] nodedown {}{}", spec_.name, node,
                 reason.empty() ? "" : ": " + reason);
    if (list_op_) changed_since_list_.insert(node);
    publish(connected_.down(node, reason));
  });
}

void TransportLink::local_changed() {
  auto local = local_nodes();
  for (const auto &subscriber : subscribers_) {
    subscriber.reconciler->set_local(local);
    if (subscriber.local_changed) subscriber.local_changed();
  }
}

void TransportLink::on_local_changed() {
  later([this] {
    local_changed();
    list();
  });
}

}  // namespace clusterd::reconcile
