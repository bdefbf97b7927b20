#include "log/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
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
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
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
