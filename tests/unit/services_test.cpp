#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>

#include "services/fd_service.hpp"
#include "services/timer_service.hpp"
#include "services/work_pool.hpp"

using namespace clusterd::services;
using namespace std::chrono_literals;

namespace {

// Runs the loop until `done` holds or the deadline passes (no sleeps as synchronisation).
template <typename Pred>
bool run_until(boost::asio::io_context &io, Pred done, std::chrono::milliseconds deadline = 5s) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (int i = 0; i < 100000 && !done() && std::chrono::steady_clock::now() < end; ++i) {
    io.restart();
    io.run_for(10ms);
  }
  return done();
}

}  // namespace

TEST(TimerService, OneShotFiresOnceAndNeverInline) {
  boost::asio::io_context io;
  TimerService timers(io);
  int fired = 0;
  timers.add(0ms, 0ms, [&](std::uint64_t) { ++fired; });
  EXPECT_EQ(fired, 0);  // not from inside add()
  ASSERT_TRUE(run_until(io, [&] { return fired == 1; }));
  io.restart();
  io.run_for(30ms);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(timers.active(), 0u);
}

TEST(TimerService, PeriodicUntilCancelledFromItsOwnCallback) {
  boost::asio::io_context io;
  TimerService timers(io);
  int fired = 0;
  timers.add(1ms, 1ms, [&](std::uint64_t id) {
    if (++fired == 3) timers.cancel(id);
  });
  ASSERT_TRUE(run_until(io, [&] { return fired == 3; }));
  io.restart();
  io.run_for(30ms);
  EXPECT_EQ(fired, 3);
  EXPECT_EQ(timers.active(), 0u);
}

TEST(TimerService, CancelledTimerNeverFires) {
  boost::asio::io_context io;
  TimerService timers(io);
  bool fired = false, other = false;
  auto id = timers.add(5ms, 0ms, [&](std::uint64_t) { fired = true; });
  timers.add(20ms, 0ms, [&](std::uint64_t) { other = true; });
  timers.cancel(id);
  timers.cancel(987654321);  // unknown: harmless
  ASSERT_TRUE(run_until(io, [&] { return other; }));
  EXPECT_FALSE(fired);
}

TEST(FdService, LevelTriggeredUntilDrained) {
  boost::asio::io_context io;
  FdService fds(io);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_EQ(::write(pipe_fds[1], "abc", 3), 3);
  int calls = 0;
  std::string got;
  auto id =
      fds.watch(pipe_fds[0], FdService::kRead, [&](std::uint64_t, int fd, std::uint32_t ready) {
        ++calls;
        EXPECT_TRUE(ready & FdService::kRead);
        char c;
        if (::read(fd, &c, 1) == 1) got += c;  // one byte per call: level mode must call again
      });
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(run_until(io, [&] { return got == "abc"; }));
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(::write(pipe_fds[1], "d", 1), 1);
  ASSERT_TRUE(run_until(io, [&] { return got == "abcd"; }));
  fds.unwatch(id);
  ASSERT_EQ(::write(pipe_fds[1], "e", 1), 1);
  io.restart();
  io.run_for(30ms);
  EXPECT_EQ(got, "abcd");  // unwatched: no more calls
  // The fd was not closed by the service.
  char c;
  EXPECT_EQ(::read(pipe_fds[0], &c, 1), 1);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(FdService, RejectsBadArguments) {
  boost::asio::io_context io;
  FdService fds(io);
  EXPECT_EQ(fds.watch(-1, FdService::kRead, [](auto, auto, auto) {}), 0u);
  EXPECT_EQ(fds.watch(0, 0, [](auto, auto, auto) {}), 0u);
}

TEST(WorkPool, RunsWorkOffTheLoopAndDoneOnIt) {
  boost::asio::io_context io;
  WorkPool pool(io, 2);
  auto loop_thread = std::this_thread::get_id();
  std::atomic<bool> off_loop{false};
  bool done = false;
  pool.submit([&] { off_loop = std::this_thread::get_id() != loop_thread; },
              [&] {
                EXPECT_EQ(std::this_thread::get_id(), loop_thread);
                done = true;
              });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_TRUE(off_loop);
}

TEST(WorkPool, CancelQueuedRunningAndFinished) {
  boost::asio::io_context io;
  WorkPool pool(io, 1);
  std::atomic<bool> release{false}, started{false};
  bool first_done = false, second_ran = false, second_done = false;
  auto first = pool.submit(
      [&] {
        started = true;
        for (int i = 0; i < 5000 && !release; ++i) std::this_thread::sleep_for(1ms);  // bounded
      },
      [&] { first_done = true; });
  auto second = pool.submit([&] { second_ran = true; }, [&] { second_done = true; });
  for (int i = 0; i < 5000 && !started; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(started);
  EXPECT_EQ(pool.cancel(second), WorkPool::Cancel::dropped);
  EXPECT_EQ(pool.cancel(first), WorkPool::Cancel::running);
  release = true;
  pool.wait_for({first});
  io.restart();
  io.run_for(30ms);
  EXPECT_FALSE(first_done);
  EXPECT_FALSE(second_ran);
  EXPECT_FALSE(second_done);
  // Finished but done not yet delivered: cancel still wins.
  std::atomic<bool> third_ran{false};
  bool third_done = false;
  auto third = pool.submit([&] { third_ran = true; }, [&] { third_done = true; });
  for (int i = 0; i < 5000 && !third_ran; ++i) std::this_thread::sleep_for(1ms);
  pool.wait_for({third});
  EXPECT_EQ(pool.cancel(third), WorkPool::Cancel::dropped);
  io.restart();
  io.run_for(30ms);
  EXPECT_FALSE(third_done);
}
