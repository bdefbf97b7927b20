// Strategy "kubernetes_dns": libcluster's Cluster.Strategy.Kubernetes.DNS — the A records of a
// headless Service, as application_name@ADDRESS. `service` is looked up as given (libcluster),
// or, when `namespace` is set, as "<service>.<namespace>.svc.<cluster_domain>". `ip_family`
// adds AAAA for IPv6 and dual-stack clusters (libcluster: A only, the default here).
// Fixed against libcluster: a failed lookup (NXDOMAIN when no endpoint is ready, a timeout)
// removes no node instead of disconnecting everyone; a CNAME in the answer is followed instead
// of crashing; one polling chain instead of two. The rules are in dns_poll.hpp.
#include <dns_poll.hpp>

namespace {

namespace dns = clusterd::dns_poll;
namespace opt = clusterd::option;

class KubernetesDnsStrategy final : public dns::PollingStrategy {
 public:
  static constexpr const char *kName = "kubernetes_dns";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "application_name@ADDRESS for the A (and AAAA) records of a headless Kubernetes Service "
      "(libcluster's Cluster.Strategy.Kubernetes.DNS)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Kubernetes.DNS",
                                             "Elixir.Cluster.Strategy.Kubernetes.DNS"};
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::nonempty(opt::required(opt::string(
          "service", "The headless Service's DNS name (with namespace set: the Service name)"))),
      dns::basename_option("application_name"),
      opt::string("namespace",
                  "If set, look up <service>.<namespace>.svc.<cluster_domain> instead of service"),
      opt::string("cluster_domain",
                  "Cluster domain used with namespace; default $CLUSTER_DOMAIN, else "
                  "\"cluster.local.\""),
      opt::choices(
          opt::string("ip_family", "Records to ask for: A (libcluster), AAAA, or A and AAAA",
                      "\"ipv4\""),
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
    s.basename = config.string("application_name");
    std::string name = config.string("service");
    if (const auto ns = config.optional_string("namespace"); ns && !ns->empty())
      name = dns::kubernetes_service_name(name, *ns, dns::read_cluster_domain(config));
    s.lookups = dns::address_lookups(name, config.string("ip_family"));
    configure(std::move(s));
  }
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(KubernetesDnsStrategy);
