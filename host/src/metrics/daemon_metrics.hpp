// The metrics listener's answers: /metrics (the Prometheus exposition of the daemon, its
// topologies and transports, and what plugins export through clusterd.metrics/1), /health, /ready,
// and the status page: / (the page) and /status.json (the status document). /events, the page's
// event stream, is the HttpServer's own.
#pragma once

#include <string>

#include "control/commands.hpp"
#include "metrics/http_server.hpp"

namespace clusterd::metrics {

std::string daemon_text(const control::DaemonView &daemon);
Answer serve(const RequestHead &request, const control::DaemonView &daemon);
// The embedded page (host/src/metrics/status_page.html).
std::string_view status_page();

}  // namespace clusterd::metrics
