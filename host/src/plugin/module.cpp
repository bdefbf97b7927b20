#include "plugin/module.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "build_info.hpp"
#include "util/strings.hpp"

namespace clusterd::plugin {
namespace {

constexpr std::size_t kEntryMinSize =
    offsetof(clusterd_plugin_entry_t, get_descriptor) + sizeof(void *);
constexpr std::size_t kDescriptorMinSize =
    offsetof(clusterd_plugin_descriptor_t, create) + sizeof(void *);
constexpr std::size_t kOptionMinSize = offsetof(clusterd_option_t, description) + sizeof(void *);
constexpr std::size_t kOptionConstraintsSize =
    offsetof(clusterd_option_t, conflicts) + sizeof(void *);

// Copies min(struct_size, sizeof(T)) bytes into a zeroed T, so fields newer than the
// plugin read as zero/NULL ("not provided").
template <typename T>
T clamped_copy(const T *source) {
  T copy;
  std::memset(&copy, 0, sizeof copy);
  std::memcpy(&copy, source, std::min<std::size_t>(source->struct_size, sizeof(T)));
  return copy;
}

// A version of a file: a file replaced (new inode) or rewritten (new mtime or size) is new.
struct FileVersion {
  dev_t dev;
  ino_t ino;
  std::int64_t mtime_sec, mtime_nsec;
  off_t size;
  auto operator<=>(const FileVersion &) const = default;
};

// What this process knows of a file version. Libraries are never unloaded (a pending callback
// or thread in an unmapped library is a crash with no stack): `module` holds it until exit, one
// Module per version however often it is asked for.
struct Known {
  std::optional<Probe> probe;            // its preflight's answer
  std::shared_ptr<const Module> module;  // loaded and checked
  std::string error;                     // why it was refused
};

std::mutex known_mutex;
std::map<FileVersion, Known> &known() {
  static auto *all = new std::map<FileVersion, Known>();  // never destroyed: see Known
  return *all;
}

FileVersion version_of(const struct stat &st) {
  return {st.st_dev, st.st_ino, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size};
}

Probe probe_of(const Module &module) {
  return {"", false, module.name(), module.kind(), module.aliases()};
}

}  // namespace

std::string_view Module::kind_name() const {
  return descriptor_.kind == CLUSTERD_KIND_STRATEGY ? "strategy" : "transport";
}

std::shared_ptr<const Module> Module::load(const std::filesystem::path &path, std::string &error) {
  struct stat st;
  Fd fd = open_trusted(path, st, error);
  if (!fd) return nullptr;
  std::lock_guard lock(known_mutex);
  Known &k = known()[version_of(st)];
  if (k.module) return k.module;
  if (!k.error.empty()) {
    error = k.error;
    return nullptr;
  }
  if (!k.probe && preflight_enabled()) {
    auto probe = preflight(fd.get(), path);
    if (probe.retry) {
      error = probe.error;
      return nullptr;
    }
    k.probe = std::move(probe);
  }
  if (k.probe && !k.probe->error.empty()) {
    error = k.probe->error;
    return nullptr;
  }
  bool unloadable = false;
  k.module = load_fd(std::move(fd), path, error, &unloadable);
  if (!k.module && !unloadable) k.error = error;
  return k.module;
}

Probe Module::probe(const std::filesystem::path &path) {
  Probe probe;
  struct stat st;
  Fd fd = open_trusted(path, st, probe.error);
  if (!fd) return probe;
  if (!preflight_enabled()) {  // nothing to learn it from but loading it
    auto module = load(path, probe.error);
    return module ? probe_of(*module) : probe;
  }
  std::lock_guard lock(known_mutex);
  Known &k = known()[version_of(st)];
  if (k.module) return probe_of(*k.module);
  if (!k.error.empty()) {
    probe.error = k.error;
    return probe;
  }
  if (k.probe) return *k.probe;
  probe = preflight(fd.get(), path);
  if (!probe.retry) k.probe = probe;
  return probe;
}

std::shared_ptr<const Module> Module::load_fd(Fd fd, const std::filesystem::path &path,
                                              std::string &error, bool *unloadable) {
  std::shared_ptr<Module> module(new Module());
  module->path_ = path;
  module->fd_ = std::move(fd);
  const std::string proc = "/proc/self/fd/" + std::to_string(module->fd_.get());
  try {
    module->library_.load(proc,
                          boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception &e) {
    error = path.string() + ": cannot load: " + e.what();
    if (const char *detail = ::dlerror()) error += std::string(" (") + detail + ")";
    if (unloadable) *unloadable = true;
    return nullptr;
  }
  std::string stem = path.stem().string();
  std::string expected = stem.rfind("clusterd-", 0) == 0 ? stem.substr(9) : stem;
  if (auto problem = module->check(expected); !problem.empty()) {
    error = path.string() + ": " + problem;
    // Its init may have run: kept mapped like the others (once per version: see Known).
    static std::mutex refused_mutex;
    static auto *refused = new std::vector<std::shared_ptr<const Module>>();
    std::lock_guard lock(refused_mutex);
    refused->push_back(module);
    return nullptr;
  }
  return module;
}

std::string Module::check(std::string_view expected_name) {
  if (!library_.has(CLUSTERD_ENTRY_SYMBOL))
    return "no symbol " CLUSTERD_ENTRY_SYMBOL
           " (not a clusterd plugin, or built for another ABI major)";
  const auto &raw = library_.get<const clusterd_plugin_entry_t>(CLUSTERD_ENTRY_SYMBOL);
  if (raw.struct_size < kEntryMinSize)
    return "entry struct_size " + std::to_string(raw.struct_size) + " is too small (needs " +
           std::to_string(kEntryMinSize) + ")";
  entry_ = clamped_copy(&raw);
  std::string host_abi =
      std::to_string(CLUSTERD_ABI_MAJOR) + "." + std::to_string(CLUSTERD_ABI_MINOR);
  std::string plugin_abi =
      std::to_string(entry_.abi_major) + "." + std::to_string(entry_.abi_minor);
  if (entry_.abi_major != CLUSTERD_ABI_MAJOR)
    return "built for ABI " + plugin_abi + " (major " + std::to_string(entry_.abi_major) +
           "), this clusterd provides ABI " + host_abi;
  if (entry_.abi_minor > CLUSTERD_ABI_MINOR)
    return "requires ABI " + plugin_abi + " (a newer minor), this clusterd provides ABI " +
           host_abi;
  if (!entry_.get_descriptor) return "entry has no get_descriptor";

  try {
    if (entry_.init) {
      clusterd_loader_info_t info{sizeof info, CLUSTERD_ABI_MAJOR,      CLUSTERD_ABI_MINOR,
                                  0,           CLUSTERD_VERSION_STRING, path_.c_str()};
      if (auto status = entry_.init(&info); status != CLUSTERD_OK)
        return "entry init failed with status " + std::to_string(status);
    }
    const clusterd_plugin_descriptor_t *descriptor = entry_.get_descriptor();
    if (!descriptor) return "get_descriptor returned NULL";
    if (descriptor->struct_size < kDescriptorMinSize)
      return "descriptor struct_size " + std::to_string(descriptor->struct_size) + " is too small";
    descriptor_ = clamped_copy(descriptor);
  } catch (...) {
    return "threw an exception from its entry (exceptions must not cross the C ABI)";
  }
  if (descriptor_.kind != CLUSTERD_KIND_STRATEGY && descriptor_.kind != CLUSTERD_KIND_TRANSPORT)
    return "descriptor has unknown kind " + std::to_string(descriptor_.kind);
  if (!descriptor_.name || !*descriptor_.name) return "descriptor has no name";
  name_ = descriptor_.name;
  if (name_ != expected_name)
    return "descriptor names the plugin '" + name_ + "', but the file is named for '" +
           std::string(expected_name) + "'";
  if (!descriptor_.create) return "descriptor has no create function";
  for (auto alias = descriptor_.aliases; alias && *alias; ++alias) aliases_.emplace_back(*alias);

  if (descriptor_.option_count && !descriptor_.options)
    return "option_count set but options is NULL";
  const auto *bytes = reinterpret_cast<const unsigned char *>(descriptor_.options);
  std::size_t stride = descriptor_.option_count ? descriptor_.options[0].struct_size : 0;
  if (descriptor_.option_count && stride < kOptionMinSize)
    return "option struct_size " + std::to_string(stride) + " is too small";
  for (std::uint32_t i = 0; i < descriptor_.option_count; ++i) {
    auto option = clamped_copy(reinterpret_cast<const clusterd_option_t *>(bytes + i * stride));
    options_.push_back(config::option_spec(option, stride >= kOptionConstraintsSize));
  }
  return config::check_schema(options_);
}

void Module::validate(const config::OptionValues &values, std::vector<Problem> &out) const {
  if (!descriptor_.validate) return;
  struct Sink {
    clusterd_problems_t table;
    std::vector<Problem> *out;
  } sink{{sizeof(clusterd_problems_t), 0, nullptr,
          [](const clusterd_problems_t *problems, const char *key, const char *message) {
            auto *self = static_cast<Sink *>(problems->host_data);
            try {
              self->out->push_back({key ? key : "", message && *message ? message : "invalid"});
            } catch (...) {
              // Out of memory: the problems already reported still refuse the config.
            }
          }},
         &out};
  sink.table.host_data = &sink;
  try {
    descriptor_.validate(values.view(), &sink.table);
  } catch (...) {
    out.push_back({"", "the plugin's validate() threw (exceptions must not cross the C ABI)"});
  }
}

}  // namespace clusterd::plugin
