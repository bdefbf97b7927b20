// Ids for timers, watches, requests and operations: one counter for the whole daemon, so an
// id is never reused within a run (plugins may hold stale ids; they must stay harmless).
#pragma once

#include <atomic>
#include <cstdint>

namespace clusterd::util {

inline std::uint64_t next_id() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace clusterd::util
