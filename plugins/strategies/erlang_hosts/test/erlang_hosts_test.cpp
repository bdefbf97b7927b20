// Tests of the "erlang_hosts" strategy: loads the built clusterd-erlang_hosts.so with dlopen and
// drives it with a small real event loop against fake EPMDs on 127.0.0.1 and ::1, with
// .hosts.erlang files in a temporary directory.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <clusterd/clusterd.h>

#include "epmd_test_support.hpp"

namespace {

using namespace clusterd_test;  // the loop host, Config, Instance, descriptor()
using epmd_test::FakeEpmd;
using epmd_test::Mode;
using std::chrono::milliseconds;

// A temporary directory, removed (with the files the test wrote) at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/erlang_hosts_test_XXXXXX";
    const char *d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    path_ = d != nullptr ? d : "/tmp";
  }
  ~TempDir() {
    for (const auto &f : files_) std::remove(f.c_str());
    ::rmdir(path_.c_str());
  }
  const std::string &path() const { return path_; }
  // Writes `name` atomically (a new inode each time, as editors and config tools do).
  std::string write(const std::string &name, const std::string &text) {
    const std::string file = path_ + "/" + name, tmp = file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
    }
    EXPECT_EQ(std::rename(tmp.c_str(), file.c_str()), 0);
    files_.push_back(file);
    return file;
  }
  void remove(const std::string &name) { std::remove((path_ + "/" + name).c_str()); }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

class ErlangHostsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(descriptor(), nullptr); }
  void TearDown() override {
    instance_.reset();
    EXPECT_EQ(loop_.registrations(), 0u) << "stop() left registrations behind";
  }
  clusterd_status_t init(uint16_t port, std::map<std::string, Value> extra = {}) {
    auto values = defaults_of(descriptor());
    values["epmd_port"] = int64_t{port};
    values["epmd_timeout"] = Duration{2000};
    for (auto &[k, v] : extra) values[k] = v;
    config_ = std::make_unique<Config>(values);
    instance_ = std::make_unique<Instance>(descriptor(), loop_);
    return instance_->init(*config_);
  }
  void start(uint16_t port, const std::string &file, std::map<std::string, Value> extra = {}) {
    extra["hosts_file"] = file;
    ASSERT_EQ(init(port, std::move(extra)), CLUSTERD_OK) << instance_->last_error();
    ASSERT_EQ(instance_->start(), CLUSTERD_OK) << instance_->last_error();
  }
  // Runs until the strategy reported or failed `n` times in all.
  bool rounds(std::size_t n) {
    return loop_.run_until([&] { return loop_.events.size() >= n; });
  }
  // Asks for a round now and runs until it ended.
  void refresh() {
    const std::size_t n = loop_.events.size();
    ASSERT_EQ(instance_->refresh(), CLUSTERD_OK);
    ASSERT_TRUE(rounds(n + 1));
  }
  std::string status(const std::string &key) const {
    auto it = loop_.status.find(key);
    return it != loop_.status.end() ? it->second : "";
  }
  std::string last_failure() const { return loop_.failures.empty() ? "" : loop_.failures.back(); }

  LoopHost loop_;
  TempDir dir_;
  std::unique_ptr<Config> config_;
  std::unique_ptr<Instance> instance_;
};

TEST_F(ErlangHostsTest, Descriptor) {
  const clusterd_plugin_descriptor_t *d = descriptor();
  EXPECT_STREQ(d->name, "erlang_hosts");
  EXPECT_EQ(d->flags & CLUSTERD_PLUGIN_DISCONNECTS_REMOVED, 0u) << "ErlangHosts never disconnects";
  ASSERT_NE(d->aliases, nullptr);
  EXPECT_STREQ(d->aliases[0], "Cluster.Strategy.ErlangHosts");
  EXPECT_STREQ(d->aliases[1], "Elixir.Cluster.Strategy.ErlangHosts");
  ASSERT_EQ(d->option_count, 4u);
  EXPECT_STREQ(d->options[0].key, "timeout");
  EXPECT_STREQ(d->options[0].default_value, "\"infinity\"");
  EXPECT_STREQ(d->options[1].key, "hosts_file");
  EXPECT_EQ(d->options[1].default_value, nullptr);
  EXPECT_STREQ(d->options[2].key, "epmd_port");
  EXPECT_STREQ(d->options[3].key, "epmd_timeout");
}

TEST_F(ErlangHostsTest, ReportsEveryNameOnEveryHost) {
  if (!epmd_test::have_ipv6_loopback()) GTEST_SKIP() << "no ::1 on this machine";
  const uint16_t port = epmd_test::port_free_on_both();
  ASSERT_NE(port, 0);
  FakeEpmd v4(loop_, Mode::answer, "127.0.0.1", port);
  v4.names = {{"a", 4001}, {"b", 4002}};
  FakeEpmd v6(loop_, Mode::answer, "::1", port);
  v6.names = {{"c", 4003}};
  const std::string file = dir_.write("hosts", "% two hosts\n'127.0.0.1'.\n'::1'.\n");
  start(v4.port(), file);
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.size(), 1u) << last_failure();
  EXPECT_EQ(loop_.reports[0], (std::vector<std::string>{"a@127.0.0.1", "b@127.0.0.1", "c@::1"}));
  EXPECT_EQ(status("hosts file"), file + " (2 hosts)");
  EXPECT_EQ(status("epmd unreachable"), "");

  // ::1's EPMD fails: its names stay (never shrink on an error), and the status says why.
  v6.set_mode(Mode::close_at_once);
  refresh();
  ASSERT_EQ(loop_.reports.size(), 2u) << last_failure();
  EXPECT_EQ(loop_.reports[1], loop_.reports[0]);
  EXPECT_TRUE(contains(status("epmd unreachable"), "[::1]:" + std::to_string(v4.port()) + ": "))
      << status("epmd unreachable");
  // It answers again, without c: now c goes.
  v6.set_mode(Mode::answer);
  v6.names.clear();
  refresh();
  EXPECT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@127.0.0.1", "b@127.0.0.1"}));
  EXPECT_EQ(status("epmd unreachable"), "");
}

TEST_F(ErlangHostsTest, AHostThatNeverAnsweredIsLeftOut) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  loop_.dns_answers[{"node.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
  const std::string file = dir_.write("hosts", "'node.test'.\n'nosuch.test'.\n'127.0.0.1'.\n");
  start(epmd.port(), file);
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.size(), 1u) << last_failure();
  // Host strings exactly as in the file.
  EXPECT_EQ(loop_.reports[0], (std::vector<std::string>{"a@node.test", "a@127.0.0.1"}));
  EXPECT_EQ(status("epmd unreachable"), "nosuch.test:" + std::to_string(epmd.port()) +
                                            ": cannot resolve nosuch.test: no such host");
}

TEST_F(ErlangHostsTest, APartialRoundAddsAndNeverRemoves) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  loop_.dns_answers[{"node.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
  start(epmd.port(), dir_.write("hosts", "'node.test'.\n'127.0.0.1'.\n"));
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@node.test", "a@127.0.0.1"}));
  // node.test fails now; 127.0.0.1 answers with a new node: added, and node.test's stays.
  loop_.dns_answers.erase({"node.test", CLUSTERD_DNS_A});
  epmd.names.push_back({"b", 4002});
  refresh();
  ASSERT_EQ(loop_.events.back(), "set_nodes") << last_failure();
  EXPECT_EQ(loop_.reports.back(),
            (std::vector<std::string>{"a@node.test", "a@127.0.0.1", "b@127.0.0.1"}));
  EXPECT_TRUE(contains(status("epmd unreachable"), "cannot resolve node.test"))
      << status("epmd unreachable");
  // Removals come only from hosts that answer: a left 127.0.0.1, node.test's a@ stays.
  epmd.names = {{"b", 4002}};
  refresh();
  EXPECT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@node.test", "b@127.0.0.1"}));
}

TEST_F(ErlangHostsTest, EveryEpmdFailingFailsTheRound) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  const std::string file = dir_.write("hosts", "'127.0.0.1'.\n");
  start(epmd.port(), file);
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.size(), 1u);
  epmd.set_mode(Mode::raw);
  epmd.raw_reply = "garbage";
  refresh();
  EXPECT_EQ(loop_.events.back(), "discovery_failed");
  EXPECT_TRUE(contains(last_failure(), "no EPMD answered: 127.0.0.1:" +
                                           std::to_string(epmd.port()) + ": malformed NAMES reply"))
      << last_failure();
  EXPECT_EQ(loop_.reports.size(), 1u) << "never an empty set on an error";
}

TEST_F(ErlangHostsTest, RefusedAtStart) {
  FakeEpmd epmd(loop_, Mode::refuse);
  start(epmd.port(), dir_.write("hosts", "'127.0.0.1'.\n"));
  ASSERT_TRUE(rounds(1));
  EXPECT_EQ(last_failure(),
            "no EPMD answered: 127.0.0.1:" + std::to_string(epmd.port()) + ": connection refused");
  EXPECT_TRUE(loop_.reports.empty());
}

TEST_F(ErlangHostsTest, ChangedFileIsReread) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  loop_.dns_answers[{"node.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
  const std::string file = dir_.write("hosts", "'127.0.0.1'.\n'node.test'.\n");
  start(epmd.port(), file);
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@127.0.0.1", "a@node.test"}));
  dir_.write("hosts", "'127.0.0.1'.\n");
  refresh();
  EXPECT_EQ(loop_.reports.back(), (std::vector<std::string>{"a@127.0.0.1"}))
      << "a host removed from the file takes its names with it";
  EXPECT_EQ(status("hosts file"), file + " (1 hosts)");
  // An unchanged file is not re-read (the log says "read" once per read).
  const std::size_t reads = loop_.log_count("host(s) from");
  refresh();
  EXPECT_EQ(loop_.log_count("host(s) from"), reads);
}

TEST_F(ErlangHostsTest, SyntaxErrorAtStartFailsInit) {
  const std::string file = dir_.write("hosts", "'a'.\n'b' 'c'.\n");
  EXPECT_EQ(init(4369, {{"hosts_file", file}}), CLUSTERD_E_CONFIG);
  EXPECT_EQ(instance_->last_error().rfind(file + ":2:5: expected '.' after 'b'", 0), 0u)
      << instance_->last_error();
  EXPECT_TRUE(contains(instance_->last_error(), "test.toml:7:1")) << instance_->last_error();
}

TEST_F(ErlangHostsTest, SyntaxErrorOnRereadKeepsTheLastSet) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  const std::string file = dir_.write("hosts", "'127.0.0.1'.\n");
  start(epmd.port(), file);
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.size(), 1u);
  dir_.write("hosts", "'127.0.0.1'.\n10.0.0.1.\n");
  refresh();
  EXPECT_EQ(loop_.events.back(), "discovery_failed");
  EXPECT_EQ(last_failure().rfind(file + ":2:1: a number is not a host name", 0), 0u)
      << last_failure();
  refresh();  // still broken: the same error, without re-reading
  EXPECT_EQ(loop_.events.back(), "discovery_failed");
  EXPECT_EQ(loop_.reports.size(), 1u);
  dir_.write("hosts", "'127.0.0.1'.\n'nosuch.test'.\n");
  epmd.names.push_back({"b", 4002});
  refresh();
  ASSERT_EQ(loop_.events.back(), "set_nodes") << last_failure();
  EXPECT_EQ(loop_.reports.back().front(), "a@127.0.0.1");
}

TEST_F(ErlangHostsTest, MissingFileIsNotFatalAndIsLookedForEveryRound) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  const std::string file = dir_.path() + "/later";
  start(epmd.port(), file);
  EXPECT_TRUE(loop_.logged("couldn't find " + file + " - not joining"));
  ASSERT_TRUE(rounds(1));
  EXPECT_EQ(last_failure(), "couldn't find " + file);
  dir_.write("later", "'127.0.0.1'.\n");
  refresh();
  ASSERT_EQ(loop_.reports.size(), 1u) << last_failure();
  EXPECT_EQ(loop_.reports[0], (std::vector<std::string>{"a@127.0.0.1"}));
  // Deleted again: an error, the last set stays.
  dir_.remove("later");
  refresh();
  EXPECT_EQ(loop_.events.back(), "discovery_failed");
  EXPECT_EQ(loop_.reports.size(), 1u);
}

TEST_F(ErlangHostsTest, SearchesTheWorkingDirectoryThenHome) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  TempDir cwd, home;
  const std::string home_file = home.write(".hosts.erlang", "'127.0.0.1'.\n");
  char old_cwd[4096];
  ASSERT_NE(getcwd(old_cwd, sizeof old_cwd), nullptr);
  const char *old_home_env = std::getenv("HOME");
  const std::string old_home = old_home_env != nullptr ? old_home_env : "";
  ASSERT_EQ(chdir(cwd.path().c_str()), 0);
  setenv("HOME", home.path().c_str(), 1);

  ASSERT_EQ(init(epmd.port()), CLUSTERD_OK) << instance_->last_error();
  ASSERT_EQ(instance_->start(), CLUSTERD_OK);
  ASSERT_TRUE(rounds(1));
  EXPECT_EQ(status("hosts file"), home_file + " (1 hosts)");
  ASSERT_EQ(loop_.reports.size(), 1u) << last_failure();
  // A .hosts.erlang in the working directory comes first.
  cwd.write(".hosts.erlang", "'127.0.0.1'. 'localhost'.\n");
  refresh();
  EXPECT_EQ(status("hosts file"), "./.hosts.erlang (2 hosts)");

  ASSERT_EQ(chdir(old_cwd), 0);
  if (old_home_env != nullptr) setenv("HOME", old_home.c_str(), 1);
}

TEST_F(ErlangHostsTest, NothingFoundNamesWhereItLooked) {
  TempDir cwd, home;
  char old_cwd[4096];
  ASSERT_NE(getcwd(old_cwd, sizeof old_cwd), nullptr);
  const char *old_home_env = std::getenv("HOME");
  const std::string old_home = old_home_env != nullptr ? old_home_env : "";
  ASSERT_EQ(chdir(cwd.path().c_str()), 0);
  setenv("HOME", home.path().c_str(), 1);
  ASSERT_EQ(init(4369), CLUSTERD_OK) << instance_->last_error();
  ASSERT_EQ(instance_->start(), CLUSTERD_OK);
  ASSERT_TRUE(rounds(1));
  EXPECT_EQ(last_failure(), "couldn't find .hosts.erlang (searched ./.hosts.erlang, " +
                                home.path() + "/.hosts.erlang)");
  ASSERT_EQ(chdir(old_cwd), 0);
  if (old_home_env != nullptr) setenv("HOME", old_home.c_str(), 1);
}

TEST_F(ErlangHostsTest, EmptyFileIsARealAnswer) {
  start(4369, dir_.write("hosts", "% nobody yet\n"));
  ASSERT_TRUE(rounds(1));
  ASSERT_EQ(loop_.reports.size(), 1u);
  EXPECT_TRUE(loop_.reports[0].empty());
}

TEST_F(ErlangHostsTest, PollingPeriods) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  const std::string file = dir_.write("hosts", "'127.0.0.1'.\n");
  start(epmd.port(), file);
  ASSERT_TRUE(rounds(1));
  const auto periods = loop_.timer_periods();  // only the query's one-shots
  EXPECT_EQ(std::count_if(periods.begin(), periods.end(), [](uint64_t p) { return p != 0; }), 0)
      << "timeout = infinity: one round at start, as libcluster";
  refresh();  // clusterctl refresh still asks again
  EXPECT_EQ(epmd.requests.size(), 2u);
  instance_.reset();
  loop_.events.clear();
  start(epmd.port(), file, {{"timeout", Duration{40}}});
  ASSERT_TRUE(rounds(3));
  EXPECT_GE(epmd.requests.size(), 3u);
}

TEST_F(ErlangHostsTest, BoundedParallelismAndStop) {
  FakeEpmd epmd(loop_, Mode::hang);
  std::string text;
  for (int i = 0; i < 40; ++i) {
    const std::string name = "h" + std::to_string(i) + ".test";
    loop_.dns_answers[{name, CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
    text += "'" + name + "'.\n";
  }
  start(epmd.port(), dir_.write("hosts", text));
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() == 16; }));
  loop_.run_for(milliseconds(50));
  EXPECT_EQ(epmd.accepted, 16u) << "at most 16 queries at once";
  instance_->stop();
  EXPECT_EQ(loop_.registrations(), 0u);
}

TEST_F(ErlangHostsTest, DeclaresItsConstraintsAndRefusesAnUnusableFile) {
  EXPECT_EQ(option_of(descriptor(), "epmd_port").min, 1);
  EXPECT_EQ(option_of(descriptor(), "timeout").min, 1);
  EXPECT_TRUE(option_of(descriptor(), "epmd_timeout").flags & CLUSTERD_OPT_FINITE);
  // A hosts file that exists but cannot be used fails init: only a running instance can tell.
  EXPECT_EQ(init(4369, {{"hosts_file", dir_.path()}}), CLUSTERD_E_CONFIG);
  EXPECT_TRUE(contains(instance_->last_error(), "not a regular file")) << instance_->last_error();
}

}  // namespace
