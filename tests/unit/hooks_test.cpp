// The [hooks] runner (host/src/hooks/runner.cpp) with real /bin/sh scripts on a real Asio loop:
// argv and environment, exit status, timeout kill, queue overflow, stop; and the [hooks]
// config table. Every wait is bounded by a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "hooks/runner.hpp"

using namespace clusterd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clusterd-hooks-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    hooks_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string path(const std::string &name) const { return (dir_ / name).string(); }

  // An executable /bin/sh script in the test's directory; @D@ stands for that directory.
  std::string script(const std::string &name, std::string body) {
    for (auto at = body.find("@D@"); at != std::string::npos; at = body.find("@D@"))
      body.replace(at, 3, dir_.string());
    std::ofstream(path(name)) << "#!/bin/sh\n" << body;
    chmod(path(name).c_str(), 0700);
    return path(name);
  }

  std::string read(const std::string &name) const {
    std::ifstream in(path(name));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  hooks::Runner &make(config::HooksSpec spec) {
    hooks_ = std::make_unique<hooks::Runner>(io_);
    hooks_->configure(spec);
    return *hooks_;
  }

  // Runs the loop until `done` or the deadline; returns done().
  bool run_until(const std::function<bool()> &done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(10ms);
    }
    return done();
  }

  static hooks::Event event(bool up, const std::string &node, const std::string &reason = "") {
    return {up, node, "t1,t2", "cmd", reason};
  }

  static bool gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

  boost::asio::io_context io_;
  fs::path dir_;
  std::unique_ptr<hooks::Runner> hooks_;
};

TEST_F(HooksTest, PassesArgvAndEnvironmentWithoutAShell) {
  config::HooksSpec spec;
  spec.on_nodeup = {script("rec.sh",
                           "{ printf 'arg=%s\\n' \"$@\"; env | grep '^CLUSTERD_' | sort; } "
                           "> @D@/\"$CLUSTERD_EVENT\".out\n"),
                    "fixed arg", "$(touch " + path("pwned") + ")"};
  spec.on_nodedown = spec.on_nodeup;
  setenv("CLUSTERD_REASON", "inherited, must not leak", 1);
  auto &hooks = make(spec);
  hooks.fire(event(true, "a@127.0.0.1"));
  hooks.fire(event(false, "b@127.0.0.1", "connection closed"));
  ASSERT_TRUE(run_until([&] { return hooks.counters().ran == 2; })) << hooks.status().dump();
  unsetenv("CLUSTERD_REASON");
  EXPECT_EQ(read("nodeup.out"), "arg=fixed arg\narg=$(touch " + dir_.string() +
                                    "/pwned)\narg=a@127.0.0.1\narg=t1,t2\n"
                                    "CLUSTERD_EVENT=nodeup\nCLUSTERD_NODE=a@127.0.0.1\n"
                                    "CLUSTERD_TOPOLOGY=t1,t2\nCLUSTERD_TRANSPORT=cmd\n");
  EXPECT_NE(read("nodedown.out").find("arg=b@127.0.0.1\narg=t1,t2\n"), std::string::npos);
  EXPECT_NE(read("nodedown.out").find("CLUSTERD_REASON=connection closed\n"), std::string::npos);
  EXPECT_NE(read("nodedown.out").find("CLUSTERD_EVENT=nodedown\n"), std::string::npos);
  EXPECT_FALSE(fs::exists(path("pwned")));
  auto c = hooks.counters();
  EXPECT_EQ(c.failed + c.timed_out + c.dropped + c.running + c.queued, 0u);
}

TEST_F(HooksTest, InheritsNoDescriptorButStdio) {
  const int leaky = dup(0);  // no CLOEXEC, like the sockets Asio opens
  ASSERT_GE(leaky, 3);
  config::HooksSpec spec;
  spec.on_nodeup = {"/bin/sh", "-c", "exec ls /proc/self/fd > " + path("fds")};
  auto &hooks = make(spec);
  hooks.fire(event(true, "a@h"));
  ASSERT_TRUE(run_until([&] { return hooks.counters().ran == 1; })) << hooks.status().dump();
  close(leaky);
  EXPECT_EQ(read("fds"), "0\n1\n2\n3\n");  // 3: ls's own directory handle
}

TEST_F(HooksTest, CountsFailuresAndRefusesOptionLikeNodes) {
  config::HooksSpec spec;
  spec.on_nodeup = {script("fail.sh", "echo oops >&2; exit 3\n")};
  spec.on_nodedown = {path("does-not-exist")};
  auto &hooks = make(spec);
  hooks.fire(event(true, "a@h"));
  hooks.fire(event(false, "a@h"));         // cannot run: failed at once
  hooks.fire(event(true, "--help"));       // refused: failed
  hooks.fire(event(true, "bad\nname@h"));  // refused: failed
  ASSERT_TRUE(run_until([&] { return hooks.counters().failed == 4; })) << hooks.status().dump();
  EXPECT_EQ(hooks.counters().ran, 0u);
  EXPECT_EQ(hooks.counters().running, 0u);
}

TEST_F(HooksTest, KillsAHookAtItsTimeoutAndCountsIt) {
  config::HooksSpec spec;
  spec.on_nodeup = {script("hang.sh", "echo $$ > @D@/pid\nexec sleep 60\n")};
  spec.timeout = 200ms;
  auto &hooks = make(spec);
  const auto begin = std::chrono::steady_clock::now();
  hooks.fire(event(true, "a@h"));
  ASSERT_TRUE(run_until([&] { return hooks.counters().timed_out == 1; })) << hooks.status().dump();
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2000ms) << "SIGTERM should end sleep long before the SIGKILL grace";
  pid_t pid = std::stoi(read("pid"));
  EXPECT_TRUE(gone(pid)) << "the hook was not reaped";
  EXPECT_EQ(hooks.counters().running, 0u);
}

TEST_F(HooksTest, SigkillsAHookThatIgnoresSigterm) {
  config::HooksSpec spec;
  // Ignores SIGTERM, and says so only once the trap is set (no race with the timeout).
  spec.on_nodeup = {script("stubborn.sh",
                           "trap '' TERM\necho $$ > @D@/pid.tmp; mv @D@/pid.tmp @D@/pid\n"
                           "i=0; while [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done\n")};
  spec.timeout = 300ms;
  auto &hooks = make(spec);
  hooks.fire(event(true, "a@h"));
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until([&] { return hooks.counters().timed_out == 1; }, 15s))
      << hooks.status().dump();
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(took, 2000ms) << "SIGKILL comes 2 s after SIGTERM";
  ASSERT_TRUE(fs::exists(path("pid")));
  EXPECT_TRUE(gone(std::stoi(read("pid"))));
}

TEST_F(HooksTest, FullQueueDropsAndCountsThenDrains) {
  config::HooksSpec spec;
  // Each run records its node, then waits (bounded) for the test to release it.
  spec.on_nodeup = {script("slow.sh",
                           "echo \"$1\" >> @D@/ran\n"
                           "i=0; while [ ! -e @D@/release ] && [ $i -lt 500 ]; do "
                           "i=$((i+1)); sleep 0.02; done\n")};
  spec.max_running = 1;
  spec.queue_size = 2;
  auto &hooks = make(spec);
  for (int i = 0; i < 10; ++i) hooks.fire(event(true, "n" + std::to_string(i) + "@h"));
  auto c = hooks.counters();
  EXPECT_EQ(c.running, 1u);
  EXPECT_EQ(c.queued, 2u);
  EXPECT_EQ(c.dropped, 7u);
  std::ofstream(path("release")) << "";
  ASSERT_TRUE(run_until([&] { return hooks.counters().ran == 3; })) << hooks.status().dump();
  EXPECT_EQ(read("ran"), "n0@h\nn1@h\nn2@h\n");  // in order; the rest was dropped
  c = hooks.counters();
  EXPECT_EQ(c.queued + c.running + c.failed + c.timed_out, 0u);
}

TEST_F(HooksTest, StopTerminatesRunningHooksAndDropsQueuedOnes) {
  config::HooksSpec spec;
  spec.on_nodeup = {script("hang.sh", "echo $$ >> @D@/pids\nexec sleep 60\n")};
  spec.max_running = 2;
  spec.queue_size = 5;
  auto &hooks = make(spec);
  for (int i = 0; i < 5; ++i) hooks.fire(event(true, "n" + std::to_string(i) + "@h"));
  ASSERT_TRUE(run_until([&] {
    std::ifstream in(path("pids"));
    return std::count(std::istreambuf_iterator<char>(in), {}, '\n') == 2;
  }));
  const auto begin = std::chrono::steady_clock::now();
  hooks.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1500ms);
  auto c = hooks.counters();
  EXPECT_EQ(c.running + c.queued, 0u);
  EXPECT_EQ(c.dropped, 3u);
  std::istringstream pids(read("pids"));
  for (pid_t pid; pids >> pid;) EXPECT_TRUE(gone(pid)) << "pid " << pid << " left behind";
  hooks.fire(event(true, "late@h"));  // after stop: nothing runs
  EXPECT_EQ(hooks.counters().running, 0u);
}

TEST_F(HooksTest, NewSettingsApplyToNewEvents) {
  config::HooksSpec spec;
  spec.on_nodeup = {script("one.sh", "echo one >> @D@/log\n")};
  spec.max_running = 1;  // b waits for a: a deterministic order in the log
  auto &hooks = make(spec);
  hooks.fire(event(true, "a@h"));
  spec.on_nodeup = {script("two.sh", "echo two >> @D@/log\n")};
  hooks.configure(spec);
  hooks.fire(event(true, "b@h"));
  spec.on_nodeup.clear();
  hooks.configure(spec);
  EXPECT_FALSE(hooks.wants(true));
  hooks.fire(event(true, "c@h"));  // no command any more: nothing
  ASSERT_TRUE(run_until([&] { return hooks.counters().ran == 2; })) << hooks.status().dump();
  EXPECT_EQ(read("log"), "one\ntwo\n");
}

// ---- the [hooks] table -----------------------------------------------------------------

std::string problems_of(const std::string &text) {
  auto result = config::parse(text, "test.toml");
  std::string out;
  for (const auto &p : result.problems) out += p.str() + "\n";
  return out;
}

TEST(HooksConfig, ParsesEveryKey) {
  auto result = config::parse(R"([hooks]
on_nodeup = ["/bin/sh", "-c", "true"]
on_nodedown = ["true"]
timeout = "3s"
max_running = 2
queue_size = 0
)",
                              "test.toml");
  ASSERT_TRUE(result.config) << result.problems[0].str();
  const auto &h = result.config->hooks;
  EXPECT_EQ(h.on_nodeup, (std::vector<std::string>{"/bin/sh", "-c", "true"}));
  EXPECT_EQ(h.on_nodedown, (std::vector<std::string>{"true"}));
  EXPECT_EQ(h.timeout, 3s);
  EXPECT_EQ(h.max_running, 2u);
  EXPECT_EQ(h.queue_size, 0u);
}

TEST(HooksConfig, DefaultsWithoutTheTable) {
  auto result = config::parse("", "test.toml");
  ASSERT_TRUE(result.config);
  EXPECT_TRUE(result.config->hooks.on_nodeup.empty());
  EXPECT_EQ(result.config->hooks.timeout, 10s);
  EXPECT_EQ(result.config->hooks.max_running, 4u);
  EXPECT_EQ(result.config->hooks.queue_size, 256u);
}

TEST(HooksConfig, ReportsEachProblemWithItsPosition) {
  EXPECT_EQ(problems_of("[hooks]\non_nodeup = \"/bin/true\"\n"),
            "test.toml:2:13: hooks.on_nodeup: expected an array of strings, found string "
            "\"/bin/true\"; write [\"/bin/true\"]\n");
  // An argv: not a program named after the whole command line.
  EXPECT_EQ(problems_of("[hooks]\non_nodeup = \"logger -t up\"\n"),
            "test.toml:2:13: hooks.on_nodeup: expected an array of strings, found string "
            "\"logger -t up\"; write [\"logger\", \"-t\", \"up\"]\n");
  EXPECT_EQ(problems_of("[hooks]\non_nodeup = []\n"),
            "test.toml:2:13: hooks.on_nodeup: must have at least 1 element(s), not 0\n");
  EXPECT_EQ(problems_of("[hooks]\non_nodedown = [\"bin/x\"]\n"),
            "test.toml:2:15: hooks.on_nodedown: 'bin/x': use an absolute path or a program "
            "name in PATH\n");
  EXPECT_NE(problems_of("[hooks]\non_nodeup = [\"/nonexistent/hook\"]\n")
                .find("test.toml:2:13: hooks.on_nodeup: '/nonexistent/hook' is not executable"),
            std::string::npos);
  EXPECT_EQ(problems_of("[hooks]\non_nodeup = [\"no-such-program-xyz\"]\n"),
            "test.toml:2:13: hooks.on_nodeup: program 'no-such-program-xyz' not found in PATH\n");
  EXPECT_NE(problems_of("[hooks]\ntimeout = \"0s\"\n").find("test.toml:2:11: hooks.timeout:"),
            std::string::npos);
  EXPECT_NE(problems_of("[hooks]\ntimeout = \"infinity\"\n").find("hooks.timeout:"),
            std::string::npos);
  EXPECT_EQ(problems_of("[hooks]\nmax_running = 0\n"),
            "test.toml:2:15: hooks.max_running: must be from 1 to 1024, not 0\n");
  EXPECT_EQ(problems_of("[hooks]\nqueue_size = -1\n"),
            "test.toml:2:14: hooks.queue_size: must be from 0 to 1000000, not -1\n");
  EXPECT_EQ(problems_of("[hooks]\non_nodeupp = [\"true\"]\n"),
            "test.toml:2:14: hooks.on_nodeupp: unknown key (did you mean 'on_nodeup'?)\n");
  EXPECT_EQ(problems_of("hooks = 1\n"),
            "test.toml:1:9: hooks: expected a table, found integer 1\n");
}

}  // namespace
