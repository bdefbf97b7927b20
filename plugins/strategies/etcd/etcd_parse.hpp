// The pure part of the etcd strategy: requests to and answers of etcd's v3 JSON gateway (the
// gRPC gateway of etcd 3.4: /v3/kv/range, /v3/watch, /v3/lease/*, /v3/auth/authenticate).
// The gateway base64-encodes keys and values and writes int64 fields as strings. No I/O;
// unit-tested in test/etcd_parse_test.cpp, fuzzed by tests/fuzz/etcd_fuzz.cpp.
//
// Untrusted input never throws or crashes: an answer that is not JSON or not the expected shape
// is an error string; a key that is not base64 is an error too (etcd never sends one).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::etcd {

// Standard base64 (RFC 4648, with padding), as the gateway encodes bytes.
std::string base64_encode(std::string_view bytes);
// Decodes standard base64 with padding; nullopt when `text` is not that.
std::optional<std::string> base64_decode(std::string_view text);

// The first key after every key that starts with `prefix` (etcd's range_end of a prefix): the
// prefix with its last byte below 0xff incremented; "\0" (all keys) when there is none.
std::string prefix_range_end(std::string_view prefix);

// Request bodies. Keys and values are raw bytes (encoded here); ids and revisions are decimal.
std::string range_request(std::string_view prefix);
std::string watch_request(std::string_view prefix, std::int64_t start_revision);
std::string put_request(std::string_view key, std::string_view value, std::int64_t lease);
std::string delete_request(std::string_view key);
std::string grant_request(std::int64_t ttl_seconds);
std::string keepalive_request(std::int64_t lease);
std::string revoke_request(std::int64_t lease);
std::string authenticate_request(std::string_view name, std::string_view password);

// A gateway error: {"error": ..., "message": ..., "code": N} (gRPC status codes) or a watch
// cancelled by the server.
struct Error {
  int code = 0;         // gRPC code: 16 Unauthenticated, 7 PermissionDenied, 5 NotFound ...
  std::string message;  // printable, bounded
};

// "message (code N)", for error messages.
std::string describe(const Error &e);

// The gRPC status code that says "authenticate again" (an expired or unknown token).
constexpr int kUnauthenticated = 16;

// The error of a gateway answer, or nullopt when `body` is not an error object. Also used for
// bodies that are not JSON at all (then code 0 and a printable prefix of the body).
std::optional<Error> parse_error(std::string_view body);

struct KeyValue {
  std::string key;    // decoded
  std::string value;  // decoded
};

struct RangeResult {
  std::int64_t revision = 0;  // header.revision: the store's revision of this snapshot
  std::vector<KeyValue> kvs;
};

// Parses a /v3/kv/range answer. Returns "" on success, else why it is unusable.
std::string parse_range(std::string_view body, RangeResult &out);

struct Lease {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // seconds; <= 0 (or absent) in a keepalive answer: the lease is gone
};

// Parses a /v3/lease/grant answer (an id and a positive TTL).
std::string parse_grant(std::string_view body, Lease &out);
// Parses a /v3/lease/keepalive answer ({"result": {...}} or {"error": {...}}).
std::string parse_keepalive(std::string_view body, Lease &out);
// Parses a /v3/auth/authenticate answer: the token.
std::string parse_authenticate(std::string_view body, std::string &token);

enum class EventType { kPut, kDelete };
struct Event {
  EventType type = EventType::kPut;
  std::string key;                // decoded
  std::int64_t mod_revision = 0;  // the revision of this change
};

// One line of the /v3/watch stream.
struct WatchMessage {
  std::int64_t revision = 0;  // header.revision (0 when absent)
  // The revision to resume from after a reconnect: past the last event (etcd's clientv3 rule),
  // 0 when the message has no events.
  std::int64_t resume_revision() const {
    return events.empty() ? 0 : events.back().mod_revision + 1;
  }
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;  // > 0: the start revision was compacted (re-read all)
  std::string cancel_reason;          // printable, bounded
  std::vector<Event> events;
  std::optional<Error> error;  // {"error": {...}}: the stream failed
};

// Parses one line of the watch stream. Returns "" on success, else why the line is unusable.
std::string parse_watch_line(std::string_view line, WatchMessage &out);

}  // namespace clusterd::etcd
