// libFuzzer target: the kubernetes strategy's parser (plugins/strategies/kubernetes/
// k8s_parse.hpp), which reads Kubernetes API answers: list bodies and watch streams. Besides
// "no crash, no UB, no leak", it checks and aborts when broken:
//   - every node name built is basename@... with a non-empty, control-free rest and no second
//     '@', and the name set is sorted and unique;
//   - an error event has no object; the line splitter never yields a line with '\n'.
// The input is read as a list body of each lookup mode, and as a watch stream (split into
// lines by LineBuffer, in two chunks) of each lookup mode. Also built without libFuzzer as a
// corpus replayer (replay_main.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "k8s_parse.hpp"
#include "line_buffer.hpp"

namespace {

namespace k8s = clusterd::kubernetes;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_names(const std::map<std::string, k8s::Object> &objects) {
  for (auto mode : {k8s::Mode::kIp, k8s::Mode::kDns, k8s::Mode::kHostname}) {
    k8s::Naming naming;
    naming.basename = "app";
    naming.mode = mode;
    naming.readiness = k8s::Readiness::kAll;
    const k8s::NameSet set = k8s::node_names(objects, naming);
    check(std::is_sorted(set.names.begin(), set.names.end()));
    check(std::adjacent_find(set.names.begin(), set.names.end()) == set.names.end());
    for (const std::string &name : set.names) {
      check(name.rfind("app@", 0) == 0 && name.size() > 4);
      check(name.find('@', 4) == std::string::npos);
      check(std::none_of(name.begin(), name.end(),
                         [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
    }
    check(set.skipped == 0 || !set.why.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  for (auto lookup : {k8s::Lookup::kEndpoints, k8s::Lookup::kPods, k8s::Lookup::kEndpointSlices}) {
    k8s::ListResult list;
    std::map<std::string, k8s::Object> objects;
    if (k8s::parse_list(text, lookup, list).empty()) {
      for (auto &o : list.objects) objects[o.key] = std::move(o);
      check_names(objects);
    }
    clusterd::LineBuffer lines(4096);
    auto on_line = [&](std::string_view line) {
      check(line.find('\n') == std::string_view::npos && !line.empty());
      k8s::Event event;
      if (!k8s::parse_event(line, lookup, event).empty()) return true;
      if (event.type == k8s::EventType::kError) {
        check(event.object.endpoints.empty());
      } else if (event.type == k8s::EventType::kDeleted) {
        objects.erase(event.object.key);
      } else if (event.type != k8s::EventType::kBookmark) {
        objects[event.object.key] = std::move(event.object);
      }
      return true;
    };
    const std::size_t half = size / 2;
    if (lines.feed(text.substr(0, half), on_line)) lines.feed(text.substr(half), on_line);
    check_names(objects);
  }
  (void)k8s::status_message(text);
  return 0;
}
