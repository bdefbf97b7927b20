// Writes wait for the end of the loop event that produced them, so that the frames of one event
// (many messages read from an application at once, the acknowledgements of a read of messages)
// leave in one write per socket instead of one each. Everything runs on the loop thread.
#pragma once

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
  // open (write now). A writer defers once per batch (it keeps its own flag).
  static bool defer(std::function<void()> write);

 private:
  static inline int depth_ = 0;
  static inline std::vector<std::function<void()>> deferred_;
};

}  // namespace clusterd::partisan
