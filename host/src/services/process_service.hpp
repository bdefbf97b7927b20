// The one child-process supervisor of the daemon ([hooks] and plugins via "clusterd.process/1"):
// posix_spawn without a shell, bounded capture, timeout → SIGTERM → grace → SIGKILL, reaping.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <clusterd/process.h>

namespace clusterd::services {

// Exit detection: a pidfd (pidfd_open, Linux >= 5.3) watched by the loop; without one, waitid()
// polled every 20 ms by a timer. Not SIGCHLD: a signal handler is process-wide and would race
// with any other waitpid() in the daemon, and polling is bounded (only while children run).
// Every signal goes to the child's process group, and only while the child is not reaped, so
// the pid (= pgid) cannot have been reused.
class ProcessService {
 public:
  static constexpr std::size_t kDefaultCapture = 64 * 1024;
  static constexpr std::size_t kMaxCapture = std::size_t{16} << 20;
  static constexpr std::chrono::milliseconds kDefaultGrace{2000};

  struct Request {
    std::vector<std::string> argv;                // argv[0]: a path, or a name looked up in PATH
    std::optional<std::vector<std::string>> env;  // exactly this; nullopt = the daemon's own
    std::string cwd;                              // "" = the daemon's
    std::size_t max_capture = kDefaultCapture;    // per stream; the tail is kept
    bool merge_stderr = false;                    // stderr into the stdout pipe
    bool stop_on_overflow = false;                // terminate once a stream overflows
    std::chrono::milliseconds timeout{0};         // 0 = none
    std::chrono::milliseconds grace = kDefaultGrace;
    // Output as it is read, before `done` (and never once cancelled): stdout (true) or stderr,
    // chunks cut anywhere. Also captured.
    std::function<void(std::uint64_t id, bool is_stdout, std::string_view data)> output;
  };

  struct Result {
    clusterd_status_t status = CLUSTERD_OK;  // OK: ran and reaped; NOT_FOUND / IO: never ran
    int exit_code = -1;                      // 0-255 if it exited
    int term_signal = 0;                     // if a signal ended it
    bool timed_out = false;
    pid_t pid = 0;
    std::string out, err;
    bool out_truncated = false, err_truncated = false;
    std::string error;  // why status != OK, or why the exit status is unknown
    bool succeeded() const { return status == CLUSTERD_OK && exit_code == 0 && !timed_out; }
    // "exited with code 3", "was killed by signal 9 (Killed)", "could not start: ...".
    std::string describe() const;
  };
  using Callback = std::function<void(std::uint64_t id, const Result &result)>;

  // The C ABI's view ("clusterd.process/1"), for the host table's bridge: a request of any
  // struct_size checked and copied into `out` (CLUSTERD_E_INVALID_ARG when malformed) with its
  // output callback (since 1.5; NULL if none) in `output`, for the bridge to bind, and a
  // result as the struct handed to the plugin (pointing into `result`).
  static clusterd_status_t from_abi(const clusterd_process_request_t *request, Request &out,
                                    clusterd_process_output_fn &output);
  static clusterd_process_result_t to_abi(const Result &result);

  explicit ProcessService(boost::asio::io_context &io);
  // terminate_all(kDefaultGrace, 1 s): no child outlives the daemon, none is left a zombie.
  ~ProcessService();
  ProcessService(const ProcessService &) = delete;
  ProcessService &operator=(const ProcessService &) = delete;

  // Starts the child; `done` runs once on the loop after it is reaped, or with an error result
  // if it could not start. Never calls `done` from inside spawn(). Ids are never reused.
  std::uint64_t spawn(Request request, Callback done);
  // `done` never runs; a running child is terminated (TERM, KILL after its grace) and reaped in
  // the background. Unknown ids are ignored.
  void cancel(std::uint64_t id);
  // Blocking, for stop paths: drops every callback, SIGTERMs every child's group, waits up to
  // `grace` for them, SIGKILLs the rest and waits up to `kill_wait`. Returns the pids it could
  // not reap (a child in uninterruptible sleep), for the caller to log.
  std::vector<pid_t> terminate_all(std::chrono::milliseconds grace,
                                   std::chrono::milliseconds kill_wait);

  // Children not reaped yet, cancelled ones included.
  std::size_t running() const;
  // The pid of a running child, or 0.
  pid_t pid_of(std::uint64_t id) const;

 private:
  struct Child;
  void watch_exit(Child &c);
  void watch_output(Child &c, bool is_stdout);
  bool read_output(Child &c, bool is_stdout);
  void on_exit(std::uint64_t id);
  void terminate(Child &c);
  void arm_kill(Child &c);
  bool reap(Child &c);
  void finish(std::uint64_t id);

  boost::asio::io_context &io_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Child>> children_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // async handlers' guard
};

}  // namespace clusterd::services
