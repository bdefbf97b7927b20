// A loaded plugin library: opened only when trusted (plugin/trust.hpp), preflighted in a child
// first (plugin/preflight.hpp), loaded with Boost.DLL (RTLD_NOW | RTLD_LOCAL) through the very
// descriptor that was checked, its entry symbol and descriptor checked before anything else is
// called, and kept mapped until the process exits.
#pragma once

#include <clusterd/plugin.h>

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/schema.hpp"
#include "plugin/preflight.hpp"
#include "plugin/trust.hpp"

namespace clusterd::plugin {

class Module {
 public:
  // Loads and checks the library. On failure returns nullptr and sets `error` to a message
  // that names the file and what is wrong with it. Once per file version (device, inode,
  // mtime, size): later calls for it return the same Module or error, so a reload creates
  // nothing new for a plugin it already has.
  static std::shared_ptr<const Module> load(const std::filesystem::path &path, std::string &error);
  // What the plugin file is (name, kind, aliases), or why it cannot be loaded, learnt by its
  // preflight without running any of its code in this process (cached as load() is).
  static Probe probe(const std::filesystem::path &path);
  // Loads and checks the library open at `fd` in this process, without trust check, preflight
  // or cache: the preflight child's work. `unloadable`: dlopen() itself failed.
  static std::shared_ptr<const Module> load_fd(Fd fd, const std::filesystem::path &path,
                                               std::string &error, bool *unloadable = nullptr);

  const std::filesystem::path &path() const { return path_; }
  const clusterd_plugin_descriptor_t &descriptor() const { return descriptor_; }
  const std::string &name() const { return name_; }
  std::uint32_t kind() const { return descriptor_.kind; }
  std::string_view kind_name() const;
  const std::vector<std::string> &aliases() const { return aliases_; }
  const std::vector<config::OptionSpec> &options() const { return options_; }
  bool disconnects_removed() const {
    return descriptor_.flags & CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  }
  std::uint32_t abi_minor() const { return entry_.abi_minor; }

  // A problem the plugin's validate() found: the option it names ("" = the whole table).
  struct Problem {
    std::string key, message;
  };
  // Runs the plugin's validate() (ABI 1.3; nothing for older plugins) on options that passed
  // their declared checks, appending what it reports. Pure on the plugin's side, so it also
  // runs at `clusterd check`.
  void validate(const config::OptionValues &values, std::vector<Problem> &out) const;

 private:
  Module() = default;
  std::string check(std::string_view expected_name);

  std::filesystem::path path_;
  // Open while the library is mapped (forever): its /proc/self/fd/N name, which dlopen()
  // matches by string, then cannot come to mean another file.
  Fd fd_;
  boost::dll::shared_library library_;
  clusterd_plugin_entry_t entry_{};            // size-clamped copies: fields the
  clusterd_plugin_descriptor_t descriptor_{};  // plugin lacks read as zero
  std::string name_;
  std::vector<std::string> aliases_;
  std::vector<config::OptionSpec> options_;
};

}  // namespace clusterd::plugin
