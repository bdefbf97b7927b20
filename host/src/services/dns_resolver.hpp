// The host's DNS resolver: c-ares driven by the daemon's Asio loop.
//
// One c-ares channel per distinct `server` string, created on first use and kept (the system
// one reads /etc/resolv.conf, and is re-created when that file changes and the channel is
// idle). Sockets and c-ares' retransmit timer are watched by Asio; with nothing in flight
// nothing is armed, so an idle resolver costs no wake-ups.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace clusterd::services {

class DnsResolver {
 public:
  // resolv_conf: the file the system channel ("" server) is configured from; tests point it
  // at their own file so that they never query the real resolver.
  explicit DnsResolver(boost::asio::io_context &io, std::string resolv_conf = "/etc/resolv.conf");
  ~DnsResolver();  // cancels everything; no callback runs afterwards
  DnsResolver(const DnsResolver &) = delete;
  DnsResolver &operator=(const DnsResolver &) = delete;

  struct Query {
    int type = 1;  // 1 = A, 28 = AAAA, 33 = SRV
    std::string name;
    // "" = system resolver (resolv.conf, with its search list); else "ADDR", "ADDR:PORT",
    // "[v6]:PORT" (an IP address, never a host name). Explicit servers get the name as is.
    std::string server;
    std::chrono::milliseconds timeout{5000};
  };

  struct Record {
    int type = 0;
    std::uint32_t ttl = 0;                             // seconds
    std::uint16_t priority = 0, weight = 0, port = 0;  // SRV only
    std::string address;  // A/AAAA as text (IPv6 compressed, inet_ntop)
    std::string target;   // SRV target, without the trailing dot
  };

  struct Result {
    // CLUSTERD_OK (records may be empty = NODATA), CLUSTERD_E_NOT_FOUND (NXDOMAIN),
    // CLUSTERD_E_TIMEOUT, CLUSTERD_E_IO (SERVFAIL, refused, malformed), CLUSTERD_E_INVALID_ARG.
    int status = 0;
    std::vector<Record> records;
    std::string error;  // names the query name and server; "" on success
  };

  using Done = std::function<void(const Result &)>;

  // Returns the query id. `done` runs exactly once on the loop, never inline from resolve().
  std::uint64_t resolve(Query query, Done done);
  // After this returns, `done` never runs. Unknown or finished id: no-op.
  void cancel(std::uint64_t id);
  // Queries whose `done` has not run yet (and that were not cancelled).
  std::size_t active() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace clusterd::services
