// Tests of the erlang transport's Session against a scripted DistConnection: the orderings a
// real node produces only by chance (an event overtaking a listing, a relay that dies, a reply
// that never comes) made deterministic. Also shows that the connection behind the interface can
// be replaced. EPMD is a tiny fake server on loopback that knows one name.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../dist_connection.hpp"
#include "../session.hpp"

namespace {

using namespace clusterd::erlang;
using std::chrono::milliseconds;

// Answers every PORT_PLEASE2 with "registered at port 4242" (what the fake connection ignores).
class FakeEpmd {
 public:
  FakeEpmd() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(listener_, reinterpret_cast<sockaddr *>(&a), sizeof a);
    listen(listener_, 16);
    getsockname(listener_, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEpmd() {
    stop_ = true;
    shutdown(listener_, SHUT_RDWR);
    thread_.join();
    close(listener_);
  }
  uint16_t port = 0;

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      char buf[512];
      recv(fd, buf, sizeof buf, 0);
      const unsigned char reply[] = {119, 0, 0x10, 0x92, 77, 0, 0, 6, 0, 5, 0, 1, 'a', 0, 0};
      send(fd, reply, sizeof reply, MSG_NOSIGNAL);
      close(fd);
    }
  }
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The node on the other side, scripted by the test. Thread-safe.
struct FakeNode {
  std::mutex mutex;
  std::deque<Incoming> inbox;
  std::vector<std::pair<Call, std::string>> sent;
  std::set<std::string> nodes;  // what erlang:nodes() answers
  bool hold_lists = false;      // kNodes replies wait for reply_list()
  bool mute = false;            // no reply at all (rpc timeout)
  int opens = 0;
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ~FakeNode() { close(wake); }

  void push(Incoming in) {
    std::lock_guard<std::mutex> lock(mutex);
    inbox.push_back(std::move(in));
    const uint64_t one = 1;
    (void)!write(wake, &one, sizeof one);
  }
  static Incoming reply(Call call, Reply r) {
    Incoming in;
    in.kind = Incoming::Kind::kReply;
    in.call = call;
    r.ok = r.error.empty();
    in.reply = std::move(r);
    return in;
  }
  static Incoming event(bool up, const std::string &node, bool hidden = false) {
    Incoming in;
    in.kind = Incoming::Kind::kNodeEvent;
    in.up = up;
    in.node = node;
    in.hidden = hidden;
    in.reason = up ? "" : "connection_closed";
    return in;
  }
  void reply_list(const std::set<std::string> &listed) {
    Reply r;
    r.nodes.assign(listed.begin(), listed.end());
    push(reply(Call::kNodes, r));
  }
  template <class F>
  void set(F &&f) {
    std::lock_guard<std::mutex> lock(mutex);
    f();
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<Call> out;
    for (const auto &s : sent) out.push_back(s.first);
    return out;
  }
  int opened() {
    std::lock_guard<std::mutex> lock(mutex);
    return opens;
  }
  int count(Call call) {
    std::lock_guard<std::mutex> lock(mutex);
    int n = 0;
    for (const auto &s : sent) n += s.first == call;
    return n;
  }
};

class FakeConnection final : public DistConnection {
 public:
  explicit FakeConnection(std::shared_ptr<FakeNode> node) : node_(std::move(node)) {}
  void open(const sockaddr_in &, const std::string &, milliseconds) override {
    std::lock_guard<std::mutex> lock(node_->mutex);
    ++node_->opens;
    node_->inbox.clear();
  }
  int fd() const noexcept override { return node_->wake; }
  void send(Call call, std::string_view arg, milliseconds) override {
    bool hold = false, mute = false;
    std::set<std::string> nodes;
    {
      std::lock_guard<std::mutex> lock(node_->mutex);
      node_->sent.emplace_back(call, std::string(arg));
      hold = node_->hold_lists;
      mute = node_->mute;
      nodes = node_->nodes;
    }
    if (mute) return;
    Reply r;
    switch (call) {
      case Call::kNode:
        r.atom = "n1@h";
        break;
      case Call::kIsHidden:
        r.atom = "false";
        break;
      case Call::kNodes:
        if (hold) return;
        r.nodes.assign(nodes.begin(), nodes.end());
        break;
      case Call::kConnectNode:
      case Call::kDisconnectNode:
        r.atom = "true";
        break;
      case Call::kSpawnRelay: {
        node_->push(FakeNode::reply(call, r));
        Incoming ready;
        ready.kind = Incoming::Kind::kRelayReady;
        node_->push(ready);
        return;
      }
      default:
        break;
    }
    node_->push(FakeNode::reply(call, r));
  }
  Incoming receive(milliseconds) override {
    std::lock_guard<std::mutex> lock(node_->mutex);
    uint64_t v;
    (void)!read(node_->wake, &v, sizeof v);
    if (node_->inbox.empty()) return {};
    Incoming in = std::move(node_->inbox.front());
    node_->inbox.pop_front();
    if (!node_->inbox.empty()) {
      const uint64_t one = 1;
      (void)!write(node_->wake, &one, sizeof one);
    }
    return in;
  }

 private:
  std::shared_ptr<FakeNode> node_;
};

// Records what the session reports (from its thread).
class Owner final : public SessionOwner {
 public:
  void session_failed(uint64_t, bool, std::string error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    errors.push_back(std::move(error));
    cv_.notify_all();
  }
  void session_up(uint64_t, std::string, std::set<std::string> p) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++ups;
    peers = std::move(p);
    cv_.notify_all();
  }
  void session_down(uint64_t, std::string error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++downs;
    errors.push_back(std::move(error));
    cv_.notify_all();
  }
  void session_peers(uint64_t, std::set<std::string> p,
                     std::map<std::string, std::string>) override {
    std::lock_guard<std::mutex> lock(mutex_);
    peers = std::move(p);
    cv_.notify_all();
  }
  void session_result(uint64_t, Result r) override {
    std::lock_guard<std::mutex> lock(mutex_);
    results[r.id] = std::move(r);
    cv_.notify_all();
  }
  void session_log(int32_t, std::string message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    logs.push_back(std::move(message));
    cv_.notify_all();
  }
  // Waits (bounded) until `pred` holds under the lock.
  bool wait(const std::function<bool()> &pred, milliseconds limit = milliseconds(5000)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, limit, pred);
  }
  template <class F>
  auto with(F &&f) {
    std::lock_guard<std::mutex> lock(mutex_);
    return f();
  }

  int ups = 0, downs = 0;
  std::set<std::string> peers;
  std::map<uint64_t, Result> results;
  std::vector<std::string> errors, logs;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
};

class SessionTest : public ::testing::Test {
 protected:
  void start(std::optional<milliseconds> list_interval = std::nullopt,
             milliseconds rpc_timeout = milliseconds(5000)) {
    SessionConfig c;
    c.id = 1;
    c.label = "n1@h";
    c.alive = "n1";
    c.host = "127.0.0.1";
    c.epmd_port = epmd_.port;
    c.self = NodeIdentity{"clusterd_test", "h", 1234};
    c.cookie = [](std::string &cookie, std::string &) {
      cookie = "c";
      return true;
    };
    c.rpc_timeout = rpc_timeout;
    c.list_interval = list_interval;
    c.backoff_initial = milliseconds(10);
    c.backoff_max = milliseconds(50);
    auto node = node_;
    c.factory = [node](const NodeIdentity &, const std::string &, const Canceller &) {
      return std::make_unique<FakeConnection>(node);
    };
    session_ = std::make_unique<Session>(std::move(c), owner_);
    session_->start();
    ASSERT_TRUE(owner_.wait([&] { return owner_.ups >= 1; }));
  }
  void TearDown() override { session_.reset(); }

  bool submit(uint64_t id, Call call, const std::string &node = {}) {
    return session_->submit(Request{id, call, node});
  }
  bool wait_sent(Call call, int n) {
    for (int i = 0; i < 500; ++i) {
      if (node_->count(call) >= n) return true;
      std::this_thread::sleep_for(milliseconds(2));  // polling a condition, bounded
    }
    return false;
  }

  FakeEpmd epmd_;
  std::shared_ptr<FakeNode> node_ = std::make_shared<FakeNode>();
  Owner owner_;
  std::unique_ptr<Session> session_;
};

TEST_F(SessionTest, SetupInstallsTheRelayThenLists) {
  node_->set([&] { node_->nodes = {"a@h"}; });
  start();
  EXPECT_EQ(node_->calls(), (std::vector<Call>{Call::kNode, Call::kScanRelay, Call::kParseRelay,
                                               Call::kSpawnRelay, Call::kNodes}));
  EXPECT_EQ(owner_.with([&] { return owner_.peers; }), std::set<std::string>{"a@h"});
}

TEST_F(SessionTest, AnEventNewerThanAListingWins) {
  start();
  node_->set([&] { node_->hold_lists = true; });
  ASSERT_TRUE(submit(7, Call::kNodes));
  ASSERT_TRUE(wait_sent(Call::kNodes, 2));
  // b came up after erlang:nodes() ran, but its nodeup overtakes the reply.
  node_->push(FakeNode::event(true, "b@h"));
  ASSERT_TRUE(owner_.wait([&] { return owner_.peers.count("b@h") == 1; }));
  node_->reply_list({});
  ASSERT_TRUE(owner_.wait([&] { return owner_.results.count(7) == 1; }));
  EXPECT_EQ(owner_.with([&] { return owner_.results[7].nodes; }), std::vector<std::string>{"b@h"});
  EXPECT_EQ(owner_.with([&] { return owner_.peers; }), std::set<std::string>{"b@h"});

  // And a nodedown overtaking a stale listing that still has the node.
  ASSERT_TRUE(submit(8, Call::kNodes));
  ASSERT_TRUE(wait_sent(Call::kNodes, 3));
  node_->push(FakeNode::event(false, "b@h"));
  node_->reply_list({"b@h"});
  ASSERT_TRUE(owner_.wait([&] { return owner_.results.count(8) == 1; }));
  EXPECT_TRUE(owner_.with([&] { return owner_.results[8].nodes.empty(); }));
  EXPECT_TRUE(owner_.with([&] { return owner_.peers.empty(); }));
}

TEST_F(SessionTest, HiddenNodesAndTheNodeItselfAreIgnored) {
  start();
  node_->push(FakeNode::event(true, "probe@h", true));
  node_->push(FakeNode::event(true, "n1@h"));
  node_->push(FakeNode::event(true, "c@h"));
  ASSERT_TRUE(owner_.wait([&] { return owner_.peers.count("c@h") == 1; }));
  EXPECT_EQ(owner_.with([&] { return owner_.peers; }), std::set<std::string>{"c@h"});
}

TEST_F(SessionTest, ListPollingCorrectsMissedEvents) {
  start(milliseconds(50));
  node_->set([&] { node_->nodes = {"missed@h"}; });  // no event ever says so
  ASSERT_TRUE(owner_.wait([&] { return owner_.peers.count("missed@h") == 1; }));
  EXPECT_TRUE(owner_.with([&] {
    for (const auto &l : owner_.logs)
      if (l.find("corrected missed events: +missed@h") != std::string::npos) return true;
    return false;
  }));
}

TEST_F(SessionTest, ADeadRelayIsInstalledAgainAndListedAtOnce) {
  start();  // no periodic listing
  const int lists = node_->count(Call::kNodes);
  Incoming exited;
  exited.kind = Incoming::Kind::kRelayExited;
  exited.reason = "killed";
  node_->set([&] { node_->nodes = {"d@h"}; });  // changed while no relay was there
  node_->push(exited);
  ASSERT_TRUE(owner_.wait([&] { return owner_.peers.count("d@h") == 1; }));
  EXPECT_EQ(node_->count(Call::kSpawnRelay), 2);
  EXPECT_EQ(node_->count(Call::kNodes), lists + 1);
  EXPECT_EQ(node_->opened(), 1) << "the connection stays";
}

TEST_F(SessionTest, OneRpcAtATimeInOrder) {
  start();
  node_->set([&] { node_->hold_lists = true; });
  ASSERT_TRUE(submit(1, Call::kNodes));
  ASSERT_TRUE(submit(2, Call::kConnectNode, "x@h"));
  ASSERT_TRUE(submit(3, Call::kDisconnectNode, "y@h"));
  ASSERT_TRUE(wait_sent(Call::kNodes, 2));
  std::this_thread::sleep_for(milliseconds(50));  // give it a chance to send more (it must not)
  EXPECT_EQ(node_->count(Call::kConnectNode), 0);
  node_->reply_list({});
  ASSERT_TRUE(owner_.wait([&] { return owner_.results.size() == 3; }));
  std::vector<Call> tail = node_->calls();
  tail.erase(tail.begin(), tail.end() - 3);
  EXPECT_EQ(tail, (std::vector<Call>{Call::kNodes, Call::kConnectNode, Call::kDisconnectNode}));
  for (uint64_t id : {1, 2, 3})
    EXPECT_EQ(owner_.with([&] { return owner_.results[id].status; }), CLUSTERD_OK) << id;
}

TEST_F(SessionTest, RpcTimeoutFailsQueuedRequestsAndReconnects) {
  start(std::nullopt, milliseconds(200));
  node_->set([&] { node_->mute = true; });
  ASSERT_TRUE(submit(1, Call::kConnectNode, "x@h"));
  ASSERT_TRUE(submit(2, Call::kNodes));
  ASSERT_TRUE(owner_.wait([&] { return owner_.results.size() == 2; }));
  for (uint64_t id : {1, 2}) {
    const Result r = owner_.with([&] { return owner_.results[id]; });
    EXPECT_EQ(r.status, CLUSTERD_E_AGAIN) << id;
    EXPECT_NE(r.message.find("did not answer"), std::string::npos) << r.message;
  }
  EXPECT_TRUE(owner_.wait([&] { return owner_.downs == 1; }));
  node_->set([&] { node_->mute = false; });
  EXPECT_TRUE(owner_.wait([&] { return owner_.ups == 2; })) << "reconnected";
}

TEST_F(SessionTest, SubmitIsRefusedWhileNotConnected) {
  start(std::nullopt, milliseconds(200));
  node_->set([&] { node_->mute = true; });
  ASSERT_TRUE(submit(1, Call::kNodes));
  ASSERT_TRUE(owner_.wait([&] { return owner_.downs == 1; }));
  EXPECT_FALSE(submit(2, Call::kNodes)) << "nothing is queued while reconnecting";
  session_->cancel();
  session_->join();
  EXPECT_EQ(owner_.with([&] { return owner_.results.size(); }), 1u) << "one result per request";
}

}  // namespace
