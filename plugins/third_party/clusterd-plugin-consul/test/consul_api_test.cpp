// Unit tests of consul_api.cpp: endpoint names, request paths, the blocking-query index rules,
// the reply parsers (shapes of Consul's API documentation, and malformed ones) and the node
// name template.
#include "consul_api.hpp"

#include <gtest/gtest.h>

#include <string>

namespace api = clusterd_consul;

TEST(ConsulApi, EndpointNamesAcceptLibclusterModules) {
  api::Endpoint e{};
  EXPECT_TRUE(api::parse_endpoint("health", e));
  EXPECT_EQ(e, api::Endpoint::health);
  EXPECT_TRUE(api::parse_endpoint("Cluster.Strategy.Consul.Agent", e));
  EXPECT_EQ(e, api::Endpoint::agent);
  EXPECT_TRUE(api::parse_endpoint("Elixir.Cluster.Strategy.Consul.Multisite", e));
  EXPECT_EQ(e, api::Endpoint::multisite);
  EXPECT_TRUE(api::parse_endpoint("Catalog", e));
  EXPECT_EQ(e, api::Endpoint::catalog);
  EXPECT_FALSE(api::parse_endpoint("kv", e));
  EXPECT_FALSE(api::parse_endpoint("Cluster.Strategy.Consul.", e));
}

TEST(ConsulApi, RequestPaths) {
  api::Selection s;
  s.service_name = "my web";
  s.dc = "dc1";
  s.tag = "v1";
  s.filter = "Service.Meta.x == \"y\"";
  s.passing = true;
  EXPECT_EQ(api::request_path(api::Endpoint::health, s),
            "/v1/health/service/my%20web?dc=dc1&tag=v1&filter=Service.Meta.x%20%3D%3D%20%22y%22"
            "&passing=true");
  EXPECT_EQ(api::request_path(api::Endpoint::catalog, s),
            "/v1/catalog/service/my%20web?dc=dc1&tag=v1&filter=Service.Meta.x%20%3D%3D%20%22y%22");
  EXPECT_EQ(api::request_path(api::Endpoint::agent, s),
            "/v1/agent/services?filter=Service.Meta.x%20%3D%3D%20%22y%22");
  EXPECT_EQ(api::blocking_query(0, 5000), "");
  EXPECT_EQ(api::blocking_query(42, 5000), "index=42&wait=5000ms");
}

TEST(ConsulApi, IndexRules) {
  EXPECT_EQ(api::next_index(0, "17"), 17u);
  EXPECT_EQ(api::next_index(17, "17"), 17u);  // a timeout: the same index again
  EXPECT_EQ(api::next_index(17, "9"), 0u);    // backwards: reset
  EXPECT_EQ(api::next_index(0, "0"), 1u);     // never 0
  EXPECT_EQ(api::next_index(5, std::nullopt), std::nullopt);
  EXPECT_EQ(api::next_index(5, "12x"), std::nullopt);
  EXPECT_EQ(api::next_index(5, ""), std::nullopt);
  EXPECT_EQ(api::next_index(5, "-3"), std::nullopt);
  EXPECT_EQ(api::next_index(5, "99999999999999999999999"), std::nullopt);
}

TEST(ConsulApi, HealthFallsBackToTheNodeAddress) {
  std::vector<api::Found> found;
  std::vector<std::string> skipped;
  std::string error;
  ASSERT_TRUE(api::parse_health(
      R"([{"Node":{"Node":"n1","Address":"10.0.0.1","Datacenter":"dc1"},
           "Service":{"ID":"web-1","Service":"web","Address":"","Port":80},"Checks":[]},
          {"Node":{"Node":"n2","Address":"10.0.0.2","Datacenter":"dc1"},
           "Service":{"ID":"web-2","Service":"web","Address":"172.16.0.2"},"Checks":[]},
          {"Node":{"Node":"n3","Address":""},"Service":{"Address":""}}])",
      found, skipped, error))
      << error;
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].address, "10.0.0.1");
  EXPECT_EQ(found[0].datacenter, "dc1");
  EXPECT_EQ(found[1].address, "172.16.0.2");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0], "node n3: no address");
}

TEST(ConsulApi, CatalogPrefersServiceAddress) {
  std::vector<api::Found> found;
  std::vector<std::string> skipped;
  std::string error;
  ASSERT_TRUE(api::parse_catalog(
      R"([{"Node":"a","Address":"192.168.10.10","ServiceAddress":"172.17.0.3","Datacenter":"dc2"},
          {"Node":"b","Address":"192.168.10.11","ServiceAddress":""}])",
      found, skipped, error));
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].address, "172.17.0.3");
  EXPECT_EQ(found[1].address, "192.168.10.11");
}

TEST(ConsulApi, AgentServicesByNameAndTag) {
  std::vector<api::Found> found;
  std::vector<std::string> skipped;
  std::string error;
  const char *json = R"({"redis":{"ID":"redis","Service":"redis","Address":"10.0.0.9"},
      "web-1":{"ID":"web-1","Service":"web","Tags":["v1"],"Address":"10.0.0.7"},
      "web-2":{"ID":"web-2","Service":"web","Tags":["v2"],"Address":"10.0.0.8"},
      "web-3":{"ID":"web-3","Service":"web","Tags":["v1"],"Address":""}})";
  ASSERT_TRUE(api::parse_agent_services(json, "web", "v1", found, skipped, error));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].address, "10.0.0.7");
  ASSERT_EQ(skipped.size(), 1u);
  ASSERT_TRUE(api::parse_agent_services(json, "web", "", found, skipped, error));
  EXPECT_EQ(found.size(), 2u);
}

TEST(ConsulApi, MalformedRepliesAreErrorsNotCrashes) {
  std::vector<api::Found> found;
  std::vector<std::string> skipped;
  std::string error;
  EXPECT_FALSE(api::parse_health(R"([{"Node": {"Node": "n1", "Address": )", found, skipped, error));
  EXPECT_NE(error.find("not JSON"), std::string::npos);
  EXPECT_FALSE(api::parse_health(R"({"Node":{}})", found, skipped, error));
  EXPECT_NE(error.find("expected a JSON array"), std::string::npos);
  EXPECT_FALSE(api::parse_health(R"([{"Node":"x","Service":{}}])", found, skipped, error));
  EXPECT_FALSE(api::parse_catalog(R"([{"Address":42}])", found, skipped, error));
  EXPECT_NE(error.find("Address is not a string"), std::string::npos);
  EXPECT_FALSE(
      api::parse_catalog(std::string(1000, '[') + std::string(1000, ']'), found, skipped, error));
  EXPECT_NE(error.find("nested deeper"), std::string::npos);
  EXPECT_FALSE(api::parse_catalog("[\"" + std::string(2000, 'a') + "\"]", found, skipped, error));
  std::vector<std::string> dcs;
  EXPECT_TRUE(api::parse_datacenters(R"(["dc1","dc2"])", dcs, error));
  EXPECT_EQ(dcs.size(), 2u);
  EXPECT_FALSE(api::parse_datacenters(R"(["dc1",2])", dcs, error));
  EXPECT_TRUE(dcs.empty());
}

TEST(ConsulApi, NameTemplate) {
  api::NameTemplate t;
  std::string error;
  ASSERT_TRUE(t.parse("<%= node_basename %>-<%=dc%>@<%= ip %>", error)) << error;
  EXPECT_EQ(t.render("10.0.0.1", "dc1", "app"), "app-dc1@10.0.0.1");
  EXPECT_TRUE(t.uses_basename());
  ASSERT_TRUE(t.parse("svc@<%= ip %>", error));
  EXPECT_FALSE(t.uses_basename());
  EXPECT_FALSE(t.parse("<%= host %>", error));
  EXPECT_NE(error.find("unknown variable \"host\""), std::string::npos);
  EXPECT_FALSE(t.parse("<% System.halt() %>", error));
  EXPECT_FALSE(t.parse("<%= ip", error));
}

TEST(ConsulApi, RegistrationBody) {
  api::Registration r{"web-app@10.0.0.5", "web", "10.0.0.5", "clusterd:web-app@10.0.0.5", 4369,
                      {"beam", "a\"b"},   15000, 60000};
  EXPECT_EQ(api::registration_body(r),
            R"({"Address":"10.0.0.5","Check":{"CheckID":"clusterd:web-app@10.0.0.5",)"
            R"("DeregisterCriticalServiceAfter":"60000ms","Name":"clusterd","Status":"passing",)"
            R"("TTL":"15000ms"},"ID":"web-app@10.0.0.5","Name":"web","Port":4369,)"
            R"("Tags":["beam","a\"b"]})");
  r.port = 0;
  EXPECT_EQ(api::registration_body(r).find("Port"), std::string::npos);
  api::Selection s;
  EXPECT_EQ(api::write_query(s), "");
  s.ns = "team a";
  s.partition = "p1";
  EXPECT_EQ(api::write_query(s), "?ns=team%20a&partition=p1");
}
