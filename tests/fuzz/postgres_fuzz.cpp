// libFuzzer target: the postgres strategy's checks of network input
// (plugins/third_party/clusterd-plugin-postgres/notify.hpp): a NOTIFY payload heard on the
// channel (anyone allowed to NOTIFY there can send anything) and, for the same bytes, the
// channel-name and run-time-parameter rules. Besides "no crash, no UB, no leak", it aborts
// when:
//   - a payload accepted as a node name could break out of the SQL literal it is sent back in
//     ('\'', '\\', a control byte) or breaks the SDK's node-name rule;
//   - a refused payload has no reason, or its printable form is not printable or too long;
//   - an accepted channel could break out of its double quotes;
//   - accepted parameters yield an options string with an unescaped space inside a value.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <clusterd/node_name.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "notify.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  namespace pg = clusterd_postgres;
  const std::string_view payload(reinterpret_cast<const char *>(data), size);

  const pg::Payload kind = pg::classify_payload(payload);
  if (kind == pg::Payload::kNode) {
    check(clusterd::valid_node_name(payload) && pg::payload_problem(payload).empty());
    for (char c : payload) check(c != '\'' && c != '\\' && c != '"' && c > ' ' && c <= '~');
    const std::string sql = pg::notify_sql("chan", payload);
    check(sql.size() == payload.size() + 17 && sql.back() == '\'');
  } else {
    check(!pg::payload_problem(payload).empty() && *pg::payload_label(kind) != '\0');
  }
  const std::string shown = pg::printable(payload);
  check(shown.size() <= 80 * 4 + 3);
  for (char c : shown) check(c >= 0x20 && c < 0x7f);

  if (pg::channel_problem(payload).empty()) {
    check(payload.size() <= pg::kMaxChannel);
    check(payload.find('"') == std::string_view::npos);
    check(pg::listen_sql(payload) == "LISTEN \"" + std::string(payload) + "\"");
  }

  // The same bytes as `parameters`, one per line.
  std::vector<std::string> parameters;
  std::size_t start = 0;
  while (start <= payload.size() && parameters.size() < 64) {
    const std::size_t end = std::min(payload.find('\n', start), payload.size());
    parameters.emplace_back(payload.substr(start, end - start));
    start = end + 1;
  }
  std::string options, application_name;
  if (pg::startup_options(parameters, options, application_name).empty()) {
    // Every space is a separator before "-c" or escaped by a backslash.
    for (std::size_t i = 0; i < options.size(); ++i) {
      if (options[i] != ' ') continue;
      std::size_t backslashes = 0;
      for (std::size_t j = i; j > 0 && options[j - 1] == '\\'; --j) ++backslashes;
      check(backslashes % 2 == 1 || options.compare(i + 1, 3, "-c ") == 0 ||
            (i >= 2 && options.compare(i - 2, 3, "-c ") == 0));
    }
  }
  return 0;
}
