// A minimal HTTP/1.1 server for the metrics listener: GET/HEAD of a path, one request per
// connection, answered from a handler on the loop thread. Bounded: a request head of at most
// 8 KiB that must arrive within 10 s, at most 64 connections at once (more are closed). With an
// event feed, GET /events is a server-sent-events stream of it (at most 16 at once; a reader
// more than 64 KiB behind is closed).
#pragma once

#include <boost/asio/io_context.hpp>

#include "metrics/event_feed.hpp"
#include "metrics/request_head.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace clusterd::metrics {

struct Answer {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<Answer(const RequestHead &request)>;
  HttpServer(boost::asio::io_context &io, Handler handler, EventFeed *feed = nullptr);
  ~HttpServer();

  // Listens on "IP:PORT" ("[v6]:PORT"); port 0 picks a free one (see address()).
  bool listen(const std::string &address, std::string &error);
  // The bound address, "IP:PORT".
  const std::string &address() const { return address_; }

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::string address_;
};

}  // namespace clusterd::metrics
