#include "app/transport.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <algorithm>

#include "util/ids.hpp"

namespace clusterd::app {

Transport::Transport(plugin::HostServices &services, config::TransportSpec spec)
    : services_(services), spec_(std::move(spec)) {}

Transport::~Transport() {
  *alive_ = false;
  if (resync_timer_) services_.timers.cancel(resync_timer_);
  instance_.reset();  // stop + destroy; never disconnects anything
}

template <typename F>
void Transport::later(F &&f) {
  boost::asio::post(services_.io,
                    [alive = std::weak_ptr<bool>(alive_), f = std::forward<F>(f)]() mutable {
                      if (auto a = alive.lock(); a && *a) f();
                    });
}

void Transport::fail(const std::string &error) {
  ++plugin_failures_;
  state_ = "failed";
  error_ = error;
  spdlog::error("[transport {}] {}", spec_.name, error);
}

void Transport::start(std::shared_ptr<const plugin::Module> module,
                      std::unique_ptr<config::OptionValues> values) {
  std::string error;
  instance_ = plugin::Instance::create(services_, std::move(module), "transport " + spec_.name,
                                       nullptr, this, error);
  if (!instance_) return fail(error);
  instance_->on_failure([this](const std::string &reason) {
    fail(reason);
    instance_->stop();
  });
  if (!instance_->init(std::move(values)) || !instance_->start()) return fail(instance_->error());
  state_ = "running";
  spdlog::info("[transport {}] running (plugin {} from {})", spec_.name, spec_.plugin,
               instance_->module().path().string());
  list();
  if (spec_.resync_interval.count() > 0 && instance_->transport().list_nodes) {
    resync_timer_ = services_.timers.add(spec_.resync_interval, spec_.resync_interval,
                                         [this](std::uint64_t) { list(); });
  }
}

std::vector<std::string> Transport::local_nodes() {
  if (!running() || !instance_->transport().local_node) return {};
  const char *name = nullptr;
  instance_->guarded("local_node",
                     [&] { name = instance_->transport().local_node(instance_->plugin()); });
  if (!name || !*name) return {};
  return {name};
}

const std::map<std::string, std::string> *Transport::details() const {
  return instance_ ? &instance_->details() : nullptr;
}

void Transport::subscribe(TransportListener *listener) {
  listeners_.push_back(listener);
}

void Transport::unsubscribe(TransportListener *listener) {
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
  for (auto it = ops_.begin(); it != ops_.end();) {
    if (it->second.listener == listener) {
      cancel(it->first);
      it = ops_.begin();  // cancel() erased it
    } else {
      ++it;
    }
  }
}

bool Transport::connect(std::uint64_t op, const std::string &node, TransportListener *from,
                        std::string &error) {
  return call(true, op, node, from, error);
}

bool Transport::disconnect(std::uint64_t op, const std::string &node, TransportListener *from,
                           std::string &error) {
  return call(false, op, node, from, error);
}

bool Transport::call(bool connect, std::uint64_t op, const std::string &node,
                     TransportListener *from, std::string &error) {
  if (!running()) {
    error = "transport '" + spec_.name + "' is " + state_ + (error_.empty() ? "" : ": " + error_);
    return false;
  }
  ops_[op] = Op{from, node, connect};
  const auto &t = instance_->transport();
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  bool returned = instance_->guarded(connect ? "connect" : "disconnect", [&] {
    status = (connect ? t.connect : t.disconnect)(instance_->plugin(), op, node.c_str());
  });
  if (returned && status == CLUSTERD_OK) return true;
  ops_.erase(op);
  error =
      returned ? instance_->plugin_error("status " + std::to_string(status)) : instance_->error();
  return false;
}

void Transport::cancel(std::uint64_t op) {
  if (!ops_.erase(op)) return;
  if (running() && instance_->transport().cancel)
    instance_->guarded("cancel", [&] { instance_->transport().cancel(instance_->plugin(), op); });
}

void Transport::list() {
  if (!running() || !instance_->transport().list_nodes || list_op_) return;
  auto op = util::next_id();
  list_op_ = op;
  changed_since_list_.clear();
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  instance_->guarded("list_nodes",
                     [&] { status = instance_->transport().list_nodes(instance_->plugin(), op); });
  if (status != CLUSTERD_OK && list_op_ == op) {
    list_op_ = 0;
    if (status != CLUSTERD_E_UNSUPPORTED)
      spdlog::warn("[transport {}] list_nodes failed: {}", spec_.name,
                   instance_->plugin_error("status " + std::to_string(status)));
  }
}

void Transport::on_complete(clusterd_id_t op, clusterd_status_t status, std::string message) {
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
      set_connected(done.node, done.connect, "disconnected by clusterd");
      if (list_op_) changed_since_list_.insert(done.node);
    }
    std::string error = message;
    if (status != CLUSTERD_OK && error.empty())
      error = "failed with status " + std::to_string(status);
    done.listener->on_op_result(op, status == CLUSTERD_OK, error);
  });
}

void Transport::set_connected(const std::string &node, bool up, const std::string &reason) {
  const bool changed = up ? connected_.insert(node).second : connected_.erase(node) > 0;
  if (changed && connected_changed_) connected_changed_({{node, up, up ? "" : reason}});
}

void Transport::on_list(clusterd_id_t op, clusterd_status_t status, std::string message,
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
      if (connected_.count(node))
        listed_now.insert(node);
      else
        listed_now.erase(node);
    }
    changed_since_list_.clear();
    if (connected_changed_) {
      std::vector<ConnectedChange> changes;
      for (const auto &node : connected_)
        if (!listed_now.count(node)) changes.push_back({node, false, "no longer listed"});
      for (const auto &node : listed_now)
        if (!connected_.count(node)) changes.push_back({node, true, ""});
      if (!changes.empty()) connected_changed_(changes);
    }
    connected_ = std::move(listed_now);
    std::vector<std::string> listed(connected_.begin(), connected_.end());
    for (auto *listener : listeners_) listener->on_listed(listed);
  });
}

void Transport::on_node_up(std::string node) {
  later([this, node = std::move(node)] {
    set_connected(node, true, "");
    if (list_op_) changed_since_list_.insert(node);
    for (auto *listener : listeners_) listener->on_node_up(node);
  });
}

void Transport::on_node_down(std::string node, std::string reason) {
  later([this, node = std::move(node), reason = std::move(reason)] {
    spdlog::info("[transport {}] nodedown {}{}", spec_.name, node,
                 reason.empty() ? "" : ": " + reason);
    set_connected(node, false, reason);
    if (list_op_) changed_since_list_.insert(node);
    for (auto *listener : listeners_) listener->on_node_down(node);
  });
}

void Transport::on_local_changed() {
  later([this] {
    auto local = local_nodes();
    for (auto *listener : listeners_) listener->on_local_changed(local);
    list();
  });
}

}  // namespace clusterd::app
