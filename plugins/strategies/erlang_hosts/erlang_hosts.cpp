// Strategy "erlang_hosts": libcluster's Cluster.Strategy.ErlangHosts — OTP's `.hosts.erlang`
// mechanism. Each round asks the EPMD of every host in the file for its names (NAMES) and
// reports name@host for every registered name on every host (the host string exactly as in the
// file; the host's reconciler skips the local node).
//
// The file: `hosts_file`, or else `.hosts.erlang` searched in the daemon's working directory,
// then in $HOME, as net_adm:host_file/0 does (OTP also looks in code:root_dir(); a daemon has no
// OTP root, so that step is left out). The first file found wins. It is re-read when it changes
// (path, device, inode, size or mtime, checked every round). Syntax: see hosts_erlang.hpp.
//
// Rounds: at start, then every `timeout` (libcluster's idle timeout); "infinity" (libcluster's
// default) is one round at start only, as in libcluster (`clusterctl refresh` runs another).
// A tick while a round is still running is skipped.
//
// Partial answers: a host whose EPMD fails keeps the names it last answered (libcluster skips
// it silently, which would drop them) while the names of the hosts that answered are reported;
// the failure shows in the status ("epmd unreachable"). A round in which every EPMD failed, a
// missing file, or a file that no longer parses is reported with discovery_failed (the host
// keeps the last good set). A syntax
// error at start fails the topology ("FILE:LINE:COLUMN: ..."); a missing file at start does not
// (libcluster warns "couldn't find .hosts.erlang file" and does nothing; here every round looks
// again). Never disconnects.
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <clusterd/plugin.hpp>

#include "epmd_client.hpp"
#include "hosts_erlang.hpp"

namespace {

using std::chrono::milliseconds;

constexpr std::size_t kMaxParallelQueries = 16;
constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr const char *kFileName = ".hosts.erlang";
constexpr const char *kFileKey = "hosts file";
constexpr const char *kUnreachableKey = "epmd unreachable";

// What identifies one version of the file: a change of any field means "re-read".
struct FileId {
  std::string path;
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  long long mtime_ns = 0;
  bool operator==(const FileId &o) const {
    return path == o.path && device == o.device && inode == o.inode && size == o.size &&
           mtime_ns == o.mtime_ns;
  }
};

class ErlangHostsStrategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "erlang_hosts";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "Every node registered in the EPMD of every host listed in .hosts.erlang (libcluster's "
      "Cluster.Strategy.ErlangHosts)";
  static constexpr const char *kAliases[] = {"Cluster.Strategy.ErlangHosts",
                                             "Elixir.Cluster.Strategy.ErlangHosts"};
  // No CLUSTERD_PLUGIN_DISCONNECTS_REMOVED: like libcluster's ErlangHosts, never disconnects.
  static constexpr uint32_t kFlags = 0;
  static constexpr clusterd_option_t kOptions[] = {
      clusterd::option::at_least(
          clusterd::option::duration("timeout",
                                     "How often to ask the hosts' EPMDs (libcluster's idle "
                                     "timeout); \"infinity\": once at start, as libcluster "
                                     "(set e.g. \"5s\" to find nodes started later)",
                                     "\"infinity\""),
          1),
      clusterd::option::nonempty(clusterd::option::string(
          "hosts_file",
          "The hosts file; default: .hosts.erlang in the working directory, then in $HOME (as "
          "net_adm:host_file/0)")),
      clusterd::epmd::port_option("TCP port of the hosts' EPMDs"),
      clusterd::epmd::timeout_option("Time limit of one host's EPMD query"),
  };

  void init(const clusterd::Config &config) override {
    period_ = config.duration("timeout");
    epmd_port_ = static_cast<std::uint16_t>(config.integer("epmd_port"));
    epmd_timeout_ = config.duration("epmd_timeout");
    explicit_file_ = config.optional_string("hosts_file").value_or("");

    // A file that exists but cannot be used fails the topology at start; a missing one does
    // not (see the top of the file).
    std::string error;
    if (!reload(error) && !missing_)
      throw clusterd::Error(CLUSTERD_E_CONFIG,
                            error + (explicit_file_.empty() ? "" : config.where("hosts_file")));
    if (missing_)
      host().warn("couldn't find " + error + " - not joining the cluster until it appears");
  }

  void start() override {
    round();
    if (!clusterd::is_infinite(period_))
      timer_ = clusterd::Timer::every(host(), period_, [this] { round(); });
  }

  void stop() override {
    timer_.reset();
    queries_.clear();  // cancels every EPMD query in flight
  }

  void refresh() override { round(); }

 private:
  struct Answer {
    bool done = false;
    std::string error;               // "" = answered
    std::vector<std::string> nodes;  // name@host
  };

  // ---- the file ----

  // The path to read: the option, or the first .hosts.erlang found; "" when none is found.
  std::string locate(std::string &searched) const {
    if (!explicit_file_.empty()) {
      searched = explicit_file_;
      return explicit_file_;
    }
    std::vector<std::string> candidates = {std::string("./") + kFileName};
    if (const char *home = std::getenv("HOME"); home != nullptr && *home != '\0')
      candidates.push_back(std::string(home) + "/" + kFileName);
    for (const auto &c : candidates) {
      searched += (searched.empty() ? "" : ", ") + c;
      struct stat st {};
      if (::stat(c.c_str(), &st) == 0) return c;
    }
    return {};
  }

  // Re-reads the file if it changed. Returns false with `error` when there is no usable host
  // list now (missing_ tells "not found" from the rest); true when hosts_ is current.
  bool reload(std::string &error) {
    missing_ = false;
    std::string searched;
    const std::string path = locate(searched);
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) {
      const int e = errno;
      missing_ = path.empty() || e == ENOENT;
      error = path.empty() ? std::string(kFileName) + " (searched " + searched + ")"
                           : path + ": " + std::strerror(e);
      if (missing_ && !path.empty()) error = path;
      return false;
    }
    FileId id{path, st.st_dev, st.st_ino, st.st_size,
              static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
    if (loaded_ && id == loaded_id_) return true;
    if (failed_ && id == failed_id_) {
      error = failed_error_;
      return false;
    }
    std::vector<std::string> hosts;
    if (!read_and_parse(path, st, hosts, error)) {
      failed_ = true;
      failed_id_ = id;
      failed_error_ = error;
      return false;
    }
    failed_ = false;
    loaded_ = true;
    loaded_id_ = id;
    std::unordered_set<std::string> seen;
    hosts_.clear();
    for (auto &h : hosts)
      if (seen.insert(h).second) hosts_.push_back(std::move(h));
    // Hosts no longer listed lose their remembered names.
    for (auto it = last_good_.begin(); it != last_good_.end();)
      it = seen.count(it->first) != 0 ? std::next(it) : last_good_.erase(it);
    host().info("read " + std::to_string(hosts_.size()) + " host(s) from " + path);
    host().set_status(kFileKey, path + " (" + std::to_string(hosts_.size()) + " hosts)");
    return true;
  }

  static bool read_and_parse(const std::string &path, const struct stat &st,
                             std::vector<std::string> &hosts, std::string &error) {
    if (!S_ISREG(st.st_mode)) {
      error = path + ": not a regular file";
      return false;
    }
    if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes) {
      error = path + ": larger than " + std::to_string(kMaxFileBytes) + " bytes";
      return false;
    }
    std::string text;
    if (!clusterd::read_file(path, text, error, kMaxFileBytes)) return false;
    clusterd::erlang_hosts::SyntaxError syntax;
    if (!clusterd::erlang_hosts::parse_hosts_erlang(text, hosts, syntax)) {
      error = path + ":" + std::to_string(syntax.line) + ":" + std::to_string(syntax.column) +
              ": " + syntax.message;
      return false;
    }
    return true;
  }

  // ---- rounds ----

  void round() {
    if (!queries_.empty() || in_round_) return;  // the previous round is still running
    std::string error;
    if (!reload(error)) {
      if (missing_) error = "couldn't find " + error;
      return discovery_failed(error);
    }
    if (hosts_.empty()) {
      host().clear_status(kUnreachableKey);
      return report_nodes({});  // an empty file: no hosts, a real answer
    }
    answers_.assign(hosts_.size(), Answer{});
    round_hosts_ = hosts_;
    next_ = 0;
    in_round_ = true;
    launch();
  }

  void launch() {
    while (next_ < round_hosts_.size() && queries_.size() < kMaxParallelQueries) {
      const std::size_t i = next_++;
      clusterd::epmd::Target target;
      target.host = round_hosts_[i];
      target.port = epmd_port_;
      target.timeout = epmd_timeout_;
      try {
        queries_.emplace(
            i, clusterd::epmd::Client::names(
                   host(), target, [this, i](clusterd::epmd::NamesOutcome o) { answered(i, o); }));
      } catch (const std::exception &e) {
        answers_[i].done = true;
        answers_[i].error =
            clusterd::epmd::endpoint_text(target.host, target.port) + ": " + e.what();
      }
    }
    if (queries_.empty() && next_ >= round_hosts_.size()) finish();
  }

  void answered(std::size_t i, const clusterd::epmd::NamesOutcome &outcome) {
    Answer &a = answers_[i];
    a.done = true;
    if (outcome.status == CLUSTERD_OK) {
      for (const auto &entry : outcome.names) a.nodes.push_back(entry.name + "@" + round_hosts_[i]);
    } else {
      a.error = outcome.endpoint + ": " + outcome.reason;
    }
    queries_.erase(i);  // destroys the finished client (allowed from inside its callback)
    launch();
  }

  void finish() {
    in_round_ = false;
    std::string failures;
    std::size_t answered = 0;
    for (std::size_t i = 0; i < answers_.size(); ++i) {
      const Answer &a = answers_[i];
      if (a.error.empty()) {
        ++answered;
        last_good_[round_hosts_[i]] = a.nodes;
      } else {
        failures += (failures.empty() ? "" : "; ") + a.error;
      }
    }
    show_unreachable(failures);
    if (answered == 0) return discovery_failed("no EPMD answered: " + failures);
    std::vector<std::string> nodes;
    std::unordered_set<std::string> seen;
    for (const auto &h : round_hosts_) {
      auto it = last_good_.find(h);
      if (it == last_good_.end()) continue;  // failed, and never answered before
      for (const auto &n : it->second)
        if (seen.insert(n).second) nodes.push_back(n);
    }
    report_nodes(nodes);
  }

  void show_unreachable(const std::string &failures) {
    if (failures == last_failures_) return;
    if (failures.empty()) {
      host().clear_status(kUnreachableKey);
      host().info("every EPMD answers again");
    } else {
      host().set_status(kUnreachableKey, failures);
      host().warn("EPMD query failed (keeping the names these hosts last reported): " + failures);
    }
    last_failures_ = failures;
  }

  milliseconds period_{clusterd::kInfinite};
  std::uint16_t epmd_port_ = clusterd::epmd::kDefaultPort;
  milliseconds epmd_timeout_{5000};
  std::string explicit_file_;
  clusterd::Timer timer_;

  // The file.
  bool missing_ = false;
  bool loaded_ = false, failed_ = false;
  FileId loaded_id_, failed_id_;
  std::string failed_error_;
  std::vector<std::string> hosts_;                             // deduplicated, in file order
  std::map<std::string, std::vector<std::string>> last_good_;  // host -> its last answer

  // The round in flight.
  bool in_round_ = false;
  std::vector<std::string> round_hosts_;
  std::vector<Answer> answers_;
  std::size_t next_ = 0;
  std::map<std::size_t, clusterd::epmd::Client> queries_;
  std::string last_failures_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(ErlangHostsStrategy);
