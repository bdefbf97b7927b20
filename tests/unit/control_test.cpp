// The control socket's access rules and the config keys behind them (host/src/control), and
// a session handing its socket over to the plugin (Session::detach, ABI 1.6).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
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

// A target that detaches its session from inside its first line (as partisan's "open" does),
// after queueing a line first if `send_first`.
class DetachingTarget : public SessionTarget {
 public:
  explicit DetachingTarget(bool detach, bool send_first = false)
      : detach_(detach), send_first_(send_first) {}
  void session_opened(const std::shared_ptr<Session> &s) override { session = s; }
  bool session_line(std::uint64_t, const std::string &, std::string &) override {
    auto s = session.lock();
    if (send_first_) s->send(R"({"ok":true})");
    status = detach_ ? s->detach(fd, unread) : CLUSTERD_OK;
    lines++;
    return true;
  }
  void session_over(std::uint64_t) override { over = true; }
  bool read_only(std::string_view) const override { return false; }

  std::weak_ptr<Session> session;
  clusterd_status_t status = CLUSTERD_E_GENERIC;
  int fd = -1, lines = 0;
  std::string unread;
  bool over = false;

 private:
  bool detach_, send_first_;
};

// A control server on a fresh socket routing every first line to `target`, and a connected
// client that has written `request`.
struct DetachFixture {
  explicit DetachFixture(std::shared_ptr<DetachingTarget> t, const std::string &request)
      : target(std::move(t)), server(io, [this](const Request &) {
          Reply reply;
          reply.target = target;
          reply.read_only = false;
          reply.what = "test";
          return reply;
        }) {
    namespace fs = std::filesystem;
    dir = fs::temp_directory_path() / ("control-detach-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto path = (dir / "c.sock").string();
    std::string error;
    EXPECT_TRUE(server.listen(path, error)) << error;
    client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
    EXPECT_EQ(::send(client, request.data(), request.size(), 0),
              static_cast<ssize_t>(request.size()));
  }
  ~DetachFixture() {
    ::close(client);
    if (target->fd >= 0) ::close(target->fd);
    server.close();
    std::filesystem::remove_all(dir);
  }
  // Runs the loop until `done` (at most 5 s).
  template <class Done>
  bool run_until(Done done) {
    for (int i = 0; i < 500 && !done(); ++i) io.run_for(std::chrono::milliseconds(10));
    return done();
  }

  boost::asio::io_context io;
  std::shared_ptr<DetachingTarget> target;
  ControlServer server;
  std::filesystem::path dir;
  int client = -1;
};

TEST(ControlDetach, HandsTheSocketAndTheBytesPastTheLineOver) {
  DetachFixture f(std::make_shared<DetachingTarget>(true),
                  "{\"cmd\":\"open\",\"transport\":\"t\"}\n\x01\x02frames");
  ASSERT_TRUE(f.run_until([&] { return f.target->lines > 0; }));
  EXPECT_EQ(f.target->status, CLUSTERD_OK);
  EXPECT_EQ(f.target->unread, "\x01\x02frames");
  ASSERT_GE(f.target->fd, 0);
  EXPECT_TRUE(::fcntl(f.target->fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(f.target->fd, F_GETFD) & FD_CLOEXEC);
  // session_over follows, the host writes nothing more and no longer sends.
  EXPECT_TRUE(f.run_until([&] { return f.target->over; }));
  auto session = f.target->session.lock();
  if (session) {
    EXPECT_EQ(session->send("{}"), CLUSTERD_E_NOT_FOUND);
  }
  // The socket is the client's connection, open, with nothing from the host on it.
  ASSERT_EQ(::send(f.target->fd, "hi", 2, 0), 2);
  char buffer[16] = {};
  EXPECT_EQ(::recv(f.client, buffer, sizeof buffer, 0), 2);
  EXPECT_EQ(std::string(buffer, 2), "hi");
}

TEST(ControlDetach, OnlyFromInsideTheLineAndWithNothingQueued) {
  {
    DetachFixture f(std::make_shared<DetachingTarget>(false), "{\"cmd\":\"x\"}\n");
    ASSERT_TRUE(f.run_until([&] { return f.target->lines > 0; }));
    auto session = f.target->session.lock();
    ASSERT_TRUE(session);
    int fd = -1;
    std::string unread;
    EXPECT_EQ(session->detach(fd, unread), CLUSTERD_E_INVALID_ARG);  // a read may be running
    EXPECT_EQ(fd, -1);
  }
  {
    DetachFixture f(std::make_shared<DetachingTarget>(true, true), "{\"cmd\":\"x\"}\n");
    ASSERT_TRUE(f.run_until([&] { return f.target->lines > 0; }));
    EXPECT_EQ(f.target->status, CLUSTERD_E_AGAIN);  // its line is queued for the client
    EXPECT_EQ(f.target->fd, -1);
    char buffer[64] = {};
    ssize_t got = 0;
    ASSERT_TRUE(f.run_until([&] {
      if (got <= 0) got = ::recv(f.client, buffer, sizeof buffer - 1, MSG_DONTWAIT);
      return got > 0;
    }));
    EXPECT_EQ(std::string(buffer), "{\"ok\":true}\n");  // the session goes on as JSON lines
  }
}

}  // namespace
}  // namespace clusterd::control
