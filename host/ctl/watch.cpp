#include "watch.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "control/control_server.hpp"

// Last, and as functions: curses' macros (timeout, erase, refresh...) would rewrite other headers.
#define NCURSES_NOMACROS
#include <curses.h>

namespace clusterctl {
namespace {

volatile std::sig_atomic_t interrupted = 0;

std::string str(const nlohmann::json &object, const char *key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string clock_text(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &tm);
  return buffer;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The status document, or an empty object with `error` set when the daemon does not answer.
nlohmann::json fetch(const std::string &socket, std::string &error) {
  std::string response;
  error.clear();
  if (!clusterd::control::control_request(socket, R"({"cmd":"status"})", response, error))
    return nlohmann::json::object();
  auto status = nlohmann::json::parse(response, nullptr, false);
  if (!status.is_object() || status.contains("error")) {
    error = status.is_object() ? str(status, "error") : "the daemon's answer is not JSON";
    return nlohmann::json::object();
  }
  return status;
}

std::string event_text(const nlohmann::json &e) {
  std::string text = clock_text(e.value("time_ms", std::int64_t{0})) + " " + str(e, "event");
  for (const char *key : {"topology", "transport", "node"})
    if (e.contains(key)) text += " " + str(e, key);
  if (e.contains("reason")) text += " (" + str(e, "reason") + ")";
  if (e.contains("ok")) text += e.value("ok", false) ? " applied" : " rejected";
  return text;
}

// A node a transport reported down lately: "left" (a graceful leave) or "down (why)".
std::string lost_text(const nlohmann::json &down) {
  auto reason = down.value("reason", "");
  if (reason == "left") return "left";
  return reason.empty() ? "down" : "down (" + reason + ")";
}

int connected_count(const nlohmann::json &topology) {
  int n = 0;
  for (const auto &node : topology.value("nodes", nlohmann::json::array()))
    n += node.value("state", "") == "connected";
  return n;
}

// ---- on a terminal --------------------------------------------------------------------------

enum Colour { kOk = 1, kWarn, kBad, kMute };

int colour_of(const std::string &state) {
  if (state == "connected" || state == "running" || state == "nodeup" || state == "discovery_ok")
    return kOk;
  if (state == "failed" || state == "nodedown" || state == "discovery_failed" || state == "down")
    return kBad;
  if (state == "connecting" || state == "backoff" || state == "pending" || state == "restarting" ||
      state == "starting" || state == "disconnecting")
    return kWarn;
  return kMute;
}

class Screen {
 public:
  Screen() {
    ::initscr();
    ::cbreak();
    ::noecho();
    ::curs_set(0);
    ::keypad(stdscr, TRUE);
    if (::has_colors()) {
      ::start_color();
      ::use_default_colors();
      ::init_pair(kOk, COLOR_GREEN, -1);
      ::init_pair(kWarn, COLOR_YELLOW, -1);
      ::init_pair(kBad, COLOR_RED, -1);
      ::init_pair(kMute, COLOR_BLUE, -1);
    }
  }
  ~Screen() { ::endwin(); }
  Screen(const Screen &) = delete;
  Screen &operator=(const Screen &) = delete;

  // Draws one frame; lines beyond the window are cut.
  void draw(const nlohmann::json &status, const std::string &error, const std::string &socket) {
    ::erase();
    row_ = 0;
    ::attron(A_REVERSE);
    line(status.empty() ? "clusterd at " + socket
                        : "clusterd " + str(status, "version") + "  pid " + str(status, "pid") +
                              "  " + str(status, "config") + "  " +
                              (status.value("ready", false) ? "ready" : "not ready"),
         0, "  " + clock_text(now_ms()) + "  (q quits)");
    ::attroff(A_REVERSE);
    if (!error.empty()) {
      line("cannot talk to clusterd: " + error + " (retrying)", kBad);
    }
    for (const auto &t : status.value("transports", nlohmann::json::array())) {
      line("transport " + str(t, "name") + " (" + str(t, "plugin") + ") " + str(t, "state") + ", " +
               std::to_string(t.value("connected", nlohmann::json::array()).size()) +
               " connected, restarts " + str(t, "restarts") +
               (t.value("error", "").empty() ? "" : ": " + str(t, "error")),
           colour_of(t.value("state", "")));
      for (const auto &d : t.value("down", nlohmann::json::array())) {
        char buffer[256];
        std::snprintf(buffer, sizeof buffer, "  %-40s ", str(d, "node").c_str());
        auto text = lost_text(d);
        line(buffer + text, text == "left" ? kMute : kBad);
      }
    }
    for (const auto &t : status.value("topologies", nlohmann::json::array())) {
      line("");
      auto failing = t.value("discovery_error", "");
      line("topology " + str(t, "name") + " (" + str(t, "strategy") + " -> " + str(t, "transport") +
               ") " + str(t, "state") + ", " + std::to_string(connected_count(t)) + "/" +
               std::to_string(t.value("nodes", nlohmann::json::array()).size()) +
               " connected, last discovery " + str(t, "last_discovery_ms_ago") + " ms ago" +
               (failing.empty() ? "" : ", failing: " + failing) +
               (t.value("error", "").empty() ? "" : ", " + str(t, "error")),
           failing.empty() ? colour_of(t.value("state", "")) : kBad);
      for (const auto &n : t.value("nodes", nlohmann::json::array())) {
        auto node_error = n.value("last_error", "");
        char buffer[256];
        std::snprintf(buffer, sizeof buffer, "  %-40s %-13s", str(n, "name").c_str(),
                      str(n, "state").c_str());
        line(buffer + (node_error.empty() ? "" : " " + node_error),
             colour_of(n.value("state", "")));
      }
    }
    auto events = status.value("events", nlohmann::json::array());
    int room = LINES - row_ - 2;
    if (room > 0 && !events.empty()) {
      line("");
      line("recent events", 0);
      for (auto i = events.size() > static_cast<std::size_t>(room)
                        ? events.size() - static_cast<std::size_t>(room)
                        : 0;
           i < events.size(); ++i)
        line("  " + event_text(events[i]), colour_of(events[i].value("event", "")));
    }
    ::refresh();
  }

 private:
  void line(const std::string &text, int colour = 0, const std::string &right = "") {
    if (row_ >= LINES) return;
    if (colour && ::has_colors()) ::attron(COLOR_PAIR(colour));
    ::mvaddnstr(row_, 0, text.c_str(), COLS);
    if (!right.empty() && static_cast<int>(text.size() + right.size()) < COLS)
      ::mvaddstr(row_, COLS - static_cast<int>(right.size()), right.c_str());
    if (colour && ::has_colors()) ::attroff(COLOR_PAIR(colour));
    ++row_;
  }
  int row_ = 0;
};

int watch_terminal(const WatchOptions &options) {
  Screen screen;
  ::timeout(options.interval_ms);  // getch() waits one interval: the steady redraw rate
  for (long n = 0; !interrupted && (options.count < 0 || n < options.count); ++n) {
    std::string error;
    auto status = fetch(options.socket, error);
    screen.draw(status, error, options.socket);
    int key = ::getch();
    if (key == 'q' || key == 'Q') break;
  }
  return 0;
}

// ---- plain lines ------------------------------------------------------------------------------

// What changed between two status documents, one line each: unit states, node states, events.
class Changes {
 public:
  void print(const nlohmann::json &status, const std::string &error) {
    if (!error.empty()) {
      if (error_ != error) std::printf("%s unreachable: %s\n", stamp().c_str(), error.c_str());
      error_ = error;
      return;
    }
    if (!error_.empty()) std::printf("%s reachable again\n", stamp().c_str());
    error_.clear();
    if (status.value("pid", 0) != pid_) {  // another daemon: its events count from 1 again
      pid_ = status.value("pid", 0);
      seq_ = 0;
      std::printf("%s clusterd %s pid %d\n", stamp().c_str(), str(status, "version").c_str(), pid_);
    }
    std::map<std::string, std::string> now;
    for (const auto &[list, kind] :
         {std::pair{"transports", "transport"}, {"topologies", "topology"}})
      for (const auto &t : status.value(list, nlohmann::json::array())) {
        std::string unit = std::string(kind) + " " + str(t, "name");
        now[unit] = str(t, "state") + (t.value("discovery_error", "").empty()
                                           ? ""
                                           : " (failing: " + str(t, "discovery_error") + ")");
        for (const auto &d : t.value("down", nlohmann::json::array()))
          now[unit + " node " + str(d, "node")] = lost_text(d);
        for (const auto &n : t.value("nodes", nlohmann::json::array()))
          now[unit + " node " + str(n, "name")] =
              str(n, "state") +
              (n.value("last_error", "").empty() ? "" : " (" + str(n, "last_error") + ")");
      }
    for (const auto &[what, state] : now)
      if (auto it = last_.find(what); it == last_.end() || it->second != state)
        std::printf("%s %s %s\n", stamp().c_str(), what.c_str(), state.c_str());
    for (const auto &[what, state] : last_)
      if (!now.count(what)) std::printf("%s %s gone\n", stamp().c_str(), what.c_str());
    last_ = std::move(now);
    for (const auto &e : status.value("events", nlohmann::json::array()))
      if (auto seq = e.value("seq", std::uint64_t{0}); seq > seq_) {
        seq_ = seq;
        std::printf("event %s\n", event_text(e).c_str());
      }
    std::fflush(stdout);
  }

 private:
  static std::string stamp() { return clock_text(now_ms()); }
  std::map<std::string, std::string> last_;
  std::string error_;
  int pid_ = 0;
  std::uint64_t seq_ = 0;
};

int watch_plain(const WatchOptions &options) {
  Changes changes;
  for (long n = 0; !interrupted && (options.count < 0 || n < options.count); ++n) {
    if (n > 0) std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
    std::string error;
    auto status = fetch(options.socket, error);
    changes.print(status, error);
  }
  return 0;
}

}  // namespace

int watch(const WatchOptions &options) {
  struct sigaction action {};
  action.sa_handler = [](int) { interrupted = 1; };
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  return ::isatty(STDOUT_FILENO) ? watch_terminal(options) : watch_plain(options);
}

}  // namespace clusterctl
