// The exec strategy's reading of its command's standard output: pure, incremental and bounded,
// since the bytes come from a program clusterd did not write (fuzzed by
// tests/fuzz/exec_lines_fuzz.cpp). Node names are passed on as written: the host's strategy
// sink refuses and counts those that break the node-name rule.
//
// Lines: split at '\n'; a trailing '\r' and surrounding blanks are dropped; empty lines and
// lines starting with '#' are skipped; a line longer than kMaxLine bytes is refused whole.
//
// Periodic mode: every other line is a node name; the output is the complete set.
//
// Stream mode (one line, one meaning, applied in order):
//   +NAME   NAME is present
//   -NAME   NAME is gone
//   =NAME   NAME belongs to the full set being written
//   =       ends the full set: exactly the NAMEs of the "=NAME" lines since the previous "=" are
//           present now ("=" alone, without "=NAME" lines before it, is the empty set)
// A full set is only applied at its closing "=": one cut short by the command's exit, or larger
// than the byte limit, changes nothing. Anything else is a refused line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace clusterd::exec {

/// The longest line read (a node name has at most 255 bytes).
inline constexpr std::size_t kMaxLine = 1024;

/// A line that means nothing usable: what it began with (cut, as written) and why.
struct Refusal {
  std::string line;
  std::string why;
};

/// One line of the stream, without "\n" / "\r\n".
struct Line {
  std::string text;       ///< the line, or its first kShownBytes bytes when too_long
  bool too_long = false;  ///< longer than kMaxLine bytes: to be refused
};

/// The most bytes of a refused line quoted in logs and status.
inline constexpr std::size_t kShownBytes = 80;

/// Cuts a byte stream into lines, whatever the chunks; at most kMaxLine bytes are buffered.
class LineSplitter {
 public:
  /// Appends the complete lines of `bytes` to `lines`, in order.
  void feed(std::string_view bytes, std::vector<Line> &lines);
  /// The end of the stream: an unterminated last line is a line too.
  void finish(std::vector<Line> &lines);

 private:
  std::string partial_;
  bool overlong_ = false;  // dropping the rest of a line that was too long
};

/// The refusal of a too_long line.
Refusal too_long(const Line &line);

/// `line` without surrounding blanks, or "" when it is to be skipped (blank, "#" comment).
std::string_view meaningful(std::string_view line);

/// A periodic answer: the node names of `output` (sorted, without duplicates) and its refused
/// lines.
struct ListAnswer {
  std::vector<std::string> nodes;
  std::vector<Refusal> refused;
};
ListAnswer parse_list(std::string_view output);

/// What stream lines mean, in order.
struct StreamEvent {
  enum class Kind { kSeen, kLost, kFullSet };
  Kind kind = Kind::kSeen;
  std::string node;                ///< kSeen, kLost
  std::vector<std::string> nodes;  ///< kFullSet: sorted, without duplicates
};

/// The stream protocol above, fed the command's stdout as it arrives. One parser per run of
/// the command.
class StreamParser {
 public:
  /// A full set of more than `max_set_bytes` bytes of names is refused.
  explicit StreamParser(std::size_t max_set_bytes) : max_set_bytes_(max_set_bytes) {}
  /// Appends the meaning of the complete lines in `bytes` to `events`, refusals to `refused`.
  void feed(std::string_view bytes, std::vector<StreamEvent> &events,
            std::vector<Refusal> &refused);
  /// The command exited: its unterminated last line is read, and a full set still open is
  /// dropped (true when one was).
  bool finish(std::vector<StreamEvent> &events, std::vector<Refusal> &refused);

 private:
  void line(const Line &l, std::vector<StreamEvent> &events, std::vector<Refusal> &refused);

  LineSplitter splitter_;
  std::size_t max_set_bytes_;
  bool in_set_ = false;         // "=NAME" lines seen since the last "="
  bool set_too_large_ = false;  // this set is refused at its "="
  std::size_t set_bytes_ = 0;
  std::vector<std::string> set_;
  std::vector<Line> lines_;  // scratch
};

}  // namespace clusterd::exec
