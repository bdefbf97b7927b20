// Option constraints (ABI 1.3): formats, ranges, non-empty and finite values. One
// implementation for plugin options and host keys, so `clusterd check` refuses what `run` would.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/schema.hpp"

namespace clusterd::config {

// What a value of `format` looks like, for messages and `describe` ("an IPv4 address").
std::string_view format_name(std::uint32_t format);
// "" when `text` has `format` (CLUSTERD_FORMAT_*), else why not.
std::string check_format(std::uint32_t format, std::string_view text);

// "" when `value` (already of spec.type) meets the spec's own constraints, else the problem.
// The value is quoted in the message unless the option is secret.
std::string check_constraints(const OptionSpec &spec, const OptionValues::Value &value);

// The constraints in words ("1..65535", "non-empty; a node name"), for `describe` and the
// manual; "" when there are none.
std::string describe_constraints(const OptionSpec &spec);

// A duration for people: 1500 -> "1500ms", 5000 -> "5s", 120000 -> "2m".
std::string duration_text(std::int64_t ms);

}  // namespace clusterd::config
