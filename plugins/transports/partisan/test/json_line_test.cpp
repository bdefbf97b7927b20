// The control API's JSON (json_line.hpp): requests parsed in place, lines written with
// validated escaping. Every written line is checked to parse back to what went in.
#include "json_line.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using clusterd::partisan::JsonLine;
using clusterd::partisan::Request;

TEST(PartisanJson, ParsesAFlatRequest) {
  Request r;
  std::string error;
  ASSERT_TRUE(r.parse(R"({"cmd":"send","to":"n2@h","data":"a\"b\\c\n\u00e9\u0000","id":7})", error))
      << error;
  EXPECT_EQ(r.string("cmd"), "send");
  EXPECT_EQ(r.string("data"), std::string_view("a\"b\\c\n\xc3\xa9\0", 9));
  EXPECT_EQ(r.raw("id"), "7");
  EXPECT_EQ(r.raw("absent"), "null");
  EXPECT_EQ(r.string("id"), std::nullopt);  // a number is not a string
  ASSERT_TRUE(r.parse(R"({"id":"x\"y","n":-1.5,"b":true,"z":null})", error));
  EXPECT_EQ(r.raw("id"), R"("x\"y")");
  EXPECT_EQ(r.raw("b"), "true");
  EXPECT_EQ(r.raw("z"), "null");
  EXPECT_EQ(r.raw("n"), "-1.5");
}

TEST(PartisanJson, RefusesWhatIsNotAFlatObject) {
  Request r;
  std::string error;
  for (std::string bad :
       {std::string("[]"), std::string("{\"a\":{\"b\":1}}"), std::string("{\"a\":[1]}"),
        std::string("{\"a\":1"), std::string(""), std::string("{\"a\":\"\xe2\x82"),
        std::string("{\"a\":1}\0x", 9), std::string("{} {}")}) {
    EXPECT_FALSE(r.parse(bad, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(PartisanJson, WritesEscapedUtf8AndRoundTrips) {
  const std::string data =
      std::string("q\"b\\s/\x01\x1f\n\r\t \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") +
      std::string(1, '\0');
  JsonLine line;
  line.field("data", data)
      .field("n", std::int64_t{-3})
      .field("u", std::uint64_t{18446744073709551615u});
  line.field("ok", true).null("none").raw("id", "\"x\"");
  ASSERT_TRUE(line.ok());
  const std::string text(line.text());
  EXPECT_EQ(text.find('\n'), std::string::npos) << "one line";
  Request back;
  std::string error;
  ASSERT_TRUE(back.parse(text, error)) << error << ": " << text;
  EXPECT_EQ(back.string("data"), data);
  EXPECT_EQ(back.raw("n"), "-3");
  EXPECT_EQ(back.raw("u"), "18446744073709551615");
  EXPECT_EQ(back.raw("ok"), "true");
  EXPECT_EQ(back.string("id"), "x");
}

TEST(PartisanJson, InvalidUtf8IsFlaggedAndReplaced) {
  for (std::string bad :
       {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
        std::string("\xf4\x90\x80\x80"), std::string("ab\xe2\x82"), std::string("\xe0\x80\xaf")}) {
    JsonLine line;
    line.field("data", bad);
    EXPECT_FALSE(line.ok()) << bad;
    Request back;  // still one valid JSON line, the bad bytes replaced
    std::string error;
    ASSERT_TRUE(back.parse(line.text(), error)) << error;
    EXPECT_NE(back.string("data")->find("\xef\xbf\xbd"), std::string_view::npos);
  }
}

TEST(PartisanJson, ArraysOfObjects) {
  JsonLine a, b, out;
  a.field("node", "a@h");
  b.field("node", "b@h");
  out.begin_array("members").element(a.text()).element(b.text()).end_array();
  EXPECT_EQ(out.text(), R"({"members":[{"node":"a@h"},{"node":"b@h"}]})");
}

}  // namespace
