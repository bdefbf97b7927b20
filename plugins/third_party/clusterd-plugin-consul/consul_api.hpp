// The pure parts of the consul strategy: the list_using names, the request URLs, the JSON
// replies of the Agent, Catalog, Health and datacenters endpoints, the blocking-query index
// rules and the node name template. No I/O, so the unit tests and the fuzzer (in the clusterd
// tree) compile this file alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd_consul {

// libcluster_consul's endpoint modules. Multisite runs `endpoints` once per datacenter.
enum class Endpoint { agent, catalog, health, multisite };
// "agent", "Agent", "Cluster.Strategy.Consul.Agent" (also with "Elixir.") → Endpoint.
bool parse_endpoint(std::string_view text, Endpoint &out);
const char *endpoint_name(Endpoint e);
// Consul answers blocking queries on the Catalog and Health service lists; /v1/agent/services
// and /v1/catalog/datacenters are only polled.
bool supports_blocking(Endpoint e);

// What every request asks for.
struct Selection {
  std::string service_name, dc, tag, ns, partition, filter, near;
  bool passing = false;  // Health only
};
// RFC 3986 percent-encoding of everything but unreserved characters.
std::string url_encode(std::string_view text);
// Path and query of `endpoint`'s request, to append to the base URL (without index and wait):
// "/v1/health/service/web?dc=dc1&passing=true". Agent's list holds every service of the agent:
// the service name is matched on the reply (parse_agent_services).
std::string request_path(Endpoint endpoint, const Selection &s);
// /v1/catalog/datacenters, with the partition when one is set.
std::string datacenters_path(const Selection &s);
// "index=N&wait=Ms" to add to a blocking request's query ("" for index 0: answer at once).
std::string blocking_query(uint64_t index, uint64_t wait_ms);

// Consul's rules for the index of the next blocking request (API docs, "Blocking Queries",
// implementation details): the reply's X-Consul-Index; reset to 0 (a plain read) when it went
// backwards; 1 when it is 0 (it must be above zero, or the query would answer at once
// forever). std::nullopt when the header is missing or malformed: the caller then polls.
std::optional<uint64_t> next_index(uint64_t previous, std::optional<std::string_view> header);

// The instance that register = true puts in Consul, with its TTL check.
struct Registration {
  std::string id, service, address, check_id;
  int64_t port = 0;  // 0: none
  std::vector<std::string> tags;
  uint64_t ttl_ms = 0, deregister_after_ms = 0;
};
// The JSON body of PUT /v1/agent/service/register.
std::string registration_body(const Registration &r);
// "?ns=...&partition=..." for the agent's write endpoints ("" when neither is set).
std::string write_query(const Selection &s);

// One service instance found: the address that names it and the datacenter it is in.
struct Found {
  std::string address, datacenter;
};
// Replies → instances. On false, `error` says why (never a crash: bounded depth, sizes and
// counts). Instances without an address are listed in `skipped` ("node n1: no address").
// Catalog: ServiceAddress, else Address (the node's), as Consul's DNS does.
bool parse_catalog(std::string_view json, std::vector<Found> &out,
                   std::vector<std::string> &skipped, std::string &error);
// Health: Service.Address, else Node.Address (libcluster_consul's fallback).
bool parse_health(std::string_view json, std::vector<Found> &out, std::vector<std::string> &skipped,
                  std::string &error);
// Agent (/v1/agent/services, an object of service ID → service): the services named
// `service_name` (and carrying `tag` when set); their Address.
bool parse_agent_services(std::string_view json, std::string_view service_name,
                          std::string_view tag, std::vector<Found> &out,
                          std::vector<std::string> &skipped, std::string &error);
// /v1/catalog/datacenters: a list of names.
bool parse_datacenters(std::string_view json, std::vector<std::string> &out, std::string &error);

inline constexpr std::size_t kMaxEntries = 100000;
inline constexpr std::size_t kMaxText = 1024;  // per string field kept
inline constexpr std::size_t kMaxDepth = 64;

// libcluster_consul's node_name_template, an EEx string over ip, dc and node_basename:
// "<%= node_basename %>@<%= ip %>". Only <%= var %> tags are allowed.
class NameTemplate {
 public:
  // False with `error` when `text` holds another tag or an unknown variable.
  bool parse(std::string_view text, std::string &error);
  std::string render(std::string_view ip, std::string_view dc, std::string_view basename) const;
  bool uses_basename() const;

 private:
  enum class Var { text, ip, dc, node_basename };
  struct Part {
    Var var;
    std::string text;
  };
  std::vector<Part> parts_;
};

// A short printable excerpt of an error body (no control characters), for messages.
std::string excerpt(std::string_view body);

}  // namespace clusterd_consul
