#include "app/daemon.hpp"

#include <malloc.h>
#include <unistd.h>

#include <csignal>

#include "build_info.hpp"
#include "log/log.hpp"
#include "metrics/daemon_metrics.hpp"
#include "util/strings.hpp"

namespace clusterd::app {

namespace {
constexpr std::size_t kStatusEvents = 30;  // the latest events in the status document
}  // namespace

std::vector<config::Problem> prepare(config::ParseResult parsed, Prepared &out) {
  std::vector<config::Problem> problems = std::move(parsed.problems);
  if (parsed.not_runnable) problems.push_back(*parsed.not_runnable);  // fine to read, not to run
  // A file with problems is still read as far as it goes, so that one `check` reports the
  // plugins' problems too; with any problem, `out` is for reporting only, never run.
  auto &config = parsed.config ? parsed.config : parsed.partial;
  if (!config) return problems;
  plugin::Registry registry(config->settings.plugin_path);
  auto load_unit = [&](const std::string &plugin, std::uint32_t kind, const toml::table *options,
                       const std::vector<std::string> &host_keys, const std::string &where,
                       const std::string &prefix) {
    Prepared::Unit unit;
    if (plugin.empty()) return unit;  // no plugin named: already a problem of the file
    unit.module = registry.find(plugin, kind, unit.load_error);
    if (!unit.module) return unit;
    const auto before = problems.size();
    unit.values = config::validate_options(unit.module->options(), options, host_keys, config->file,
                                           where, prefix, unit.module->name(), problems);
    if (problems.size() != before) return unit;  // validate() sees only well-formed options
    std::vector<plugin::Module::Problem> found;
    unit.module->validate(*unit.values, found);
    for (auto &p : found) {
      const auto *value = p.key.empty() ? nullptr : unit.values->find(p.key);
      problems.push_back({value && value->set ? value->where : where,
                          p.key.empty() ? prefix.substr(0, prefix.size() - 1) : prefix + p.key,
                          std::move(p.message)});
    }
    return unit;
  };
  for (const auto &t : config->transports)
    out.transports[t.name] =
        load_unit(t.plugin, CLUSTERD_KIND_TRANSPORT, t.options, config::kHostTransportKeys, t.where,
                  "transports." + t.name + ".");
  for (const auto &t : config->topologies) {
    // A [config] that is not a table was reported; checking the strategy's options against
    // nothing would add a "missing required option" for each.
    const bool config_ok = !t.table || !t.table->get(config::kTopologyConfigKey) || t.options;
    out.topologies[t.name] =
        load_unit(config_ok ? t.strategy : "", CLUSTERD_KIND_STRATEGY, t.options, {},
                  t.config_where, "topologies." + t.name + ".config.");
  }
  out.config = std::move(*config);
  config::sort_problems(problems);
  return problems;
}

Daemon::Daemon() : signals_(io_, SIGINT, SIGTERM, SIGHUP), services_(io_) {}

Daemon::~Daemon() = default;

bool Daemon::load(std::vector<std::string> &problems, std::unique_ptr<Prepared> &out) {
  out = std::make_unique<Prepared>();
  for (const auto &p :
       prepare(path_.empty() ? config::parse(config::embedded_default(), "<embedded>")
                             : config::parse_file(path_),
               *out))
    problems.push_back(p.str());
  return problems.empty();
}

int Daemon::run(const std::string &path) {
  path_ = path;
  log::configure(spdlog::level::info, "text");
  std::vector<std::string> problems;
  std::unique_ptr<Prepared> prepared;
  if (!load(problems, prepared)) {
    for (const auto &p : problems) spdlog::error("config: {}", p);
    spdlog::error("not starting: {} problem(s) in {}", problems.size(),
                  path.empty() ? "<embedded>" : path);
    return 2;
  }
  settings_ = prepared->config.settings;
  log::configure(*log::parse_level(settings_.log_level), settings_.log_format);
  spdlog::info("clusterd {} starting (pid {}, config {})", CLUSTERD_VERSION_STRING, ::getpid(),
               path.empty() ? "<embedded>" : path);

  // A fixed mmap threshold: a large buffer (a long control line, a big message) is its own
  // mapping, given back to the system when freed. glibc's dynamic threshold would rise to the
  // size of the first one freed and keep later ones on the heap, resident for good.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  control_ = std::make_unique<control::ControlServer>(
      io_, [this](const control::Request &r) { return control::route(r, view()); });
  control_->set_access(control::access_policy(settings_));
  std::string error;
  if (!control_->listen(settings_.control_socket, error) ||
      !configure_metrics(settings_.metrics_listen, error)) {
    spdlog::error("{}", error);
    notifier_.send("STATUS=" + error);
    return 1;
  }
  events_.listen(event_sessions_);
  events_.publish({{"event", "started"}, {"version", CLUSTERD_VERSION_STRING}});
  apply(std::move(prepared));
  applied_ = true;
  readiness_.start(settings_);  // READY=1 now, or once formed (ready_when)
  wait_signal();
  io_.run();
  spdlog::info("clusterd stopped");
  return 0;
}

bool Daemon::configure_metrics(const std::string &address, std::string &error) {
  if (address == metrics_address_ && (metrics_ || address.empty())) return true;
  // The old listener goes first, so that a new address may reuse its port.
  metrics_.reset();
  metrics_address_.clear();
  if (address.empty()) return true;
  auto server = std::make_unique<metrics::HttpServer>(
      io_, [this](const metrics::RequestHead &request) { return metrics::serve(request, view()); },
      &events_);
  if (!server->listen(address, error)) return false;
  spdlog::info("metrics on http://{}/metrics (also /health, /ready; the status page on /)",
               server->address());
  metrics_ = std::move(server);
  metrics_address_ = address;
  return true;
}

control::DaemonView Daemon::view() const {
  return {transports_,
          topologies_,
          path_.empty() ? "<embedded>" : path_,
          applied_,
          [this] { return hooks_.status(); },
          metrics_ ? std::optional<std::string>(metrics_->address()) : std::nullopt,
          started_at_,
          readiness_.waiting(),
          [this] { return events_.recent(kStatusEvents); },
          event_sessions_};
}

void Daemon::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code &ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      reload();
      wait_signal();
    } else {
      spdlog::info("received {}, stopping (connections are left as they are)", strsignal(signal));
      shutdown();
    }
  });
}

namespace {

// The options whose resolved values differ between a running instance and a fresh check of the
// same settings: secrets read from a file or the environment that changed since. Names only.
std::vector<std::string> changed_options(config::OptionValues &fresh,
                                         const std::shared_ptr<plugin::Instance> &instance) {
  std::vector<std::string> changed;
  const auto *running = instance ? instance->options() : nullptr;
  for (const auto &[key, value] : fresh.values()) {
    const auto *old = running ? running->find(key) : nullptr;
    if (!old || old->text != value.text || old->integer != value.integer ||
        old->number != value.number || old->list != value.list || old->set != value.set)
      changed.push_back(key);
  }
  return changed;
}

}  // namespace

reconcile::OptionsLoader Daemon::options_loader(const config::DaemonConfig &config,
                                                const config::TransportSpec *transport,
                                                const config::TopologySpec *topology) const {
  // Only this unit in a configuration of its own (the specs share the parsed document).
  config::DaemonConfig one;
  one.file = config.file;
  one.settings = config.settings;
  if (transport) one.transports.push_back(*transport);
  if (topology) one.topologies.push_back(*topology);
  return [one = std::move(one), name = transport ? transport->name : topology->name,
          is_transport =
              transport != nullptr](std::string &error) -> std::unique_ptr<config::OptionValues> {
    config::ParseResult parsed;
    parsed.config = one;
    Prepared prepared;
    auto problems = prepare(std::move(parsed), prepared);
    auto &unit = is_transport ? prepared.transports[name] : prepared.topologies[name];
    if (!unit.module)
      error = unit.load_error;
    else if (!problems.empty())
      error = "its options no longer check: " + problems.front().str();
    else
      return std::move(unit.values);
    return nullptr;
  };
}

void Daemon::apply(std::unique_ptr<Prepared> prepared) {
  auto &config = prepared->config;
  hooks_.configure(config.hooks);
  restart_policy_ = {config.settings.restart_backoff, config.settings.restart_max};
  // Which running units stay: same name, same settings (comments and layout do not count), and
  // for a topology, its transport kept too. A kept unit whose secrets changed gets a new
  // instance in place (its topologies, or its reconciler, stay); the others are untouched.
  auto secrets_changed = [](const std::string &label, auto &unit, Prepared::Unit &fresh,
                            const std::shared_ptr<plugin::Instance> &instance) {
    if (!fresh.values) return;
    auto changed = changed_options(*fresh.values, instance);
    if (changed.empty()) return;
    spdlog::info("[{}] restarting: the resolved value of {} changed", label,
                 util::join(changed, ", "));
    unit.reconfigure(std::move(fresh.values));
  };
  reconcile::Transports keep_transports;
  for (auto &spec : config.transports) {
    auto it = transports_.find(spec.name);
    if (it != transports_.end() && config::same_settings(it->second->spec(), spec) &&
        it->second->running())
      keep_transports.emplace(spec.name, std::move(it->second));
  }
  reconcile::Topologies keep_topologies;
  for (auto &spec : config.topologies) {
    auto it = topologies_.find(spec.name);
    if (it != topologies_.end() && config::same_settings(it->second->spec(), spec) &&
        keep_transports.count(spec.transport) && it->second->state() == "running")
      keep_topologies.emplace(spec.name, std::move(it->second));
  }
  // Stop what changed or went away: topologies first (they use the transports).
  for (auto &[name, topology] : topologies_)
    if (topology) spdlog::info("[topology {}] stopping", name);
  topologies_.clear();
  for (auto &[name, transport] : transports_)
    if (transport) spdlog::info("[transport {}] stopping", name);
  transports_.clear();

  transports_ = std::move(keep_transports);
  for (auto &[name, transport] : transports_)
    secrets_changed("transport " + name, *transport, prepared->transports[name],
                    transport->instance());
  for (auto &spec : config.transports) {
    if (transports_.count(spec.name)) continue;
    auto &unit = prepared->transports[spec.name];
    auto transport = std::make_unique<reconcile::TransportLink>(
        services_, spec, restart_policy_, options_loader(config, &spec, nullptr));
    transport->on_event([this](nlohmann::json e) { events_.publish(std::move(e)); });
    transport->on_connected_changed([this, name = spec.name](const auto &changes) {
      for (const auto &change : changes) {
        nlohmann::json e = {{"event", change.up ? "nodeup" : "nodedown"},
                            {"transport", name},
                            {"node", change.node}};
        if (!change.up && !change.reason.empty()) e["reason"] = change.reason;
        events_.publish(std::move(e));
      }
      hooks::fire(hooks_, name, topologies_, changes);
      if (applied_ && notifier_.enabled()) notifier_.status(summary());
    });
    if (unit.module)
      transport->start(unit.module, std::move(unit.values));
    else
      transport->fail(unit.load_error);
    transports_.emplace(spec.name, std::move(transport));
  }
  topologies_ = std::move(keep_topologies);
  for (auto &[name, topology] : topologies_)
    secrets_changed("topology " + name, *topology, prepared->topologies[name],
                    topology->strategy());
  for (auto &spec : config.topologies) {
    if (topologies_.count(spec.name)) continue;
    auto &unit = prepared->topologies[spec.name];
    auto topology = std::make_unique<reconcile::Topology>(
        services_, spec, *transports_.at(spec.transport), unit.module, restart_policy_,
        options_loader(config, nullptr, &spec));
    topology->on_formed([this] { readiness_.update(); });
    topology->on_event([this](nlohmann::json e) { events_.publish(std::move(e)); });
    if (unit.module)
      topology->start(std::move(unit.values));
    else
      topology->fail(unit.load_error);
    topologies_.emplace(spec.name, std::move(topology));
  }
}

void Daemon::reload() {
  spdlog::info("received SIGHUP, reloading {}", path_.empty() ? "<embedded>" : path_);
  readiness_.reloading();
  std::vector<std::string> problems;
  std::unique_ptr<Prepared> prepared;
  load(problems, prepared);
  // A plugin that cannot be loaded (refused by the trust rule or the ABI gate, crashed or hung
  // in its preflight) fails only its unit at start; a reload keeps the running configuration.
  for (const auto *units : {&prepared->transports, &prepared->topologies})
    for (const auto &[name, unit] : *units)
      if (!unit.module && !unit.load_error.empty())
        problems.push_back((units == &prepared->transports ? "transports." : "topologies.") + name +
                           ": " + unit.load_error);
  if (!problems.empty()) {
    for (const auto &p : problems) spdlog::error("config: {}", p);
    spdlog::error("reload rejected ({} problem(s)); the running configuration stays",
                  problems.size());
    events_.publish({{"event", "reload"}, {"ok", false}, {"reason", problems.front()}});
    readiness_.reloaded(
        settings_, fmt::format("reload rejected ({} problem(s)); {}", problems.size(), summary()));
    return;
  }
  auto &settings = prepared->config.settings;
  log::configure(*log::parse_level(settings.log_level), settings.log_format);
  // A new socket only if the path names another file ("./" or a symlinked directory do not);
  // the path in force is the one actually bound.
  if (!control_->listens_at(settings.control_socket)) {
    auto server = std::make_unique<control::ControlServer>(
        io_, [this](const control::Request &r) { return control::route(r, view()); });
    std::string error;
    if (server->listen(settings.control_socket, error))
      control_ = std::move(server);
    else
      spdlog::error("{}; keeping {}", error, control_->path());
  }
  settings.control_socket = control_->path();
  control_->set_access(control::access_policy(settings));
  std::string error;
  if (!configure_metrics(settings.metrics_listen, error))
    spdlog::error("{}; no metrics listener until a reload fixes it", error);
  settings_ = settings;
  apply(std::move(prepared));
  spdlog::info("reload done");
  events_.publish({{"event", "reload"}, {"ok", true}});
  readiness_.reloaded(settings_, summary());
}

void Daemon::shutdown() {
  notifier_.send("STOPPING=1");
  if (control_) control_->close();
  metrics_.reset();
  topologies_.clear();  // strategies stop; nothing is disconnected
  transports_.clear();
  hooks_.stop();
  signals_.cancel();
  io_.stop();  // what is left (idle service internals) needs no draining
}

}  // namespace clusterd::app
