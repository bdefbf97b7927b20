#include <gtest/gtest.h>

#include "util/duration.hpp"
#include "util/strings.hpp"

using clusterd::util::parse_duration_ms;

TEST(Duration, AcceptsUnits) {
  EXPECT_EQ(parse_duration_ms("250ms"), 250);
  EXPECT_EQ(parse_duration_ms("5s"), 5000);
  EXPECT_EQ(parse_duration_ms("2m"), 120000);
  EXPECT_EQ(parse_duration_ms("1h"), 3600000);
  EXPECT_EQ(parse_duration_ms("1500ms"), 1500);
  EXPECT_EQ(parse_duration_ms("0s"), 0);
  EXPECT_EQ(parse_duration_ms("infinity"), clusterd::util::kInfinite);
}

TEST(Duration, RejectsEverythingElse) {
  for (const char *bad : {"", "s", "5", "0", "1500", "5 s", "5sec", "-1s", "1.5s", "5S", "ms5",
                          "99999999999999999999h", "5h3"})
    EXPECT_FALSE(parse_duration_ms(bad)) << bad;
}

TEST(Strings, ClosestMatchSuggestsTypos) {
  EXPECT_EQ(clusterd::util::closest_match("hostz", {"hosts", "timeout"}), "hosts");
  EXPECT_EQ(clusterd::util::closest_match("polling_intervall", {"polling_interval"}),
            "polling_interval");
  EXPECT_EQ(clusterd::util::closest_match("zzzzzz", {"hosts", "timeout"}), "");
}
