// Writes wait for the end of the loop event that produced them, so that the frames of one event
// (many messages read from an application at once, the acknowledgements of a read of messages)
// leave in one write per socket instead of one each. Everything runs on the loop thread.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace clusterd::partisan {

class Batch {
 public:
  Batch() { ++depth_; }
  // The outermost Batch runs the deferred writes.
  ~Batch();
  Batch(const Batch &) = delete;
  Batch &operator=(const Batch &) = delete;

  // Keeps `write` for the end of the outermost open Batch and returns true; false when none is
  // open (write now). A writer defers once per batch (it keeps its own flag), and only while it
  // holds less than kMaxDeferred bytes: a large message goes out at once, so that send buffers
  // stay small (a buffer over the allocator's mmap threshold costs page faults per burst).
  static bool defer(std::function<void()> write);
  static constexpr std::size_t kMaxDeferred = 64 * 1024;

 private:
  static inline int depth_ = 0;
  static inline std::vector<std::function<void()>> deferred_;
};

}  // namespace clusterd::partisan
