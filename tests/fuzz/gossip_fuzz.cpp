// libFuzzer target: the gossip heartbeat decoder and the crypto envelope openers
// (plugins/strategies/gossip), which read datagrams from the network. Every input goes
// through the plain decoder, libcluster's CBC opener and the authenticated opener. Besides
// "no crash, no UB, no leak", it checks their contracts and aborts when one is broken:
//   - an accepted heartbeat carries a valid node name and re-encodes to a packet that decodes
//     to the same name;
//   - the authenticated opener never accepts what it did not seal (no key is known to the
//     fuzzer's inputs), and accepts its own sealed packet exactly once.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp). Seeds: corpus/gossip/
// (libcluster's packets from tests/fixtures/gossip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "envelope.hpp"
#include "heartbeat.hpp"

namespace {

using clusterd::gossip::Drop;
using clusterd::gossip::Envelope;

constexpr std::int64_t kNow = 1'700'000'000'000;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_heartbeat(clusterd::gossip::ByteView packet) {
  std::string node;
  Drop reason{};
  if (!clusterd::gossip::decode_heartbeat(packet, node, reason)) {
    check(reason < Drop::kCount);
    return;
  }
  check(clusterd::gossip::announceable(node));
  for (const auto encoding :
       {clusterd::gossip::AtomEncoding::kOtp25, clusterd::gossip::AtomEncoding::kOtp26}) {
    const std::string again = clusterd::gossip::encode_heartbeat(node, encoding);
    std::string round;
    check(clusterd::gossip::decode_heartbeat(clusterd::crypto::bytes(again), round, reason));
    check(round == node);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static const bool loaded = [] {
    std::string error;
    return clusterd::crypto::load(error);
  }();
  check(loaded);
  const clusterd::gossip::ByteView packet(data, size);
  check_heartbeat(packet);

  std::string inner;
  Drop reason{};
  Envelope cbc = Envelope::libcluster("s3cret");
  if (cbc.open(packet, kNow, inner, reason)) check_heartbeat(clusterd::crypto::bytes(inner));

  Envelope aead = Envelope::aead({"fuzzing-key-0123456789"}, std::chrono::milliseconds(30000), 16);
  check(!aead.open(packet, kNow, inner, reason));
  check(reason == Drop::kBadMagic || reason == Drop::kTooShort || reason == Drop::kUnknownKey ||
        reason == Drop::kAuthFailed);
  // The input as a heartbeat, sealed: opens once, then is a replay.
  const std::string sealed =
      aead.seal(std::string(reinterpret_cast<const char *>(data), size), kNow);
  check(aead.open(clusterd::crypto::bytes(sealed), kNow, inner, reason));
  check(inner.size() == size);
  check(!aead.open(clusterd::crypto::bytes(sealed), kNow, inner, reason) &&
        reason == Drop::kReplay);
  return 0;
}
