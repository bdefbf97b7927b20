// Tests of the asynchronous EPMD client (plugins/common/epmd/epmd_client.hpp) on a small real
// event loop, against a fake EPMD on 127.0.0.1 / ::1 that answers, truncates, sends garbage,
// sends too much, hangs or refuses.
#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <clusterd/plugin.hpp>

#include "epmd_client.hpp"
#include "epmd_test_support.hpp"

namespace {

using clusterd::epmd::Client;
using clusterd::epmd::NamesOutcome;
using clusterd::epmd::PortOutcome;
using clusterd::epmd::Target;
using clusterd_test::contains;
using clusterd_test::LoopHost;
using epmd_test::FakeEpmd;
using epmd_test::Mode;
using std::chrono::milliseconds;

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR *d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

class EpmdClientTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = open_fds(); }
  void TearDown() override {
    EXPECT_EQ(loop_.registrations(), 0u) << "the client left host registrations behind";
    if (fds_before_ != 0) {
      EXPECT_EQ(open_fds(), fds_before_) << "a socket leaked";
    }
  }

  Target target(uint16_t port, const std::string &host = "127.0.0.1",
                milliseconds timeout = milliseconds(3000)) {
    Target t;
    t.host = host;
    t.port = port;
    t.timeout = timeout;
    t.hosts_file = hosts_file_;
    return t;
  }

  NamesOutcome names(const Target &t) {
    std::optional<NamesOutcome> out;
    Client c = Client::names(host_, t, [&](NamesOutcome o) { out = std::move(o); });
    EXPECT_FALSE(out.has_value()) << "done ran inside the starting call";
    EXPECT_TRUE(c.active());
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }));
    EXPECT_FALSE(c.active());
    return out.value_or(NamesOutcome{});
  }
  PortOutcome port2(const Target &t, const std::string &alive) {
    std::optional<PortOutcome> out;
    Client c = Client::port_please2(host_, t, alive, [&](PortOutcome o) { out = std::move(o); });
    EXPECT_FALSE(out.has_value()) << "done ran inside the starting call";
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }));
    return out.value_or(PortOutcome{});
  }

  LoopHost loop_;
  clusterd::Host host_{loop_.table()};
  std::string hosts_file_ = "/nonexistent/hosts";  // no accidental /etc/hosts answers
  std::size_t fds_before_ = 0;
};

TEST_F(EpmdClientTest, NamesFromAnAnsweringEpmd) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}, {"b", 4002}};
  const auto r = names(target(epmd.port()));
  ASSERT_EQ(r.status, CLUSTERD_OK) << r.error();
  ASSERT_EQ(r.names.size(), 2u);
  EXPECT_EQ(r.names[0].name, "a");
  EXPECT_EQ(r.names[1].port, 4002);
  EXPECT_EQ(r.error(), "");
  ASSERT_EQ(epmd.requests.size(), 1u);
  EXPECT_EQ(epmd.requests[0], "n");
}

TEST_F(EpmdClientTest, PortPlease2RegisteredAndNot) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  auto r = port2(target(epmd.port()), "a");
  ASSERT_EQ(r.status, CLUSTERD_OK) << r.error();
  EXPECT_TRUE(r.reply.registered);
  EXPECT_EQ(r.reply.port, 4001);
  EXPECT_EQ(r.reply.name, "a");
  r = port2(target(epmd.port()), "zz");
  ASSERT_EQ(r.status, CLUSTERD_OK) << r.error();
  EXPECT_FALSE(r.reply.registered);
  EXPECT_EQ(epmd.requests, (std::vector<std::string>{"za", "zzz"}));
}

TEST_F(EpmdClientTest, Port2CompletesWithoutEofButNamesNeedsIt) {
  FakeEpmd epmd(loop_, Mode::answer_open);
  epmd.names = {{"a", 4001}};
  const auto p = port2(target(epmd.port()), "a");
  ASSERT_EQ(p.status, CLUSTERD_OK) << p.error();
  EXPECT_EQ(p.reply.port, 4001);
  const auto n = names(target(epmd.port(), "127.0.0.1", milliseconds(500)));
  EXPECT_EQ(n.status, CLUSTERD_E_TIMEOUT);
  EXPECT_TRUE(contains(n.error(), "timed out after 500 ms (reading the reply, 24 bytes so far)"))
      << n.error();
}

TEST_F(EpmdClientTest, DribbledRepliesAreReassembled) {
  FakeEpmd epmd(loop_, Mode::dribble);
  epmd.names = {{"a", 4001}, {"bb", 4002}};
  const auto n = names(target(epmd.port()));
  ASSERT_EQ(n.status, CLUSTERD_OK) << n.error();
  EXPECT_EQ(n.names.size(), 2u);
  const auto p = port2(target(epmd.port()), "bb");
  ASSERT_EQ(p.status, CLUSTERD_OK) << p.error();
  EXPECT_EQ(p.reply.port, 4002);
}

TEST_F(EpmdClientTest, TruncatedReplies) {
  FakeEpmd epmd(loop_, Mode::truncate);
  epmd.names = {{"a", 4001}};
  for (std::size_t at : {1u, 3u, 6u, 12u}) {
    epmd.truncate_at = at;
    const auto n = names(target(epmd.port()));
    EXPECT_EQ(n.status, CLUSTERD_E_IO) << at;
    EXPECT_TRUE(contains(n.error(), "malformed NAMES reply: truncated")) << n.error();
  }
  for (std::size_t at : {1u, 2u, 11u, 14u}) {
    epmd.truncate_at = at;
    const auto p = port2(target(epmd.port()), "a");
    EXPECT_EQ(p.status, CLUSTERD_E_IO) << at;
    EXPECT_TRUE(contains(p.error(), "malformed PORT2 reply: truncated")) << p.error();
  }
}

TEST_F(EpmdClientTest, Garbage) {
  FakeEpmd epmd(loop_, Mode::raw);
  epmd.raw_reply = "HTTP/1.1 400 Bad Request\r\n\r\n";
  const auto n = names(target(epmd.port()));
  EXPECT_EQ(n.status, CLUSTERD_E_IO);
  EXPECT_EQ(
      n.error().rfind(
          "EPMD at 127.0.0.1:" + std::to_string(epmd.port()) + ": malformed NAMES reply: ", 0),
      0u)
      << n.error();
  const auto p = port2(target(epmd.port()), "a");
  EXPECT_EQ(p.status, CLUSTERD_E_IO);
  EXPECT_TRUE(contains(p.error(), "malformed PORT2 reply: expected PORT2_RESP")) << p.error();
}

TEST_F(EpmdClientTest, OversizedReply) {
  FakeEpmd epmd(loop_, Mode::oversize);
  const auto n = names(target(epmd.port(), "127.0.0.1", milliseconds(10000)));
  EXPECT_EQ(n.status, CLUSTERD_E_IO);
  EXPECT_TRUE(contains(n.error(), "reply larger than 1048576 bytes")) << n.error();
}

TEST_F(EpmdClientTest, HangingEpmdTimesOut) {
  FakeEpmd epmd(loop_, Mode::hang);
  const auto n = names(target(epmd.port(), "127.0.0.1", milliseconds(200)));
  EXPECT_EQ(n.status, CLUSTERD_E_TIMEOUT);
  EXPECT_EQ(n.error(), "EPMD at 127.0.0.1:" + std::to_string(epmd.port()) +
                           ": timed out after 200 ms (waiting for the reply)");
}

TEST_F(EpmdClientTest, NeverAcceptedTimesOut) {
  FakeEpmd epmd(loop_, Mode::no_accept);
  const auto p = port2(target(epmd.port(), "127.0.0.1", milliseconds(200)), "a");
  EXPECT_EQ(p.status, CLUSTERD_E_TIMEOUT);
  EXPECT_TRUE(contains(p.error(), "timed out after 200 ms")) << p.error();
}

TEST_F(EpmdClientTest, ClosedWithoutReply) {
  FakeEpmd epmd(loop_, Mode::close_at_once);
  const auto n = names(target(epmd.port()));
  EXPECT_EQ(n.status, CLUSTERD_E_IO);
  // Either the FIN arrives before the request (EOF) or after it (RST).
  EXPECT_TRUE(contains(n.error(), "closed the connection without replying") ||
              contains(n.error(), "connection reset"))
      << n.error();
}

TEST_F(EpmdClientTest, Refused) {
  FakeEpmd epmd(loop_, Mode::refuse);
  const auto n = names(target(epmd.port()));
  EXPECT_EQ(n.status, CLUSTERD_E_UNREACHABLE);
  EXPECT_EQ(n.error(), "EPMD at 127.0.0.1:" + std::to_string(epmd.port()) + ": connection refused");
  EXPECT_EQ(n.endpoint, "127.0.0.1:" + std::to_string(epmd.port()));
  EXPECT_EQ(n.reason, "connection refused");
}

TEST_F(EpmdClientTest, Ipv6Literals) {
  if (!epmd_test::have_ipv6_loopback()) GTEST_SKIP() << "no ::1 on this machine";
  FakeEpmd epmd(loop_, Mode::answer, "::1");
  epmd.names = {{"v6", 4001}};
  for (const std::string host : {"::1", "[::1]"}) {
    const auto n = names(target(epmd.port(), host));
    ASSERT_EQ(n.status, CLUSTERD_OK) << n.error();
    ASSERT_EQ(n.names.size(), 1u);
    EXPECT_EQ(n.names[0].name, "v6");
    EXPECT_EQ(n.endpoint, "[::1]:" + std::to_string(epmd.port()));
  }
  EXPECT_TRUE(loop_.dns_queries.empty()) << "literals are never looked up";
}

TEST_F(EpmdClientTest, NameThroughTheDnsService) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  loop_.dns_answers[{"epmd.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
  loop_.dns_answers[{"epmd.test", CLUSTERD_DNS_AAAA}] = {CLUSTERD_OK, {}, false};  // NODATA
  const auto n = names(target(epmd.port(), "epmd.test"));
  ASSERT_EQ(n.status, CLUSTERD_OK) << n.error();
  EXPECT_EQ(n.names.size(), 1u);
  EXPECT_EQ(loop_.dns_queries.size(), 2u) << "A and AAAA";
}

TEST_F(EpmdClientTest, NameWithSeveralAddresses) {
  if (!epmd_test::have_ipv6_loopback()) GTEST_SKIP() << "no ::1 on this machine";
  // The name has a dead IPv4 address and a live IPv6 one: IPv4 is tried first, fails (refused),
  // then IPv6 answers.
  const uint16_t port = epmd_test::port_free_on_both();
  ASSERT_NE(port, 0);
  loop_.dns_answers[{"dual.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {"127.0.0.1"}, false};
  loop_.dns_answers[{"dual.test", CLUSTERD_DNS_AAAA}] = {CLUSTERD_OK, {"::1"}, false};
  {
    FakeEpmd v6(loop_, Mode::answer, "::1", port);
    v6.names = {{"six", 4001}};
    FakeEpmd v4_refusing(loop_, Mode::refuse, "127.0.0.1", port);
    const auto n = names(target(port, "dual.test"));
    ASSERT_EQ(n.status, CLUSTERD_OK) << n.error();
    EXPECT_EQ(n.names[0].name, "six");
  }
  // Both refusing: every address is named in the error.
  FakeEpmd v6_refusing(loop_, Mode::refuse, "::1", port);
  FakeEpmd v4_refusing(loop_, Mode::refuse, "127.0.0.1", port);
  const auto bad = names(target(port, "dual.test"));
  EXPECT_EQ(bad.status, CLUSTERD_E_UNREACHABLE);
  EXPECT_EQ(bad.reason, "connection refused (127.0.0.1); connection refused (::1)");
}

TEST_F(EpmdClientTest, NameFromTheHostsFile) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  char path[] = "/tmp/epmd_hosts_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "# test\n10.9.9.9 other\n127.0.0.1\tMyHost.Test  alias # comment\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  hosts_file_ = path;
  const auto n = names(target(epmd.port(), "myhost.test"));
  const auto m = names(target(epmd.port(), "ALIAS"));
  unlink(path);
  ASSERT_EQ(n.status, CLUSTERD_OK) << n.error();
  ASSERT_EQ(m.status, CLUSTERD_OK) << m.error();
  EXPECT_TRUE(loop_.dns_queries.empty()) << "found in the hosts file: no DNS";
}

TEST_F(EpmdClientTest, UnknownName) {
  const auto n = names(target(4369, "nosuch.test"));
  EXPECT_EQ(n.status, CLUSTERD_E_NOT_FOUND);
  EXPECT_EQ(n.error(), "EPMD at nosuch.test:4369: cannot resolve nosuch.test: no such host");
  loop_.dns_answers[{"empty.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {}, false};
  loop_.dns_answers[{"empty.test", CLUSTERD_DNS_AAAA}] = {CLUSTERD_OK, {}, false};
  const auto e = names(target(4369, "empty.test"));
  EXPECT_EQ(e.status, CLUSTERD_E_NOT_FOUND);
  EXPECT_TRUE(contains(e.reason, "no A or AAAA record")) << e.reason;
  const auto bad = names(target(4369, "bad name"));
  EXPECT_EQ(bad.status, CLUSTERD_E_NOT_FOUND);
  EXPECT_TRUE(contains(bad.reason, "invalid host name")) << bad.reason;
}

TEST_F(EpmdClientTest, DnsFailureAndTimeout) {
  loop_.dns_answers[{"servfail.test", CLUSTERD_DNS_A}] = {CLUSTERD_E_IO, {}, false};
  loop_.dns_answers[{"servfail.test", CLUSTERD_DNS_AAAA}] = {CLUSTERD_E_IO, {}, false};
  const auto f = names(target(4369, "servfail.test"));
  EXPECT_EQ(f.status, CLUSTERD_E_IO);
  EXPECT_TRUE(contains(f.reason, "cannot resolve servfail.test: fake DNS")) << f.reason;
  loop_.dns_answers[{"slow.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {}, true};
  loop_.dns_answers[{"slow.test", CLUSTERD_DNS_AAAA}] = {CLUSTERD_OK, {}, true};
  const auto t = names(target(4369, "slow.test", milliseconds(100)));
  EXPECT_EQ(t.status, CLUSTERD_E_TIMEOUT);
  EXPECT_EQ(t.reason, "timed out after 100 ms (resolving the host name)");
  // TearDown checks that both DNS queries were cancelled.
}

TEST_F(EpmdClientTest, MissingServices) {
  loop_.offer_dns = false;
  const auto n = names(target(4369, "epmd.test"));
  EXPECT_EQ(n.status, CLUSTERD_E_UNSUPPORTED);
  EXPECT_TRUE(contains(n.reason, "clusterd.dns/1")) << n.reason;
  FakeEpmd epmd(loop_);
  loop_.offer_fd = false;
  const auto m = names(target(epmd.port()));
  EXPECT_NE(m.status, CLUSTERD_OK);
  EXPECT_TRUE(contains(m.reason, "clusterd.fd/1")) << m.reason;
}

TEST_F(EpmdClientTest, ResetCancelsEverything) {
  FakeEpmd epmd(loop_, Mode::hang);
  bool called = false;
  Client c = Client::names(host_, target(epmd.port()), [&](NamesOutcome) { called = true; });
  ASSERT_TRUE(loop_.run_until([&] { return epmd.requests.size() == 1; }));
  EXPECT_GT(loop_.registrations(), 0u);
  c.reset();
  EXPECT_FALSE(c.active());
  EXPECT_EQ(loop_.registrations(), 0u);
  // Every stage: before the deferred start, while resolving (DNS), while connecting.
  c = Client::names(host_, target(epmd.port()), [&](NamesOutcome) { called = true; });
  c.reset();
  loop_.dns_answers[{"slow.test", CLUSTERD_DNS_A}] = {CLUSTERD_OK, {}, true};
  c = Client::names(host_, target(4369, "slow.test"), [&](NamesOutcome) { called = true; });
  ASSERT_TRUE(loop_.run_until([&] { return loop_.dns_queries.size() == 2; }));
  {
    Client moved = std::move(c);  // moving keeps the request; destroying cancels it
    EXPECT_TRUE(moved.active());
    EXPECT_FALSE(c.active());
  }
  EXPECT_EQ(loop_.registrations(), 0u);
  FakeEpmd silent(loop_, Mode::no_accept);
  c = Client::port_please2(host_, target(silent.port()), "a", [&](PortOutcome) { called = true; });
  c = Client();  // assigning cancels the old request
  loop_.run_for(milliseconds(50));
  EXPECT_FALSE(called);
}

TEST_F(EpmdClientTest, DestroyingTheClientInsideDone) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  std::optional<Client> c;
  int calls = 0;
  c.emplace(Client::names(host_, target(epmd.port()), [&](NamesOutcome o) {
    ++calls;
    EXPECT_EQ(o.status, CLUSTERD_OK);
    c.reset();  // destroys the Client (and its request state) from inside done
  }));
  ASSERT_TRUE(loop_.run_until([&] { return calls == 1; }));
  // And restarting from inside done.
  Client d;
  int restarts = 0;
  std::function<void(NamesOutcome)> again = [&](NamesOutcome) {
    if (++restarts < 3) d = Client::names(host_, target(epmd.port()), again);
  };
  d = Client::names(host_, target(epmd.port()), again);
  ASSERT_TRUE(loop_.run_until([&] { return restarts == 3; }));
}

TEST_F(EpmdClientTest, ManyInParallel) {
  FakeEpmd epmd(loop_);
  epmd.names = {{"a", 4001}};
  std::vector<Client> clients;
  int ok = 0, done = 0;
  for (int i = 0; i < 50; ++i)
    clients.push_back(Client::port_please2(host_, target(epmd.port()), "a", [&](PortOutcome o) {
      ++done;
      if (o.status == CLUSTERD_OK && o.reply.registered) ++ok;
    }));
  ASSERT_TRUE(loop_.run_until([&] { return done == 50; }));
  EXPECT_EQ(ok, 50);
}

TEST_F(EpmdClientTest, InvalidArguments) {
  auto noop = [](NamesOutcome) {};
  EXPECT_THROW(Client::names(host_, target(4369, ""), noop), clusterd::Error);
  EXPECT_THROW(Client::names(host_, target(4369, "h", milliseconds(0)), noop), clusterd::Error);
  EXPECT_THROW(Client::names(host_, target(4369, "h", clusterd::kInfinite), noop), clusterd::Error);
  EXPECT_THROW(Client::port_please2(host_, target(4369), "a@b", [](PortOutcome) {}),
               clusterd::Error);
  EXPECT_THROW(Client::port_please2(host_, target(4369), "", [](PortOutcome) {}), clusterd::Error);
}

TEST(EpmdClientHelpers, EndpointText) {
  EXPECT_EQ(clusterd::epmd::endpoint_text("10.0.0.1", 4369), "10.0.0.1:4369");
  EXPECT_EQ(clusterd::epmd::endpoint_text("::1", 4369), "[::1]:4369");
  EXPECT_EQ(clusterd::epmd::endpoint_text("[::1]", 1), "[::1]:1");
  EXPECT_EQ(clusterd::epmd::endpoint_text("host.example", 4369), "host.example:4369");
}

TEST(EpmdClientHelpers, HostsFileLookup) {
  const std::string hosts =
      "127.0.0.1 localhost\n"
      "::1 localhost ip6-localhost # v6\n"
      "  10.0.0.5\tdb-1.example.com db-1\r\n"
      "# 10.0.0.6 db-1\n"
      "10.0.0.7 other#db-1\n"
      "10.0.0.8";
  EXPECT_EQ(clusterd::epmd::hosts_file_lookup(hosts, "localhost"),
            (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(clusterd::epmd::hosts_file_lookup(hosts, "DB-1"),
            (std::vector<std::string>{"10.0.0.5"}));
  EXPECT_TRUE(clusterd::epmd::hosts_file_lookup(hosts, "10.0.0.8").empty());
  EXPECT_TRUE(clusterd::epmd::hosts_file_lookup(hosts, "").empty());
  EXPECT_TRUE(clusterd::epmd::hosts_file_lookup("", "localhost").empty());
}

}  // namespace
