#include "config/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "config/host_keys.hpp"
#include "util/duration.hpp"
#include "util/strings.hpp"

namespace clusterd::config {

std::string where(const std::string &file, const toml::source_region &region) {
  if (region.begin.line == 0) return file;
  return file + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

std::string Problem::str() const {
  std::string out = where + ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

std::string_view to_string(DisconnectPolicy policy) {
  return policy == DisconnectPolicy::never ? "never" : "removed";
}

namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// Reads the keys of one table, reporting type errors and unknown keys with positions.
class Reader {
 public:
  Reader(const std::string &file, std::vector<Problem> &problems)
      : file_(file), problems_(problems) {}

  void problem(const toml::node &node, const std::string &key, std::string message) {
    problems_.push_back({where(file_, node.source()), key, std::move(message)});
  }

  std::optional<std::string> string(const toml::node &node, const std::string &key) {
    if (auto value = node.value<std::string>(); value && node.is_string()) return *value;
    problem(node, key, "expected a string");
    return std::nullopt;
  }

  std::optional<std::chrono::milliseconds> duration(const toml::node &node, const std::string &key,
                                                    bool allow_zero = true) {
    std::optional<std::int64_t> ms;
    if (node.is_integer())
      ms = node.value<std::int64_t>();
    else if (node.is_string())
      ms = util::parse_duration_ms(*node.value<std::string>());
    if (!ms || *ms < 0 || (!allow_zero && *ms == 0)) {
      problem(node, key,
              std::string("expected a duration such as \"5s\", \"250ms\" or integer milliseconds") +
                  (allow_zero ? "" : ", greater than zero"));
      return std::nullopt;
    }
    return std::chrono::milliseconds(*ms);
  }

  std::optional<std::vector<std::string>> string_list(const toml::node &node,
                                                      const std::string &key) {
    if (node.is_string()) return std::vector<std::string>{*node.value<std::string>()};
    const auto *array = node.as_array();
    if (!array) {
      problem(node, key, "expected an array of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto &element : *array) {
      if (!element.is_string()) {
        problem(element, key, "expected an array of strings");
        return std::nullopt;
      }
      out.push_back(*element.value<std::string>());
    }
    return out;
  }

  const toml::table *table(const toml::node &node, const std::string &key) {
    if (const auto *t = node.as_table()) return t;
    problem(node, key, "expected a table");
    return nullptr;
  }

  void unknown(const toml::node &node, const std::string &key, const std::string &known) {
    problem(node, key, "unknown key (known here: " + known + ")");
  }

 private:
  const std::string &file_;
  std::vector<Problem> &problems_;
};

void read_settings(Reader &in, const toml::table &table, Settings &settings) {
  for (const auto &[k, node] : table) {
    std::string key = "clusterd." + std::string(k.str());
    if (k == "plugin_path") {
      if (auto list = in.string_list(node, key)) settings.plugin_path = *list;
    } else if (k == "log_level") {
      if (auto level = in.string(node, key)) {
        static const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error"};
        if (std::find(levels.begin(), levels.end(), *level) == levels.end())
          in.problem(node, key, "expected one of trace, debug, info, warn, error");
        settings.log_level = *level;
      }
    } else if (k == "log_format") {
      if (auto format = in.string(node, key)) {
        if (*format != "text" && *format != "json")
          in.problem(node, key, "expected \"text\" or \"json\"");
        settings.log_format = *format;
      }
    } else if (k == "control_socket") {
      if (auto path = in.string(node, key)) settings.control_socket = *path;
    } else if (k == "metrics_listen") {
      if (auto address = in.string(node, key)) {
        auto parts = util::split_host_port(*address);
        if (!address->empty() && (!parts || !util::is_ip_address(parts->host)))
          in.problem(node, key,
                     "expected \"IP:PORT\" (\"[v6]:PORT\" for IPv6), e.g. \"127.0.0.1:9568\"");
        settings.metrics_listen = *address;
      }
    } else {
      in.unknown(node, key, known_keys("clusterd"));
    }
  }
}

void read_transport(Reader &in, const std::string &file, const std::string &name,
                    const toml::table &table, DaemonConfig &out,
                    const std::shared_ptr<const toml::table> &document) {
  TransportSpec spec;
  spec.name = name;
  spec.options = &table;
  spec.document = document;
  spec.where = where(file, table.source());
  std::string prefix = "transports." + name + ".";
  for (const auto &[k, node] : table) {
    std::string key = prefix + std::string(k.str());
    if (k == "plugin") {
      if (auto plugin = in.string(node, key)) spec.plugin = *plugin;
    } else if (k == "resync_interval") {
      if (auto d = in.duration(node, key)) spec.resync_interval = *d;
    }  // every other key is the plugin's, checked against its schema later
  }
  if (spec.plugin.empty()) {
    in.problem(table, "transports." + name, "missing required key 'plugin'");
  }
  spec.table = &table;
  out.transports.push_back(std::move(spec));
}

void read_topology(Reader &in, const std::string &file, const std::string &name,
                   const toml::table &table, DaemonConfig &out,
                   const std::shared_ptr<const toml::table> &document) {
  TopologySpec spec;
  spec.name = name;
  spec.document = document;
  spec.where = where(file, table.source());
  spec.config_where = spec.where;
  std::string prefix = "topologies." + name + ".";
  bool has_strategy = false;
  for (const auto &[k, node] : table) {
    std::string key = prefix + std::string(k.str());
    if (k == "strategy") {
      if (auto strategy = in.string(node, key)) spec.strategy = *strategy, has_strategy = true;
    } else if (k == "transport") {
      if (auto transport = in.string(node, key)) spec.transport = *transport;
    } else if (k == "disconnect") {
      if (auto policy = in.string(node, key)) {
        if (*policy == "never")
          spec.disconnect = DisconnectPolicy::never;
        else if (*policy == "removed")
          spec.disconnect = DisconnectPolicy::removed;
        else
          in.problem(node, key, "expected \"never\" or \"removed\"");
      }
    } else if (k == "connect_timeout") {
      if (auto d = in.duration(node, key, false)) spec.connect_timeout = *d;
    } else if (k == "backoff_initial") {
      if (auto d = in.duration(node, key, false)) spec.backoff_initial = *d;
    } else if (k == "backoff_max") {
      if (auto d = in.duration(node, key, false)) spec.backoff_max = *d;
    } else if (k == "max_parallel") {
      auto value = node.value<std::int64_t>();
      if (!node.is_integer() || *value < 1 || *value > 4096)
        in.problem(node, key, "expected an integer from 1 to 4096");
      else
        spec.max_parallel = static_cast<std::uint32_t>(*value);
    } else if (k == "config") {
      if (const auto *config = in.table(node, key)) {
        spec.options = config;
        spec.config_where = where(file, config->source());
      }
    } else {
      in.unknown(node, key, known_keys("topologies.NAME"));
    }
  }
  if (!has_strategy) in.problem(table, "topologies." + name, "missing required key 'strategy'");
  if (spec.backoff_max < spec.backoff_initial)
    in.problem(table, prefix + "backoff_max", "must not be shorter than backoff_initial");
  spec.table = &table;
  out.topologies.push_back(std::move(spec));
}

// A hook's argv: a program run without a shell, so it must be absolute or found in PATH now
// (a typo then fails `clusterd check`, not the first nodeup).
void read_hook_argv(Reader &in, const toml::node &node, const std::string &key,
                    std::vector<std::string> &out) {
  const auto *array = node.as_array();
  auto argv = array ? in.string_list(node, key) : std::nullopt;
  if (!array) in.problem(node, key, "expected an array of strings: [\"/path/program\", \"arg\"]");
  if (!argv) return;
  if (argv->empty() || (*argv)[0].empty()) {
    in.problem(node, key, "needs at least the program to run");
    return;
  }
  const std::string &program = (*argv)[0];
  if (program.find('/') != std::string::npos) {
    if (program.front() != '/')
      in.problem(node, key, "'" + program + "': use an absolute path or a program name in PATH");
    else if (::access(program.c_str(), X_OK) != 0)
      in.problem(node, key, "'" + program + "' is not executable: " + std::strerror(errno));
  } else {
    bool found = false;
    const char *path = std::getenv("PATH");
    std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!found) {
      const auto colon = dirs.find(':');
      std::string dir(dirs.substr(0, colon));
      found = ::access(((dir.empty() ? "." : dir) + "/" + program).c_str(), X_OK) == 0;
      if (colon == std::string_view::npos) break;
      dirs.remove_prefix(colon + 1);
    }
    if (!found) in.problem(node, key, "program '" + program + "' not found in PATH");
  }
  out = std::move(*argv);
}

std::optional<std::uint32_t> integer(Reader &in, const toml::node &node, const std::string &key,
                                     std::int64_t min, std::int64_t max) {
  auto value = node.value<std::int64_t>();
  if (node.is_integer() && *value >= min && *value <= max)
    return static_cast<std::uint32_t>(*value);
  in.problem(node, key,
             "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return std::nullopt;
}

void read_hooks(Reader &in, const toml::table &table, HooksSpec &hooks) {
  for (const auto &[k, node] : table) {
    std::string key = "hooks." + std::string(k.str());
    if (k == "on_nodeup") {
      read_hook_argv(in, node, key, hooks.on_nodeup);
    } else if (k == "on_nodedown") {
      read_hook_argv(in, node, key, hooks.on_nodedown);
    } else if (k == "timeout") {
      if (auto d = in.duration(node, key, false)) hooks.timeout = *d;
    } else if (k == "max_running") {
      if (auto n = integer(in, node, key, 1, 1024)) hooks.max_running = *n;
    } else if (k == "queue_size") {
      if (auto n = integer(in, node, key, 0, 1'000'000)) hooks.queue_size = *n;
    } else {
      in.unknown(node, key, known_keys("hooks"));
    }
  }
}

void resolve_transports(Reader &in, const toml::table &root, DaemonConfig &config) {
  for (auto &topology : config.topologies) {
    const toml::node &at = *root["topologies"][topology.name].node();
    std::string key = "topologies." + topology.name + ".transport";
    if (topology.transport.empty()) {
      if (config.transports.size() == 1) {
        topology.transport = config.transports.front().name;
      } else {
        in.problem(at, key,
                   config.transports.empty()
                       ? "no transport is defined: add a [transports.NAME] table"
                       : "several transports are defined: say which one this topology uses");
        continue;
      }
    }
    auto transport = std::find_if(config.transports.begin(), config.transports.end(),
                                  [&](const auto &t) { return t.name == topology.transport; });
    if (transport == config.transports.end()) {
      in.problem(at, key, "no transport named '" + topology.transport + "'");
      continue;
    }
  }
}

}  // namespace

ParseResult parse(std::string_view text, const std::string &file) {
  ParseResult result;
  // Shared by every spec: plugin options are checked against this very table later, and
  // only the parsed nodes carry source positions (toml++ copies drop them).
  std::shared_ptr<const toml::table> document;
  try {
    document = std::make_shared<const toml::table>(toml::parse(text, file));
  } catch (const toml::parse_error &error) {
    result.problems.push_back({where(file, error.source()), "", std::string(error.description())});
    return result;
  }
  const toml::table &root = *document;
  Reader in(file, result.problems);
  DaemonConfig config;
  config.file = file;
  for (const auto &[k, node] : root) {
    std::string key(k.str());
    if (k == "clusterd") {
      if (const auto *table = in.table(node, key)) read_settings(in, *table, config.settings);
    } else if (k == "hooks") {
      if (const auto *table = in.table(node, key)) read_hooks(in, *table, config.hooks);
    } else if (k == "transports" || k == "topologies") {
      const auto *group = in.table(node, key);
      if (!group) continue;
      for (const auto &[name_key, entry] : *group) {
        std::string name(name_key.str());
        std::string entry_key = key + "." + name;
        if (!valid_name(name)) {
          in.problem(entry, entry_key, "names may use letters, digits, '_' and '-' (1-64 chars)");
          continue;
        }
        const auto *table = in.table(entry, entry_key);
        if (!table) continue;
        if (k == "transports")
          read_transport(in, file, name, *table, config, document);
        else
          read_topology(in, file, name, *table, config, document);
      }
    } else {
      in.unknown(node, key, known_tables());
    }
  }
  resolve_transports(in, root, config);
  if (result.problems.empty()) result.config = std::move(config);
  return result;
}

ParseResult parse_file(const std::string &path) {
  std::string text;
  if (auto error = util::read_file(path, text); !error.empty()) {
    ParseResult result;
    result.problems.push_back({path, "", "cannot read: " + error});
    return result;
  }
  return parse(text, path);
}

bool same_settings(const TransportSpec &a, const TransportSpec &b) {
  return a.table != nullptr && b.table != nullptr && *a.table == *b.table;
}

bool same_settings(const TopologySpec &a, const TopologySpec &b) {
  return a.table != nullptr && b.table != nullptr && *a.table == *b.table &&
         a.transport == b.transport;  // also when the transport was defaulted
}

}  // namespace clusterd::config
