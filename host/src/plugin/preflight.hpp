// Preflight: a plugin file this process has not loaded yet is first loaded in a child process
// (`clusterd preflight-plugin`), which runs the ABI gate and reports, so a library that crashes
// or hangs in its constructors, init() or get_descriptor() is refused instead of taking the
// daemon (or `check`, `plugins list`) down with it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace clusterd::plugin {

// What a preflight found out about a plugin file, without running its code in this process.
struct Probe {
  std::string error;   // "" = it loads and passes the ABI gate
  bool retry = false;  // the failure may pass later unchanged (no child ran, or dlopen failed)
  std::string name;
  std::uint32_t kind = 0;
  std::vector<std::string> aliases;
};

// The child runs `program preflight-plugin PATH`: clusterd's main sets "/proc/self/exe" (the
// running executable, even if the file was replaced since). Empty (the default, for programs
// that are not clusterd): no preflight, libraries are loaded in-process directly.
void set_preflight_program(std::string program);
bool preflight_enabled();

// How long a child may take before it counts as hung and is killed.
inline constexpr int kPreflightDeadlineMs = 3000;

// Preflights the plugin file open at `fd` (shown as `path` in messages): the child gets the
// same open file, so it loads the very inode this process will load.
Probe preflight(int fd, const std::filesystem::path &path);

// The child: `clusterd preflight-plugin PATH`, the plugin file at fd 3 and the report pipe at
// fd 4. Never returns.
[[noreturn]] void preflight_child(const std::string &path);

}  // namespace clusterd::plugin
