// Strategy "dns_poll": libcluster's Cluster.Strategy.DNSPoll. Each round looks up `query` (A
// then AAAA, in parallel) and reports node_basename@ADDRESS for every address, IPv6 in
// compressed lower-case form ("node@2a09:8280:1:a270:b8f5:b9f7:8891:f3"), as libcluster does.
// Unlike libcluster, a failed lookup removes no node instead of counting as "no records" (which
// disconnected what it had found, silently), and a missing or empty key fails the topology at
// start instead of crashing or idling. The rules
// (partial failures, polling, follow_ttl) are in dns_poll.hpp.
#include <dns_poll.hpp>

namespace {

namespace dns = clusterd::dns_poll;
namespace opt = clusterd::option;

class DnsPollStrategy final : public dns::PollingStrategy {
 public:
  static constexpr const char *kName = "dns_poll";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "node_basename@ADDRESS for every A and AAAA record of a DNS name (libcluster's "
      "Cluster.Strategy.DNSPoll)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.DNSPoll",
                                             "Elixir.Cluster.Strategy.DNSPoll"};
  // libcluster's polling strategies disconnect nodes that leave the answer.
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::nonempty(opt::required(opt::string("query", "The DNS name to look up"))),
      dns::basename_option("node_basename"),
      opt::choices(
          opt::string("ip_family", "Records to ask for: A, AAAA, or A and AAAA (libcluster)",
                      "\"both\""),
          "ipv4|ipv6|both"),
      dns::kPollingIntervalOption,
      dns::kFollowTtlOption,
      dns::kResolverOption,
      dns::kQueryTimeoutOption,
  };

  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    validate_common(config, problems);
  }

  void init(const clusterd::Config &config) override {
    Settings s;
    read_common(config, s);
    s.basename = config.string("node_basename");
    s.lookups = dns::address_lookups(config.string("query"), config.string("ip_family"));
    configure(std::move(s));
  }
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(DnsPollStrategy);
