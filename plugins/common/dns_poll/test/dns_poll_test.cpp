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

TEST(DnsPollTiming, TtlRuleWhenPollingIntervalIsNotSet) {
  const milliseconds five(5000);
  EXPECT_EQ(dns::next_delay(five, false, 30u), milliseconds(30000));  // wait out the TTL
  EXPECT_EQ(dns::next_delay(five, false, 0u), five);  // never sooner than the interval
  EXPECT_EQ(dns::next_delay(five, false, 2u), five);
  EXPECT_EQ(dns::next_delay(five, false, std::nullopt), five);  // no records, no TTL
  EXPECT_EQ(dns::next_delay(five, false, 0x7fffffffu), milliseconds(0x7fffffffLL * 1000));
}

TEST(DnsPollTiming, PollingIntervalWinsWhenSet) {
  EXPECT_EQ(dns::next_delay(milliseconds(200), true, 3600u), milliseconds(200));
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
