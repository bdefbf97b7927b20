#include "batch.hpp"

namespace clusterd::partisan {

Batch::~Batch() {
  if (--depth_ > 0) return;
  // Writes deferred by these writes (a close's callbacks) run at once: no Batch is open now.
  auto writes = std::move(deferred_);
  deferred_.clear();
  for (auto &write : writes) {
    try {
      write();
    } catch (...) {  // a watch the host refused: the socket's next event or close handles it
    }
  }
}

bool Batch::defer(std::function<void()> write) {
  if (depth_ == 0) return false;
  deferred_.push_back(std::move(write));
  return true;
}

}  // namespace clusterd::partisan
