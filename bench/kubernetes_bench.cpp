// kubernetes strategy: parse and reconcile an EndpointSliceList of 10,000 endpoints (issue 5
// target: <= 20 ms and <= 50 MB peak), and apply one watch event to that state. Prints the
// median, min and max (CPU time) of several runs of each phase and the process's peak RSS.
//   kubernetes_bench [ENDPOINTS=10000] [RUNS=15]
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "k8s_parse.hpp"
#include "reconcile/reconciler.hpp"

namespace k8s = clusterd::kubernetes;
namespace rec = clusterd::reconcile;
// CPU time of this process: on a shared machine wall time mostly measures the neighbours.
struct Clock {
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<Clock, duration>;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return time_point(duration(static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec));
  }
};

namespace {

struct NullActions : rec::Link, rec::Runtime {
  rec::ConnectedSet set;
  const rec::ConnectedSet &connected() const override { return set; }
  bool connect(rec::Reconciler &, std::uint64_t, const std::string &, std::string &) override {
    return true;
  }
  bool disconnect(rec::Reconciler &, std::uint64_t, const std::string &, std::string &) override {
    return true;
  }
  void cancel(std::uint64_t) override {}
  void wake_at(std::optional<rec::TimePoint>) override {}
  void request_step() override {}
  void connecting(const std::string &) override {}
  void connected(const std::string &) override {}
  void connect_failed(const std::string &, const std::string &, unsigned,
                      std::chrono::milliseconds) override {}
  void disconnecting(const std::string &) override {}
  void disconnected(const std::string &, bool, const std::string &) override {}
};

// One slice as the EndpointSlice controller writes it (same fields as the fixture).
std::string slice(int index, int first, int count, int rv) {
  std::string s =
      R"({"metadata":{"name":"myapp-)" + std::to_string(index) +
      R"(","namespace":"prod","generateName":"myapp-","resourceVersion":")" + std::to_string(rv) +
      R"(","labels":{"kubernetes.io/service-name":"myapp","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","app":"myapp"},"ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"myapp","uid":"5a9d6b4e-1111-4c4c-9d9d-000000000001","controller":true,"blockOwnerDeletion":true}]},"addressType":"IPv4","endpoints":[)";
  for (int i = first; i < first + count; ++i) {
    const std::string ip = "10." + std::to_string(i >> 16 & 255) + "." +
                           std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255);
    const std::string pod = "myapp-" + std::to_string(i);
    if (i != first) s += ',';
    s +=
        R"({"addresses":[")" + ip +
        R"("],"conditions":{"ready":true,"serving":true,"terminating":false},"targetRef":{"kind":"Pod","namespace":"prod","name":")" +
        pod + R"(","uid":"00000000-0000-4000-8000-)" + std::to_string(100000000000 + i) +
        R"("},"nodeName":"node-)" + std::to_string(i % 50) + R"(","zone":"zone-)" +
        std::to_string(i % 3) + R"(","hostname":")" + pod + R"("})";
  }
  s +=
      R"(],"ports":[{"name":"epmd","protocol":"TCP","port":4369},{"name":"dist","protocol":"TCP","port":9100}]})";
  return s;
}

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void print(const char *what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%-44s median %8.3f ms   min %8.3f   max %8.3f   (%zu runs)\n", what, v[v.size() / 2],
              v.front(), v.back(), v.size());
}

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

int main(int argc, char **argv) {
  const int endpoints = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 15;
  constexpr int kPerSlice = 100;  // the controller's default maximum
  std::string body =
      R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"900000"},"items":[)";
  for (int i = 0, n = 0; n < endpoints; ++i, n += kPerSlice) {
    if (i > 0) body += ',';
    body += slice(i, n, std::min(kPerSlice, endpoints - n), 800000 + i);
  }
  body += "]}";
  const std::string event =
      R"({"type":"MODIFIED","object":)" + slice(0, 0, std::min(kPerSlice, endpoints), 900001) + "}";
  const long rss_before = peak_rss_kb();
  std::printf("EndpointSliceList: %d endpoints in %d slices, %.1f MB of JSON\n", endpoints,
              (endpoints + kPerSlice - 1) / kPerSlice, static_cast<double>(body.size()) / 1e6);

  k8s::Naming naming;
  naming.basename = "myapp";
  std::vector<double> parse, names, reconcile, total, watch;
  std::size_t count = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    k8s::ListResult list;
    if (!k8s::parse_list(body, k8s::Lookup::kEndpointSlices, list).empty()) return 1;
    std::map<std::string, k8s::Object> objects;
    for (auto &o : list.objects) objects.emplace(o.key, std::move(o));
    const auto t1 = Clock::now();
    k8s::NameSet set = k8s::node_names(objects, naming);
    const auto t2 = Clock::now();
    // The host's side of report_nodes: the reconciler diffs and starts connects (16 at once).
    NullActions actions;
    rec::Reconciler reconciler(rec::Policy{}, actions, actions, 1);
    reconciler.set_desired(set.names);
    reconciler.step(rec::Clock::now());
    const auto t3 = Clock::now();
    // One watch event (a 100-endpoint slice changed) applied to the 10,000-endpoint state.
    k8s::Event e;
    if (!k8s::parse_event(event, k8s::Lookup::kEndpointSlices, e).empty()) return 1;
    objects[e.object.key] = std::move(e.object);
    const k8s::NameSet after = k8s::node_names(objects, naming);
    reconciler.set_desired(after.names);
    reconciler.step(rec::Clock::now());
    const auto t4 = Clock::now();
    parse.push_back(ms(t1 - t0));
    names.push_back(ms(t2 - t1));
    reconcile.push_back(ms(t3 - t2));
    total.push_back(ms(t3 - t0));
    watch.push_back(ms(t4 - t3));
    count = set.names.size();
  }
  std::printf("node names: %zu\n", count);
  print("parse (JSON -> endpoints)", parse);
  print("node names (sorted, unique)", names);
  print("host reconciler (set_desired + step)", reconcile);
  print("parse + names + reconcile", total);
  print("one watch event (100-endpoint slice)", watch);
  const long rss = peak_rss_kb();
  std::printf("peak RSS: %.1f MB (%.1f MB before parsing: the process and the input)\n",
              static_cast<double>(rss) / 1024, static_cast<double>(rss_before) / 1024);
  return 0;
}
