#include "services/work_pool.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "util/ids.hpp"

namespace clusterd::services {

WorkPool::WorkPool(boost::asio::io_context &io, unsigned threads)
    : io_(io), max_threads_(std::max(1u, threads)) {}

WorkPool::~WorkPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (auto &thread : threads_) thread.join();
}

std::uint64_t WorkPool::submit(std::function<void()> work, std::function<void()> done) {
  auto id = util::next_id();
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({id, std::move(work), std::move(done)});
    if (threads_.size() < max_threads_ && threads_.size() < queue_.size() + running_.size())
      threads_.emplace_back([this] { run(); });
  }
  wake_.notify_one();
  return id;
}

WorkPool::Cancel WorkPool::cancel(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto queued =
      std::find_if(queue_.begin(), queue_.end(), [id](const Job &j) { return j.id == id; });
  if (queued != queue_.end()) {
    queue_.erase(queued);
    return Cancel::dropped;
  }
  if (running_.count(id)) {
    cancelled_.insert(id);
    return Cancel::running;
  }
  if (awaiting_done_.erase(id)) return Cancel::dropped;
  return Cancel::unknown;
}

void WorkPool::wait_for(const std::set<std::uint64_t> &ids) {
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [&] {
    return std::none_of(ids.begin(), ids.end(), [&](auto id) { return running_.count(id) > 0; });
  });
}

void WorkPool::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_ && queue_.empty()) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    running_.insert(job.id);
    lock.unlock();
    job.work();
    lock.lock();
    running_.erase(job.id);
    bool cancelled = cancelled_.erase(job.id) > 0;
    finished_.notify_all();
    if (!cancelled && !stopping_) {
      // A cancel() between here and the loop running `done` still wins: it removes the id.
      awaiting_done_.insert(job.id);
      boost::asio::post(io_, [this, id = job.id, done = std::move(job.done)] {
        {
          std::lock_guard guard(mutex_);
          if (!awaiting_done_.erase(id)) return;
        }
        done();
      });
    }
  }
}

}  // namespace clusterd::services
