// `clusterctl watch`: a live view of the daemon (topologies, nodes and their states, recent
// events) from its status document, asked for at a steady rate over the control socket. On a
// terminal it is redrawn in place with ncurses (terminfo: any terminal, also over SSH); when
// stdout is not a terminal it prints one plain line per change instead.
#pragma once

#include <string>

namespace clusterctl {

struct WatchOptions {
  std::string socket;
  int interval_ms = 1000;
  long count = -1;  // refreshes before exiting; -1: until interrupted (or `q` on a terminal)
};

int watch(const WatchOptions &options);

}  // namespace clusterctl
