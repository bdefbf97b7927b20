// The parser of OTP's `.hosts.erlang` file (net_adm:host_file/0 reads it with file:consult):
// a sequence of Erlang terms, each ended by a '.' followed by whitespace, a '%' comment or the
// end of the file. A pure function on bytes, fuzzed by tests/fuzz/hosts_erlang_fuzz.cpp.
//
// Accepted terms, each one host name:
//   'host1.example.com'.     quoted atom (Erlang escapes: \n \t \\ \' \x41 \x{41} \101 \^A ...)
//   host2.                   unquoted atom: [a-z][A-Za-z0-9_@]*, not a reserved word ("end")
//   "host3".                 a string (net_adm:names/1 takes strings too); adjacent strings
//                            are concatenated, as in Erlang
// `%` starts a comment to the end of the line; any whitespace (bytes 0x00..0x20, as Erlang's
// scanner treats them) separates tokens; a UTF-8 byte order mark at the start is skipped.
// Anything else (numbers, variables, tuples, lists, two atoms in one term, a missing '.')
// is a syntax error with the 1-based line and column (in bytes) of the offending token. A host
// name must also be usable in a node name "alive@host": not empty, at most 255 characters,
// no '@', no whitespace and no control character.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clusterd::erlang_hosts {

struct SyntaxError {
  int line = 0;    // 1-based
  int column = 0;  // 1-based, in bytes
  std::string message;
};

// Parses `text`. On success returns true and sets `hosts` (in file order, duplicates kept);
// on failure returns false, sets `error` and leaves `hosts` unchanged.
bool parse_hosts_erlang(std::string_view text, std::vector<std::string> &hosts, SyntaxError &error);

}  // namespace clusterd::erlang_hosts
