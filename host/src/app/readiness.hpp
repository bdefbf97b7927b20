// When the daemon is ready (READY=1, /ready, status "ready"): at start with ready_when =
// "started"; with "formed", once every topology has formed, or when ready_timeout runs out (the
// log then says which topology was not formed and where it stood). The first time counts.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <string>

#include "app/notify.hpp"
#include "config/config.hpp"
#include "reconcile/topology.hpp"

namespace clusterd::app {

class Readiness {
 public:
  // `summary` is the STATUS= text sent with READY=1.
  Readiness(boost::asio::io_context &io, Notifier &notifier,
            const reconcile::Topologies &topologies, std::function<std::string()> summary);

  // The configuration is applied for the first time: ready now, or the wait begins.
  void start(const config::Settings &settings);
  // A topology formed: READY=1 if that was the last one.
  void update();
  // Around a reload: RELOADING=1 and READY=1 are for a daemon that has said READY already; one
  // still waiting reports `text` as STATUS= and checks its (possibly new) rule again.
  void reloading();
  void reloaded(const config::Settings &settings, const std::string &text);

  // ready_when = "formed" and not yet ready: /ready and status say "not ready".
  bool waiting() const { return started_ && !ready_; }

 private:
  bool rule_holds() const;
  void become_ready(const char *why);  // appended to the "ready:" log line
  void timed_out();

  Notifier &notifier_;
  const reconcile::Topologies &topologies_;
  std::function<std::string()> summary_;
  boost::asio::steady_timer timer_;
  config::Settings settings_;
  bool started_ = false, ready_ = false;
};

}  // namespace clusterd::app
