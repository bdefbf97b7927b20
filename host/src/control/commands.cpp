#include "control/commands.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "build_info.hpp"
#include "control/event_sessions.hpp"
#include "reconcile/formation.hpp"
#include "util/strings.hpp"

namespace clusterd::control {
namespace {

bool has_control(const std::shared_ptr<plugin::Instance> &instance) {
  return instance && instance->has_control();
}

// {"cmd":"refresh"[,"topology":"NAME"]}: a discovery round now, in one topology or in all.
// Naming a topology whose strategy cannot refresh is an error; refreshing all skips those.
nlohmann::json refresh(const nlohmann::json &request, const DaemonView &daemon) {
  auto only = request.value("topology", nlohmann::json());
  if (!only.is_null() && !only.is_string()) return {{"error", "\"topology\" must be a string"}};
  if (only.is_string() && !daemon.topologies.count(only.get<std::string>()))
    return {{"error", "no topology '" + only.get<std::string>() + "'"}};
  nlohmann::json refreshed = nlohmann::json::array(), unsupported = nlohmann::json::array();
  std::vector<std::string> errors;
  for (const auto &[name, topology] : daemon.topologies) {
    if (only.is_string() && only != name) continue;
    std::string error;
    switch (topology->refresh(error)) {
      case plugin::Instance::Call::ok:
        refreshed.push_back(name);
        break;
      case plugin::Instance::Call::unsupported:
        if (only.is_string()) errors.push_back(error);
        unsupported.push_back(name);
        break;
      case plugin::Instance::Call::failed:
        errors.push_back(error);
        break;
    }
  }
  nlohmann::json answer = {{"ok", errors.empty()}, {"refreshed", refreshed}};
  if (!unsupported.empty()) answer["unsupported"] = unsupported;
  if (!errors.empty()) answer["error"] = util::join(errors, "; ");
  return answer;
}

// A host command's answer line.
std::string answer(const nlohmann::json &request, const std::string &cmd,
                   const DaemonView &daemon) {
  if (cmd == "ping") return R"({"ok":true})";
  if (cmd == "status" || cmd == "members" || cmd == "topologies")
    return status(daemon).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (cmd == "refresh") return refresh(request, daemon).dump();
  return nlohmann::json({{"error", "unknown command '" + cmd + "'"}}).dump();
}

// `read_only` false: logged at info (a refusal of access is).
Reply error_reply(const std::string &text, std::string what, bool read_only = true) {
  return {nlohmann::json({{"error", text}}).dump(), nullptr, read_only, std::move(what)};
}

}  // namespace

bool ready(const DaemonView &daemon) {
  if (!daemon.applied || daemon.waiting) return false;
  for (const auto &[name, transport] : daemon.transports)
    if (!transport->running()) return false;
  for (const auto &[name, topology] : daemon.topologies)
    if (topology->state() != "running") return false;
  return true;
}

std::string summary(const DaemonView &daemon) {
  std::size_t running = 0, connected = 0;
  std::vector<std::string> failed, restarting;
  for (const auto &[name, topology] : daemon.topologies) {
    if (topology->state() == "running")
      ++running;
    else if (topology->state() == "failed")
      failed.push_back(name);
    else if (topology->state() == "restarting")
      restarting.push_back(name);
  }
  for (const auto &[name, transport] : daemon.transports)
    connected += transport->connected().size();
  auto text = fmt::format("{}/{} topologies running, {} node(s) connected", running,
                          daemon.topologies.size(), connected);
  if (!failed.empty()) text += "; failed: " + util::join(failed, ", ");
  if (daemon.waiting) {  // ready_when = "formed": what it waits for
    std::vector<std::string> forming;
    for (const auto &[name, topology] : daemon.topologies)
      if (topology->state() == "running" && !topology->formed())
        forming.push_back(name + " (" + reconcile::formation_text(topology->status()["formation"]) +
                          ")");
    if (!forming.empty()) text += "; forming: " + util::join(forming, "; ");
  }
  if (!restarting.empty()) text += "; restarting: " + util::join(restarting, ", ");
  return text;
}

nlohmann::json status(const DaemonView &daemon) {
  nlohmann::json transports = nlohmann::json::array();
  for (const auto &[name, t] : daemon.transports) {
    auto local = t->local_nodes();
    nlohmann::json details = nlohmann::json::object();
    nlohmann::json down = nlohmann::json::array();
    for (const auto &[node, lost] : t->connected().lost())
      down.push_back({{"node", node}, {"reason", lost.reason}, {"since_ms", lost.since_ms}});
    if (const auto &instance = t->instance())
      for (const auto &[k, v] : instance->details()) details[k] = v;
    transports.push_back(
        {{"name", name},
         {"plugin", t->spec().plugin},
         {"state", t->state()},
         {"error", t->error()},
         {"last_failure", t->last_failure()},
         {"restarts", t->supervisor().restarts()},
         {"next_restart_in_ms", t->supervisor().status()["next_restart_in_ms"]},
         {"local_node", local.empty() ? nlohmann::json() : nlohmann::json(local.front())},
         {"details", details},
         {"connected", t->connected().nodes()},
         {"down", down},
         {"control", has_control(t->instance())}});
  }
  nlohmann::json topologies = nlohmann::json::array();
  for (const auto &[name, t] : daemon.topologies) {
    topologies.push_back(t->status());
    topologies.back()["control"] = has_control(t->strategy());
  }
  return {{"version", CLUSTERD_VERSION_STRING},
          {"pid", ::getpid()},
          {"config", daemon.config},
          {"transports", transports},
          {"topologies", topologies},
          {"hooks", daemon.hooks()},
          {"ready", ready(daemon)},
          {"events", daemon.events ? daemon.events() : nlohmann::json::array()},
          {"metrics", daemon.metrics ? nlohmann::json(*daemon.metrics) : nlohmann::json()}};
}

Reply route(const Request &in, const DaemonView &daemon) {
  const auto &request = in.document;
  if (in.access == Access::none)
    return error_reply("permission denied: uid " + std::to_string(in.peer.uid) +
                           " may not use this control socket (control_allow_* / control_read_*)",
                       "refused (not on an allow-list)", false);
  auto denied = [&](const std::string &what) {
    return error_reply("permission denied: uid " + std::to_string(in.peer.uid) +
                           " may only send read-only requests (" + what + " changes state)",
                       what + " refused (read-only access)", false);
  };
  const auto cmd = request.is_object() ? request.value("cmd", nlohmann::json()) : nlohmann::json();
  const auto cmd_text = cmd.is_string() ? cmd.get<std::string>() : std::string();
  // "refresh" is the host's: it names a topology without opening a session with it.
  for (std::string kind : {"transport", "topology"}) {
    if (cmd_text == "refresh" || !request.is_object() || !request.contains(kind)) continue;
    if (!request[kind].is_string()) return error_reply("\"" + kind + "\" must be a string", kind);
    auto name = request[kind].get<std::string>();
    const auto what = kind + " " + util::quote_for_message(name) + " " +
                      (cmd.is_string() ? util::quote_for_message(cmd_text) : "request");
    std::string plugin;
    std::shared_ptr<plugin::Instance> instance;
    if (auto t = daemon.transports.find(name); kind == "transport" && t != daemon.transports.end())
      plugin = t->second->spec().plugin, instance = t->second->instance();
    else if (auto s = daemon.topologies.find(name);
             kind == "topology" && s != daemon.topologies.end())
      plugin = s->second->spec().strategy, instance = s->second->strategy();
    else
      return error_reply("no " + kind + " '" + name + "'", what);
    if (instance && !instance->has_control())
      return error_reply(kind + " '" + name + "' (plugin " + plugin + ") has no control interface",
                         what);
    if (!instance || !instance->live())
      return error_reply(kind + " '" + name + "' is not running", what);
    // Only the commands the plugin lists as read-only are (control.h); the connection checks
    // a read-only peer's later lines the same way.
    const bool read_only = cmd.is_string() && instance->read_only(cmd_text);
    if (!read_only && in.access != Access::all) return denied(what);
    return {"", instance, read_only, what};
  }
  // A host command: small, or refused before it runs (a routed line may be up to 8 MiB).
  if (in.size > kMaxHostLine)
    return error_reply("request must be one JSON line of at most 64 KiB", "oversized request");
  if (!request.is_object() || !cmd.is_string())
    return error_reply(R"(expected {"cmd": "status"})", "malformed request");
  // Only refresh acts; ping, status, members, topologies, events read (unknown ones: an error
  // answer).
  const bool read_only = cmd_text != "refresh";
  const auto what = util::quote_for_message(cmd_text);
  if (!read_only && in.access != Access::all) return denied(what);
  if (cmd_text == "events") {  // a stream: a session with the daemon's event feed
    const auto recent = request.value("recent", nlohmann::json(0));
    if (!recent.is_number_integer() || recent.get<std::int64_t>() < 0 ||
        recent.get<std::int64_t>() > static_cast<std::int64_t>(kMaxRecentEvents))
      return error_reply(
          "\"recent\" must be an integer from 0 to " + std::to_string(kMaxRecentEvents), what);
    if (!daemon.event_sessions) return error_reply("events are not available", what);
    return {"", daemon.event_sessions, true, what};
  }
  return {answer(request, cmd_text, daemon), nullptr, read_only, what};
}

AccessPolicy access_policy(const config::Settings &settings) {
  auto ids = [](const std::vector<unsigned> &list, auto type) {
    return std::vector<decltype(type)>(list.begin(), list.end());
  };
  return {ids(settings.control_allow_uids, uid_t()), ids(settings.control_read_uids, uid_t()),
          ids(settings.control_allow_groups, gid_t()), ids(settings.control_read_groups, gid_t())};
}

}  // namespace clusterd::control
