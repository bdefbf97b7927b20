#include "hooks/runner.hpp"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstring>
#include <set>
#include <string_view>

#include "reconcile/topology.hpp"

extern char **environ;

namespace clusterd::hooks {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kKillGrace{2000};     // SIGTERM → SIGKILL, after a timeout and at stop
constexpr milliseconds kStopKillWait{1000};  // stop(): after SIGKILL
constexpr std::size_t kTailBytes = 2048;     // of a hook's output, logged when it ends
constexpr const char *kEnvNames[] = {"CLUSTERD_EVENT=", "CLUSTERD_NODE=", "CLUSTERD_TOPOLOGY=",
                                     "CLUSTERD_TRANSPORT=", "CLUSTERD_REASON="};

const char *hook_name(bool up) {
  return up ? "on_nodeup" : "on_nodedown";
}

// The node becomes an argument of a program we did not write: refuse what could be read as an
// option or break line-oriented scripts.
bool safe_arg(std::string_view s) {
  if (s.empty() || s.front() == '-') return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

// One log line of a hook's output tail.
std::string printable(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  std::string out;
  for (char c : text) {
    if (c == '\n')
      out += " | ";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      out += '?';
    else
      out += c;
  }
  return out;
}

}  // namespace

Runner::Runner(boost::asio::io_context &io) : processes_(io) {}

Runner::~Runner() {
  stop();
}

void Runner::configure(const config::HooksSpec &spec) {
  spec_ = spec;
  pump();  // a larger max_running takes queued events at once
}

Runner::Counters Runner::counters() const {
  Counters c = counters_;
  c.queued = queue_.size();
  c.running = running_.size();
  return c;
}

nlohmann::json Runner::status() const {
  auto c = counters();
  return {{"queued", c.queued}, {"running", c.running},     {"ran", c.ran},
          {"failed", c.failed}, {"timed_out", c.timed_out}, {"dropped", c.dropped}};
}

void Runner::fire(Event event) {
  if (stopped_ || !wants(event.up)) return;
  auto argv = event.up ? spec_.on_nodeup : spec_.on_nodedown;
  Job job{std::move(event), std::move(argv), spec_.timeout};
  if (queue_.empty() && running_.size() < spec_.max_running) return spawn(std::move(job));
  if (queue_.size() < spec_.queue_size) {
    queue_.push_back(std::move(job));
    return;
  }
  ++counters_.dropped;
  if (burst_drops_++ == 0)
    spdlog::warn(
        "[hooks] queue full ({} queued, {} running): dropping events until it drains; "
        "first dropped: {} {}",
        queue_.size(), running_.size(), hook_name(job.event.up), job.event.node);
}

void Runner::pump() {
  while (!stopped_ && !queue_.empty() && running_.size() < spec_.max_running) {
    Job job = std::move(queue_.front());
    queue_.pop_front();
    spawn(std::move(job));
  }
  if (queue_.empty() && burst_drops_ > 0) {
    spdlog::warn("[hooks] queue drained: {} event(s) dropped in that burst ({} in total)",
                 burst_drops_, counters_.dropped);
    burst_drops_ = 0;
  }
}

void Runner::spawn(Job job) {
  const Event &e = job.event;
  if (!safe_arg(e.node)) {
    ++counters_.failed;
    spdlog::warn(
        "[hooks] {} not run: node name '{}' is empty, starts with '-' or has control "
        "characters",
        hook_name(e.up), printable(e.node));
    return;
  }
  services::ProcessService::Request request;
  request.argv = job.argv;
  request.argv.push_back(e.node);
  request.argv.push_back(e.topology);
  // The daemon's environment without stale CLUSTERD_* event variables, then this event's.
  std::vector<std::string> env;
  for (char **v = environ; v && *v; ++v) {
    bool ours = false;
    for (const char *prefix : kEnvNames)
      ours = ours || std::strncmp(*v, prefix, std::strlen(prefix)) == 0;
    if (!ours) env.emplace_back(*v);
  }
  env.push_back(std::string("CLUSTERD_EVENT=") + (e.up ? "nodeup" : "nodedown"));
  env.push_back("CLUSTERD_NODE=" + e.node);
  env.push_back("CLUSTERD_TOPOLOGY=" + e.topology);
  env.push_back("CLUSTERD_TRANSPORT=" + e.transport);
  if (!e.up && !e.reason.empty()) env.push_back("CLUSTERD_REASON=" + e.reason);
  request.env = std::move(env);
  request.max_capture = kTailBytes;
  request.merge_stderr = true;  // one log line, in the order the hook wrote it
  request.timeout = job.timeout;
  request.grace = kKillGrace;
  const auto id = processes_.spawn(
      std::move(request), [this](std::uint64_t id, const services::ProcessService::Result &r) {
        auto it = running_.find(id);
        if (it == running_.end()) return;
        Job done = std::move(it->second);
        running_.erase(it);
        finish(done, r);
        pump();
      });
  spdlog::debug("[hooks] {} {} (topology {}): running '{}' (pid {})", hook_name(e.up), e.node,
                e.topology, job.argv[0], processes_.pid_of(id));
  running_.emplace(id, std::move(job));
}

void Runner::finish(const Job &job, const services::ProcessService::Result &r) {
  const auto &e = job.event;
  std::string what = std::string(hook_name(e.up)) + " for " + e.node + " (topology " + e.topology;
  if (r.pid > 0) what += ", pid " + std::to_string(r.pid);
  what += ")";
  std::string output = printable(r.out);
  if (!output.empty()) output = "; output: " + output;
  if (r.timed_out) {
    ++counters_.timed_out;
    spdlog::warn("[hooks] {} timed out after {} ms: terminated (SIGTERM, SIGKILL {} ms later){}",
                 what, job.timeout.count(), kKillGrace.count(), output);
  } else if (r.succeeded()) {
    ++counters_.ran;
    spdlog::debug("[hooks] {} exited with code 0{}", what, output);
  } else {
    ++counters_.failed;
    spdlog::warn("[hooks] {} {}{}", what, r.describe(), output);
  }
}

void Runner::stop() {
  if (stopped_ && running_.empty()) return;
  stopped_ = true;
  if (!queue_.empty() || !running_.empty())
    spdlog::info("[hooks] stopping: {} queued event(s) dropped, {} running hook(s) terminated",
                 queue_.size(), running_.size());
  counters_.dropped += queue_.size();
  queue_.clear();
  for (pid_t pid : processes_.terminate_all(kKillGrace, kStopKillWait))
    spdlog::warn("[hooks] a hook (pid {}) did not exit after SIGKILL; not reaped", pid);
  running_.clear();
}

void fire(Runner &hooks, const std::string &transport,
          const std::map<std::string, std::unique_ptr<Topology>> &topologies,
          const std::vector<ConnectedChange> &changes) {
  if (!hooks.wants(true) && !hooks.wants(false)) return;
  // Each topology's discovered set, once per batch: a listing may change thousands of nodes.
  std::vector<std::pair<std::string, std::set<std::string>>> users;
  for (const auto &[name, topology] : topologies) {
    if (!topology || topology->spec().transport != transport) continue;
    auto desired = topology->reconciler().desired();
    users.emplace_back(name, std::set<std::string>(desired.begin(), desired.end()));
  }
  for (const auto &change : changes) {
    if (!hooks.wants(change.up)) continue;
    std::string wanting, all;
    for (const auto &[name, desired] : users) {
      all += (all.empty() ? "" : ",") + name;
      if (desired.count(change.node)) wanting += (wanting.empty() ? "" : ",") + name;
    }
    hooks.fire({change.up, change.node, wanting.empty() ? all : wanting, transport, change.reason});
  }
}

}  // namespace clusterd::hooks
