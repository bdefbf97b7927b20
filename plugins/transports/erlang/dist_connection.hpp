// The one interface between the erlang transport and an Erlang distribution implementation:
// a hidden-node connection to one BEAM node that can send the few rpcs the transport needs and
// receive their replies and the event relay's messages. Today's implementation uses libei
// (ei_connection.cpp); a native one (IPv6, no erlang-dev at build time) can replace it without
// touching the transport, as long as it keeps the contract below.
//
// Contract:
//  - One connection is used by one thread. Every blocking call is bounded by its timeout and
//    interrupted by the Canceller the connection was made with (it then throws kCancelled).
//  - At most one rpc is in flight: replies ({rex, Reply}) carry no correlation id, so send()
//    may only be called again once receive() returned the previous call's kReply.
//  - Nothing touches process-wide state (signals, environment); writes never raise SIGPIPE.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "io.hpp"

namespace clusterd::erlang {

class DistError : public std::runtime_error {
 public:
  enum class Kind {
    kCancelled,  // the Canceller fired
    kTimeout,    // a deadline passed
    kRefused,    // nothing listens / not registered in EPMD / the node refused us
    kAuth,       // the node rejected the handshake: most likely a wrong cookie
    kIo,         // the connection broke
    kProtocol,   // an unexpected reply
  };
  DistError(Kind kind, const std::string &message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// Who we are on the wire: a hidden C node.
struct NodeIdentity {
  std::string alive;  // "clusterd_<pid>_<random>", unique per daemon instance
  std::string host;   // host part of our node name (cosmetic: nobody connects back)
  uint32_t creation = 0;
  std::string name() const { return alive + "@" + host; }
};

// The rpcs the transport makes. The implementation encodes the arguments and decodes the reply.
enum class Call {
  kNode,            // erlang:node()                    -> atom
  kNodes,           // erlang:nodes()                   -> [atom] (visible nodes only)
  kIsHidden,        // init:get_argument(hidden)        -> "true" | "false" (in Reply::atom)
  kConnectNode,     // net_kernel:connect_node(Arg)     -> true | false | ignored
  kDisconnectNode,  // erlang:disconnect_node(Arg)      -> true | false | ignored
  kScanRelay,       // erl_scan:string(kRelaySource)    -> {ok, Tokens, _}  (kept inside)
  kParseRelay,      // erl_parse:parse_exprs(Tokens)    -> {ok, Exprs}      (kept inside)
  kSpawnRelay,      // erlang:spawn(erl_eval, exprs, [Exprs, [{'Pid', EventPid}]]) -> pid
};
// "net_kernel:connect_node", for messages.
inline const char *call_name(Call call) noexcept {
  switch (call) {
    case Call::kNode:
      return "erlang:node";
    case Call::kNodes:
      return "erlang:nodes";
    case Call::kIsHidden:
      return "init:get_argument";
    case Call::kConnectNode:
      return "net_kernel:connect_node";
    case Call::kDisconnectNode:
      return "erlang:disconnect_node";
    case Call::kScanRelay:
      return "erl_scan:string";
    case Call::kParseRelay:
      return "erl_parse:parse_exprs";
    case Call::kSpawnRelay:
      return "erlang:spawn";
  }
  return "?";
}

// The nodeup/nodedown relay (erlang.md §2.6), run by erl_eval on the managed node: stdlib only,
// nothing to load. It links to our event pid, so it dies with our connection (and we hear if it
// dies), subscribes to every nodeup/nodedown and forwards them to `Pid`.
inline constexpr const char *kRelaySource =
    "link(Pid), "
    "ok = net_kernel:monitor_nodes(true, [{node_type, all}, nodedown_reason]), "
    "Pid ! {clusterd_relay_ready, self()}, "
    "Me = node(Pid), "
    "Loop = fun L() -> "
    "  receive "
    "    {nodedown, Me, _} -> exit(normal); "
    "    {Ev, N, Info} when Ev =:= nodeup; Ev =:= nodedown -> "
    "      Pid ! {clusterd_node_event, Ev, N, Info}, L(); "
    "    _ -> L() "
    "  end "
    "end, "
    "Loop().";

struct Reply {
  bool ok = false;                 // false: {badrpc, _} or an unexpected shape (see `error`)
  std::string atom;                // kNode, kConnectNode, kDisconnectNode
  std::vector<std::string> nodes;  // kNodes
  std::string error;
};

struct Incoming {
  enum class Kind {
    kNothing,      // a tick, or a message we do not care about
    kReply,        // the reply to the call in flight
    kNodeEvent,    // the relay forwarded a nodeup / nodedown
    kRelayReady,   // the relay subscribed to node events
    kRelayExited,  // the relay died (its link fired)
  };
  Kind kind = Kind::kNothing;
  Call call = Call::kNode;  // kReply: which call this answers
  Reply reply;              // kReply
  bool up = false;          // kNodeEvent
  bool hidden = false;      // kNodeEvent: {node_type, hidden}
  std::string node;         // kNodeEvent
  std::string reason;       // kNodeEvent (nodedown): nodedown_reason; kRelayExited: exit reason
};

class DistConnection {
 public:
  virtual ~DistConnection() = default;

  // Connects to the node listening at `address` (from EPMD) and does the handshake as a
  // hidden node. `peer` names the node in messages. Throws DistError.
  virtual void open(const sockaddr_in &address, const std::string &peer,
                    std::chrono::milliseconds timeout) = 0;
  // The socket: poll it for POLLIN, then call receive().
  virtual int fd() const noexcept = 0;
  // Sends `call` (with `arg`, a node name, for kConnectNode / kDisconnectNode). Throws DistError.
  virtual void send(Call call, std::string_view arg, std::chrono::milliseconds timeout) = 0;
  // Reads one message (answering ticks); blocks up to `timeout` for it to be complete.
  // Throws DistError when the connection is unusable.
  virtual Incoming receive(std::chrono::milliseconds timeout) = 0;
};

// The libei implementation. `cookie` is copied; it is never logged nor put in an error.
std::unique_ptr<DistConnection> make_ei_connection(const NodeIdentity &self,
                                                   const std::string &cookie,
                                                   const Canceller &cancel);

}  // namespace clusterd::erlang
