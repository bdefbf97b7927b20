// The pure parts of the postgres strategy: the SQL it sends (exactly libcluster_postgres's),
// the channel-name rule, the check of a NOTIFY payload (network input: fuzzed in tests/fuzz,
// target "postgres") and the run-time `parameters`. No libpq, no I/O.
#ifndef CLUSTERD_POSTGRES_NOTIFY_HPP
#define CLUSTERD_POSTGRES_NOTIFY_HPP

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd_postgres {

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes and refuses NOTIFY payloads of
// 8000 bytes or more.
constexpr std::size_t kMaxChannel = 63;
constexpr std::size_t kMaxPayload = 7999;

// Why `channel` cannot be a channel shared with libcluster_postgres ("" when it can): 1..63
// bytes of printable ASCII without '"' or spaces, because libcluster_postgres writes it between
// double quotes without escaping, and a longer one would be truncated by the server.
std::string channel_problem(std::string_view channel);

// LISTEN "channel"
std::string listen_sql(std::string_view channel);
// NOTIFY "channel", 'node' -- byte for byte what libcluster_postgres sends. `channel` follows
// the rule above and `node` the node-name rule, so neither needs escaping.
std::string notify_sql(std::string_view channel, std::string_view node);

// What a payload heard on the channel is.
enum class Payload {
  kNode,            // a node name (the node-name rule of clusterd/node_name.h)
  kNotANodeName,    // anything else: refused and counted
  kNotDistributed,  // "nonode@nohost": an Elixir node started without a name
};
Payload classify_payload(std::string_view payload);
// The metrics label of a refusal: "not_a_node_name" or "not_distributed" ("" for kNode).
const char *payload_label(Payload kind);
// Why a payload is refused, in words (names the rule broken), or "" for a node name.
std::string payload_problem(std::string_view payload);
// A payload as it may be shown in a log line or the status: at most 80 bytes, bytes outside
// printable ASCII as \xNN.
std::string printable(std::string_view payload);

// `parameters` ("name=value" server run-time parameters, Postgrex's `parameters`) as the
// libpq `options` string ("-c name=value ...", spaces and backslashes escaped), except
// application_name, which libpq sends as a keyword of its own. Returns "" on success, else
// the problem with the first bad entry.
std::string startup_options(const std::vector<std::string> &parameters, std::string &options,
                            std::string &application_name);

}  // namespace clusterd_postgres

#endif  // CLUSTERD_POSTGRES_NOTIFY_HPP
