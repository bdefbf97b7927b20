#include "config/config.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include "config/constraints.hpp"
#include "config/host_keys.hpp"
#include "config/schema.hpp"
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

// Reports problems with positions: the checks that are not option constraints.
class Reader {
 public:
  Reader(const std::string &file, std::vector<Problem> &problems)
      : file_(file), problems_(problems) {}

  void problem(const toml::node &node, const std::string &key, std::string message) {
    problems_.push_back({where(file_, node.source()), key, std::move(message)});
  }

  const toml::table *table(const toml::node &node, const std::string &key) {
    if (const auto *t = node.as_table()) return t;
    problem(node, key, "expected a table, found " + describe_found(node));
    return nullptr;
  }

  // Checks `table` against the keys kHostKeys declares for `name` ("hooks", "topologies.NAME")
  // with the validator plugin options go through; `others` are keys checked elsewhere.
  std::unique_ptr<OptionValues> keys(std::string_view name, const toml::table &table,
                                     const std::string &prefix,
                                     const std::vector<std::string> &others = {}) {
    std::vector<OptionSpec> schema;
    for (const auto &k : kHostKeys)
      if (k.table == name &&
          std::find(others.begin(), others.end(), std::string_view(k.option.key)) == others.end())
        schema.push_back(option_spec(k.option));
    return validate_options(schema, &table, others, file_, where(file_, table.source()), prefix, "",
                            problems_);
  }

  const std::string &file() const { return file_; }

 private:
  const std::string &file_;
  std::vector<Problem> &problems_;
};

std::chrono::milliseconds duration_of(const OptionValues &values, const std::string &key) {
  return std::chrono::milliseconds(values.integer(key));
}

// A control_allow_* / control_read_* list: names or numeric ids, resolved now so that `check`
// reports an unknown user or group.
std::vector<unsigned> ids_of(Reader &in, const toml::table &table, const OptionValues &values,
                             const std::string &key, bool groups) {
  std::vector<unsigned> ids;
  for (const auto &name : values.list(key)) {
    char *end = nullptr;
    errno = 0;
    const auto number = std::strtoul(name.c_str(), &end, 10);
    if (!name.empty() && *end == '\0' && errno == 0 && number < 0xFFFFFFFFul) {
      ids.push_back(static_cast<unsigned>(number));
      continue;
    }
    // Looked up once at load (getpwnam/getgrnam: the daemon is single-threaded here).
    if (const auto *pw = groups ? nullptr : ::getpwnam(name.c_str()))
      ids.push_back(pw->pw_uid);
    else if (const auto *gr = groups ? ::getgrnam(name.c_str()) : nullptr)
      ids.push_back(gr->gr_gid);
    else
      in.problem(*table.get(key), "clusterd." + key,
                 std::string(groups ? "no group " : "no user ") + util::quote_for_message(name));
  }
  return ids;
}

}  // namespace

std::string not_a_socket(const std::string &path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISSOCK(st.st_mode)) return "";
  const char *what = S_ISREG(st.st_mode)   ? "a regular file"
                     : S_ISDIR(st.st_mode) ? "a directory"
                     : S_ISLNK(st.st_mode) ? "a symbolic link"
                                           : "not a socket";
  return "control socket " + path + " exists and is " + what +
         "; only a stale socket is replaced (remove it, or choose another path)";
}

namespace {

void read_settings(Reader &in, const toml::table &table, Settings &settings) {
  auto values = in.keys("clusterd", table, "clusterd.");
  settings.plugin_path = values->list("plugin_path");
  settings.log_level = values->text("log_level");
  settings.log_format = values->text("log_format");
  settings.control_socket = values->text("control_socket");
  if (auto why = not_a_socket(settings.control_socket); !why.empty())
    in.problem(table.get("control_socket") ? *table.get("control_socket") : table,
               "clusterd.control_socket", why);
  settings.control_allow_uids = ids_of(in, table, *values, "control_allow_uids", false);
  settings.control_allow_groups = ids_of(in, table, *values, "control_allow_groups", true);
  settings.control_read_uids = ids_of(in, table, *values, "control_read_uids", false);
  settings.control_read_groups = ids_of(in, table, *values, "control_read_groups", true);
  settings.metrics_listen = values->text("metrics_listen");
  settings.ready_when = values->text("ready_when");
  settings.ready_timeout = duration_of(*values, "ready_timeout");
  if (values->is_set("ready_timeout") && settings.ready_when == "started")
    in.problem(*table.get("ready_timeout"), "clusterd.ready_timeout",
               "only used with ready_when = \"formed\" (READY=1 is sent at start otherwise)");
  settings.restart_backoff = duration_of(*values, "restart_backoff");
  settings.restart_max = duration_of(*values, "restart_max");
  if (settings.restart_max < settings.restart_backoff)
    in.problem(table.get("restart_max") ? *table.get("restart_max") : table, "clusterd.restart_max",
               "must not be shorter than restart_backoff (" +
                   duration_text(settings.restart_backoff.count()) + ")");
  settings.allow_no_topologies = values->integer("allow_no_topologies") != 0;
}

void read_transport(Reader &in, const std::string &name, const toml::table &table,
                    DaemonConfig &out, const std::shared_ptr<const toml::table> &document) {
  TransportSpec spec;
  spec.name = name;
  spec.options = &table;
  spec.document = document;
  spec.table = &table;
  spec.where = where(in.file(), table.source());
  std::vector<std::string> plugin_keys;  // checked against the plugin's schema later
  for (const auto &[k, node] : table)
    if (std::find(kHostTransportKeys.begin(), kHostTransportKeys.end(), k.str()) ==
            kHostTransportKeys.end() &&
        // Without `plugin`, a key like it ("plugn") is its typo, reported as such.
        (table.contains("plugin") || util::closest_match(k.str(), {"plugin"}).empty()))
      plugin_keys.emplace_back(k.str());
  auto values = in.keys("transports.NAME", table, "transports." + name + ".", plugin_keys);
  spec.plugin = values->text("plugin");
  spec.resync_interval = duration_of(*values, "resync_interval");
  out.transports.push_back(std::move(spec));
}

// The text of a value with its strings run together: `{:net_kernel, :connect_node, []}` as a
// string or as an array of atoms-as-strings.
std::string flat_text(const toml::node &node) {
  if (const auto *text = node.as_string()) return text->get();
  std::string out;
  if (const auto *array = node.as_array())
    for (const auto &element : *array) out += flat_text(element) + " ";
  return out;
}

// libcluster's topology-level connect / disconnect / list_nodes MFAs, pasted into a topology:
// here a transport does what they did. Says which one, and what to write; "" when `key` holds no
// MFA (`disconnect` is also our policy key: "never" or "removed").
std::string libcluster_mfa_hint(std::string_view key, const toml::node &node) {
  const std::string text = flat_text(node);
  const bool mfa =
      node.is_array() || text.find('{') != std::string::npos || text.find(':') != std::string::npos;
  auto has = [&](std::string_view word) { return text.find(word) != std::string::npos; };
  const std::string route = has("rpc") ? "" : "erlang";
  std::string is_default, command;  // the erlang transport's call; the command transport's key
  if (key == "connect") {
    if (route == "erlang" && has("net_kernel") && has("connect_node"))
      is_default = "connects with net_kernel:connect_node";
    command = "connect = [\"/path/program\"] (the node is appended as the last argument)";
  } else if (key == "disconnect") {
    if (!mfa) return "";
    if (route == "erlang" && has("erlang") && has("disconnect_node"))
      is_default = "disconnects with erlang:disconnect_node";
    command = "disconnect = [\"/path/program\"] (the node is appended as the last argument)";
  } else {
    if (route == "erlang" && has("erlang") && has("nodes"))
      is_default = "lists the connected nodes with erlang:nodes()";
    command = "list_nodes = [\"/path/program\"] (printing one node per line)";
  }
  std::string message =
      "libcluster's " + std::string(key) + " MFA is the transport's job here: " +
      (is_default.empty() ? "for another function, use the command transport ([transports.NAME] "
                            "plugin = \"command\", " +
                                command + ") and name it in transport = \"NAME\""
                          : "the erlang transport ([transports.NAME] plugin = \"erlang\") " +
                                is_default + ", as this MFA does");
  if (key == "disconnect")
    return message +
           "; disconnect here is the policy: \"removed\" (disconnect nodes the strategy stops "
           "reporting, as libcluster's polling strategies do) or \"never\"";
  return message + "; remove this key";
}

void read_topology(Reader &in, const std::string &name, const toml::table &table, DaemonConfig &out,
                   const std::shared_ptr<const toml::table> &document) {
  TopologySpec spec;
  spec.name = name;
  spec.document = document;
  spec.table = &table;
  spec.where = where(in.file(), table.source());
  spec.config_where = spec.where;
  const std::string prefix = "topologies." + name + ".";
  std::vector<std::string> others{std::string(kTopologyConfigKey)};
  for (std::string_view key : {"connect", "disconnect", "list_nodes"}) {
    const toml::node *node = table.get(key);
    if (!node) continue;
    if (auto hint = libcluster_mfa_hint(key, *node); !hint.empty()) {
      in.problem(*node, prefix + std::string(key), hint);
      others.emplace_back(key);
    }
  }
  auto values = in.keys("topologies.NAME", table, prefix, others);
  spec.strategy = values->text("strategy");
  spec.transport = values->text("transport");
  if (values->is_set("disconnect"))
    spec.disconnect = values->text("disconnect") == "removed" ? DisconnectPolicy::removed
                                                              : DisconnectPolicy::never;
  spec.connect_timeout = duration_of(*values, "connect_timeout");
  spec.max_parallel = static_cast<std::uint32_t>(values->integer("max_parallel"));
  spec.backoff_initial = duration_of(*values, "backoff_initial");
  spec.backoff_max = duration_of(*values, "backoff_max");
  spec.min_nodes = static_cast<std::size_t>(values->integer("min_nodes"));
  spec.stable_for = duration_of(*values, "stable_for");
  if (spec.backoff_max < spec.backoff_initial)
    in.problem(table.get("backoff_max") ? *table.get("backoff_max") : table, prefix + "backoff_max",
               "must not be shorter than backoff_initial (" +
                   duration_text(spec.backoff_initial.count()) + ")");
  if (const auto *node = table.get(kTopologyConfigKey)) {
    if (const auto *config = in.table(*node, prefix + std::string(kTopologyConfigKey))) {
      spec.options = config;
      spec.config_where = where(in.file(), config->source());
    }
  }
  out.topologies.push_back(std::move(spec));
}

// A hook's argv: a program run without a shell, so it must be absolute or found in PATH now
// (a typo then fails `clusterd check`, not the first nodeup).
void check_hook_program(Reader &in, const toml::node &node, const std::string &key,
                        const std::string &program) {
  if (program.empty()) {
    in.problem(node, key, "needs at least the program to run");
  } else if (program.find('/') != std::string::npos) {
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
}

void read_hooks(Reader &in, const toml::table &table, HooksSpec &hooks) {
  auto values = in.keys("hooks", table, "hooks.");
  for (auto [key, argv] :
       {std::pair{"on_nodeup", &hooks.on_nodeup}, std::pair{"on_nodedown", &hooks.on_nodedown}}) {
    const toml::node *node = table.get(key);
    *argv = values->list(key);
    if (!argv->empty()) check_hook_program(in, *node, "hooks." + std::string(key), argv->front());
  }
  hooks.timeout = duration_of(*values, "timeout");
  hooks.max_running = static_cast<std::uint32_t>(values->integer("max_running"));
  hooks.queue_size = static_cast<std::uint32_t>(values->integer("queue_size"));
}

// An absent table reads as an empty one, so every key gets its default from kHostKeys.
const toml::table &or_empty(const toml::table *table) {
  static const toml::table kEmpty;
  return table ? *table : kEmpty;
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
    std::vector<std::string> names;
    for (const auto &t : config.transports) names.push_back(t.name);
    if (std::find(names.begin(), names.end(), topology.transport) == names.end()) {
      std::string message = "no transport named '" + topology.transport + "'";
      if (auto guess = util::closest_match(topology.transport, names); !guess.empty())
        message += " (did you mean '" + guess + "'?)";
      else if (names.empty())
        message += ": add a [transports." + topology.transport + "] table";
      else
        message += " (defined: " + util::join(names, ", ") +
                   "; a topology names a [transports.NAME] table, not a plugin)";
      const toml::node *value = at.as_table() ? at.as_table()->get("transport") : nullptr;
      in.problem(value ? *value : at, key, message);
    }
  }
}

// What a top-level key that is not one of ours probably meant: a misspelt table
// ([topology.x] for [topologies.x]), or a key written before its table's header.
std::string unknown_top_level(const std::string &key, const toml::node &node) {
  if (!node.is_table()) {
    for (auto table : kHostTables)
      for (const auto &k : host_keys_of(table))
        if (k == key)
          return "unknown key at the top level: it belongs in a [" + std::string(table) +
                 "] table, after the table's header";
    return "unknown key at the top level (tables here: " + known_tables() + ")";
  }
  std::vector<std::string> tables = util::split(known_tables(), ',');
  for (auto &t : tables) t.erase(0, t.find_first_not_of(' '));
  auto guess = util::closest_match(key, tables);
  if (guess.empty()) return "unknown table (known here: " + known_tables() + ")";
  // [topology.x] means [topologies.x]: name the table as it should be written.
  const auto &entries = *node.as_table();
  if ((guess == "transports" || guess == "topologies") && !entries.empty() &&
      entries.begin()->second.is_table())
    guess += "." + std::string(entries.begin()->first.str());
  return "unknown table (did you mean [" + guess + "]?)";
}

}  // namespace

void sort_problems(std::vector<Problem> &problems) {
  // "file:line:column" → (file, line, column); a position-less "file" sorts first in its file.
  auto position = [](const std::string &at) {
    std::tuple<std::string_view, long, long> out{at, 0, 0};
    auto last = at.rfind(':');
    if (last == std::string::npos || last == 0) return out;
    auto middle = at.rfind(':', last - 1);
    if (middle == std::string::npos) return out;
    char *end = nullptr;
    long line = std::strtol(at.c_str() + middle + 1, &end, 10);
    if (end != at.c_str() + last) return out;
    long column = std::strtol(at.c_str() + last + 1, &end, 10);
    if (*end != '\0') return out;
    return std::tuple<std::string_view, long, long>{std::string_view(at).substr(0, middle), line,
                                                    column};
  };
  std::stable_sort(problems.begin(), problems.end(), [&](const Problem &a, const Problem &b) {
    return position(a.where) < position(b.where);
  });
}

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
  const toml::table *settings = nullptr, *hooks = nullptr;
  for (const auto &[k, node] : root) {
    std::string key(k.str());
    if (k == "clusterd") {
      settings = in.table(node, key);
    } else if (k == "hooks") {
      hooks = in.table(node, key);
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
          read_transport(in, name, *table, config, document);
        else
          read_topology(in, name, *table, config, document);
      }
    } else {
      in.problem(node, key, unknown_top_level(key, node));
    }
  }
  read_settings(in, or_empty(settings), config.settings);
  read_hooks(in, or_empty(hooks), config.hooks);
  resolve_transports(in, root, config);
  // Nothing but blanks and comments (most likely a truncated or emptied file), or no topology
  // without the opt-in: what libcluster does with an empty list (start nothing, say nothing) is
  // what a reload of a damaged file must not do.
  const auto *group = root.get("topologies");
  const bool no_topology = !group || (group->is_table() && group->as_table()->empty());
  if (result.problems.empty() && no_topology && !config.settings.allow_no_topologies)
    result.not_runnable =
        root.empty()
            ? Problem{file, "",
                      "the file is empty (nothing but blanks and comments): a configuration "
                      "needs a [transports.NAME] and a [topologies.NAME] table"}
            : Problem{group ? where(file, group->source()) : file, "topologies",
                      "no [topologies.NAME] table: nothing would form a cluster (add one, or set "
                      "allow_no_topologies = true in [clusterd] to run the transports alone)"};
  sort_problems(result.problems);
  if (result.problems.empty())
    result.config = std::move(config);
  else
    result.partial = std::move(config);
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
