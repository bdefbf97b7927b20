// Unit tests of the local-EPMD pollers' adaptive schedule (plugins/common/epmd/poll_schedule.hpp).
#include <gtest/gtest.h>

#include <chrono>

#include "poll_schedule.hpp"

namespace {

using clusterd::epmd::PollSchedule;
using std::chrono::milliseconds;

// Polls made, at the schedule's delays, before the delay first reaches `steady`; their total.
milliseconds time_to_steady(PollSchedule &s, milliseconds steady, int &polls) {
  milliseconds total{0};
  for (polls = 0; polls < 1000; ++polls) {
    const milliseconds d = s.next(false);
    if (d == steady) break;
    total += d;
  }
  return total;
}

TEST(PollSchedule, QuickForTheSettleTimeAfterAChangeThenDoublingToSteady) {
  PollSchedule s(milliseconds(2000));
  EXPECT_EQ(s.next(true), PollSchedule::kQuick);  // start-up counts as a change
  milliseconds quick{PollSchedule::kQuick};
  for (int i = 0; i < PollSchedule::kSettle / PollSchedule::kQuick; ++i) {
    EXPECT_EQ(s.next(false), PollSchedule::kQuick) << i;
    quick += PollSchedule::kQuick;
  }
  EXPECT_EQ(quick, PollSchedule::kSettle + PollSchedule::kQuick);
  for (int ms : {200, 400, 800, 1600, 2000, 2000, 2000}) EXPECT_EQ(s.next(false), milliseconds(ms));
}

TEST(PollSchedule, AChangeMakesItQuickAgain) {
  PollSchedule s(milliseconds(5000));
  s.next(true);
  int polls = 0;
  time_to_steady(s, milliseconds(5000), polls);
  EXPECT_EQ(s.next(false), milliseconds(5000)) << "stable: the steady interval, no more often";
  EXPECT_EQ(s.next(true), PollSchedule::kQuick);
  EXPECT_EQ(s.next(false), PollSchedule::kQuick);
}

TEST(PollSchedule, NeverSlowerThanSteadyNorFasterThanASteadyBelowQuick) {
  PollSchedule slow(milliseconds(150));
  EXPECT_EQ(slow.next(true), PollSchedule::kQuick);
  int polls = 0;
  time_to_steady(slow, milliseconds(150), polls);
  EXPECT_EQ(slow.next(false), milliseconds(150));
  PollSchedule fast(milliseconds(30));  // a configured interval under kQuick is kept
  EXPECT_EQ(fast.next(true), milliseconds(30));
  EXPECT_EQ(fast.next(false), milliseconds(30));
  PollSchedule day(milliseconds(86'400'000));
  day.next(true);
  const milliseconds total = time_to_steady(day, milliseconds(86'400'000), polls);
  EXPECT_LT(polls, 60) << "backs off geometrically: " << total.count() << " ms";
}

}  // namespace
