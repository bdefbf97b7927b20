// The DNS strategies' shared core (dns_poll, kubernetes_dns, kubernetes_dnssrv): pure helpers
// (node names, the re-query rule, names and values checked at init) and PollingStrategy, the
// poll loop on the host's clusterd.dns/1 service that each of the three plugins configures.
//
// Rules every DNS strategy follows (documented in conf/plugins/<name>.toml.example):
//  - A round sends every lookup of the strategy (A, AAAA or SRV) at once. Only a round in
//    which every lookup answered (records, or NODATA = "no such records") is reported; a
//    round with any NXDOMAIN, SERVFAIL, refusal, timeout or malformed reply is a failed round:
//    discovery_failed with the resolver's reason, and the host keeps the last good node set
//    (libcluster reports [] and disconnects everything).
//  - Partial answers: an answer of kHostAnswerCap records or more may have been cut by the
//    host; its nodes are added to the last reported set, none is removed (libcluster drops
//    whatever a partial answer leaves out, #190).
//  - Re-query rule: with `polling_interval` set, a round every polling_interval (libcluster).
//    Without it, the next round comes after the smallest TTL of the last answer, but never
//    sooner than 5 s (libcluster's default interval). Failed rounds retry after the interval.
//  - One timer chain (libcluster's Kubernetes.DNS/DNSSRV run two and poll twice as often).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

namespace clusterd::dns_poll {

using std::chrono::milliseconds;

/// libcluster's polling interval, and the floor of the TTL rule.
inline constexpr milliseconds kDefaultInterval{5000};

/// One lookup of a round.
struct Lookup {
  uint32_t type = CLUSTERD_DNS_A;  ///< CLUSTERD_DNS_A, _AAAA or _SRV
  std::string name;
};

/// "A", "AAAA", "SRV".
const char *type_name(uint32_t type) noexcept;

/// The lookups for `name` and an ip_family option value ("ipv4", "ipv6", "both": A, AAAA, A
/// then AAAA). Throws Error(CLUSTERD_E_CONFIG) for another value.
std::vector<Lookup> address_lookups(const std::string &name, std::string_view family);

/// The node names of one complete round: basename@address for A/AAAA records (addresses as
/// the resolver prints them: IPv4 dotted, IPv6 compressed lower case), basename@target for
/// SRV. Sorted, without duplicates; SRV targets that cannot be a host ("", "." = "no such
/// service" in RFC 2782, or with '@', whitespace or control characters) are left out.
std::vector<std::string> node_names(std::string_view basename,
                                    const std::vector<DnsRecord> &records);

/// basename@host for each usable host (see above), sorted and without duplicates. Also used by
/// the rancher strategy.
std::vector<std::string> node_names(std::string_view basename,
                                    const std::vector<std::string> &hosts);

/// The smallest TTL (seconds) of `records`, or std::nullopt when there are none.
std::optional<uint32_t> min_ttl(const std::vector<DnsRecord> &records);

/// The host's DNS service (clusterd 0.1) returns at most this many addresses per answer and
/// drops the rest silently; an answer this long is treated as partial (see PollingStrategy).
inline constexpr std::size_t kHostAnswerCap = 256;

/// `previous` and `current` merged (sorted, without duplicates): the set reported for a
/// partial answer, which may add nodes but never drops one.
std::vector<std::string> merge_partial(const std::vector<std::string> &previous,
                                       const std::vector<std::string> &current);

/// When the next round after a successful one is due (the re-query rule above).
milliseconds next_delay(milliseconds interval, bool interval_set, std::optional<uint32_t> ttl);

/// libcluster's Kubernetes service name: "<service>.<namespace>.svc.<cluster_domain>".
std::string kubernetes_service_name(std::string_view service, std::string_view ns,
                                    std::string_view cluster_domain);

/// The cluster domain when the `cluster_domain` option is not set: $CLUSTER_DOMAIN, else
/// "cluster.local." (libcluster's default, absolute).
std::string default_cluster_domain();

/// True when `text` is "ADDRESS", "ADDRESS:PORT", "[IPV6]" or "[IPV6]:PORT" with an IP address
/// (as the host's DNS service accepts it), so that a typo fails at start, not every round.
bool valid_resolver(std::string_view text, std::string &why);

/// The cluster_domain option, else default_cluster_domain().
std::string read_cluster_domain(const Config &config);

// ---- the poll loop ---------------------------------------------------------------------------

/// Options every DNS strategy declares (list them in the plugin's kOptions).
inline constexpr clusterd_option_t kPollingIntervalOption =
    option::finite(option::positive(option::duration(
        "polling_interval",
        "Time between DNS rounds; unset: the smallest TTL of the last answer, at least 5 s",
        "\"5s\"")));
inline constexpr clusterd_option_t kResolverOption =
    option::string("resolver",
                   "DNS server \"ADDRESS[:PORT]\" ([v6]:PORT) asked instead of the system resolver "
                   "(names are then sent as given, without search domains)");
inline constexpr clusterd_option_t kQueryTimeoutOption =
    option::finite(option::positive(option::duration(
        "query_timeout", "Time limit of one DNS lookup (with retransmissions)", "\"5s\"")));
/// The node-name part every DNS strategy builds names from (node_basename, application_name).
constexpr clusterd_option_t basename_option(const char *key) noexcept {
  return option::nonempty(
      option::format(option::required(option::string(key, "Node name part before '@'")),
                     CLUSTERD_FORMAT_NODE_BASENAME));
}

/// Base of the three DNS strategies: the derived plugin reads its own options in init(),
/// builds Settings (read_common() for the shared ones) and calls configure().
class PollingStrategy : public Strategy {
 public:
  void start() override;
  void stop() override;
  /// A round now (unless one is in flight); the timer restarts from its result.
  void refresh() override;

 protected:
  struct Settings {
    std::string basename;         ///< node name part before '@'
    std::vector<Lookup> lookups;  ///< sent together each round
    std::string server;           ///< "" = system resolver
    milliseconds interval = kDefaultInterval;
    bool interval_set = false;  ///< polling_interval given: the TTL rule is off
    milliseconds query_timeout{5000};
  };

  /// Reads polling_interval, resolver and query_timeout into `s`; throws Error(CONFIG) with the
  /// key and its file:line:column.
  static void read_common(const Config &config, Settings &s);
  /// Checks the shared options beyond their constraints (the plugin's validate() calls it).
  static void validate_common(const Config &config, Problems &problems);
  /// Takes the settings; call once from init().
  void configure(Settings s);

 private:
  void round();
  void answered(std::size_t i, const DnsResult &result);
  void finish();
  void schedule(milliseconds delay);
  void show_partial(const std::string &capped);

  Settings settings_;
  Timer timer_;
  std::vector<DnsQuery> queries_;
  std::vector<DnsResult> results_;
  std::size_t pending_ = 0;
  std::vector<std::string> reported_;  // the last reported set (sorted)
  bool partial_ = false;               // the last answer hit kHostAnswerCap
  bool failing_ = false;               // the last round failed: log when answers come back
};

}  // namespace clusterd::dns_poll
