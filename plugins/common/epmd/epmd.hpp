// The EPMD protocol (Erlang Port Mapper Daemon, TCP 4369): request encoders and reply parsers,
// shared by the epmd, local_epmd and erlang_hosts strategies and the erlang transport. Pure
// functions on bytes: no I/O here, so every reply shape can be tested and fuzzed. Thread-safe
// (no shared state), so a blocking thread may use them as well as the loop.
//
// Wire facts (erlang.md §3): requests are Length:u16be + body; replies are not framed and
// EPMD closes the connection after a NAMES or PORT_PLEASE2 reply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::epmd {

inline constexpr std::uint16_t kDefaultPort = 4369;
// No reply is larger than this; a longer stream is an error, not a reason to grow a buffer.
inline constexpr std::size_t kMaxReplyBytes = 1 << 20;
// The longest alive name EPMD accepts: 255 characters, UTF-8 encoded (epmd_int.h MAXSYMLEN).
inline constexpr std::size_t kMaxAliveBytes = 255 * 4;

// True when `alive` can be registered in EPMD and be the name part of a node name: 1 to
// kMaxAliveBytes bytes, none of them '@', a space or an ASCII control character. Bytes >= 0x80
// (UTF-8) are allowed, as in OTP's node names.
bool valid_alive_name(std::string_view alive);

// NAMES_REQ: 00 01 6e.
std::string names_request();
// PORT_PLEASE2_REQ for the alive name (the part before '@'), e.g. "app" for app@host:
// 00 LL 7a NAME. Returns "" when !valid_alive_name(alive).
std::string port_please2_request(std::string_view alive);

enum class Parse {
  complete,   // `out` is filled
  need_more,  // a prefix of a valid reply: read more (only when !eof)
  error,      // malformed (at EOF: also truncated); `error` says how
};

struct Registered {
  std::string name;  // alive name, e.g. "app"
  std::uint16_t port;
};

// NAMES_RESP: u32 EPMD port, then lines "name NAME at port PORT\n". Complete only at EOF
// (`eof` = the peer closed), because the reply has no length. Strict: the u32 must be a TCP
// port (1..65535), every line must match exactly (NAME as in valid_alive_name, PORT decimal
// 1..65535) and end with '\n'; a malformed line fails the whole reply ("line 2: ..."), since
// it means the peer is not an EPMD we understand. A complete-looking prefix without EOF is
// need_more; a bad complete line is an error at once. A prefix at EOF is an error
// ("truncated: ..."). `out` is written only on complete.
Parse parse_names(std::string_view bytes, bool eof, std::vector<Registered> &out,
                  std::string &error);

struct PortReply {
  bool registered = false;  // false: result != 0 (no such name)
  std::uint16_t port = 0;
  std::uint8_t node_type = 0;  // 77 'M' normal, 72 'H' hidden
  std::uint8_t protocol = 0;
  std::uint16_t highest_version = 0, lowest_version = 0;
  std::string name;
};

// PORT2_RESP: 119, result, then (if result == 0) port, type, protocol, versions, name, extra.
// The reply's structure gives its length, so it is complete as soon as all of it arrived,
// without waiting for EOF; bytes after it are an error. A registered reply needs port >= 1 and
// a name of 1..kMaxAliveBytes bytes. A prefix at EOF is an error ("truncated: ...").
// `out` is written only on complete.
Parse parse_port2(std::string_view bytes, bool eof, PortReply &out, std::string &error);

// `bytes` for messages: printable ASCII as is, anything else as \xNN, cut after `max` input
// bytes with "...". Never longer than 4 * max + 3.
std::string printable(std::string_view bytes, std::size_t max = 40);

}  // namespace clusterd::epmd
