// Tests of the "erlang" transport against real BEAM nodes, on loopback only. Each test starts
// its own epmd in the foreground on a free port (ERL_EPMD_PORT for the nodes), so tests never
// touch a system epmd on 4369 and can run in parallel; every process is started with a known
// PID and killed by that PID. The built clusterd-erlang.so is loaded with dlopen and driven by
// the shared loop host (tests/support/plugin_test_host.hpp; post from plugin threads included).
// Checks go through an independent observer: a hidden ei probe node (and once an erl probe).
// Nothing sleeps to synchronise: every wait polls a condition against a deadline.
#include <arpa/inet.h>
#include <ei.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <clusterd/clusterd.h>

#include "plugin_test_host.hpp"

extern char **environ;

namespace {

using clusterd_test::Clock;
using clusterd_test::Completion;
using clusterd_test::Config;
using clusterd_test::descriptor;
using clusterd_test::Duration;
using clusterd_test::LoopHost;
using clusterd_test::ms_since;
using clusterd_test::option_of;
using clusterd_test::validate;
using std::chrono::milliseconds;

// ---- Processes ---------------------------------------------------------------------------------

// Spawns argv with stdin /dev/null and stdout+stderr appended to `log` (or to a pipe returned in
// `out_fd`); `env` entries replace/extend the environment. Returns the PID or -1.
pid_t spawn(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
            const std::string &log, int *out_fd = nullptr) {
  std::vector<std::string> envs;
  for (char **e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (env.count(entry.substr(0, entry.find('='))) == 0) envs.push_back(entry);
  }
  for (const auto &[k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char *> envp, args;
  for (auto &e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> copy = argv;
  for (auto &a : copy) args.push_back(a.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  int pipefd[2] = {-1, -1};
  if (out_fd != nullptr) {
    if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (out_fd != nullptr) {
    close(pipefd[1]);
    if (rc != 0) {
      close(pipefd[0]);
    } else {
      *out_fd = pipefd[0];
    }
  }
  return rc == 0 ? pid : -1;
}

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

// A blocking loopback TCP connection with a 2 s receive timeout (test side only).
int connect_loopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// NAMES from the epmd at `port`: alive name -> port. nullopt when epmd does not answer.
std::optional<std::map<std::string, uint16_t>> epmd_names(uint16_t port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return std::nullopt;
  const char req[] = {0, 1, 'n'};
  std::string reply;
  if (send(fd, req, sizeof req, MSG_NOSIGNAL) == 3) {
    char buf[4096];
    for (int i = 0; i < 1000; ++i) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  if (reply.size() < 4) return std::nullopt;
  std::map<std::string, uint16_t> out;
  std::istringstream lines(reply.substr(4));
  std::string line;
  while (std::getline(lines, line)) {
    char name[512];
    unsigned p = 0;
    if (std::sscanf(line.c_str(), "name %511s at port %u", name, &p) == 2)
      out[name] = static_cast<uint16_t>(p);
  }
  return out;
}

// ---- The BEAM side -----------------------------------------------------------------------------

class Cluster {
 public:
  ~Cluster() { stop_all(); }

  bool start_epmd(const std::string &dir) {
    dir_ = dir;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port = free_port();
      if (port == 0) continue;
      epmd_ = spawn({CLUSTERD_TEST_EPMD, "-port", std::to_string(port), "-address", "127.0.0.1"},
                    {}, dir_ + "/epmd.log");
      if (epmd_ < 0) return false;
      const auto deadline = Clock::now() + milliseconds(5000);
      while (Clock::now() < deadline) {
        if (epmd_names(port)) return true;
        int status = 0;
        if (waitpid(epmd_, &status, WNOHANG) == epmd_) break;  // port taken meanwhile: retry
        poll(nullptr, 0, 5);
      }
      reap(epmd_);
    }
    return false;
  }

  static std::string full(const std::string &name) { return name + "@127.0.0.1"; }

  // Starts `erl -name NAME@127.0.0.1` registered in our epmd (not waiting for it).
  bool start_node(const std::string &name, const std::string &cookie,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {CLUSTERD_TEST_ERL,
                                     "-name",
                                     full(name),
                                     "-setcookie",
                                     cookie,
                                     "-noinput",
                                     "-kernel",
                                     "inet_dist_use_interface",
                                     "{127,0,0,1}",
                                     "+S",
                                     "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const pid_t pid =
        spawn(argv, {{"ERL_EPMD_PORT", std::to_string(port)}}, dir_ + "/" + name + ".log");
    if (pid < 0) return false;
    nodes_[name] = pid;
    return true;
  }

  bool registered(const std::string &name) const {
    auto names = epmd_names(port);
    return names && names->count(name) != 0;
  }

  // Waits until every node in `names` is registered in epmd (= its distribution listens).
  bool wait_registered(const std::vector<std::string> &names,
                       milliseconds limit = milliseconds(20000)) const {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto got = epmd_names(port);
      bool all = got.has_value();
      for (const auto &n : names) all = all && got->count(n) != 0;
      if (all) return true;
      poll(nullptr, 0, 20);
    }
    return false;
  }

  bool wait_unregistered(const std::string &name, milliseconds limit = milliseconds(10000)) const {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (!registered(name)) return true;
      poll(nullptr, 0, 20);
    }
    return false;
  }

  void kill_node(const std::string &name, int sig = SIGKILL) {
    auto it = nodes_.find(name);
    if (it == nodes_.end()) return;
    kill(it->second, sig);
    reap(it->second);
    nodes_.erase(it);
  }

  void stop_all() {
    for (auto &[name, pid] : nodes_) kill(pid, SIGKILL);
    for (auto &[name, pid] : nodes_) reap(pid);
    nodes_.clear();
    if (epmd_ > 0) {
      kill(epmd_, SIGKILL);
      reap(epmd_);
      epmd_ = -1;
    }
  }

  // Runs `erl -hidden -eval SCRIPT` against our epmd; returns its stdout (bounded wait).
  std::string erl_eval(const std::string &cookie, const std::string &script) {
    static std::atomic<int> counter{0};
    const std::string name =
        "erlprobe" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    int out = -1;
    const pid_t pid =
        spawn({CLUSTERD_TEST_ERL, "-name", full(name), "-setcookie", cookie, "-hidden", "-noinput",
               "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "+S", "1", "-eval", script},
              {{"ERL_EPMD_PORT", std::to_string(port)}}, dir_ + "/" + name + ".log", &out);
    if (pid < 0) return "(cannot start erl)";
    std::string text;
    const auto deadline = Clock::now() + milliseconds(20000);
    while (Clock::now() < deadline) {
      pollfd fd{out, POLLIN, 0};
      if (poll(&fd, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(out, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    close(out);
    kill(pid, SIGKILL);  // normally already gone (halt())
    reap(pid);
    return text;
  }

  uint16_t port = 0;

 private:
  static void reap(pid_t pid) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  std::string dir_;
  pid_t epmd_ = -1;
  std::map<std::string, pid_t> nodes_;
};

// An independent observer: a hidden ei node that connects, runs one rpc and disconnects.
class Probe {
 public:
  Probe(uint16_t epmd_port, std::string cookie) : port_(epmd_port), cookie_(std::move(cookie)) {
    static const int once = ei_init();
    (void)once;
  }

  // The printed reply of rpc Mod:Fun(Args) on `node` (Args: atoms), or nullopt.
  std::optional<std::string> rpc(const std::string &node, const char *mod, const char *fun,
                                 const std::vector<std::string> &atoms = {}) {
    ei_x_buff x;
    if (!call(node, mod, fun, atoms, x)) return std::nullopt;
    int index = 0;
    char *text = nullptr;
    std::optional<std::string> out;
    if (ei_s_print_term(&text, x.buff, &index) >= 0) out = text;
    free(text);
    ei_x_free(&x);
    return out;
  }

  // erlang:nodes() on `node`, or nullopt.
  std::optional<std::set<std::string>> nodes(const std::string &node) {
    ei_x_buff x;
    if (!call(node, "erlang", "nodes", {}, x)) return std::nullopt;
    std::set<std::string> out;
    int index = 0;
    int type = 0;
    int size = 0;
    int count = 0;
    ei_get_type(x.buff, &index, &type, &size);
    if (type == ERL_LIST_EXT && ei_decode_list_header(x.buff, &index, &count) == 0) {
      for (int i = 0; i < count; ++i) {
        char atom[MAXATOMLEN_UTF8];
        if (ei_decode_atom(x.buff, &index, atom) < 0) break;
        out.insert(atom);
      }
    }
    ei_x_free(&x);
    return out;
  }

 private:
  bool call(const std::string &node, const char *mod, const char *fun,
            const std::vector<std::string> &atoms, ei_x_buff &x) {
    const std::string alive = node.substr(0, node.find('@'));
    auto names = epmd_names(port_);
    if (!names || names->count(alive) == 0) return false;
    ei_cnode ec;
    static std::atomic<int> counter{0};
    const std::string me = "probe" + std::to_string(getpid()) + "x" + std::to_string(++counter);
    const std::string full = me + "@127.0.0.1";
    if (ei_connect_xinit(&ec, "127.0.0.1", me.c_str(), full.c_str(), nullptr, cookie_.c_str(),
                         1234) < 0)
      return false;
    in_addr ip{};
    ip.s_addr = htonl(INADDR_LOOPBACK);
    const int fd = ei_xconnect_host_port_tmo(&ec, &ip, names->at(alive), 5000);
    if (fd < 0) return false;
    ei_x_buff args;
    ei_x_new(&args);
    if (!atoms.empty()) {
      ei_x_encode_list_header(&args, static_cast<long>(atoms.size()));
      for (const auto &a : atoms) ei_x_encode_atom(&args, a.c_str());
    }
    ei_x_encode_empty_list(&args);
    ei_x_new(&x);
    const int rc = ei_rpc(&ec, fd, const_cast<char *>(mod), const_cast<char *>(fun), args.buff,
                          args.index, &x);
    ei_x_free(&args);
    ei_close_connection(fd);
    if (rc < 0) ei_x_free(&x);
    return rc >= 0;
  }

  uint16_t port_;
  std::string cookie_;
};

// ---- The plugin under test ---------------------------------------------------------------------

// One plugin instance on its own loop host.
class Instance {
 public:
  // What the transport needs: the transport sink, status and post(); no timer, fd or DNS.
  Instance() { host.offer_only({CLUSTERD_SERVICE_TRANSPORT_SINK, CLUSTERD_SERVICE_STATUS}); }
  ~Instance() { shutdown(); }

  clusterd_status_t start(Config &cfg) {
    plugin_ = std::make_unique<clusterd_test::Instance>(descriptor(), host);
    if (plugin_->raw() == nullptr) return CLUSTERD_E_GENERIC;
    const clusterd_status_t st = plugin_->init(cfg);
    if (st != CLUSTERD_OK) return st;
    const clusterd_status_t started = plugin_->start();
    t_ = plugin_->transport();
    return started;
  }

  // stop() (timed) and destroy().
  double shutdown() {
    if (plugin_ == nullptr) return 0;
    const double took = plugin_->stop();
    plugin_.reset();
    return took;
  }

  std::string last_error() const { return plugin_->last_error(); }
  std::optional<std::string> local_node() const {
    const char *n = t_->local_node(plugin_->raw());
    return n != nullptr ? std::optional<std::string>(n) : std::nullopt;
  }

  std::vector<Completion> of(clusterd_id_t op) const {
    std::vector<Completion> out;
    for (const auto &c : host.completions)
      if (c.op == op) out.push_back(c);
    return out;
  }

  // Starts an operation and waits for its completion ({} if it never completes).
  std::optional<Completion> op(const char *kind, const std::string &node = {},
                               milliseconds limit = milliseconds(20000)) {
    const clusterd_id_t id = ++next_op_;
    clusterd_status_t st = CLUSTERD_E_GENERIC;
    if (std::strcmp(kind, "connect") == 0) st = t_->connect(plugin_->raw(), id, node.c_str());
    if (std::strcmp(kind, "disconnect") == 0) st = t_->disconnect(plugin_->raw(), id, node.c_str());
    if (std::strcmp(kind, "list") == 0) st = t_->list_nodes(plugin_->raw(), id);
    if (st != CLUSTERD_OK) return Completion{id, st, "call failed: " + last_error(), {}};
    if (!host.run_until([&] { return !of(id).empty(); }, limit)) return std::nullopt;
    EXPECT_EQ(of(id).size(), 1u) << "completed exactly once";
    return of(id).front();
  }
  clusterd_id_t start_op(const char *kind, const std::string &node = {}) {
    const clusterd_id_t id = ++next_op_;
    clusterd_status_t st = CLUSTERD_E_GENERIC;
    if (std::strcmp(kind, "connect") == 0) st = t_->connect(plugin_->raw(), id, node.c_str());
    if (std::strcmp(kind, "list") == 0) st = t_->list_nodes(plugin_->raw(), id);
    EXPECT_EQ(st, CLUSTERD_OK) << last_error();
    return id;
  }

  // Lists until the answer satisfies `pred` (the managed node(s) connected and in that state).
  bool wait_listed(const std::function<bool(const std::vector<std::string> &)> &pred,
                   milliseconds limit = milliseconds(20000)) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto c = op("list", {}, milliseconds(5000));
      if (c && c->status == CLUSTERD_OK && pred(c->nodes)) return true;
      host.run_until([] { return false; }, milliseconds(20));  // let a reconnect happen
    }
    return false;
  }
  bool wait_connected(milliseconds limit = milliseconds(20000)) {
    return wait_listed([](const auto &) { return true; }, limit);
  }
  bool wait_event(bool up, const std::string &node, milliseconds limit = milliseconds(10000)) {
    return host.run_until([&] { return host.saw(up, node); }, limit);
  }

  LoopHost host;
  const clusterd_transport_t *t_ = nullptr;

 private:
  std::unique_ptr<clusterd_test::Instance> plugin_;  // stopped and destroyed before host
  clusterd_id_t next_op_ = 0;
};

std::string random_cookie() {
  std::random_device r;
  return "cookie" + std::to_string(r()) + std::to_string(r());
}

class ErlangTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(descriptor(), nullptr);
    char tmpl[] = "/tmp/clusterd-erlang-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(cluster_.start_epmd(dir_)) << "cannot start epmd";
    cookie_ = random_cookie();
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto &l : plugin_.host.logs()) std::cerr << "  plugin log: " << l << "\n";
      std::cerr << "  node logs in " << dir_ << " (kept)\n";
    }
    plugin_.shutdown();
    cluster_.stop_all();
    if (!HasFailure()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  Config config_for(const std::string &node) {
    Config cfg(clusterd_test::defaults_of(descriptor()));  // the host fills in the defaults
    cfg.values["node"] = Cluster::full(node);
    cfg.values["cookie"] = cookie_;
    cfg.values["epmd_port"] = int64_t{cluster_.port};
    cfg.values["list_interval"] = Duration{1000};
    return cfg;
  }

  Probe probe() { return Probe(cluster_.port, cookie_); }

  bool no_secret_logged(const Instance &i, const std::vector<std::string> &secrets) const {
    for (const auto &l : i.host.logs())
      for (const auto &s : secrets)
        if (l.find(s) != std::string::npos) return false;
    return true;
  }

  std::string dir_;
  std::string cookie_;
  Cluster cluster_;
  Instance plugin_;
};

const std::string kN1 = Cluster::full("n1");
const std::string kN2 = Cluster::full("n2");
const std::string kN3 = Cluster::full("n3");

// ---- Tests -------------------------------------------------------------------------------------

TEST_F(ErlangTest, Descriptor) {
  const clusterd_plugin_descriptor_t *d = descriptor();
  EXPECT_STREQ(d->name, "erlang");
  EXPECT_EQ(d->kind, static_cast<uint32_t>(CLUSTERD_KIND_TRANSPORT));
  std::map<std::string, const clusterd_option_t *> opts;
  for (uint32_t i = 0; i < d->option_count; ++i) opts[d->options[i].key] = &d->options[i];
  for (const char *key : {"node", "nodes", "cookie", "connect_timeout", "rpc_timeout",
                          "list_interval", "local_poll_interval", "epmd_port", "name_prefix"})
    EXPECT_EQ(opts.count(key), 1u) << key;
  EXPECT_EQ(opts["cookie"]->flags & CLUSTERD_OPT_SECRET, CLUSTERD_OPT_SECRET);
  EXPECT_EQ(opts["cookie"]->default_value, nullptr);
  EXPECT_STREQ(opts["nodes"]->choices, "local");
  EXPECT_STREQ(opts["connect_timeout"]->default_value, "\"5s\"");
  EXPECT_STREQ(opts["list_interval"]->default_value, "\"10s\"");
  EXPECT_STREQ(opts["local_poll_interval"]->default_value, "\"2s\"");
  EXPECT_STREQ(opts["epmd_port"]->default_value, "4369");
  EXPECT_STREQ(opts["name_prefix"]->default_value, "\"clusterd\"");
}

TEST_F(ErlangTest, ChecksItsConfigurationBeforeInit) {
  // Declared constraints: the host refuses these values at `clusterd check`, start and reload
  // (tests/integration/test_check.py runs them against the real host).
  EXPECT_EQ(option_of(descriptor(), "node").format, uint32_t{CLUSTERD_FORMAT_NODE_NAME});
  EXPECT_STREQ(option_of(descriptor(), "node").conflicts, "nodes");
  EXPECT_EQ(option_of(descriptor(), "epmd_port").max, 65535);
  EXPECT_EQ(option_of(descriptor(), "connect_timeout").min, 1);
  EXPECT_EQ(option_of(descriptor(), "cookie").min, 1);
  EXPECT_EQ(option_of(descriptor(), "cookie").max, 512);
  // validate(): what no declaration says.
  struct Case {
    std::function<void(Config &)> edit;
    const char *expect;
  };
  const std::vector<Case> cases = {
      {[](Config &c) { c.values.erase("node"); }, ": set node (\"app@host\") or nodes"},
      {[](Config &c) { c.values["name_prefix"] = std::string("bad prefix"); }, "name_prefix: "},
      {[](Config &c) { c.values["list_interval"] = Duration{25 * 3600 * 1000}; },
       "list_interval: must be at most 24h"},
  };
  for (const auto &c : cases) {
    Config cfg = config_for("n1");
    c.edit(cfg);
    auto problems = validate(descriptor(), cfg);
    ASSERT_EQ(problems.size(), 1u) << c.expect;
    EXPECT_NE(problems[0].find(c.expect), std::string::npos) << problems[0];
    EXPECT_EQ(problems[0].find(cookie_), std::string::npos) << "the cookie is never shown";
  }
  Config good = config_for("n1");
  EXPECT_TRUE(validate(descriptor(), good).empty());
}

TEST_F(ErlangTest, ConnectListDisconnectAgainstRealNodes) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.start_node("n2", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1", "n2"}));
  Config cfg = config_for("n1");
  cfg.values["list_interval"] = Duration{-1};  // events only: node_up/node_down below are events
  const auto t0 = Clock::now();
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK) << plugin_.last_error();
  // Issued at once: held during the first connection attempt instead of failing with AGAIN.
  auto c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_OK) << c->message;
  std::cout << "[ measure ] start -> connect(n2) done (hidden connection, relay, first "
               "connect_node of fresh nodes): "
            << ms_since(t0) << " ms\n";
  EXPECT_EQ(plugin_.local_node(), kN1);
  EXPECT_GE(plugin_.host.local_changes, 1);
  ASSERT_TRUE(plugin_.wait_event(true, kN2)) << "node_up(n2) from the relay";
  auto seen = probe().nodes(kN2);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->count(kN1), 1u) << "n2 sees n1 (independent probe)";

  auto again = Clock::now();
  c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_OK) << "already connected is OK";
  std::cout << "[ measure ] connect(n2) latency when already connected: " << ms_since(again)
            << " ms\n";

  c = plugin_.op("list");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_OK);
  EXPECT_EQ(c->nodes, std::vector<std::string>{kN2}) << "visible nodes only, no probe, no self";

  c = plugin_.op("connect", "nosuch@127.0.0.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_UNREACHABLE);
  EXPECT_NE(c->message.find(kN1), std::string::npos) << c->message;
  EXPECT_NE(c->message.find("nosuch@127.0.0.1"), std::string::npos) << c->message;

  c = plugin_.op("disconnect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_OK) << c->message;
  ASSERT_TRUE(plugin_.wait_event(false, kN2)) << "node_down(n2)";
  seen = probe().nodes(kN1);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->count(kN2), 0u) << "n1 no longer sees n2 (independent probe)";

  c = plugin_.op("disconnect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_NOT_FOUND) << c->message;

  const auto t1 = Clock::now();
  c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_OK) << c->message;
  std::cout << "[ measure ] connect(n2) latency, reconnect of warm nodes: " << ms_since(t1)
            << " ms\n";

  EXPECT_EQ(plugin_.t_->connect(nullptr, 99, "x@y"), CLUSTERD_E_INVALID_ARG);
  c = plugin_.op("connect", "not a node");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_INVALID_ARG) << "refused by the call, not completed";

  for (const auto &e : plugin_.host.node_events)
    EXPECT_EQ(e.node, kN2) << "only n2 came and went: hidden probes are filtered";
  EXPECT_TRUE(no_secret_logged(plugin_, {cookie_}));
}

TEST_F(ErlangTest, NodeupFromThirdPartiesAndNodedownOnKill) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.start_node("n3", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1", "n3"}));
  Config cfg = config_for("n1");
  cfg.values["list_interval"] = Duration{-1};  // infinity: what follows comes from events only
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK) << plugin_.last_error();
  ASSERT_TRUE(plugin_.wait_connected());

  // Someone else (here: our probe, by rpc) connects the managed node.
  auto reply = probe().rpc(kN1, "net_kernel", "connect_node", {kN3});
  ASSERT_EQ(reply, std::optional<std::string>("true"));
  ASSERT_TRUE(plugin_.wait_event(true, kN3)) << "node_up(n3) without any operation of ours";

  const auto t0 = Clock::now();
  cluster_.kill_node("n3");  // kill -9
  ASSERT_TRUE(plugin_.wait_event(false, kN3, milliseconds(5000))) << "node_down(n3) in 5 s";
  std::cout << "[ measure ] kill -9 of a peer -> node_down: " << ms_since(t0) << " ms\n";
  for (const auto &e : plugin_.host.node_events) {
    if (!e.up) {
      EXPECT_FALSE(e.reason.empty()) << "nodedown carries the reason";
    }
  }
  auto c = plugin_.op("list");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->nodes.empty());
}

TEST_F(ErlangTest, ManagedNodeAbsentAtStartIsConnectedWhenItAppears) {
  Config cfg = config_for("n1");
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK) << plugin_.last_error();
  EXPECT_EQ(plugin_.local_node(), kN1) << "configured name while not connected";
  // Let it fail a first attempt, so the message carries the reason.
  ASSERT_TRUE(plugin_.host.run_until(
      [&] { return plugin_.host.status["managed"].find("not connected") != std::string::npos; }));
  auto c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_AGAIN);
  EXPECT_NE(c->message.find(kN1), std::string::npos) << c->message;
  EXPECT_NE(c->message.find("not registered"), std::string::npos) << c->message;
  c = plugin_.op("list");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_AGAIN);

  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  const auto t0 = Clock::now();
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  ASSERT_TRUE(plugin_.wait_connected(milliseconds(15000))) << "connects once n1 is up";
  std::cout << "[ measure ] n1 registered in epmd -> transport connected: " << ms_since(t0)
            << " ms (backoff)\n";
  EXPECT_GE(plugin_.host.local_changes, 1);
}

TEST_F(ErlangTest, ManagedNodeRestartReconnectsAndEventsFlowAgain) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.start_node("n2", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1", "n2"}));
  Config cfg = config_for("n1");
  cfg.values["list_interval"] = Duration{-1};  // infinity: events only
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK);
  ASSERT_TRUE(plugin_.wait_connected());
  auto c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->status, CLUSTERD_OK);
  ASSERT_TRUE(plugin_.wait_event(true, kN2));

  const int changes = plugin_.host.local_changes;
  cluster_.kill_node("n1");
  ASSERT_TRUE(plugin_.wait_event(false, kN2)) << "n1's peers are gone with it";
  ASSERT_TRUE(plugin_.host.run_until([&] { return plugin_.host.local_changes > changes; }));
  c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_AGAIN);
  EXPECT_NE(c->message.find(kN1), std::string::npos) << c->message;

  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  ASSERT_TRUE(plugin_.wait_listed([](const auto &nodes) { return nodes.empty(); }))
      << "reconnected to the fresh n1";
  const std::size_t before = plugin_.host.node_events.size();
  ASSERT_EQ(probe().rpc(kN1, "net_kernel", "connect_node", {kN2}),
            std::optional<std::string>("true"));
  ASSERT_TRUE(plugin_.host.run_until([&] {
    for (std::size_t i = before; i < plugin_.host.node_events.size(); ++i)
      if (plugin_.host.node_events[i].up && plugin_.host.node_events[i].node == kN2) return true;
    return false;
  })) << "the relay was installed again";
}

TEST_F(ErlangTest, KilledRelayIsInstalledAgain) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.start_node("n2", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1", "n2"}));
  Config cfg = config_for("n1");
  cfg.values["list_interval"] = Duration{-1};  // infinity: events only
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK);
  ASSERT_TRUE(plugin_.wait_connected());
  // An independent erl node finds the relay (spawned with erl_eval:exprs/2) and kills it.
  const std::string out = cluster_.erl_eval(
      cookie_, "N = '" + kN1 +
                   "', Ps = [P || P <- rpc:call(N, erlang, processes, []), "
                   "rpc:call(N, erlang, process_info, [P, initial_call]) =:= "
                   "{initial_call, {erl_eval, exprs, 2}}], [exit(P, kill) || P <- Ps], "
                   "io:format(\"killed ~p~n\", [length(Ps)]), halt().");
  ASSERT_NE(out.find("killed 1"), std::string::npos) << out;
  ASSERT_TRUE(plugin_.host.run_until([&] { return plugin_.host.logged("installing it again"); }));
  // Re-installed: a third-party connect is reported again, without any list polling.
  ASSERT_TRUE(plugin_.host.run_until([&] {
    auto r = probe().rpc(kN1, "net_kernel", "connect_node", {kN2});
    return r == std::optional<std::string>("true") && plugin_.host.saw(true, kN2);
  }));
}

TEST_F(ErlangTest, WrongCookieIsAClearErrorAndRetried) {
  const std::string right = cookie_;
  const std::string wrong = random_cookie();
  ASSERT_TRUE(cluster_.start_node("n1", right));
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  Config cfg = config_for("n1");
  cfg.values["cookie"] = wrong;
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK);
  ASSERT_TRUE(plugin_.host.run_until([&] { return plugin_.host.logged("wrong cookie"); }));
  auto c = plugin_.op("connect", kN2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_AGAIN);
  EXPECT_NE(c->message.find(kN1 + " rejected the connection: wrong cookie?"), std::string::npos)
      << c->message;
  EXPECT_TRUE(no_secret_logged(plugin_, {right, wrong}));

  // Still trying: once the node runs with the cookie we have, it connects.
  cluster_.kill_node("n1");
  ASSERT_TRUE(cluster_.start_node("n1", wrong));
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  ASSERT_TRUE(plugin_.wait_connected(milliseconds(15000)));
  EXPECT_TRUE(no_secret_logged(plugin_, {right, wrong}));
}

TEST_F(ErlangTest, CookieFromEnvironmentThenFromHomeFile) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  const char *old_home = std::getenv("HOME");
  const std::string saved_home = old_home != nullptr ? old_home : "";
  {
    Config cfg = config_for("n1");
    cfg.values.erase("cookie");
    setenv("CLUSTERD_ERLANG_COOKIE", cookie_.c_str(), 1);
    Instance i;
    ASSERT_EQ(i.start(cfg), CLUSTERD_OK) << i.last_error();
    unsetenv("CLUSTERD_ERLANG_COOKIE");
    EXPECT_TRUE(i.wait_connected()) << "cookie from CLUSTERD_ERLANG_COOKIE";
    EXPECT_TRUE(i.host.logged("cookie from CLUSTERD_ERLANG_COOKIE"));
  }
  {
    std::ofstream(dir_ + "/.erlang.cookie") << cookie_ << "\n";
    chmod((dir_ + "/.erlang.cookie").c_str(), 0400);
    setenv("HOME", dir_.c_str(), 1);
    Config cfg = config_for("n1");
    cfg.values.erase("cookie");
    Instance i;
    const auto st = i.start(cfg);
    if (old_home != nullptr) setenv("HOME", saved_home.c_str(), 1);
    ASSERT_EQ(st, CLUSTERD_OK) << i.last_error();
    EXPECT_TRUE(i.wait_connected()) << "cookie from ~/.erlang.cookie";
    EXPECT_TRUE(i.host.logged(".erlang.cookie"));
    EXPECT_TRUE(no_secret_logged(i, {cookie_}));
  }
}

TEST_F(ErlangTest, LocalModeManagesEveryLocalNodeAndMeshesThem) {
  for (const char *n : {"n1", "n2", "n3"}) ASSERT_TRUE(cluster_.start_node(n, cookie_));
  ASSERT_TRUE(cluster_.start_node("a_hidden", cookie_, {"-hidden"}));  // e.g. a remote shell
  ASSERT_TRUE(cluster_.wait_registered({"n1", "n2", "n3", "a_hidden"}));
  Config cfg = config_for("n1");
  cfg.values.erase("node");
  cfg.values["nodes"] = std::string("local");
  cfg.values["local_poll_interval"] = Duration{200};
  const auto t0 = Clock::now();
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK) << plugin_.last_error();
  ASSERT_TRUE(plugin_.host.run_until([&] {
    return plugin_.host.status["managed"].rfind("3 of 3", 0) == 0;
  })) << plugin_.host.status["managed"];
  const double managed_ms = ms_since(t0);
  EXPECT_EQ(plugin_.local_node(), kN1)
      << "the smallest managed name; the hidden node is left alone";

  // What the host's reconciler does with a local_epmd strategy: connect what is not listed.
  ASSERT_TRUE(plugin_.host.run_until([&] {
    auto listed = plugin_.op("list");
    if (!listed || listed->status != CLUSTERD_OK) return false;
    if (listed->nodes == std::vector<std::string>{kN2, kN3}) return true;
    for (const auto &n : {kN2, kN3})
      if (std::find(listed->nodes.begin(), listed->nodes.end(), n) == listed->nodes.end()) {
        auto c = plugin_.op("connect", n);
        EXPECT_TRUE(c && c->status == CLUSTERD_OK) << (c ? c->message : "no completion");
      }
    return false;
  })) << "the transport reports n2 and n3 connected to every other managed node";
  const double mesh_ms = ms_since(t0);
  std::cout << "[ measure ] nodes=\"local\", 3 running nodes: all managed after " << managed_ms
            << " ms, full mesh (every pair connected directly) after " << mesh_ms << " ms\n";
  Probe p = probe();
  for (const auto &[node, others] : std::map<std::string, std::set<std::string>>{
           {kN1, {kN2, kN3}}, {kN2, {kN1, kN3}}, {kN3, {kN1, kN2}}}) {
    auto seen = p.nodes(node);
    ASSERT_TRUE(seen) << node;
    EXPECT_EQ(*seen, others) << node << " sees the two others (independent probe)";
  }
  EXPECT_TRUE(plugin_.host.logged("hidden node: not managed"));

  // A node that leaves epmd is no longer managed.
  cluster_.kill_node("n3");
  ASSERT_TRUE(plugin_.host.run_until([&] {
    return plugin_.host.status["managed"].rfind("2 of 2", 0) == 0;
  })) << plugin_.host.status["managed"];
  auto listed = plugin_.op("list");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->nodes, std::vector<std::string>{kN2});
  EXPECT_TRUE(plugin_.host.saw(false, kN3));
}

// nodes = "local": a managed node that comes up later joins what the others are connected to
// (the transport's own connected set, not a copy of the host's wish list). Nobody asks to
// connect n3 here, so only that catch-up can connect it to n2.
TEST_F(ErlangTest, LocalModeNewcomerJoinsWhatTheOthersAreConnectedTo) {
  for (const char *n : {"n1", "n2"}) ASSERT_TRUE(cluster_.start_node(n, cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1", "n2"}));
  Config cfg = config_for("n1");
  cfg.values.erase("node");
  cfg.values["nodes"] = std::string("local");
  cfg.values["local_poll_interval"] = Duration{200};
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK) << plugin_.last_error();
  ASSERT_TRUE(plugin_.host.run_until([&] {
    return plugin_.host.status["managed"].rfind("2 of 2", 0) == 0;
  })) << plugin_.host.status["managed"];
  ASSERT_TRUE(plugin_.host.run_until([&] {
    auto listed = plugin_.op("list");
    if (listed && listed->status == CLUSTERD_OK && listed->nodes == std::vector<std::string>{kN2})
      return true;
    plugin_.op("connect", kN2);
    return false;
  })) << "n2 is reported connected";

  ASSERT_TRUE(cluster_.start_node("n3", cookie_));
  ASSERT_TRUE(plugin_.host.run_until([&] {
    return plugin_.host.status["managed"].rfind("3 of 3", 0) == 0;
  })) << plugin_.host.status["managed"];
  Probe p = probe();
  ASSERT_TRUE(plugin_.host.run_until([&] {
    auto seen = p.nodes(kN3);
    return seen && seen->count(kN2) == 1;
  })) << "n3 joined n2 without a connect from the host";
}

// Registers `name` in epmd for a port where a socket listens but never answers: a node that
// exists in epmd and hangs in the handshake. Returns {epmd socket, listener} (close both).
std::pair<int, int> register_black_hole(uint16_t epmd_port, const std::string &name) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof a);
  listen(listener, 16);  // never accepted: the kernel completes TCP, nobody speaks
  getsockname(listener, reinterpret_cast<sockaddr *>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  std::string req;
  req += static_cast<char>(120);  // ALIVE2_REQ
  req += static_cast<char>(port >> 8);
  req += static_cast<char>(port & 0xff);
  req += static_cast<char>(77);  // normal node
  req += '\0';                   // tcp/ipv4
  req += std::string("\0\6\0\5", 4);
  req += static_cast<char>(name.size() >> 8);
  req += static_cast<char>(name.size() & 0xff);
  req += name;
  req += std::string("\0\0", 2);
  std::string framed;
  framed += static_cast<char>(req.size() >> 8);
  framed += static_cast<char>(req.size() & 0xff);
  framed += req;
  const int fd = connect_loopback(epmd_port);
  send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
  char reply[16];
  recv(fd, reply, sizeof reply, 0);  // the registration lasts while fd stays open
  return {fd, listener};
}

TEST_F(ErlangTest, StopIsPromptAndCompletesOpenOperations) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  auto [epmd_fd, listener] = register_black_hole(cluster_.port, "hole");
  ASSERT_TRUE(cluster_.registered("hole"));
  Config cfg = config_for("n1");
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK);
  ASSERT_TRUE(plugin_.wait_connected());
  // connect_node to a node that never answers hangs for net_setuptime (7 s): the list behind it
  // must wait (one rpc at a time), and stop() must neither wait for it nor forget either op.
  const clusterd_id_t hang = plugin_.start_op("connect", "hole@127.0.0.1");
  const clusterd_id_t queued = plugin_.start_op("list");
  plugin_.host.run_until([] { return false; }, milliseconds(300));
  EXPECT_TRUE(plugin_.of(hang).empty());
  EXPECT_TRUE(plugin_.of(queued).empty()) << "queued behind the rpc in flight";
  const double took = plugin_.shutdown();
  EXPECT_LT(took, 1000.0) << "stop() took " << took << " ms";
  std::cout << "[ measure ] stop() with an rpc in flight: " << took << " ms\n";
  ASSERT_EQ(plugin_.of(hang).size(), 1u);
  EXPECT_EQ(plugin_.of(hang)[0].status, CLUSTERD_E_CANCELLED);
  ASSERT_EQ(plugin_.of(queued).size(), 1u);
  EXPECT_EQ(plugin_.of(queued)[0].status, CLUSTERD_E_CANCELLED);
  close(epmd_fd);
  close(listener);
}

TEST_F(ErlangTest, StopIsPromptWhileConnecting) {
  // epmd_port points at a listener that never answers: the PORT_PLEASE2 query hangs.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  getsockname(listener, reinterpret_cast<sockaddr *>(&a), &len);
  Config cfg = config_for("n1");
  cfg.values["epmd_port"] = int64_t{ntohs(a.sin_port)};
  cfg.values["connect_timeout"] = Duration{30000};
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK);
  const clusterd_id_t held = plugin_.start_op("list");  // waits for the first attempt
  plugin_.host.run_until([] { return false; }, milliseconds(200));
  EXPECT_TRUE(plugin_.of(held).empty());
  const double took = plugin_.shutdown();
  EXPECT_LT(took, 1000.0) << "stop() took " << took << " ms";
  ASSERT_EQ(plugin_.of(held).size(), 1u);
  EXPECT_EQ(plugin_.of(held)[0].status, CLUSTERD_E_CANCELLED);
  close(listener);
}

TEST_F(ErlangTest, RpcTimeoutReopensTheConnection) {
  ASSERT_TRUE(cluster_.start_node("n1", cookie_));
  ASSERT_TRUE(cluster_.wait_registered({"n1"}));
  auto [epmd_fd, listener] = register_black_hole(cluster_.port, "hole");
  Config cfg = config_for("n1");
  cfg.values["rpc_timeout"] = Duration{1000};
  ASSERT_EQ(plugin_.start(cfg), CLUSTERD_OK);
  ASSERT_TRUE(plugin_.wait_connected());
  auto c = plugin_.op("connect", "hole@127.0.0.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CLUSTERD_E_AGAIN) << c->message;
  EXPECT_NE(c->message.find("did not answer"), std::string::npos) << c->message;
  // The late reply of that rpc can never be taken for another one: the connection was reopened.
  EXPECT_TRUE(plugin_.wait_connected()) << "connected again";
  close(epmd_fd);
  close(listener);
}

}  // namespace
