// Logging set-up: spdlog to stderr (journald captures it under systemd), as text or as one
// JSON object per line. Everything else logs through spdlog's default logger.
#pragma once

#include <spdlog/spdlog.h>

#include <optional>
#include <string_view>

namespace clusterd::log {

std::optional<spdlog::level::level_enum> parse_level(std::string_view name);
// Installs the stderr logger. format is "text" or "json" (validated by the config checker).
void configure(spdlog::level::level_enum level, std::string_view format);
// Maps a plugin's CLUSTERD_LOG_* level; unknown values log as info.
spdlog::level::level_enum from_sdk_level(int level);

}  // namespace clusterd::log
