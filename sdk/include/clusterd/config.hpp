// clusterd plugin SDK — the typed, read-only view of an instance's validated options (Config) and
// the sink a plugin's validate() reports problems to (Problems).
#ifndef CLUSTERD_CONFIG_HPP
#define CLUSTERD_CONFIG_HPP

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host.hpp"

namespace clusterd {

// ---- Configuration ---------------------------------------------------------------------------

/// Read-only, typed view of an instance's validated configuration (passed to Plugin::init).
/// Getters throw Error: CLUSTERD_E_NOT_FOUND when the option is neither set nor defaulted,
/// CLUSTERD_E_TYPE when the option has another type; the optional_* getters return
/// std::nullopt instead of throwing CLUSTERD_E_NOT_FOUND. [any-thread]
class Config {
 public:
  /// Wraps `raw` (must not be NULL).
  explicit Config(const clusterd_config_t *raw) noexcept : raw_(raw) {}

  /// The C view.
  const clusterd_config_t *raw() const noexcept { return raw_; }

  /// A CLUSTERD_OPT_STRING option.
  std::string string(std::string_view key) const { return required(key, optional_string(key)); }
  /// A CLUSTERD_OPT_INT option.
  int64_t integer(std::string_view key) const { return required(key, optional_integer(key)); }
  /// A CLUSTERD_OPT_BOOL option.
  bool boolean(std::string_view key) const { return required(key, optional_boolean(key)); }
  /// A CLUSTERD_OPT_DOUBLE option.
  double number(std::string_view key) const { return required(key, optional_number(key)); }
  /// A CLUSTERD_OPT_DURATION option; "infinity" is kInfinite.
  std::chrono::milliseconds duration(std::string_view key) const {
    return required(key, optional_duration(key));
  }
  /// A CLUSTERD_OPT_STRING_LIST option.
  std::vector<std::string> strings(std::string_view key) const {
    return required(key, optional_strings(key));
  }

  /// string(key), or std::nullopt when neither set nor defaulted.
  std::optional<std::string> optional_string(std::string_view key) const {
    const char *out = nullptr;
    if (!get(key, &clusterd_config_t::get_string, &out)) return std::nullopt;
    return std::string(out != nullptr ? out : "");
  }
  /// integer(key), or std::nullopt.
  std::optional<int64_t> optional_integer(std::string_view key) const {
    int64_t out = 0;
    if (!get(key, &clusterd_config_t::get_int, &out)) return std::nullopt;
    return out;
  }
  /// boolean(key), or std::nullopt.
  std::optional<bool> optional_boolean(std::string_view key) const {
    int32_t out = 0;
    if (!get(key, &clusterd_config_t::get_bool, &out)) return std::nullopt;
    return out != 0;
  }
  /// number(key), or std::nullopt.
  std::optional<double> optional_number(std::string_view key) const {
    double out = 0;
    if (!get(key, &clusterd_config_t::get_double, &out)) return std::nullopt;
    return out;
  }
  /// duration(key), or std::nullopt.
  std::optional<std::chrono::milliseconds> optional_duration(std::string_view key) const {
    int64_t out = 0;
    if (!get(key, &clusterd_config_t::get_duration_ms, &out)) return std::nullopt;
    if (out < 0) return kInfinite;
    return std::chrono::milliseconds(out);
  }
  /// strings(key), or std::nullopt.
  std::optional<std::vector<std::string>> optional_strings(std::string_view key) const {
    uint32_t size = 0;
    if (!get(key, &clusterd_config_t::get_list_size, &size)) return std::nullopt;
    check_fn(key, &clusterd_config_t::get_list_item);
    const std::string k(key);
    std::vector<std::string> items;
    items.reserve(size);
    for (uint32_t i = 0; i < size; ++i) {
      const char *item = nullptr;
      const Status status = raw_->get_list_item(raw_, k.c_str(), i, &item);
      if (status != CLUSTERD_OK) fail(key, status);
      items.emplace_back(item != nullptr ? item : "");
    }
    return items;
  }

  /// True if `key` was set in the configuration file (not just defaulted).
  bool is_set(std::string_view key) const {
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_config_t, is_set) || raw_->is_set == nullptr)
      return false;
    const std::string k(key);
    return raw_->is_set(raw_, k.c_str()) != 0;
  }
  /// Where `key` was set, "file:line:column", for error messages; "" when it was not set.
  std::string source_of(std::string_view key) const {
    if (!CLUSTERD_STRUCT_HAS(raw_, clusterd_config_t, source_of) || raw_->source_of == nullptr)
      return {};
    const std::string k(key);
    const char *where = raw_->source_of(raw_, k.c_str());
    return where != nullptr ? where : "";
  }
  /// " at file:line:column" (where `key` was set), or "" — to append to an error message.
  std::string where(std::string_view key) const {
    const std::string at = source_of(key);
    return at.empty() ? std::string() : " at " + at;
  }

 private:
  template <class Fn>
  void check_fn(std::string_view key, Fn clusterd_config_t::*fn) const {
    // Every getter is part of ABI 1.0; a view too short to hold them all is a broken host.
    if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_config_t, source_of) ||
        raw_->*fn == nullptr)
      throw Error(CLUSTERD_E_UNSUPPORTED, "config option '" + std::string(key) +
                                              "': the host's config view lacks a getter");
  }
  template <class Fn, class Out>
  bool get(std::string_view key, Fn clusterd_config_t::*fn, Out *out) const {
    check_fn(key, fn);
    const std::string k(key);
    const Status status = (raw_->*fn)(raw_, k.c_str(), out);
    if (status == CLUSTERD_E_NOT_FOUND) return false;
    if (status != CLUSTERD_OK) fail(key, status);
    return true;
  }
  template <class T>
  static T required(std::string_view key, std::optional<T> value) {
    if (!value) fail(key, CLUSTERD_E_NOT_FOUND);
    return std::move(*value);
  }
  [[noreturn]] static void fail(std::string_view key, Status status) {
    std::string message = "config option '" + std::string(key) + "': ";
    switch (status) {
      case CLUSTERD_E_NOT_FOUND:
        message += "not set and no default";
        break;
      case CLUSTERD_E_TYPE:
        message += "has another type than asked for";
        break;
      default:
        message += status_name(status);
        break;
    }
    throw Error(status, message);
  }

  const clusterd_config_t *raw_;
};

/// Where a plugin's `static void validate(const Config &, Problems &)` reports what is wrong with
/// a configuration as a whole (ABI 1.3; see clusterd_plugin_descriptor_t.validate). The host
/// shows each problem with the file, line and column of its key. [loop-thread]
class Problems {
 public:
  /// Wraps `raw` (must not be NULL), valid for the validate() call.
  explicit Problems(const clusterd_problems_t *raw) noexcept : raw_(raw) {}

  /// Option `key` is wrong: `message` says what and what to do, without a secret's value.
  void add(std::string_view key, std::string_view message) noexcept { report(key, message, true); }
  /// The table as a whole is wrong (no single key to blame).
  void add(std::string_view message) noexcept { report({}, message, false); }
  /// How many problems were reported through this object.
  std::size_t count() const noexcept { return count_; }

 private:
  void report(std::string_view key, std::string_view message, bool has_key) noexcept {
    ++count_;
    if (raw_ == nullptr || !CLUSTERD_STRUCT_HAS(raw_, clusterd_problems_t, report) ||
        raw_->report == nullptr)
      return;
    try {
      const std::string k(key), m(message);
      raw_->report(raw_, has_key ? k.c_str() : nullptr, m.c_str());
    } catch (...) {
      raw_->report(raw_, nullptr, "out of memory");  // still a problem: the config is refused
    }
  }

  const clusterd_problems_t *raw_;
  std::size_t count_ = 0;
};

}  // namespace clusterd

#endif  // CLUSTERD_CONFIG_HPP
