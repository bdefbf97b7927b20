// A small pool for blocking work (third-party SDKs, file reads): jobs run on pool threads,
// completions on the loop. Threads start on first use, so a daemon that never submits work
// has none.
#pragma once

#include <boost/asio/io_context.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace clusterd::services {

class WorkPool {
 public:
  WorkPool(boost::asio::io_context &io, unsigned threads);
  ~WorkPool();  // finishes running jobs, drops queued ones, joins

  std::uint64_t submit(std::function<void()> work, std::function<void()> done);
  enum class Cancel { dropped, running, unknown };
  // dropped: neither function runs. running: `work` finishes, `done` will not run.
  Cancel cancel(std::uint64_t id);
  // Blocks until none of `ids` is running (queued ones must be cancelled first).
  void wait_for(const std::set<std::uint64_t> &ids);

 private:
  struct Job {
    std::uint64_t id;
    std::function<void()> work, done;
  };
  void run();

  boost::asio::io_context &io_;
  unsigned max_threads_;
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::deque<Job> queue_;
  std::set<std::uint64_t> running_, cancelled_, awaiting_done_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

}  // namespace clusterd::services
