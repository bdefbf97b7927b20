#include "config/schema.hpp"

#include <algorithm>
#include <charconv>
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

// A value as TOML writes it, shortened; "" for tables and dates (their type says enough).
std::string value_text(const toml::node &node) {
  if (const auto *text = node.as_string()) return util::quote_for_message(text->get(), 40);
  if (const auto *n = node.as_integer()) return std::to_string(n->get());
  if (const auto *b = node.as_boolean()) return b->get() ? "true" : "false";
  if (const auto *d = node.as_floating_point()) {
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, d->get()).ptr;
    return std::string(buffer, end);
  }
  if (const auto *array = node.as_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < array->size(); ++i) {
      if (out.size() > 60) return out + ", ...]";
      out += (i ? ", " : "") + value_text((*array)[i]);
    }
    return out + "]";
  }
  return "";
}

}  // namespace

std::string describe_found(const toml::node &node, bool show_value) {
  std::string type;
  switch (node.type()) {
    case toml::node_type::table:
      type = "table";
      break;
    case toml::node_type::array:
      type = "array";
      break;
    case toml::node_type::string:
      type = "string";
      break;
    case toml::node_type::integer:
      type = "integer";
      break;
    case toml::node_type::floating_point:
      type = "float";
      break;
    case toml::node_type::boolean:
      type = "boolean";
      break;
    default:
      type = "date/time";
  }
  std::string value = show_value ? value_text(node) : "";
  return value.empty() ? type : type + " " + value;
}

namespace {

// True when `text` is a whole TOML integer, float or boolean literal of `type`: then the
// quotes are the only thing wrong.
bool quoted_literal(const std::string &text, std::uint32_t type) {
  if (text.find_first_of("\r\n#") != std::string::npos) return false;  // one bare value only
  try {
    auto table = toml::parse("v = " + text);
    const toml::node *v = table.get("v");
    return v && (type == CLUSTERD_OPT_INT      ? v->is_integer()
                 : type == CLUSTERD_OPT_DOUBLE ? v->is_number()
                                               : v->is_boolean());
  } catch (const toml::parse_error &) {
    return false;
  }
}

// A string as the array it probably meant: "a@h b@h" or "a@h, b@h" -> ["a@h", "b@h"], and a
// command line "prog --flag" -> its argv ["prog", "--flag"].
std::string as_array(const std::string &text) {
  std::vector<std::string> items;
  for (std::size_t at = 0; (at = text.find_first_not_of(", \t", at)) != std::string::npos;) {
    const auto end = std::min(text.find_first_of(", \t", at), text.size());
    items.push_back(util::quote_for_message(text.substr(at, end - at), 40));
    at = end;
  }
  if (items.size() > 8) {
    items.resize(8);
    items.back() = "...";
  }
  return "[" + util::join(items, ", ") + "]";
}

// Converts one TOML node to a value of `type`; "" on success, else "expected ..., found ..."
// with a hint when the fix is plain. `secret`: the value is never quoted back. `finite`:
// "infinity" is not offered.
std::string convert(const toml::node &node, std::uint32_t type, OptionValues::Value &out,
                    bool secret = false, bool finite = false) {
  out.type = type;
  auto wrong = [&](std::string_view expected, std::string_view hint = "") {
    std::string message = std::string(expected) + ", found " + describe_found(node, !secret);
    return hint.empty() ? message : message + "; " + std::string(hint);
  };
  const auto *text = node.as_string();
  switch (type) {
    case CLUSTERD_OPT_STRING:
      if (!text)
        return wrong("expected a string",
                     node.is_number() || node.is_boolean() ? "put it in quotes" : "");
      out.text = text->get();
      return "";
    case CLUSTERD_OPT_INT:
      if (!node.is_integer())
        return wrong("expected an integer",
                     text && quoted_literal(text->get(), type) ? "remove the quotes" : "");
      out.integer = *node.value<std::int64_t>();
      return "";
    case CLUSTERD_OPT_BOOL:
      if (!node.is_boolean())
        return wrong("expected true or false",
                     text && quoted_literal(text->get(), type) ? "remove the quotes" : "");
      out.integer = *node.value<bool>() ? 1 : 0;
      return "";
    case CLUSTERD_OPT_DOUBLE:
      if (!node.is_number())
        return wrong("expected a number",
                     text && quoted_literal(text->get(), type) ? "remove the quotes" : "");
      out.number = *node.value<double>();
      return "";
    case CLUSTERD_OPT_DURATION: {
      std::optional<std::int64_t> ms;
      if (node.is_integer() && *node.value<std::int64_t>() >= 0)
        ms = node.value<std::int64_t>();
      else if (text)
        ms = util::parse_duration_ms(text->get());
      if (ms) {
        out.integer = *ms;
        return "";
      }
      // "5": seconds (the intent of most who write it) or milliseconds (libcluster's integers)?
      const std::string digits = text && !secret ? text->get() : "";
      if (!digits.empty() && digits.size() <= 18 &&
          digits.find_first_not_of("0123456789") == std::string::npos)
        return util::quote_for_message(digits) + " has no unit: write \"" + digits + "s\" or \"" +
               digits + "ms\", or the integer " + digits + " for milliseconds as in libcluster";
      return wrong(finite ? "expected a duration such as \"5s\", \"250ms\" or integer milliseconds"
                          : "expected a duration such as \"5s\", \"250ms\", integer milliseconds "
                            "or \"infinity\"");
    }
    case CLUSTERD_OPT_STRING_LIST:
      out.list.clear();
      if (text)  // a list of one would hide a forgotten pair of brackets in a list of many
        return wrong("expected an array of strings",
                     secret ? "put it in brackets: [\"...\"]" : "write " + as_array(text->get()));
      if (const auto *array = node.as_array()) {
        for (std::size_t i = 0; i < array->size(); ++i) {
          const auto *element = (*array)[i].as_string();
          if (!element)
            return "expected an array of strings, found " + describe_found((*array)[i], !secret) +
                   " as element #" + std::to_string(i + 1);
          out.list.push_back(element->get());
        }
        return "";
      }
      return wrong("expected an array of strings");
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
  std::vector<std::string> meant;               // the keys unknown ones were typos of
  std::vector<std::string> candidates = known;  // for "did you mean": the table's other keys too
  candidates.insert(candidates.end(), host_keys.begin(), host_keys.end());
  for (const auto &[k, node] : options) {
    std::string key(k.str());
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (std::find(host_keys.begin(), host_keys.end(), key) != host_keys.end()) continue;
    std::string message =
        plugin.empty() ? "unknown key" : "unknown option for plugin '" + plugin + "'";
    if (auto guess = util::closest_match(key, candidates); !guess.empty()) {
      message += " (did you mean '" + guess + "'?)";
      meant.push_back(guess);
    } else if (!known.empty())
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
      if (auto error = convert(*node, spec.type, value, spec.secret(), spec.finite());
          !error.empty()) {
        problem(value.where, spec.key, error);
        continue;
      }
      value.set = true;
    } else if (file_node || env_node) {
      const toml::node &indirect = file_node ? *file_node : *env_node;
      value.where = where(file, indirect.source());
      std::string suffix = file_node ? "_file" : "_env";
      if (!indirect.is_string()) {
        problem(value.where, spec.key + suffix,
                "expected a string, found " + describe_found(indirect));
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
      // A typo of it was reported with its "did you mean": once is enough.
      if (std::any_of(meant.begin(), meant.end(), [&](const std::string &key) {
            return key == spec.key || key == spec.key + "_file" || key == spec.key + "_env";
          }))
        continue;
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
      std::string message = "expected one of " + util::join(spec.choices, ", ");
      if (!spec.secret()) {
        message += "; found " + util::quote_for_message(value.text, 40);
        if (auto guess = util::closest_match(value.text, spec.choices); !guess.empty())
          message += " (did you mean '" + guess + "'?)";
      }
      problem(at, spec.key, message);
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
