// Unit tests of the postgres strategy's pure parts (notify.cpp): the SQL, the channel rule,
// payload checks and run-time parameters. The strategy itself runs against a real PostgreSQL
// in tests/integration/test_postgres.py.
#include "notify.hpp"

#include <gtest/gtest.h>

namespace pg = clusterd_postgres;

TEST(PostgresNotify, SqlIsLibclusterPostgresesByteForByte) {
  EXPECT_EQ(pg::listen_sql("my_app"), "LISTEN \"my_app\"");
  EXPECT_EQ(pg::notify_sql("my_app", "a@10.0.0.1"), "NOTIFY \"my_app\", 'a@10.0.0.1'");
}

TEST(PostgresNotify, ChannelRule) {
  EXPECT_EQ(pg::channel_problem("my_app"), "");
  EXPECT_EQ(pg::channel_problem("MyApp-1.prod"), "");
  EXPECT_EQ(pg::channel_problem(std::string(63, 'c')), "");
  EXPECT_NE(pg::channel_problem(std::string(64, 'c')), "");
  EXPECT_NE(pg::channel_problem(""), "");
  EXPECT_NE(pg::channel_problem("a\"b"), "");
  EXPECT_NE(pg::channel_problem("a b"), "");
  EXPECT_NE(pg::channel_problem("caf\xc3\xa9"), "");
}

TEST(PostgresNotify, Payloads) {
  EXPECT_EQ(pg::classify_payload("app@10.0.0.1"), pg::Payload::kNode);
  EXPECT_EQ(pg::classify_payload("app@host.example"), pg::Payload::kNode);
  EXPECT_EQ(pg::classify_payload("nonode@nohost"), pg::Payload::kNotDistributed);
  for (const char *bad :
       {"", "app", "app@", "@host", "a@b@c", "app@10.0.0.1'; DROP TABLE x", "a b@c", "app@h\n"})
    EXPECT_EQ(pg::classify_payload(bad), pg::Payload::kNotANodeName) << bad;
  EXPECT_EQ(pg::payload_problem("app@h"), "");
  EXPECT_NE(pg::payload_problem("x").find("not a node name: no '@'"), std::string::npos);
  EXPECT_STREQ(pg::payload_label(pg::Payload::kNotANodeName), "not_a_node_name");
  EXPECT_EQ(pg::printable("a\x01\\b"), "a\\x01\\x5cb");
  EXPECT_EQ(pg::printable(std::string(100, 'x')), std::string(80, 'x') + "...");
}

TEST(PostgresNotify, Parameters) {
  std::string options, app;
  EXPECT_EQ(
      pg::startup_options({"statement_timeout=5s", "search_path=a b\\c", "application_name=web"},
                          options, app),
      "");
  EXPECT_EQ(options, "-c statement_timeout=5s -c search_path=a\\ b\\\\c");
  EXPECT_EQ(app, "web");
  EXPECT_NE(pg::startup_options({"novalue"}, options, app), "");
  EXPECT_NE(pg::startup_options({"=x"}, options, app), "");
  EXPECT_NE(pg::startup_options({"a -c x=y"}, options, app), "");
  EXPECT_NE(pg::startup_options({"a=\x01"}, options, app), "");
}
