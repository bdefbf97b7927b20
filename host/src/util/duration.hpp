// Durations as the config writes them: "250ms", "5s", "2m", "1h", or "infinity" (an integer,
// milliseconds as in libcluster, is a TOML integer and never reaches this parser). One parser
// for the whole daemon and every plugin option.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace clusterd::util {

// Milliseconds, or kInfinite for "infinity". nullopt when the text is not a duration; a
// string without a unit ("5") is not one: 5 what?
inline constexpr std::int64_t kInfinite = -1;
std::optional<std::int64_t> parse_duration_ms(std::string_view text);

}  // namespace clusterd::util
