#include "control/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <filesystem>

namespace clusterd::control {
namespace {

using boost::asio::local::stream_protocol;
constexpr std::size_t kMaxRequest = 64 * 1024;
constexpr auto kClientTimeout = std::chrono::seconds(5);

// One client: read a line (bounded in size and time), answer, close.
struct Session : std::enable_shared_from_this<Session> {
  Session(stream_protocol::socket socket, ControlServer::Handler &handler)
      : socket(std::move(socket)),
        timer(this->socket.get_executor()),
        buffer(kMaxRequest),
        handler(handler) {}

  void run() {
    timer.expires_after(kClientTimeout);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code &ec) {
      if (!ec) self->socket.close();
    });
    boost::asio::async_read_until(
        socket, buffer, '\n',
        [self = shared_from_this()](const boost::system::error_code &ec, std::size_t n) {
          std::string line;
          if (!ec) {
            line.assign(boost::asio::buffers_begin(self->buffer.data()),
                        boost::asio::buffers_begin(self->buffer.data()) + n - 1);
            self->response = self->handler(line) + "\n";
          } else {
            self->response = "{\"error\":\"request must be one JSON line of at most 64 KiB\"}\n";
          }
          boost::asio::async_write(self->socket, boost::asio::buffer(self->response),
                                   [self](const boost::system::error_code &, std::size_t) {
                                     self->timer.cancel();
                                     boost::system::error_code ignored;
                                     self->socket.shutdown(stream_protocol::socket::shutdown_both,
                                                           ignored);
                                     self->socket.close(ignored);
                                   });
        });
  }

  stream_protocol::socket socket;
  boost::asio::steady_timer timer;
  boost::asio::streambuf buffer;
  ControlServer::Handler &handler;
  std::string response;
};

}  // namespace

ControlServer::ControlServer(boost::asio::io_context &io, Handler handler)
    : io_(io), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
  close();
}

bool ControlServer::listen(const std::string &path, std::string &error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (fs::exists(path, ec)) {
    std::string probe_response, probe_error;
    if (control_request(path, "{\"cmd\":\"ping\"}", probe_response, probe_error)) {
      error = "control socket " + path + " is in use by another running clusterd";
      return false;
    }
    fs::remove(path, ec);  // stale, from a daemon that died
  }
  try {
    auto acceptor = std::make_unique<stream_protocol::acceptor>(io_);
    acceptor->open();
    acceptor->bind(stream_protocol::endpoint(path));
    acceptor->listen();
    ::chmod(path.c_str(), 0660);
    acceptor_ = std::move(acceptor);
  } catch (const std::exception &e) {
    error = "cannot listen on control socket " + path + ": " + e.what();
    return false;
  }
  path_ = path;
  accept();
  return true;
}

void ControlServer::close() {
  if (!acceptor_) return;
  boost::system::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
  std::error_code fs_ec;
  std::filesystem::remove(path_, fs_ec);
}

void ControlServer::accept() {
  acceptor_->async_accept([this, alive = std::weak_ptr<bool>(alive_)](
                              const boost::system::error_code &ec, stream_protocol::socket socket) {
    auto a = alive.lock();
    if (!a || !acceptor_) return;
    if (!ec) std::make_shared<Session>(std::move(socket), handler_)->run();
    accept();
  });
}

bool control_request(const std::string &path, const std::string &request, std::string &response,
                     std::string &error) {
  try {
    boost::asio::io_context io;
    stream_protocol::socket socket(io);
    socket.connect(stream_protocol::endpoint(path));
    timeval timeout{5, 0};  // a wedged daemon must not hang clusterctl
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::string line = request + "\n";
    boost::asio::write(socket, boost::asio::buffer(line));
    boost::asio::streambuf buffer;
    boost::system::error_code ec;
    boost::asio::read_until(socket, buffer, '\n', ec);
    if (ec && buffer.size() == 0) throw boost::system::system_error(ec);
    response.assign(boost::asio::buffers_begin(buffer.data()),
                    boost::asio::buffers_end(buffer.data()));
    while (!response.empty() && response.back() == '\n') response.pop_back();
    return true;
  } catch (const std::exception &e) {
    error = "cannot talk to clusterd at " + path + ": " + e.what();
    return false;
  }
}

}  // namespace clusterd::control
