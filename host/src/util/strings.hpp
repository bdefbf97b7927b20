// Small string (and file-to-string) helpers shared by the config checker, the CLI and the
// control socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::util {

std::string join(const std::vector<std::string> &parts, std::string_view separator);
std::vector<std::string> split(std::string_view text, char separator);
// The candidate closest to `word` by edit distance, or "" if none is close ("did you mean").
std::string closest_match(std::string_view word, const std::vector<std::string> &candidates);
// `text` as a message quotes it: in double quotes, escaped, and cut after `limit` bytes ("..."),
// so a message stays one short line.
std::string quote_for_message(std::string_view text, std::size_t limit = 80);
// Reads the whole file at `path` into `out`: "" on success, else the reason (never content).
// stdio rather than iostreams, which would pull the C++ locale machinery into the daemon.
std::string read_file(const std::string &path, std::string &out);

struct HostPort {
  std::string host;  // without the brackets of "[v6]"
  std::uint16_t port = 0;
};
// "HOST:PORT" or "[V6]:PORT" with a port 0..65535 (0: any free port); nullopt otherwise.
std::optional<HostPort> split_host_port(std::string_view text);
// An IPv4 or IPv6 address literal (no brackets).
bool is_ip_address(const std::string &text);

}  // namespace clusterd::util
