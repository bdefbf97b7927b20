// The host's HTTP(S) client: libcurl's multi interface driven by the daemon's Asio loop.
//
// Everything runs on the one thread that runs the io_context ("the loop"); nothing here blocks
// it (name resolution happens on curl's resolver thread, sockets are non-blocking and watched
// by Asio). With no request in flight the client has no timer and no socket armed, so an idle
// client costs no wake-ups.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::services {

class HttpClient {
 public:
  explicit HttpClient(boost::asio::io_context &io);
  ~HttpClient();  // cancels everything; no callback runs afterwards (not from inside on_data)
  HttpClient(const HttpClient &) = delete;
  HttpClient &operator=(const HttpClient &) = delete;

  struct Request {
    std::string method = "GET";
    std::string url;                   // http:// or https:// only
    std::vector<std::string> headers;  // "Name: value"
    std::string body;
    // Whole request. For streams (on_data set): the longest time without any data (headers
    // or body) before the request fails with CLUSTERD_E_TIMEOUT; no total limit.
    std::chrono::milliseconds timeout{30000};
    bool insecure_skip_verify = false;
    // Empty = unset. A ca_file replaces the system store: only that bundle is trusted.
    std::string ca_file, client_cert_file, client_key_file;
    std::size_t max_body_bytes = 16u << 20;  // buffered bodies only; streams are not capped
    // Non-empty = AWS Signature Version 4 by libcurl ("aws:amz:REGION:SERVICE"); username and
    // password are then the access key id and secret key, otherwise HTTP Basic credentials.
    // Secrets: never logged, never in `error`.
    std::string aws_sigv4, username, password;
    // Set = the body streams here and is not buffered. Return false to abort the request,
    // which then completes with CLUSTERD_E_CANCELLED. May call start() and cancel().
    std::function<bool(std::string_view chunk)> on_data;
  };

  struct Response {
    // CLUSTERD_OK if a complete HTTP response arrived (any HTTP code), else
    // CLUSTERD_E_TIMEOUT / _IO / _CANCELLED / _INVALID_ARG / _GENERIC.
    int status = 0;
    long http_status = 0;              // 0 when no response arrived
    std::vector<std::string> headers;  // of the final response, "Name: value", no CRLF
    std::string body;                  // "" for streams
    std::string error;                 // names the URL's host, never headers; "" on success
  };

  using Done = std::function<void(const Response &)>;

  // Returns the request id. `done` runs exactly once on the loop, never inline from start().
  std::uint64_t start(Request request, Done done);
  // After this returns, the request's callbacks never run. Unknown or finished id: no-op.
  // Safe from inside any callback of this client.
  void cancel(std::uint64_t id);
  // Requests whose `done` has not run yet (and that were not cancelled).
  std::size_t active() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace clusterd::services
