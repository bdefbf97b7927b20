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

  bool required() const { return flags & CLUSTERD_OPT_REQUIRED; }
  bool secret() const { return flags & CLUSTERD_OPT_SECRET; }
};

std::string_view type_name(std::uint32_t type);

// Checks that a declared option is usable: known type, parsable default, sane choices.
// Returns the problem, or "" when fine.
std::string check_option_spec(const OptionSpec &spec);

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
  std::map<std::string, Value> &values() { return values_; }

 private:
  std::map<std::string, Value> values_;
  clusterd_config_t view_;
};

// Checks `options` (the plugin's keys from the file; may be null) against `schema`, ignoring
// `host_keys`. `key_prefix` is the dotted path of the table ("topologies.x.config."),
// `plugin` names the plugin in messages. Unknown keys, wrong types, bad choices and missing
// required keys are all reported.
std::unique_ptr<OptionValues> validate_options(
    const std::vector<OptionSpec> &schema, const toml::table *options,
    const std::vector<std::string> &host_keys, const std::string &file,
    const std::string &table_where, const std::string &key_prefix, const std::string &plugin,
    std::vector<Problem> &problems);

}  // namespace clusterd::config
