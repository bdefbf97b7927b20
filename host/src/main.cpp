// clusterd: the cluster-formation daemon. Sub-commands: run, check, plugins list|describe.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "app/daemon.hpp"
#include "build_info.hpp"
#include "config/schema.hpp"

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
  for (const auto &p : parsed.problems) std::cerr << p.str() << "\n";
  return std::move(parsed.config);
}

int check(const std::string &path) {
  auto cfg = read_config(path);
  if (!cfg) return 1;
  plugin::Registry registry(cfg->settings.plugin_path);
  app::Prepared prepared;
  std::size_t transports = cfg->transports.size(), topologies = cfg->topologies.size();
  auto problems = app::prepare(std::move(*cfg), registry, prepared);
  for (const auto &p : problems) std::cerr << p.str() << "\n";
  std::size_t failed = problems.size();
  auto report_load = [&](const char *kind, const auto &units, const auto &specs) {
    for (const auto &spec : specs) {
      const auto &unit = units.at(spec.name);
      if (!unit.module) {
        std::cerr << spec.where << ": " << kind << spec.name << ": " << unit.load_error << "\n";
        ++failed;
      }
    }
  };
  report_load("transports.", prepared.transports, prepared.config.transports);
  report_load("topologies.", prepared.topologies, prepared.config.topologies);
  if (failed) {
    std::cerr << prepared.config.file << ": " << failed << " problem(s)\n";
    return 1;
  }
  std::cout << prepared.config.file << ": OK (" << transports << " transport(s), " << topologies
            << " topology(ies))\n";
  return 0;
}

int plugins_list(const std::string &path) {
  auto cfg = read_config(path);
  if (!cfg) return 1;
  plugin::Registry registry(cfg->settings.plugin_path);
  int status = 0;
  for (const auto &entry : registry.list()) {
    if (!entry.module) {
      std::cout << "!  " << entry.path.string() << ": " << entry.error << "\n";
      status = 1;
      continue;
    }
    const auto &d = entry.module->descriptor();
    std::printf("%-10s %-20s %-10s %s\n", std::string(entry.module->kind_name()).c_str(),
                entry.module->name().c_str(), d.version ? d.version : "?",
                d.description ? d.description : "");
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
    std::cerr << error << "\n";
    return 1;
  }
  const auto &d = module->descriptor();
  std::cout << module->name() << " (" << module->kind_name() << ", version "
            << (d.version ? d.version : "?") << ", ABI 1." << module->abi_minor() << ")\n  "
            << (d.description ? d.description : "") << "\n  file: " << module->path().string()
            << "\n";
  if (!module->aliases().empty()) {
    std::cout << "  also accepted as:";
    for (const auto &alias : module->aliases()) std::cout << " " << alias;
    std::cout << "\n";
  }
  if (module->kind() == CLUSTERD_KIND_STRATEGY)
    std::cout << "  default disconnect policy: "
              << (module->disconnects_removed() ? "removed" : "never") << "\n";
  std::cout << "options:\n";
  if (module->options().empty()) std::cout << "  (none)\n";
  for (const auto &option : module->options()) {
    std::cout << "  " << option.key << " (" << config::type_name(option.type);
    if (option.required()) std::cout << ", required";
    if (option.secret())
      std::cout << ", secret: also " << option.key << "_file / " << option.key << "_env";
    if (option.default_value) std::cout << ", default " << *option.default_value;
    std::cout << ")\n";
    if (!option.choices.empty()) {
      std::cout << "      one of:";
      for (const auto &c : option.choices) std::cout << " " << c;
      std::cout << "\n";
    }
    std::cout << "      " << option.description << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  auto args = parse_args(argc, argv);
  const auto &w = args.words;
  if (!args.ok || w.empty() || w[0] == "-h" || w[0] == "--help" || w[0] == "help") {
    std::cerr << kUsage;
    return args.ok && !w.empty() ? 0 : 2;
  }
  if (w[0] == "--version" || w[0] == "version") {
    std::cout << "clusterd " << CLUSTERD_VERSION_STRING << " (plugin ABI " << CLUSTERD_ABI_MAJOR
              << "." << CLUSTERD_ABI_MINOR << ")\n";
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
  std::cerr << kUsage;
  return 2;
}
