// The DNS strategies' pure core: node names as libcluster builds them, the re-query rule, and
// the checks run at init.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dns_poll.hpp"

namespace {

namespace dns = clusterd::dns_poll;
using std::chrono::milliseconds;

clusterd::DnsRecord address(uint32_t type, std::string text, uint32_t ttl = 30) {
  clusterd::DnsRecord r;
  r.type = type;
  r.ttl = ttl;
  r.address = std::move(text);
  return r;
}

clusterd::DnsRecord srv(std::string target, uint32_t ttl = 30) {
  clusterd::DnsRecord r;
  r.type = CLUSTERD_DNS_SRV;
  r.ttl = ttl;
  r.port = 4369;
  r.target = std::move(target);
  return r;
}

TEST(DnsPollNames, AddressesAsLibclusterDnsPollTest) {
  // libcluster's test/dns_poll_test.exs: A + AAAA results.
  const auto nodes = dns::node_names(
      "node", {address(CLUSTERD_DNS_A, "10.0.0.1"), address(CLUSTERD_DNS_A, "10.0.0.2"),
               address(CLUSTERD_DNS_AAAA, "2a09:8280:1:a270:b8f5:b9f7:8891:f3")});
  EXPECT_EQ(nodes, (std::vector<std::string>{"node@10.0.0.1", "node@10.0.0.2",
                                             "node@2a09:8280:1:a270:b8f5:b9f7:8891:f3"}));
}

TEST(DnsPollNames, SrvTargetsSortedDeduplicatedAndUnusableOnesSkipped) {
  const auto nodes =
      dns::node_names("app", {srv("myapp-1.myapp-headless.default.svc.cluster.local"),
                              srv("myapp-0.myapp-headless.default.svc.cluster.local"),
                              srv("myapp-0.myapp-headless.default.svc.cluster.local"), srv("."),
                              srv(""), srv("bad host"), srv("x@y"), srv(std::string("ctl\x01"))});
  EXPECT_EQ(nodes,
            (std::vector<std::string>{"app@myapp-0.myapp-headless.default.svc.cluster.local",
                                      "app@myapp-1.myapp-headless.default.svc.cluster.local"}));
}

TEST(DnsPollNames, EmptyAnswerIsNoNodes) {
  EXPECT_TRUE(dns::node_names("app", std::vector<clusterd::DnsRecord>{}).empty());
}

TEST(DnsPollLookups, IpFamilies) {
  const auto both = dns::address_lookups("q.example", "both");
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].type, uint32_t{CLUSTERD_DNS_A});  // A then AAAA, as libcluster
  EXPECT_EQ(both[1].type, uint32_t{CLUSTERD_DNS_AAAA});
  EXPECT_EQ(both[1].name, "q.example");
  EXPECT_EQ(dns::address_lookups("q", "ipv4").size(), 1u);
  EXPECT_EQ(dns::address_lookups("q", "ipv6")[0].type, uint32_t{CLUSTERD_DNS_AAAA});
  EXPECT_THROW(dns::address_lookups("q", "ipv5"), clusterd::Error);
}

TEST(DnsPollTiming, EveryPollingIntervalByDefault) {
  // libcluster: polling_interval (5 s unless set), whatever the TTLs.
  const milliseconds five(5000);
  EXPECT_EQ(dns::next_delay(five, false, 30u), five);
  EXPECT_EQ(dns::next_delay(milliseconds(200), false, 3600u), milliseconds(200));
  EXPECT_EQ(dns::next_delay(five, false, std::nullopt), five);
}

TEST(DnsPollTiming, FollowTtlWaitsOutTheTtlButNotLessThanTheInterval) {
  const milliseconds five(5000);
  EXPECT_EQ(dns::next_delay(five, true, 30u), milliseconds(30000));  // wait out the TTL
  EXPECT_EQ(dns::next_delay(five, true, 0u), five);  // never sooner than the interval
  EXPECT_EQ(dns::next_delay(five, true, 2u), five);
  EXPECT_EQ(dns::next_delay(five, true, std::nullopt), five);  // no records, no TTL
  EXPECT_EQ(dns::next_delay(five, true, 0x7fffffffu), milliseconds(0x7fffffffLL * 1000));
  EXPECT_EQ(dns::next_delay(milliseconds(60000), true, 5u), milliseconds(60000));
}

TEST(DnsPollTiming, MinTtl) {
  EXPECT_EQ(dns::min_ttl({}), std::nullopt);
  EXPECT_EQ(dns::min_ttl({address(CLUSTERD_DNS_A, "10.0.0.1", 60), srv("a", 7),
                          address(CLUSTERD_DNS_AAAA, "::1", 9)}),
            std::optional<uint32_t>(7));
}

TEST(DnsPollKubernetes, ServiceNameAndClusterDomain) {
  EXPECT_EQ(dns::kubernetes_service_name("myapp-headless", "default", "cluster.local."),
            "myapp-headless.default.svc.cluster.local.");
  ASSERT_EQ(::setenv("CLUSTER_DOMAIN", "k8s.example", 1), 0);
  EXPECT_EQ(dns::default_cluster_domain(), "k8s.example");
  ASSERT_EQ(::setenv("CLUSTER_DOMAIN", "", 1), 0);
  EXPECT_EQ(dns::default_cluster_domain(), "cluster.local.");
  ASSERT_EQ(::unsetenv("CLUSTER_DOMAIN"), 0);
  EXPECT_EQ(dns::default_cluster_domain(), "cluster.local.");
}

TEST(DnsPollChecks, ResolverSyntaxMatchesTheHostsDnsService) {
  std::string why;
  for (const char *good :
       {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]", "[::1]:53", "fd00::53", "[fd00::53]:65535"})
    EXPECT_TRUE(dns::valid_resolver(good, why)) << good << ": " << why;
  for (const char *bad :
       {"", "dns.example", "dns.example:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:x", "[::1", "[::1]x", "[::1]:", "[127.0.0.1]:53", "1.2.3:53"}) {
    why.clear();
    EXPECT_FALSE(dns::valid_resolver(bad, why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

}  // namespace

namespace {

TEST(DnsPollPartial, MergeAddsAndNeverDrops) {
  EXPECT_EQ(dns::merge_partial({"a@1", "a@3"}, {"a@2", "a@3"}),
            (std::vector<std::string>{"a@1", "a@2", "a@3"}));
  EXPECT_EQ(dns::merge_partial({}, {"a@2"}), (std::vector<std::string>{"a@2"}));
}

}  // namespace

// ---- one round's outcome: a failed lookup keeps its nodes, the others are applied -------------

namespace {

using Kept = std::vector<std::vector<std::string>>;
using Names = std::vector<std::string>;

clusterd::DnsResult ok(std::vector<clusterd::DnsRecord> records) {
  clusterd::DnsResult r;
  r.status = CLUSTERD_OK;
  r.records = std::move(records);
  return r;
}

clusterd::DnsResult failed(std::string why, clusterd::Status status = CLUSTERD_E_IO) {
  clusterd::DnsResult r;
  r.status = status;
  r.error = std::move(why);
  return r;
}

const std::vector<dns::Lookup> kBoth = dns::address_lookups("app.example", "both");

TEST(DnsPollRound, AAnsweredAaaaRefusedReportsTheANodes) {
  Kept kept;
  const auto out = dns::apply_round("app", kBoth,
                                    {ok({address(CLUSTERD_DNS_A, "10.0.0.1", 30)}),
                                     failed("DNS AAAA query for 'app.example' via x: refused")},
                                    kept);
  EXPECT_EQ(out.nodes, (Names{"app@10.0.0.1"}));
  EXPECT_EQ(out.failed, 1u);
  EXPECT_EQ(out.failures, "DNS AAAA query for 'app.example' via x: refused");
  EXPECT_EQ(out.records, 1u);
  EXPECT_EQ(out.ttl, std::optional<uint32_t>(30));
}

TEST(DnsPollRound, AFailedLookupKeepsItsNodesTheAnsweredOneAddsAndRemoves) {
  Kept kept;
  dns::apply_round("app", kBoth,
                   {ok({address(CLUSTERD_DNS_A, "10.0.0.1"), address(CLUSTERD_DNS_A, "10.0.0.2")}),
                    ok({address(CLUSTERD_DNS_AAAA, "fd00::1")})},
                   kept);
  // A answers with .2 gone and .3 new; AAAA times out: fd00::1 stays, .2 goes, .3 comes.
  auto out = dns::apply_round(
      "app", kBoth,
      {ok({address(CLUSTERD_DNS_A, "10.0.0.1"), address(CLUSTERD_DNS_A, "10.0.0.3")}),
       failed("", CLUSTERD_E_TIMEOUT)},
      kept);
  EXPECT_EQ(out.nodes, (Names{"app@10.0.0.1", "app@10.0.0.3", "app@fd00::1"}));
  EXPECT_EQ(out.failures, "AAAA lookup of 'app.example': " +
                              std::string(clusterd::status_name(CLUSTERD_E_TIMEOUT)));
  // Every lookup fails: everything is kept (the caller reports discovery_failed).
  out = dns::apply_round("app", kBoth, {failed("a"), failed("b")}, kept);
  EXPECT_EQ(out.failed, 2u);
  EXPECT_EQ(out.failures, "a; b");
  EXPECT_EQ(out.nodes, (Names{"app@10.0.0.1", "app@10.0.0.3", "app@fd00::1"}));
  EXPECT_EQ(out.ttl, std::nullopt);
  // AAAA answers NODATA ("no such records"), A fails: fd00::1 goes, the A nodes stay.
  out = dns::apply_round("app", kBoth, {failed("a"), ok({})}, kept);
  EXPECT_EQ(out.nodes, (Names{"app@10.0.0.1", "app@10.0.0.3"}));
}

TEST(DnsPollRound, SeveralNamesAndSrv) {
  const std::vector<dns::Lookup> lookups = {{CLUSTERD_DNS_SRV, "_a.example"},
                                            {CLUSTERD_DNS_SRV, "_b.example"}};
  Kept kept;
  auto out =
      dns::apply_round("app", lookups, {ok({srv("pod-0"), srv("pod-1")}), ok({srv("x")})}, kept);
  EXPECT_EQ(out.nodes, (Names{"app@pod-0", "app@pod-1", "app@x"}));
  // A node both names give stays while either still has it, even when the other fails.
  out = dns::apply_round("app", lookups, {ok({srv("pod-0")}), failed("b: NXDOMAIN")}, kept);
  EXPECT_EQ(out.nodes, (Names{"app@pod-0", "app@x"}));
  out = dns::apply_round("app", lookups, {failed("a"), ok({srv("pod-0")})}, kept);
  EXPECT_EQ(out.nodes, (Names{"app@pod-0"}));
  EXPECT_EQ(out.failures, "a");
}

TEST(DnsPollRound, CappedAnswerAddsToItsLookupOnly) {
  const std::vector<dns::Lookup> lookups = {{CLUSTERD_DNS_A, "big.example"}};
  Kept kept = {{"app@9.9.9.9"}};
  std::vector<clusterd::DnsRecord> many;
  for (std::size_t i = 0; i < dns::kHostAnswerCap; ++i)
    many.push_back(
        address(CLUSTERD_DNS_A, "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)));
  auto out = dns::apply_round("app", lookups, {ok(many)}, kept);
  EXPECT_EQ(out.capped, "A");
  EXPECT_EQ(out.nodes.size(), dns::kHostAnswerCap + 1);  // 9.9.9.9 kept
  out = dns::apply_round("app", lookups, {ok({address(CLUSTERD_DNS_A, "10.0.0.1")})}, kept);
  EXPECT_EQ(out.capped, "");
  EXPECT_EQ(out.nodes, (Names{"app@10.0.0.1"}));  // a complete answer removes again
}

}  // namespace
