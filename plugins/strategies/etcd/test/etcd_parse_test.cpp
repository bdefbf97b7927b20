// The etcd gateway parser against answers recorded from etcd 3.4.23 (Debian's etcd-server).
#include "etcd_parse.hpp"

#include <gtest/gtest.h>

namespace etcd = clusterd::etcd;

namespace {

constexpr const char *kHeader =
    R"("header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709",)";

std::string with_header(const std::string &revision, const std::string &rest) {
  return std::string("{") + kHeader + R"("revision":")" + revision + R"(","raft_term":"2"})" +
         rest + "}";
}

}  // namespace

TEST(EtcdBase64, RoundTripsEveryLength) {
  const std::string bytes("\x00\xff prefix/a@h\x7f", 15);
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    const std::string part = bytes.substr(0, n);
    const auto decoded = etcd::base64_decode(etcd::base64_encode(part));
    ASSERT_TRUE(decoded) << n;
    EXPECT_EQ(*decoded, part);
  }
  EXPECT_EQ(etcd::base64_encode("prefix/a@h"), "cHJlZml4L2FAaA==");
  EXPECT_EQ(etcd::base64_decode("Zm9v"), std::optional<std::string>("foo"));
}

TEST(EtcdBase64, RefusesWhatIsNotBase64) {
  for (const char *bad : {"Zm9", "Zm9v=", "Z===", "Zm=v", "Zm9v!AAA", "====", "Zg=A"})
    EXPECT_FALSE(etcd::base64_decode(bad)) << bad;
}

TEST(EtcdRequests, PrefixRangeEnd) {
  EXPECT_EQ(etcd::prefix_range_end("/clusterd/nodes/"), "/clusterd/nodes0");
  EXPECT_EQ(etcd::prefix_range_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(etcd::prefix_range_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST(EtcdRequests, Bodies) {
  EXPECT_EQ(etcd::range_request("prefix/"), R"({"key":"cHJlZml4Lw==","range_end":"cHJlZml4MA=="})");
  EXPECT_EQ(etcd::watch_request("prefix/", 8),
            R"({"create_request":{"key":"cHJlZml4Lw==","range_end":"cHJlZml4MA==",)"
            R"("start_revision":"8"}})");
  EXPECT_EQ(etcd::put_request("k", "v", 42), R"({"key":"aw==","lease":"42","value":"dg=="})");
  EXPECT_EQ(etcd::keepalive_request(42), R"({"ID":"42"})");
  EXPECT_EQ(etcd::grant_request(10), R"({"TTL":"10"})");
  // JSON escaping of credentials.
  EXPECT_EQ(etcd::authenticate_request("a\"b", "p\\w"), R"({"name":"a\"b","password":"p\\w"})");
}

TEST(EtcdRange, ReadsKeysAndRevision) {
  etcd::RangeResult r;
  ASSERT_EQ(etcd::parse_range(
                with_header("7", R"(,"kvs":[{"key":"cHJlZml4L2FAaA==","create_revision":"4",)"
                                 R"("mod_revision":"4","version":"1","value":"eA==",)"
                                 R"("lease":"4111120504459370509"}],"count":"1")"),
                r),
            "");
  EXPECT_EQ(r.revision, 7);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, "prefix/a@h");
  EXPECT_EQ(r.kvs[0].value, "x");
}

TEST(EtcdRange, EmptyPrefixHasNoKvs) {
  etcd::RangeResult r;
  ASSERT_EQ(etcd::parse_range(with_header("2", ""), r), "");
  EXPECT_EQ(r.revision, 2);
  EXPECT_TRUE(r.kvs.empty());
}

TEST(EtcdRange, Errors) {
  etcd::RangeResult r;
  EXPECT_EQ(etcd::parse_range(R"({"error":"etcdserver: invalid auth token","message":)"
                              R"("etcdserver: invalid auth token","code":16})",
                              r),
            "error: etcdserver: invalid auth token (code 16)");
  EXPECT_NE(etcd::parse_range("{}", r), "");
  EXPECT_NE(etcd::parse_range("[1]", r), "");
  EXPECT_NE(etcd::parse_range("not json", r), "");
  EXPECT_NE(etcd::parse_range(with_header("x", ""), r), "");
  EXPECT_NE(etcd::parse_range(with_header("3", R"(,"kvs":[{"key":"!!"}])"), r), "");
  EXPECT_NE(etcd::parse_range(with_header("3", R"(,"kvs":{})"), r), "");
}

TEST(EtcdLease, GrantAndKeepalive) {
  etcd::Lease lease;
  ASSERT_EQ(etcd::parse_grant(with_header("1", R"(,"ID":"4111120504459370502","TTL":"5")"), lease),
            "");
  EXPECT_EQ(lease.id, 4111120504459370502);
  EXPECT_EQ(lease.ttl, 5);
  ASSERT_EQ(etcd::parse_keepalive(R"({"result":{"header":{"revision":"2"},"ID":"123","TTL":"5"}})"
                                  "\n",
                                  lease),
            "");
  EXPECT_EQ(lease.ttl, 5);
  // An unknown (expired) lease: etcd leaves TTL out.
  ASSERT_EQ(etcd::parse_keepalive(R"({"result":{"header":{"revision":"2"},"ID":"123"}})", lease),
            "");
  EXPECT_EQ(lease.ttl, 0);
  EXPECT_NE(etcd::parse_grant(with_header("1", R"(,"ID":"0","TTL":"5")"), lease), "");
  EXPECT_NE(etcd::parse_keepalive(R"({"error":{"grpc_code":14,"message":"unavailable"}})", lease),
            "");
}

TEST(EtcdAuth, Token) {
  std::string token;
  ASSERT_EQ(etcd::parse_authenticate(with_header("7", R"(,"token":"ZDtWAoiAPRjuJAiG.25")"), token),
            "");
  EXPECT_EQ(token, "ZDtWAoiAPRjuJAiG.25");
  EXPECT_NE(etcd::parse_authenticate(with_header("7", R"(,"token":"a\r\nX-Evil: 1")"), token), "");
  EXPECT_TRUE(token.empty());
  EXPECT_EQ(etcd::parse_authenticate(
                R"({"error":"etcdserver: authentication failed, invalid user ID or password",)"
                R"("message":"etcdserver: authentication failed, invalid user ID or password",)"
                R"("code":3})",
                token),
            "error: etcdserver: authentication failed, invalid user ID or password (code 3)");
}

TEST(EtcdWatch, CreatedEventsAndResume) {
  etcd::WatchMessage m;
  ASSERT_EQ(etcd::parse_watch_line(R"({"result":{)" + std::string(kHeader) +
                                       R"("revision":"3","raft_term":"2"},"created":true}})",
                                   m),
            "");
  EXPECT_TRUE(m.created);
  EXPECT_EQ(m.revision, 3);
  EXPECT_EQ(m.resume_revision(), 0);
  ASSERT_EQ(etcd::parse_watch_line(
                R"({"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"cHJlZml4L2FAaA==",)"
                R"("create_revision":"4","mod_revision":"4","version":"1","value":"eA=="}},)"
                R"({"type":"DELETE","kv":{"key":"cHJlZml4L2JAaA==","mod_revision":"6"}}]}})",
                m),
            "");
  ASSERT_EQ(m.events.size(), 2u);
  EXPECT_EQ(m.events[0].type, etcd::EventType::kPut);
  EXPECT_EQ(m.events[0].key, "prefix/a@h");
  EXPECT_EQ(m.events[1].type, etcd::EventType::kDelete);
  EXPECT_EQ(m.events[1].key, "prefix/b@h");
  EXPECT_EQ(m.resume_revision(), 7);
}

TEST(EtcdWatch, CompactedAndCancelled) {
  etcd::WatchMessage m;
  ASSERT_EQ(etcd::parse_watch_line(R"({"result":{"header":{"raft_term":"2"},"canceled":true,)"
                                   R"("compact_revision":"5"}})",
                                   m),
            "");
  EXPECT_TRUE(m.canceled);
  EXPECT_EQ(m.compact_revision, 5);
  ASSERT_EQ(etcd::parse_watch_line(
                R"({"result":{"header":{"revision":"7"},"watch_id":"-1","created":true,)"
                R"("canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = )"
                R"(etcdserver: invalid auth token"}})",
                m),
            "");
  EXPECT_TRUE(m.canceled);
  EXPECT_EQ(m.compact_revision, 0);
  EXPECT_NE(m.cancel_reason.find("Unauthenticated"), std::string::npos);
}

TEST(EtcdWatch, StreamErrorAndBadLines) {
  etcd::WatchMessage m;
  ASSERT_EQ(etcd::parse_watch_line(R"({"error":{"grpc_code":14,"http_code":503,)"
                                   R"("message":"transport is closing","http_status":)"
                                   R"("Service Unavailable"}})",
                                   m),
            "");
  ASSERT_TRUE(m.error);
  EXPECT_EQ(m.error->code, 14);
  EXPECT_EQ(m.error->message, "transport is closing");
  EXPECT_NE(etcd::parse_watch_line("{", m), "");
  EXPECT_NE(etcd::parse_watch_line(R"({"result":{"events":[{"kv":{}}]}})", m), "");
  EXPECT_NE(etcd::parse_watch_line(R"({"result":{"events":[{"type":"X","kv":{"key":"YQ==",)"
                                   R"("mod_revision":"2"}}]}})",
                                   m),
            "");
  EXPECT_NE(etcd::parse_watch_line(std::string(100000, '['), m), "");  // no stack overflow
}

TEST(EtcdErrors, ParseError) {
  const auto e = etcd::parse_error(R"({"error":"x","message":"etcdserver: permission denied",)"
                                   R"("code":7})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 7);
  EXPECT_EQ(e->message, "etcdserver: permission denied");
  EXPECT_FALSE(etcd::parse_error(with_header("1", "")));
  const auto text = etcd::parse_error("Bad Gateway\n");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->message, "Bad Gateway ");
}
