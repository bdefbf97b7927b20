// The plugin loader's defences, on real files and real child processes: the trust rule
// (plugin/trust.hpp; as root, with files and directories made for each case) and the preflight
// (plugin/preflight.hpp; the built clusterd as the child, the loader fixtures as patients).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "build_info.hpp"
#include "plugin/module.hpp"
#include "plugin/preflight.hpp"
#include "plugin/registry.hpp"
#include "plugin/trust.hpp"

namespace fs = std::filesystem;
using clusterd::plugin::Module;
using clusterd::plugin::open_trusted;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// A scratch tree under the temporary directory, removed at the end.
class Scratch {
 public:
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "loader-test-XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
    ::chmod(root_.c_str(), 0755);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path &root() const { return root_; }
  fs::path dir(const std::string &name, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
    auto path = root_ / name;
    fs::create_directories(path);
    EXPECT_EQ(::chown(path.c_str(), uid, gid), 0);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  fs::path file(const fs::path &path, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
    std::ofstream(path) << "not a library\n";
    EXPECT_EQ(::chown(path.c_str(), uid, gid), 0);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

 private:
  fs::path root_;
};

// open_trusted's verdict: "" when it opened the file, else its error.
std::string verdict(const fs::path &path) {
  struct stat st;
  std::string error;
  auto fd = open_trusted(path, st, error);
  return fd ? "" : error;
}

#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (files owned by others)"

}  // namespace

TEST(Trust, RootOwnedFileInRootOwnedDirectoriesOpensTheCheckedInode) {
  REQUIRE_ROOT();
  Scratch s;
  auto file = s.file(s.dir("plugins", 0755) / "clusterd-x.so", 0644);
  struct stat st, by_path;
  std::string error;
  auto fd = open_trusted(file, st, error);
  ASSERT_TRUE(fd) << error;
  ASSERT_EQ(::stat(file.c_str(), &by_path), 0);
  EXPECT_EQ(st.st_ino, by_path.st_ino);
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
}

TEST(Trust, GroupWritableFileIsRefused) {  // issue 14.3: 0664 root:nogroup, written by nobody
  REQUIRE_ROOT();
  Scratch s;
  auto file = s.file(s.dir("plugins", 0755) / "clusterd-mk.so", 0664, 0, kNogroup);
  auto error = verdict(file);
  EXPECT_NE(error.find(file.string() + ": not loaded: the file is group-writable"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("mode 0664"), std::string::npos) << error;
}

TEST(Trust, FileOwnedByAnotherUserIsRefused) {
  REQUIRE_ROOT();
  Scratch s;
  auto file = s.file(s.dir("plugins", 0755) / "clusterd-x.so", 0644, kNobody, kNogroup);
  auto error = verdict(file);
  EXPECT_NE(error.find("is owned by nobody, not root"), std::string::npos) << error;
}

TEST(Trust, GroupWritableDirectoryIsRefused) {  // issue 14.3: a 0775 directory
  REQUIRE_ROOT();
  Scratch s;
  auto dir = s.dir("plugins", 0775, 0, kNogroup);
  auto error = verdict(s.file(dir / "clusterd-x.so", 0644));
  EXPECT_NE(error.find("directory " + dir.string() + " is group-writable (mode 0775"),
            std::string::npos)
      << error;
}

TEST(Trust, WorldWritableGrandparentIsRefused) {  // issue 14.3: a 0777 grandparent
  REQUIRE_ROOT();
  Scratch s;
  auto grandparent = s.dir("open", 0777);
  auto dir = s.dir("open/plugins", 0755);
  auto error = verdict(s.file(dir / "clusterd-x.so", 0644));
  EXPECT_NE(error.find("directory " + grandparent.string() + " is world-writable"),
            std::string::npos)
      << error;
}

TEST(Trust, StickyDirectoryProtectsRootsEntries) {
  REQUIRE_ROOT();
  Scratch s;
  auto sticky = s.dir("tmp", 01777);
  EXPECT_EQ(verdict(s.file(sticky / "clusterd-a.so", 0644)), "");
  auto dir = s.dir("tmp/plugins", 0755);
  EXPECT_EQ(verdict(s.file(dir / "clusterd-b.so", 0644)), "");
  // Not protected: another user's entry, or a second name for a file (a hard link anyone
  // could have made to some root-owned file).
  auto theirs = s.file(sticky / "clusterd-c.so", 0644, kNobody, kNogroup);
  EXPECT_NE(verdict(theirs).find("owned by nobody"), std::string::npos);
  ASSERT_EQ(::link((sticky / "clusterd-a.so").c_str(), (sticky / "clusterd-d.so").c_str()), 0);
  EXPECT_NE(verdict(sticky / "clusterd-d.so").find("has 2 links"), std::string::npos);
}

TEST(Trust, SymlinksAreResolvedAndTheTargetsDirectoriesChecked) {
  REQUIRE_ROOT();
  Scratch s;
  auto plugins = s.dir("plugins", 0755);
  auto theirs = s.dir("home", 0755, kNobody, kNogroup);
  s.file(theirs / "clusterd-x.so", 0644);  // root's file, in nobody's directory
  fs::create_symlink(theirs / "clusterd-x.so", plugins / "clusterd-x.so");
  auto error = verdict(plugins / "clusterd-x.so");
  EXPECT_NE(error.find("directory " + theirs.string() + " is owned by nobody"), std::string::npos)
      << error;
  auto safe = s.dir("safe", 0755);
  s.file(safe / "clusterd-y.so", 0644);
  fs::create_symlink(safe / "clusterd-y.so", plugins / "clusterd-y.so");
  EXPECT_EQ(verdict(plugins / "clusterd-y.so"), "");
}

TEST(Trust, MissingFileSaysSo) {
  auto error = verdict("/nonexistent/clusterd-x.so");
  EXPECT_NE(error.find("/nonexistent/clusterd-x.so: No such file"), std::string::npos) << error;
}

// ---- preflight ----

class Preflight : public ::testing::Test {
 protected:
  void SetUp() override { clusterd::plugin::set_preflight_program(CLUSTERD_BINARY); }
  void TearDown() override { clusterd::plugin::set_preflight_program(""); }
  static fs::path loader_fixture(const std::string &name) {
    return fs::path(CLUSTERD_LOADER_FIXTURE_DIR) / ("clusterd-" + name + ".so");
  }
};

TEST_F(Preflight, CrashingConstructorIsRefusedAndThisProcessSurvives) {
  std::string error;
  EXPECT_FALSE(Module::load(loader_fixture("fx_crash_load"), error));
  EXPECT_NE(error.find("plugin fx_crash_load crashed at load (signal 11)"), std::string::npos)
      << error;
  EXPECT_NE(error.find(loader_fixture("fx_crash_load").string()), std::string::npos) << error;
}

TEST_F(Preflight, HangingConstructorIsKilledAtTheDeadline) {
  auto begin = std::chrono::steady_clock::now();
  auto probe = Module::probe(loader_fixture("fx_hang_load"));
  auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_NE(probe.error.find("plugin fx_hang_load hung at load"), std::string::npos) << probe.error;
  EXPECT_LT(took, std::chrono::milliseconds(clusterd::plugin::kPreflightDeadlineMs + 2000));
  // Cached: asked again, no second child, no second wait.
  begin = std::chrono::steady_clock::now();
  EXPECT_EQ(Module::probe(loader_fixture("fx_hang_load")).error, probe.error);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(500));
}

TEST_F(Preflight, TheAbiGateRunsInTheChild) {
  auto probe = Module::probe(fs::path(CLUSTERD_FIXTURE_PLUGIN_DIR) / "clusterd-fx_wrong_major.so");
  EXPECT_NE(probe.error.find("built for ABI 2."), std::string::npos) << probe.error;
}

TEST_F(Preflight, AHealthyPluginReportsWhatItIs) {
  auto probe = Module::probe(loader_fixture("fx_marker"));
  EXPECT_EQ(probe.error, "");
  EXPECT_EQ(probe.name, "fx_marker");
  EXPECT_EQ(probe.kind, static_cast<std::uint32_t>(CLUSTERD_KIND_STRATEGY));
}

// issue 14.7: a reload finds the same plugins again; each file version is one Module, however
// often it is loaded.
TEST_F(Preflight, OneModulePerFileVersion) {
  std::string error;
  auto first =
      Module::load(fs::path(CLUSTERD_FIXTURE_PLUGIN_DIR) / "clusterd-fx_good_strategy.so", error);
  ASSERT_TRUE(first) << error;
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(
        Module::load(fs::path(CLUSTERD_FIXTURE_PLUGIN_DIR) / "clusterd-fx_good_strategy.so", error),
        first);
}

// issue 14.9: a name that is no plugin's file name loads nothing but reports what is there; a
// library that crashes at load in the path only fails its own preflight.
TEST_F(Preflight, MisspelledNameLoadsNoLibrary) {
  clusterd::plugin::Registry registry({CLUSTERD_LOADER_FIXTURE_DIR});
  std::string error;
  EXPECT_FALSE(registry.find("fx_crash_lod", CLUSTERD_KIND_STRATEGY, error));
  EXPECT_NE(error.find("no plugin 'fx_crash_lod'"), std::string::npos) << error;
}
