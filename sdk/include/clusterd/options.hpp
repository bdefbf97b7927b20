// clusterd plugin SDK — constexpr helpers that declare options (clusterd_option_t) readably,
// with their constraints. Used by plugins (through plugin.hpp) and by the host's own key table.
#ifndef CLUSTERD_OPTIONS_HPP
#define CLUSTERD_OPTIONS_HPP

#include "config.h"

#include <cstdint>

namespace clusterd {

/// Helpers that build clusterd_option_t entries readably, as constant expressions:
///   static constexpr clusterd_option_t kOptions[] = {
///       clusterd::option::required(clusterd::option::string_list("nodes", "Nodes to join")),
///       clusterd::option::duration("timeout", "Give up after this long", "\"5s\"")};
/// `default_value` is the TOML literal of the default, so strings (durations included) are
/// quoted: "\"5s\"", "\"text\"", "[\"a\"]", "45892", "true" (see sdk/docs/abi.md).
namespace option {

/// Any option type (CLUSTERD_OPT_*).
constexpr clusterd_option_t make(uint32_t type, const char *key, const char *description,
                                 const char *default_value = nullptr, uint32_t flags = 0,
                                 const char *choices = nullptr) noexcept {
  return clusterd_option_t{static_cast<uint32_t>(sizeof(clusterd_option_t)),
                           type,
                           flags,
                           0,
                           key,
                           default_value,
                           choices,
                           description,
                           CLUSTERD_FORMAT_ANY,
                           0,
                           0,
                           0,
                           nullptr,
                           nullptr};
}
/// A CLUSTERD_OPT_STRING option.
constexpr clusterd_option_t string(const char *key, const char *description,
                                   const char *default_value = nullptr) noexcept {
  return make(CLUSTERD_OPT_STRING, key, description, default_value);
}
/// A CLUSTERD_OPT_INT option.
constexpr clusterd_option_t integer(const char *key, const char *description,
                                    const char *default_value = nullptr) noexcept {
  return make(CLUSTERD_OPT_INT, key, description, default_value);
}
/// A CLUSTERD_OPT_BOOL option.
constexpr clusterd_option_t boolean(const char *key, const char *description,
                                    const char *default_value = nullptr) noexcept {
  return make(CLUSTERD_OPT_BOOL, key, description, default_value);
}
/// A CLUSTERD_OPT_DOUBLE option.
constexpr clusterd_option_t number(const char *key, const char *description,
                                   const char *default_value = nullptr) noexcept {
  return make(CLUSTERD_OPT_DOUBLE, key, description, default_value);
}
/// A CLUSTERD_OPT_DURATION option.
constexpr clusterd_option_t duration(const char *key, const char *description,
                                     const char *default_value = nullptr) noexcept {
  return make(CLUSTERD_OPT_DURATION, key, description, default_value);
}
/// A CLUSTERD_OPT_STRING_LIST option.
constexpr clusterd_option_t string_list(const char *key, const char *description,
                                        const char *default_value = nullptr) noexcept {
  return make(CLUSTERD_OPT_STRING_LIST, key, description, default_value);
}
/// `o`, marked CLUSTERD_OPT_REQUIRED.
constexpr clusterd_option_t required(clusterd_option_t o) noexcept {
  o.flags |= CLUSTERD_OPT_REQUIRED;
  return o;
}
/// `o`, marked CLUSTERD_OPT_SECRET (redacted; also settable as KEY_file / KEY_env).
constexpr clusterd_option_t secret(clusterd_option_t o) noexcept {
  o.flags |= CLUSTERD_OPT_SECRET;
  return o;
}
/// `o`, restricted to the '|'-separated `values` ("ip|dns").
constexpr clusterd_option_t choices(clusterd_option_t o, const char *values) noexcept {
  o.choices = values;
  return o;
}

// Constraints (ABI 1.3): the host checks them at `clusterd check`, start and reload, so init()
// never sees a value that breaks them. Combine freely:
//   range(integer("port", "UDP port", "45892"), 1, 65535)
//   finite(at_least(duration("polling_interval", "...", "\"5s\""), 1))
//   nonempty(format(string_list("hosts", "..."), CLUSTERD_FORMAT_NODE_NAME))

/// `o` with a lower bound: INT value, DURATION milliseconds, STRING bytes, list elements.
constexpr clusterd_option_t at_least(clusterd_option_t o, int64_t min) noexcept {
  o.flags |= CLUSTERD_OPT_MIN;
  o.min = min;
  return o;
}
/// `o` with an upper bound (as at_least; "infinity" exceeds every bound).
constexpr clusterd_option_t at_most(clusterd_option_t o, int64_t max) noexcept {
  o.flags |= CLUSTERD_OPT_MAX;
  o.max = max;
  return o;
}
/// `o` within [min, max].
constexpr clusterd_option_t range(clusterd_option_t o, int64_t min, int64_t max) noexcept {
  return at_most(at_least(o, min), max);
}
/// `o` above zero: an INT of at least 1, a DURATION of at least 1 ms ("infinity" passes; add
/// finite() to refuse it).
constexpr clusterd_option_t positive(clusterd_option_t o) noexcept {
  return at_least(o, 1);
}
/// A DURATION `o` that refuses "infinity".
constexpr clusterd_option_t finite(clusterd_option_t o) noexcept {
  o.flags |= CLUSTERD_OPT_FINITE;
  return o;
}
/// A STRING that is not "", or a STRING_LIST with at least one element and no "" element.
constexpr clusterd_option_t nonempty(clusterd_option_t o) noexcept {
  o.flags |= CLUSTERD_OPT_NONEMPTY;
  return o;
}
/// A STRING (or each element of a STRING_LIST) of CLUSTERD_FORMAT_* `f`.
constexpr clusterd_option_t format(clusterd_option_t o, uint32_t f) noexcept {
  o.format = f;
  return o;
}
/// `o`, which when set needs the '|'-separated `keys` set as well.
constexpr clusterd_option_t needs(clusterd_option_t o, const char *keys) noexcept {
  o.needs = keys;
  return o;
}
/// `o`, which must not be set together with any of the '|'-separated `keys`.
constexpr clusterd_option_t conflicts(clusterd_option_t o, const char *keys) noexcept {
  o.conflicts = keys;
  return o;
}

}  // namespace option

}  // namespace clusterd

#endif  // CLUSTERD_OPTIONS_HPP
