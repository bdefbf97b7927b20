// libFuzzer target: the .hosts.erlang parser (plugins/strategies/erlang_hosts/hosts_erlang.hpp),
// which reads a file an operator (or a tool) wrote. Besides "no crash, no UB, no leak", it
// checks and aborts when broken:
//   - an error has a message and a position inside the input (line <= newlines + 1);
//   - every accepted host is usable in a node name (not empty, no '@', whitespace, control);
//   - round trip: the hosts, written back as quoted atoms, parse to the same hosts.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "hosts_erlang.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  std::vector<std::string> hosts;
  clusterd::erlang_hosts::SyntaxError error;
  if (!clusterd::erlang_hosts::parse_hosts_erlang(text, hosts, error)) {
    check(!error.message.empty());
    check(error.line >= 1 && error.column >= 1);
    check(static_cast<std::size_t>(error.line) <=
          static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    check(static_cast<std::size_t>(error.column) <= size + 1);
    check(hosts.empty());
    return 0;
  }
  std::string written;
  for (const auto &h : hosts) {
    check(!h.empty());
    for (const char ch : h) {
      const auto c = static_cast<unsigned char>(ch);
      check(c > 0x20 && c != 0x7f && c != '@');
    }
    written += '\'';
    for (const char c : h) {
      if (c == '\'' || c == '\\') written += '\\';
      written += c;
    }
    written += "'.\n";
  }
  std::vector<std::string> again;
  check(clusterd::erlang_hosts::parse_hosts_erlang(written, again, error));
  check(again == hosts);
  return 0;
}
