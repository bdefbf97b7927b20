#include "app/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>
#include <string_view>

#include "reconcile/topology.hpp"

extern char **environ;

namespace clusterd::app {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kKillGrace{2000};     // SIGTERM → SIGKILL, after a timeout and at stop
constexpr milliseconds kStopKillWait{1000};  // stop(): after SIGKILL
constexpr milliseconds kFallbackPoll{20};    // exit polling without pidfd_open (< Linux 5.3)
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

// The pipe's read end must not land on 0-2 (a daemon started with closed stdio), or the
// child's dup2 onto 0-2 would clobber it.
int above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
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

struct Hooks::Child {
  explicit Child(boost::asio::io_context &io) : out(io), exit(io), timer(io), poll(io) {}
  Job job;
  pid_t pid = -1;
  bool reaped = false;
  bool term_sent = false;
  bool kill_sent = false;
  bool timed_out = false;
  boost::asio::posix::stream_descriptor out;   // the child's stdout + stderr
  boost::asio::posix::stream_descriptor exit;  // its pidfd; not open without pidfd_open
  boost::asio::steady_timer timer;             // the timeout, then the SIGKILL grace
  boost::asio::steady_timer poll;              // exit polling without a pidfd
  std::array<char, 4096> buf{};
  std::string tail;
};

Hooks::Hooks(boost::asio::io_context &io) : io_(io) {}

Hooks::~Hooks() {
  stop();
  alive_.reset();
}

void Hooks::configure(const config::HooksSpec &spec) {
  spec_ = spec;
  pump();  // a larger max_running takes queued events at once
}

Hooks::Counters Hooks::counters() const {
  Counters c = counters_;
  c.queued = queue_.size();
  c.running = children_.size();
  return c;
}

nlohmann::json Hooks::status() const {
  auto c = counters();
  return {{"queued", c.queued}, {"running", c.running},     {"ran", c.ran},
          {"failed", c.failed}, {"timed_out", c.timed_out}, {"dropped", c.dropped}};
}

void Hooks::fire(HookEvent event) {
  if (stopped_ || !wants(event.up)) return;
  auto argv = event.up ? spec_.on_nodeup : spec_.on_nodedown;
  Job job{std::move(event), std::move(argv), spec_.timeout};
  if (queue_.empty() && children_.size() < spec_.max_running) return spawn(std::move(job));
  if (queue_.size() < spec_.queue_size) {
    queue_.push_back(std::move(job));
    return;
  }
  ++counters_.dropped;
  if (burst_drops_++ == 0)
    spdlog::warn(
        "[hooks] queue full ({} queued, {} running): dropping events until it drains; "
        "first dropped: {} {}",
        queue_.size(), children_.size(), hook_name(job.event.up), job.event.node);
}

void Hooks::pump() {
  while (!stopped_ && !queue_.empty() && children_.size() < spec_.max_running) {
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

Hooks::Child *Hooks::find(pid_t pid) {
  auto it = children_.find(pid);
  return it == children_.end() ? nullptr : it->second.get();
}

void Hooks::spawn(Job job) {
  const HookEvent &e = job.event;
  const char *name = hook_name(e.up);
  if (!safe_arg(e.node)) {
    ++counters_.failed;
    spdlog::warn(
        "[hooks] {} not run: node name '{}' is empty, starts with '-' or has control "
        "characters",
        name, printable(e.node));
    return;
  }
  std::vector<std::string> args = job.argv;
  args.push_back(e.node);
  args.push_back(e.topology);
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> vars = {std::string("CLUSTERD_EVENT=") + (e.up ? "nodeup" : "nodedown"),
                                   "CLUSTERD_NODE=" + e.node, "CLUSTERD_TOPOLOGY=" + e.topology,
                                   "CLUSTERD_TRANSPORT=" + e.transport};
  if (!e.up && !e.reason.empty()) vars.push_back("CLUSTERD_REASON=" + e.reason);
  std::vector<char *> envp;
  for (char **v = environ; v && *v; ++v) {
    bool ours = false;
    for (const char *prefix : kEnvNames)
      ours = ours || std::strncmp(*v, prefix, std::strlen(prefix)) == 0;
    if (!ours) envp.push_back(*v);
  }
  for (auto &v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ++counters_.failed;
    spdlog::warn("[hooks] {} for {} not run: cannot create a pipe: {}", name, e.node,
                 std::strerror(errno));
    return;
  }
  const int read_end = above_stdio(fds[0]);
  const int write_end = fds[1];

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end, 1);
  posix_spawn_file_actions_adddup2(&actions, write_end, 2);
  // Asio opens sockets without CLOEXEC: a hook must not inherit the control socket or peers.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The daemon's signal mask and dispositions must not leak into hooks.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc =
      read_end < 0 ? errno : posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(write_end);
  if (rc != 0) {
    if (read_end >= 0) close(read_end);
    ++counters_.failed;
    spdlog::warn("[hooks] {} for {}: cannot run '{}': {}", name, e.node, args[0],
                 std::strerror(rc));
    return;
  }

  auto child = std::make_unique<Child>(io_);
  Child &c = *child;
  c.job = std::move(job);
  c.pid = pid;
  boost::system::error_code ec;
  c.out.assign(read_end, ec);
  if (ec)
    close(read_end);  // unwatched output: the hook is still run and reaped
  else if (c.out.non_blocking(true, ec); ec)
    c.out.close(ec);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) c.exit.assign(pidfd, ec);
  children_.emplace(pid, std::move(child));
  spdlog::debug("[hooks] {} {} (topology {}): running '{}' (pid {})", name, c.job.event.node,
                c.job.event.topology, args[0], pid);

  c.timer.expires_after(c.job.timeout);
  c.timer.async_wait([this, alive = std::weak_ptr<bool>(alive_), pid](auto error) {
    if (!error && !alive.expired()) on_timer(pid);
  });
  if (c.out.is_open()) read_output(pid);
  watch_exit(pid);
}

void Hooks::read_output(pid_t pid) {
  Child &c = *find(pid);
  c.out.async_read_some(boost::asio::buffer(c.buf), [this, alive = std::weak_ptr<bool>(alive_),
                                                     pid](auto error, std::size_t n) {
    if (error == boost::asio::error::operation_aborted || alive.expired()) return;
    Child *c = find(pid);
    if (!c) return;
    c->tail.append(c->buf.data(), n);
    if (c->tail.size() > kTailBytes) c->tail.erase(0, c->tail.size() - kTailBytes);
    if (error) {  // EOF: a hook that closed its output is still waited for by its exit
      boost::system::error_code ignored;
      c->out.close(ignored);
      return;
    }
    read_output(pid);
  });
}

void Hooks::watch_exit(pid_t pid) {
  Child &c = *find(pid);
  auto then = [this, alive = std::weak_ptr<bool>(alive_), pid](auto error) {
    if (!error && !alive.expired()) on_exit(pid);
  };
  if (c.exit.is_open()) {
    c.exit.async_wait(boost::asio::posix::stream_descriptor::wait_read, then);
  } else {
    c.poll.expires_after(kFallbackPoll);
    c.poll.async_wait(then);
  }
}

void Hooks::on_timer(pid_t pid) {
  Child *c = find(pid);
  if (!c) return;
  if (!c->term_sent) {
    c->timed_out = c->term_sent = true;
    kill(pid, SIGTERM);  // ours and not reaped yet: the PID cannot have been reused
    spdlog::warn("[hooks] {} for {} (pid {}) timed out after {} ms: SIGTERM, SIGKILL in {} ms",
                 hook_name(c->job.event.up), c->job.event.node, pid, c->job.timeout.count(),
                 kKillGrace.count());
    c->timer.expires_after(kKillGrace);
    c->timer.async_wait([this, alive = std::weak_ptr<bool>(alive_), pid](auto error) {
      if (!error && !alive.expired()) on_timer(pid);
    });
  } else if (!c->kill_sent) {
    c->kill_sent = true;
    kill(pid, SIGKILL);
  }
}

void Hooks::on_exit(pid_t pid) {
  Child *c = find(pid);
  if (!c) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return watch_exit(pid);  // not yet (fallback polling)
  // What the hook wrote before exiting is in the pipe now; a grandchild that kept the pipe
  // open must not hold the slot, so read only what is there.
  if (c->out.is_open()) {
    boost::system::error_code ec;
    for (int i = 0; i < 16 && !ec; ++i) {
      std::size_t n = c->out.read_some(boost::asio::buffer(c->buf), ec);
      c->tail.append(c->buf.data(), n);
    }
    if (c->tail.size() > kTailBytes) c->tail.erase(0, c->tail.size() - kTailBytes);
  }
  if (r < 0) status = -1;  // ECHILD: reaped elsewhere; counted as failed
  finish(*c, status);
  children_.erase(pid);  // closes the descriptors, cancels the timers
  pump();
}

void Hooks::finish(Child &c, int status) {
  const auto &e = c.job.event;
  std::string what = std::string(hook_name(e.up)) + " for " + e.node + " (topology " + e.topology +
                     ", pid " + std::to_string(c.pid) + ")";
  std::string output = printable(c.tail);
  if (!output.empty()) output = "; output: " + output;
  if (c.timed_out) {
    ++counters_.timed_out;
    spdlog::warn("[hooks] {} killed after its timeout of {} ms{}", what, c.job.timeout.count(),
                 output);
  } else if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    ++counters_.ran;
    spdlog::debug("[hooks] {} exited with code 0{}", what, output);
  } else {
    ++counters_.failed;
    std::string how =
        status < 0            ? "lost its exit status"
        : WIFEXITED(status)   ? "exited with code " + std::to_string(WEXITSTATUS(status))
        : WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                              : "ended";
    spdlog::warn("[hooks] {} {}{}", what, how, output);
  }
}

void Hooks::stop() {
  if (stopped_ && children_.empty()) return;
  stopped_ = true;
  if (!queue_.empty() || !children_.empty())
    spdlog::info("[hooks] stopping: {} queued event(s) dropped, {} running hook(s) terminated",
                 queue_.size(), children_.size());
  counters_.dropped += queue_.size();
  queue_.clear();
  // Waits (blocking: the loop is stopping) until every child is reaped or `within` has passed.
  auto reap_all = [this](milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (int round = 0; round < 10000; ++round) {  // bounded; each round waits or reaps
      std::vector<pollfd> fds;
      bool polling = false;
      for (auto &[pid, c] : children_) {
        if (c->reaped) continue;
        int status = 0;
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) {
          c->reaped = true;
        } else if (c->exit.is_open()) {
          fds.push_back(pollfd{c->exit.native_handle(), POLLIN, 0});
        } else {
          polling = true;
        }
      }
      if (fds.empty() && !polling) return true;
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      ::poll(fds.data(), fds.size(),
             static_cast<int>(polling ? std::min<long long>(left.count(), 10) : left.count()));
    }
    return false;
  };
  for (auto &[pid, c] : children_)
    if (!c->reaped) kill(pid, SIGTERM);
  if (!reap_all(kKillGrace)) {
    for (auto &[pid, c] : children_)
      if (!c->reaped) kill(pid, SIGKILL);
    reap_all(kStopKillWait);
  }
  for (auto &[pid, c] : children_)
    if (!c->reaped)
      spdlog::warn("[hooks] {} for {} (pid {}) did not exit after SIGKILL; not reaped",
                   hook_name(c->job.event.up), c->job.event.node, pid);
  children_.clear();
}

void fire_hooks(Hooks &hooks, const std::string &transport,
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

}  // namespace clusterd::app
