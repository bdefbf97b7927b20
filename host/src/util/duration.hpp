// Durations as the config writes them: "250ms", "5s", "2m", "1h", integer milliseconds, or
// "infinity". One parser for the whole daemon and every plugin option.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace clusterd::util {

// Milliseconds, or kInfinite for "infinity". nullopt when the text is not a duration.
inline constexpr std::int64_t kInfinite = -1;
std::optional<std::int64_t> parse_duration_ms(std::string_view text);

}  // namespace clusterd::util
