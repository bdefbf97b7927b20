#include "config/schema.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "config/constraints.hpp"
#include "util/duration.hpp"
#include "util/strings.hpp"

namespace clusterd::config {

std::string_view type_name(std::uint32_t type) {
  switch (type) {
    case CLUSTERD_OPT_STRING:
      return "string";
    case CLUSTERD_OPT_INT:
      return "integer";
    case CLUSTERD_OPT_BOOL:
      return "boolean";
    case CLUSTERD_OPT_DOUBLE:
      return "number";
    case CLUSTERD_OPT_DURATION:
      return "duration";
    case CLUSTERD_OPT_STRING_LIST:
      return "list of strings";
    default:
      return "unknown";
  }
}

namespace {

// Converts one TOML node to a value of `type`; "" on success, else what was expected.
std::string convert(const toml::node &node, std::uint32_t type, OptionValues::Value &out) {
  out.type = type;
  switch (type) {
    case CLUSTERD_OPT_STRING:
      if (!node.is_string()) return "expected a string";
      out.text = *node.value<std::string>();
      return "";
    case CLUSTERD_OPT_INT:
      if (!node.is_integer()) return "expected an integer";
      out.integer = *node.value<std::int64_t>();
      return "";
    case CLUSTERD_OPT_BOOL:
      if (!node.is_boolean()) return "expected true or false";
      out.integer = *node.value<bool>() ? 1 : 0;
      return "";
    case CLUSTERD_OPT_DOUBLE:
      if (!node.is_number()) return "expected a number";
      out.number = *node.value<double>();
      return "";
    case CLUSTERD_OPT_DURATION: {
      std::optional<std::int64_t> ms;
      if (node.is_integer() && *node.value<std::int64_t>() >= 0)
        ms = node.value<std::int64_t>();
      else if (node.is_string())
        ms = util::parse_duration_ms(*node.value<std::string>());
      if (!ms)
        return "expected a duration such as \"5s\", \"250ms\", integer milliseconds or "
               "\"infinity\"";
      out.integer = *ms;
      return "";
    }
    case CLUSTERD_OPT_STRING_LIST:
      out.list.clear();
      if (node.is_string()) {
        out.list.push_back(*node.value<std::string>());
        return "";
      }
      if (const auto *array = node.as_array()) {
        for (const auto &element : *array) {
          if (!element.is_string()) return "expected an array of strings";
          out.list.push_back(*element.value<std::string>());
        }
        return "";
      }
      return "expected an array of strings";
    default:
      return "the plugin declares an unknown option type";
  }
}

// Parses a default literal ("5s", "[\"a\"]") by reading it as the value of a TOML key.
std::string convert_literal(const std::string &literal, std::uint32_t type,
                            OptionValues::Value &out) {
  try {
    auto table = toml::parse("v = " + literal);
    return convert(*table["v"].node(), type, out);
  } catch (const toml::parse_error &error) {
    return "not a TOML value: " + std::string(error.description());
  }
}

std::string read_secret_file(const std::string &path, std::string &out) {
  if (auto error = util::read_file(path, out); !error.empty())
    return "cannot read '" + path + "': " + error;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return "";
}

// --- the C view handed to the plugin -------------------------------------------------------
const OptionValues::Value *lookup(const clusterd_config_t *cfg, const char *key, std::uint32_t type,
                                  clusterd_status_t &status) {
  status = CLUSTERD_E_INVALID_ARG;
  if (!cfg || !key) return nullptr;
  const auto *values = static_cast<const OptionValues *>(cfg->config_data);
  const auto *value = values->find(key);
  status = CLUSTERD_E_NOT_FOUND;
  if (!value) return nullptr;
  status = value->type == type ? CLUSTERD_OK : CLUSTERD_E_TYPE;
  return status == CLUSTERD_OK ? value : nullptr;
}

template <typename Out, typename Get>
clusterd_status_t get(const clusterd_config_t *cfg, const char *key, std::uint32_t type, Out *out,
                      Get getter) {
  clusterd_status_t status;
  const auto *value = lookup(cfg, key, type, status);
  if (value && !out) return CLUSTERD_E_INVALID_ARG;
  if (value) *out = getter(*value);
  return status;
}

clusterd_status_t CLUSTERD_ABI get_string(const clusterd_config_t *c, const char *k,
                                          const char **o) {
  return get(c, k, CLUSTERD_OPT_STRING, o, [](const auto &v) { return v.text.c_str(); });
}
clusterd_status_t CLUSTERD_ABI get_int(const clusterd_config_t *c, const char *k, int64_t *o) {
  return get(c, k, CLUSTERD_OPT_INT, o, [](const auto &v) { return v.integer; });
}
clusterd_status_t CLUSTERD_ABI get_bool(const clusterd_config_t *c, const char *k, int32_t *o) {
  return get(c, k, CLUSTERD_OPT_BOOL, o,
             [](const auto &v) { return static_cast<int32_t>(v.integer); });
}
clusterd_status_t CLUSTERD_ABI get_double(const clusterd_config_t *c, const char *k, double *o) {
  return get(c, k, CLUSTERD_OPT_DOUBLE, o, [](const auto &v) { return v.number; });
}
clusterd_status_t CLUSTERD_ABI get_duration(const clusterd_config_t *c, const char *k, int64_t *o) {
  return get(c, k, CLUSTERD_OPT_DURATION, o, [](const auto &v) { return v.integer; });
}
clusterd_status_t CLUSTERD_ABI get_list_size(const clusterd_config_t *c, const char *k,
                                             uint32_t *o) {
  return get(c, k, CLUSTERD_OPT_STRING_LIST, o,
             [](const auto &v) { return static_cast<uint32_t>(v.list.size()); });
}
clusterd_status_t CLUSTERD_ABI get_list_item(const clusterd_config_t *c, const char *k,
                                             uint32_t index, const char **o) {
  clusterd_status_t status;
  const auto *value = lookup(c, k, CLUSTERD_OPT_STRING_LIST, status);
  if (!value) return status;
  if (!o || index >= value->list.size()) return CLUSTERD_E_INVALID_ARG;
  *o = value->list[index].c_str();
  return CLUSTERD_OK;
}
int32_t CLUSTERD_ABI get_is_set(const clusterd_config_t *c, const char *k) {
  if (!c || !k) return 0;
  const auto *value = static_cast<const OptionValues *>(c->config_data)->find(k);
  return value && value->set ? 1 : 0;
}
const char *CLUSTERD_ABI get_source_of(const clusterd_config_t *c, const char *k) {
  if (!c || !k) return "";
  const auto *value = static_cast<const OptionValues *>(c->config_data)->find(k);
  return value && value->set ? value->where.c_str() : "";
}

}  // namespace

OptionSpec option_spec(const clusterd_option_t &option, bool has_constraints) {
  OptionSpec spec;
  spec.key = option.key ? option.key : "";
  spec.type = option.type;
  spec.flags = option.flags & (CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_SECRET);
  if (option.default_value) spec.default_value = option.default_value;
  if (option.choices && *option.choices) spec.choices = util::split(option.choices, '|');
  spec.description = option.description ? option.description : "";
  if (!has_constraints) return spec;  // before 1.3, other flag bits mean nothing
  spec.flags = option.flags;
  spec.format = option.format;
  if (option.flags & CLUSTERD_OPT_MIN) spec.min = option.min;
  if (option.flags & CLUSTERD_OPT_MAX) spec.max = option.max;
  if (option.needs && *option.needs) spec.needs = util::split(option.needs, '|');
  if (option.conflicts && *option.conflicts) spec.conflicts = util::split(option.conflicts, '|');
  return spec;
}

static std::string check_option_spec(const OptionSpec &spec) {
  if (spec.key.empty()) return "an option has no key";
  auto bad = [&](const std::string &why) { return "option '" + spec.key + "': " + why; };
  if (type_name(spec.type) == "unknown") return bad("unknown type " + std::to_string(spec.type));
  const bool text = spec.type == CLUSTERD_OPT_STRING || spec.type == CLUSTERD_OPT_STRING_LIST;
  if (spec.format != CLUSTERD_FORMAT_ANY && format_name(spec.format).empty())
    return bad("unknown format " + std::to_string(spec.format));
  if (spec.format != CLUSTERD_FORMAT_ANY && !text)
    return bad("a format applies to strings and string lists only");
  if (spec.nonempty() && !text) return bad("non-empty applies to strings and string lists only");
  if (spec.finite() && spec.type != CLUSTERD_OPT_DURATION)
    return bad("finite applies to durations only");
  if ((spec.min || spec.max) &&
      (spec.type == CLUSTERD_OPT_BOOL || spec.type == CLUSTERD_OPT_DOUBLE))
    return bad("min/max do not apply to " + std::string(type_name(spec.type)) + " options");
  if (spec.min && spec.max && *spec.min > *spec.max) return bad("min is greater than max");
  if (spec.default_value) {
    OptionValues::Value value;
    if (auto error = convert_literal(*spec.default_value, spec.type, value); !error.empty())
      return bad("bad default " + *spec.default_value + ": " + error);
    if (auto error = check_constraints(spec, value); !error.empty())
      return bad("the default " + *spec.default_value + " breaks its own constraint: " + error);
  }
  return "";
}

std::string check_schema(const std::vector<OptionSpec> &schema) {
  auto declared = [&](const std::string &key) {
    return std::any_of(schema.begin(), schema.end(), [&](const auto &o) { return o.key == key; });
  };
  for (const auto &spec : schema) {
    if (auto problem = check_option_spec(spec); !problem.empty()) return problem;
    for (const auto *keys : {&spec.needs, &spec.conflicts})
      for (const auto &key : *keys)
        if (!declared(key) || key == spec.key)
          return "option '" + spec.key + "': needs/conflicts names '" + key +
                 "', which is not another declared option";
  }
  return "";
}

OptionValues::OptionValues()
    : view_{sizeof(clusterd_config_t),
            0,
            this,
            get_string,
            get_int,
            get_bool,
            get_double,
            get_duration,
            get_list_size,
            get_list_item,
            get_is_set,
            get_source_of} {}

const OptionValues::Value *OptionValues::find(const std::string &key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

const std::string &OptionValues::text(const std::string &key) const {
  static const std::string kNone;
  const auto *value = find(key);
  return value ? value->text : kNone;
}

std::int64_t OptionValues::integer(const std::string &key) const {
  const auto *value = find(key);
  return value ? value->integer : 0;
}

const std::vector<std::string> &OptionValues::list(const std::string &key) const {
  static const std::vector<std::string> kNone;
  const auto *value = find(key);
  return value ? value->list : kNone;
}

bool OptionValues::is_set(const std::string &key) const {
  const auto *value = find(key);
  return value && value->set;
}

std::unique_ptr<OptionValues> validate_options(
    const std::vector<OptionSpec> &schema, const toml::table *options_or_null,
    const std::vector<std::string> &host_keys, const std::string &file,
    const std::string &table_where, const std::string &key_prefix, const std::string &plugin,
    std::vector<Problem> &problems) {
  static const toml::table kEmpty;
  const toml::table &options = options_or_null ? *options_or_null : kEmpty;
  auto values = std::make_unique<OptionValues>();
  auto problem = [&](const std::string &at, const std::string &key, std::string message) {
    problems.push_back({at, key_prefix + key, std::move(message)});
  };
  std::vector<std::string> known;
  for (const auto &spec : schema) {
    known.push_back(spec.key);
    if (spec.secret()) known.insert(known.end(), {spec.key + "_file", spec.key + "_env"});
  }
  for (const auto &[k, node] : options) {
    std::string key(k.str());
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (std::find(host_keys.begin(), host_keys.end(), key) != host_keys.end()) continue;
    std::string message =
        plugin.empty() ? "unknown key" : "unknown option for plugin '" + plugin + "'";
    if (auto guess = util::closest_match(key, known); !guess.empty())
      message += " (did you mean '" + guess + "'?)";
    else if (!known.empty())
      message +=
          (plugin.empty() ? " (known here: " : " (options: ") + util::join(known, ", ") + ")";
    else
      message += " (it has no options)";
    problem(where(file, node.source()), key, message);
  }

  for (const auto &spec : schema) {
    OptionValues::Value value;
    const toml::node *node = options.get(spec.key);
    const toml::node *file_node = spec.secret() ? options.get(spec.key + "_file") : nullptr;
    const toml::node *env_node = spec.secret() ? options.get(spec.key + "_env") : nullptr;
    int sources = (node != nullptr) + (file_node != nullptr) + (env_node != nullptr);
    if (sources > 1) {
      problem(table_where, spec.key,
              "set only one of " + spec.key + ", " + spec.key + "_file, " + spec.key + "_env");
      continue;
    }
    if (node) {
      value.where = where(file, node->source());
      if (auto error = convert(*node, spec.type, value); !error.empty()) {
        if (spec.type == CLUSTERD_OPT_DURATION && spec.finite())  // do not offer "infinity"
          error = "expected a duration such as \"5s\", \"250ms\" or integer milliseconds";
        problem(value.where, spec.key, error);  // never echo the value: it may be a secret
        continue;
      }
      value.set = true;
    } else if (file_node || env_node) {
      const toml::node &indirect = file_node ? *file_node : *env_node;
      value.where = where(file, indirect.source());
      std::string suffix = file_node ? "_file" : "_env";
      if (!indirect.is_string()) {
        problem(value.where, spec.key + suffix, "expected a string");
        continue;
      }
      std::string reference = *indirect.value<std::string>();
      std::string secret;
      if (file_node) {
        if (auto error = read_secret_file(reference, secret); !error.empty()) {
          problem(value.where, spec.key + suffix, error);
          continue;
        }
      } else {
        const char *env = std::getenv(reference.c_str());
        if (!env) {
          problem(value.where, spec.key + suffix,
                  "environment variable " + reference + " is not set");
          continue;
        }
        secret = env;
      }
      if (spec.type == CLUSTERD_OPT_STRING) {
        value.text = std::move(secret);
      } else if (spec.type == CLUSTERD_OPT_STRING_LIST) {  // one item per non-empty line
        for (auto &line : util::split(secret, '\n')) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (!line.empty()) value.list.push_back(std::move(line));
        }
      } else {
        problem(value.where, spec.key + suffix,
                "only string and string-list options can be read from a file or the "
                "environment");
        continue;
      }
      value.type = spec.type;
      value.set = true;
    } else if (spec.default_value) {
      convert_literal(*spec.default_value, spec.type, value);  // checked at plugin load
    } else if (spec.required()) {
      problem(table_where, spec.key,
              (plugin.empty() ? "missing required key"
                              : "missing required option of plugin '" + plugin + "'") +
                  " (" + std::string(type_name(spec.type)) + ": " + spec.description + ")");
      continue;
    } else {
      continue;  // optional, no default: the plugin sees CLUSTERD_E_NOT_FOUND
    }
    const std::string &at = value.where.empty() ? table_where : value.where;
    if (!spec.choices.empty() && value.type == CLUSTERD_OPT_STRING &&
        std::find(spec.choices.begin(), spec.choices.end(), value.text) == spec.choices.end()) {
      problem(at, spec.key, "expected one of " + util::join(spec.choices, ", "));
      continue;
    }
    if (auto error = check_constraints(spec, value); !error.empty()) {
      problem(at, spec.key, error);
      continue;
    }
    values->values().emplace(spec.key, std::move(value));
  }
  // Between options: only keys written in the file count (a default never needs or conflicts);
  // a key with a bad value counts as written, so it does not also read as missing.
  auto set = [&](const std::string &key) {
    return options.get(key) || options.get(key + "_file") || options.get(key + "_env");
  };
  for (const auto &spec : schema) {
    const auto *value = values->find(spec.key);
    if (!value || !value->set) continue;
    const std::string &at = value->where;
    for (const auto &other : spec.needs)
      if (!set(other)) problem(at, spec.key, "needs '" + other + "' to be set as well");
    for (const auto &other : spec.conflicts)
      if (set(other))
        problem(at, spec.key, "set either '" + spec.key + "' or '" + other + "', not both");
  }
  return values;
}

}  // namespace clusterd::config
