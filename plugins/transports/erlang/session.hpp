// One managed BEAM node: a thread that keeps a hidden-node connection to it (reconnecting with
// exponential backoff), installs the nodeup/nodedown relay after every (re)connect, runs the
// transport's rpcs one at a time, polls erlang:nodes() as a consistency check, and reports
// everything to its owner, which hands it to the host's loop (host->post).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <clusterd/clusterd.h>

#include "dist_connection.hpp"
#include "io.hpp"

namespace clusterd::erlang {

// An operation for the managed node. id 0 is the session's own list check.
struct Request {
  uint64_t id = 0;
  Call call = Call::kNodes;
  std::string node;  // kConnectNode / kDisconnectNode
};

struct Result {
  uint64_t id = 0;
  clusterd_status_t status = CLUSTERD_OK;
  std::string message;             // why, on failure
  std::vector<std::string> nodes;  // kNodes: the managed node's visible peers
};

// What a session reports. Every function is called on the session's thread: implementations
// must be thread-safe (the transport posts each call to the loop).
class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  // A connection attempt failed; `hidden`: the name belongs to a hidden node (not managed).
  virtual void session_failed(uint64_t session, bool hidden, std::string error) = 0;
  // Connected, relay installed: `name` is the managed node, `peers` its visible nodes.
  virtual void session_up(uint64_t session, std::string name, std::set<std::string> peers) = 0;
  // The connection is gone (it reconnects on its own).
  virtual void session_down(uint64_t session, std::string error) = 0;
  // The managed node's visible peers changed; `reasons`: nodedown reasons of removed ones.
  virtual void session_peers(uint64_t session, std::set<std::string> peers,
                             std::map<std::string, std::string> reasons) = 0;
  // A Request finished.
  virtual void session_result(uint64_t session, Result result) = 0;
  // A line for the host's log. Never contains the cookie.
  virtual void session_log(int32_t level, std::string message) = 0;
};

using ConnectionFactory = std::function<std::unique_ptr<DistConnection>(
    const NodeIdentity &self, const std::string &cookie, const Canceller &cancel)>;

struct SessionConfig {
  uint64_t id = 0;
  std::string label;  // the node in messages until its real name is known
  std::string alive;  // its name in EPMD (the part before '@')
  std::string host;   // where EPMD and the node listen; resolved on every attempt
  uint16_t epmd_port = 4369;
  bool skip_hidden = false;  // nodes = "local": leave hidden nodes (remsh, probes) alone
  NodeIdentity self;
  // The cookie for the next attempt (re-read each time: ~/.erlang.cookie may appear later).
  // Returns false with a message (never the cookie) when there is none.
  std::function<bool(std::string &cookie, std::string &error)> cookie;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds rpc_timeout{15000};
  std::optional<std::chrono::milliseconds> list_interval;  // nullopt: never poll
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  ConnectionFactory factory;
};

class Session {
 public:
  Session(SessionConfig config, SessionOwner &owner);
  ~Session();  // cancel() + join()
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  void start();            // spawns the thread
  void cancel() noexcept;  // asks the thread to finish; every wait it is in returns at once
  void join() noexcept;
  // Queues `request` ([thread-safe]). False when the session is not connected: nothing queued.
  // Once queued, a request always gets exactly one session_result.
  bool submit(Request request);

  const SessionConfig &config() const noexcept { return config_; }

 private:
  void run() noexcept;
  void attempt();
  Reply call_sync(Call call, const std::string &arg = {});
  Incoming pump(Deadline deadline, const std::string &what);
  void handle(const Incoming &in);
  void install_relay();
  void serve();
  void finish(const Request &request, const Reply &reply);
  void apply_list(const std::vector<std::string> &listed, bool internal);
  void notify_peers();
  void fail_requests(const std::string &message);
  std::string who() const { return name_.empty() ? config_.label : name_; }
  void log(int32_t level, const std::string &message) { owner_.session_log(level, message); }

  SessionConfig config_;
  SessionOwner &owner_;
  Canceller cancel_;
  EventFd doorbell_;
  std::thread thread_;

  std::mutex mutex_;  // guards serving_, queue_
  bool serving_ = false;
  std::deque<Request> queue_;

  // Thread-only state.
  std::unique_ptr<DistConnection> conn_;
  std::optional<Request> current_;  // the rpc in flight
  std::string name_;                // the managed node's name, once connected
  bool up_ = false;
  bool hidden_ = false;
  uint16_t hidden_port_ = 0;  // nodes = "local": the node at this port is hidden: do not knock
  bool relay_alive_ = false, relay_ready_ = false;
  std::set<std::string> peers_;
  std::set<std::string> changed_since_list_;  // nodes events changed since kNodes was sent
  std::map<std::string, std::string> down_reasons_;
};

}  // namespace clusterd::erlang
