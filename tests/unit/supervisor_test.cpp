// reconcile::Supervisor on a real Asio loop: the waits grow as backoff_delay says, capped; a
// restart runs once; restart_now skips the wait; cancel drops it.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "reconcile/supervisor.hpp"

namespace clusterd::reconcile {
namespace {

using std::chrono::milliseconds;

TEST(Supervisor, WaitsDoubleWithJitterUpToTheCap) {
  boost::asio::io_context io;
  RestartPolicy policy{milliseconds(100), milliseconds(800)};
  Supervisor supervisor(io, policy);
  const std::int64_t full[] = {100, 200, 400, 800, 800, 800};
  for (auto d : full) {
    auto wait = supervisor.failed([] {});
    EXPECT_GE(wait.count(), d / 2);
    EXPECT_LE(wait.count(), d);
    EXPECT_TRUE(supervisor.pending());
    EXPECT_FALSE(supervisor.status()["next_restart_in_ms"].is_null());
  }
  EXPECT_EQ(supervisor.restarts(), 0u);  // none ran: the loop did not
}

TEST(Supervisor, RestartNowRunsTheRestartOnceAndCounts) {
  boost::asio::io_context io;
  RestartPolicy policy{milliseconds(60'000), milliseconds(60'000)};
  Supervisor supervisor(io, policy);
  int ran = 0;
  supervisor.failed([&] { ++ran; });
  supervisor.restart_now();
  supervisor.restart_now();  // already due: still once
  io.run_for(milliseconds(500));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(supervisor.restarts(), 1u);
  EXPECT_FALSE(supervisor.pending());
  EXPECT_TRUE(supervisor.status()["next_restart_in_ms"].is_null());
}

TEST(Supervisor, CancelDropsThePendingRestart) {
  boost::asio::io_context io;
  RestartPolicy policy{milliseconds(1), milliseconds(1)};
  Supervisor supervisor(io, policy);
  int ran = 0;
  supervisor.failed([&] { ++ran; });
  supervisor.cancel();
  io.run_for(milliseconds(50));
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(supervisor.restarts(), 0u);
}

TEST(Supervisor, TheTimerRestarts) {
  boost::asio::io_context io;
  RestartPolicy policy{milliseconds(1), milliseconds(2)};
  Supervisor supervisor(io, policy);
  int ran = 0;
  supervisor.failed([&] { ++ran; });
  for (int i = 0; i < 100 && ran == 0; ++i) io.run_one_for(milliseconds(100));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(supervisor.restarts(), 1u);
}

}  // namespace
}  // namespace clusterd::reconcile
