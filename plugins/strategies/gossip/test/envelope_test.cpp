// The crypto envelope: libcluster's CBC `secret` mode byte for byte against the fixture, and
// the authenticated mode's refusals (wrong key, tampering, stale, replay, cache overflow).
#include <gtest/gtest.h>

#include <string>

#include "envelope.hpp"
#include "fixtures.hpp"

namespace {

using clusterd::gossip::Drop;
using clusterd::gossip::drop_name;
using clusterd::gossip::Envelope;
using std::chrono::milliseconds;

constexpr std::int64_t kNow = 1'700'000'000'000;  // Unix ms
const std::string kKeyA = "0123456789abcdef-key-A";
const std::string kKeyB = "0123456789abcdef-key-B";

clusterd::gossip::ByteView view(const std::string &s) {
  return {reinterpret_cast<const std::uint8_t *>(s.data()), s.size()};
}

class GossipEnvelope : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(clusterd::crypto::load(error)) << error;
  }
  // Opens `packet`: the heartbeat, or "refused: REASON".
  static std::string open(Envelope &e, const std::string &packet, std::int64_t now = kNow) {
    std::string heartbeat;
    Drop reason{};
    if (!e.open(view(packet), now, heartbeat, reason))
      return std::string("refused: ") + drop_name(reason);
    return heartbeat;
  }
};

TEST_F(GossipEnvelope, LibclusterSecretModeByteForByte) {
  const std::string plain = gossip_fixture("heartbeat-atom-ext.bin");
  const std::string sealed = gossip_fixture("heartbeat-secret-s3cret.bin");
  Envelope e = Envelope::libcluster("s3cret");
  EXPECT_EQ(e.seal_with(plain, kNow, view(sealed.substr(0, 16))), sealed);
  EXPECT_EQ(open(e, sealed), plain);
  const std::string fresh = e.seal(plain, kNow);
  EXPECT_EQ(fresh.size(), sealed.size());
  EXPECT_NE(fresh.substr(0, 16), sealed.substr(0, 16)) << "a fresh random IV per datagram";
  EXPECT_EQ(open(e, fresh), plain);
}

TEST_F(GossipEnvelope, LibclusterSecretModeRefusals) {
  Envelope e = Envelope::libcluster("s3cret");
  Envelope other = Envelope::libcluster("another");
  const std::string sealed = gossip_fixture("heartbeat-secret-s3cret.bin");
  EXPECT_EQ(open(e, gossip_fixture("bad-secret-wrong-iv-len.bin")), "refused: too_short");
  EXPECT_EQ(open(e, sealed.substr(0, 16)), "refused: bad_ciphertext");
  EXPECT_EQ(open(e, sealed.substr(0, 40)), "refused: bad_ciphertext");
  // A wrong secret nearly always breaks the padding; if it does not, the decoder refuses it.
  const std::string wrong = open(other, sealed);
  EXPECT_TRUE(wrong == "refused: bad_padding" || wrong.rfind("heartbeat::", 0) != 0) << wrong;
  // Plaintext heartbeats are not accepted in secret mode (as libcluster).
  EXPECT_NE(open(e, gossip_fixture("heartbeat-atom-ext.bin")),
            gossip_fixture("heartbeat-atom-ext.bin"));
}

TEST_F(GossipEnvelope, AeadRoundTripAndKeyRotation) {
  const std::string hb = gossip_fixture("heartbeat-atom-ext.bin");
  Envelope old_only = Envelope::aead({kKeyA}, milliseconds(30000));
  Envelope rotating = Envelope::aead({kKeyB, kKeyA}, milliseconds(30000));
  Envelope new_only = Envelope::aead({kKeyB}, milliseconds(30000));
  const std::string from_old = old_only.seal(hb, kNow);
  const std::string from_rotating = rotating.seal(hb, kNow);
  EXPECT_EQ(from_old.size(), clusterd::gossip::kAeadHeaderSize + hb.size() + 16);
  EXPECT_EQ(open(rotating, from_old), hb) << "every configured key opens";
  EXPECT_EQ(open(new_only, from_rotating), hb) << "the first key seals";
  EXPECT_EQ(open(old_only, from_rotating), "refused: unknown_key");
  EXPECT_EQ(open(new_only, from_old), "refused: unknown_key");
}

TEST_F(GossipEnvelope, AeadRefusesTamperingAndForeignPackets) {
  const std::string hb = gossip_fixture("heartbeat-atom-ext.bin");
  Envelope e = Envelope::aead({kKeyA}, milliseconds(30000));
  const std::string sealed = e.seal(hb, kNow);
  for (std::size_t i = 8; i < sealed.size(); ++i) {  // timestamp, nonce, ciphertext, tag
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(open(e, bad), "refused: auth_failed") << "flipped byte " << i;
  }
  EXPECT_EQ(open(e, hb), "refused: bad_magic");
  EXPECT_EQ(open(e, gossip_fixture("heartbeat-secret-s3cret.bin")), "refused: bad_magic");
  EXPECT_EQ(open(e, sealed.substr(0, 40)), "refused: too_short");
  EXPECT_EQ(open(e, ""), "refused: bad_magic");
  EXPECT_EQ(open(e, sealed), hb) << "the original still opens after the forgeries";
}

TEST_F(GossipEnvelope, AeadReplayWindowAndNonceCache) {
  const std::string hb = gossip_fixture("heartbeat-atom-ext.bin");
  Envelope e = Envelope::aead({kKeyA}, milliseconds(1000));
  const std::string sealed = e.seal(hb, kNow);
  EXPECT_EQ(open(e, sealed, kNow + 10), hb);
  EXPECT_EQ(open(e, sealed, kNow + 20), "refused: replay");
  EXPECT_EQ(open(e, sealed, kNow + 1001), "refused: stale");
  EXPECT_EQ(open(e, e.seal(hb, kNow + 5000), kNow + 20), "refused: stale") << "from the future";
  EXPECT_EQ(open(e, e.seal(hb, INT64_MIN), kNow), "refused: stale");
  EXPECT_EQ(open(e, e.seal(hb, INT64_MAX), kNow), "refused: stale");
}

TEST_F(GossipEnvelope, AeadCacheOverflowRefusesWhatItForgot) {
  const std::string hb = gossip_fixture("heartbeat-atom-ext.bin");
  Envelope e = Envelope::aead({kKeyA}, milliseconds(60000), 4);
  const std::string first = e.seal(hb, kNow);
  EXPECT_EQ(open(e, first), hb);
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(open(e, e.seal(hb, kNow + i), kNow + i), hb);
  // `first` was forgotten to make room: refused because it is not newer than what was dropped.
  EXPECT_EQ(open(e, first, kNow + 5), "refused: replay");
  EXPECT_EQ(open(e, e.seal(hb, kNow + 6), kNow + 6), hb);
}

TEST_F(GossipEnvelope, AeadRejectsShortKeys) {
  EXPECT_THROW(Envelope::aead({"short"}, milliseconds(1000)), std::invalid_argument);
  EXPECT_THROW(Envelope::aead({}, milliseconds(1000)), std::invalid_argument);
}

}  // namespace
