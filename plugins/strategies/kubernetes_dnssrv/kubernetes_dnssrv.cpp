// Strategy "kubernetes_dnssrv": libcluster's Cluster.Strategy.Kubernetes.DNSSRV — the SRV
// records of "<service>.<namespace>.svc.<cluster_domain>" (no _port._proto prefix), reported as
// application_name@TARGET (the per-pod host name, without the trailing dot; priority, weight and
// port are ignored, as in libcluster). cluster_domain: the option, else $CLUSTER_DOMAIN, else
// "cluster.local." (libcluster reads only the variable).
// Fixed against libcluster: a failed lookup keeps the last good set instead of disconnecting
// everyone; one polling chain instead of two; "." targets are skipped. The targets are names,
// not looked up (libcluster), so a round is one lookup. Rules: dns_poll.hpp.
#include <dns_poll.hpp>

namespace {

namespace dns = clusterd::dns_poll;
namespace opt = clusterd::option;

class KubernetesDnsSrvStrategy final : public dns::PollingStrategy {
 public:
  static constexpr const char *kName = "kubernetes_dnssrv";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "application_name@TARGET for the SRV records of a headless Kubernetes Service "
      "(libcluster's Cluster.Strategy.Kubernetes.DNSSRV)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.Kubernetes.DNSSRV",
                                             "Elixir.Cluster.Strategy.Kubernetes.DNSSRV"};
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::nonempty(opt::required(opt::string("service", "The headless Service's name"))),
      opt::nonempty(opt::required(opt::string("namespace", "The Service's namespace"))),
      dns::basename_option("application_name"),
      opt::string("cluster_domain",
                  "Cluster domain; default $CLUSTER_DOMAIN, else \"cluster.local.\""),
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
    s.lookups = {{CLUSTERD_DNS_SRV,
                  dns::kubernetes_service_name(config.string("service"), config.string("namespace"),
                                               dns::read_cluster_domain(config))}};
    configure(std::move(s));
  }
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(KubernetesDnsSrvStrategy);
