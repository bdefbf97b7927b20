// The pure part of the kubernetes strategy: Kubernetes API list responses and watch events
// (Endpoints, Pods, EndpointSlices) reduced to endpoints, the readiness rules, libcluster's node
// naming, and the helpers that build request URLs. No I/O; unit-tested against recorded API
// answers and fuzzed by tests/fuzz/kubernetes_fuzz.cpp.
//
// Untrusted input never throws or crashes: a body that is not JSON or not the expected shape is
// an error string; an item or endpoint that lacks what a node name needs is skipped and counted
// (libcluster crashes on a missing targetRef.namespace).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::kubernetes {

// kubernetes_ip_lookup_mode.
enum class Lookup { kEndpoints, kPods, kEndpointSlices };
// mode: how node names are built.
enum class Mode { kIp, kDns, kHostname };
// readiness: which endpoints count (see included()).
enum class Readiness { kReady, kServing, kAll };

// One address of an Endpoints subset, one Pod, or one endpoint of an EndpointSlice.
struct Endpoint {
  std::string ip;        // canonical text, IPv4 or IPv6
  std::string ns;        // the item's namespace (targetRef.namespace / metadata.namespace)
  std::string hostname;  // may be empty
  std::string service;   // the service the API names for it: Endpoints metadata.name, the
                         // slice's kubernetes.io/service-name label, the pod's spec.subdomain
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool operator==(const Endpoint &) const = default;
};

// One API object (an Endpoints, a Pod or an EndpointSlice) reduced to its endpoints.
struct Object {
  std::string key;  // "namespace/name": identifies the object across watch events
  std::vector<Endpoint> endpoints;
  std::size_t skipped = 0;  // endpoints dropped as unusable (no IP, FQDN slice, ...)
  std::string skip_reason;  // why the first one was dropped
};

struct ListResult {
  std::string resource_version;  // metadata.resourceVersion of the list ("" if absent)
  std::vector<Object> objects;
};

// Parses a list response (EndpointsList, PodList, EndpointSliceList). Returns "" on success,
// else why the body is unusable (not JSON, not an object, "items" not a list).
std::string parse_list(std::string_view body, Lookup lookup, ListResult &out);

enum class EventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct Event {
  EventType type = EventType::kError;
  std::string resource_version;  // of the object (ADDED/MODIFIED/DELETED/BOOKMARK)
  Object object;                 // ADDED/MODIFIED/DELETED
  int code = 0;                  // ERROR: the Status code (410 = resourceVersion expired)
  std::string reason, message;   // ERROR: the Status reason and message
};

// Parses one line of a watch stream. Returns "" on success, else why the line is unusable.
std::string parse_event(std::string_view line, Lookup lookup, Event &out);

// How node names are built (libcluster's kubernetes_node_basename, mode, ...).
struct Naming {
  std::string basename;
  Mode mode = Mode::kIp;
  std::string service_name;              // kubernetes_service_name; "" = the one the API gives
  std::string domain = "cluster.local";  // <kubernetes_cluster_name>.local, or the configured one
  Readiness readiness = Readiness::kReady;
};

// Whether an endpoint counts: kReady = ready (Endpoints: "addresses"; Pods: Ready condition
// True and not terminating); kServing = also terminating endpoints that still serve;
// kAll = every endpoint with an address (libcluster's pods mode).
bool included(const Endpoint &e, Readiness readiness);

// libcluster's node name for `e`, or "" with `why` when it cannot be built (hostname mode
// without a hostname or service name).
//   ip:       basename@IP
//   dns:      basename@IP-with-dashes.NAMESPACE.pod.DOMAIN
//   hostname: basename@HOSTNAME.SERVICE.NAMESPACE.svc.DOMAIN
// IPv6 in dns mode: ':' become '-' too (fd00-10-4--11, the label Kubernetes' DNS answers for a
// pod's IPv6 address). libcluster keeps the colons ("fd00:10:4::11.NS.pod..."), which is no
// host name: no BEAM node can carry it and the host's node-name rule refuses it.
std::string node_name(const Endpoint &e, const Naming &naming, std::string &why);

// Node names of every included endpoint of `objects`, sorted and deduplicated. `skipped` /
// `why` count and explain endpoints without a name (including those the parser dropped).
struct NameSet {
  std::vector<std::string> names;
  std::size_t skipped = 0;
  std::string why;  // the first reason
};
NameSet node_names(const std::map<std::string, Object> &objects, const Naming &naming);

// The "message" of a Kubernetes Status body, or a bounded, printable prefix of the body.
std::string status_message(std::string_view body);

// RFC 3986 percent-encoding (unreserved characters kept), as libcluster encodes the selector.
std::string percent_encode(std::string_view text);

// The collection path: /api/v1/namespaces/NS/endpoints|pods or
// /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices.
std::string collection_path(Lookup lookup, std::string_view ns);

// libcluster's API host rule: `master` as is when it ends with `domain` or with '.', else
// master + "." + domain.
std::string api_host(std::string_view master, std::string_view domain);

// True when `text` is usable as a DNS name part in a node name: 1..253 characters of
// [A-Za-z0-9-.], not starting or ending with '.'.
bool valid_dns_name(std::string_view text);

}  // namespace clusterd::kubernetes
