// DnsResolver against a real dnsmasq on 127.0.0.1 / ::1 (random high port), plus sockets of
// our own that never answer or answer late. Nothing leaves loopback: the system-resolver
// test uses a resolv.conf of its own.
#include "services/dns_resolver.hpp"

#include "test_support.hpp"

#include <clusterd/common.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>

namespace clusterd::services {
namespace {

using namespace std::chrono_literals;
using test::contains;
using test::run_until;

// dnsmasq serving a small .test zone on `address` (a list, e.g. "127.0.0.1,::1") and `port`
// (0 = a random free one).
class Dnsmasq {
 public:
  Dnsmasq(const test::TempDir &dir, const std::string &name, const std::string &addresses,
          int fixed_port = 0) {
    const std::string log = dir / (name + ".log");
    // A port that is free now may be taken before dnsmasq binds it: retry a few.
    for (int attempt = 0; attempt < (fixed_port ? 1 : 5) && port_ == 0; ++attempt) {
      const int port = fixed_port ? fixed_port : test::LoopbackSocket(SOCK_DGRAM).port();
      std::vector<std::string> argv = {
          CLUSTERD_TEST_DNSMASQ,
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--no-resolv",
          "--no-hosts",
          "--pid-file=",
          "--log-facility=-",
          "--port=" + std::to_string(port),
          "--listen-address=" + addresses,
          "--bind-interfaces",
          "--local=/test/",  // authoritative for .test: unknown names are NXDOMAIN
          "--local-ttl=30",
          "--host-record=app.test,198.18.0.1",
          "--host-record=app.test,2001:db8::1",
          "--host-record=multi.test,198.18.0.2",
          "--host-record=multi.test,198.18.0.3",
          "--host-record=v4only.test,198.18.0.4",
          "--host-record=ttl.test,198.18.0.5,77",
          "--cname=alias.test,app.test",
          "--srv-host=_app._tcp.svc.test,node1.test,4369,10,5",
          "--srv-host=_app._tcp.svc.test,node2.test,4370,20,7",
      };
      // Too many for a 512-byte UDP answer: c-ares must retry over TCP.
      for (int i = 0; i < 30; ++i) {
        argv.push_back("--srv-host=_big._tcp.svc.test,node-" + std::to_string(i) +
                       ".a-rather-long-service-name.test," + std::to_string(5000 + i) + ",1,1");
      }
      if (geteuid() == 0) argv.push_back("--user=root");
      auto process = std::make_unique<test::Process>(argv, log);
      // Ready once it holds the port on every address (our own bind then fails).
      auto bound = [&addresses, port] {
        std::size_t begin = 0;
        while (begin <= addresses.size()) {
          std::size_t end = std::min(addresses.find(',', begin), addresses.size());
          if (test::LoopbackSocket(SOCK_DGRAM, addresses.substr(begin, end - begin), port)
                  .bound()) {
            return false;
          }
          begin = end + 1;
        }
        return true;
      };
      if (test::wait_ready(*process, bound)) {
        process_ = std::move(process);
        port_ = port;
      }
    }
    if (port_ == 0) throw std::runtime_error(name + ": " + test::read_file(log));
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<test::Process> process_;
  int port_ = 0;
};

class DnsResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::string(CLUSTERD_TEST_DNSMASQ).find("NOTFOUND") != std::string::npos) return;
    dir_ = new test::TempDir();
    dnsmasq_ = new Dnsmasq(*dir_, "dnsmasq", "127.0.0.1,::1");
  }
  static void TearDownTestSuite() {
    delete dnsmasq_;
    dnsmasq_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!dnsmasq_) GTEST_SKIP() << "dnsmasq is not installed";
  }

  static std::string server() { return "127.0.0.1:" + std::to_string(dnsmasq_->port()); }

  struct Outcome {
    int calls = 0;
    DnsResolver::Result result;
  };
  static DnsResolver::Done record(Outcome &outcome) {
    return [&outcome](const DnsResolver::Result &result) {
      ++outcome.calls;
      outcome.result = result;
    };
  }

  DnsResolver::Result resolve(DnsResolver &resolver, DnsResolver::Query query) {
    Outcome outcome;
    resolver.resolve(std::move(query), record(outcome));
    EXPECT_EQ(outcome.calls, 0) << "done ran inline";
    EXPECT_TRUE(run_until(
        io_, [&] { return outcome.calls > 0; }, 15s));
    EXPECT_EQ(outcome.calls, 1);
    return outcome.result;
  }
  DnsResolver::Result resolve(int type, const std::string &name, std::string server_text = "",
                              std::chrono::milliseconds timeout = 5s) {
    return resolve(resolver_, {type, name, server_text.empty() ? server() : server_text, timeout});
  }

  boost::asio::io_context io_;
  DnsResolver resolver_{io_};

  static inline test::TempDir *dir_ = nullptr;
  static inline Dnsmasq *dnsmasq_ = nullptr;
};

// ---- answers ----------------------------------------------------------------------------

TEST_F(DnsResolverTest, ARecord) {
  DnsResolver::Result result = resolve(1, "app.test");
  ASSERT_EQ(result.status, CLUSTERD_OK) << result.error;
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].type, 1);
  EXPECT_EQ(result.records[0].address, "198.18.0.1");
  EXPECT_EQ(result.records[0].ttl, 30u);
  EXPECT_EQ(result.error, "");
}

TEST_F(DnsResolverTest, AaaaRecordIsCompressedText) {
  DnsResolver::Result result = resolve(28, "app.test");
  ASSERT_EQ(result.status, CLUSTERD_OK) << result.error;
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].type, 28);
  EXPECT_EQ(result.records[0].address, "2001:db8::1");
  EXPECT_EQ(result.records[0].ttl, 30u);
}

TEST_F(DnsResolverTest, SeveralAddressesCnameAndOwnTtl) {
  DnsResolver::Result multi = resolve(1, "multi.test");
  ASSERT_EQ(multi.status, CLUSTERD_OK) << multi.error;
  std::vector<std::string> addresses;
  for (const auto &record : multi.records) addresses.push_back(record.address);
  std::sort(addresses.begin(), addresses.end());
  EXPECT_EQ(addresses, (std::vector<std::string>{"198.18.0.2", "198.18.0.3"}));

  DnsResolver::Result alias = resolve(1, "alias.test");
  ASSERT_EQ(alias.status, CLUSTERD_OK) << alias.error;
  ASSERT_EQ(alias.records.size(), 1u);
  EXPECT_EQ(alias.records[0].address, "198.18.0.1");

  DnsResolver::Result ttl = resolve(1, "ttl.test.");  // trailing dot: fine too
  ASSERT_EQ(ttl.status, CLUSTERD_OK) << ttl.error;
  ASSERT_EQ(ttl.records.size(), 1u);
  EXPECT_EQ(ttl.records[0].ttl, 77u);
}

TEST_F(DnsResolverTest, SrvRecords) {
  DnsResolver::Result result = resolve(33, "_app._tcp.svc.test");
  ASSERT_EQ(result.status, CLUSTERD_OK) << result.error;
  ASSERT_EQ(result.records.size(), 2u);
  auto records = result.records;
  std::sort(records.begin(), records.end(),
            [](const auto &a, const auto &b) { return a.priority < b.priority; });
  EXPECT_EQ(records[0].type, 33);
  EXPECT_EQ(records[0].target, "node1.test");
  EXPECT_EQ(records[0].port, 4369);
  EXPECT_EQ(records[0].priority, 10);
  EXPECT_EQ(records[0].weight, 5);
  EXPECT_EQ(records[0].ttl, 30u);
  EXPECT_EQ(records[0].address, "");
  EXPECT_EQ(records[1].target, "node2.test");
  EXPECT_EQ(records[1].port, 4370);
  EXPECT_EQ(records[1].priority, 20);
  EXPECT_EQ(records[1].weight, 7);
}

TEST_F(DnsResolverTest, TruncatedAnswerIsRetriedOverTcp) {
  DnsResolver::Result result = resolve(33, "_big._tcp.svc.test");
  ASSERT_EQ(result.status, CLUSTERD_OK) << result.error;
  ASSERT_EQ(result.records.size(), 30u);
  std::vector<int> ports;
  for (const auto &record : result.records) {
    ports.push_back(record.port);
    EXPECT_EQ(record.target,
              "node-" + std::to_string(record.port - 5000) + ".a-rather-long-service-name.test");
  }
  std::sort(ports.begin(), ports.end());
  EXPECT_EQ(ports.front(), 5000);
  EXPECT_EQ(ports.back(), 5029);
  EXPECT_TRUE(test::nothing_armed(io_));
}

TEST_F(DnsResolverTest, NxdomainIsNotFound) {
  DnsResolver::Result result = resolve(1, "nope.test");
  EXPECT_EQ(result.status, CLUSTERD_E_NOT_FOUND);
  EXPECT_TRUE(result.records.empty());
  EXPECT_TRUE(contains(result.error, "nope.test")) << result.error;
  EXPECT_TRUE(contains(result.error, server())) << result.error;
  EXPECT_EQ(resolve(33, "_nope._tcp.svc.test").status, CLUSTERD_E_NOT_FOUND);
}

TEST_F(DnsResolverTest, NodataIsOkAndEmpty) {
  DnsResolver::Result result = resolve(28, "v4only.test");
  EXPECT_EQ(result.status, CLUSTERD_OK) << result.error;
  EXPECT_TRUE(result.records.empty());
}

TEST_F(DnsResolverTest, Ipv6Server) {
  DnsResolver::Result result = resolve(1, "app.test", "[::1]:" + std::to_string(dnsmasq_->port()));
  ASSERT_EQ(result.status, CLUSTERD_OK) << result.error;
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].address, "198.18.0.1");
}

TEST_F(DnsResolverTest, SystemResolverUsesResolvConfAndSearchList) {
  // resolv.conf has no port (c-ares 1.18 ignores "ADDR:PORT" there), so this needs a dnsmasq
  // on port 53 of a loopback address of its own; our own resolv.conf points there, so
  // nothing goes to the machine's resolver.
  if (geteuid() != 0) GTEST_SKIP() << "needs root to serve DNS on port 53";
  std::unique_ptr<Dnsmasq> on_port_53;
  try {
    on_port_53 = std::make_unique<Dnsmasq>(*dir_, "dnsmasq-53", "127.53.0.1", 53);
  } catch (const std::exception &e) {
    GTEST_SKIP() << "cannot serve DNS on 127.53.0.1:53: " << e.what();
  }
  const std::string resolv_conf = *dir_ / "resolv.conf";
  std::ofstream(resolv_conf) << "nameserver 127.53.0.1\nsearch test\n";
  DnsResolver resolver(io_, resolv_conf);
  DnsResolver::Result result = resolve(resolver, {1, "app", "", 5s});
  ASSERT_EQ(result.status, CLUSTERD_OK) << result.error;
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].address, "198.18.0.1");
  result = resolve(resolver, {33, "_app._tcp.svc.test.", "", 5s});
  EXPECT_EQ(result.status, CLUSTERD_OK) << result.error;
  EXPECT_EQ(result.records.size(), 2u);
  result = resolve(resolver, {1, "nope.test", "", 5s});  // and nope.test.test
  EXPECT_EQ(result.status, CLUSTERD_E_NOT_FOUND) << result.error;
  EXPECT_TRUE(contains(result.error, "system resolver")) << result.error;
}

TEST_F(DnsResolverTest, SystemResolverFollowsResolvConfChanges) {
  // Nothing listens on 127.53.0.2/3:53 (connection refused); what matters is which address
  // the system channel uses after the file changed.
  const std::string resolv_conf = *dir_ / "resolv-changing.conf";
  std::ofstream(resolv_conf) << "nameserver 127.53.0.2\n";
  DnsResolver resolver(io_, resolv_conf);
  DnsResolver::Result result = resolve(resolver, {1, "app.test.", "", 2s});
  EXPECT_NE(result.status, CLUSTERD_OK);
  if (geteuid() != 0) return;
  Dnsmasq on_port_53(*dir_, "dnsmasq-53b", "127.53.0.3", 53);
  std::ofstream(resolv_conf) << "nameserver 127.53.0.3\n# changed\n";
  result = resolve(resolver, {1, "app.test.", "", 5s});
  EXPECT_EQ(result.status, CLUSTERD_OK) << result.error;
}

TEST_F(DnsResolverTest, ManyParallelQueries) {
  constexpr int kCount = 30;
  std::vector<Outcome> outcomes(kCount);
  for (int i = 0; i < kCount; ++i) {
    static const int types[] = {1, 28, 33};
    const int type = types[i % 3];
    resolver_.resolve({type, type == 33 ? "_app._tcp.svc.test" : "app.test", server(), 5s},
                      record(outcomes[i]));
  }
  EXPECT_EQ(resolver_.active(), static_cast<std::size_t>(kCount));
  ASSERT_TRUE(run_until(io_, [&] {
    return std::all_of(outcomes.begin(), outcomes.end(), [](auto &o) { return o.calls > 0; });
  }));
  for (const auto &outcome : outcomes) {
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.result.status, CLUSTERD_OK) << outcome.result.error;
    EXPECT_FALSE(outcome.result.records.empty());
  }
  EXPECT_EQ(resolver_.active(), 0u);
}

// ---- failures ---------------------------------------------------------------------------

TEST_F(DnsResolverTest, SilentServerTimesOutWithinDeadline) {
  test::LoopbackSocket silent(SOCK_DGRAM);  // bound, never read
  const std::string where = "127.0.0.1:" + std::to_string(silent.port());
  const auto start = test::Clock::now();
  DnsResolver::Result result = resolve(1, "app.test", where, 300ms);
  const auto elapsed = test::Clock::now() - start;
  EXPECT_EQ(result.status, CLUSTERD_E_TIMEOUT);
  EXPECT_TRUE(contains(result.error, "app.test")) << result.error;
  EXPECT_TRUE(contains(result.error, where)) << result.error;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);
}

TEST_F(DnsResolverTest, PortWithoutServerFailsWithinDeadline) {
  const int port = test::LoopbackSocket(SOCK_DGRAM).port();  // closed again at once
  const auto start = test::Clock::now();
  DnsResolver::Result result = resolve(1, "app.test", "127.0.0.1:" + std::to_string(port), 1s);
  EXPECT_TRUE(result.status == CLUSTERD_E_TIMEOUT || result.status == CLUSTERD_E_IO)
      << result.status << " " << result.error;
  EXPECT_LT(test::Clock::now() - start, 3s);
}

TEST_F(DnsResolverTest, LateAnswerAfterDeadlineIsIgnored) {
  test::LoopbackSocket silent(SOCK_DGRAM);
  DnsResolver::Result result =
      resolve(1, "app.test", "127.0.0.1:" + std::to_string(silent.port()), 200ms);
  ASSERT_EQ(result.status, CLUSTERD_E_TIMEOUT);

  // Answer now: the query bytes with the "response" bit set (an empty NOERROR answer).
  unsigned char packet[512];
  sockaddr_storage from{};
  socklen_t from_length = sizeof from;
  ssize_t length = recvfrom(silent.fd(), packet, sizeof packet, MSG_DONTWAIT,
                            reinterpret_cast<sockaddr *>(&from), &from_length);
  ASSERT_GT(length, 12);
  packet[2] |= 0x80;
  ASSERT_EQ(sendto(silent.fd(), packet, static_cast<size_t>(length), 0,
                   reinterpret_cast<sockaddr *>(&from), from_length),
            length);
  // c-ares takes the answer and ends its query; ours stays finished, done ran once.
  EXPECT_EQ(test::wakeups_while_idle(io_), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(resolve(1, "app.test").status, CLUSTERD_OK);
}

TEST_F(DnsResolverTest, InvalidArgumentsFailAsynchronously) {
  for (std::string bad : {"nonsense", "dns.example.com", "1.2.3.4:99999", "1.2.3.4:0", "1.2.3.4:",
                          "1.2.3.4:53x", "[::1", "[::1]x", "[::1]:", "[1.2.3.4]:53", "::1:53:x"}) {
    DnsResolver::Result result = resolve(1, "app.test", bad);
    EXPECT_EQ(result.status, CLUSTERD_E_INVALID_ARG) << bad;
    EXPECT_TRUE(contains(result.error, bad)) << result.error;
  }
  EXPECT_EQ(resolve(5, "app.test").status, CLUSTERD_E_INVALID_ARG);  // CNAME: unsupported
  EXPECT_EQ(resolve(1, "").status, CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(resolve(1, "app.test", server(), 0ms).status, CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(resolve(1, std::string(300, 'a')).status, CLUSTERD_E_INVALID_ARG);
}

// ---- cancel and destruction -------------------------------------------------------------

TEST_F(DnsResolverTest, Cancel) {
  test::LoopbackSocket silent(SOCK_DGRAM);
  const std::string where = "127.0.0.1:" + std::to_string(silent.port());
  Outcome before_loop, while_waiting, finished;
  resolver_.cancel(resolver_.resolve({1, "app.test", where, 5s}, record(before_loop)));
  std::uint64_t id = resolver_.resolve({1, "app.test", where, 300ms}, record(while_waiting));
  io_.restart();
  io_.run_for(50ms);
  EXPECT_EQ(resolver_.active(), 1u);
  resolver_.cancel(id);
  resolver_.cancel(id);
  resolver_.cancel(987654321u);
  EXPECT_EQ(resolver_.active(), 0u);
  io_.restart();
  io_.run_for(500ms);  // past the 300 ms deadline: still nothing
  EXPECT_EQ(before_loop.calls, 0);
  EXPECT_EQ(while_waiting.calls, 0);

  id = resolver_.resolve({1, "app.test", server(), 5s}, record(finished));
  ASSERT_TRUE(run_until(io_, [&] { return finished.calls > 0; }));
  resolver_.cancel(id);  // finished: no-op
  EXPECT_EQ(finished.calls, 1);
}

TEST_F(DnsResolverTest, CancelFromAnotherQueriesDone) {
  test::LoopbackSocket silent(SOCK_DGRAM);
  Outcome slow;
  std::uint64_t slow_id = resolver_.resolve(
      {1, "app.test", "127.0.0.1:" + std::to_string(silent.port()), 300ms}, record(slow));
  int fast_calls = 0;
  resolver_.resolve({1, "app.test", server(), 5s}, [&](const DnsResolver::Result &) {
    ++fast_calls;
    resolver_.cancel(slow_id);
  });
  ASSERT_TRUE(run_until(io_, [&] { return fast_calls > 0; }));
  EXPECT_EQ(resolver_.active(), 0u);
  io_.restart();
  io_.run_for(500ms);
  EXPECT_EQ(slow.calls, 0);
}

TEST_F(DnsResolverTest, DestroyWithQueriesInFlight) {
  test::LoopbackSocket silent(SOCK_DGRAM);
  boost::asio::io_context io;
  auto resolver = std::make_unique<DnsResolver>(io);
  int calls = 0;
  auto count = [&](const DnsResolver::Result &) { ++calls; };
  resolver->resolve({1, "app.test", "127.0.0.1:" + std::to_string(silent.port()), 5s}, count);
  resolver->resolve({1, "app.test", server(), 5s}, count);      // sent, answer not yet read
  resolver->resolve({1, "app.test", "bad server", 5s}, count);  // failure already posted
  resolver.reset();
  EXPECT_TRUE(test::nothing_armed(io));
  EXPECT_EQ(calls, 0);
}

TEST_F(DnsResolverTest, DestroyFromDone) {
  test::LoopbackSocket silent(SOCK_DGRAM);
  auto resolver = std::make_unique<DnsResolver>(io_);
  int other_calls = 0;
  resolver->resolve({1, "app.test", "127.0.0.1:" + std::to_string(silent.port()), 5s},
                    [&](const DnsResolver::Result &) { ++other_calls; });
  bool destroyed = false;
  resolver->resolve({1, "app.test", server(), 5s}, [&](const DnsResolver::Result &) {
    resolver.reset();
    destroyed = true;
  });
  ASSERT_TRUE(run_until(io_, [&] { return destroyed; }));
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(other_calls, 0);
}

TEST_F(DnsResolverTest, IdleResolverCausesNoWakeups) {
  EXPECT_EQ(resolve(1, "app.test").status, CLUSTERD_OK);
  EXPECT_EQ(resolve(33, "_app._tcp.svc.test").status, CLUSTERD_OK);
  EXPECT_EQ(resolver_.active(), 0u);
  EXPECT_EQ(test::wakeups_while_idle(io_), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
}

}  // namespace
}  // namespace clusterd::services
