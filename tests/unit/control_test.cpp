// The control socket's access rules and the config keys behind them (host/src/control).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "control/commands.hpp"
#include "control/control_server.hpp"

namespace clusterd::control {
namespace {

Peer peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  return {1234, uid, gid, std::move(groups)};
}

TEST(AccessPolicy, WithoutListsEveryoneMayDoEverything) {
  EXPECT_EQ(AccessPolicy{}.of(peer(1000, 1000)), Access::all);
}

TEST(AccessPolicy, ListsSeparateActingFromReading) {
  AccessPolicy policy{{1001}, {1002}, {2001}, {2002}};
  EXPECT_EQ(policy.of(peer(1001, 100)), Access::all);
  EXPECT_EQ(policy.of(peer(1002, 100)), Access::read);
  EXPECT_EQ(policy.of(peer(1003, 2001)), Access::all);             // primary group
  EXPECT_EQ(policy.of(peer(1003, 100, {7, 2002})), Access::read);  // supplementary group
  EXPECT_EQ(policy.of(peer(1003, 100, {7})), Access::none);
  EXPECT_EQ(policy.of(peer(0, 0)), Access::all);              // root always
  EXPECT_EQ(policy.of(peer(::geteuid(), 100)), Access::all);  // the daemon's own uid always
  EXPECT_EQ(policy.of(Peer{}), Access::none);                 // credentials unknown
}

config::ParseResult parse(const std::string &clusterd_table) {
  return config::parse("[clusterd]\n" + clusterd_table +
                           "\n[transports.t]\nplugin = \"command\"\n"
                           "[topologies.x]\nstrategy = \"epmd\"\n",
                       "test.toml");
}

TEST(AccessPolicy, ConfigResolvesNamesAndNumbers) {
  auto parsed =
      parse("control_allow_uids = [\"root\", \"1001\"]\ncontrol_read_groups = [\"root\", \"42\"]");
  ASSERT_TRUE(parsed.problems.empty()) << parsed.problems.front().str();
  auto policy = access_policy(parsed.config->settings);
  EXPECT_EQ(policy.uids, (std::vector<uid_t>{0, 1001}));
  EXPECT_EQ(policy.read_groups, (std::vector<gid_t>{0, 42}));
  EXPECT_TRUE(policy.read_uids.empty() && policy.groups.empty());
}

TEST(AccessPolicy, UnknownNamesAreProblemsAtTheirPosition) {
  auto parsed = parse("control_read_uids = [\"no-such-user-q\"]");
  ASSERT_EQ(parsed.problems.size(), 1u);
  EXPECT_EQ(parsed.problems[0].str(),
            "test.toml:2:21: clusterd.control_read_uids: no user \"no-such-user-q\"");
}

TEST(ControlSocketPath, OnlyAbsentPathsAndSocketsWillDo) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("control-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto file = (dir / "file").string(), sock = (dir / "s.sock").string();
  std::ofstream(file) << "keep\n";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, sock.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
  ::close(fd);
  EXPECT_EQ(config::not_a_socket((dir / "absent").string()), "");
  EXPECT_EQ(config::not_a_socket(sock), "");
  EXPECT_EQ(config::not_a_socket(file),
            "control socket " + file +
                " exists and is a regular file; only a stale socket is replaced (remove it, or "
                "choose another path)");
  EXPECT_NE(config::not_a_socket(dir.string()).find("is a directory"), std::string::npos);
  auto parsed = parse("control_socket = \"" + file + "\"");
  ASSERT_EQ(parsed.problems.size(), 1u);
  EXPECT_EQ(parsed.problems[0].key, "clusterd.control_socket");
  EXPECT_EQ(parsed.problems[0].where, "test.toml:2:18");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clusterd::control
