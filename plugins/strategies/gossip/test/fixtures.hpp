// Reads a gossip fixture (tests/fixtures/gossip/NAME) for the codec and envelope tests.
#pragma once

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

inline std::string gossip_fixture(const std::string &name) {
  const std::string path = std::string(CLUSTERD_GOSSIP_FIXTURES) + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read fixture " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
