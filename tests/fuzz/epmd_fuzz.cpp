// libFuzzer target: the EPMD reply parsers (plugins/common/epmd/epmd.hpp), which read bytes
// from the network. The first input byte picks the parser and the EOF flag; the rest is the
// reply. Besides "no crash, no UB, no leak", it checks the parsers' contracts and aborts when
// one is broken:
//   - need_more only before EOF; an error always says why;
//   - a complete reply holds only valid names and ports;
//   - an error before EOF stays an error when more bytes arrive (streaming is monotonic);
//   - a PORT2 reply complete before EOF is the same reply at EOF.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "epmd.hpp"

namespace {

using clusterd::epmd::Parse;

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_names(std::string_view bytes, bool eof) {
  std::vector<clusterd::epmd::Registered> out;
  std::string error;
  const Parse p = clusterd::epmd::parse_names(bytes, eof, out, error);
  check(p != Parse::need_more || !eof);
  check(p != Parse::error || !error.empty());
  if (p == Parse::complete) {
    for (const auto &r : out) check(clusterd::epmd::valid_alive_name(r.name) && r.port != 0);
  } else {
    check(out.empty());
  }
  // Monotonic: an error on a prefix is an error on the whole.
  std::vector<clusterd::epmd::Registered> half_out;
  std::string half_error;
  const Parse half =
      clusterd::epmd::parse_names(bytes.substr(0, bytes.size() / 2), false, half_out, half_error);
  if (half == Parse::error) check(p == Parse::error);
}

void fuzz_port2(std::string_view bytes, bool eof) {
  clusterd::epmd::PortReply out;
  std::string error;
  const Parse p = clusterd::epmd::parse_port2(bytes, eof, out, error);
  check(p != Parse::need_more || !eof);
  check(p != Parse::error || !error.empty());
  if (p == Parse::complete && out.registered)
    check(out.port != 0 && !out.name.empty() && out.name.size() <= clusterd::epmd::kMaxAliveBytes);
  clusterd::epmd::PortReply half_out;
  std::string half_error;
  if (clusterd::epmd::parse_port2(bytes.substr(0, bytes.size() / 2), false, half_out, half_error) ==
      Parse::error)
    check(p == Parse::error);
  if (p == Parse::complete && !eof) {
    clusterd::epmd::PortReply at_eof;
    check(clusterd::epmd::parse_port2(bytes, true, at_eof, error) == Parse::complete);
    check(at_eof.registered == out.registered && at_eof.port == out.port &&
          at_eof.name == out.name);
  }
}

void fuzz_request(std::string_view alive) {
  const std::string req = clusterd::epmd::port_please2_request(alive);
  if (clusterd::epmd::valid_alive_name(alive)) {
    check(req.size() == alive.size() + 3);
    check(((static_cast<unsigned char>(req[0]) << 8) | static_cast<unsigned char>(req[1])) ==
          static_cast<int>(alive.size() + 1));
  } else {
    check(req.empty());
  }
  check(clusterd::epmd::printable(alive, 40).size() <= 4 * 40 + 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view bytes(reinterpret_cast<const char *>(data + 1), size - 1);
  const bool eof = (selector & 1) != 0;
  switch ((selector >> 1) % 3) {
    case 0:
      fuzz_names(bytes, eof);
      break;
    case 1:
      fuzz_port2(bytes, eof);
      break;
    default:
      fuzz_request(bytes);
      break;
  }
  return 0;
}
