// The control socket: a Unix stream socket answering one JSON request line with one JSON
// response line (docs/control-protocol.md). Small, bounded, and never blocks the loop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <functional>
#include <memory>
#include <string>

namespace clusterd::control {

class ControlServer {
 public:
  using Handler = std::function<std::string(const std::string &request_line)>;
  ControlServer(boost::asio::io_context &io, Handler handler);
  ~ControlServer();

  // Binds `path` (creating its directory; replacing a stale socket, refusing a live one).
  bool listen(const std::string &path, std::string &error);
  void close();
  const std::string &path() const { return path_; }

 private:
  void accept();

  boost::asio::io_context &io_;
  Handler handler_;
  std::string path_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Client side, for clusterctl: sends `request` and returns the response line.
bool control_request(const std::string &path, const std::string &request, std::string &response,
                     std::string &error);

}  // namespace clusterd::control
