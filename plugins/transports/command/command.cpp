// Transport "command": libcluster's {M,F,A} connect/disconnect/list_nodes hooks as commands.
// Each operation runs one child through the host's process service (never a shell).
#include <string.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <clusterd/plugin.hpp>

namespace {

using clusterd::Id;
using clusterd::Status;
using std::chrono::milliseconds;

constexpr std::size_t kMaxListOutput = 1 << 20;  // list_nodes stdout limit
constexpr std::size_t kTailBytes = 4096;         // kept from stderr (and stdout of connect)
constexpr std::size_t kMaxMessageLine = 512;     // of that tail, quoted in messages

enum class Kind { kConnect, kDisconnect, kList };

const char *kind_name(Kind k) {
  switch (k) {
    case Kind::kConnect:
      return "connect";
    case Kind::kDisconnect:
      return "disconnect";
    case Kind::kList:
      return "list_nodes";
  }
  return "?";
}

std::string_view trim(std::string_view s) {
  const char *ws = " \t\r\n\v\f";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// The last non-blank line of `text`, cut to kMaxMessageLine bytes.
std::string last_line(std::string_view text) {
  while (!text.empty()) {
    const auto nl = text.find_last_of('\n');
    const std::string_view line = trim(nl == std::string_view::npos ? text : text.substr(nl + 1));
    if (!line.empty()) {
      if (line.size() <= kMaxMessageLine) return std::string(line);
      return std::string(line.substr(line.size() - kMaxMessageLine)) + " (cut)";
    }
    if (nl == std::string_view::npos) break;
    text = text.substr(0, nl);
  }
  return {};
}

std::string describe_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

class CommandTransport final : public clusterd::Transport {
 public:
  static constexpr const char *kName = "command";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Runs commands to connect, disconnect and list nodes (libcluster's connect/disconnect/"
      "list_nodes hooks); never through a shell";
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::positive(clusterd::option::required(clusterd::option::string_list(
          "connect",
          "Command (argv) that connects the managed node to a node, given as the last argument; "
          "exit 0 = connected"))),
      clusterd::option::positive(clusterd::option::string_list(
          "disconnect",
          "Command (argv) that disconnects a node, given as the last argument; unset = "
          "disconnecting is not supported")),
      clusterd::option::positive(clusterd::option::string_list(
          "list_nodes",
          "Command (argv) that prints the connected nodes, one per line; unset = not supported")),
      clusterd::option::positive(clusterd::option::duration(
          "timeout",
          "Time limit of each command; the command is then terminated (SIGTERM to its process "
          "group, SIGKILL 2 s later)",
          "\"10s\"")),
      clusterd::option::string("local_node", "The managed (local) node's name, e.g. a@127.0.0.1"),
  };

  // Each command's program: the constraints make sure there is an argv, not that argv[0] is.
  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    for (const char *key : {"connect", "disconnect", "list_nodes"})
      if (auto argv = config.optional_strings(key); argv && !argv->empty() && (*argv)[0].empty())
        problems.add(key, "needs the program to run first (an empty argv[0])");
  }

  void init(const clusterd::Config &config) override {
    connect_argv_ = config.strings("connect");
    disconnect_argv_ = config.optional_strings("disconnect");
    list_argv_ = config.optional_strings("list_nodes");
    timeout_ = config.duration("timeout");
    local_node_ = config.optional_string("local_node");
    if (local_node_ && local_node_->empty()) local_node_.reset();
  }

  void start() override { running_ = true; }

  void stop() override {
    running_ = false;
    // Operations the host did not cancel still get their one completion; dropping the handles
    // has the host terminate and reap their children.
    auto ops = std::move(ops_);  // the sink may call back into us
    ops_.clear();
    for (auto &[op, o] : ops)
      complete_op(op, o.kind, CLUSTERD_E_CANCELLED, "transport stopped", {});
  }

  void connect(Id op, std::string_view node) override {
    spawn(op, Kind::kConnect, connect_argv_, node);
  }

  void disconnect(Id op, std::string_view node) override {
    if (!disconnect_argv_)
      throw clusterd::Error(CLUSTERD_E_UNSUPPORTED, "no disconnect command configured");
    spawn(op, Kind::kDisconnect, *disconnect_argv_, node);
  }

  void list_nodes(Id op) override {
    if (!list_argv_)
      throw clusterd::Error(CLUSTERD_E_UNSUPPORTED, "no list_nodes command configured");
    spawn(op, Kind::kList, *list_argv_, std::nullopt);
  }

  // Never completed now; the host terminates and reaps the child.
  void cancel(Id op) override { ops_.erase(op); }

  std::optional<std::string> local_node() override { return local_node_; }

 private:
  struct Op {
    Kind kind = Kind::kConnect;
    std::string program;  // argv[0], for messages
    clusterd::Process process;
  };

  // The node becomes an argument of a program we did not write: refuse what could be read as
  // an option or break line-oriented scripts.
  static void check_node(std::string_view node) {
    if (node.empty()) throw clusterd::Error(CLUSTERD_E_INVALID_ARG, "empty node name");
    if (node.front() == '-')
      throw clusterd::Error(CLUSTERD_E_INVALID_ARG,
                            "node name '" + std::string(node) + "' starts with '-'");
    for (const char c : node)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        throw clusterd::Error(CLUSTERD_E_INVALID_ARG, "node name contains a control character");
  }

  void spawn(Id op, Kind kind, const std::vector<std::string> &base,
             std::optional<std::string_view> node) {
    if (!running_) throw clusterd::Error(CLUSTERD_E_STATE, "transport not running");
    if (node) check_node(*node);
    if (ops_.count(op)) throw clusterd::Error(CLUSTERD_E_STATE, "operation id already running");
    clusterd::ProcessRequest request;
    request.argv = base;
    if (node) request.argv.emplace_back(*node);
    if (!clusterd::is_infinite(timeout_)) request.timeout = timeout_;
    // list_nodes needs all of stdout, and a runaway lister is stopped at the limit; the others
    // need only the tails their messages quote.
    request.max_capture_bytes = kind == Kind::kList ? kMaxListOutput : kTailBytes;
    if (kind == Kind::kList) request.flags = CLUSTERD_PROCESS_STOP_ON_OVERFLOW;
    Op &o = ops_[op];
    o.kind = kind;
    o.program = base[0];
    try {
      o.process = clusterd::Process::spawn(
          host(), request, [this, op](const clusterd::ProcessResult &r) { on_done(op, r); });
    } catch (...) {
      ops_.erase(op);
      throw;
    }
  }

  void on_done(Id op, const clusterd::ProcessResult &r) {
    auto it = ops_.find(op);
    if (it == ops_.end()) return;
    const Kind kind = it->second.kind;
    const std::string what = std::string(kind_name(kind)) + " command '" + it->second.program + "'";
    ops_.erase(it);
    if (r.status != CLUSTERD_OK) {
      complete_op(op, kind, CLUSTERD_E_IO, std::string(kind_name(kind)) + " command: " + r.error,
                  {});
    } else if (r.timed_out) {
      complete_op(op, kind, CLUSTERD_E_TIMEOUT,
                  what + " timed out after " + describe_duration(timeout_) + " and was terminated",
                  {});
    } else if (kind == Kind::kList && r.stdout_truncated) {
      complete_op(op, kind, CLUSTERD_E_IO, what + ": output exceeds 1 MiB", {});
    } else if (r.exit_code == 0) {
      complete_op(op, kind, CLUSTERD_OK, {},
                  kind == Kind::kList ? parse_nodes(r.out) : std::vector<std::string>{});
    } else if (r.exit_code > 0) {
      std::string line = last_line(r.err);
      if (line.empty()) line = last_line(r.out);
      std::string message = what + " exited with code " + std::to_string(r.exit_code);
      if (!line.empty()) message += ": " + line;
      complete_op(op, kind, CLUSTERD_E_UNREACHABLE, message, {});
    } else {
      const char *name = strsignal(r.term_signal);
      complete_op(op, kind, CLUSTERD_E_IO,
                  what + " killed by signal " + std::to_string(r.term_signal) +
                      (name != nullptr ? std::string(" (") + name + ")" : std::string()),
                  {});
    }
  }

  static std::vector<std::string> parse_nodes(std::string_view text) {
    std::vector<std::string> nodes;
    while (!text.empty()) {
      const auto nl = text.find('\n');
      const std::string_view line = trim(text.substr(0, nl));
      if (!line.empty()) nodes.emplace_back(line);
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
    return nodes;
  }

  void complete_op(Id op, Kind kind, Status status, const std::string &message,
                   const std::vector<std::string> &nodes) {
    if (kind == Kind::kList) {
      complete_list(op, status, message, nodes);
    } else {
      complete(op, status, message);
    }
  }

  std::vector<std::string> connect_argv_;
  std::optional<std::vector<std::string>> disconnect_argv_;
  std::optional<std::vector<std::string>> list_argv_;
  milliseconds timeout_{10000};
  std::optional<std::string> local_node_;
  bool running_ = false;
  std::map<Id, Op> ops_;  // running operations
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(CommandTransport);
