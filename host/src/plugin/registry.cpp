#include "plugin/registry.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <system_error>

#include "build_info.hpp"
#include "util/strings.hpp"

namespace clusterd::plugin {

std::string plugin_file_name(std::string_view name) {
  for (std::string_view prefix : {"Elixir.", "Cluster.Strategy.", "Cluster."}) {
    if (name.substr(0, prefix.size()) == prefix) name.remove_prefix(prefix.size());
  }
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      out += '_';
      continue;
    }
    bool upper = std::isupper(static_cast<unsigned char>(c));
    // A word starts at an upper-case letter after a lower-case one, or at the last capital
    // of an acronym followed by lower case ("DNSPoll" → "dns_poll").
    if (upper && i > 0 && !out.empty() && out.back() != '_') {
      bool after_lower = std::islower(static_cast<unsigned char>(name[i - 1]));
      bool acronym_end = i + 1 < name.size() &&
                         std::isupper(static_cast<unsigned char>(name[i - 1])) &&
                         std::islower(static_cast<unsigned char>(name[i + 1]));
      if (after_lower || acronym_end) out += '_';
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Registry::Registry(const std::vector<std::string> &plugin_path) {
  for (const auto &dir : plugin_path) dirs_.emplace_back(dir);
  if (*CLUSTERD_LOCAL_PLUGIN_DIR) dirs_.emplace_back(CLUSTERD_LOCAL_PLUGIN_DIR);
  dirs_.push_back(builtin_dir());
}

std::filesystem::path Registry::builtin_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return CLUSTERD_PLUGIN_RELDIR;
  return (exe.parent_path() / CLUSTERD_PLUGIN_RELDIR).lexically_normal();
}

std::shared_ptr<const Module> Registry::find(const std::string &name, std::uint32_t kind,
                                             std::string &error) {
  std::string file = "clusterd-" + plugin_file_name(name) + ".so";
  for (const auto &dir : dirs_) {
    std::error_code ec;
    auto path = dir / file;
    if (!std::filesystem::exists(path, ec)) continue;
    auto module = Module::load(path, error);
    if (!module) return nullptr;
    if (module->kind() != kind) {
      error = path.string() + ": plugin '" + module->name() + "' is a " +
              std::string(module->kind_name()) + ", not a " +
              (kind == CLUSTERD_KIND_STRATEGY ? "strategy" : "transport");
      return nullptr;
    }
    return module;
  }
  // Third-party libcluster names ("ClusterEC2.Strategy.Tags") match a plugin's aliases, which
  // preflights report: only the library named is loaded here.
  std::vector<Probe> probes;
  for (const auto &path : files()) {
    auto probe = Module::probe(path);
    if (probe.error.empty() && probe.kind == kind &&
        std::find(probe.aliases.begin(), probe.aliases.end(), name) != probe.aliases.end())
      return Module::load(path, error);
    probes.push_back(std::move(probe));
  }
  std::string searched;
  for (const auto &dir : dirs_) searched += (searched.empty() ? "" : ", ") + dir.string();
  error = "no plugin '" + name + "'" + suggestion(name, kind, probes) + "; looked for " + file +
          " in " + searched;
  return nullptr;
}

std::string Registry::suggestion(const std::string &name, std::uint32_t kind,
                                 const std::vector<Probe> &probes) {
  // Names are compared in file-name form, so that "Cluster.Strategy.Kuberentes" is one typo
  // away from "kubernetes" rather than a long common prefix away from every libcluster name.
  std::vector<std::string> forms, names;
  std::vector<const Probe *> owners;
  for (const auto &probe : probes) {
    if (!probe.error.empty() || probe.kind != kind) continue;
    names.push_back(probe.name);
    forms.push_back(probe.name);
    owners.push_back(&probe);
    for (const auto &alias : probe.aliases) {
      forms.push_back(plugin_file_name(alias));
      owners.push_back(&probe);
    }
  }
  auto guess = util::closest_match(plugin_file_name(name), forms);
  if (guess.empty())
    return names.empty() ? ""
                         : std::string(" (") +
                               (kind == CLUSTERD_KIND_STRATEGY ? "strategies" : "transports") +
                               " found: " + util::join(names, ", ") + ")";
  const Probe &module = *owners[std::find(forms.begin(), forms.end(), guess) - forms.begin()];
  // Spelt as the user spells: a libcluster module name for a libcluster module name.
  std::string shown = module.name;
  if (plugin_file_name(name) != name) {
    const bool elixir = name.rfind("Elixir.", 0) == 0;
    for (const auto &alias : module.aliases)
      if ((alias.rfind("Elixir.", 0) == 0) == elixir) {
        shown = alias;
        break;
      }
  }
  return " (did you mean '" + shown + "'?)";
}

std::vector<std::filesystem::path> Registry::files() const {
  std::vector<std::filesystem::path> out;
  std::set<std::string> seen;
  for (const auto &dir : dirs_) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto &item : std::filesystem::directory_iterator(dir, ec)) {
      auto filename = item.path().filename().string();
      if (filename.rfind("clusterd-", 0) == 0 && item.path().extension() == ".so")
        files.push_back(item.path());
    }
    std::sort(files.begin(), files.end());
    for (auto &path : files)
      if (seen.insert(path.filename().string()).second)  // else shadowed by an earlier dir
        out.push_back(std::move(path));
  }
  return out;
}

std::vector<Registry::Entry> Registry::list() {
  std::vector<Entry> entries;
  for (auto &path : files()) {
    Entry entry{std::move(path), nullptr, ""};
    entry.module = Module::load(entry.path, entry.error);
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace clusterd::plugin
