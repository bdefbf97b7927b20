// The Rancher metadata parser against the recorded fixture and malformed replies.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "rancher_metadata.hpp"

namespace {

using clusterd::rancher::parse_service;
using clusterd::rancher::Service;

std::string fixture(const std::string &name) {
  std::ifstream in(std::string(CLUSTERD_RANCHER_FIXTURES) + "/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RancherMetadata, FixtureGivesTheRunningContainersAndSkipsTheOneWithoutIp) {
  const std::string body = fixture("self-service.json");
  ASSERT_FALSE(body.empty());
  Service s;
  std::string error;
  ASSERT_TRUE(parse_service(body, s, error)) << error;
  EXPECT_EQ(s.ips, (std::vector<std::string>{"10.42.0.11", "10.42.0.12"}));
  EXPECT_EQ(s.skipped, (std::vector<std::string>{"prod-myapp-3: no IP"}));
}

TEST(RancherMetadata, FirstIpOfEachContainerAsLibcluster) {
  Service s;
  std::string error;
  ASSERT_TRUE(parse_service(
      R"({"containers":[{"ips":["10.0.0.2","10.0.0.3"]},{"name":"b","ips":["fd00::1"]}]})", s,
      error));
  EXPECT_EQ(s.ips, (std::vector<std::string>{"10.0.0.2", "fd00::1"}));
  EXPECT_TRUE(s.skipped.empty());
}

TEST(RancherMetadata, EmptyContainerListIsARealAnswer) {
  Service s;
  std::string error;
  ASSERT_TRUE(parse_service(R"({"name":"x","containers":[]})", s, error));
  EXPECT_TRUE(s.ips.empty());
}

TEST(RancherMetadata, ContainersWithoutUsableIpAreSkippedNotFatal) {
  Service s;
  std::string error;
  ASSERT_TRUE(parse_service(R"({"containers":[
      {"name":"no-ips"}, {"name":"null-ips","ips":null}, {"name":"empty","ips":[]},
      {"name":"number","ips":[7]}, {"name":"name","ips":["host.example"]},
      {"name":"at","ips":["a@b"]}, 17, {"name":"\u0001","ips":[]},
      {"name":"ok","ips":["10.1.2.3"]}]})",
                            s, error))
      << error;
  EXPECT_EQ(s.ips, (std::vector<std::string>{"10.1.2.3"}));
  EXPECT_EQ(s.skipped,
            (std::vector<std::string>{
                "no-ips: no IP", "null-ips: no IP", "empty: no IP",
                "number: first IP is not an IP address", "name: first IP is not an IP address",
                "at: first IP is not an IP address", "#7: not an object", "#8: no IP"}));
}

TEST(RancherMetadata, MalformedRepliesAreErrorsWithAReason) {
  for (const char *body :
       {"", "not json", "[]", "\"containers\"", "{}", R"({"containers":{}})",
        R"({"containers":null})", R"({"containers":[)", "{\"containers\":[]} x"}) {
    Service s;
    std::string error;
    EXPECT_FALSE(parse_service(body, s, error)) << body;
    EXPECT_FALSE(error.empty()) << body;
    EXPECT_TRUE(s.ips.empty()) << body;
  }
}

TEST(RancherMetadata, DeepNestingIsAnAnswerNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  Service s;
  std::string error;
  EXPECT_FALSE(parse_service(deep, s, error));
  const std::string nested = R"({"containers":[{"ips":["10.0.0.1"],"x":)" +
                             std::string(50000, '[') + std::string(50000, ']') + "}]}";
  ASSERT_TRUE(parse_service(nested, s, error)) << error;
  EXPECT_EQ(s.ips, (std::vector<std::string>{"10.0.0.1"}));
}

}  // namespace
