#include "reconcile/supervisor.hpp"

#include <boost/asio/post.hpp>

#include <clusterd/backoff.hpp>

namespace clusterd::reconcile {

Supervisor::Supervisor(boost::asio::io_context &io, const RestartPolicy &policy)
    : policy_(policy), timer_(io) {}

Supervisor::~Supervisor() {
  *alive_ = false;
}

void Supervisor::running() {
  running_since_ = Clock::now();
}

std::chrono::milliseconds Supervisor::failed(std::function<void()> restart) {
  auto now = Clock::now();
  if (running_since_ && now - *running_since_ >= policy_.max) failures_ = 0;  // it was stable
  running_since_.reset();
  ++failures_;
  auto wait = backoff_delay(policy_.initial, policy_.max, failures_, random_);
  restart_ = std::move(restart);
  next_at_ = now + wait;
  timer_.expires_at(*next_at_);
  timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code &ec) {
        auto a = alive.lock();
        if (!ec && a && *a) fire();
      });
  return wait;
}

void Supervisor::restart_now() {
  if (!next_at_) return;
  timer_.cancel();
  boost::asio::post(timer_.get_executor(), [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (a && *a) fire();
  });
}

void Supervisor::cancel() {
  next_at_.reset();
  restart_ = nullptr;
  timer_.cancel();
}

void Supervisor::fire() {
  if (!next_at_ || !restart_) return;
  next_at_.reset();
  ++restarts_;
  auto restart = std::move(restart_);
  restart_ = nullptr;
  restart();
}

nlohmann::json Supervisor::status() const {
  nlohmann::json next = nullptr;
  if (next_at_)
    next = std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(*next_at_ - Clock::now()).count());
  return {{"restarts", restarts_}, {"next_restart_in_ms", next}};
}

}  // namespace clusterd::reconcile
