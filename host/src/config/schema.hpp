// Plugin options: the schema a plugin declares (clusterd_option_t) and the values checked
// against it. The checked values are what the plugin reads through clusterd_config_t.
#pragma once

#include <clusterd/config.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace clusterd::config {

struct OptionSpec {
  std::string key;
  std::uint32_t type = 0;
  std::uint32_t flags = 0;
  std::optional<std::string> default_value;  // TOML literal
  std::vector<std::string> choices;
  std::string description;
  // Constraints (ABI 1.3; empty for older plugins), checked by check_constraints().
  std::uint32_t format = CLUSTERD_FORMAT_ANY;
  std::optional<std::int64_t> min, max;
  std::vector<std::string> needs, conflicts;

  bool required() const { return flags & CLUSTERD_OPT_REQUIRED; }
  bool secret() const { return flags & CLUSTERD_OPT_SECRET; }
  bool nonempty() const { return flags & CLUSTERD_OPT_NONEMPTY; }
  bool finite() const { return flags & CLUSTERD_OPT_FINITE; }
};

std::string_view type_name(std::uint32_t type);

// What a TOML value is, for "expected X, found Y": `string "45892"`, `integer 5`,
// `array ["a", 5]`, `table`; values shortened to one line, left out when !show_value (secrets).
std::string describe_found(const toml::node &node, bool show_value = true);

// The spec of a declared option. `has_constraints`: the declaration is ABI 1.3 or newer (older
// plugins' option structs end before the constraint fields, and their other flag bits are void).
OptionSpec option_spec(const clusterd_option_t &option, bool has_constraints = true);

// Checks that a declared schema is usable: known types and formats, parsable defaults that
// meet their own constraints, constraints that fit the type, `needs`/`conflicts` naming
// declared keys. Returns the first problem, or "" when fine.
std::string check_schema(const std::vector<OptionSpec> &schema);

// Validated values of one plugin instance. Owns every string handed to the plugin, so they
// stay valid as long as this object (the instance) lives.
class OptionValues {
 public:
  struct Value {
    std::uint32_t type = 0;
    bool set = false;               // configured in the file (not a default)
    std::string where;              // file:line:column when set
    std::string text;               // STRING
    std::int64_t integer = 0;       // INT, DURATION (ms; -1 = infinity), BOOL (0/1)
    double number = 0;              // DOUBLE
    std::vector<std::string> list;  // STRING_LIST
  };

  OptionValues();
  OptionValues(const OptionValues &) = delete;
  OptionValues &operator=(const OptionValues &) = delete;

  const clusterd_config_t *view() const { return &view_; }
  const Value *find(const std::string &key) const;
  // Typed reads of a checked value; "", 0 or {} when the key has none (neither set nor
  // defaulted, or refused).
  const std::string &text(const std::string &key) const;
  std::int64_t integer(const std::string &key) const;  // INT, BOOL (0/1), DURATION (ms; -1)
  const std::vector<std::string> &list(const std::string &key) const;
  bool is_set(const std::string &key) const;  // configured in the file, not defaulted
  std::map<std::string, Value> &values() { return values_; }

 private:
  std::map<std::string, Value> values_;
  clusterd_config_t view_;
};

// Checks `options` (the plugin's keys from the file; may be null) against `schema`, ignoring
// `host_keys`. `key_prefix` is the dotted path of the table ("topologies.x.config."),
// `plugin` names the plugin in messages ("" for the host's own tables). Unknown keys, wrong
// types, bad choices, broken constraints and missing required keys are all reported.
std::unique_ptr<OptionValues> validate_options(
    const std::vector<OptionSpec> &schema, const toml::table *options,
    const std::vector<std::string> &host_keys, const std::string &file,
    const std::string &table_where, const std::string &key_prefix, const std::string &plugin,
    std::vector<Problem> &problems);

}  // namespace clusterd::config
