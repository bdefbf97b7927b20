// clusterd: the cluster-formation daemon. Sub-commands: run, check, plugins list|describe.
// Output goes through fmt, not iostreams: <iostream> would initialise the C++ locale machinery
// in every run of the daemon (about 0.6 MB of resident memory with the static C++ runtime).
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "app/daemon.hpp"
#include "build_info.hpp"
#include "config/schema.hpp"
#include "util/strings.hpp"

namespace {

using namespace clusterd;

constexpr const char *kUsage = R"(usage:
  clusterd run [-c FILE]              run (without -c: the embedded default configuration)
  clusterd check [-c FILE]            check a configuration and its plugins; exit 1 on problems
  clusterd plugins list [-c FILE]     list the plugins found in plugin_path and the built-in dir
  clusterd plugins describe NAME [-c FILE]   show a plugin's options
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

int check(const std::string &path) {
  auto cfg = read_config(path);
  if (!cfg) return 1;
  plugin::Registry registry(cfg->settings.plugin_path);
  app::Prepared prepared;
  std::size_t transports = cfg->transports.size(), topologies = cfg->topologies.size();
  auto problems = app::prepare(std::move(*cfg), registry, prepared);
  for (const auto &p : problems) fmt::print(stderr, "{}\n", p.str());
  std::size_t failed = problems.size();
  auto report_load = [&](const char *kind, const auto &units, const auto &specs) {
    for (const auto &spec : specs) {
      const auto &unit = units.at(spec.name);
      if (!unit.module) {
        fmt::print(stderr, "{}: {}{}: {}\n", spec.where, kind, spec.name, unit.load_error);
        ++failed;
      }
    }
  };
  report_load("transports.", prepared.transports, prepared.config.transports);
  report_load("topologies.", prepared.topologies, prepared.config.topologies);
  if (failed) {
    fmt::print(stderr, "{}: {} problem(s)\n", prepared.config.file, failed);
    return 1;
  }
  fmt::print("{}: OK ({} transport(s), {} topology(ies))\n", prepared.config.file, transports,
             topologies);
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
    fmt::print("      {}\n", option.description);
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
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
  if (w[0] == "plugins" && w.size() == 2 && w[1] == "list") return plugins_list(args.config);
  if (w[0] == "plugins" && w.size() == 3 && w[1] == "describe")
    return plugins_describe(w[2], args.config);
  fmt::print(stderr, "{}", kUsage);
  return 2;
}
