#include "reconcile/formation.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace clusterd::reconcile {

using std::chrono::milliseconds;

bool Formation::open(std::size_t nodes, TimePoint now, std::optional<TimePoint> &recheck) {
  recheck.reset();
  if (open_) return true;
  if (!discovered_ || nodes < rule_.min_nodes) return false;
  if (now - changed_at_ < rule_.stable_for) {
    recheck = changed_at_ + rule_.stable_for;
    return false;
  }
  return open_ = true;
}

nlohmann::json Formation::status(std::size_t nodes, TimePoint now) const {
  auto stable =
      discovered_ ? std::chrono::duration_cast<milliseconds>(now - changed_at_).count() : 0;
  return {{"gate", open_ ? "open" : "waiting"},
          {"discovered", discovered_},
          {"nodes", nodes},
          {"min_nodes", rule_.min_nodes},
          {"stable_ms", stable},
          {"stable_for_ms", rule_.stable_for.count()}};
}

namespace {

std::string seconds(std::int64_t ms) {
  return ms % 1000 == 0 ? fmt::format("{} s", ms / 1000) : fmt::format("{:.1f} s", ms / 1000.0);
}

}  // namespace

std::string formation_text(const nlohmann::json &f) {
  if (!f.is_object()) return "-";
  if (f.value("formed", false)) return "formed";
  if (!f.value("discovered", false)) return "waiting for a successful discovery";
  if (f.value("gate", "") == "open")
    return fmt::format("connecting: {} of {} node(s) connected", f.value("connected", 0),
                       f.value("desired", 0));
  std::string text = "waiting: ";
  auto min_nodes = f.value("min_nodes", 1);
  if (min_nodes > 1) text += fmt::format("{} of {} nodes", f.value("nodes", 0), min_nodes);
  if (auto stable_for = f.value<std::int64_t>("stable_for_ms", 0); stable_for > 0) {
    if (min_nodes > 1) text += ", ";
    text += fmt::format("stable {} of {}",
                        seconds(std::min(f.value<std::int64_t>("stable_ms", 0), stable_for)),
                        seconds(stable_for));
  }
  return text;
}

}  // namespace clusterd::reconcile
