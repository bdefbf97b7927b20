// The start of untrusted text (an API answer, a watch line) for an error message: control
// characters become spaces and the text is cut at `max` bytes ("..." marks the cut), so a
// hostile answer can neither split a log line nor flood it. Header-only, like line_buffer.hpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace clusterd {

inline std::string printable_prefix(std::string_view text, std::size_t max = 200) {
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace clusterd
