#include "plugin/preflight.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "plugin/module.hpp"
#include "plugin/trust.hpp"
#include "util/strings.hpp"

extern char **environ;

namespace clusterd::plugin {
namespace {

std::string &program() {
  static std::string value;
  return value;
}

constexpr int kFileFd = 3, kReportFd = 4;
constexpr std::size_t kMaxReport = 64 * 1024;
// Child exit codes: the gate refused the library; dlopen() itself failed (a missing
// dependency can be installed later: not cached).
constexpr int kRefused = 1, kUnloadable = 2;

std::string plugin_label(const std::filesystem::path &path) {
  std::string stem = path.stem().string();
  return "plugin " + (stem.rfind("clusterd-", 0) == 0 ? stem.substr(9) : stem);
}

}  // namespace

void set_preflight_program(std::string value) {
  program() = std::move(value);
}

bool preflight_enabled() {
  return !program().empty();
}

Probe preflight(int fd, const std::filesystem::path &path) {
  Probe probe;
  const std::string label = path.string() + ": " + plugin_label(path);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    probe.error = label + ": cannot preflight: pipe: " + std::strerror(errno);
    probe.retry = true;
    return probe;
  }
  Fd read_end(pipe_fds[0]);
  pid_t pid = -1;
  int rc;
  {
    Fd write_end(pipe_fds[1]);
    // Above 4, so that dup2() onto 3 and 4 really makes new descriptors (dup2 of an fd onto
    // itself would leave its close-on-exec flag set).
    Fd file(::fcntl(fd, F_DUPFD_CLOEXEC, 10)),
        report(::fcntl(write_end.get(), F_DUPFD_CLOEXEC, 10));
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, file.get(), kFileFd);
    ::posix_spawn_file_actions_adddup2(&actions, report.get(), kReportFd);
    ::posix_spawn_file_actions_addclosefrom_np(&actions, kReportFd + 1);
    ::posix_spawnattr_init(&attr);
    // Its own process group, so that a timeout also kills what the plugin's code started; default
    // signal dispositions and an empty mask (the daemon ignores SIGPIPE).
    ::posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ::posix_spawnattr_setpgroup(&attr, 0);
    sigset_t signals;
    ::sigemptyset(&signals);
    ::posix_spawnattr_setsigmask(&attr, &signals);
    ::sigfillset(&signals);
    ::posix_spawnattr_setsigdefault(&attr, &signals);
    std::string shown = path.string();
    char *argv[] = {const_cast<char *>("clusterd"), const_cast<char *>("preflight-plugin"),
                    shown.data(), nullptr};
    rc = file && report ? ::posix_spawn(&pid, program().c_str(), &actions, &attr, argv, environ)
                        : errno;
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }  // our copies of the pipe's write end are closed: EOF when the child's goes
  if (rc != 0) {
    probe.error = label + ": cannot preflight: " + program() + ": " + std::strerror(rc);
    probe.retry = true;
    return probe;
  }

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kPreflightDeadlineMs);
  auto left_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long>(0, left.count()));
  };
  std::string report;
  bool hung = true;
  for (int left; (left = left_ms()) > 0;) {  // the report, until EOF
    pollfd p{read_end.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char buffer[4096];
    ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      hung = false;  // EOF: it is done (or its pipe broke: its exit status tells)
      break;
    }
    if (report.size() < kMaxReport) report.append(buffer, static_cast<std::size_t>(n));
  }
  siginfo_t info{};
  while (!hung) {  // its exit, seen without reaping it yet (the pid keeps its group's id ours)
    info.si_pid = 0;
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid)
      break;
    if (left_ms() == 0)
      hung = true;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(-pid, SIGKILL);  // a hung child, or anything the plugin's code left behind
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (hung) {
    probe.error = label + " hung at load (no answer within " +
                  std::to_string(kPreflightDeadlineMs / 1000) + " s); not loaded";
    return probe;
  }
  if (WIFSIGNALED(status)) {
    probe.error =
        label + " crashed at load (signal " + std::to_string(WTERMSIG(status)) + "); not loaded";
    return probe;
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto lines = util::split(report, '\n');
  if (code == 0 && lines.size() >= 3 && lines[0] == "ok") {
    probe.name = lines[1];
    probe.kind = static_cast<std::uint32_t>(std::strtoul(lines[2].c_str(), nullptr, 10));
    for (std::size_t i = 3; i < lines.size(); ++i)
      if (!lines[i].empty()) probe.aliases.push_back(lines[i]);
    return probe;
  }
  if ((code == kRefused || code == kUnloadable) && lines.size() >= 2 && lines[0] == "error") {
    probe.error = report.substr(6);
    while (!probe.error.empty() && probe.error.back() == '\n') probe.error.pop_back();
    probe.retry = code == kUnloadable;
    return probe;
  }
  probe.error = label + " exited with status " + std::to_string(code) +
                " at load (a plugin must not exit the process); not loaded";
  return probe;
}

void preflight_child(const std::string &path) {
  // A crash must end this process by its signal, which is what the parent reports: a sanitizer
  // runtime's handler (ASan builds) would print and exit(1) instead.
  for (int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(signal, SIG_DFL);
  std::string error;
  bool unloadable = false;
  auto module = Module::load_fd(Fd(kFileFd), path, error, &unloadable);
  std::string report;
  if (module) {
    report = "ok\n" + module->name() + "\n" + std::to_string(module->kind()) + "\n";
    for (const auto &alias : module->aliases()) report += alias + "\n";
  } else {
    report = "error\n" + error + "\n";
  }
  for (std::size_t done = 0; done < report.size();) {
    ssize_t n = ::write(kReportFd, report.data() + done, report.size() - done);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  // No exit handlers or static destructors: the plugin's would run, and only loading counts.
  std::_Exit(module ? 0 : unloadable ? kUnloadable : kRefused);
}

}  // namespace clusterd::plugin
