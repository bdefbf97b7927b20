#include "plugin/host_table.hpp"

#include <boost/asio/post.hpp>

#include <cstring>
#include <exception>

#include "build_info.hpp"
#include "log/log.hpp"
#include "plugin/instance.hpp"

namespace clusterd::plugin {
namespace {

std::string text(const char *s) {
  return s ? std::string(s) : std::string();
}

std::vector<std::string> strings(const char *const *items, uint32_t count) {
  std::vector<std::string> out;
  if (!items) return out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i)
    if (items[i]) out.emplace_back(items[i]);
  return out;
}

// A refused node name as it may be shown in logs and the status: printable ASCII as it is,
// '\\' and '"' escaped, any other byte as \xNN, and at most kMaxShownName bytes of the name.
constexpr std::size_t kMaxShownName = 96;
constexpr std::size_t kMaxLoggedRefusals = 32;  // distinct names logged per instance

std::string escaped(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < name.size() && i < kMaxShownName; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (name.size() > kMaxShownName) out += "...";
  return out;
}

}  // namespace

// A friend of Instance: every function here starts from host->host_data.
struct Bridge {
  static Instance *self(const clusterd_host_t *host) {
    return host ? static_cast<Instance *>(host->host_data) : nullptr;
  }
  // An instance that may start new work right now.
  static Instance *accepting(const clusterd_host_t *host) {
    auto *instance = self(host);
    return instance && instance->live() ? instance : nullptr;
  }

  // Runs a plugin callback for a registration that is still current.
  template <typename Call>
  static void deliver(const std::weak_ptr<Instance> &weak, const char *what, Call &&call) {
    auto instance = weak.lock();
    if (!instance || !instance->live()) return;
    instance->guarded(what, call);
  }

  // ---- core ----
  // Every plugin's log line: rate-limited here, escaped by the sink (log/log.hpp).
  static void CLUSTERD_ABI log(const clusterd_host_t *host, int32_t level, const char *message) {
    auto *instance = self(host);
    if (!instance) return;
    const std::string_view text = message ? message : "";
    if (log::admit_plugin_message(instance->services_.io, instance->label(), level, text))
      instance->log(level, text);
  }

  static clusterd_status_t CLUSTERD_ABI post(const clusterd_host_t *host, clusterd_task_fn fn,
                                             void *user_data) {
    auto *instance = self(host);
    if (!instance || !fn) return CLUSTERD_E_INVALID_ARG;
    if (!instance->live()) return CLUSTERD_E_STATE;
    boost::asio::post(instance->services_.io, [weak = instance->weak_from_this(), fn, user_data] {
      deliver(weak, "a posted task", [&] { fn(user_data); });
    });
    return CLUSTERD_OK;
  }

  // ---- clusterd.timer/1 ----
  static clusterd_status_t CLUSTERD_ABI timer_add(const clusterd_host_t *host, uint64_t delay_ms,
                                                  uint64_t period_ms, clusterd_timer_fn fn,
                                                  void *user_data, clusterd_id_t *out_id) {
    auto *instance = accepting(host);
    if (!instance) return self(host) ? CLUSTERD_E_STATE : CLUSTERD_E_INVALID_ARG;
    if (!fn || !out_id) return CLUSTERD_E_INVALID_ARG;
    auto weak = instance->weak_from_this();
    auto id = instance->services_.timers.add(
        std::chrono::milliseconds(delay_ms), std::chrono::milliseconds(period_ms),
        [weak, fn, user_data, periodic = period_ms > 0](std::uint64_t id) {
          if (auto strong = weak.lock(); strong && !periodic) strong->timers_.erase(id);
          deliver(weak, "a timer callback", [&] { fn(user_data, id); });
        });
    instance->timers_.insert(id);
    *out_id = id;
    return CLUSTERD_OK;
  }
  static void CLUSTERD_ABI timer_cancel(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance || !instance->timers_.erase(id)) return;  // only its own timers
    instance->services_.timers.cancel(id);
  }

  // ---- clusterd.fd/1 ----
  static clusterd_status_t CLUSTERD_ABI fd_watch(const clusterd_host_t *host, int fd,
                                                 uint32_t events, clusterd_fd_fn fn,
                                                 void *user_data, clusterd_id_t *out_id) {
    auto *instance = accepting(host);
    if (!instance) return self(host) ? CLUSTERD_E_STATE : CLUSTERD_E_INVALID_ARG;
    if (!fn || !out_id || fd < 0 || !(events & (CLUSTERD_FD_READ | CLUSTERD_FD_WRITE)))
      return CLUSTERD_E_INVALID_ARG;
    auto weak = instance->weak_from_this();
    auto id = instance->services_.fds.watch(
        fd, events, [weak, fn, user_data](std::uint64_t id, int fd, std::uint32_t ready) {
          deliver(weak, "an fd callback", [&] { fn(user_data, id, fd, ready); });
        });
    if (id == 0) return CLUSTERD_E_INVALID_ARG;
    instance->fds_.insert(id);
    *out_id = id;
    return CLUSTERD_OK;
  }
  static clusterd_status_t CLUSTERD_ABI fd_modify(const clusterd_host_t *host, clusterd_id_t id,
                                                  uint32_t events) {
    auto *instance = accepting(host);
    if (!instance || !instance->fds_.count(id)) return CLUSTERD_E_NOT_FOUND;
    return instance->services_.fds.modify(id, events) ? CLUSTERD_OK : CLUSTERD_E_INVALID_ARG;
  }
  static void CLUSTERD_ABI fd_unwatch(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance || !instance->fds_.erase(id)) return;
    instance->services_.fds.unwatch(id);
  }

  // ---- clusterd.work/1 ----
  static clusterd_status_t CLUSTERD_ABI work_submit(const clusterd_host_t *host,
                                                    clusterd_work_fn work,
                                                    clusterd_work_done_fn done, void *user_data,
                                                    clusterd_id_t *out_id) {
    auto *instance = accepting(host);
    if (!instance) return self(host) ? CLUSTERD_E_STATE : CLUSTERD_E_INVALID_ARG;
    if (!work || !done || !out_id) return CLUSTERD_E_INVALID_ARG;
    auto weak = instance->weak_from_this();
    auto id_box = std::make_shared<std::uint64_t>(0);
    auto id = instance->services_.work.submit(
        [work, user_data] {
          try {
            work(user_data);
          } catch (...) {
            // Contained: the pool thread must survive a throwing plugin.
          }
        },
        [weak, done, user_data, id_box] {
          if (auto strong = weak.lock()) strong->work_.erase(*id_box);
          deliver(weak, "a work completion", [&] { done(user_data, *id_box); });
        });
    *id_box = id;
    instance->work_.insert(id);
    *out_id = id;
    return CLUSTERD_OK;
  }
  static clusterd_status_t CLUSTERD_ABI work_cancel(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance || !instance->work_.count(id)) return CLUSTERD_OK;
    auto result = instance->services_.work.cancel(id);
    if (result == services::WorkPool::Cancel::running) return CLUSTERD_E_AGAIN;  // kept for stop()
    instance->work_.erase(id);
    return CLUSTERD_OK;
  }

  // ---- clusterd.http/1 ----
  static clusterd_status_t CLUSTERD_ABI http_request(const clusterd_host_t *host,
                                                     const clusterd_http_request_t *request,
                                                     clusterd_http_done_fn done, void *user_data,
                                                     clusterd_id_t *out_id) {
    auto *instance = accepting(host);
    if (!instance) return self(host) ? CLUSTERD_E_STATE : CLUSTERD_E_INVALID_ARG;
    if (!request || !done || !out_id || !request->url) return CLUSTERD_E_INVALID_ARG;
    if (!instance->round_started_) instance->round_started_ = std::chrono::steady_clock::now();
    clusterd_http_request_t r;
    std::memset(&r, 0, sizeof r);
    std::memcpy(&r, request, std::min<std::size_t>(request->struct_size, sizeof r));

    services::HttpClient::Request req;
    if (r.method) req.method = r.method;
    req.url = r.url;
    req.headers = strings(r.headers, r.header_count);
    if (r.body) req.body.assign(r.body, r.body_length);
    if (r.timeout_ms) req.timeout = std::chrono::milliseconds(r.timeout_ms);
    req.insecure_skip_verify = r.flags & CLUSTERD_HTTP_INSECURE_SKIP_VERIFY;
    req.ca_file = text(r.ca_file);
    req.client_cert_file = text(r.client_cert_file);
    req.client_key_file = text(r.client_key_file);
    if (r.max_body_bytes) req.max_body_bytes = r.max_body_bytes;
    req.aws_sigv4 = text(r.aws_sigv4);
    req.username = text(r.username);
    req.password = text(r.password);
    auto weak = instance->weak_from_this();
    auto id_box = std::make_shared<std::uint64_t>(0);
    if (r.on_data) {
      req.on_data = [weak, on_data = r.on_data, user_data, id_box](std::string_view chunk) {
        bool go_on = false;
        deliver(weak, "an HTTP data callback",
                [&] { go_on = on_data(user_data, *id_box, chunk.data(), chunk.size()) == 0; });
        return go_on;
      };
    }
    auto id = instance->services_.http->start(
        std::move(req),
        [weak, done, user_data, id_box](const services::HttpClient::Response &response) {
          if (auto strong = weak.lock()) strong->http_.erase(*id_box);
          std::vector<const char *> headers;
          for (const auto &h : response.headers) headers.push_back(h.c_str());
          clusterd_http_response_t c{};
          c.struct_size = sizeof c;
          c.status = response.status;
          c.http_status = static_cast<int32_t>(response.http_status);
          c.header_count = static_cast<uint32_t>(headers.size());
          c.headers = headers.data();
          c.body = response.body.c_str();
          c.body_length = response.body.size();
          c.error = response.error.c_str();
          deliver(weak, "an HTTP completion", [&] { done(user_data, *id_box, &c); });
        });
    *id_box = id;
    instance->http_.insert(id);
    *out_id = id;
    return CLUSTERD_OK;
  }
  static void CLUSTERD_ABI http_cancel(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance || !instance->http_.erase(id)) return;
    if (auto *http = instance->services_.http.if_created()) http->cancel(id);
  }

  // ---- clusterd.dns/1 ----
  static clusterd_status_t CLUSTERD_ABI dns_resolve(const clusterd_host_t *host,
                                                    const clusterd_dns_query_t *query,
                                                    clusterd_dns_done_fn done, void *user_data,
                                                    clusterd_id_t *out_id) {
    auto *instance = accepting(host);
    if (!instance) return self(host) ? CLUSTERD_E_STATE : CLUSTERD_E_INVALID_ARG;
    if (!query || !query->name || !done || !out_id) return CLUSTERD_E_INVALID_ARG;
    if (!instance->round_started_) instance->round_started_ = std::chrono::steady_clock::now();
    clusterd_dns_query_t q;
    std::memset(&q, 0, sizeof q);
    std::memcpy(&q, query, std::min<std::size_t>(query->struct_size, sizeof q));
    services::DnsResolver::Query req;
    req.type = static_cast<int>(q.type);
    req.name = q.name;
    req.server = text(q.server);
    if (q.timeout_ms) req.timeout = std::chrono::milliseconds(q.timeout_ms);
    auto weak = instance->weak_from_this();
    auto id_box = std::make_shared<std::uint64_t>(0);
    auto id = instance->services_.dns->resolve(
        std::move(req),
        [weak, done, user_data, id_box](const services::DnsResolver::Result &result) {
          if (auto strong = weak.lock()) strong->dns_.erase(*id_box);
          std::vector<clusterd_dns_record_t> records;
          for (const auto &r : result.records) {
            clusterd_dns_record_t c{};
            c.struct_size = sizeof c;
            c.type = static_cast<uint32_t>(r.type);
            c.ttl = r.ttl;
            c.priority = r.priority;
            c.weight = r.weight;
            c.port = r.port;
            c.address = r.address.c_str();
            c.target = r.target.c_str();
            records.push_back(c);
          }
          clusterd_dns_result_t c{};
          c.struct_size = sizeof c;
          c.status = result.status;
          c.records = records.data();
          c.record_count = static_cast<uint32_t>(records.size());
          c.error = result.error.c_str();
          deliver(weak, "a DNS completion", [&] { done(user_data, *id_box, &c); });
        });
    *id_box = id;
    instance->dns_.insert(id);
    *out_id = id;
    return CLUSTERD_OK;
  }
  static void CLUSTERD_ABI dns_cancel(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance || !instance->dns_.erase(id)) return;
    if (auto *dns = instance->services_.dns.if_created()) dns->cancel(id);
  }

  // ---- clusterd.process/1 ----
  static clusterd_status_t CLUSTERD_ABI process_spawn(const clusterd_host_t *host,
                                                      const clusterd_process_request_t *request,
                                                      clusterd_process_done_fn done,
                                                      void *user_data, clusterd_id_t *out_id) {
    auto *instance = accepting(host);
    if (!instance) return self(host) ? CLUSTERD_E_STATE : CLUSTERD_E_INVALID_ARG;
    if (!done || !out_id) return CLUSTERD_E_INVALID_ARG;
    try {  // nothing may unwind into the plugin
      services::ProcessService::Request req;
      clusterd_process_output_fn output = nullptr;
      if (auto status = services::ProcessService::from_abi(request, req, output);
          status != CLUSTERD_OK)
        return status;
      auto weak = instance->weak_from_this();
      if (output)
        req.output = [weak, output, user_data](std::uint64_t id, bool is_stdout,
                                               std::string_view data) {
          deliver(weak, "a process output callback", [&] {
            output(user_data, id, is_stdout ? CLUSTERD_PROCESS_STDOUT : CLUSTERD_PROCESS_STDERR,
                   data.data(), data.size());
          });
        };
      auto id = instance->services_.processes.spawn(
          std::move(req), [weak, done, user_data](std::uint64_t id,
                                                  const services::ProcessService::Result &result) {
            if (auto strong = weak.lock()) strong->processes_.erase(id);
            const auto c = services::ProcessService::to_abi(result);
            deliver(weak, "a process completion", [&] { done(user_data, id, &c); });
          });
      instance->processes_.insert(id);
      *out_id = id;
      return CLUSTERD_OK;
    } catch (...) {
      return CLUSTERD_E_NO_MEMORY;
    }
  }
  static void CLUSTERD_ABI process_cancel(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance || !instance->processes_.erase(id)) return;
    instance->services_.processes.cancel(id);
  }

  // ---- clusterd.metrics/1 ----
  static clusterd_status_t CLUSTERD_ABI counter_add(const clusterd_host_t *host, const char *name,
                                                    const char *help, const char *label_name,
                                                    const char *label_value, uint64_t delta) {
    auto *instance = self(host);
    if (!instance) return CLUSTERD_E_INVALID_ARG;
    try {  // nothing may unwind into the plugin
      return instance->metrics_.counter_add(name, help, label_name, label_value, delta);
    } catch (...) {
      return CLUSTERD_E_NO_MEMORY;
    }
  }
  static clusterd_status_t CLUSTERD_ABI gauge_set(const clusterd_host_t *host, const char *name,
                                                  const char *help, const char *label_name,
                                                  const char *label_value, double value) {
    auto *instance = self(host);
    if (!instance) return CLUSTERD_E_INVALID_ARG;
    try {
      return instance->metrics_.gauge_set(name, help, label_name, label_value, value);
    } catch (...) {
      return CLUSTERD_E_NO_MEMORY;
    }
  }

  // ---- clusterd.status/1 ----
  static void CLUSTERD_ABI status_set(const clusterd_host_t *host, const char *key,
                                      const char *value) {
    auto *instance = self(host);
    if (!instance || !key) return;
    if (value)
      instance->details_[key] = value;
    else
      instance->details_.erase(key);
  }

  // ---- clusterd.strategy-sink/1 ----
  static StrategyEvents *strategy(const clusterd_host_t *host) {
    auto *instance = accepting(host);
    return instance ? instance->strategy_events_ : nullptr;
  }
  // Node names are checked here, once, by the SDK's rule (clusterd/node_name.h), so nothing
  // downstream (reconciler, transports, status) ever sees a name no node can have.
  static bool acceptable(const clusterd_host_t *host, std::string_view node) {
    if (clusterd_node_name_parse(node.data(), node.size(), nullptr) == CLUSTERD_NODE_NAME_OK)
      return true;
    if (auto *instance = self(host)) refuse(*instance, node);
    return false;
  }
  // Counts a refused name, keeps it (escaped) for the status, and logs each distinct one once;
  // a strategy that reports garbage in every round must not flood the log.
  static void refuse(Instance &instance, std::string_view node) {
    auto &refused = instance.refused_names_;
    const std::string shown = escaped(node);
    ++refused.count;
    std::erase(refused.recent, shown);
    refused.recent.push_back(shown);
    if (refused.recent.size() > RefusedNames::kRecent) refused.recent.pop_front();
    instance.metrics_.counter_add("refused_node_names_total",
                                  "Node names the strategy reported that break the node-name "
                                  "rule (refused by the host)",
                                  nullptr, nullptr, 1);
    auto &logged = instance.refused_logged_;
    if (logged.count(shown) || logged.size() > kMaxLoggedRefusals) return;
    logged.insert(shown);
    if (logged.size() > kMaxLoggedRefusals) {
      instance.log(CLUSTERD_LOG_WARN,
                   "refused more invalid node names; further ones are only counted");
      return;
    }
    const int code = clusterd_node_name_parse(node.data(), node.size(), nullptr);
    instance.log(CLUSTERD_LOG_WARN,
                 "refused node name \"" + shown +
                     "\" reported by the strategy: " + clusterd_node_name_error(code));
  }
  static void CLUSTERD_ABI set_nodes(const clusterd_host_t *host, const char *const *nodes,
                                     uint32_t count) {
    auto *events = strategy(host);
    if (!events) return;
    auto names = strings(nodes, count);
    std::erase_if(names, [host](const std::string &node) { return !acceptable(host, node); });
    events->on_nodes(std::move(names));
  }
  static void CLUSTERD_ABI node_seen(const clusterd_host_t *host, const char *node) {
    if (auto *events = strategy(host); events && node && acceptable(host, node))
      events->on_node_seen(node);
  }
  static void CLUSTERD_ABI node_lost(const clusterd_host_t *host, const char *node) {
    if (auto *events = strategy(host); events && node && acceptable(host, node))
      events->on_node_lost(node);
  }
  static void CLUSTERD_ABI discovery_failed(const clusterd_host_t *host, const char *reason) {
    if (auto *events = strategy(host))
      events->on_discovery_failed(reason ? reason : "unknown error");
  }
  static const char *CLUSTERD_ABI local_node(const clusterd_host_t *host) {
    auto *instance = self(host);
    if (!instance || !instance->strategy_events_) return nullptr;
    auto name = instance->strategy_events_->local_node();
    if (!name) return nullptr;
    instance->local_node_buffer_ = *name;
    return instance->local_node_buffer_.c_str();
  }

  // ---- clusterd.transport-sink/1 ----
  static TransportEvents *transport(const clusterd_host_t *host) {
    auto *instance = accepting(host);
    return instance ? instance->transport_events_ : nullptr;
  }
  static void CLUSTERD_ABI complete(const clusterd_host_t *host, clusterd_id_t op,
                                    clusterd_status_t status, const char *message) {
    if (auto *events = transport(host)) events->on_complete(op, status, text(message));
  }
  static void CLUSTERD_ABI complete_list(const clusterd_host_t *host, clusterd_id_t op,
                                         clusterd_status_t status, const char *message,
                                         const char *const *nodes, uint32_t count) {
    if (auto *events = transport(host))
      events->on_list(op, status, text(message), strings(nodes, count));
  }
  static void CLUSTERD_ABI node_up(const clusterd_host_t *host, const char *node) {
    if (auto *events = transport(host); events && node) events->on_node_up(node);
  }
  static void CLUSTERD_ABI node_down(const clusterd_host_t *host, const char *node,
                                     const char *reason) {
    if (auto *events = transport(host); events && node) events->on_node_down(node, text(reason));
  }
  static void CLUSTERD_ABI local_changed(const clusterd_host_t *host) {
    if (auto *events = transport(host)) events->on_local_changed();
  }

  // ---- clusterd.control-sink/1 ----
  // The session if it is open and the calling instance's own (another's id: not found).
  static std::shared_ptr<Session> session(const clusterd_host_t *host, clusterd_id_t id) {
    auto *instance = self(host);
    if (!instance) return nullptr;
    auto it = instance->sessions_.find(id);
    return it == instance->sessions_.end() ? nullptr : it->second.lock();
  }
  static clusterd_status_t CLUSTERD_ABI control_send(const clusterd_host_t *host, clusterd_id_t id,
                                                     const char *line, size_t length) {
    if (!self(host) || (!line && length)) return CLUSTERD_E_INVALID_ARG;
    auto s = session(host, id);
    if (!s) return CLUSTERD_E_NOT_FOUND;
    if (length && std::memchr(line, '\n', length)) return CLUSTERD_E_INVALID_ARG;
    return s->send(std::string_view(line ? line : "", length));
  }
  static void CLUSTERD_ABI control_end(const clusterd_host_t *host, clusterd_id_t id) {
    if (auto s = session(host, id)) s->end();
  }
  static size_t CLUSTERD_ABI control_buffered(const clusterd_host_t *host, clusterd_id_t id) {
    auto s = session(host, id);
    return s ? s->buffered() : 0;
  }

  static clusterd_status_t CLUSTERD_ABI control_detach(const clusterd_host_t *host,
                                                       clusterd_id_t id, int *fd,
                                                       const char **unread, size_t *length) {
    auto *instance = self(host);
    if (!instance || !fd || !unread || !length) return CLUSTERD_E_INVALID_ARG;
    auto s = session(host, id);
    if (!s) return CLUSTERD_E_NOT_FOUND;
    clusterd_status_t status = CLUSTERD_E_NO_MEMORY;
    try {  // nothing may cross the C ABI (the copy of the unread bytes allocates)
      status = s->detach(*fd, instance->detached_unread_);
    } catch (const std::exception &) {
    }
    if (status != CLUSTERD_OK) return status;
    *unread = instance->detached_unread_.data();
    *length = instance->detached_unread_.size();
    return CLUSTERD_OK;
  }

  static const void *CLUSTERD_ABI get_service(const clusterd_host_t *host, const char *id) {
    static const clusterd_timer_service_t timer{sizeof timer, 0, timer_add, timer_cancel};
    static const clusterd_fd_service_t fd{sizeof fd, 0, fd_watch, fd_modify, fd_unwatch};
    static const clusterd_work_service_t work{sizeof work, 0, work_submit, work_cancel};
    static const clusterd_http_service_t http{sizeof http, 0, http_request, http_cancel};
    static const clusterd_dns_service_t dns{sizeof dns, 0, dns_resolve, dns_cancel};
    static const clusterd_status_service_t status{sizeof status, 0, status_set};
    static const clusterd_metrics_service_t metrics{sizeof metrics, 0, counter_add, gauge_set};
    static const clusterd_process_service_t process{sizeof process, 0, process_spawn,
                                                    process_cancel};
    static const clusterd_strategy_sink_t strategy_sink{
        sizeof strategy_sink, 0, set_nodes, node_seen, node_lost, discovery_failed, local_node};
    static const clusterd_transport_sink_t transport_sink{
        sizeof transport_sink, 0, complete, complete_list, node_up, node_down, local_changed};
    static const clusterd_control_sink_t control_sink{
        sizeof control_sink, 0, control_send, control_end, control_buffered, control_detach};
    auto *instance = self(host);
    if (!instance || !id) return nullptr;
    std::string_view want(id);
    if (want == CLUSTERD_SERVICE_TIMER) return &timer;
    if (want == CLUSTERD_SERVICE_FD) return &fd;
    if (want == CLUSTERD_SERVICE_WORK) return &work;
    if (want == CLUSTERD_SERVICE_HTTP) return &http;
    if (want == CLUSTERD_SERVICE_DNS) return &dns;
    if (want == CLUSTERD_SERVICE_STATUS) return &status;
    if (want == CLUSTERD_SERVICE_METRICS) return &metrics;
    if (want == CLUSTERD_SERVICE_PROCESS) return &process;
    if (want == CLUSTERD_SERVICE_CONTROL_SINK) return &control_sink;
    if (want == CLUSTERD_SERVICE_STRATEGY_SINK && instance->strategy_events_) return &strategy_sink;
    if (want == CLUSTERD_SERVICE_TRANSPORT_SINK && instance->transport_events_)
      return &transport_sink;
    return nullptr;
  }
};

clusterd_host_t HostTable::make(Instance *instance) {
  clusterd_host_t host{};
  host.struct_size = sizeof host;
  host.abi_major = CLUSTERD_ABI_MAJOR;
  host.abi_minor = CLUSTERD_ABI_MINOR;
  host.host_version = CLUSTERD_VERSION_STRING;
  host.instance_name = instance->label().c_str();
  host.host_data = instance;
  host.log = Bridge::log;
  host.get_service = Bridge::get_service;
  host.post = Bridge::post;
  return host;
}

}  // namespace clusterd::plugin
