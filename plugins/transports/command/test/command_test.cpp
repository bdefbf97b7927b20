// Tests of the "command" transport: loads the built clusterd-command.so with dlopen and drives it
// with the shared loop host (tests/support/plugin_test_host.hpp), a real poll() event loop, plus
// the host's real process supervisor (services::ProcessService) on an Asio loop run each turn.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <clusterd/clusterd.h>

#include "plugin_test_host.hpp"
#include "services/process_service.hpp"

namespace {

using namespace clusterd_test;  // the loop host, Config, Instance, descriptor()

std::vector<std::string> sh(const std::string &script) {
  return {"/bin/sh", "-c", script, "sh"};
}

// "clusterd.process/1" for the loop host: the daemon's ProcessService behind the same ABI
// conversions the daemon's host table uses; its Asio loop runs after every loop-host turn.
struct Processes {
  static Processes *current;
  boost::asio::io_context io;
  clusterd::services::ProcessService service{io};
  clusterd_process_service_t vtable{sizeof vtable, 0, spawn, cancel};
  Processes() { current = this; }
  ~Processes() { current = nullptr; }
  void run() {
    io.restart();
    io.poll();
  }
  static clusterd_status_t CLUSTERD_ABI spawn(const clusterd_host_t *,
                                              const clusterd_process_request_t *request,
                                              clusterd_process_done_fn done, void *user_data,
                                              clusterd_id_t *out_id) {
    clusterd::services::ProcessService::Request req;
    clusterd_process_output_fn output = nullptr;  // the command transport never streams
    if (auto st = clusterd::services::ProcessService::from_abi(request, req, output);
        st != CLUSTERD_OK)
      return st;
    *out_id = current->service.spawn(
        std::move(req), [done, user_data](std::uint64_t id, const auto &result) {
          const auto c = clusterd::services::ProcessService::to_abi(result);
          done(user_data, id, &c);
        });
    return CLUSTERD_OK;
  }
  static void CLUSTERD_ABI cancel(const clusterd_host_t *, clusterd_id_t id) {
    current->service.cancel(id);
  }
};
Processes *Processes::current = nullptr;

class CommandTest : public ::testing::Test {
 protected:
  // What the transport needs: the process service and the transport sink.
  CommandTest() {
    host_.offer_only({CLUSTERD_SERVICE_TRANSPORT_SINK});
    host_.extra_services[CLUSTERD_SERVICE_PROCESS] = &processes_.vtable;
    host_.each_turn = [this] { processes_.run(); };
  }
  void SetUp() override {
    ASSERT_NE(descriptor(), nullptr);
    char tmpl[] = "/tmp/clusterd-command-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    instance_.reset();                             // stopped (if started) and destroyed
    for (pid_t pid : strays_) kill(pid, SIGKILL);  // grandchildren the tests started on purpose
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // A config with the plugin's declared defaults (the host fills them in).
  static Config defaults() { return Config(defaults_of(descriptor())); }

  // Creates, inits and starts an instance with `cfg`; returns init's status.
  clusterd_status_t start(Config &cfg) {
    instance_ = std::make_unique<Instance>(descriptor(), host_);
    plugin_ = instance_->raw();
    const clusterd_status_t st = instance_->init(cfg);
    if (st != CLUSTERD_OK) return st;
    EXPECT_EQ(instance_->start(), CLUSTERD_OK);
    t_ = instance_->transport();
    EXPECT_NE(t_, nullptr);
    return st;
  }
  std::string last_error() const { return instance_->last_error(); }
  std::vector<Completion> of(clusterd_id_t op) const {
    std::vector<Completion> out;
    for (const auto &c : host_.completions)
      if (c.op == op) out.push_back(c);
    return out;
  }
  bool wait_for(clusterd_id_t op, milliseconds limit = milliseconds(10000)) {
    return host_.run_until([&] { return !of(op).empty(); }, limit);
  }
  std::string pidfile(const std::string &name) const { return dir_ + "/" + name; }
  std::optional<pid_t> read_pid(const std::string &name) const {
    std::ifstream in(pidfile(name));
    long pid = 0;
    if (!(in >> pid) || pid <= 0) return std::nullopt;
    return static_cast<pid_t>(pid);
  }
  // True once `pid` no longer exists at all (killed AND reaped).
  static bool gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

  Processes processes_;  // destroyed last: reaps whatever is left
  LoopHost host_;
  std::unique_ptr<Instance> instance_;  // stopped and destroyed before host_
  clusterd_plugin_t *plugin_ = nullptr;
  const clusterd_transport_t *t_ = nullptr;
  std::string dir_;
  std::vector<pid_t> strays_;
};

TEST_F(CommandTest, Descriptor) {
  const clusterd_plugin_descriptor_t *d = descriptor();
  EXPECT_STREQ(d->name, "command");
  EXPECT_EQ(d->kind, static_cast<uint32_t>(CLUSTERD_KIND_TRANSPORT));
  std::map<std::string, const clusterd_option_t *> opts;
  for (uint32_t i = 0; i < d->option_count; ++i) opts[d->options[i].key] = &d->options[i];
  ASSERT_EQ(opts.size(), 5u);
  EXPECT_EQ(opts["connect"]->flags & CLUSTERD_OPT_REQUIRED, CLUSTERD_OPT_REQUIRED);
  EXPECT_EQ(opts["connect"]->type, static_cast<uint32_t>(CLUSTERD_OPT_STRING_LIST));
  EXPECT_EQ(opts["disconnect"]->flags & CLUSTERD_OPT_REQUIRED, 0u);
  EXPECT_EQ(opts["list_nodes"]->flags & CLUSTERD_OPT_REQUIRED, 0u);
  EXPECT_EQ(opts["timeout"]->type, static_cast<uint32_t>(CLUSTERD_OPT_DURATION));
  EXPECT_STREQ(opts["timeout"]->default_value, "\"10s\"");
  EXPECT_EQ(opts["local_node"]->type, static_cast<uint32_t>(CLUSTERD_OPT_STRING));
}

TEST_F(CommandTest, ConnectPassesTheNodeAsLastArgument) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("test \"$1\" = a@127.0.0.1 && test $# -eq 1");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "a@127.0.0.1"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  ASSERT_EQ(of(1).size(), 1u);
  EXPECT_EQ(of(1)[0].status, CLUSTERD_OK) << of(1)[0].message;
  EXPECT_EQ(processes_.service.running(), 0u) << "the child is reaped before the completion";
}

TEST_F(CommandTest, NonZeroExitIsUnreachableWithCodeAndLastStderrLine) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("echo first >&2; echo 'no route to b' >&2; echo out; exit 3");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 5, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(5));
  const Completion c = of(5).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_UNREACHABLE);
  EXPECT_NE(c.message.find("exited with code 3"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("no route to b"), std::string::npos) << c.message;
  EXPECT_EQ(c.message.find("first"), std::string::npos) << c.message;
}

TEST_F(CommandTest, StderrLineIsBounded) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  const Completion c = of(1).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_UNREACHABLE);
  EXPECT_LT(c.message.size(), 1000u);
}

TEST_F(CommandTest, KilledBySignalIsIo) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("kill -TERM $$");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_E_IO);
  EXPECT_NE(of(1).at(0).message.find("signal 15"), std::string::npos) << of(1).at(0).message;
}

TEST_F(CommandTest, TimeoutKillsAndReaps) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("echo $$ > '" + pidfile("pid") + "'; exec sleep 60");
  cfg.values["timeout"] = Duration{1000};
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  const auto t0 = Clock::now();
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1, milliseconds(20000)));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(20));
  const Completion c = of(1).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_TIMEOUT);
  EXPECT_NE(c.message.find("timed out after 1s"), std::string::npos) << c.message;
  if (auto pid = read_pid("pid")) {  // absent only if killed before the shell wrote it
    EXPECT_TRUE(host_.run_until([&] { return gone(*pid); })) << "the killed child is reaped";
  }
  EXPECT_EQ(of(1).size(), 1u);
}

TEST_F(CommandTest, ListNodesParsesLines) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("exit 0");
  cfg.values["list_nodes"] = sh("printf ' a@h \\n\\n\\tb@h\\r\\n   \\nc@h'");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_NE(t_->list_nodes, nullptr);
  ASSERT_EQ(t_->list_nodes(plugin_, 9), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(9));
  const Completion c = of(9).at(0);
  EXPECT_EQ(c.status, CLUSTERD_OK) << c.message;
  EXPECT_EQ(c.nodes, (std::vector<std::string>{"a@h", "b@h", "c@h"}));
}

TEST_F(CommandTest, ListNodesOutputIsBounded) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("exit 0");
  cfg.values["list_nodes"] = {std::vector<std::string>{"yes", "a@h"}};  // endless output
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->list_nodes(plugin_, 2), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(2));
  const Completion c = of(2).at(0);
  EXPECT_EQ(c.status, CLUSTERD_E_IO);
  EXPECT_NE(c.message.find("1 MiB"), std::string::npos) << c.message;
  EXPECT_TRUE(c.nodes.empty());
}

TEST_F(CommandTest, UnconfiguredOperationsAreUnsupported) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_NE(t_->list_nodes, nullptr);
  EXPECT_EQ(t_->list_nodes(plugin_, 1), CLUSTERD_E_UNSUPPORTED);
  EXPECT_EQ(t_->disconnect(plugin_, 2, "a@h"), CLUSTERD_E_UNSUPPORTED);
  EXPECT_NE(last_error().find("disconnect"), std::string::npos);
  EXPECT_TRUE(host_.completions.empty()) << "a failed call is not completed";
  EXPECT_EQ(t_->local_node(plugin_), nullptr);
}

TEST_F(CommandTest, DisconnectAndLocalNode) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("exit 1");
  cfg.values["disconnect"] = sh("test \"$1\" = gone@h");
  cfg.values["local_node"] = std::string("me@127.0.0.1");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  EXPECT_STREQ(t_->local_node(plugin_), "me@127.0.0.1");
  ASSERT_EQ(t_->disconnect(plugin_, 3, "gone@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(3));
  EXPECT_EQ(of(3).at(0).status, CLUSTERD_OK);
}

TEST_F(CommandTest, CancelKillsWithoutCompleting) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("echo $$ > '" + pidfile("pid") + "'; exec sleep 60");
  cfg.values["list_nodes"] = sh("exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 4, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(host_.run_until([&] { return read_pid("pid").has_value(); }));
  const pid_t pid = *read_pid("pid");
  t_->cancel(plugin_, 4);
  EXPECT_TRUE(host_.run_until([&] { return gone(pid); })) << "cancel kills and reaps the child";
  // Something else completes later, so the loop had every chance to report op 4.
  ASSERT_EQ(t_->list_nodes(plugin_, 5), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(5));
  EXPECT_TRUE(of(4).empty());
}

TEST_F(CommandTest, StopCompletesKillsAndReapsEverything) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("echo $$ > '" + pidfile("pid-") + "'\"$1\"; exec sleep 60");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "a"), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 2, "b"), CLUSTERD_OK);
  ASSERT_TRUE(host_.run_until([&] { return read_pid("pid-a") && read_pid("pid-b"); }));
  instance_->stop();
  ASSERT_EQ(of(1).size(), 1u);
  ASSERT_EQ(of(2).size(), 1u);
  EXPECT_EQ(of(1)[0].status, CLUSTERD_E_CANCELLED);
  // stop() cancelled both; the host terminates and reaps them on its loop.
  for (const char *n : {"pid-a", "pid-b"})
    EXPECT_TRUE(host_.run_until([&] { return gone(*read_pid(n)); })) << n << " not reaped";
  EXPECT_EQ(processes_.service.running(), 0u);
}

TEST_F(CommandTest, ParallelOperations) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("case \"$1\" in *3*) exit 2;; esac; exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  for (clusterd_id_t op = 1; op <= 6; ++op)
    ASSERT_EQ(t_->connect(plugin_, op, ("n" + std::to_string(op) + "@h").c_str()), CLUSTERD_OK);
  ASSERT_TRUE(host_.run_until([&] { return host_.completions.size() >= 6; }));
  for (clusterd_id_t op = 1; op <= 6; ++op) {
    ASSERT_EQ(of(op).size(), 1u) << "op " << op;
    EXPECT_EQ(of(op)[0].status, op == 3 ? CLUSTERD_E_UNREACHABLE : CLUSTERD_OK) << "op " << op;
  }
}

TEST_F(CommandTest, ExitDoesNotWaitForGrandchildrenHoldingThePipes) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("sleep 60 & echo $! > '" + pidfile("grandchild") + "'; exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1, milliseconds(20000)));
  if (auto pid = read_pid("grandchild")) strays_.push_back(*pid);
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_OK);
}

TEST_F(CommandTest, StdinIsDevNull) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("n=$(cat | wc -c); test \"$n\" -eq 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_OK) << of(1).at(0).message;
}

TEST_F(CommandTest, MissingProgramCompletesWithIo) {
  Config cfg = defaults();
  cfg.values["connect"] = std::vector<std::string>{"/nonexistent/clusterd-connect"};
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  EXPECT_TRUE(of(1).empty()) << "never completed from inside the call";
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1)[0].status, CLUSTERD_E_IO);
  EXPECT_NE(of(1)[0].message.find("/nonexistent/clusterd-connect"), std::string::npos);
}

TEST_F(CommandTest, NodeNamesThatLookLikeOptionsAreRefused) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("exit 0");
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  EXPECT_EQ(t_->connect(plugin_, 1, "-rf"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(t_->connect(plugin_, 2, "a\nb"), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(t_->connect(plugin_, 3, ""), CLUSTERD_E_INVALID_ARG);
  EXPECT_TRUE(host_.completions.empty());
}

TEST_F(CommandTest, ChecksItsConfigurationBeforeInit) {
  // Declared: the host refuses an empty argv or a zero timeout at `clusterd check`.
  for (const char *key : {"connect", "disconnect", "list_nodes", "timeout"}) {
    const auto o = clusterd_test::option_of(descriptor(), key);
    EXPECT_TRUE(o.flags & CLUSTERD_OPT_MIN) << key;
    EXPECT_EQ(o.min, 1) << key;
  }
  // validate(): an argv whose program is "".
  Config cfg = defaults();
  cfg.values["connect"] = std::vector<std::string>{"", "x"};
  auto problems = clusterd_test::validate(descriptor(), cfg);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].rfind("connect: ", 0), 0u) << problems[0];
  cfg.values["connect"] = sh("exit 0");
  EXPECT_TRUE(clusterd_test::validate(descriptor(), cfg).empty());
}

TEST_F(CommandTest, InfiniteTimeoutArmsNoTimer) {
  Config cfg = defaults();
  cfg.values["connect"] = sh("exit 0");
  cfg.values["timeout"] = Duration{-1};
  ASSERT_EQ(start(cfg), CLUSTERD_OK);
  ASSERT_EQ(t_->connect(plugin_, 1, "b@h"), CLUSTERD_OK);
  ASSERT_TRUE(wait_for(1));
  EXPECT_EQ(of(1).at(0).status, CLUSTERD_OK);
}

}  // namespace
