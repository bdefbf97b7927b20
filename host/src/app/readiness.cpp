#include "app/readiness.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "config/constraints.hpp"
#include "reconcile/formation.hpp"

namespace clusterd::app {

Readiness::Readiness(boost::asio::io_context &io, Notifier &notifier,
                     const reconcile::Topologies &topologies, std::function<std::string()> summary)
    : notifier_(notifier), topologies_(topologies), summary_(std::move(summary)), timer_(io) {}

void Readiness::start(const config::Settings &settings) {
  settings_ = settings;
  started_ = true;
  if (settings_.ready_when == "formed" && settings_.ready_timeout.count() > 0) {
    timer_.expires_after(settings_.ready_timeout);
    timer_.async_wait([this](const boost::system::error_code &ec) {
      if (!ec) timed_out();
    });
  }
  update();
}

bool Readiness::rule_holds() const {
  if (settings_.ready_when != "formed") return true;
  for (const auto &[name, topology] : topologies_)
    if (!topology->formed()) return false;
  return true;
}

void Readiness::update() {
  if (started_ && !ready_ && rule_holds())
    become_ready(settings_.ready_when == "formed" ? ", formed" : "");
}

void Readiness::become_ready(const char *why) {
  ready_ = true;
  timer_.cancel();
  notifier_.ready(summary_());
  std::size_t running = 0;
  for (const auto &[name, topology] : topologies_) running += topology->state() == "running";
  // The monotonic timestamp lets bench/ measure exec → ready without polling.
  spdlog::info("ready: {} of {} topology(ies) running{} (monotonic_ns={})", running,
               topologies_.size(), why,
               std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count());
}

void Readiness::timed_out() {
  if (ready_) return;
  std::string why;
  for (const auto &[name, topology] : topologies_) {
    if (topology->formed()) continue;
    auto status = topology->status();
    why += (why.empty() ? "" : "; ") + std::string("topology ") + name + ": " +
           (status["state"] == "running" ? reconcile::formation_text(status["formation"])
                                         : status["state"].get<std::string>() + " (" +
                                               status["error"].get<std::string>() + ")");
  }
  spdlog::warn("ready_timeout ({}) passed before every topology formed, ready anyway: {}",
               config::duration_text(settings_.ready_timeout.count()), why);
  become_ready(", not formed (ready_timeout)");
}

void Readiness::reloading() {
  if (ready_) notifier_.send("RELOADING=1");
}

void Readiness::reloaded(const config::Settings &settings, const std::string &text) {
  settings_.ready_when = settings.ready_when;  // the timeout keeps counting from the start
  if (ready_) return notifier_.ready(text);
  notifier_.status(text);
  update();
}

}  // namespace clusterd::app
