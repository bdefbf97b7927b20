// The exec strategy's line protocol; see exec_lines.hpp.
#include "exec_lines.hpp"

#include <algorithm>

namespace clusterd::exec {

namespace {

Refusal refusal(std::string_view line, std::string why) {
  std::string shown(line.substr(0, kShownBytes));
  if (line.size() > kShownBytes) shown += "...";
  return Refusal{std::move(shown), std::move(why)};
}

void sort_unique(std::vector<std::string> &names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
}

}  // namespace

void LineSplitter::feed(std::string_view bytes, std::vector<Line> &lines) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    if (!overlong_) {
      if (partial_.size() + piece.size() > kMaxLine) {
        partial_.append(piece.substr(0, kShownBytes));
        partial_.resize(kShownBytes);  // the line has more than that
        lines.push_back(Line{std::move(partial_), true});
        overlong_ = true;
      } else {
        partial_.append(piece);
      }
    }
    if (nl == std::string_view::npos) return;
    if (!overlong_) {
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      lines.push_back(Line{std::move(partial_), false});
    }
    partial_.clear();
    overlong_ = false;
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(std::vector<Line> &lines) {
  if (!partial_.empty() && !overlong_) feed("\n", lines);
  partial_.clear();
  overlong_ = false;
}

Refusal too_long(const Line &line) {
  return Refusal{line.text + "...", "longer than " + std::to_string(kMaxLine) + " bytes"};
}

std::string_view meaningful(std::string_view line) {
  const char *blanks = " \t\r\v\f";
  const auto begin = line.find_first_not_of(blanks);
  if (begin == std::string_view::npos) return {};
  line = line.substr(begin, line.find_last_not_of(blanks) - begin + 1);
  return line.front() == '#' ? std::string_view() : line;
}

ListAnswer parse_list(std::string_view output) {
  ListAnswer answer;
  LineSplitter splitter;
  std::vector<Line> lines;
  splitter.feed(output, lines);
  splitter.finish(lines);
  for (const auto &l : lines) {
    if (l.too_long)
      answer.refused.push_back(too_long(l));
    else if (const auto name = meaningful(l.text); !name.empty())
      answer.nodes.emplace_back(name);
  }
  sort_unique(answer.nodes);
  return answer;
}

void StreamParser::feed(std::string_view bytes, std::vector<StreamEvent> &events,
                        std::vector<Refusal> &refused) {
  lines_.clear();
  splitter_.feed(bytes, lines_);
  for (const auto &l : lines_) line(l, events, refused);
}

bool StreamParser::finish(std::vector<StreamEvent> &events, std::vector<Refusal> &refused) {
  lines_.clear();
  splitter_.finish(lines_);
  for (const auto &l : lines_) line(l, events, refused);
  const bool open = in_set_;
  in_set_ = set_too_large_ = false;
  set_bytes_ = 0;
  set_.clear();
  return open;
}

void StreamParser::line(const Line &l, std::vector<StreamEvent> &events,
                        std::vector<Refusal> &refused) {
  if (l.too_long) return refused.push_back(too_long(l));
  const std::string_view text = meaningful(l.text);
  if (text.empty()) return;
  const char sign = text.front();
  const std::string_view name = meaningful(text.substr(1));
  if (sign == '=' && text.size() == 1) {  // the end of a full set
    if (set_too_large_) {
      refused.push_back(refusal(text, "ends a full set of more than " +
                                          std::to_string(max_set_bytes_) +
                                          " bytes of names: the set is ignored"));
    } else {
      StreamEvent e;
      e.kind = StreamEvent::Kind::kFullSet;
      e.nodes = std::move(set_);
      sort_unique(e.nodes);
      events.push_back(std::move(e));
    }
    in_set_ = set_too_large_ = false;
    set_bytes_ = 0;
    set_.clear();
    return;
  }
  if ((sign != '+' && sign != '-' && sign != '=') || name.empty()) {
    refused.push_back(refusal(text, "expected +NAME, -NAME, =NAME or ="));
    return;
  }
  if (sign == '=') {
    in_set_ = true;
    if (set_too_large_) return;
    set_bytes_ += name.size();
    if (set_bytes_ > max_set_bytes_) {
      set_too_large_ = true;
      set_.clear();
      return;
    }
    set_.emplace_back(name);
    return;
  }
  StreamEvent e;
  e.kind = sign == '+' ? StreamEvent::Kind::kSeen : StreamEvent::Kind::kLost;
  e.node = std::string(name);
  events.push_back(std::move(e));
}

}  // namespace clusterd::exec
