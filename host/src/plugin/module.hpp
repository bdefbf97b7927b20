// A loaded plugin library: opened with Boost.DLL (RTLD_NOW | RTLD_LOCAL), its entry symbol and
// descriptor checked before anything else is called, and kept mapped until the process exits.
#pragma once

#include <clusterd/plugin.h>

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/schema.hpp"

namespace clusterd::plugin {

class Module {
 public:
  // Loads and checks the library. On failure returns nullptr and sets `error` to a message
  // that names the file and what is wrong with it.
  static std::shared_ptr<const Module> load(const std::filesystem::path &path, std::string &error);

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
  boost::dll::shared_library library_;
  clusterd_plugin_entry_t entry_{};            // size-clamped copies: fields the
  clusterd_plugin_descriptor_t descriptor_{};  // plugin lacks read as zero
  std::string name_;
  std::vector<std::string> aliases_;
  std::vector<config::OptionSpec> options_;
};

}  // namespace clusterd::plugin
