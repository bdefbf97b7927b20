// clusterd: the cluster-formation daemon. Sub-commands: run, check, plugins list|describe,
// manual.
// Output goes through fmt, not iostreams: <iostream> would initialise the C++ locale machinery
// in every run of the daemon (about 0.6 MB of resident memory with the static C++ runtime).
#include <algorithm>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "app/daemon.hpp"
#include "build_info.hpp"
#include "config/constraints.hpp"
#include "config/host_keys.hpp"
#include "config/schema.hpp"
#include "plugin/preflight.hpp"
#include "util/strings.hpp"

namespace {

using namespace clusterd;

constexpr const char *kUsage = R"(usage:
  clusterd run [-c FILE]              run (without -c: the embedded default configuration)
  clusterd check [-c FILE]            check a configuration and its plugins; exit 1 on problems
  clusterd plugins list [-c FILE]     list the plugins found in plugin_path and the built-in dir
  clusterd plugins describe NAME [-c FILE]   show a plugin's options
  clusterd manual                     print clusterd.toml(5) (roff): every host key and every
                                      option of the built-in plugins
  clusterd --version
)";

struct Args {
  std::vector<std::string> words;
  std::string config;
  bool ok = true;
};

Args parse_args(int argc, char **argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc)
        args.ok = false;
      else
        args.config = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      args.config = arg.substr(9);
    } else {
      args.words.push_back(arg);
    }
  }
  return args;
}

std::optional<config::DaemonConfig> read_config(const std::string &path) {
  auto parsed = path.empty() ? config::parse(config::embedded_default(), "<embedded>")
                             : config::parse_file(path);
  for (const auto &p : parsed.problems) fmt::print(stderr, "{}\n", p.str());
  return std::move(parsed.config);
}

// Prints every problem, sorted by position: the file's, the plugins' options' (the lines `run`
// logs before refusing to start), and plugins that cannot be loaded (which `run` would start
// without: the unit fails alone).
int check(const std::string &path) {
  const std::string file = path.empty() ? "<embedded>" : path;
  app::Prepared prepared;
  auto problems = app::prepare(
      path.empty() ? config::parse(config::embedded_default(), file) : config::parse_file(path),
      prepared);
  const auto &cfg = prepared.config;
  auto report_load = [&](const std::string &kind, const char *key, const auto &units,
                         const auto &specs) {
    for (const auto &spec : specs) {
      const auto &unit = units.at(spec.name);
      if (unit.module || unit.load_error.empty()) continue;
      const toml::node *at = spec.table ? spec.table->get(key) : nullptr;
      problems.push_back({at ? config::where(file, at->source()) : spec.where,
                          kind + spec.name + "." + key, unit.load_error});
    }
  };
  report_load("transports.", "plugin", prepared.transports, cfg.transports);
  report_load("topologies.", "strategy", prepared.topologies, cfg.topologies);
  config::sort_problems(problems);
  for (const auto &p : problems) fmt::print(stderr, "{}\n", p.str());
  if (!problems.empty()) {
    fmt::print(stderr, "{}: {} problem(s)\n", file, problems.size());
    return 1;
  }
  fmt::print("{}: OK ({} transport(s), {} topology(ies))\n", file, cfg.transports.size(),
             cfg.topologies.size());
  return 0;
}

int plugins_list(const std::string &path) {
  auto cfg = read_config(path);
  if (!cfg) return 1;
  plugin::Registry registry(cfg->settings.plugin_path);
  int status = 0;
  for (const auto &entry : registry.list()) {
    if (!entry.module) {
      fmt::print("!  {}: {}\n", entry.path.string(), entry.error);
      status = 1;
      continue;
    }
    const auto &d = entry.module->descriptor();
    fmt::print("{:<10} {:<20} {:<10} {}\n", entry.module->kind_name(), entry.module->name(),
               d.version ? d.version : "?", d.description ? d.description : "");
  }
  return status;
}

int plugins_describe(const std::string &name, const std::string &path) {
  auto cfg = read_config(path);
  if (!cfg) return 1;
  plugin::Registry registry(cfg->settings.plugin_path);
  std::string error;
  auto module = registry.find(name, CLUSTERD_KIND_STRATEGY, error);
  if (!module) module = registry.find(name, CLUSTERD_KIND_TRANSPORT, error);
  if (!module) {
    fmt::print(stderr, "{}\n", error);
    return 1;
  }
  const auto &d = module->descriptor();
  fmt::print("{} ({}, version {}, ABI 1.{})\n  {}\n  file: {}\n", module->name(),
             module->kind_name(), d.version ? d.version : "?", module->abi_minor(),
             d.description ? d.description : "", module->path().string());
  if (!module->aliases().empty())
    fmt::print("  also accepted as: {}\n", util::join(module->aliases(), " "));
  if (module->kind() == CLUSTERD_KIND_STRATEGY)
    fmt::print("  default disconnect policy: {}\n",
               module->disconnects_removed() ? "removed" : "never");
  fmt::print("options:\n");
  if (module->options().empty()) fmt::print("  (none)\n");
  for (const auto &option : module->options()) {
    std::string traits(config::type_name(option.type));
    if (option.required()) traits += ", required";
    if (option.secret())
      traits += ", secret: also " + option.key + "_file / " + option.key + "_env";
    if (option.default_value) traits += ", default " + *option.default_value;
    fmt::print("  {} ({})\n", option.key, traits);
    if (!option.choices.empty()) fmt::print("      one of: {}\n", util::join(option.choices, " "));
    if (auto rules = config::describe_constraints(option); !rules.empty())
      fmt::print("      must be: {}\n", rules);
    fmt::print("      {}\n", option.description);
  }
  return 0;
}

// Text for roff: backslashes and hyphens escaped, no line may start with a control character.
std::string roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else if (c == '\n')
      out += "\n.br\n";
    else
      out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

// One option in clusterd.toml(5), a host key or a plugin's; `default_text` replaces the default
// value when that is not a value ("the strategy's").
void print_manual_option(const config::OptionSpec &option, std::string_view default_text) {
  std::string traits(config::type_name(option.type));
  if (option.required()) traits += ", required";
  if (!default_text.empty())
    traits += ", default " + std::string(default_text);
  else if (option.default_value)
    traits += ", default " + *option.default_value;
  fmt::print(".TP\n\\fB{}\\fR ({})\n{}\n", roff(option.key), roff(traits),
             roff(option.description));
  if (!option.choices.empty())
    fmt::print(".br\nOne of: {}.\n", roff(util::join(option.choices, ", ")));
  if (auto rules = config::describe_constraints(option); !rules.empty())
    fmt::print(".br\nMust be: {}.\n", roff(rules));
  if (option.secret())
    fmt::print(".br\nSecret: also \\fB{0}_file\\fR or \\fB{0}_env\\fR; never logged.\n",
               roff(option.key));
}

// clusterd.toml(5), generated from the schemas: the host keys (config/host_keys.hpp) and the
// options every built-in plugin declares (the data `plugins describe` prints). Only the
// built-in directory counts, so what the build machine has in /usr/local stays out.
int manual() {
  plugin::Registry registry({});
  std::vector<std::shared_ptr<const plugin::Module>> modules;
  for (const auto &entry : registry.list()) {
    std::error_code ec;
    if (!std::filesystem::equivalent(entry.path.parent_path(), plugin::Registry::builtin_dir(), ec))
      continue;
    if (!entry.module) {
      fmt::print(stderr, "{}: {}\n", entry.path.string(), entry.error);
      return 1;
    }
    modules.push_back(entry.module);
  }
  std::sort(modules.begin(), modules.end(), [](const auto &a, const auto &b) {
    return std::pair(a->kind(), a->name()) < std::pair(b->kind(), b->name());
  });
  fmt::print(R"(.\" Generated by `clusterd manual` from the configuration schemas. Do not edit.
.TH CLUSTERD.TOML 5 "" "clusterd {}" "File Formats"
.SH NAME
clusterd.toml \- configuration file of the clusterd daemon
.SH SYNOPSIS
.I /etc/clusterd/clusterd.toml
.SH DESCRIPTION
A TOML file read by
.BR clusterd (8)
at start and on SIGHUP.
It has a
.B [clusterd]
table of daemon settings, an optional
.B [hooks]
table, named
.B [transports.NAME]
tables (\fBplugin\fR and the transport plugin's options) and named
.B [topologies.NAME]
tables (a strategy, its transport, and the strategy's options in
.BR [topologies.NAME.config] ).
NAME uses letters, digits, _ and \- (1\-64 characters).
Unknown keys are errors, reported with file:line:column by
.BR "clusterd check" .
.PP
Durations are strings with a unit, such as "250ms", "5s", "2m", "1h", or integer
milliseconds (as in libcluster); "5" without a unit is refused. A list is always an array,
even of one string: ["a@host"].
Secret options (cookies, keys, tokens) may instead be given as
.IB KEY _file
= "/path" (the file's contents) or
.IB KEY _env
= "VARIABLE" (an environment variable); secrets are never logged.
)",
             CLUSTERD_VERSION_STRING);
  for (auto table : config::kHostTables) {
    fmt::print(".SH [{}]\n", roff(table));
    for (const auto &k : config::kHostKeys)
      if (k.table == table) print_manual_option(config::option_spec(k.option), k.default_text);
    if (table == "topologies.NAME")
      fmt::print(
          ".TP\n\\fB{}\\fR (table)\nThe strategy's own options, as "
          "[topologies.NAME.config] (see PLUGINS).\n",
          config::kTopologyConfigKey);
  }
  fmt::print(
      ".SH PLUGINS\nThe options of each built-in plugin: for a strategy in "
      "[topologies.NAME.config], for a transport in [transports.NAME] beside "
      "\\fBplugin\\fR.\n");
  for (const auto &module : modules) {
    const auto &d = module->descriptor();
    fmt::print(".SS {} ({})\n{}\n", roff(module->name()), roff(module->kind_name()),
               roff(d.description ? d.description : ""));
    if (!module->aliases().empty())
      fmt::print(".br\nAlso accepted as: {}.\n", roff(util::join(module->aliases(), ", ")));
    if (module->options().empty()) fmt::print(".PP\nNo options.\n");
    for (const auto &option : module->options()) print_manual_option(option, "");
  }
  fmt::print(R"(.SH FILES
.TP
.I /etc/clusterd/clusterd.toml
The configuration read by the clusterd service.
.TP
.I /usr/local/lib/clusterd/plugins
Hand\-installed plugins, searched after plugin_path and before the built-in directory.
.SH EXAMPLES
The packaged default clusters every BEAM node of the local EPMD:
.PP
.nf
.RS
[transports.beam]
plugin = "erlang"
nodes = "local"

[topologies.local]
strategy = "local_epmd"
disconnect = "never"

[topologies.local.config]
polling_interval = "5s"
.RE
.fi
.SH SEE ALSO
.BR clusterd (8),
.BR clusterctl (1)
)");
  return 0;
}
}  // namespace

int main(int argc, char **argv) {
  // Hidden: the child a preflight runs (plugin/preflight.hpp), before anything else is set up.
  if (argc == 3 && std::strcmp(argv[1], "preflight-plugin") == 0) plugin::preflight_child(argv[2]);
  plugin::set_preflight_program("/proc/self/exe");
  auto args = parse_args(argc, argv);
  const auto &w = args.words;
  if (!args.ok || w.empty() || w[0] == "-h" || w[0] == "--help" || w[0] == "help") {
    fmt::print(stderr, "{}", kUsage);
    return args.ok && !w.empty() ? 0 : 2;
  }
  if (w[0] == "--version" || w[0] == "version") {
    fmt::print("clusterd {} (plugin ABI {}.{})\n", CLUSTERD_VERSION_STRING, CLUSTERD_ABI_MAJOR,
               CLUSTERD_ABI_MINOR);
    return 0;
  }
  if (w[0] == "run" && w.size() == 1) {
    std::signal(SIGPIPE, SIG_IGN);
    app::Daemon daemon;
    return daemon.run(args.config);
  }
  if (w[0] == "check" && w.size() == 1) return check(args.config);
  if (w[0] == "manual" && w.size() == 1) return manual();
  if (w[0] == "plugins" && w.size() == 2 && w[1] == "list") return plugins_list(args.config);
  if (w[0] == "plugins" && w.size() == 3 && w[1] == "describe")
    return plugins_describe(w[2], args.config);
  fmt::print(stderr, "{}", kUsage);
  return 2;
}
