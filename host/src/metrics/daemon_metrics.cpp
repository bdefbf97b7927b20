#include "metrics/daemon_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "build_info.hpp"
#include "metrics/exposition.hpp"

namespace clusterd::metrics {
namespace {

using reconcile::Topology;

double resident_bytes() {
  long pages = 0, resident = 0;
  std::FILE *statm = std::fopen("/proc/self/statm", "re");
  if (!statm) return 0;
  int n = std::fscanf(statm, "%ld %ld", &pages, &resident);
  std::fclose(statm);
  return n == 2 ? static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) : 0;
}

double open_fds() {
  std::error_code ec;
  double n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++n;
  return n;
}

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval &t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

std::string daemon_text(const control::DaemonView &daemon) {
  Exposition out;
  auto gauge = [&](const char *name, const char *help, const Labels &labels, double value) {
    out.family(name, help, "gauge");
    out.sample(name, labels, value);
  };
  gauge("clusterd_build_info", "clusterd's version; always 1.",
        {{"version", CLUSTERD_VERSION_STRING}}, 1);
  gauge("clusterd_start_time_seconds", "When the daemon started, in seconds since the epoch.", {},
        std::chrono::duration<double>(daemon.started_at.time_since_epoch()).count());
  gauge("clusterd_ready", "1 when every transport and topology runs (as /ready).", {},
        control::ready(daemon) ? 1 : 0);
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {}, resident_bytes());
  gauge("process_open_fds", "Number of open file descriptors.", {}, open_fds());
  out.family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", "counter");
  out.sample("process_cpu_seconds_total", {}, cpu_seconds());

  // One family at a time over every topology: a family's samples must be contiguous.
  auto per_topology = [&](const char *name, const char *help, const char *type, auto value) {
    out.family(name, help, type);
    for (const auto &[topology_name, topology] : daemon.topologies)
      out.sample(name, {{"topology", topology_name}}, static_cast<double>(value(*topology)));
  };
  out.family("clusterd_topology_up", "1 when the topology runs, 0 when it failed or starts.",
             "gauge");
  for (const auto &[name, t] : daemon.topologies)
    out.sample(
        "clusterd_topology_up",
        {{"topology", name}, {"strategy", t->spec().strategy}, {"transport", t->spec().transport}},
        t->state() == "running" ? 1 : 0);
  per_topology("clusterd_topology_discovered_nodes",
               "Nodes in the strategy's last report (including this node).", "gauge",
               [](const Topology &t) { return t.counters().discovered; });
  per_topology("clusterd_topology_desired_nodes",
               "Nodes the topology wants connected (discovered, without this node).", "gauge",
               [](const Topology &t) { return t.reconciler().desired().size(); });
  per_topology("clusterd_topology_connected_nodes", "Desired nodes that are connected.", "gauge",
               [](const Topology &t) { return t.reconciler().connected_count(); });
  per_topology("clusterd_connect_attempts_total", "Connect attempts started.", "counter",
               [](const Topology &t) { return t.counters().connect_attempts; });
  per_topology("clusterd_connect_failures_total", "Connect attempts that failed or timed out.",
               "counter", [](const Topology &t) { return t.counters().connect_failures; });
  per_topology("clusterd_discovery_rounds_total",
               "Discovery rounds reported by the strategy (successful or failed).", "counter",
               [](const Topology &t) { return t.counters().discovery_rounds; });
  per_topology("clusterd_discovery_errors_total",
               "Discovery rounds that failed (the last good node set was kept).", "counter",
               [](const Topology &t) { return t.counters().discovery_errors; });
  out.family("clusterd_discovery_duration_seconds",
             "Discovery round latency: from the round's first HTTP or DNS request to its result.",
             "histogram");
  for (const auto &[name, t] : daemon.topologies)
    out.histogram("clusterd_discovery_duration_seconds", {{"topology", name}},
                  t->counters().discovery_seconds);

  out.family("clusterd_plugin_failures_total",
             "Times a plugin instance failed: not loadable, refused its config or start, or "
             "failed while running.",
             "counter");
  for (const auto &[name, t] : daemon.topologies)
    out.sample("clusterd_plugin_failures_total",
               {{"topology", name}, {"plugin", t->spec().strategy}},
               static_cast<double>(t->counters().plugin_failures));
  for (const auto &[name, t] : daemon.transports)
    out.sample("clusterd_plugin_failures_total",
               {{"transport", name}, {"plugin", t->spec().plugin}},
               static_cast<double>(t->plugin_failures()));

  out.family("clusterd_restarts_total",
             "Times a failed transport or topology was restarted by the daemon's supervisor.",
             "counter");
  for (const auto &[name, t] : daemon.topologies)
    out.sample("clusterd_restarts_total", {{"topology", name}, {"plugin", t->spec().strategy}},
               static_cast<double>(t->supervisor().restarts()));
  for (const auto &[name, t] : daemon.transports)
    out.sample("clusterd_restarts_total", {{"transport", name}, {"plugin", t->spec().plugin}},
               static_cast<double>(t->supervisor().restarts()));

  out.family("clusterd_transport_up", "1 when the transport runs.", "gauge");
  for (const auto &[name, t] : daemon.transports)
    out.sample("clusterd_transport_up", {{"transport", name}, {"plugin", t->spec().plugin}},
               t->running() ? 1 : 0);
  out.family("clusterd_transport_connected_nodes",
             "Nodes the transport reports connected (all topologies).", "gauge");
  for (const auto &[name, t] : daemon.transports)
    out.sample("clusterd_transport_connected_nodes", {{"transport", name}},
               static_cast<double>(t->connected().size()));

  auto hooks = daemon.hooks();
  for (const char *key : {"ran", "failed", "timed_out", "dropped"}) {
    auto name = std::string("clusterd_hooks_") + key + "_total";
    out.family(name, std::string("Event hooks ") + key + " (see [hooks]).", "counter");
    out.sample(name, {}, hooks[key].get<double>());
  }

  // Plugins' own figures (e.g. gossip drops by reason), labelled with their instance.
  Families families;
  for (const auto &[name, t] : daemon.topologies)
    if (const auto &instance = t->strategy())
      instance->metrics().collect(families, {{"topology", name}});
  for (const auto &[name, t] : daemon.transports)
    if (const auto &instance = t->instance())
      instance->metrics().collect(families, {{"transport", name}});
  write(out, families);
  return out.text();
}

Answer serve(const RequestHead &request, const control::DaemonView &daemon) {
  if (request.path == "/metrics")
    return {200, "text/plain; version=0.0.4; charset=utf-8", daemon_text(daemon)};
  if (request.path == "/health") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (request.path == "/ready") {
    bool ok = control::ready(daemon);
    return {ok ? 200 : 503, "text/plain; charset=utf-8",
            (ok ? "ready: " : "not ready: ") + control::summary(daemon) + "\n"};
  }
  if (request.path == "/") return {200, "text/html; charset=utf-8", std::string(status_page())};
  if (request.path == "/status.json")
    return {200, "application/json",
            control::status(daemon).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  return {404, "text/plain; charset=utf-8",
          "not found (try /, /status.json, /events, /metrics, /health, /ready)\n"};
}

}  // namespace clusterd::metrics
