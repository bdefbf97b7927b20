// services::ProcessService with real child processes on a real Asio loop: exit status, signals,
// timeout → SIGTERM, grace → SIGKILL, capture bounds, environment, cancel, spawn failure, many
// children, grandchildren. Every wait is bounded by a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "services/process_service.hpp"

using namespace std::chrono_literals;
using clusterd::services::ProcessService;

namespace {

// No such process, or only its zombie left for someone else to reap (a grandchild's parent
// is gone: init reaps it, or not, in a container).
bool dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

// Gone entirely: killed AND reaped (by us).
bool gone(pid_t pid) {
  return kill(pid, 0) != 0 && errno == ESRCH;
}

class ProcessServiceTest : public ::testing::Test {
 protected:
  bool run_until(const std::function<bool()> &done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(10ms);
    }
    return done();
  }

  // Runs `request` to its result (or fails the test after `limit`).
  ProcessService::Result run(ProcessService::Request request,
                             std::chrono::milliseconds limit = 10s) {
    std::optional<ProcessService::Result> result;
    service_.spawn(std::move(request), [&](std::uint64_t, const auto &r) { result = r; });
    EXPECT_FALSE(result) << "never from inside spawn()";
    EXPECT_TRUE(run_until([&] { return result.has_value(); }, limit)) << "no result";
    return result.value_or(ProcessService::Result{});
  }

  static ProcessService::Request req(std::vector<std::string> argv) {
    ProcessService::Request r;
    r.argv = std::move(argv);
    return r;
  }

  static std::vector<std::string> python(const std::string &code) {
    return {"python3", "-c", code};
  }

  boost::asio::io_context io_;
  ProcessService service_{io_};
};

TEST_F(ProcessServiceTest, ExitStatusAndOutput) {
  auto r = run(req({"/bin/echo", "hello", "world"}));
  EXPECT_EQ(r.status, CLUSTERD_OK) << r.error;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.out, "hello world\n");
  EXPECT_TRUE(r.err.empty());
  EXPECT_TRUE(gone(r.pid)) << "reaped before the result";

  r = run(req(python("import sys; sys.stderr.write('oops'); sys.exit(3)")));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.err, "oops");
  EXPECT_EQ(r.describe(), "exited with code 3");
}

TEST_F(ProcessServiceTest, KilledBySignal) {
  auto r = run(req(python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")));
  EXPECT_EQ(r.status, CLUSTERD_OK);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.describe().find("signal 9"), std::string::npos) << r.describe();
}

TEST_F(ProcessServiceTest, TimeoutSendsSigterm) {
  auto request = req({"/bin/sleep", "60"});
  request.timeout = 200ms;
  const auto begin = std::chrono::steady_clock::now();
  auto r = run(request);
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1900ms) << "SIGTERM ends sleep long before the SIGKILL grace";
  EXPECT_TRUE(gone(r.pid));
}

TEST_F(ProcessServiceTest, GraceEndsInSigkillWhenSigtermIsIgnored) {
  // Says "ready" only once SIGTERM is ignored, so the test knows the timeout came after.
  auto request =
      req(python("import signal, sys, time\n"
                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                 "print('ready', flush=True)\n"
                 "time.sleep(60)\n"));
  request.timeout = 1000ms;
  request.grace = 300ms;
  const auto begin = std::chrono::steady_clock::now();
  auto r = run(request);
  const auto took = std::chrono::steady_clock::now() - begin;
  if (r.out != "ready\n") GTEST_SKIP() << "python3 did not start within the timeout";
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_GE(took, 1300ms) << "SIGKILL only after the grace";
  EXPECT_TRUE(gone(r.pid));
}

TEST_F(ProcessServiceTest, CaptureKeepsTheTailAndSaysItWasTruncated) {
  auto request =
      req(python("import sys\n"
                 "sys.stdout.write('a' * 100000 + 'END')\n"
                 "sys.stderr.write('short')\n"));
  request.max_capture = 1000;
  auto r = run(request);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.size(), 1000u);
  EXPECT_EQ(r.out.substr(997), "END");
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.err, "short");
  EXPECT_FALSE(r.err_truncated);
}

TEST_F(ProcessServiceTest, MergedStderrKeepsTheOrder) {
  auto request = req(
      python("import sys\n"
             "for i in range(3):\n"
             "  (sys.stdout if i % 2 == 0 else sys.stderr).write(str(i)); sys.stdout.flush()\n"));
  request.merge_stderr = true;
  auto r = run(request);
  EXPECT_EQ(r.out, "012");
  EXPECT_TRUE(r.err.empty());
}

TEST_F(ProcessServiceTest, StopOnOverflowTerminatesTheGroupAfterTheGrace) {
  // Ignores SIGTERM, then overflows: deterministic grace → SIGKILL without a timer race.
  auto request =
      req(python("import signal, sys, time\n"
                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                 "sys.stdout.write('x' * 200); sys.stdout.flush()\n"
                 "time.sleep(60)\n"));
  request.max_capture = 100;
  request.stop_on_overflow = true;
  request.grace = 300ms;
  const auto begin = std::chrono::steady_clock::now();
  auto r = run(request);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 300ms);
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.out.size(), 100u);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
}

TEST_F(ProcessServiceTest, EnvironmentIsExactlyWhatWasAskedForOrInherited) {
  auto request = req({"/usr/bin/env"});
  request.env = std::vector<std::string>{"A=1", "B=two words"};
  EXPECT_EQ(run(request).out, "A=1\nB=two words\n");

  setenv("CLUSTERD_PROCESS_TEST", "inherited", 1);
  auto r = run(req({"/usr/bin/env"}));
  unsetenv("CLUSTERD_PROCESS_TEST");
  EXPECT_NE(r.out.find("CLUSTERD_PROCESS_TEST=inherited\n"), std::string::npos);
}

TEST_F(ProcessServiceTest, WorkingDirectoryAndStdin) {
  auto request = req({"/bin/pwd"});
  request.cwd = "/tmp";
  EXPECT_EQ(run(request).out, "/tmp\n");
  EXPECT_EQ(run(req({"/usr/bin/wc", "-c"})).out, "0\n") << "stdin is /dev/null";
}

TEST_F(ProcessServiceTest, InheritsNoDescriptorButStdio) {
  const int leaky = dup(0);  // no CLOEXEC, like the sockets Asio opens
  ASSERT_GE(leaky, 3);
  auto r = run(req({"/bin/ls", "/proc/self/fd"}));
  close(leaky);
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");  // 3: ls's own directory handle
}

TEST_F(ProcessServiceTest, CancelKillsAndReapsWithoutCallingBack) {
  bool called = false;
  const auto id = service_.spawn(req({"/bin/sleep", "60"}),
                                 [&](std::uint64_t, const auto &) { called = true; });
  const pid_t pid = service_.pid_of(id);
  ASSERT_GT(pid, 0);
  service_.cancel(id);
  ASSERT_TRUE(run_until([&] { return service_.running() == 0; })) << "reaped after cancel";
  EXPECT_TRUE(gone(pid)) << "no zombie left: /proc/" << pid << " still exists";
  // A later child completes, so the loop had every chance to call the cancelled one back.
  auto r = run(req({"/bin/true"}));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(called);
  service_.cancel(id);  // finished: harmless
}

TEST_F(ProcessServiceTest, OutputIsStreamedWhileTheChildRuns) {
  // The child prints a line, then waits until the test saw it: only a streamed read can
  // answer before the child exits.
  const std::string flag = ::testing::TempDir() + "clusterd-streamed-" + std::to_string(getpid());
  std::remove(flag.c_str());
  auto request =
      req(python("import os, sys, time\n"
                 "sys.stdout.write('first line\\n'); sys.stdout.flush()\n"
                 "sys.stderr.write('oops\\n'); sys.stderr.flush()\n"
                 "for _ in range(1000):\n"
                 "    if os.path.exists(sys.argv[1]): break\n"
                 "    time.sleep(0.01)\n"
                 "sys.stdout.write('second')\n"));
  request.argv.push_back(flag);
  std::string out, err;
  bool finished = false;
  request.output = [&](std::uint64_t, bool is_stdout, std::string_view data) {
    EXPECT_FALSE(finished) << "output after done";
    (is_stdout ? out : err).append(data);
    if (out == "first line\n") std::ofstream(flag).put('x');
  };
  std::optional<ProcessService::Result> result;
  service_.spawn(std::move(request), [&](std::uint64_t, const auto &r) {
    finished = true;
    result = r;
  });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  std::remove(flag.c_str());
  EXPECT_EQ(result->exit_code, 0) << result->err;
  EXPECT_EQ(out, "first line\nsecond");
  EXPECT_EQ(err, "oops\n");
  EXPECT_EQ(result->out, out) << "streamed bytes are captured too";
}

TEST_F(ProcessServiceTest, CancelFromTheOutputCallbackStopsItAndTheResult) {
  int chunks = 0;
  bool called = false;
  std::uint64_t id = 0;
  auto request = req(python("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n"));
  request.output = [&](std::uint64_t, bool, std::string_view) {
    ++chunks;
    service_.cancel(id);
  };
  id = service_.spawn(std::move(request), [&](std::uint64_t, const auto &) { called = true; });
  const pid_t pid = service_.pid_of(id);
  ASSERT_TRUE(run_until([&] { return chunks > 0 && service_.running() == 0; }));
  EXPECT_EQ(chunks, 1) << "output after cancel";
  EXPECT_FALSE(called);
  EXPECT_TRUE(gone(pid));
}

TEST_F(ProcessServiceTest, MissingProgramIsAnErrorResult) {
  auto r = run(req({"/nonexistent/clusterd-program", "x"}));
  EXPECT_EQ(r.status, CLUSTERD_E_NOT_FOUND);
  EXPECT_NE(r.error.find("/nonexistent/clusterd-program"), std::string::npos) << r.error;
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.pid, 0);

  r = run(req({"no-such-program-clusterd-xyz"}));  // looked up in PATH
  EXPECT_EQ(r.status, CLUSTERD_E_NOT_FOUND);

  // Cancelled before its error result went out: never delivered.
  bool called = false;
  const auto id =
      service_.spawn(req({"/nonexistent/x"}), [&](std::uint64_t, const auto &) { called = true; });
  service_.cancel(id);
  run(req({"/bin/true"}));
  EXPECT_FALSE(called);
}

TEST_F(ProcessServiceTest, ManyConcurrentChildren) {
  constexpr int kChildren = 64;
  std::map<std::uint64_t, int> expected;
  std::map<std::uint64_t, ProcessService::Result> results;
  for (int i = 0; i < kChildren; ++i) {
    auto id = service_.spawn(req({"/bin/echo", std::to_string(i)}),
                             [&](std::uint64_t id, const auto &r) { results[id] = r; });
    expected[id] = i;
  }
  EXPECT_EQ(expected.size(), static_cast<std::size_t>(kChildren)) << "ids are never reused";
  ASSERT_TRUE(run_until([&] { return results.size() == kChildren; }, 30s)) << results.size();
  for (auto &[id, i] : expected) {
    EXPECT_EQ(results[id].out, std::to_string(i) + "\n");
    EXPECT_TRUE(gone(results[id].pid));
  }
  EXPECT_EQ(service_.running(), 0u);
}

TEST_F(ProcessServiceTest, TerminationReachesGrandchildren) {
  // The grandchild ignores SIGTERM; its parent (the group leader) dies of it. The leader's
  // reap sweeps the group with SIGKILL first.
  auto request = req({"/bin/sh", "-c", "(trap '' TERM; exec sleep 60) & echo $!; exec sleep 60"});
  request.timeout = 300ms;
  auto r = run(request);
  EXPECT_TRUE(r.timed_out);
  ASSERT_FALSE(r.out.empty());
  const pid_t grandchild = std::stoi(r.out);
  EXPECT_TRUE(run_until([&] { return dead(grandchild); }, 5s)) << "grandchild " << grandchild;

  // Both ignore SIGTERM: SIGKILL to the whole group after the grace.
  request = req({"/bin/sh", "-c", "trap '' TERM; sleep 60 & echo $!; wait"});
  request.timeout = 300ms;
  request.grace = 200ms;
  r = run(request);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  ASSERT_FALSE(r.out.empty());
  const pid_t second = std::stoi(r.out);
  EXPECT_TRUE(run_until([&] { return dead(second); }, 5s)) << "grandchild " << second;
}

TEST_F(ProcessServiceTest, TerminateAllReapsEverythingAtOnce) {
  bool called = false;
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i)
    pids.push_back(service_.pid_of(service_.spawn(
        req({"/bin/sleep", "60"}), [&](std::uint64_t, const auto &) { called = true; })));
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(service_.terminate_all(2s, 1s).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1500ms);
  for (pid_t pid : pids) EXPECT_TRUE(gone(pid)) << pid;
  EXPECT_EQ(service_.running(), 0u);
  run_until([] { return false; }, 50ms);
  EXPECT_FALSE(called);
}

}  // namespace
