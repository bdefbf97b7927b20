// Event hooks ([hooks] on_nodeup / on_nodedown): runs a command per node joining or leaving a
// transport's connected set, from a bounded queue, never blocking the loop and never a shell.
#pragma once

#include <boost/asio/io_context.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "reconcile/topology.hpp"
#include "services/process_service.hpp"

namespace clusterd::hooks {

using reconcile::ConnectedChange;
using reconcile::Topology;

struct Event {
  bool up = false;
  std::string node;
  std::string topology;  // comma-separated
  std::string transport;
  std::string reason;  // nodedown, when known
};

class Runner {
 public:
  // Counters of `clusterctl status --json`. queued and running are current; the rest are
  // totals. Every run ends as exactly one of ran (exit 0), failed or timed_out.
  struct Counters {
    std::uint64_t queued = 0, running = 0, ran = 0, failed = 0, timed_out = 0, dropped = 0;
  };

  explicit Runner(boost::asio::io_context &io);
  ~Runner();
  Runner(const Runner &) = delete;
  Runner &operator=(const Runner &) = delete;

  // New settings apply to events fired from now on; running hooks are left to finish.
  void configure(const config::HooksSpec &spec);
  // True when a command is configured for this kind of event.
  bool wants(bool up) const { return !(up ? spec_.on_nodeup : spec_.on_nodedown).empty(); }
  // Runs the event's command now, queues it, or drops and counts it when the queue is full.
  void fire(Event event);
  // Daemon stop: queued events are dropped; running hooks get SIGTERM (SIGKILL after a grace
  // period) and are reaped, waiting a bounded time. Later events are dropped.
  void stop();

  Counters counters() const;
  nlohmann::json status() const;

 private:
  struct Job {
    Event event;
    std::vector<std::string> argv;
    std::chrono::milliseconds timeout;
  };

  void pump();
  void spawn(Job job);
  void finish(const Job &job, const services::ProcessService::Result &result);

  config::HooksSpec spec_;
  bool stopped_ = false;
  std::deque<Job> queue_;
  std::map<std::uint64_t, Job> running_;  // by process id
  Counters counters_;
  std::uint64_t burst_drops_ = 0;  // dropped since the queue was last full: logged once a burst
  services::ProcessService processes_;  // last: destroyed (children reaped) first
};

// Fires the hooks of `transport`'s connected-set changes. TOPOLOGY is the topologies using
// the transport whose discovered set holds the node, or all of them if none does.
void fire(Runner &hooks, const std::string &transport,
          const std::map<std::string, std::unique_ptr<Topology>> &topologies,
          const std::vector<ConnectedChange> &changes);

}  // namespace clusterd::hooks
