#include "plugin/instance.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "log/log.hpp"
#include "plugin/host_table.hpp"

namespace clusterd::plugin {
namespace {

constexpr std::size_t kPluginMinSize = offsetof(clusterd_plugin_t, get_interface) + sizeof(void *);
constexpr auto kSlowStop = std::chrono::seconds(1);

constexpr std::size_t kMaxReadOnlyCommands = 256;

template <typename T>
T clamped_copy(const void *source) {
  T copy;
  std::memset(&copy, 0, sizeof copy);
  auto size = static_cast<const T *>(source)->struct_size;
  std::memcpy(&copy, source, std::min<std::size_t>(size, sizeof(T)));
  return copy;
}

}  // namespace

Instance::Instance(HostServices &services, std::shared_ptr<const Module> module, std::string label)
    : services_(services), module_(std::move(module)), label_(std::move(label)) {}

std::shared_ptr<Instance> Instance::create(HostServices &services,
                                           std::shared_ptr<const Module> module, std::string label,
                                           StrategyEvents *strategy_events,
                                           TransportEvents *transport_events, std::string &error) {
  std::shared_ptr<Instance> self(new Instance(services, std::move(module), std::move(label)));
  self->strategy_events_ = strategy_events;
  self->transport_events_ = transport_events;
  self->host_ = HostTable::make(self.get());
  const auto &descriptor = self->module_->descriptor();
  clusterd_plugin_t *plugin = nullptr;
  self->guarded("create", [&] { plugin = descriptor.create(&self->host_); });
  if (!plugin) {
    error = self->error_.empty() ? "plugin '" + self->module_->name() + "': create returned NULL"
                                 : self->error_;
    return nullptr;
  }
  self->plugin_ = plugin;
  if (plugin->struct_size < kPluginMinSize) {
    // Too small to have destroy: nothing can safely be called on it.
    self->plugin_ = nullptr;
    error = "plugin '" + self->module_->name() + "': instance struct_size " +
            std::to_string(plugin->struct_size) + " is too small";
    return nullptr;
  }
  self->vtable_ = clamped_copy<clusterd_plugin_t>(plugin);
  auto &v = self->vtable_;
  if (!v.init || !v.start || !v.stop || !v.destroy || !v.get_interface) {
    error = "plugin '" + self->module_->name() +
            "': instance lacks init/start/stop/destroy/get_interface";
    return nullptr;
  }
  const void *iface = nullptr;
  bool is_strategy = self->module_->kind() == CLUSTERD_KIND_STRATEGY;
  self->guarded("get_interface", [&] {
    iface = v.get_interface(
        plugin, is_strategy ? CLUSTERD_INTERFACE_STRATEGY : CLUSTERD_INTERFACE_TRANSPORT);
  });
  if (!iface) {
    error = "plugin '" + self->module_->name() + "' does not implement " +
            (is_strategy ? CLUSTERD_INTERFACE_STRATEGY : CLUSTERD_INTERFACE_TRANSPORT);
    return nullptr;
  }
  if (is_strategy) {
    self->strategy_ = clamped_copy<clusterd_strategy_t>(iface);
  } else {
    self->transport_ = clamped_copy<clusterd_transport_t>(iface);
    if (!self->transport_.connect || !self->transport_.disconnect) {
      error = "plugin '" + self->module_->name() + "': transport lacks connect/disconnect";
      return nullptr;
    }
  }
  const void *control = nullptr;
  self->guarded("get_interface",
                [&] { control = v.get_interface(plugin, CLUSTERD_INTERFACE_CONTROL); });
  if (control) {
    const auto *c = static_cast<const clusterd_control_t *>(control);
    if (CLUSTERD_STRUCT_HAS(c, clusterd_control_t, session_closed) && c->request &&
        c->session_closed) {
      self->control_ = clamped_copy<clusterd_control_t>(control);
      // Bounded: a list without its NULL would otherwise be read until something faults.
      const auto *list = self->control_.read_only_commands;
      for (std::size_t i = 0; list && list[i] && i < kMaxReadOnlyCommands; ++i)
        self->read_only_commands_.emplace_back(list[i]);
    } else
      self->log(CLUSTERD_LOG_WARN, "plugin offers an incomplete " CLUSTERD_INTERFACE_CONTROL
                                   " (struct too small or functions missing); ignored");
  }
  return self;
}

Instance::~Instance() {
  if (!plugin_) return;
  stop();
  guarded("destroy", [&] { vtable_.destroy(plugin_); });
}

bool Instance::live() const {
  auto state = state_.load();
  return state == State::created || state == State::initialized || state == State::started;
}

bool Instance::init(std::unique_ptr<config::OptionValues> values) {
  values_ = std::move(values);
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  if (!guarded("init", [&] { status = vtable_.init(plugin_, values_->view()); })) return false;
  if (status != CLUSTERD_OK) {
    error_ = plugin_error("init failed with status " + std::to_string(status));
    state_ = State::failed;
    return false;
  }
  state_ = State::initialized;
  return true;
}

bool Instance::start() {
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  state_ = State::started;  // sinks may be called from inside start()
  start_called_ = true;
  if (!guarded("start", [&] { status = vtable_.start(plugin_); })) return false;
  if (status != CLUSTERD_OK) {
    error_ = plugin_error("start failed with status " + std::to_string(status));
    stop();
    state_ = State::failed;
    return false;
  }
  return true;
}

void Instance::stop() {
  auto state = state_.load();
  if (state == State::stopping || state == State::stopped) return;
  state_ = State::stopping;
  end_sessions();  // before stop(): the plugin may still answer and forget them
  if (start_called_ && plugin_) {
    auto begin = std::chrono::steady_clock::now();
    guarded("stop", [&] { vtable_.stop(plugin_); });
    auto took = std::chrono::steady_clock::now() - begin;
    if (took > kSlowStop)
      log(CLUSTERD_LOG_WARN,
          "plugin stop() took " +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
              " ms; stop() must return promptly (slow stop)");
  }
  state_ = State::stopped;
  cancel_leftovers();
}

void Instance::cancel_leftovers() {
  std::size_t count =
      timers_.size() + fds_.size() + http_.size() + dns_.size() + work_.size() + processes_.size();
  if (count == 0) return;
  log(CLUSTERD_LOG_WARN,
      "plugin left " + std::to_string(timers_.size()) + " timer(s), " +
          std::to_string(fds_.size()) + " fd watch(es), " + std::to_string(http_.size()) +
          " HTTP request(s), " + std::to_string(dns_.size()) + " DNS query(ies), " +
          std::to_string(processes_.size()) + " process(es) and " + std::to_string(work_.size()) +
          " work job(s) registered after stop(); cancelled them");
  for (auto id : processes_) services_.processes.cancel(id);  // terminated, then reaped
  for (auto id : timers_) services_.timers.cancel(id);
  for (auto id : fds_) services_.fds.unwatch(id);
  for (auto id : http_) services_.http->cancel(id);
  for (auto id : dns_) services_.dns->cancel(id);
  for (auto id : work_) services_.work.cancel(id);
  services_.work.wait_for(work_);  // its user_data must outlive running work
  timers_.clear(), fds_.clear(), http_.clear(), dns_.clear(), work_.clear(), processes_.clear();
}

bool Instance::connect(std::uint64_t op, const std::string &node, std::string &error) {
  return start_op(true, op, node, error);
}

bool Instance::disconnect(std::uint64_t op, const std::string &node, std::string &error) {
  return start_op(false, op, node, error);
}

bool Instance::start_op(bool connect, std::uint64_t op, const std::string &node,
                        std::string &error) {
  auto fn = connect ? transport_.connect : transport_.disconnect;
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  bool returned = fn && guarded(connect ? "connect" : "disconnect",
                                [&] { status = fn(plugin_, op, node.c_str()); });
  if (returned && status == CLUSTERD_OK) return true;
  error = returned ? plugin_error("status " + std::to_string(status)) : error_;
  return false;
}

void Instance::cancel(std::uint64_t op) {
  if (live() && transport_.cancel) guarded("cancel", [&] { transport_.cancel(plugin_, op); });
}

Instance::Call Instance::list(std::uint64_t op, std::string &error) {
  if (!transport_.list_nodes) return Call::unsupported;
  return optional_call(
      "list_nodes", [&] { return transport_.list_nodes(plugin_, op); }, error);
}

std::optional<std::string> Instance::local_node() {
  if (!live() || !transport_.local_node) return std::nullopt;
  const char *name = nullptr;
  guarded("local_node", [&] { name = transport_.local_node(plugin_); });
  if (!name || !*name) return std::nullopt;
  return std::string(name);
}

Instance::Call Instance::refresh(std::string &error) {
  if (!live() || !strategy_.refresh) return Call::unsupported;
  return optional_call(
      "refresh", [&] { return strategy_.refresh(plugin_); }, error);
}

Instance::Call Instance::optional_call(const char *what,
                                       const std::function<clusterd_status_t()> &call,
                                       std::string &error) {
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  guarded(what, [&] { status = call(); });
  if (status == CLUSTERD_OK) return Call::ok;
  if (status == CLUSTERD_E_UNSUPPORTED) return Call::unsupported;
  error = plugin_error("status " + std::to_string(status));
  return Call::failed;
}

void Instance::session_opened(const std::shared_ptr<Session> &session) {
  sessions_[session->id()] = session;
}

bool Instance::session_line(std::uint64_t id, const std::string &line, std::string &error) {
  if (!sessions_.count(id)) return true;  // over already; the connection knows
  if (!live() || !has_control()) {
    error = label_ + " is not running" + (error_.empty() ? "" : ": " + error_);
    return false;
  }
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  if (!guarded("control request",
               [&] { status = control_.request(plugin_, id, line.c_str(), line.size()); })) {
    std::string().swap(detached_unread_);
    error = error_;
    return false;
  }
  std::string().swap(detached_unread_);  // valid only during request() (control.h, detach)
  if (status == CLUSTERD_OK) return true;
  error = plugin_error("request failed with status " + std::to_string(status));
  return false;
}

void Instance::session_over(std::uint64_t id) {
  if (sessions_.erase(id)) session_closed(id);
}

bool Instance::read_only(std::string_view cmd) const {
  return !cmd.empty() && std::find(read_only_commands_.begin(), read_only_commands_.end(), cmd) !=
                             read_only_commands_.end();
}

void Instance::session_closed(std::uint64_t id) {
  auto state = state_.load();
  if (!plugin_ || !has_control() || !start_called_ || state == State::stopped) return;
  guarded("control session_closed", [&] { control_.session_closed(plugin_, id); });
}

void Instance::end_sessions() {
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (const auto &[id, weak] : sessions) {
    if (auto session = weak.lock()) {
      // Tells the client why its stream ends; what was queued before still goes out first.
      nlohmann::json line = {{"error", label_ + " stopped"}};
      session->send(line.dump());
      session->end();
    }
    session_closed(id);
  }
}

bool Instance::guarded(const char *what, const std::function<void()> &call) {
  try {
    call();
    return true;
  } catch (const std::exception &e) {
    fail(std::string("plugin threw from ") + what + ": " + e.what() +
         " (exceptions must not cross the C ABI)");
  } catch (...) {
    fail(std::string("plugin threw from ") + what + " (exceptions must not cross the C ABI)");
  }
  return false;
}

std::string Instance::plugin_error(const std::string &fallback) {
  const char *text = nullptr;
  if (plugin_ && vtable_.last_error)
    guarded("last_error", [&] { text = vtable_.last_error(plugin_); });
  return text && *text ? std::string(text) : fallback;
}

void Instance::log(int level, std::string_view message) const {
  spdlog::log(log::from_sdk_level(level), "[{}] {}", label_, message);
}

void Instance::fail(const std::string &reason) {
  bool first = state_.load() != State::failed || error_.empty();
  bool was_live = live();
  error_ = reason;
  if (state_ != State::stopping && state_ != State::stopped) state_ = State::failed;
  if (!first) return;
  // A live instance's owner logs the failure, with what it does about it (a restart).
  if (!was_live || !failure_handler_) log(CLUSTERD_LOG_ERROR, reason);
  if (failure_handler_) {
    boost::asio::post(services_.io, [weak = weak_from_this(), reason] {
      if (auto self = weak.lock(); self && self->failure_handler_) self->failure_handler_(reason);
    });
  }
}

std::optional<double> Instance::take_round_seconds() {
  if (!round_started_) return std::nullopt;
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - *round_started_;
  round_started_.reset();
  return took.count();
}

}  // namespace clusterd::plugin
