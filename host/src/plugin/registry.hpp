// Finds plugins by name: `clusterd-NAME.so` in each plugin_path directory in order, then in
// the local directory (/usr/local/lib/clusterd/plugins, for hand-installed plugins), then in
// the built-in directory beside the executable. libcluster module names map to ours; other
// names are matched against the aliases the plugins' preflights report, so a name that is not
// a file name loads no library but the one it names.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "plugin/module.hpp"

namespace clusterd::plugin {

class Registry {
 public:
  // `plugin_path` comes from the config; the local and built-in directories follow it.
  explicit Registry(const std::vector<std::string> &plugin_path);

  // <dir of /proc/self/exe>/CLUSTERD_PLUGIN_RELDIR.
  static std::filesystem::path builtin_dir();

  // Finds and loads the plugin `name` of `kind` (CLUSTERD_KIND_*). On failure returns
  // nullptr with `error` saying what was searched or what was wrong with the library.
  std::shared_ptr<const Module> find(const std::string &name, std::uint32_t kind,
                                     std::string &error);

  struct Entry {
    std::filesystem::path path;
    std::shared_ptr<const Module> module;  // null when it failed to load
    std::string error;
  };
  // Every clusterd-*.so in the search path (the first of each name wins), loaded.
  std::vector<Entry> list();
  // The same files, not loaded.
  std::vector<std::filesystem::path> files() const;

  const std::vector<std::filesystem::path> &directories() const { return dirs_; }

 private:
  // " (did you mean 'X'?)" for a plugin `name` not found among `probes`, or the names there
  // are of that kind.
  static std::string suggestion(const std::string &name, std::uint32_t kind,
                                const std::vector<Probe> &probes);

  std::vector<std::filesystem::path> dirs_;
};

// "Cluster.Strategy.Kubernetes.DNSSRV" → "kubernetes_dnssrv"; "Elixir.Cluster.Strategy.
// LocalEpmd" → "local_epmd"; names without a libcluster prefix are returned unchanged.
std::string plugin_file_name(std::string_view configured_name);

}  // namespace clusterd::plugin
