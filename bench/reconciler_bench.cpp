// Reconciler cost for large desired-set changes (issue target: a 10,000-node change).
#include <benchmark/benchmark.h>

#include "reconcile/reconciler.hpp"

using namespace clusterd::reconcile;

namespace {

// The link and runtime of a reconciler, doing nothing but count; `set` is the connected set.
struct NullActions : Link, Runtime {
  ConnectedSet set;
  std::size_t connects = 0;
  const ConnectedSet &connected() const override { return set; }
  bool connect(Reconciler &, std::uint64_t, const std::string &, std::string &) override {
    return ++connects, true;
  }
  bool disconnect(Reconciler &, std::uint64_t, const std::string &, std::string &) override {
    return true;
  }
  void cancel(std::uint64_t) override {}
  void wake_at(std::optional<TimePoint>) override {}
  void request_step() override {}
  void connecting(const std::string &) override {}
  void connected(const std::string &) override {}
  void disconnecting(const std::string &) override {}
  void connect_failed(const std::string &, const std::string &, unsigned,
                      std::chrono::milliseconds) override {}
  void disconnected(const std::string &, bool, const std::string &) override {}
};

std::vector<std::string> names(int from, int count) {
  std::vector<std::string> out;
  for (int i = from; i < from + count; ++i) out.push_back("app-" + std::to_string(i) + "@10.0.0.1");
  return out;
}

// Empty → 10,000 desired: diff, queue, and start every connect (unbounded parallelism).
void BM_DesiredSetFromEmpty(benchmark::State &state) {
  auto nodes = names(0, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    NullActions actions;
    Policy policy;
    policy.max_parallel = 1u << 30;
    Reconciler r(policy, actions, actions, 1);
    r.set_desired(nodes);
    r.step(Clock::now());
    benchmark::DoNotOptimize(actions.connects);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DesiredSetFromEmpty)->Arg(10000)->Unit(benchmark::kMillisecond);

// 10,000 connected, then a round that replaces 10% of them (policy "removed").
void BM_DesiredSetChange(benchmark::State &state) {
  int n = static_cast<int>(state.range(0));
  auto before = names(0, n), after = names(n / 10, n);
  for (auto _ : state) {
    state.PauseTiming();
    NullActions actions;
    Policy policy;
    policy.max_parallel = 1u << 30;
    policy.disconnect = clusterd::config::DisconnectPolicy::removed;
    Reconciler r(policy, actions, actions, 1);
    r.on_connected(actions.set.replace({before.begin(), before.end()}, ""));
    r.set_desired(before);
    r.step(Clock::now());
    state.ResumeTiming();
    r.set_desired(after);
    r.step(Clock::now());
    benchmark::DoNotOptimize(actions.connects);
  }
}
BENCHMARK(BM_DesiredSetChange)->Arg(10000)->Unit(benchmark::kMillisecond);

// The same 10,000-node round reported again (the steady state of a polling strategy).
void BM_UnchangedRound(benchmark::State &state) {
  auto nodes = names(0, static_cast<int>(state.range(0)));
  NullActions actions;
  Policy policy;
  Reconciler r(policy, actions, actions, 1);
  r.on_connected(actions.set.replace({nodes.begin(), nodes.end()}, ""));
  r.set_desired(nodes);
  for (auto _ : state) {
    r.set_desired(nodes);
    r.step(Clock::now());
  }
}
BENCHMARK(BM_UnchangedRound)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
