// The DNS strategies' shared core (dns_poll, kubernetes_dns, kubernetes_dnssrv): pure helpers
// (node names, the re-query rule, names and values checked at init) and PollingStrategy, the
// poll loop on the host's clusterd.dns/1 service that each of the three plugins configures.
//
// Rules every DNS strategy follows (documented in conf/plugins/<name>.toml.example):
//  - A round sends every lookup of the strategy (A, AAAA or SRV; one name or several) at once.
//    A lookup succeeds with records or NODATA ("no such records"); NXDOMAIN, SERVFAIL, a
//    refusal, a timeout or a malformed reply fail it.
//  - Each lookup keeps the nodes of its last successful answer. A round reports the union of
//    those sets: a lookup that succeeded replaces its own nodes (adds and removes), a failed one
//    keeps what it found before (removes nothing). So A answered + AAAA refused still reports
//    the A nodes. The failed part shows as the status detail "failed lookups" (logged once per
//    change); a round in which every lookup failed is discovery_failed, and the host keeps the
//    last node set (libcluster counts a failed lookup as "no records": it disconnects the
//    nodes that lookup found).
//  - Partial answers: an answer of kHostAnswerCap records or more may have been cut by the
//    host; its nodes are added to that lookup's set, none is removed (libcluster drops whatever
//    a partial answer leaves out, #190).
//  - Re-query rule: a round every polling_interval (default 5 s, libcluster). With follow_ttl,
//    the next round after a fully answered one comes after the smallest TTL of the answer, but
//    never sooner than polling_interval. A round with a failed lookup retries after the
//    interval.
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

/// libcluster's polling interval, the default of polling_interval.
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

/// `previous` and `current` merged (sorted, without duplicates): the set kept for a partial
/// answer, which may add nodes but never drops one.
std::vector<std::string> merge_partial(const std::vector<std::string> &previous,
                                       const std::vector<std::string> &current);

/// One round's outcome (see the rules above), from the lookups' results in the order of the
/// lookups.
struct RoundOutcome {
  std::vector<std::string> nodes;  ///< the set to report: the union of every lookup's set
  std::size_t failed = 0;          ///< lookups that failed
  std::string failures;            ///< their reasons (the resolver's), joined by "; "
  std::string capped;              ///< types of the answers that hit kHostAnswerCap
  std::size_t records = 0;         ///< records in the successful answers
  std::optional<uint32_t> ttl;     ///< their smallest TTL
};

/// Applies one round's results: `kept[i]` (the nodes of lookup i's last successful answer;
/// resized to the lookups) is replaced for each lookup that succeeded, merged for a capped
/// answer, and left alone for one that failed.
RoundOutcome apply_round(std::string_view basename, const std::vector<Lookup> &lookups,
                         const std::vector<DnsResult> &results,
                         std::vector<std::vector<std::string>> &kept);

/// When the next round after a fully answered one is due (the re-query rule above).
milliseconds next_delay(milliseconds interval, bool follow_ttl, std::optional<uint32_t> ttl);

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
        "Time between DNS rounds (with follow_ttl: the shortest time between them)", "\"5s\"")));
inline constexpr clusterd_option_t kFollowTtlOption = option::boolean(
    "follow_ttl",
    "Poll again when the smallest TTL of the last answer runs out (never sooner than "
    "polling_interval) instead of every polling_interval",
    "false");
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
    bool follow_ttl = false;  ///< the next round after the smallest TTL (at least interval)
    milliseconds query_timeout{5000};
  };

  /// Reads polling_interval, follow_ttl, resolver and query_timeout into `s`; throws Error(CONFIG)
  /// with the key and its file:line:column.
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
  void show_failed(const RoundOutcome &outcome);

  Settings settings_;
  Timer timer_;
  std::vector<DnsQuery> queries_;
  std::vector<DnsResult> results_;
  std::size_t pending_ = 0;
  std::vector<std::vector<std::string>> kept_;  // per lookup: its last good nodes (sorted)
  bool partial_ = false;                        // the last answer hit kHostAnswerCap
  bool failing_ = false;  // a lookup failed last round: log when all answer again
  std::string failures_;  // the failed lookups of the last partly answered round
};

}  // namespace clusterd::dns_poll
