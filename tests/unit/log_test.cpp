// The log's guarantees: escape() leaves no control character or invalid UTF-8 in a line, and
// the Limiter bounds repeats per message shape and per source, then says how many it dropped.
#include <gtest/gtest.h>

#include <string>

#include "log/limiter.hpp"
#include "log/log.hpp"

using namespace std::chrono_literals;
using clusterd::log::escape;
using clusterd::log::Limiter;

namespace {

TEST(LogEscape, PrintableTextAndValidUtf8AreKept) {
  EXPECT_EQ(escape("member n1@10.0.0.5:9200 down: left"), "member n1@10.0.0.5:9200 down: left");
  EXPECT_EQ(escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 C:\\path"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 C:\\path");
  EXPECT_EQ(escape(""), "");
}

TEST(LogEscape, TheForgedHelloIsOneLine) {
  const std::string forged = "x@h\n2026-01-01T00:00:00.000 info  forged line\x1b[31m";
  EXPECT_EQ(escape(forged), "x@h\\n2026-01-01T00:00:00.000 info  forged line\\x1b[31m");
}

TEST(LogEscape, ControlCharactersBecomeEscapes) {
  EXPECT_EQ(escape("a\r\tb"), "a\\r\\tb");
  EXPECT_EQ(escape(std::string("\0\x01\x1f\x7f", 4)), "\\x00\\x01\\x1f\\x7f");
  // C1 controls in UTF-8 (U+009B is CSI to some terminals), and the line separators.
  EXPECT_EQ(escape("\xc2\x9b"
                   "31m \xc2\x85"),
            "\\u009b31m \\u0085");
  EXPECT_EQ(escape("a\xe2\x80\xa8"
                   "b\xe2\x80\xa9"),
            "a\\u2028b\\u2029");
}

TEST(LogEscape, InvalidUtf8BytesBecomeHex) {
  EXPECT_EQ(escape("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(escape("\xc3"), "\\xc3");                             // truncated
  EXPECT_EQ(escape("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(escape("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(escape("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(escape("\xe2\x82"
                   "A"),
            "\\xe2\\x82A");  // a sequence cut by ASCII
}

TEST(LogEscape, EveryByteStringComesOutPrintable) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (char c : escape(all + all)) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u < 0x7f) << int(u);
  }
}

TEST(LogLimiter, ShapesMaskNumbersAddressesAndQuotes) {
  const auto shape = Limiter::shape_of;
  EXPECT_EQ(shape("refused peer 10.0.0.5:41234 (claims 'a@b'): bad MAC"),
            shape("refused peer [::1]:9 (claims 'x@h\\nforged'): bad MAC"));
  EXPECT_EQ(shape("member n1@127.0.0.1:9200 down"), shape("member n22@10.1.1.1:1 down"));
  EXPECT_NE(shape("refused peer 1.2.3.4:5: bad MAC"), shape("refused peer 1.2.3.4:5: malformed"));
  EXPECT_NE(shape("member x@h down"), shape("member y@h down"));  // words are not masked
}

TEST(LogLimiter, RepeatsPassUpToTheBurstThenAreCountedAndSummarised) {
  Limiter limiter;  // defaults: 10 per shape, then 1 per second
  const auto t0 = Limiter::Clock::time_point{} + 1h;
  int passed = 0;
  for (int i = 0; i < 1000; ++i)
    passed += limiter.admit(
        "transport overlay", 3,
        "refused peer 10.0.0." + std::to_string(i % 250) + ":4000: malformed frame", t0);
  EXPECT_EQ(passed, 10);
  EXPECT_TRUE(limiter.take_summaries(t0 + 9s).empty());  // the window has not ended
  EXPECT_EQ(limiter.next_summary(), t0 + 10s);
  auto summaries = limiter.take_summaries(t0 + 10s);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].source, "transport overlay");
  EXPECT_EQ(summaries[0].level, 3);
  EXPECT_EQ(summaries[0].count, 990u);
  EXPECT_EQ(summaries[0].example, "refused peer 10.0.0.10:4000: malformed frame");
  EXPECT_TRUE(limiter.take_summaries(t0 + 20s).empty());  // counted once
  EXPECT_EQ(limiter.next_summary(), Limiter::Clock::time_point::max());
  // Refilled at one per second.
  EXPECT_TRUE(
      limiter.admit("transport overlay", 3, "refused peer 1.1.1.1:1: malformed frame", t0 + 10s));
}

TEST(LogLimiter, SourcesLevelsAndShapesHaveTheirOwnBuckets) {
  Limiter limiter;
  const auto t = Limiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.admit("a", 3, "same", t));
  EXPECT_FALSE(limiter.admit("a", 3, "same", t));
  EXPECT_TRUE(limiter.admit("b", 3, "same", t));
  EXPECT_TRUE(limiter.admit("a", 4, "same", t));
  EXPECT_TRUE(limiter.admit("a", 3, "other", t));
}

TEST(LogLimiter, MessagesThatDifferInWordsAreBoundedPerSource) {
  Limiter limiter;  // 100 per source and level, then 10 per second
  const auto t = Limiter::Clock::time_point{} + 1h;
  int passed = 0;
  std::string word = "a";
  for (int i = 0; i < 10000; ++i) {
    word = std::string(1, static_cast<char>('a' + i % 26)) + word.substr(0, 12);
    passed += limiter.admit("transport overlay", 3, "member " + word + " down", t);
  }
  EXPECT_EQ(passed, 100);
  std::uint64_t dropped = 0;
  for (const auto &s : limiter.take_summaries(t, true)) dropped += s.count;
  EXPECT_EQ(dropped, 9900u);
}

}  // namespace
