// Blocking, cancellable EPMD queries and name resolution for the erlang transport's threads,
// built on the shared encoders, parsers and hosts-file lookup of plugins/common/epmd
// (clusterd_epmd). We ask EPMD ourselves instead of letting ei do it, because ei only knows
// ERL_EPMD_PORT from the environment (a plugin must not change it) and would use select().
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "io.hpp"

namespace clusterd::erlang {

struct EpmdEntry {
  std::string alive;
  uint16_t port = 0;
};

struct EpmdPort {
  bool registered = false;
  uint16_t port = 0;
  bool hidden = false;  // registered as a hidden node ('H'): a remsh, a probe, another C node
};

// PORT_PLEASE2 for `alive` at `epmd`. Throws DistError (kRefused when EPMD is not running).
EpmdPort epmd_port_please(const sockaddr_in &epmd, const std::string &alive,
                          const Canceller &cancel, std::chrono::milliseconds timeout);

// NAMES at `epmd`: every registered node. Throws DistError.
std::vector<EpmdEntry> epmd_names(const sockaddr_in &epmd, const Canceller &cancel,
                                  std::chrono::milliseconds timeout);

// Resolves `host` to an IPv4 address (ei and its handshake are IPv4 only): an IP literal as
// is, else the first IPv4 address /etc/hosts gives it, else getaddrinfo. getaddrinfo cannot be
// cancelled, so a dead DNS server can delay stop() by the resolver's timeout; managed nodes
// named by an IP literal, "localhost" or a name in /etc/hosts never reach it. Returns "" or an
// error message.
std::string resolve_ipv4(const std::string &host, in_addr &out);

}  // namespace clusterd::erlang
