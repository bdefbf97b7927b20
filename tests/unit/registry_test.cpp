#include <gtest/gtest.h>

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
