#include "log/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <clusterd/common.h>

#include "log/limiter.hpp"

namespace clusterd::log {
namespace {

// The length (2..4) of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF) with its code point in `cp`; 0 when there is none.
std::size_t utf8_sequence(std::string_view text, std::size_t i, std::uint32_t &cp) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char c = at(0);
  std::size_t n = 0;
  unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) low = 0xa0;
    if (c == 0xed) high = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) low = 0x90;
    if (c == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (i + n > text.size() || at(1) < low || at(1) > high) return 0;
  cp = c & (0x7f >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((at(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (at(k) & 0x3f);
  }
  return n;
}

// escape(): copies clean runs whole, so a message with nothing to escape costs one scan.
template <typename Out>
void escape_into(std::string_view text, Out &out) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t copied = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t n = c >= 0x80 ? utf8_sequence(text, i, cp) : 0;
    // C1 controls (U+009B is a CSI to some terminals) and the Unicode line separators.
    if (n > 0 && cp >= 0xa0 && cp != 0x2028 && cp != 0x2029) {
      i += n;
      continue;
    }
    out.append(text.data() + copied, text.data() + i);
    char code[8] = {'\\', 'x'};
    std::size_t length = 4;
    if (n > 0) {
      code[1] = 'u';
      for (int k = 0; k < 4; ++k) code[2 + k] = kHex[(cp >> (12 - 4 * k)) & 0xf];
      length = 6;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      code[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      length = 2;
    } else {
      code[2] = kHex[c >> 4];
      code[3] = kHex[c & 0xf];
    }
    out.append(code, code + length);
    i += n > 0 ? n : 1;
    copied = i;
  }
  out.append(text.data() + copied, text.data() + text.size());
}

// The text formats' message: %V, the escaped payload (in place of spdlog's raw %v).
class EscapedPayload final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg &msg, const std::tm &,
              spdlog::memory_buf_t &dest) override {
    escape_into(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedPayload>();
  }
};

// One JSON object per line; nlohmann does the escaping that a pattern string cannot.
class JsonStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg &msg) override {
    auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch());
    nlohmann::json line = {
        {"ts_ms", millis.count()},
        {"level", spdlog::level::to_string_view(msg.level).data()},
        {"msg", escape(std::string_view(msg.payload.data(), msg.payload.size()))},
    };
    // Escaped as in the text format (a reader of either sees the same message); the JSON
    // encoder alone would leave C1 controls and line separators raw.
    auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

// sd-daemon(3) priority prefixes, which journald reads from a service's stderr and strips:
// `journalctl -p warning` then works. journald stamps time and unit itself.
class JournalPriority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg &msg, const std::tm &,
              spdlog::memory_buf_t &dest) override {
    static constexpr const char *kPrefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    auto level = static_cast<std::size_t>(msg.level);
    const char *prefix = kPrefix[level < std::size(kPrefix) ? level : 2];
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriority>();
  }
};

// True when stderr is the journal stream systemd gave us ($JOURNAL_STREAM is "DEV:INODE" of
// it), not a terminal or file that merely inherited the variable.
bool stderr_is_journal() {
  const char *stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (!stream || ::fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) &&
         ino == static_cast<unsigned long long>(st.st_ino);
}

Limiter &limiter() {
  static Limiter instance;
  return instance;
}

void log_summaries(bool all) {
  for (const auto &s : limiter().take_summaries(Limiter::Clock::now(), all))
    spdlog::log(from_sdk_level(s.level),
                "[{}] suppressed {} similar {} messages in the last {} s; "
                "the first: {}",
                s.source, s.count, spdlog::level::to_string_view(from_sdk_level(s.level)),
                Limiter::Limits{}.window.count(), s.example);
}

// One timer for the process, armed while drops wait for their summary, so the summary comes
// even when the flood (and every message after it) has stopped.
std::atomic<bool> summary_timer_armed{false};

void arm_summary_timer(boost::asio::io_context &io) {
  if (summary_timer_armed.exchange(true)) return;
  // Disarms when the handler is gone: fired, or dropped with its io_context (then the counts
  // are logged at once, not lost).
  struct Arming {
    bool fired = false;
    ~Arming() {
      if (fired) return;
      summary_timer_armed = false;
      log_summaries(true);
    }
  };
  auto timer = std::make_shared<boost::asio::steady_timer>(io, limiter().next_summary());
  timer->async_wait([timer, arming = std::make_shared<Arming>(), &io](const auto &) {
    arming->fired = true;
    summary_timer_armed = false;
    log_summaries(false);
    if (limiter().next_summary() != Limiter::Clock::time_point::max()) arm_summary_timer(io);
  });
}

}  // namespace

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return std::nullopt;
}

void configure(spdlog::level::level_enum level, std::string_view format) {
  std::shared_ptr<spdlog::logger> logger;
  if (format == "json") {
    logger = std::make_shared<spdlog::logger>("clusterd", std::make_shared<JsonStderrSink>());
  } else {
    logger = std::make_shared<spdlog::logger>("clusterd",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<EscapedPayload>('V');
    if (stderr_is_journal())
      formatter->add_flag<JournalPriority>('*').set_pattern("%*%V");
    else
      formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %V");
    logger->set_formatter(std::move(formatter));
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // a daemon's log must not lag behind its state
  spdlog::set_default_logger(std::move(logger));
}

spdlog::level::level_enum from_sdk_level(int level) {
  switch (level) {
    case CLUSTERD_LOG_TRACE:
      return spdlog::level::trace;
    case CLUSTERD_LOG_DEBUG:
      return spdlog::level::debug;
    case CLUSTERD_LOG_WARN:
      return spdlog::level::warn;
    case CLUSTERD_LOG_ERROR:
      return spdlog::level::err;
    default:
      return spdlog::level::info;
  }
}

bool admit_plugin_message(boost::asio::io_context &io, std::string_view source, int level,
                          std::string_view message) {
  const auto spd_level = from_sdk_level(level);
  if (spd_level < spdlog::level::info || !spdlog::should_log(spd_level)) return true;
  const auto now = Limiter::Clock::now();
  log_summaries(false);  // a window that has ended reports before newer lines
  if (limiter().admit(source, level, message, now)) return true;
  arm_summary_timer(io);
  return false;
}

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  escape_into(text, out);
  return out;
}

}  // namespace clusterd::log
