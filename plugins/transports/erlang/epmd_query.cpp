#include "epmd_query.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <cerrno>

#include "dist_connection.hpp"
#include "epmd.hpp"         // plugins/common/epmd
#include "epmd_client.hpp"  // plugins/common/epmd: hosts_file_lookup

namespace clusterd::erlang {

namespace {

using Kind = DistError::Kind;

DistError io_failure(int err, const std::string &what) {
  if (err == ECANCELED) return DistError(Kind::kCancelled, "cancelled");
  if (err == ETIMEDOUT) return DistError(Kind::kTimeout, what + ": timed out");
  if (err == ECONNREFUSED)
    return DistError(Kind::kRefused, what + ": connection refused (is epmd running?)");
  return DistError(Kind::kIo, what + ": " + error_text(err));
}

// Sends `request` and feeds the reply to `parse` (which returns epmd::Parse) until it is
// complete; EPMD closes the connection after these replies.
template <class ParseFn>
void query(const sockaddr_in &epmd, const std::string &request, const std::string &what,
           const Canceller &cancel, std::chrono::milliseconds timeout, ParseFn &&parse) {
  const Deadline deadline = deadline_after(timeout);
  int fd = -1;
  if (const int err = tcp_connect(epmd, cancel, deadline, fd); err != 0)
    throw io_failure(err, what);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (const int err = send_all(fd, request.data(), request.size(), cancel, deadline); err != 0)
    throw io_failure(err, what);
  std::string reply;
  char buf[4096];
  for (;;) {
    std::size_t got = 0;
    if (const int err = recv_some(fd, buf, sizeof buf, got, cancel, deadline); err != 0)
      throw io_failure(err, what);
    reply.append(buf, got);
    if (reply.size() > epmd::kMaxReplyBytes)
      throw DistError(Kind::kProtocol, what + ": reply larger than " +
                                           std::to_string(epmd::kMaxReplyBytes) + " bytes");
    std::string error;
    switch (parse(std::string_view(reply), got == 0, error)) {
      case epmd::Parse::complete:
        return;
      case epmd::Parse::error:
        throw DistError(Kind::kProtocol, what + ": malformed reply: " + error);
      case epmd::Parse::need_more:
        if (got == 0) throw DistError(Kind::kProtocol, what + ": truncated reply");
        break;
    }
  }
}

}  // namespace

EpmdPort epmd_port_please(const sockaddr_in &epmd, const std::string &alive,
                          const Canceller &cancel, std::chrono::milliseconds timeout) {
  epmd::PortReply reply;
  query(epmd, epmd::port_please2_request(alive),
        "asking epmd at " + endpoint_text(epmd) + " for '" + alive + "'", cancel, timeout,
        [&](std::string_view bytes, bool eof, std::string &error) {
          return epmd::parse_port2(bytes, eof, reply, error);
        });
  EpmdPort out;
  out.registered = reply.registered;
  out.port = reply.port;
  out.hidden = reply.node_type == 72;  // 'H'
  return out;
}

std::vector<EpmdEntry> epmd_names(const sockaddr_in &epmd, const Canceller &cancel,
                                  std::chrono::milliseconds timeout) {
  std::vector<epmd::Registered> names;
  query(epmd, epmd::names_request(), "asking epmd at " + endpoint_text(epmd) + " for its names",
        cancel, timeout, [&](std::string_view bytes, bool eof, std::string &error) {
          names.clear();
          return epmd::parse_names(bytes, eof, names, error);
        });
  std::vector<EpmdEntry> out;
  out.reserve(names.size());
  for (auto &n : names) out.push_back(EpmdEntry{std::move(n.name), n.port});
  return out;
}

std::string resolve_ipv4(const std::string &host, in_addr &out) {
  if (inet_pton(AF_INET, host.c_str(), &out) == 1) return {};
  if (std::string text, error; clusterd::read_file("/etc/hosts", text, error)) {
    for (const auto &address : epmd::hosts_file_lookup(text, host))
      if (inet_pton(AF_INET, address.c_str(), &out) == 1) return {};
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    if (result != nullptr) freeaddrinfo(result);
    return "cannot resolve host '" + host + "' to an IPv4 address: " +
           (rc == EAI_SYSTEM ? error_text(errno) : std::string(gai_strerror(rc)));
  }
  out = reinterpret_cast<const sockaddr_in *>(result->ai_addr)->sin_addr;
  freeaddrinfo(result);
  return {};
}

}  // namespace clusterd::erlang
