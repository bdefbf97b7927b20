// Unit tests of the ec2 strategy's pure parts (ec2_api.cpp, compiled in): the recorded-shape
// DescribeInstances pages and error document in test/fixtures, hand-made malformed replies,
// the role credentials JSON, form encoding and node naming.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ec2_api.hpp"

namespace api = clusterd_ec2;

namespace {

std::string fixture(const std::string &name) {
  std::ifstream in(std::string(CLUSTERD_EC2_FIXTURES) + "/" + name, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  EXPECT_TRUE(in.good() || in.eof()) << name;
  return out.str();
}

api::DescribeResult parse_ok(const std::string &xml) {
  api::DescribeResult r;
  std::string error;
  EXPECT_TRUE(api::parse_describe_instances(xml, r, error)) << error;
  return r;
}

std::string parse_error(const std::string &xml) {
  api::DescribeResult r;
  std::string error;
  EXPECT_FALSE(api::parse_describe_instances(xml, r, error));
  EXPECT_TRUE(r.instances.empty());
  return error;
}

}  // namespace

TEST(Ec2Describe, FirstPageHasEveryInstanceAndTheNextToken) {
  const auto r = parse_ok(fixture("describe-instances-page1.xml"));
  EXPECT_EQ(r.next_token, "eyJ2IjoiMiIsImMiOiJwYWdlMiJ9");
  ASSERT_EQ(r.instances.size(), 4u);
  const auto &a = r.instances[0];
  EXPECT_EQ(a.id, "i-0a1b2c3d4e5f60011");
  EXPECT_EQ(a.state, "running");
  // The instance's own address, not the network interfaces' nested privateIpAddress items.
  EXPECT_EQ(a.private_ip, "10.0.1.11");
  EXPECT_EQ(a.public_ip, "198.18.7.11");
  EXPECT_EQ(a.private_dns, "ip-10-0-1-11.eu-west-3.compute.internal");
  ASSERT_EQ(a.tags.size(), 2u);
  EXPECT_EQ(a.tags[1], (std::pair<std::string, std::string>{"cluster", "web"}));
  EXPECT_EQ(r.instances[1].public_ip, "");
  EXPECT_EQ(r.instances[2].state, "stopped");
  EXPECT_EQ(r.instances[3].id, "i-0a1b2c3d4e5f60014");
}

TEST(Ec2Describe, LastPageHasNoToken) {
  const auto r = parse_ok(fixture("describe-instances-page2.xml"));
  EXPECT_EQ(r.next_token, "");
  ASSERT_EQ(r.instances.size(), 1u);
  EXPECT_EQ(r.instances[0].private_ip, "10.0.2.21");
}

TEST(Ec2Describe, EmptyReservationSet) {
  const auto r = parse_ok(
      "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
      "<requestId>x</requestId><reservationSet/></DescribeInstancesResponse>");
  EXPECT_TRUE(r.instances.empty());
}

TEST(Ec2Describe, ErrorDocumentGivesCodeAndMessage) {
  const auto xml = fixture("auth-failure.xml");
  EXPECT_EQ(parse_error(xml),
            "AuthFailure: AWS was not able to validate the provided access credentials");
  EXPECT_EQ(api::api_error(xml),
            "AuthFailure: AWS was not able to validate the provided access credentials");
  EXPECT_EQ(api::api_error("<html>Bad Gateway</html>"), "");
  EXPECT_EQ(api::api_error("not xml"), "");
}

TEST(Ec2Describe, MalformedRepliesAreErrors) {
  EXPECT_NE(parse_error("").find("XML error"), std::string::npos);
  EXPECT_NE(parse_error("<DescribeInstancesResponse><reservationSet>").find("XML error"),
            std::string::npos);
  EXPECT_EQ(parse_error("<html><body>502</body></html>"), "unexpected root element <html>");
  EXPECT_EQ(parse_error("<!DOCTYPE x [<!ENTITY a \"aaaa\">]><DescribeInstancesResponse/>"),
            "a DTD is not allowed");
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  EXPECT_EQ(parse_error(deep), "elements nested too deeply");
  const std::string long_token = "<DescribeInstancesResponse><nextToken>" +
                                 std::string(api::kMaxText + 1, 'x') +
                                 "</nextToken></DescribeInstancesResponse>";
  EXPECT_NE(parse_error(long_token).find("longer than"), std::string::npos);
}

TEST(Ec2Form, EncodesLikeSigV4Expects) {
  EXPECT_EQ(api::url_encode("tag:a b/c~d_e.f-g+h=i"), "tag%3Aa%20b%2Fc~d_e.f-g%2Bh%3Di");
  EXPECT_EQ(api::describe_tagged_form("cluster", "web", ""),
            "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Acluster&"
            "Filter.1.Value.1=web&Filter.2.Name=instance-state-name&Filter.2.Value.1=running");
  EXPECT_EQ(api::describe_tagged_form("k", "v", "ab/+="),
            "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Ak&"
            "Filter.1.Value.1=v&Filter.2.Name=instance-state-name&Filter.2.Value.1=running&"
            "NextToken=ab%2F%2B%3D");
  EXPECT_EQ(api::describe_instance_form("i-1"),
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1");
}

TEST(Ec2Credentials, RoleCredentialsFixture) {
  api::Credentials c;
  std::string error;
  ASSERT_TRUE(api::parse_role_credentials(fixture("role-credentials.json"), c, error)) << error;
  EXPECT_EQ(c.access_key_id, "ASIAEXAMPLEROLEKEY01");
  EXPECT_EQ(c.secret_access_key, "roleSecretKeyEXAMPLE/K7MDENG+bPxRfiCYzzzz");
  EXPECT_FALSE(c.session_token.empty());
  EXPECT_EQ(c.expiration, 1795782161);  // date -d 2026-11-27T12:22:41Z +%s
}

TEST(Ec2Credentials, BadDocumentsNameTheProblemAndNoSecret) {
  api::Credentials c;
  std::string error;
  EXPECT_FALSE(api::parse_role_credentials("{", c, error));
  EXPECT_EQ(error, "not a JSON object");
  EXPECT_FALSE(api::parse_role_credentials(R"({"Code":"Failure"})", c, error));
  EXPECT_EQ(error, "Code is \"Failure\", not \"Success\"");
  EXPECT_FALSE(api::parse_role_credentials(R"({"AccessKeyId":"A"})", c, error));
  EXPECT_EQ(error, "no \"SecretAccessKey\"");
  EXPECT_FALSE(api::parse_role_credentials(R"({"AccessKeyId":"A","SecretAccessKey":7})", c, error));
  EXPECT_EQ(error, "\"SecretAccessKey\" is not a string");
  EXPECT_FALSE(api::parse_role_credentials(
      R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Expiration":"soon"})", c, error));
  EXPECT_EQ(error.find("TOPSECRET"), std::string::npos);
}

TEST(Ec2Credentials, Iso8601) {
  int64_t t = 0;
  EXPECT_TRUE(api::parse_iso8601("1970-01-01T00:00:00Z", t));
  EXPECT_EQ(t, 0);
  EXPECT_TRUE(api::parse_iso8601("2000-03-01T00:00:01.250Z", t));
  EXPECT_EQ(t, 951868801);
  EXPECT_FALSE(api::parse_iso8601("2000-03-01T00:00:01", t));
  EXPECT_FALSE(api::parse_iso8601("2000-13-01T00:00:01Z", t));
  EXPECT_FALSE(api::parse_iso8601("", t));
}

TEST(Ec2Region, NamesAsTheEndpointsUseThem) {
  for (const char *good : {"eu-west-1", "us-gov-west-1", "ap-southeast-3", "cn-north-1"})
    EXPECT_TRUE(api::valid_region(good)) << good;
  for (const char *bad : {"", "eu", "eu-west", "EU-West-1", "eu--west-1", "-eu-west-1",
                          "eu-west-1-", "eu west 1", "eu-west-1.example.com"})
    EXPECT_FALSE(api::valid_region(bad)) << bad;
}

TEST(Ec2Names, PrefixAtAddressRunningOnlySkippedListed) {
  auto r = parse_ok(fixture("describe-instances-page1.xml"));
  std::vector<std::string> skipped;
  EXPECT_EQ(api::node_names(r.instances, "app", api::NameType::private_ip, skipped),
            (std::vector<std::string>{"app@10.0.1.11", "app@10.0.1.12", "app@10.0.1.14"}));
  EXPECT_TRUE(skipped.empty());
  EXPECT_EQ(api::node_names(r.instances, "app", api::NameType::public_ip, skipped),
            (std::vector<std::string>{"app@198.18.7.11"}));
  EXPECT_EQ(skipped, (std::vector<std::string>{"i-0a1b2c3d4e5f60012: no public IP",
                                               "i-0a1b2c3d4e5f60014: no public IP"}));
  skipped.clear();
  EXPECT_EQ(api::node_names(r.instances, "x", api::NameType::private_dns, skipped)[0],
            "x@ip-10-0-1-11.eu-west-3.compute.internal");
  api::NameType t{};
  EXPECT_TRUE(api::parse_name_type("private_dns", t));
  EXPECT_EQ(t, api::NameType::private_dns);
  EXPECT_FALSE(api::parse_name_type("private_ip", t));
}
