// Strategy "exec": node names from a command's standard output, so that any inventory (a cloud
// CLI, nomad, `tailscale status --json | jq`, a CMDB script) can feed clusterd without a plugin.
// The command runs through the host's process service (argv, never a shell; its own process
// group, killed and reaped by PID), in one of two modes:
//  - periodic: run every polling_interval; exit 0 = the complete set, one name per line. A
//    non-zero exit, a signal, the timeout or more than max_output bytes fail the round, and
//    the host keeps the last good set.
//  - stream: a long-running command printing "+name", "-name" and "=name ... =" full sets
//    (exec_lines.hpp); when it exits, it is restarted with backoff and the nodes stay.
// Stderr lines go to the log (escaped and rate-limited by the host); the argv is never logged
// beyond the program, since it may carry credentials.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

#include "exec_lines.hpp"

namespace {

namespace opt = clusterd::option;
namespace ex = clusterd::exec;
using std::chrono::milliseconds;

constexpr std::size_t kStderrLinesPerRun = 20;  // of a periodic run: its tail is logged
constexpr std::size_t kTail = 4096;             // stream mode: the capture kept for messages

std::string ms(milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

class ExecStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "exec";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Node names from a command's standard output: run periodically (one name per line) or "
      "streamed (+name, -name, =name ... = lines); argv, never through a shell";
  // The command is the inventory: nodes it stops listing are disconnected (unless the topology
  // says disconnect = "never").
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::nonempty(opt::required(opt::string_list(
          "command",
          "The command as an argv list (argv[0] is looked up in PATH), run without a shell; "
          "only argv[0] is ever logged"))),
      opt::choices(
          opt::string("mode",
                      "periodic: run every polling_interval, exit 0 = the complete set, one name "
                      "per line; stream: a long-running command printing +NAME, -NAME, =NAME and "
                      "= lines, restarted with backoff when it exits",
                      "\"periodic\""),
          "periodic|stream"),
      opt::finite(opt::positive(opt::duration(
          "polling_interval", "periodic: time from the end of one run to the start of the next",
          "\"5s\""))),
      opt::finite(opt::positive(
          opt::duration("timeout",
                        "periodic: time limit of one run; the command's process group then gets "
                        "SIGTERM (SIGKILL 2 s later) and the round fails",
                        "\"30s\""))),
      opt::range(opt::integer("max_output",
                              "periodic: the most bytes a run may print on stdout, and on stderr "
                              "(more fails the round and stops the command); stream: the most "
                              "bytes of names in one =NAME ... = full set",
                              "1048576"),
                 1024, 16 << 20),
      opt::finite(opt::positive(
          opt::duration("restart_backoff_initial",
                        "stream: wait before the first restart of an exited command", "\"1s\""))),
      opt::finite(opt::positive(opt::duration(
          "restart_backoff_max",
          "stream: the longest wait between restarts (a run that lasted this long resets the "
          "backoff)",
          "\"30s\""))),
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    const auto initial = config.optional_duration("restart_backoff_initial");
    const auto max = config.optional_duration("restart_backoff_max");
    if (initial && max && *initial > *max)
      problems.add("restart_backoff_initial", "is longer than restart_backoff_max");
  }

  void init(const clusterd::Config &config) override {
    argv_ = config.strings("command");
    stream_ = config.string("mode") == "stream";
    interval_ = config.duration("polling_interval");
    timeout_ = config.duration("timeout");
    max_output_ = static_cast<std::size_t>(config.integer("max_output"));
    backoff_max_ = config.duration("restart_backoff_max");
    restarts_.emplace(config.duration("restart_backoff_initial"), backoff_max_);
    host().set_status("command",
                      "'" + argv_[0] + "' (" + (stream_ ? "stream" : "periodic") + " mode)");
  }

  void start() override { run(); }

  void stop() override {
    timer_.reset();
    process_.reset();  // the host terminates and reaps the child
  }

  // Periodic: a run now, unless one is in flight. Stream mode reports as things happen.
  void refresh() override {
    if (stream_ || process_) return;
    timer_.reset();
    run();
  }

 private:
  void run() {
    clusterd::ProcessRequest request;
    request.argv = argv_;
    if (stream_) {
      parser_.emplace(max_output_);
      stderr_lines_ = ex::LineSplitter{};
      request.max_capture_bytes = kTail;
      request.output = [this](uint32_t stream, std::string_view data) {
        if (stream == CLUSTERD_PROCESS_STDOUT)
          streamed(data);
        else
          stderr_chunk(data);
      };
    } else {
      request.timeout = timeout_;
      request.max_capture_bytes = max_output_;
      request.flags = CLUSTERD_PROCESS_STOP_ON_OVERFLOW;
    }
    started_ = std::chrono::steady_clock::now();
    try {
      process_ =
          clusterd::Process::spawn(host(), request, [this](const clusterd::ProcessResult &r) {
            stream_ ? stream_ended(r) : periodic_done(r);
          });
    } catch (const std::exception &e) {  // the host refused the request
      fail(std::string("cannot run '") + argv_[0] + "': " + e.what());
      schedule(stream_ ? restarts_->next() : interval_);
    }
  }

  // ---- periodic mode ----

  void periodic_done(const clusterd::ProcessResult &r) {
    log_stderr(stderr_tail(r.err), r.pid);
    if (const std::string why = failure(r); !why.empty()) {
      fail(why);
    } else {
      ex::ListAnswer answer = ex::parse_list(r.out);
      refuse(answer.refused);
      host().set_status("last run", "pid " + std::to_string(r.pid) + " exited 0 with " +
                                        std::to_string(answer.nodes.size()) +
                                        " node name(s) after " + ms(elapsed()));
      report_nodes(answer.nodes);
    }
    schedule(interval_);
  }

  // Why a periodic run is not a complete answer, or "". Without the pid: the host logs a
  // discovery error once per change of its text, not every round of a lasting failure.
  std::string failure(const clusterd::ProcessResult &r) const {
    const std::string what = "'" + argv_[0] + "'";
    if (r.status != CLUSTERD_OK) return r.error;
    if (r.timed_out) return what + " timed out after " + ms(timeout_) + " and was killed";
    if (r.stdout_truncated || r.stderr_truncated)  // either stream stops it
      return what + " printed more than max_output (" + std::to_string(max_output_) +
             " bytes) on " + (r.stdout_truncated ? "stdout" : "stderr") + " and was stopped";
    return r.exit_code == 0 ? std::string() : what + " " + ended(r);
  }

  // The last lines of a periodic run's stderr (at most kStderrLinesPerRun).
  static std::vector<ex::Line> stderr_tail(std::string_view err) {
    ex::LineSplitter splitter;
    std::vector<ex::Line> lines;
    splitter.feed(err, lines);
    splitter.finish(lines);
    if (lines.size() > kStderrLinesPerRun)
      lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(kStderrLinesPerRun));
    return lines;
  }

  // ---- stream mode ----

  void streamed(std::string_view data) {
    std::vector<ex::StreamEvent> events;
    std::vector<ex::Refusal> refused;
    parser_->feed(data, events, refused);
    apply(events, refused);
  }

  void apply(const std::vector<ex::StreamEvent> &events, const std::vector<ex::Refusal> &refused) {
    refuse(refused);
    for (const auto &e : events) {
      switch (e.kind) {
        case ex::StreamEvent::Kind::kSeen:
          node_seen(e.node);
          break;
        case ex::StreamEvent::Kind::kLost:
          node_lost(e.node);
          break;
        case ex::StreamEvent::Kind::kFullSet:
          report_nodes(e.nodes);
          break;
      }
    }
  }

  void stderr_chunk(std::string_view data) {
    std::vector<ex::Line> lines;
    stderr_lines_.feed(data, lines);
    log_stderr(lines, 0);
  }

  void stream_ended(const clusterd::ProcessResult &r) {
    std::vector<ex::StreamEvent> events;
    std::vector<ex::Refusal> refused;
    const bool open_set = parser_->finish(events, refused);
    apply(events, refused);
    parser_.reset();
    std::vector<ex::Line> lines;
    stderr_lines_.finish(lines);
    log_stderr(lines, r.pid);
    // A run that lasted the longest wait was healthy: the next failure starts over.
    if (elapsed() >= backoff_max_) restarts_->reset();
    const milliseconds wait = restarts_->next();
    host().count("exec_restarts_total", "Restarts of exited stream commands");
    std::string why = "stream command '" + argv_[0] + "'" +
                      (r.pid ? " (pid " + std::to_string(r.pid) + ")" : std::string()) + " " +
                      (r.status != CLUSTERD_OK ? r.error : ended(r)) + " after " + ms(elapsed());
    if (open_set) why += ", in the middle of a full set (ignored)";
    why += "; restarting in " + ms(wait) + ", the nodes are kept";
    discovery_failed(why);  // logged by the host
    schedule(wait);
  }

  // ---- shared ----

  static std::string ended(const clusterd::ProcessResult &r) {
    if (r.term_signal != 0) return "was killed by signal " + std::to_string(r.term_signal);
    return "exited with code " + std::to_string(r.exit_code);
  }

  milliseconds elapsed() const {
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started_);
  }

  void fail(const std::string &why) {
    host().count("exec_failed_runs_total", "Periodic runs that were no complete answer");
    host().set_status("last run", "failed: " + why);
    discovery_failed(why);  // the host keeps the last good set
  }

  void schedule(milliseconds wait) {
    timer_ = clusterd::Timer::after(host(), wait, [this] { run(); });
  }

  // Stderr lines, quoted: the host escapes them, and rate-limits lines of one shape.
  void log_stderr(const std::vector<ex::Line> &lines, int32_t pid) {
    for (const auto &line : lines) {
      if (ex::meaningful(line.text).empty()) continue;
      std::string text = "'" + argv_[0] + "'";
      if (pid != 0) text += " (pid " + std::to_string(pid) + ")";
      text += " stderr: \"" + line.text + (line.too_long ? "...\"" : "\"");
      host().warn(text);
    }
  }

  void refuse(const std::vector<ex::Refusal> &refused) {
    if (refused.empty()) return;
    refused_ += refused.size();
    host().count("exec_refused_lines_total",
                 "Lines of the command's output that were no node name nor protocol line", nullptr,
                 nullptr, refused.size());
    const ex::Refusal &last = refused.back();
    host().set_status("refused lines",
                      std::to_string(refused_) + ", the last \"" + last.line + "\": " + last.why);
    for (const auto &r : refused) host().warn("refused line \"" + r.line + "\": " + r.why);
  }

  std::vector<std::string> argv_;
  bool stream_ = false;
  milliseconds interval_{5000}, timeout_{30000};
  std::size_t max_output_ = 1 << 20;
  milliseconds backoff_max_{30000};
  std::optional<clusterd::Backoff> restarts_;
  std::optional<ex::StreamParser> parser_;  // of the running stream command
  ex::LineSplitter stderr_lines_;           // of the running stream command
  std::chrono::steady_clock::time_point started_;
  std::uint64_t refused_ = 0;
  clusterd::Process process_;
  clusterd::Timer timer_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(ExecStrategy);
