#include <gtest/gtest.h>

#include <filesystem>

#include "build_info.hpp"
#include "plugin/registry.hpp"

using clusterd::plugin::plugin_file_name;

TEST(Registry, LibclusterModuleNamesMapToPluginNames) {
  EXPECT_EQ(plugin_file_name("epmd"), "epmd");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.Epmd"), "epmd");
  EXPECT_EQ(plugin_file_name("Elixir.Cluster.Strategy.LocalEpmd"), "local_epmd");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.ErlangHosts"), "erlang_hosts");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.Gossip"), "gossip");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.Kubernetes"), "kubernetes");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.Kubernetes.DNS"), "kubernetes_dns");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.Kubernetes.DNSSRV"), "kubernetes_dnssrv");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.DNSPoll"), "dns_poll");
  EXPECT_EQ(plugin_file_name("Cluster.Strategy.Rancher"), "rancher");
}

TEST(Registry, MissingPluginNamesWhereItLooked) {
  clusterd::plugin::Registry registry({"/nonexistent/plugins"});
  std::string error;
  EXPECT_FALSE(registry.find("no_such_plugin", CLUSTERD_KIND_STRATEGY, error));
  EXPECT_NE(error.find("clusterd-no_such_plugin.so"), std::string::npos) << error;
  EXPECT_NE(error.find("/nonexistent/plugins"), std::string::npos) << error;
}

TEST(Registry, SearchOrderIsPluginPathThenLocalThenBuiltIn) {
  clusterd::plugin::Registry registry({"/opt/a", "/opt/b"});
  std::vector<std::filesystem::path> expected = {"/opt/a", "/opt/b"};
  if (*CLUSTERD_LOCAL_PLUGIN_DIR)
    expected.emplace_back(CLUSTERD_LOCAL_PLUGIN_DIR);  // /usr/local/...
  expected.push_back(clusterd::plugin::Registry::builtin_dir());
  EXPECT_EQ(registry.directories(), expected);
}

// The ABI gate: each broken library is refused before any of its code runs (or, for a bad
// descriptor, before any instance is made), with a message that says what is wrong.
TEST(AbiGate, BrokenLibrariesAreRefusedWithAReason) {
  const std::filesystem::path dir = CLUSTERD_FIXTURE_PLUGIN_DIR;
  struct Case {
    const char *file, *expected;
  };
  // The fixtures are built against the current minor (wrong_major: 2.MINOR, newer_minor:
  // 1.MINOR+1).
  const std::string minor = std::to_string(CLUSTERD_ABI_MINOR);
  const std::string wrong_major =
      "built for ABI 2." + minor + " (major 2), this clusterd provides ABI 1." + minor;
  const std::string newer_minor = "requires ABI 1." + std::to_string(CLUSTERD_ABI_MINOR + 1) +
                                  " (a newer minor), this clusterd provides ABI 1." + minor;
  for (auto [file, expected] : {
           Case{"clusterd-fx_no_entry.so", "no symbol clusterd_plugin_entry_v1"},
           Case{"clusterd-fx_wrong_major.so", wrong_major.c_str()},
           Case{"clusterd-fx_newer_minor.so", newer_minor.c_str()},
           Case{"clusterd-fx_short_struct.so", "entry struct_size 8 is too small"},
           Case{"clusterd-fx_bad_kind.so", "descriptor has unknown kind 99"},
       }) {
    std::string error;
    EXPECT_FALSE(clusterd::plugin::Module::load(dir / file, error)) << file;
    EXPECT_NE(error.find(expected), std::string::npos) << file << ": " << error;
    EXPECT_NE(error.find(file), std::string::npos) << "the message names the file: " << error;
  }
}

TEST(AbiGate, AHealthyLibraryLoadsWithItsSchema) {
  std::string error;
  auto module = clusterd::plugin::Module::load(
      std::filesystem::path(CLUSTERD_FIXTURE_PLUGIN_DIR) / "clusterd-fx_good_strategy.so", error);
  ASSERT_TRUE(module) << error;
  EXPECT_EQ(module->name(), "fx_good_strategy");
  EXPECT_EQ(module->kind(), static_cast<std::uint32_t>(CLUSTERD_KIND_STRATEGY));
  ASSERT_FALSE(module->options().empty());
  EXPECT_EQ(module->options()[0].key, "nodes");
}

TEST(AbiGate, MissingFileSaysSo) {
  std::string error;
  EXPECT_FALSE(clusterd::plugin::Module::load("/nonexistent/clusterd-x.so", error));
  EXPECT_NE(error.find("/nonexistent"), std::string::npos) << error;
}
