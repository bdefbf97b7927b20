// Logging set-up: spdlog to stderr (journald captures it under systemd), as text or as one
// JSON object per line. Everything else logs through spdlog's default logger, whose sinks
// escape every message (escape() below): no log line can carry a raw newline or escape code.
#pragma once

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace clusterd::log {

std::optional<spdlog::level::level_enum> parse_level(std::string_view name);
// Installs the stderr logger. format is "text" or "json" (validated by the config checker).
void configure(spdlog::level::level_enum level, std::string_view format);
// Maps a plugin's CLUSTERD_LOG_* level; unknown values log as info.
spdlog::level::level_enum from_sdk_level(int level);

// `text` safe for one log line: \n \r \t, other control characters (C0, DEL, C1) and bytes
// that are not UTF-8 as \xNN, U+0080..U+009F and U+2028/U+2029 as \uNNNN; valid UTF-8 and
// backslashes kept as they are. Peer-supplied names end up in messages: every line goes
// through this, in the sink, so no call site has to remember.
std::string escape(std::string_view text);

// Whether a plugin's message (`source`: its instance label) may be logged now. Info, warnings
// and errors pass the process's Limiter (limiter.hpp); what it drops is counted, and a line
// "[source] suppressed N similar ... messages" follows when the window ends (a timer on `io`).
// Debug and trace are never dropped: who enables them wants every line. Only plugins' messages
// go through this: the daemon's own lines are never suppressed.
bool admit_plugin_message(boost::asio::io_context &io, std::string_view source, int level,
                          std::string_view message);

}  // namespace clusterd::log
