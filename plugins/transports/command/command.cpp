// Transport "command": libcluster's {M,F,A} connect/disconnect/list_nodes hooks as commands.
// Each operation runs one child (posix_spawnp, never a shell) watched through the host's loop.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

extern char **environ;

namespace {

using clusterd::Id;
using clusterd::Status;
using std::chrono::milliseconds;

constexpr std::size_t kMaxListOutput = 1 << 20;  // list_nodes stdout limit
constexpr std::size_t kTailBytes = 4096;         // kept from stderr (and stdout of connect)
constexpr std::size_t kMaxMessageLine = 512;     // of that tail, quoted in messages
constexpr std::size_t kReadChunk = 65536;
constexpr int kReadsPerWakeup = 16;        // then yield to the loop (level-triggered)
constexpr milliseconds kFallbackPoll{20};  // child exit polling without pidfd_open
constexpr int kStopReapMs = 2000;          // stop(): how long to wait for killed children

enum class Kind { kConnect, kDisconnect, kList };

const char *kind_name(Kind k) {
  switch (k) {
    case Kind::kConnect:
      return "connect";
    case Kind::kDisconnect:
      return "disconnect";
    case Kind::kList:
      return "list_nodes";
  }
  return "?";
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// A pipe end the parent reads: CLOEXEC so that concurrent spawns don't inherit it, nonblocking
// for the loop. Never 0-2, so the child's dup2 onto 0-2 always clears CLOEXEC on the copy.
int move_above_stdio(int fd) {
  if (fd > 2) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  const int err = errno;
  close(fd);
  errno = err;
  return moved;
}

struct Pipe {
  int read = -1;
  int write = -1;
  bool open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    read = move_above_stdio(fds[0]);
    write = move_above_stdio(fds[1]);
    if (read < 0 || write < 0) return false;
    // Only the parent's end is nonblocking: the flag lives on the open file description, and
    // the child's end must stay blocking for the command.
    const int flags = fcntl(read, F_GETFL);
    return flags >= 0 && fcntl(read, F_SETFL, flags | O_NONBLOCK) == 0;
  }
  void close_all() {
    if (read >= 0) close(read);
    if (write >= 0) close(write);
    read = write = -1;
  }
};

std::string_view trim(std::string_view s) {
  const char *ws = " \t\r\n\v\f";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// The last non-blank line of `text`, cut to kMaxMessageLine bytes.
std::string last_line(std::string_view text) {
  while (!text.empty()) {
    const auto nl = text.find_last_of('\n');
    const std::string_view line = trim(nl == std::string_view::npos ? text : text.substr(nl + 1));
    if (!line.empty()) {
      if (line.size() <= kMaxMessageLine) return std::string(line);
      return std::string(line.substr(line.size() - kMaxMessageLine)) + " (cut)";
    }
    if (nl == std::string_view::npos) break;
    text = text.substr(0, nl);
  }
  return {};
}

void keep_tail(std::string &buf, const char *data, std::size_t n) {
  buf.append(data, n);
  if (buf.size() > kTailBytes) buf.erase(0, buf.size() - kTailBytes);
}

std::string describe_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

class CommandTransport final : public clusterd::Transport {
 public:
  static constexpr const char *kName = "command";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Runs commands to connect, disconnect and list nodes (libcluster's connect/disconnect/"
      "list_nodes hooks); never through a shell";
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::required(clusterd::option::string_list(
          "connect",
          "Command (argv) that connects the managed node to a node, given as the last argument; "
          "exit 0 = connected")),
      clusterd::option::string_list(
          "disconnect",
          "Command (argv) that disconnects a node, given as the last argument; unset = "
          "disconnecting is not supported"),
      clusterd::option::string_list(
          "list_nodes",
          "Command (argv) that prints the connected nodes, one per line; unset = not supported"),
      clusterd::option::duration(
          "timeout", "Time limit of each command; the command is then killed (SIGKILL)", "\"10s\""),
      clusterd::option::string("local_node", "The managed (local) node's name, e.g. a@127.0.0.1"),
  };

  ~CommandTransport() override {
    // Only reached without stop() when start() was never called (no child ever ran); be safe.
    for (auto &entry : children_) close_child_fds(*entry.second);
  }

  void init(const clusterd::Config &config) override {
    connect_argv_ = read_argv(config, "connect").value();
    disconnect_argv_ = read_argv(config, "disconnect");
    list_argv_ = read_argv(config, "list_nodes");
    timeout_ = config.duration("timeout");
    if (!clusterd::is_infinite(timeout_) && timeout_.count() <= 0)
      throw clusterd::Error(
          CLUSTERD_E_CONFIG,
          "timeout: must be a positive duration or \"infinity\"" + config.where("timeout"));
    local_node_ = config.optional_string("local_node");
    if (local_node_ && local_node_->empty()) local_node_.reset();
  }

  void start() override { running_ = true; }

  void stop() override {
    running_ = false;
    // Operations the host did not cancel still get their one completion.
    for (auto &entry : children_) {
      Child &c = *entry.second;
      if (!c.finished) {
        c.finished = true;
        complete_child(c, CLUSTERD_E_CANCELLED, "transport stopped", {});
      }
    }
    kill_and_reap_all();
    children_.clear();  // cancels every watch and timer
  }

  void connect(Id op, std::string_view node) override {
    spawn(op, Kind::kConnect, connect_argv_, node);
  }

  void disconnect(Id op, std::string_view node) override {
    if (!disconnect_argv_)
      throw clusterd::Error(CLUSTERD_E_UNSUPPORTED, "no disconnect command configured");
    spawn(op, Kind::kDisconnect, *disconnect_argv_, node);
  }

  void list_nodes(Id op) override {
    if (!list_argv_)
      throw clusterd::Error(CLUSTERD_E_UNSUPPORTED, "no list_nodes command configured");
    spawn(op, Kind::kList, *list_argv_, std::nullopt);
  }

  void cancel(Id op) override {
    for (auto &entry : children_) {
      Child &c = *entry.second;
      if (c.op == op && !c.finished) {
        c.finished = true;  // never completed now; the child is reaped when it exits
        c.deadline.reset();
        kill_child(c);
      }
    }
  }

  std::optional<std::string> local_node() override { return local_node_; }

 private:
  struct Child {
    Id op = 0;
    Kind kind = Kind::kConnect;
    std::string program;  // argv[0], for messages
    pid_t pid = -1;
    bool reaped = false;
    bool killed = false;    // we sent SIGKILL
    bool finished = false;  // completed, cancelled or timed out: no completion any more
    bool overflow = false;  // list_nodes printed more than kMaxListOutput
    int pidfd = -1;
    int out = -1;
    int err = -1;
    std::string out_buf;  // list_nodes: all of stdout; others: the tail
    std::string err_tail;
    clusterd::FdWatch out_watch, err_watch, exit_watch;
    clusterd::Timer deadline, poll;
  };

  static std::optional<std::vector<std::string>> read_argv(const clusterd::Config &config,
                                                           const char *key) {
    auto argv = config.optional_strings(key);
    if (!argv) return std::nullopt;
    if (argv->empty() || (*argv)[0].empty())
      throw clusterd::Error(
          CLUSTERD_E_CONFIG,
          std::string(key) + ": needs at least the program to run" + config.where(key));
    return argv;
  }

  // The node becomes an argument of a program we did not write: refuse what could be read as
  // an option or break line-oriented scripts.
  static void check_node(std::string_view node) {
    if (node.empty()) throw clusterd::Error(CLUSTERD_E_INVALID_ARG, "empty node name");
    if (node.front() == '-')
      throw clusterd::Error(CLUSTERD_E_INVALID_ARG,
                            "node name '" + std::string(node) + "' starts with '-'");
    for (const char c : node)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        throw clusterd::Error(CLUSTERD_E_INVALID_ARG, "node name contains a control character");
  }

  void spawn(Id op, Kind kind, const std::vector<std::string> &base,
             std::optional<std::string_view> node) {
    if (!running_) throw clusterd::Error(CLUSTERD_E_STATE, "transport not running");
    if (node) check_node(*node);

    std::vector<std::string> args = base;
    if (node) args.emplace_back(*node);
    std::vector<char *> argv;
    argv.reserve(args.size() + 1);
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    auto child = std::make_unique<Child>();
    Child &c = *child;
    c.op = op;
    c.kind = kind;
    c.program = args[0];

    Pipe out, err;
    if (!out.open() || !err.open()) {
      const int e = errno;
      out.close_all();
      err.close_all();
      complete_child(c, CLUSTERD_E_IO, std::string("cannot create pipes: ") + errno_text(e), {});
      return;
    }

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out.write, 1);
    posix_spawn_file_actions_adddup2(&actions, err.write, 2);
    // Boost.Asio opens the host's sockets without CLOEXEC: the child must not inherit them.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    // The daemon's signal mask and ignored signals (SIGPIPE...) must not leak into commands.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(out.write);
    close(err.write);
    if (rc != 0) {
      close(out.read);
      close(err.read);
      complete_child(c, CLUSTERD_E_IO,
                     std::string(kind_name(kind)) + " command '" + c.program +
                         "' cannot run: " + errno_text(rc),
                     {});
      return;
    }
    c.pid = pid;
    c.out = out.read;
    c.err = err.read;
    c.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // CLOEXEC by definition

    // From here the child exists: register it first, so that a failure below still kills and
    // reaps it (stop() or the destructor of the map entry).
    children_.emplace(pid, std::move(child));
    try {
      c.out_watch = clusterd::FdWatch::watch(host(), c.out, CLUSTERD_FD_READ,
                                             [this, &c](uint32_t) { on_output(c, c.out); });
      c.err_watch = clusterd::FdWatch::watch(host(), c.err, CLUSTERD_FD_READ,
                                             [this, &c](uint32_t) { on_output(c, c.err); });
      if (c.pidfd >= 0) {
        c.exit_watch = clusterd::FdWatch::watch(host(), c.pidfd, CLUSTERD_FD_READ,
                                                [this, &c](uint32_t) { on_exit(c); });
      } else {  // kernel without pidfd_open (< 5.3): poll for the exit
        c.poll = clusterd::Timer::every(host(), kFallbackPoll, [this, &c] { on_exit(c); });
      }
      if (!clusterd::is_infinite(timeout_))
        c.deadline = clusterd::Timer::after(host(), timeout_, [this, &c] { on_timeout(c); });
    } catch (const clusterd::Error &e) {
      c.finished = true;
      kill_child(c);
      complete_child(c, e.status(),
                     std::string("cannot watch the ") + kind_name(kind) + " command: " + e.what(),
                     {});
    }
  }

  // Reads what is available; at EOF (or error) stops watching and closes the pipe.
  void on_output(Child &c, int &fd) {
    if (fd < 0) return;
    char buf[kReadChunk];
    for (int i = 0; i < kReadsPerWakeup; ++i) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        take_output(c, fd == c.out, buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      // EOF or a read error: this stream is done.
      (fd == c.out ? c.out_watch : c.err_watch).reset();
      close(fd);
      fd = -1;
      return;
    }
  }

  void take_output(Child &c, bool is_stdout, const char *data, std::size_t n) {
    if (!is_stdout) {
      keep_tail(c.err_tail, data, n);
      return;
    }
    if (c.kind != Kind::kList) {
      keep_tail(c.out_buf, data, n);
      return;
    }
    if (c.overflow) return;
    if (c.out_buf.size() + n > kMaxListOutput) {
      c.overflow = true;
      c.out_buf.clear();
      c.out_buf.shrink_to_fit();
      kill_child(c);  // no point in letting it go on
      return;
    }
    c.out_buf.append(data, n);
  }

  void on_exit(Child &c) {
    int status = 0;
    pid_t r;
    do {
      r = waitpid(c.pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return;  // not yet (fallback polling)
    c.reaped = true;
    const bool lost = r < 0;  // ECHILD: reaped elsewhere (SIGCHLD ignored by the process?)
    const pid_t pid = c.pid;

    // Whatever the child wrote before exiting is in the pipes now; a grandchild that kept them
    // open must not hold the operation hostage, so read only what is there.
    if (c.out >= 0) on_output(c, c.out);
    if (c.err >= 0) on_output(c, c.err);

    if (!c.finished) {
      c.finished = true;
      finish(c, lost, status);
    }
    auto it = children_.find(pid);
    if (it != children_.end()) {
      close_child_fds(*it->second);
      children_.erase(it);  // `c` is gone from here on
    }
  }

  void finish(Child &c, bool lost, int status) {
    const std::string what = std::string(kind_name(c.kind)) + " command '" + c.program + "'";
    if (lost) {
      complete_child(c, CLUSTERD_E_IO,
                     what + ": exit status lost (was the child reaped elsewhere?)", {});
    } else if (c.overflow) {
      complete_child(c, CLUSTERD_E_IO, what + ": output exceeds 1 MiB", {});
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      std::vector<std::string> nodes;
      if (c.kind == Kind::kList) nodes = parse_nodes(c.out_buf);
      complete_child(c, CLUSTERD_OK, {}, nodes);
    } else if (WIFEXITED(status)) {
      std::string line = last_line(c.err_tail);
      if (line.empty()) line = last_line(c.out_buf);
      std::string message = what + " exited with code " + std::to_string(WEXITSTATUS(status));
      if (!line.empty()) message += ": " + line;
      complete_child(c, CLUSTERD_E_UNREACHABLE, message, {});
    } else {
      const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      const char *name = sig != 0 ? strsignal(sig) : nullptr;
      complete_child(c, CLUSTERD_E_IO,
                     what + " killed by signal " + std::to_string(sig) +
                         (name != nullptr ? std::string(" (") + name + ")" : std::string()),
                     {});
    }
  }

  static std::vector<std::string> parse_nodes(std::string_view text) {
    std::vector<std::string> nodes;
    while (!text.empty()) {
      const auto nl = text.find('\n');
      const std::string_view line = trim(text.substr(0, nl));
      if (!line.empty()) nodes.emplace_back(line);
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
    return nodes;
  }

  void on_timeout(Child &c) {
    if (c.finished) return;
    c.finished = true;
    kill_child(c);  // reaped by its exit watch
    complete_child(c, CLUSTERD_E_TIMEOUT,
                   std::string(kind_name(c.kind)) + " command '" + c.program +
                       "' timed out after " + describe_duration(timeout_) + " and was killed",
                   {});
  }

  void complete_child(const Child &c, Status status, const std::string &message,
                      const std::vector<std::string> &nodes) {
    if (c.kind == Kind::kList) {
      complete_list(c.op, status, message, nodes);
    } else {
      complete(c.op, status, message);
    }
  }

  static void kill_child(Child &c) {
    // The child is ours and not yet reaped, so its PID cannot have been reused.
    if (c.pid > 0 && !c.reaped && !c.killed) {
      kill(c.pid, SIGKILL);
      c.killed = true;
    }
  }

  static void close_child_fds(Child &c) {
    c.out_watch.reset();
    c.err_watch.reset();
    c.exit_watch.reset();
    c.deadline.reset();
    c.poll.reset();
    for (int *fd : {&c.out, &c.err, &c.pidfd}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  // stop(): SIGKILL every child and reap them, waiting at most kStopReapMs in total.
  void kill_and_reap_all() {
    for (auto &entry : children_) kill_child(*entry.second);
    const auto deadline = std::chrono::steady_clock::now() + milliseconds(kStopReapMs);
    for (int round = 0; round < 10000; ++round) {  // bounded; each round waits or reaps
      std::vector<pollfd> fds;
      bool any_without_pidfd = false;
      for (auto &entry : children_) {
        Child &c = *entry.second;
        if (c.reaped) continue;
        int status = 0;
        const pid_t r = waitpid(c.pid, &status, WNOHANG);
        if (r != 0 && !(r < 0 && errno == EINTR)) {
          c.reaped = true;
          continue;
        }
        if (c.pidfd >= 0) {
          fds.push_back(pollfd{c.pidfd, POLLIN, 0});
        } else {
          any_without_pidfd = true;
        }
      }
      if (fds.empty() && !any_without_pidfd) break;
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      const int wait_ms = static_cast<int>(any_without_pidfd ? std::min<long long>(left.count(), 10)
                                                             : left.count());
      poll(fds.data(), fds.size(), wait_ms);
    }
    for (auto &entry : children_) {
      Child &c = *entry.second;
      if (!c.reaped)
        host().warn("stop: " + std::string(kind_name(c.kind)) + " command '" + c.program +
                    "' (pid " + std::to_string(c.pid) + ") did not exit after SIGKILL; not reaped");
      close_child_fds(c);
    }
  }

  std::vector<std::string> connect_argv_;
  std::optional<std::vector<std::string>> disconnect_argv_;
  std::optional<std::vector<std::string>> list_argv_;
  milliseconds timeout_{10000};
  std::optional<std::string> local_node_;
  bool running_ = false;
  std::map<pid_t, std::unique_ptr<Child>> children_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(CommandTransport);
