// The DNS strategies' shared core; see dns_poll.hpp for the rules.
#include "dns_poll.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <iterator>

namespace clusterd::dns_poll {

namespace {

bool usable_host(std::string_view host) {
  if (host.empty() || host == ".") return false;
  return std::none_of(host.begin(), host.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c <= 0x20 || c == 0x7f || c == '@';
  });
}

}  // namespace

const char *type_name(uint32_t type) noexcept {
  switch (type) {
    case CLUSTERD_DNS_A:
      return "A";
    case CLUSTERD_DNS_AAAA:
      return "AAAA";
    case CLUSTERD_DNS_SRV:
      return "SRV";
    default:
      return "?";
  }
}

std::vector<Lookup> address_lookups(const std::string &name, std::string_view family) {
  if (family == "ipv4") return {{CLUSTERD_DNS_A, name}};
  if (family == "ipv6") return {{CLUSTERD_DNS_AAAA, name}};
  if (family == "both") return {{CLUSTERD_DNS_A, name}, {CLUSTERD_DNS_AAAA, name}};
  throw Error(CLUSTERD_E_CONFIG,
              "ip_family: \"" + std::string(family) + "\" is not one of ipv4, ipv6, both");
}

std::vector<std::string> node_names(std::string_view basename,
                                    const std::vector<DnsRecord> &records) {
  std::vector<std::string> hosts;
  hosts.reserve(records.size());
  for (const auto &r : records) hosts.push_back(r.type == CLUSTERD_DNS_SRV ? r.target : r.address);
  return node_names(basename, hosts);
}

std::vector<std::string> node_names(std::string_view basename,
                                    const std::vector<std::string> &hosts) {
  std::vector<std::string> nodes;
  nodes.reserve(hosts.size());
  const std::string prefix = std::string(basename) + "@";
  for (const auto &host : hosts)
    if (usable_host(host)) nodes.push_back(prefix + host);
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

std::vector<std::string> merge_partial(const std::vector<std::string> &previous,
                                       const std::vector<std::string> &current) {
  std::vector<std::string> merged;
  merged.reserve(previous.size() + current.size());
  std::set_union(previous.begin(), previous.end(), current.begin(), current.end(),
                 std::back_inserter(merged));
  return merged;
}

std::optional<uint32_t> min_ttl(const std::vector<DnsRecord> &records) {
  std::optional<uint32_t> ttl;
  for (const auto &r : records)
    if (!ttl || r.ttl < *ttl) ttl = r.ttl;
  return ttl;
}

RoundOutcome apply_round(std::string_view basename, const std::vector<Lookup> &lookups,
                         const std::vector<DnsResult> &results,
                         std::vector<std::vector<std::string>> &kept) {
  RoundOutcome out;
  kept.resize(lookups.size());
  for (std::size_t i = 0; i < lookups.size() && i < results.size(); ++i) {
    const DnsResult &r = results[i];
    if (r.status != CLUSTERD_OK) {
      ++out.failed;
      out.failures += (out.failures.empty() ? "" : "; ") +
                      (r.error.empty() ? std::string(type_name(lookups[i].type)) + " lookup of '" +
                                             lookups[i].name + "': " + status_name(r.status)
                                       : r.error);
      continue;
    }
    std::vector<std::string> nodes = node_names(basename, r.records);
    // A capped answer may miss records (and a rotating server gives another subset each time):
    // add what it has, drop nothing, instead of disconnecting whatever it left out.
    if (r.records.size() >= kHostAnswerCap) {
      out.capped += std::string(out.capped.empty() ? "" : ", ") + type_name(lookups[i].type);
      nodes = merge_partial(kept[i], nodes);
    }
    kept[i] = std::move(nodes);
    out.records += r.records.size();
    if (const auto ttl = min_ttl(r.records); ttl && (!out.ttl || *ttl < *out.ttl)) out.ttl = ttl;
  }
  for (const auto &nodes : kept) out.nodes = merge_partial(out.nodes, nodes);
  return out;
}

milliseconds next_delay(milliseconds interval, bool follow_ttl, std::optional<uint32_t> ttl) {
  if (!follow_ttl || !ttl) return interval;
  return std::max(interval, milliseconds(static_cast<int64_t>(*ttl) * 1000));
}

std::string kubernetes_service_name(std::string_view service, std::string_view ns,
                                    std::string_view cluster_domain) {
  std::string name(service);
  name += '.';
  name += ns;
  name += ".svc.";
  name += cluster_domain;
  return name;
}

std::string default_cluster_domain() {
  const char *env = std::getenv("CLUSTER_DOMAIN");
  return env != nullptr && *env != '\0' ? env : "cluster.local.";
}

bool valid_resolver(std::string_view text, std::string &why) {
  std::string address;
  std::string_view port;
  bool has_port = false;
  const bool bracketed = !text.empty() && text.front() == '[';
  if (bracketed) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      why = "missing ']'";
      return false;
    }
    address = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        why = "expected ':PORT' after ']'";
        return false;
      }
      has_port = true;
      port = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    address = std::string(text.substr(0, colon));
    has_port = true;
    port = text.substr(colon + 1);
  } else {
    address = std::string(text);  // IPv4 without a port, or a bare IPv6 address
  }
  if (has_port) {
    int value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
        value > 65535) {
      why = "invalid port";
      return false;
    }
  }
  in6_addr v6{};
  in_addr v4{};
  if ((!bracketed && inet_pton(AF_INET, address.c_str(), &v4) == 1) ||
      inet_pton(AF_INET6, address.c_str(), &v6) == 1)
    return true;
  why = "\"" + address + "\" is not an IP address (a resolver cannot be given by name)";
  return false;
}

// ---- configuration helpers
// -------------------------------------------------------------------------

std::string read_cluster_domain(const Config &config) {
  const std::string domain = config.optional_string("cluster_domain").value_or("");
  return domain.empty() ? default_cluster_domain() : domain;
}

// ---- PollingStrategy ---------------------------------------------------------------------------

void PollingStrategy::validate_common(const Config &config, Problems &problems) {
  std::string why;
  if (auto server = config.optional_string("resolver"); server && !valid_resolver(*server, why))
    problems.add("resolver", "\"" + *server + "\": " + why +
                                 " (expected ADDRESS, ADDRESS:PORT or [IPV6]:PORT)");
}

void PollingStrategy::read_common(const Config &config, Settings &s) {
  s.interval = config.duration("polling_interval");
  s.follow_ttl = config.boolean("follow_ttl");
  s.query_timeout = config.duration("query_timeout");
  s.server = config.optional_string("resolver").value_or("");
}

void PollingStrategy::configure(Settings s) {
  settings_ = std::move(s);
  std::string what;
  for (const auto &l : settings_.lookups)
    what += std::string(what.empty() ? "" : ", ") + type_name(l.type) + " " + l.name;
  host().set_status(
      "lookups",
      what + " via " + (settings_.server.empty() ? "the system resolver" : settings_.server));
}

void PollingStrategy::start() {
  round();
}

void PollingStrategy::stop() {
  timer_.reset();
  queries_.clear();  // cancels the lookups in flight
  pending_ = 0;
}

void PollingStrategy::refresh() {
  if (pending_ > 0) return;  // a round is in flight; its answer is as fresh as a new one
  timer_.reset();
  round();
}

void PollingStrategy::round() {
  if (pending_ > 0) return;
  const std::size_t n = settings_.lookups.size();
  queries_.clear();
  queries_.resize(n);
  results_.assign(n, DnsResult{});
  pending_ = n;
  for (std::size_t i = 0; i < n; ++i) {
    const Lookup &l = settings_.lookups[i];
    host().debug(std::string("polling dns for '") + l.name + "' (" + type_name(l.type) + ")");
    try {
      queries_[i] = DnsQuery::resolve(
          host(), l.type, l.name, [this, i](const DnsResult &r) { answered(i, r); },
          settings_.server, settings_.query_timeout);
    } catch (const std::exception &e) {
      DnsResult refused;
      refused.status = CLUSTERD_E_GENERIC;
      refused.error = std::string(type_name(l.type)) + " lookup of '" + l.name + "': " + e.what();
      answered(i, refused);
    }
  }
}

void PollingStrategy::answered(std::size_t i, const DnsResult &result) {
  results_[i] = result;
  if (--pending_ == 0) finish();
}

void PollingStrategy::finish() {
  const RoundOutcome out = apply_round(settings_.basename, settings_.lookups, results_, kept_);
  // The handles are spent (their callbacks ran); free them before the next round.
  queries_.clear();
  results_.clear();
  show_failed(out);
  if (out.failed == settings_.lookups.size()) {
    discovery_failed(out.failures);  // the host keeps the last set, logs once per change
    return schedule(settings_.interval);
  }
  show_partial(out.capped);
  // A failed lookup is retried after the interval, whatever the TTLs of the others.
  const milliseconds next = out.failed > 0
                                ? settings_.interval
                                : next_delay(settings_.interval, settings_.follow_ttl, out.ttl);
  host().set_status("last answer",
                    std::to_string(out.records) + " record(s), " +
                        std::to_string(out.nodes.size()) + " node(s)" +
                        (out.ttl ? ", min TTL " + std::to_string(*out.ttl) + " s" : "") +
                        ", next round in " + std::to_string(next.count()) + " ms");
  report_nodes(out.nodes);
  schedule(next);
}

// The lookups that failed in a round that others answered: their nodes are kept, the rest is
// reported, and the status says which part failed. A round where all failed is the host's
// discovery_error instead.
void PollingStrategy::show_failed(const RoundOutcome &out) {
  if (out.failed > 0)
    host().count("dns_failed_lookups_total", "DNS lookups that failed", nullptr, nullptr,
                 out.failed);
  else if (failing_)
    host().info("DNS lookups answer again");
  failing_ = out.failed > 0;
  const std::string failures = out.failed < settings_.lookups.size() ? out.failures : "";
  if (failures == failures_) return;  // log once per change
  failures_ = failures;
  if (failures.empty()) return host().clear_status("failed lookups");
  host().set_status("failed lookups", failures + " (the nodes they found before are kept)");
  host().warn(
      "some DNS lookups failed; reporting the others' nodes and keeping the ones the "
      "failed lookups found before: " +
      failures);
}

void PollingStrategy::show_partial(const std::string &capped) {
  if (capped.empty() == !partial_) return;  // log once per change
  partial_ = !capped.empty();
  if (!partial_) return host().clear_status("partial answer");
  const std::string why = capped + " answer has " + std::to_string(kHostAnswerCap) +
                          " or more records, the most the host's DNS service returns: nodes "
                          "missing from it are kept, not removed";
  host().set_status("partial answer", why);
  host().warn(why);
}

void PollingStrategy::schedule(milliseconds delay) {
  timer_ = Timer::after(host(), delay, [this] { round(); });
}

}  // namespace clusterd::dns_poll
