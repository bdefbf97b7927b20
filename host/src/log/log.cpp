#include "log/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <clusterd/common.h>

namespace clusterd::log {
namespace {

// One JSON object per line; nlohmann does the escaping that a pattern string cannot.
class JsonStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg &msg) override {
    auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch());
    nlohmann::json line = {
        {"ts_ms", millis.count()},
        {"level", spdlog::level::to_string_view(msg.level).data()},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
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
    if (stderr_is_journal()) {
      auto formatter = std::make_unique<spdlog::pattern_formatter>();
      formatter->add_flag<JournalPriority>('*').set_pattern("%*%v");
      logger->set_formatter(std::move(formatter));
    } else {
      logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    }
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

}  // namespace clusterd::log
