#include "services/process_service.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "util/ids.hpp"

extern char **environ;

namespace clusterd::services {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFallbackPoll{20};  // exit polling without pidfd_open (< Linux 5.3)
constexpr std::size_t kReadChunk = 65536;
constexpr int kReadsPerWakeup = 16;  // then yield to the loop: one chatty child must not starve it

// A pipe end must not land on 0-2 (a daemon started with closed stdio): the child's dup2 onto
// 0-2 would then be a no-op that keeps CLOEXEC, or clobber the other pipe.
int above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

struct Pipe {
  int read = -1, write = -1;
  bool open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    read = above_stdio(fds[0]);
    write = above_stdio(fds[1]);
    if (read < 0 || write < 0) return false;
    // Only the parent's end: O_NONBLOCK lives on the open file description, and the child's
    // end must stay blocking for the program.
    const int flags = fcntl(read, F_GETFL);
    return flags >= 0 && fcntl(read, F_SETFL, flags | O_NONBLOCK) == 0;
  }
  void close_read() {
    if (read >= 0) close(read);
    read = -1;
  }
  void close_write() {
    if (write >= 0) close(write);
    write = -1;
  }
};

// To the whole group first; to the child alone if it left its group.
void signal_group(pid_t pid, int sig) {
  if (kill(-pid, sig) != 0) kill(pid, sig);
}

void keep_tail(std::string &buf, bool &truncated, std::size_t cap, const char *data,
               std::size_t n) {
  buf.append(data, n);
  if (buf.size() <= cap) return;
  truncated = true;
  // Trimmed in batches (and once more at the end) so a large capture is not moved per read.
  if (buf.size() > 2 * cap + kReadChunk) buf.erase(0, buf.size() - cap);
}

void trim(std::string &buf, std::size_t cap) {
  if (buf.size() > cap) buf.erase(0, buf.size() - cap);
}

}  // namespace

struct ProcessService::Child {
  explicit Child(boost::asio::io_context &io) : exit(io), out(io), err(io), timer(io), poll(io) {}
  std::uint64_t id = 0;
  std::string program;
  std::size_t max_capture = 0;
  bool stop_on_overflow = false;
  milliseconds grace{0};
  std::function<void(std::uint64_t, bool, std::string_view)> output;
  Callback done;  // empty once cancelled
  pid_t pid = 0;  // 0: never started (result.status says why)
  bool reaped = false;
  bool terminating = false;  // SIGTERM sent: its group gets SIGKILL before it is reaped
  bool kill_sent = false;
  Result result;
  boost::asio::posix::stream_descriptor exit;  // the pidfd; not open without pidfd_open
  boost::asio::posix::stream_descriptor out, err;
  boost::asio::steady_timer timer;  // the timeout, then the SIGKILL grace
  boost::asio::steady_timer poll;   // exit polling without a pidfd
};

std::string ProcessService::Result::describe() const {
  if (status != CLUSTERD_OK) return error.empty() ? "could not run" : error;
  if (term_signal != 0) {
    const char *name = strsignal(term_signal);
    return "was killed by signal " + std::to_string(term_signal) +
           (name ? std::string(" (") + name + ")" : std::string());
  }
  return "exited with code " + std::to_string(exit_code);
}

clusterd_status_t ProcessService::from_abi(const clusterd_process_request_t *request, Request &out,
                                           clusterd_process_output_fn &output) {
  if (!request) return CLUSTERD_E_INVALID_ARG;
  clusterd_process_request_t r;
  std::memset(&r, 0, sizeof r);
  std::memcpy(&r, request, std::min<std::size_t>(request->struct_size, sizeof r));
  if (!r.argv || r.argc == 0 || (r.envc && !r.envp) || r.max_capture_bytes > kMaxCapture)
    return CLUSTERD_E_INVALID_ARG;
  auto copy = [](const char *const *items, uint32_t count, std::vector<std::string> &to) {
    for (uint32_t i = 0; i < count; ++i) {
      if (!items[i]) return false;
      to.emplace_back(items[i]);
    }
    return true;
  };
  out = Request{};
  if (!copy(r.argv, r.argc, out.argv)) return CLUSTERD_E_INVALID_ARG;
  if (r.envp && !copy(r.envp, r.envc, out.env.emplace())) return CLUSTERD_E_INVALID_ARG;
  if (r.cwd) out.cwd = r.cwd;
  if (r.max_capture_bytes) out.max_capture = r.max_capture_bytes;
  out.merge_stderr = r.flags & CLUSTERD_PROCESS_MERGE_STDERR;
  out.stop_on_overflow = r.flags & CLUSTERD_PROCESS_STOP_ON_OVERFLOW;
  out.timeout = milliseconds(r.timeout_ms);
  if (r.grace_ms) out.grace = milliseconds(r.grace_ms);
  output = r.output;  // zero when the plugin's struct ends before it
  return CLUSTERD_OK;
}

clusterd_process_result_t ProcessService::to_abi(const Result &result) {
  clusterd_process_result_t c{};
  c.struct_size = sizeof c;
  c.status = result.status;
  c.exit_code = result.exit_code;
  c.term_signal = result.term_signal;
  c.timed_out = result.timed_out;
  c.stdout_truncated = result.out_truncated;
  c.stderr_truncated = result.err_truncated;
  c.pid = result.pid;
  c.stdout_data = result.out.c_str();
  c.stdout_length = result.out.size();
  c.stderr_data = result.err.c_str();
  c.stderr_length = result.err.size();
  c.error = result.error.c_str();
  return c;
}

ProcessService::ProcessService(boost::asio::io_context &io) : io_(io) {}

ProcessService::~ProcessService() {
  terminate_all(kDefaultGrace, milliseconds(1000));
  alive_.reset();
}

std::size_t ProcessService::running() const {
  return children_.size();
}

pid_t ProcessService::pid_of(std::uint64_t id) const {
  auto it = children_.find(id);
  return it == children_.end() ? 0 : it->second->pid;
}

std::uint64_t ProcessService::spawn(Request request, Callback done) {
  const std::uint64_t id = util::next_id();
  auto child = std::make_unique<Child>(io_);
  Child &c = *child;
  c.id = id;
  c.done = std::move(done);
  c.program = request.argv.empty() ? std::string() : request.argv[0];
  c.max_capture = std::min(request.max_capture, kMaxCapture);
  c.stop_on_overflow = request.stop_on_overflow;
  c.grace = request.grace;
  c.output = std::move(request.output);
  children_.emplace(id, std::move(child));

  // Not started: the error result goes out on a later loop turn, never from inside spawn().
  auto fail = [&](clusterd_status_t status, const std::string &why) {
    c.result.status = status;
    c.result.error = "cannot run '" + c.program + "': " + why;
    boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), id] {
      if (!alive.expired()) finish(id);
    });
    return id;
  };
  if (request.argv.empty() || request.argv[0].empty())
    return fail(CLUSTERD_E_INVALID_ARG, "no program");

  std::vector<char *> argv;
  for (auto &a : request.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char *> envp;
  if (request.env) {
    for (auto &v : *request.env) envp.push_back(v.data());
    envp.push_back(nullptr);
  }

  Pipe out, err;
  if (!out.open() || (!request.merge_stderr && !err.open())) {
    const int e = errno;
    out.close_read(), out.close_write(), err.close_read(), err.close_write();
    return fail(CLUSTERD_E_IO, std::string("cannot create pipes: ") + std::strerror(e));
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&actions, request.merge_stderr ? out.write : err.write, 2);
  if (!request.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, request.cwd.c_str());
  // Asio opens sockets without CLOEXEC: a child must not inherit the control socket or peers.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The daemon's signal mask and ignored signals (SIGPIPE...) must not leak into children;
  // its own process group lets a termination reach what the child started.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(),
                              request.env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  out.close_write();
  err.close_write();
  if (rc != 0) {
    out.close_read();
    err.close_read();
    return fail(rc == ENOENT ? CLUSTERD_E_NOT_FOUND : CLUSTERD_E_IO, std::strerror(rc));
  }
  c.pid = pid;
  c.result.pid = pid;

  // From here the child exists and is in children_: whatever fails below, it is still
  // terminated and reaped (by its exit watch, or terminate_all at the latest).
  boost::system::error_code ec;
  for (auto [sd, fd] : {std::pair{&c.out, out.read}, std::pair{&c.err, err.read}}) {
    if (fd < 0) continue;
    sd->assign(fd, ec);
    if (ec) close(fd);  // unread: the child gets EPIPE rather than blocking
  }
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // CLOEXEC by definition
  if (pidfd >= 0) {
    c.exit.assign(pidfd, ec);
    if (ec) close(pidfd);  // polled instead
  }
  watch_exit(c);
  if (c.out.is_open()) watch_output(c, true);
  if (c.err.is_open()) watch_output(c, false);
  if (request.timeout.count() > 0) {
    c.timer.expires_after(request.timeout);
    c.timer.async_wait([this, alive = std::weak_ptr<bool>(alive_), id](auto error) {
      if (error || alive.expired()) return;
      auto it = children_.find(id);
      if (it == children_.end() || it->second->terminating) return;
      it->second->result.timed_out = true;
      terminate(*it->second);
    });
  }
  return id;
}

void ProcessService::watch_exit(Child &c) {
  auto then = [this, alive = std::weak_ptr<bool>(alive_), id = c.id](auto error) {
    if (!error && !alive.expired()) on_exit(id);
  };
  if (c.exit.is_open()) {
    c.exit.async_wait(boost::asio::posix::stream_descriptor::wait_read, then);
  } else {
    c.poll.expires_after(kFallbackPoll);
    c.poll.async_wait(then);
  }
}

void ProcessService::watch_output(Child &c, bool is_stdout) {
  auto &sd = is_stdout ? c.out : c.err;
  sd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                [this, alive = std::weak_ptr<bool>(alive_), id = c.id, is_stdout](auto error) {
                  if (error || alive.expired()) return;
                  auto it = children_.find(id);
                  if (it == children_.end()) return;
                  Child &c = *it->second;
                  if (read_output(c, is_stdout) && (is_stdout ? c.out : c.err).is_open())
                    watch_output(c, is_stdout);
                });
}

// Reads what is there now (bounded); closes the stream at EOF. False when the child is gone
// (its output callback may have run anything).
bool ProcessService::read_output(Child &c, bool is_stdout) {
  const std::uint64_t id = c.id;
  auto &sd = is_stdout ? c.out : c.err;
  char buf[kReadChunk];
  for (int i = 0; i < kReadsPerWakeup && sd.is_open(); ++i) {
    const ssize_t n = ::read(sd.native_handle(), buf, sizeof buf);
    if (n > 0) {
      auto &text = is_stdout ? c.result.out : c.result.err;
      auto &truncated = is_stdout ? c.result.out_truncated : c.result.err_truncated;
      keep_tail(text, truncated, c.max_capture, buf, static_cast<std::size_t>(n));
      if (truncated && c.stop_on_overflow) terminate(c);
      if (c.output && c.done) {
        auto output = c.output;  // a copy: the callback may run anything, even erase `c`
        output(id, is_stdout, std::string_view(buf, static_cast<std::size_t>(n)));
        if (!children_.count(id)) return false;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    boost::system::error_code ignored;
    sd.close(ignored);  // EOF or error: this stream is done
  }
  return true;
}

void ProcessService::on_exit(std::uint64_t id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child &c = *it->second;
  if (!reap(c)) return watch_exit(c);  // not yet (fallback polling)
  // What the child wrote before exiting is in the pipes now. A grandchild that kept them open
  // must not hold the result back, so read only what is there.
  if (c.out.is_open() && !read_output(c, true)) return;
  if (c.err.is_open() && !read_output(c, false)) return;
  finish(id);
}

bool ProcessService::reap(Child &c) {
  siginfo_t info{};
  int r;
  do {
    r = waitid(P_PID, static_cast<id_t>(c.pid), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (r < 0 && errno == EINTR);
  if (r == 0 && info.si_pid == 0) return false;
  // The zombie still holds its pid, so the group id cannot be anyone else's yet: stragglers of a
  // group we were terminating go now, before the reap frees the number.
  if (c.terminating) kill(-c.pid, SIGKILL);
  int status = 0;
  pid_t w;
  do {
    w = waitpid(c.pid, &status, WNOHANG);
  } while (w < 0 && errno == EINTR);
  c.reaped = true;
  if (w == c.pid && WIFEXITED(status)) {
    c.result.exit_code = WEXITSTATUS(status);
  } else if (w == c.pid && WIFSIGNALED(status)) {
    c.result.term_signal = WTERMSIG(status);
  } else {
    c.result.status = CLUSTERD_E_IO;
    c.result.error = "'" + c.program + "' (pid " + std::to_string(c.pid) +
                     "): exit status lost (reaped elsewhere?)";
  }
  return true;
}

void ProcessService::terminate(Child &c) {
  if (c.terminating || c.reaped || c.pid <= 0) return;
  c.terminating = true;
  signal_group(c.pid, SIGTERM);
  c.timer.expires_after(c.grace);
  c.timer.async_wait([this, alive = std::weak_ptr<bool>(alive_), id = c.id](auto error) {
    if (error || alive.expired()) return;
    auto it = children_.find(id);
    if (it != children_.end()) arm_kill(*it->second);
  });
}

void ProcessService::arm_kill(Child &c) {
  if (c.kill_sent || c.reaped) return;
  c.kill_sent = true;
  signal_group(c.pid, SIGKILL);
}

void ProcessService::finish(std::uint64_t id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  std::unique_ptr<Child> c = std::move(it->second);
  children_.erase(it);
  if (!c->done) return;  // cancelled
  trim(c->result.out, c->max_capture);
  trim(c->result.err, c->max_capture);
  auto done = std::move(c->done);
  Result result = std::move(c->result);
  c.reset();  // closes the descriptors, cancels the timers
  done(id, result);
}

void ProcessService::cancel(std::uint64_t id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child &c = *it->second;
  if (c.pid <= 0) {
    children_.erase(it);  // its error result was not delivered yet: now it never is
    return;
  }
  c.done = nullptr;
  terminate(c);
}

std::vector<pid_t> ProcessService::terminate_all(milliseconds grace, milliseconds kill_wait) {
  for (auto it = children_.begin(); it != children_.end();) {
    it->second->done = nullptr;
    it = it->second->pid <= 0 ? children_.erase(it) : std::next(it);
  }
  // Waits (blocking: the loop is stopping) until every child is reaped or `within` passed.
  auto reap_all = [this](milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (int round = 0; round < 10000; ++round) {  // bounded; each round waits or reaps
      std::vector<pollfd> fds;
      bool polling = false;
      for (auto &[id, c] : children_) {
        if (c->reaped || reap(*c)) continue;
        if (c->exit.is_open())
          fds.push_back(pollfd{c->exit.native_handle(), POLLIN, 0});
        else
          polling = true;
      }
      if (fds.empty() && !polling) return;
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      ::poll(fds.data(), fds.size(),
             static_cast<int>(polling ? std::min<long long>(left.count(), 10) : left.count()));
    }
  };
  for (auto &[id, c] : children_) {
    if (c->reaped || c->terminating) continue;
    c->terminating = true;
    signal_group(c->pid, SIGTERM);
  }
  reap_all(grace);
  for (auto &[id, c] : children_) arm_kill(*c);
  reap_all(kill_wait);
  std::vector<pid_t> left;
  for (auto &[id, c] : children_)
    if (!c->reaped) left.push_back(c->pid);
  children_.clear();
  return left;
}

}  // namespace clusterd::services
