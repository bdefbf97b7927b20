// libFuzzer target: the etcd strategy's gateway parser (plugins/strategies/etcd/etcd_parse.hpp),
// which reads etcd's JSON answers: range, lease grant and keepalive, authenticate, errors, and
// watch streams. Besides "no crash, no UB, no leak", it checks and aborts when broken:
//   - base64 round-trips every key read, and decode(encode(x)) == x for the input itself;
//   - a token accepted has no control character (it goes into a header line);
//   - a watch message's resume revision is past each of its events; a grant has a positive
//     TTL; the line splitter never yields a line with '\n'.
// The input is read as each unary answer and as a watch stream (split into lines by
// LineBuffer, in two chunks). Also built without libFuzzer as a corpus replayer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "etcd_parse.hpp"
#include "line_buffer.hpp"

namespace {

namespace etcd = clusterd::etcd;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_key(const std::string &key) {
  const auto back = etcd::base64_decode(etcd::base64_encode(key));
  check(back && *back == key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  const auto round = etcd::base64_decode(etcd::base64_encode(text));
  check(round && *round == text);

  etcd::RangeResult range;
  if (etcd::parse_range(text, range).empty()) {
    check(range.revision > 0);
    for (const auto &kv : range.kvs) check_key(kv.key);
  }
  etcd::Lease lease;
  if (etcd::parse_grant(text, lease).empty()) check(lease.ttl > 0 && lease.id != 0);
  (void)etcd::parse_keepalive(text, lease);
  std::string token;
  if (etcd::parse_authenticate(text, token).empty()) {
    check(!token.empty());
    for (char c : token) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  }
  (void)etcd::parse_error(text);

  clusterd::LineBuffer lines(4096);
  auto on_line = [&](std::string_view line) {
    check(line.find('\n') == std::string_view::npos && !line.empty());
    etcd::WatchMessage message;
    if (etcd::parse_watch_line(line, message).empty()) {
      for (const auto &event : message.events) {
        check_key(event.key);
        check(event.mod_revision > 0 && message.resume_revision() > event.mod_revision - 1);
      }
    }
    return true;
  };
  const std::size_t half = text.size() / 2;
  if (lines.feed(text.substr(0, half), on_line)) lines.feed(text.substr(half), on_line);
  return 0;
}
