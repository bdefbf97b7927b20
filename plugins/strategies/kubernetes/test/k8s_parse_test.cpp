// Unit tests of the kubernetes strategy's parser and naming, against recorded API answers
// (tests/fixtures/kubernetes: libcluster's GKE recordings and EndpointSlice/Pod fixtures).
#include "k8s_parse.hpp"
#include "line_buffer.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace k8s = clusterd::kubernetes;
using Names = std::vector<std::string>;

namespace {

std::string fixture(const std::string &name) {
  std::ifstream in(std::string(CLUSTERD_K8S_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::map<std::string, k8s::Object> load(const std::string &body, k8s::Lookup lookup,
                                        std::string *rv = nullptr) {
  k8s::ListResult result;
  const std::string error = k8s::parse_list(body, lookup, result);
  EXPECT_EQ(error, "");
  if (rv != nullptr) *rv = result.resource_version;
  std::map<std::string, k8s::Object> objects;
  for (auto &o : result.objects) objects[o.key] = std::move(o);
  return objects;
}

k8s::Naming naming(k8s::Mode mode, k8s::Readiness readiness = k8s::Readiness::kReady,
                   std::string service = "") {
  k8s::Naming n;
  n.basename = "app";
  n.mode = mode;
  n.readiness = readiness;
  n.service_name = std::move(service);
  return n;
}

Names names(const std::string &file, k8s::Lookup lookup, const k8s::Naming &n) {
  return k8s::node_names(load(fixture(file), lookup), n).names;
}

constexpr auto kIp = k8s::Mode::kIp;
constexpr auto kDns = k8s::Mode::kDns;
constexpr auto kHostname = k8s::Mode::kHostname;
constexpr auto kEndpoints = k8s::Lookup::kEndpoints;
constexpr auto kPods = k8s::Lookup::kPods;
constexpr auto kSlices = k8s::Lookup::kEndpointSlices;

}  // namespace

// ---- libcluster's names (its own GKE recordings) ----

TEST(KubernetesNames, EndpointsAsLibcluster) {
  const std::string f = "endpoints-list-gke-2018.json";
  EXPECT_EQ(names(f, kEndpoints, naming(kIp)), Names{"app@10.48.33.136"});
  EXPECT_EQ(names(f, kEndpoints, naming(kDns)),
            Names{"app@10-48-33-136.airatel-service-localization.pod.cluster.local"});
  EXPECT_EQ(names(f, kEndpoints, naming(kHostname, k8s::Readiness::kReady, "svc")),
            Names{"app@my-hostname-0.svc.airatel-service-localization.svc.cluster.local"});
  // Without kubernetes_service_name libcluster writes "" (a malformed name); the Endpoints
  // object's name is the service's.
  EXPECT_EQ(names(f, kEndpoints, naming(kHostname)),
            Names{"app@my-hostname-0.development-development.airatel-service-localization.svc."
                  "cluster.local"});
}

TEST(KubernetesNames, EndpointWithoutHostnameIsSkippedInHostnameModeOnly) {
  const std::string f = "endpoints-list-gke-2018-b.json";
  EXPECT_EQ(names(f, kEndpoints, naming(kIp)), Names{"app@10.48.33.134"});
  EXPECT_EQ(names(f, kEndpoints, naming(kDns)),
            Names{"app@10-48-33-134.airatel-service-test.pod.cluster.local"});
  const auto set = k8s::node_names(load(fixture(f), kEndpoints), naming(kHostname));
  EXPECT_TRUE(set.names.empty());
  EXPECT_EQ(set.skipped, 1u);
  EXPECT_NE(set.why.find("10.48.33.134 has no hostname"), std::string::npos) << set.why;
}

TEST(KubernetesNames, PodsAsLibcluster) {
  const std::string f = "pods-list-2018.json";
  // No conditions in the recording: only readiness = "all" (libcluster's rule) takes it.
  EXPECT_EQ(names(f, kPods, naming(kIp)), Names{});
  EXPECT_EQ(names(f, kPods, naming(kIp, k8s::Readiness::kAll)), Names{"app@10.48.33.136"});
  EXPECT_EQ(names(f, kPods, naming(kDns, k8s::Readiness::kAll)),
            Names{"app@10-48-33-136.airatel-service-localization.pod.cluster.local"});
  EXPECT_EQ(names(f, kPods, naming(kHostname, k8s::Readiness::kAll, "svc")),
            Names{"app@my-hostname-0.svc.airatel-service-localization.svc.cluster.local"});
}

TEST(KubernetesNames, PodsReadiness) {
  const std::string f = "pods-list-mixed.json";
  const Names ready = {"app@10.4.0.11", "app@10.4.1.12"};
  EXPECT_EQ(names(f, kPods, naming(kIp)), ready);
  EXPECT_EQ(names(f, kPods, naming(kIp, k8s::Readiness::kServing)), ready);
  // libcluster's pods mode: every pod with an IP (Pending myapp-2 has none).
  EXPECT_EQ(names(f, kPods, naming(kIp, k8s::Readiness::kAll)),
            (Names{"app@10.4.0.11", "app@10.4.0.14", "app@10.4.1.12", "app@10.4.3.15"}));
  // The pod's subdomain is its headless service.
  EXPECT_EQ(names(f, kPods, naming(kHostname)),
            (Names{"app@myapp-0.myapp-headless.prod.svc.cluster.local",
                   "app@myapp-1.myapp-headless.prod.svc.cluster.local"}));
}

TEST(KubernetesNames, EndpointSlicesIPv4AndIPv6) {
  const std::string f = "endpointslices-list.json";
  std::string rv;
  load(fixture(f), kSlices, &rv);
  EXPECT_EQ(rv, "481520");
  EXPECT_EQ(names(f, kSlices, naming(kIp)),
            (Names{"app@10.4.0.11", "app@10.4.1.12", "app@fd00:10:4::11", "app@fd00:10:4::12"}));
  EXPECT_EQ(names(f, kSlices, naming(kIp, k8s::Readiness::kServing)),
            (Names{"app@10.4.0.11", "app@10.4.0.14", "app@10.4.1.12", "app@fd00:10:4::11",
                   "app@fd00:10:4::12"}));
  EXPECT_EQ(names(f, kSlices, naming(kIp, k8s::Readiness::kAll)).size(), 6u);
  EXPECT_EQ(names(f, kSlices, naming(kDns)),
            (Names{"app@10-4-0-11.prod.pod.cluster.local", "app@10-4-1-12.prod.pod.cluster.local",
                   "app@fd00-10-4--11.prod.pod.cluster.local",
                   "app@fd00-10-4--12.prod.pod.cluster.local"}));
  // The IPv4 and IPv6 endpoints of one pod have one hostname: one node.
  EXPECT_EQ(names(f, kSlices, naming(kHostname)),
            (Names{"app@myapp-0.myapp.prod.svc.cluster.local",
                   "app@myapp-1.myapp.prod.svc.cluster.local"}));
}

TEST(KubernetesNames, ClusterDomain) {
  k8s::Naming n = naming(kDns);
  n.domain = "prod-eu.local";  // kubernetes_cluster_name = "prod-eu", as libcluster
  EXPECT_EQ(names("endpoints-list-gke-2018.json", kEndpoints, n),
            Names{"app@10-48-33-136.airatel-service-localization.pod.prod-eu.local"});
  n.domain = "k8s.example.com";  // kubernetes_cluster_domain (libcluster #137)
  EXPECT_EQ(names("endpoints-list-gke-2018.json", kEndpoints, n),
            Names{"app@10-48-33-136.airatel-service-localization.pod.k8s.example.com"});
  n.mode = kHostname;
  EXPECT_EQ(names("endpoints-list-gke-2018.json", kEndpoints, n),
            Names{"app@my-hostname-0.development-development.airatel-service-localization.svc."
                  "k8s.example.com"});
}

TEST(KubernetesNames, ConditionsFollowTheApisNilRules) {
  // ready nil = true; serving nil = ready; terminating nil = false.
  const std::string body = R"({"items":[{"metadata":{"name":"s","namespace":"n"},
    "addressType":"IPv4","endpoints":[
      {"addresses":["10.0.0.1"]},
      {"addresses":["10.0.0.2"],"conditions":{"ready":false}},
      {"addresses":["10.0.0.3"],"conditions":{"ready":false,"terminating":true,"serving":true}}]}]})";
  const auto objects = load(body, kSlices);
  EXPECT_EQ(k8s::node_names(objects, naming(kIp)).names, Names{"app@10.0.0.1"});
  EXPECT_EQ(k8s::node_names(objects, naming(kIp, k8s::Readiness::kServing)).names,
            (Names{"app@10.0.0.1", "app@10.0.0.3"}));
}

// ---- surprises never crash ----

TEST(KubernetesParse, BadBodiesAreErrors) {
  k8s::ListResult r;
  EXPECT_NE(k8s::parse_list("", kSlices, r), "");
  EXPECT_NE(k8s::parse_list("{\"items\": [", kSlices, r), "");
  EXPECT_NE(k8s::parse_list("[]", kSlices, r), "");
  EXPECT_EQ(k8s::parse_list("{\"items\": 5}", kSlices, r), "\"items\" is not a list");
  EXPECT_NE(k8s::parse_list("<html>502 Bad Gateway</html>", kEndpoints, r).find("malformed JSON"),
            std::string::npos);
  // An empty list may come with "items": null or no items at all.
  EXPECT_EQ(k8s::parse_list(R"({"metadata":{"resourceVersion":"7"},"items":null})", kPods, r), "");
  EXPECT_EQ(r.resource_version, "7");
  EXPECT_TRUE(r.objects.empty());
}

// A body cut inside a multi-byte UTF-8 sequence: the validator must not read past the body
// (found by fuzz_smoke under ASan; each lead byte length, each cut point).
TEST(KubernetesParse, TruncatedUtf8IsAnErrorNotAnOverread) {
  k8s::ListResult r;
  for (const char *tail : {"\xc3", "\xe2", "\xe2\x82", "\xf0", "\xf0\x9f", "\xf0\x9f\x98"}) {
    const std::string body = std::string(R"({"kind":"EndpointsList","items":[")") + tail;
    EXPECT_NE(k8s::parse_list(body, kEndpoints, r).find("malformed JSON"), std::string::npos);
  }
}

TEST(KubernetesParse, WrongShapesAreSkipped) {
  const std::string body = R"({"items":[5,"x",null,{"subsets":3},{"subsets":[{"addresses":7}]},
    {"metadata":{"name":"e","namespace":"ns1"},"subsets":[{"addresses":[
      {"ip":"10.0.0.9"},
      {"ip":"not-an-ip","targetRef":{"namespace":"x"}},
      {"ip":12},
      {"ip":"10.0.0.10","targetRef":{"namespace":"ns2"},"hostname":["h"]}]}]}]})";
  const auto objects = load(body, kEndpoints);
  const auto set = k8s::node_names(objects, naming(kDns));
  // Without targetRef.namespace (libcluster crashes) the item's namespace is used.
  EXPECT_EQ(set.names,
            (Names{"app@10-0-0-10.ns2.pod.cluster.local", "app@10-0-0-9.ns1.pod.cluster.local"}));
  EXPECT_EQ(set.skipped, 2u);
  EXPECT_NE(set.why.find("'not-an-ip' is not an IP"), std::string::npos) << set.why;
}

TEST(KubernetesParse, FqdnSlicesAreSkipped) {
  const auto objects = load(R"({"items":[{"metadata":{"name":"f","namespace":"n"},
      "addressType":"FQDN","endpoints":[{"addresses":["db.example.com"]}]}]})",
                            kSlices);
  const auto set = k8s::node_names(objects, naming(kIp));
  EXPECT_TRUE(set.names.empty());
  EXPECT_EQ(set.skipped, 1u);
  EXPECT_NE(set.why.find("FQDN"), std::string::npos);
}

TEST(KubernetesParse, StatusMessage) {
  EXPECT_EQ(k8s::status_message(fixture("status-403-forbidden.json")),
            "endpoints is forbidden: User \"system:serviceaccount:prod:default\" cannot list "
            "resource \"endpoints\" in API group \"\" in the namespace \"prod\"");
  EXPECT_EQ(k8s::status_message("upstream\nconnect error"), "upstream connect error");
  EXPECT_EQ(k8s::status_message(std::string(500, 'x')).size(), 203u);
}

// ---- watch events ----

TEST(KubernetesWatch, FixtureStream) {
  std::string rv;
  auto objects = load(fixture("endpointslices-list.json"), kSlices, &rv);
  const auto n = naming(kIp);
  const Names before = k8s::node_names(objects, n).names;
  std::istringstream stream(fixture("endpointslices-watch.jsonl"));
  std::vector<k8s::Event> events;
  for (std::string line; std::getline(stream, line);) {
    if (line.empty()) continue;
    k8s::Event e;
    ASSERT_EQ(k8s::parse_event(line, kSlices, e), "");
    events.push_back(std::move(e));
  }
  ASSERT_EQ(events.size(), 5u);

  // MODIFIED: a new endpoint, not ready yet: no change.
  EXPECT_EQ(events[0].type, k8s::EventType::kModified);
  EXPECT_EQ(events[0].resource_version, "481530");
  EXPECT_EQ(events[0].object.key, "prod/myapp-x7k2p");
  objects[events[0].object.key] = events[0].object;
  EXPECT_EQ(k8s::node_names(objects, n).names, before);
  // MODIFIED: it becomes ready.
  objects[events[1].object.key] = events[1].object;
  Names grown = before;
  grown.push_back("app@10.4.3.15");
  std::sort(grown.begin(), grown.end());
  EXPECT_EQ(k8s::node_names(objects, n).names, grown);
  // BOOKMARK: only a resourceVersion.
  EXPECT_EQ(events[2].type, k8s::EventType::kBookmark);
  EXPECT_EQ(events[2].resource_version, "481545");
  // DELETED: the IPv6 slice goes.
  EXPECT_EQ(events[3].type, k8s::EventType::kDeleted);
  objects.erase(events[3].object.key);
  EXPECT_EQ(k8s::node_names(objects, n).names,
            (Names{"app@10.4.0.11", "app@10.4.1.12", "app@10.4.3.15"}));
  // ERROR 410 Expired: re-list.
  EXPECT_EQ(events[4].type, k8s::EventType::kError);
  EXPECT_EQ(events[4].code, 410);
  EXPECT_EQ(events[4].reason, "Expired");
  EXPECT_NE(events[4].message.find("too old resource version"), std::string::npos);
}

TEST(KubernetesWatch, BadEvents) {
  k8s::Event e;
  EXPECT_NE(k8s::parse_event("{", kSlices, e), "");
  EXPECT_NE(k8s::parse_event(R"({"type":"ADDED"})", kSlices, e), "");
  EXPECT_NE(k8s::parse_event(R"({"type":"ADDED","object":[]})", kSlices, e), "");
  EXPECT_NE(k8s::parse_event(R"({"type":"SURPRISE","object":{}})", kSlices, e).find("unknown"),
            std::string::npos);
  // A Status body (what a failed watch request answers) is not an event.
  EXPECT_NE(k8s::parse_event(R"({"kind":"Status","code":403})", kPods, e), "");
  ASSERT_EQ(k8s::parse_event(R"({"type":"ERROR","object":{"code":"x"}})", kPods, e), "");
  EXPECT_EQ(e.code, 0);
}

TEST(KubernetesWatch, LineBuffer) {
  clusterd::LineBuffer buffer(16);
  std::vector<std::string> lines;
  auto collect = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  EXPECT_TRUE(buffer.feed("ab", collect));
  EXPECT_TRUE(buffer.feed("c\r\n\n  \nde", collect));
  EXPECT_TRUE(buffer.feed("f\ng", collect));
  EXPECT_EQ(lines, (std::vector<std::string>{"abc", "def"}));
  EXPECT_FALSE(buffer.feed(std::string(20, 'x'), collect));
  EXPECT_TRUE(buffer.overflow());
  EXPECT_FALSE(buffer.feed("\n", collect));
  buffer.clear();
  EXPECT_TRUE(buffer.feed("ok\n", collect));
  EXPECT_EQ(lines.back(), "ok");
  // A callback returning false stops at once.
  int calls = 0;
  EXPECT_FALSE(buffer.feed("1\n2\n3\n", [&](std::string_view) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
}

// ---- request helpers ----

TEST(KubernetesRequest, SelectorEncodingAsLibcluster) {
  EXPECT_EQ(k8s::percent_encode("app=myapp"), "app%3Dmyapp");
  EXPECT_EQ(k8s::percent_encode("app in (a, b),tier!=x~_.-"),
            "app%20in%20%28a%2C%20b%29%2Ctier%21%3Dx~_.-");
}

TEST(KubernetesRequest, Paths) {
  EXPECT_EQ(k8s::collection_path(kEndpoints, "default"), "/api/v1/namespaces/default/endpoints");
  EXPECT_EQ(k8s::collection_path(kPods, "prod"), "/api/v1/namespaces/prod/pods");
  EXPECT_EQ(k8s::collection_path(kSlices, "prod"),
            "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices");
}

TEST(KubernetesRequest, ApiHostAsLibcluster) {
  EXPECT_EQ(k8s::api_host("kubernetes.default.svc", "cluster.local"),
            "kubernetes.default.svc.cluster.local");
  EXPECT_EQ(k8s::api_host("k8s.cluster.local", "cluster.local"), "k8s.cluster.local");
  EXPECT_EQ(k8s::api_host("api.example.com.", "cluster.local"), "api.example.com.");
}
