// Restarts a failed unit (a transport or a topology) as an OTP supervisor restarts a crashed
// worker, but without ever giving up: each failure waits longer before the next start
// (clusterd::backoff_delay: from restart_backoff, doubling with jitter, capped at restart_max),
// so a plugin that fails on every start costs one attempt per restart_max at most. A unit that
// ran for restart_max without failing is stable: its next failure waits restart_backoff again.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "config/schema.hpp"

namespace clusterd::reconcile {

struct RestartPolicy {
  std::chrono::milliseconds initial{1000}, max{30000};
};

// A unit's options checked again for a restart (secrets re-read); null with `error` when they
// no longer check.
using OptionsLoader = std::function<std::unique_ptr<config::OptionValues>(std::string &error)>;

class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;

  // `policy` is the daemon's, read at each failure (a reload's new values apply at once).
  Supervisor(boost::asio::io_context &io, const RestartPolicy &policy);
  ~Supervisor();

  // The unit started (or restarted) successfully.
  void running();
  // The unit failed: `restart` runs after the backoff. Returns the wait.
  std::chrono::milliseconds failed(std::function<void()> restart);
  // Restarts now if one is pending (what it waited for came back).
  void restart_now();
  // Cancels a pending restart (the unit is replaced or given up).
  void cancel();

  std::uint64_t restarts() const { return restarts_; }
  bool pending() const { return next_at_.has_value(); }
  // {"restarts": N, "next_restart_in_ms": ms or null}
  nlohmann::json status() const;

 private:
  void fire();

  const RestartPolicy &policy_;
  boost::asio::steady_timer timer_;
  std::mt19937_64 random_{std::random_device{}()};
  unsigned failures_ = 0;  // since the unit was last stable
  std::uint64_t restarts_ = 0;
  std::optional<Clock::time_point> running_since_, next_at_;
  std::function<void()> restart_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusterd::reconcile
