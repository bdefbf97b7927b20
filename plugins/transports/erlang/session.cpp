#include "session.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <string.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <clusterd/plugin.hpp>

#include "epmd_query.hpp"

namespace clusterd::erlang {

namespace {

using std::chrono::milliseconds;
using Kind = DistError::Kind;

std::string seconds_text(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

Session::Session(SessionConfig config, SessionOwner &owner)
    : config_(std::move(config)), owner_(owner) {}

Session::~Session() {
  cancel();
  join();
}

void Session::start() {
  thread_ = std::thread([this] { run(); });
}

void Session::cancel() noexcept {
  cancel_.fire();
}

void Session::join() noexcept {
  if (thread_.joinable()) thread_.join();
}

bool Session::submit(Request request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!serving_) return false;
    queue_.push_back(std::move(request));
  }
  doorbell_.signal();
  return true;
}

void Session::run() noexcept {
  clusterd::Backoff backoff(config_.backoff_initial, config_.backoff_max);
  while (!cancel_.fired()) {
    std::string error;
    hidden_ = false;
    try {
      attempt();
    } catch (const DistError &e) {
      if (e.kind() != Kind::kCancelled) error = e.what();
    } catch (const std::exception &e) {
      error = e.what();
    } catch (...) {
      error = "unknown error";
    }
    conn_.reset();
    relay_alive_ = relay_ready_ = false;
    try {
      if (cancel_.fired()) break;
      fail_requests("the connection to " + who() + " was lost: " + error);
      if (up_) {
        up_ = false;
        backoff.reset();  // it worked before: try again soon
        peers_.clear();
        owner_.session_down(config_.id, error);
      } else {
        owner_.session_failed(config_.id, hidden_, error);
      }
    } catch (...) {
      // out of memory while reporting: keep going, the next attempt reports again
    }
    // Jittered (the SDK's rule), so that several daemons do not knock in lockstep.
    const milliseconds wait = hidden_ ? config_.backoff_max : backoff.next();
    if (!sleep_until(cancel_, Clock::now() + wait)) break;
  }
  try {
    fail_requests(who() + " is no longer managed");
  } catch (...) {
  }
}

void Session::attempt() {
  in_addr ip{};
  if (std::string error = resolve_ipv4(config_.host, ip); !error.empty())
    throw DistError(Kind::kRefused, error);
  sockaddr_in epmd{};
  epmd.sin_family = AF_INET;
  epmd.sin_port = htons(config_.epmd_port);
  epmd.sin_addr = ip;
  const EpmdPort port = epmd_port_please(epmd, config_.alive, cancel_, config_.connect_timeout);
  if (!port.registered)
    throw DistError(Kind::kRefused, config_.label + " is not registered in epmd at " +
                                        endpoint_text(epmd) + " (not running?)");
  // EPMD cannot tell (OTP registers -hidden nodes as normal ones); C nodes may say 'H'.
  if (config_.skip_hidden && (port.hidden || port.port == hidden_port_)) {
    hidden_ = true;
    throw DistError(Kind::kRefused, "'" + config_.alive + "' is a hidden node: not managed");
  }

  std::string cookie, error;
  if (!config_.cookie(cookie, error)) throw DistError(Kind::kAuth, error);
  conn_ = config_.factory(config_.self, cookie, cancel_);
  explicit_bzero(cookie.data(), cookie.size());

  sockaddr_in node = epmd;
  node.sin_port = htons(port.port);
  conn_->open(node, config_.label, config_.connect_timeout);

  const Reply self = call_sync(Call::kNode);
  if (!self.ok || self.atom.find('@') == std::string::npos)
    throw DistError(Kind::kProtocol, "erlang:node() on " + config_.label + ": " +
                                         (self.ok ? "'" + self.atom + "'" : self.error));
  if (!name_.empty() && name_ != self.atom)
    log(CLUSTERD_LOG_INFO, "managed node " + name_ + " is now " + self.atom);
  name_ = self.atom;
  if (config_.skip_hidden) {
    const Reply hidden = call_sync(Call::kIsHidden);
    if (hidden.ok && hidden.atom == "true") {
      hidden_ = true;
      hidden_port_ = port.port;  // until it registers again (another port: another node)
      throw DistError(Kind::kRefused, name_ + " is a hidden node: not managed");
    }
  }

  install_relay();
  const Reply listed = call_sync(Call::kNodes);
  if (!listed.ok)
    throw DistError(Kind::kProtocol, "erlang:nodes() on " + name_ + ": " + listed.error);
  apply_list(listed.nodes, true);
  down_reasons_.clear();

  {
    std::lock_guard<std::mutex> lock(mutex_);
    serving_ = true;
  }
  up_ = true;
  owner_.session_up(config_.id, name_, peers_);
  serve();
}

Incoming Session::pump(Deadline deadline, const std::string &what) {
  const int err = wait_fd(conn_->fd(), POLLIN, cancel_, deadline);
  if (err == ECANCELED) throw DistError(Kind::kCancelled, "cancelled");
  if (err == ETIMEDOUT)
    throw DistError(Kind::kTimeout,
                    what + ": no answer within " + seconds_text(config_.rpc_timeout));
  if (err != 0) throw DistError(Kind::kIo, what + ": " + error_text(err));
  Incoming in = conn_->receive(config_.rpc_timeout);
  if (in.kind != Incoming::Kind::kReply) handle(in);
  return in;
}

Reply Session::call_sync(Call call, const std::string &arg) {
  conn_->send(call, arg, config_.rpc_timeout);
  if (call == Call::kNodes) changed_since_list_.clear();
  const Deadline deadline = deadline_after(config_.rpc_timeout);
  const std::string what = std::string(call_name(call)) + " on " + who();
  for (;;) {
    Incoming in = pump(deadline, what);
    if (in.kind != Incoming::Kind::kReply) continue;
    if (in.call != call) throw DistError(Kind::kProtocol, what + ": reply to another call");
    return std::move(in.reply);
  }
}

void Session::handle(const Incoming &in) {
  switch (in.kind) {
    case Incoming::Kind::kNodeEvent:
      if (in.hidden || in.node == name_) return;
      changed_since_list_.insert(in.node);
      if (in.up) {
        if (!peers_.insert(in.node).second) return;
      } else {
        if (peers_.erase(in.node) == 0) return;
        down_reasons_[in.node] = in.reason;
      }
      if (up_) notify_peers();
      return;
    case Incoming::Kind::kRelayReady:
      relay_ready_ = true;
      return;
    case Incoming::Kind::kRelayExited:
      relay_alive_ = relay_ready_ = false;
      log(CLUSTERD_LOG_WARN, "the nodeup/nodedown relay on " + who() + " exited (" + in.reason +
                                 "): installing it again");
      return;
    case Incoming::Kind::kNothing:
    case Incoming::Kind::kReply:
      return;
  }
}

void Session::install_relay() {
  relay_alive_ = relay_ready_ = false;
  const std::string what = "installing the nodeup/nodedown relay on " + who();
  for (Call step : {Call::kScanRelay, Call::kParseRelay, Call::kSpawnRelay}) {
    const Reply reply = call_sync(step);
    if (!reply.ok)
      throw DistError(Kind::kProtocol, what + ": " + call_name(step) + ": " + reply.error);
  }
  relay_alive_ = true;
  const Deadline deadline = deadline_after(config_.rpc_timeout);
  while (!relay_ready_) {
    if (!relay_alive_) throw DistError(Kind::kProtocol, what + ": the relay exited at once");
    pump(deadline, what);
  }
}

void Session::serve() {
  const auto interval = config_.list_interval;
  Deadline next_list;
  if (interval) next_list = Clock::now() + *interval;
  Clock::time_point rpc_deadline{};
  bool list_now = false;
  for (;;) {
    if (!current_) {
      if (!relay_alive_) {
        install_relay();  // pumps events meanwhile; requests wait their turn
        list_now = true;  // events were missed while there was no relay
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!queue_.empty()) {
          current_ = std::move(queue_.front());
          queue_.pop_front();
        }
      }
      if (!current_ && (list_now || (next_list && Clock::now() >= *next_list))) {
        current_ = Request{0, Call::kNodes, {}};
        if (interval) next_list = Clock::now() + *interval;
        list_now = false;
      }
      if (current_) {
        conn_->send(current_->call, current_->node, config_.rpc_timeout);
        if (current_->call == Call::kNodes) changed_since_list_.clear();
        rpc_deadline = Clock::now() + config_.rpc_timeout;
      }
    }
    const Deadline wake = current_ ? Deadline(rpc_deadline) : next_list;
    pollfd fds[3] = {
        {conn_->fd(), POLLIN, 0}, {doorbell_.fd(), POLLIN, 0}, {cancel_.fd(), POLLIN, 0}};
    int timeout = -1;
    if (wake) {
      const auto left = std::chrono::ceil<milliseconds>(*wake - Clock::now()).count();
      timeout = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
    }
    const int n = poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) throw DistError(Kind::kIo, "poll: " + error_text(errno));
    if (cancel_.fired()) throw DistError(Kind::kCancelled, "cancelled");
    if (n > 0 && fds[1].revents != 0) doorbell_.drain();
    if (n > 0 && fds[0].revents != 0) {
      Incoming in = conn_->receive(config_.rpc_timeout);
      if (in.kind == Incoming::Kind::kReply) {
        if (!current_ || in.call != current_->call)
          throw DistError(Kind::kProtocol, "a reply from " + who() + " to no call in flight");
        const Request done = std::move(*current_);
        current_.reset();
        finish(done, in.reply);
      } else {
        handle(in);
      }
      continue;  // readable again soon? poll again before checking the deadline
    }
    if (current_ && Clock::now() >= rpc_deadline)
      throw DistError(Kind::kTimeout, who() + " did not answer " + call_name(current_->call) +
                                          " within " + seconds_text(config_.rpc_timeout));
  }
}

void Session::finish(const Request &request, const Reply &reply) {
  Result result;
  result.id = request.id;
  const std::string &target = request.node;
  if (!reply.ok) {
    result.status = CLUSTERD_E_IO;
    result.message =
        std::string(call_name(request.call)) + " on " + who() + " failed: " + reply.error;
  } else {
    switch (request.call) {
      case Call::kNodes:
        apply_list(reply.nodes, request.id == 0);
        result.nodes.assign(peers_.begin(), peers_.end());
        break;
      case Call::kConnectNode:
        if (reply.atom == "false") {
          result.status = CLUSTERD_E_UNREACHABLE;
          result.message = "node " + who() + " could not reach " + target;
        } else if (reply.atom == "ignored") {
          result.status = CLUSTERD_E_NOT_ALIVE;
          result.message = who() + " is not distributed";
        } else if (reply.atom != "true") {
          result.status = CLUSTERD_E_IO;
          result.message = "net_kernel:connect_node on " + who() + " returned " + reply.atom;
        }
        break;
      case Call::kDisconnectNode:
        if (reply.atom == "false") {
          result.status = CLUSTERD_E_NOT_FOUND;
          result.message = who() + " was not connected to " + target;
        } else if (reply.atom == "ignored") {
          result.status = CLUSTERD_E_NOT_ALIVE;
          result.message = who() + " is not distributed";
        } else if (reply.atom != "true") {
          result.status = CLUSTERD_E_IO;
          result.message = "erlang:disconnect_node on " + who() + " returned " + reply.atom;
        }
        break;
      default:
        break;
    }
  }
  if (request.id == 0) {
    if (!reply.ok) log(CLUSTERD_LOG_WARN, "list check: " + result.message);
    return;
  }
  owner_.session_result(config_.id, std::move(result));
}

// A listing is a snapshot taken when the rpc ran: nodes that events changed since we sent it
// keep the state the events gave them.
void Session::apply_list(const std::vector<std::string> &listed, bool internal) {
  std::set<std::string> now(listed.begin(), listed.end());
  now.erase(name_);
  for (const auto &node : changed_since_list_) {
    if (peers_.count(node) != 0)
      now.insert(node);
    else
      now.erase(node);
  }
  changed_since_list_.clear();
  if (now == peers_) return;
  if (internal && up_) {
    std::string diff;
    for (const auto &n : now)
      if (peers_.count(n) == 0) diff += " +" + n;
    for (const auto &n : peers_)
      if (now.count(n) == 0) diff += " -" + n;
    log(CLUSTERD_LOG_INFO, "list check on " + who() + " corrected missed events:" + diff);
  }
  for (const auto &n : peers_)
    if (now.count(n) == 0) down_reasons_.emplace(n, "not in erlang:nodes()");
  peers_ = std::move(now);
  if (up_) notify_peers();
}

void Session::notify_peers() {
  owner_.session_peers(config_.id, peers_, std::exchange(down_reasons_, {}));
}

void Session::fail_requests(const std::string &message) {
  std::deque<Request> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    serving_ = false;
    failed.swap(queue_);
  }
  if (current_ && current_->id != 0) failed.push_front(*current_);
  current_.reset();
  for (const auto &request : failed)
    owner_.session_result(config_.id, Result{request.id, CLUSTERD_E_AGAIN, message, {}});
}

}  // namespace clusterd::erlang
