// The node-name rule (clusterd/node_name.h), the SDK backoff (clusterd/plugin.hpp) against the
// reconciler's own formula, and the host's refusal of bad names at the strategy sink.
#include <gtest/gtest.h>

#include <clusterd/plugin.hpp>

#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <random>
#include <set>

#include "metrics/plugin_metrics.hpp"
#include "plugin/instance.hpp"
#include "plugin/module.hpp"
#include "reconcile/reconciler.hpp"

using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

// ---- the rule ----------------------------------------------------------------------------

struct Accepted {
  std::string node;
  std::string name, host;
  std::uint32_t port;  // 0: none
  std::uint32_t kind;
};

TEST(NodeNameRule, AcceptsErlangShortLongAndPartisanNames) {
  const std::string longest = std::string(253, 'a') + "@h";  // 255 bytes
  for (const Accepted &c : std::vector<Accepted>{
           {"a@b", "a", "b", 0, CLUSTERD_NODE_HOST_SHORT},
           {"app@localhost", "app", "localhost", 0, CLUSTERD_NODE_HOST_SHORT},
           {"A_b-9@host-1", "A_b-9", "host-1", 0, CLUSTERD_NODE_HOST_SHORT},
           {"a@123", "a", "123", 0, CLUSTERD_NODE_HOST_SHORT},
           {"nonode@nohost", "nonode", "nohost", 0, CLUSTERD_NODE_HOST_SHORT},
           {"app@host.example.com", "app", "host.example.com", 0, CLUSTERD_NODE_HOST_DOTTED},
           {"app@10-0-0-1.ns.pod", "app", "10-0-0-1.ns.pod", 0, CLUSTERD_NODE_HOST_DOTTED},
           {"app@10.0.0.1", "app", "10.0.0.1", 0, CLUSTERD_NODE_HOST_IPV4},
           {"app@0.0.0.0", "app", "0.0.0.0", 0, CLUSTERD_NODE_HOST_IPV4},
           {"web1@198.18.0.1:9200", "web1", "198.18.0.1", 9200, CLUSTERD_NODE_HOST_IPV4},
           {"web1@host.example:1", "web1", "host.example", 1, CLUSTERD_NODE_HOST_DOTTED},
           {"web1@h:65535", "web1", "h", 65535, CLUSTERD_NODE_HOST_SHORT},
           {"a@::1", "a", "::1", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@::", "a", "::", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@::1:80", "a", "::1:80", 0, CLUSTERD_NODE_HOST_IPV6},  // no port: all address
           {"a@fe80::1:2", "a", "fe80::1:2", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@1:2:3:4:5:6:7:8", "a", "1:2:3:4:5:6:7:8", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@1::", "a", "1::", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@::ffff:192.0.2.1", "a", "::ffff:192.0.2.1", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@[::1]", "a", "::1", 0, CLUSTERD_NODE_HOST_IPV6},
           {"a@[::1]:9200", "a", "::1", 9200, CLUSTERD_NODE_HOST_IPV6},
           {"a@[2001:DB8::1]:65535", "a", "2001:DB8::1", 65535, CLUSTERD_NODE_HOST_IPV6},
           {longest, std::string(253, 'a'), "h", 0, CLUSTERD_NODE_HOST_SHORT},
       }) {
    clusterd_node_name_t parts{};
    ASSERT_EQ(clusterd_node_name_parse(c.node.data(), c.node.size(), &parts), CLUSTERD_NODE_NAME_OK)
        << c.node;
    EXPECT_EQ(parts.struct_size, sizeof parts);
    EXPECT_EQ(parts.host_kind, c.kind) << c.node;
    EXPECT_EQ(parts.port, c.port) << c.node;
    auto parsed = clusterd::parse_node_name(c.node);
    ASSERT_TRUE(parsed) << c.node;
    EXPECT_EQ(parsed->name, c.name) << c.node;
    EXPECT_EQ(parsed->host, c.host) << c.node;
    EXPECT_EQ(parsed->port.value_or(0), c.port) << c.node;
    EXPECT_TRUE(clusterd::valid_node_name(c.node)) << c.node;
    EXPECT_STREQ(clusterd::node_name_error(c.node), "") << c.node;
    EXPECT_EQ(clusterd_node_name_valid(c.node.c_str()), 1) << c.node;
  }
}

TEST(NodeNameRule, RefusesWithTheReason) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"", CLUSTERD_NODE_NAME_E_LENGTH},
      {std::string(254, 'a') + "@h", CLUSTERD_NODE_NAME_E_LENGTH},  // 256 bytes
      {"a@" + std::string(300, 'h'), CLUSTERD_NODE_NAME_E_LENGTH},
      {"ab", CLUSTERD_NODE_NAME_E_NO_AT},
      {"a b", CLUSTERD_NODE_NAME_E_NO_AT},
      {"@host", CLUSTERD_NODE_NAME_E_NAME},
      {"a b@h", CLUSTERD_NODE_NAME_E_NAME},    // whitespace
      {"a\t@h", CLUSTERD_NODE_NAME_E_NAME},    // control
      {"a\x01@h", CLUSTERD_NODE_NAME_E_NAME},  // control
      {std::string("a\0b@h", 5), CLUSTERD_NODE_NAME_E_NAME},
      {"a.b@h", CLUSTERD_NODE_NAME_E_NAME},        // net_kernel refuses dots in the name
      {"a+b@h", CLUSTERD_NODE_NAME_E_NAME},        // and '+'
      {"\xce\xbb@h", CLUSTERD_NODE_NAME_E_NAME},   // UTF-8 lambda
      {"\xff@h", CLUSTERD_NODE_NAME_E_NAME},       // not UTF-8
      {"a@b@c", CLUSTERD_NODE_NAME_E_SECOND_AT},   // a second '@'
      {"a@", CLUSTERD_NODE_NAME_E_HOST},           // empty host
      {"a@h st", CLUSTERD_NODE_NAME_E_HOST},       // whitespace
      {"a@host\n", CLUSTERD_NODE_NAME_E_HOST},     // control
      {"a@h\x7f", CLUSTERD_NODE_NAME_E_HOST},      // DEL
      {"a@h\xce\xbb", CLUSTERD_NODE_NAME_E_HOST},  // UTF-8 host
      {"a@h/x", CLUSTERD_NODE_NAME_E_HOST},        // not a hostname byte
      {"a@b..c", CLUSTERD_NODE_NAME_E_HOST},       // empty label
      {"a@.b", CLUSTERD_NODE_NAME_E_HOST},         // empty label
      {"a@b.", CLUSTERD_NODE_NAME_E_HOST},         // empty (root) label
      {"a@1.2.3.400", CLUSTERD_NODE_NAME_E_HOST},  // digits and dots, not IPv4
      {"a@01.2.3.4", CLUSTERD_NODE_NAME_E_HOST},   // leading zero
      {"a@1.2.3", CLUSTERD_NODE_NAME_E_HOST},      // three parts
      {"a@:80", CLUSTERD_NODE_NAME_E_HOST},        // no host before the port
      {"a@[::1]x", CLUSTERD_NODE_NAME_E_HOST},     // junk after the bracket
      {"a@h:", CLUSTERD_NODE_NAME_E_PORT},         // empty port
      {"a@h:0", CLUSTERD_NODE_NAME_E_PORT},        // port 0
      {"a@h:080", CLUSTERD_NODE_NAME_E_PORT},      // leading zero
      {"a@h:65536", CLUSTERD_NODE_NAME_E_PORT},    // too large
      {"a@h:123456", CLUSTERD_NODE_NAME_E_PORT},   // too long
      {"a@h:12a", CLUSTERD_NODE_NAME_E_PORT},      // not decimal
      {"a@[::1]:", CLUSTERD_NODE_NAME_E_PORT},     // empty port after brackets
      {"a@[::1", CLUSTERD_NODE_NAME_E_IPV6},       // unclosed
      {"a@[]", CLUSTERD_NODE_NAME_E_IPV6},         // empty
      {"a@[1.2.3.4]", CLUSTERD_NODE_NAME_E_IPV6},  // brackets are for IPv6
      {"a@[host]:80", CLUSTERD_NODE_NAME_E_IPV6},  // brackets are for IPv6
      {"a@h:1:2", CLUSTERD_NODE_NAME_E_IPV6},      // two colons: must be IPv6
      {"a@::1%eth0", CLUSTERD_NODE_NAME_E_IPV6},   // zone
      {"a@1:2:3:4:5:6:7:8:9", CLUSTERD_NODE_NAME_E_IPV6},
      {"a@1:2:3:4:5:6:7", CLUSTERD_NODE_NAME_E_IPV6},  // too few groups, no '::'
      {"a@1::2::3", CLUSTERD_NODE_NAME_E_IPV6},        // two '::'
      {"a@12345::1", CLUSTERD_NODE_NAME_E_IPV6},       // group too long
      {"a@::g", CLUSTERD_NODE_NAME_E_IPV6},            // not hex
      {"a@1:::2", CLUSTERD_NODE_NAME_E_IPV6},
      {"a@1:2:", CLUSTERD_NODE_NAME_E_IPV6},         // trailing single colon
      {"a@::1.2.3.4:5", CLUSTERD_NODE_NAME_E_IPV6},  // IPv4 tail not last
  };
  for (const auto &[node, code] : cases) {
    EXPECT_EQ(clusterd_node_name_parse(node.data(), node.size(), nullptr), code) << node;
    EXPECT_FALSE(clusterd::valid_node_name(node)) << node;
    EXPECT_FALSE(clusterd::parse_node_name(node)) << node;
    EXPECT_STRNE(clusterd::node_name_error(node), "") << node;
  }
  EXPECT_EQ(clusterd_node_name_valid(nullptr), 0);
  EXPECT_EQ(clusterd_node_name_parse(nullptr, 3, nullptr), CLUSTERD_NODE_NAME_E_LENGTH);
  // A NUL-terminated string that goes on past the limit is refused without reading it all.
  EXPECT_EQ(clusterd_node_name_valid((std::string(300, 'a') + "@h").c_str()), 0);
}

TEST(NodeNameRule, ReadsOnlyTheGivenLength) {
  const char text[] = "a@host:9200 and more";
  clusterd_node_name_t parts{};
  ASSERT_EQ(clusterd_node_name_parse(text, 11, &parts), CLUSTERD_NODE_NAME_OK);
  EXPECT_EQ(parts.port, 9200u);
  EXPECT_EQ(clusterd::parse_node_name("a@[::1]:1")->address_host(), "[::1]");
  EXPECT_EQ(clusterd::parse_node_name("a@h:1")->address_host(), "h");
}

// ---- backoff -----------------------------------------------------------------------------

// The formula, written out: exponential from `initial`, capped, uniform in [d/2, d].
milliseconds expected_delay(milliseconds initial, milliseconds max, unsigned attempts,
                            std::mt19937_64 &random) {
  std::int64_t full = initial.count();
  for (unsigned i = 1; i < attempts; ++i) full = std::min<std::int64_t>(full * 2, max.count());
  full = std::min<std::int64_t>(full, max.count());
  return milliseconds(std::uniform_int_distribution<std::int64_t>(full / 2, full)(random));
}

TEST(Backoff, FollowsTheFormulaExactly) {
  for (std::uint64_t seed : {1u, 42u, 4711u}) {
    clusterd::Backoff backoff(500ms, 30s, seed);
    std::mt19937_64 random(seed);
    for (unsigned attempt = 1; attempt <= 12; ++attempt)
      EXPECT_EQ(backoff.next(), expected_delay(500ms, 30s, attempt, random)) << attempt;
    EXPECT_EQ(backoff.attempts(), 12u);
  }
}

// The reconciler's backoff is the SDK's: the same delays from the same seed.
struct NoActions : clusterd::reconcile::Link, clusterd::reconcile::Runtime {
  clusterd::reconcile::ConnectedSet set;
  const clusterd::reconcile::ConnectedSet &connected() const override { return set; }
  bool connect(clusterd::reconcile::Reconciler &, std::uint64_t, const std::string &,
               std::string &) override {
    return true;
  }
  bool disconnect(clusterd::reconcile::Reconciler &, std::uint64_t, const std::string &,
                  std::string &) override {
    return true;
  }
  void cancel(std::uint64_t) override {}
  void wake_at(std::optional<clusterd::reconcile::TimePoint>) override {}
  void request_step() override {}
  void connecting(const std::string &) override {}
  void connected(const std::string &) override {}
  void connect_failed(const std::string &, const std::string &, unsigned, milliseconds) override {}
  void disconnecting(const std::string &) override {}
  void disconnected(const std::string &, bool, const std::string &) override {}
};

TEST(Backoff, MatchesTheReconcilerDelayForDelay) {
  clusterd::reconcile::Policy policy;
  policy.backoff_initial = 300ms;
  policy.backoff_max = 7s;
  NoActions actions;
  clusterd::reconcile::Reconciler reconciler(policy, actions, actions, 99);
  std::mt19937_64 random(99);
  // The reconciler keeps attempts per node and shares one engine: replay that pattern.
  for (unsigned attempts : {1u, 2u, 1u, 5u, 9u, 30u, 0u, 3u, 1000u})
    EXPECT_EQ(reconciler.backoff(attempts),
              clusterd::backoff_delay(policy.backoff_initial, policy.backoff_max, attempts, random))
        << attempts;
}

TEST(Backoff, StaysWithinHalfToFullAndResets) {
  clusterd::Backoff backoff(100ms, 5s, 7);
  for (int round = 0; round < 50; ++round) {
    std::int64_t full = 100;
    for (unsigned attempt = 1; attempt <= 10; ++attempt) {
      const auto d = backoff.next().count();
      EXPECT_GE(d, full / 2) << attempt;
      EXPECT_LE(d, full) << attempt;
      full = std::min<std::int64_t>(full * 2, 5000);
    }
    backoff.reset();
    EXPECT_EQ(backoff.attempts(), 0u);
  }
}

TEST(Backoff, NeverOverflowsAndSpreadsAcrossSeeds) {
  clusterd::Backoff huge(1ms, milliseconds::max(), 3);
  for (int i = 0; i < 200; ++i) EXPECT_GE(huge.next().count(), 0);
  std::set<std::int64_t> firsts;
  for (std::uint64_t seed = 0; seed < 20; ++seed)
    firsts.insert(clusterd::Backoff(1s, 1s, seed).next().count());
  EXPECT_GT(firsts.size(), 10u) << "jitter must differ between processes";
  clusterd::Backoff a(1s, 60s, 5), b(1s, 60s, 5);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next(), b.next());
}

// ---- the host refuses bad names at the strategy sink ---------------------------------------

struct RecordingTopology : clusterd::plugin::StrategyEvents {
  std::vector<std::vector<std::string>> rounds;
  void on_nodes(std::vector<std::string> nodes) override { rounds.push_back(std::move(nodes)); }
  void on_node_seen(std::string) override {}
  void on_node_lost(std::string) override {}
  void on_discovery_failed(std::string) override {}
  std::optional<std::string> local_node() override { return std::nullopt; }
};

TEST(StrategySink, RefusesCountsAndEscapesInvalidNames) {
  std::string error;
  auto module = clusterd::plugin::Module::load(
      std::filesystem::path(CLUSTERD_FIXTURE_PLUGIN_DIR) / "clusterd-fx_good_strategy.so", error);
  ASSERT_TRUE(module) << error;
  boost::asio::io_context io;
  clusterd::plugin::HostServices services(io);
  RecordingTopology topology;
  auto instance =
      clusterd::plugin::Instance::create(services, module, "topology t", &topology, nullptr, error);
  ASSERT_TRUE(instance) << error;
  auto values = std::make_unique<clusterd::config::OptionValues>();
  auto &nodes = values->values()["nodes"];
  nodes.type = CLUSTERD_OPT_STRING_LIST;
  nodes.set = true;
  nodes.list = {"good@127.0.0.1", "bad name@h", "x\x01\xff@h\"\\",
                "b@[::1]:9200",   "nohost",     std::string(400, 'n') + "@h"};
  ASSERT_TRUE(instance->init(std::move(values))) << instance->error();
  ASSERT_TRUE(instance->start()) << instance->error();  // reports at once, from start()

  ASSERT_EQ(topology.rounds.size(), 1u);
  EXPECT_EQ(topology.rounds[0], (std::vector<std::string>{"good@127.0.0.1", "b@[::1]:9200"}));
  const auto &refused = instance->refused_names();
  EXPECT_EQ(refused.count, 4u);
  ASSERT_EQ(refused.recent.size(), 4u);
  EXPECT_EQ(refused.recent[0], "bad name@h");
  EXPECT_EQ(refused.recent[1], "x\\x01\\xff@h\\\"\\\\");  // bytes as \xNN, quote and \ escaped
  EXPECT_EQ(refused.recent[2], "nohost");
  EXPECT_EQ(refused.recent[3], std::string(96, 'n') + "...");  // bounded

  clusterd::metrics::Families families;
  instance->metrics().collect(families, {{"topology", "t"}});
  ASSERT_TRUE(families.count("clusterd_refused_node_names_total"));
  EXPECT_EQ(families["clusterd_refused_node_names_total"].samples.at(0).second, 4.0);

  // The same names again: counted again, the recent list stays distinct and bounded.
  ASSERT_EQ(instance->refresh(error), clusterd::plugin::Instance::Call::ok) << error;
  EXPECT_EQ(instance->refused_names().count, 8u);
  EXPECT_EQ(instance->refused_names().recent.size(), 4u);
  EXPECT_EQ(topology.rounds.size(), 2u);
  instance->stop();
}

}  // namespace
