// Helpers for tests that talk to real servers on loopback: child processes killed by PID,
// temporary directories, bounded waits on the io_context and on files.
#pragma once

#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char **environ;

namespace clusterd::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs the loop until `done()` holds or `limit` passes; true if it holds. Bounded in time
// and in iterations.
inline bool run_until(boost::asio::io_context &io, const std::function<bool()> &done,
                      std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  for (int round = 0; round < 1'000'000 && Clock::now() < deadline; ++round) {
    if (done()) return true;
    io.restart();
    io.run_for(5ms);
  }
  return done();
}

// Runs every handler that is ready, then reports how many handlers ran during `window`:
// an idle component must cause none.
inline std::size_t wakeups_while_idle(boost::asio::io_context &io,
                                      std::chrono::milliseconds window = 300ms) {
  io.restart();
  for (int round = 0; round < 1000 && io.poll() > 0; ++round) io.restart();
  io.restart();
  return io.run_for(window);
}

// True if the loop has no outstanding work at all (nothing armed): run() returns at once.
inline bool nothing_armed(boost::asio::io_context &io) {
  io.restart();
  const auto start = Clock::now();
  io.run_for(2s);
  return Clock::now() - start < 1s;
}

class TempDir {
 public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/clusterd-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buffer.data();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }
  std::string operator/(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string &path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A child process with stdout/stderr in `log_path`; killed by its PID when destroyed.
class Process {
 public:
  Process(const std::vector<std::string> &argv, const std::string &log_path) {
    std::vector<char *> args;
    for (const auto &arg : argv) args.push_back(const_cast<char *>(arg.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  }
  ~Process() { stop(); }
  Process(const Process &) = delete;
  Process &operator=(const Process &) = delete;

  pid_t pid() const { return pid_; }

  // False once the process has exited (and then reaps it).
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }

  // Waits (bounded) for the process to exit by itself; its wait status, or -1.
  int wait_exit(std::chrono::milliseconds limit = 30s) {
    const auto deadline = Clock::now() + limit;
    while (alive() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return pid_ > 0 ? -1 : exit_status_;
  }

  // SIGTERM, then SIGKILL if it lingers; always reaps.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + 5s;
    while (alive() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// Polls until `ready()` holds, the process dies, or `limit` passes.
inline bool wait_ready(Process &process, const std::function<bool()> &ready,
                       std::chrono::milliseconds limit = 15s) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (ready()) return true;
    if (!process.alive()) return false;
    std::this_thread::sleep_for(10ms);
  }
  return ready();
}

// A socket of our own bound to a loopback address, closed when destroyed.
class LoopbackSocket {
 public:
  LoopbackSocket(int type, const std::string &address = "127.0.0.1", int port = 0) {
    sockaddr_storage storage{};
    auto *v4 = reinterpret_cast<sockaddr_in *>(&storage);
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&storage);
    socklen_t length = 0;
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(port));
      length = sizeof *v4;
    } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(port));
      length = sizeof *v6;
    } else {
      throw std::runtime_error("not an address: " + address);
    }
    fd_ = ::socket(storage.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    auto *generic = reinterpret_cast<sockaddr *>(&storage);
    if (::bind(fd_, generic, length) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    getsockname(fd_, generic, &length);
    port_ = ntohs(storage.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket &) = delete;
  LoopbackSocket &operator=(const LoopbackSocket &) = delete;
  bool bound() const { return fd_ >= 0; }
  int port() const { return port_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A TCP port on 127.0.0.1 that accepts connections (the kernel completes the handshake) but
// never reads or answers.
class SilentTcpServer {
 public:
  SilentTcpServer() : socket_(SOCK_STREAM) { ::listen(socket_.fd(), 64); }
  int port() const { return socket_.port(); }

 private:
  LoopbackSocket socket_;
};

// A port on 127.0.0.1 where nothing listens (connections are refused).
inline int unused_tcp_port() {
  return LoopbackSocket(SOCK_STREAM).port();
}

inline bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

inline bool contains_nocase(std::string text, std::string part) {
  for (auto *s : {&text, &part}) {
    for (char &c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text.find(part) != std::string::npos;
}

}  // namespace clusterd::test
