// libFuzzer target: the exec strategy's reading of its command's stdout
// (plugins/strategies/exec/exec_lines.hpp), bytes from a program clusterd did not write.
// Besides "no crash, no UB, no leak", it aborts when:
//   - the stream's meaning depends on how the pipe cut the bytes (the first input byte picks a
//     chunk size; the result must equal feeding everything at once);
//   - a name is empty, has a line break, or surrounding blanks, or is longer than a line;
//   - a full set or a periodic list is not sorted and free of duplicates, or a full set is
//     larger than its byte limit;
//   - a refused line is quoted at more than 83 bytes or has no reason.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "exec_lines.hpp"

namespace {

namespace ex = clusterd::exec;

constexpr std::size_t kMaxSet = 300;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_name(const std::string &n) {
  check(!n.empty() && n.size() <= ex::kMaxLine);
  check(n.find('\n') == std::string::npos);
  check(ex::meaningful(n) == n);  // trimmed, and not a comment
}

void check_sorted(const std::vector<std::string> &names) {
  check(std::is_sorted(names.begin(), names.end()));
  check(std::adjacent_find(names.begin(), names.end()) == names.end());
}

void check_refused(const std::vector<ex::Refusal> &refused) {
  for (const auto &r : refused) check(r.line.size() <= 83 && !r.why.empty());
}

struct Fed {
  std::vector<ex::StreamEvent> events;
  std::vector<ex::Refusal> refused;
  bool open = false;
};

Fed feed(std::string_view text, std::size_t chunk) {
  ex::StreamParser parser(kMaxSet);
  Fed out;
  for (std::size_t i = 0; i < text.size(); i += chunk)
    parser.feed(text.substr(i, chunk), out.events, out.refused);
  out.open = parser.finish(out.events, out.refused);
  return out;
}

bool same(const Fed &a, const Fed &b) {
  if (a.open != b.open || a.events.size() != b.events.size() ||
      a.refused.size() != b.refused.size())
    return false;
  for (std::size_t i = 0; i < a.events.size(); ++i)
    if (a.events[i].kind != b.events[i].kind || a.events[i].node != b.events[i].node ||
        a.events[i].nodes != b.events[i].nodes)
      return false;
  for (std::size_t i = 0; i < a.refused.size(); ++i)
    if (a.refused[i].line != b.refused[i].line || a.refused[i].why != b.refused[i].why)
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view text(reinterpret_cast<const char *>(data) + 1, size - 1);

  const ex::ListAnswer list = ex::parse_list(text);
  for (const auto &n : list.nodes) check_name(n);
  check_sorted(list.nodes);
  check_refused(list.refused);

  const Fed whole = feed(text, text.size() + 1);
  check(same(whole, feed(text, chunk)));
  check_refused(whole.refused);
  for (const auto &e : whole.events) {
    if (e.kind != ex::StreamEvent::Kind::kFullSet) {
      check_name(e.node);
      continue;
    }
    check_sorted(e.nodes);
    std::size_t bytes = 0;
    for (const auto &n : e.nodes) check_name(n), bytes += n.size();
    check(bytes <= kMaxSet);
  }
  return 0;
}
