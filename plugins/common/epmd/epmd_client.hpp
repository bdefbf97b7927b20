// An asynchronous EPMD client for plugins on the host's loop: one request (NAMES or
// PORT_PLEASE2) to one EPMD, with host services only (no threads, no blocking calls).
//
//   client_ = clusterd::epmd::Client::names(host(), {"10.0.0.1", 4369, 5s},
//                                           [this](clusterd::epmd::NamesOutcome r) { ... });
//
// Steps: resolve the host, non-blocking TCP connect (each address in turn), send the request,
// read until the reply is complete (PORT2: by its structure; NAMES: at EOF), at most
// kMaxReplyBytes, all within one deadline (`Target::timeout`). `done` runs exactly once, on the
// loop, never from inside the call that started the request, with the parsed reply or an error
// that names HOST:PORT ("EPMD at 10.0.0.1:4369: connection refused", "... timed out after
// 500 ms (connecting)", "... malformed NAMES reply: line 2: ...").
//
// Name resolution. IP literals (IPv4, IPv6, "[v6]", "fe80::1%eth0") are used as they are.
// Other names are looked up first in the hosts file (Target::hosts_file, /etc/hosts), then with
// the host's "clusterd.dns/1" service (A and AAAA queries, in parallel), like the default
// nsswitch "hosts: files dns". Addresses are tried IPv4 first, as OTP's erl_epmd (which
// resolves in the inet family) does. Why not getaddrinfo on "clusterd.work/1": a running
// getaddrinfo cannot be cancelled, so a dead DNS server would hold one of the host's two shared
// work threads (starving other plugins) and make stop() wait for it; the DNS service is
// cancelled at once and bounded by our deadline. The hosts file covers what DNS alone would
// miss (names only in /etc/hosts, "localhost"); other NSS sources (mdns, myhostname, LDAP) are
// not consulted.
//
// Cancel-safe: destroying or resetting the Client cancels everything (DNS, watch, timers) and
// closes the socket; `done` then never runs. Both are allowed from inside `done`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

#include "epmd.hpp"

namespace clusterd::epmd {

/// The options every plugin that asks EPMDs declares alike (`epmd_port`, `epmd_timeout`).
constexpr clusterd_option_t port_option(const char *description) noexcept {
  return option::range(option::integer("epmd_port", description, "4369"), 1, 65535);
}
constexpr clusterd_option_t timeout_option(const char *description) noexcept {
  return option::finite(option::positive(option::duration("epmd_timeout", description, "\"5s\"")));
}

/// Where to send a request.
struct Target {
  std::string host;                         ///< IP literal or host name ("[::1]" allowed)
  std::uint16_t port = kDefaultPort;        ///< EPMD's TCP port
  std::chrono::milliseconds timeout{5000};  ///< the whole request: resolve, connect, send, read
  std::string hosts_file = "/etc/hosts";    ///< consulted before DNS; "" = DNS only
};

/// How a request ended. `status`: CLUSTERD_OK; CLUSTERD_E_UNREACHABLE (refused, no route);
/// CLUSTERD_E_TIMEOUT; CLUSTERD_E_NOT_FOUND (the name does not resolve); CLUSTERD_E_IO
/// (malformed or oversized reply, read/write error); CLUSTERD_E_UNSUPPORTED (a host service
/// is missing); CLUSTERD_E_GENERIC otherwise.
struct Outcome {
  Status status = CLUSTERD_E_GENERIC;
  std::string endpoint;  ///< "HOST:PORT" as given ("[::1]:4369" for IPv6)
  std::string reason;    ///< why status != OK ("connection refused"), or ""
  /// "EPMD at HOST:PORT: REASON", or "" when status == OK.
  std::string error() const {
    return reason.empty() ? std::string() : "EPMD at " + endpoint + ": " + reason;
  }
};

/// The outcome of a NAMES request: the registered names on success.
struct NamesOutcome : Outcome {
  std::vector<Registered> names;
};

/// The outcome of a PORT_PLEASE2 request: `reply.registered` tells whether the name exists.
struct PortOutcome : Outcome {
  PortReply reply;
};

/// One EPMD request in flight (see the top of this file). Move-only; an empty Client is
/// inactive. Must not outlive the Host it was started with.
class Client {
 public:
  Client() noexcept;
  Client(Client &&other) noexcept;
  Client &operator=(Client &&other) noexcept;  // cancels this one's request first
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;
  ~Client();  // cancels

  /// Starts a NAMES request. Throws clusterd::Error(CLUSTERD_E_INVALID_ARG) for an empty host
  /// or a non-positive timeout, or what the host's timer service throws.
  static Client names(Host &host, Target target, std::function<void(NamesOutcome)> done);
  /// Starts a PORT_PLEASE2 request for `alive` (the part before '@'). Throws like names(),
  /// and for an invalid alive name (see valid_alive_name).
  static Client port_please2(Host &host, Target target, std::string_view alive,
                             std::function<void(PortOutcome)> done);

  /// Cancels the request: `done` never runs afterwards. Safe from inside `done`.
  void reset() noexcept;
  /// True until `done` starts running (or the request is reset).
  bool active() const noexcept;
  explicit operator bool() const noexcept { return active(); }

  struct Op;  // the request's state (epmd_client.cpp)

 private:
  std::unique_ptr<Op> op_;
};

/// "HOST:PORT", with IPv6 literals in brackets ("[::1]:4369").
std::string endpoint_text(std::string_view host, std::uint16_t port);

/// The addresses (as text, in file order) that hosts-file `contents` (/etc/hosts syntax) gives
/// `name`; the name is matched case-insensitively against every name and alias of a line.
/// Pure: used by the Client and by tests.
std::vector<std::string> hosts_file_lookup(std::string_view contents, std::string_view name);

}  // namespace clusterd::epmd
