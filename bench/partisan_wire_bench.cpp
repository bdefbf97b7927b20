// partisan transport: cost of the wire codec on the message hot path (encode_message, then
// FrameReader splitting and decoding in place) and of a MEMBERS list, so that the codec's share
// of the transport's latency and throughput is known. Prints figures; no thresholds.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

#include "wire.hpp"

namespace {

namespace wire = clusterd::partisan::wire;

// One MESSAGE of range(0) bytes: encoded, fed to a reader, decoded into a reused Frame.
void BM_MessageRoundTrip(benchmark::State &state) {
  const std::string data(static_cast<std::size_t>(state.range(0)), 'm');
  wire::FrameReader reader(data.size() + wire::kFrameSlack);
  wire::Frame frame;
  std::string out, error;
  std::uint64_t id = 0;
  for (auto _ : state) {
    out.clear();
    wire::encode_message(++id, data, out);
    std::memcpy(reader.prepare(out.size()), out.data(), out.size());
    reader.commit(out.size());
    if (reader.next(frame, error) != wire::FrameReader::Result::kFrame)
      state.SkipWithError("decode");
    benchmark::DoNotOptimize(frame);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_MessageRoundTrip)->Arg(64)->Arg(64 << 10);

// A stream of 64-byte MESSAGEs arriving in 64 KiB reads, as from a busy socket: frames per
// second that one reader splits and decodes.
void BM_MessageStream(benchmark::State &state) {
  const std::string data(64, 'm');
  std::string stream;
  while (stream.size() < (64 << 10)) wire::encode_message(stream.size(), data, stream);
  wire::FrameReader reader(1 << 20);
  wire::Frame frame;
  std::string error;
  const std::size_t read = 65536;
  std::size_t offset = 0;
  std::int64_t frames = 0;
  for (auto _ : state) {
    const std::size_t n = std::min(read, stream.size() - offset);
    std::memcpy(reader.prepare(n), stream.data() + offset, n);
    reader.commit(n);
    offset = (offset + n) % stream.size();
    while (reader.next(frame, error) == wire::FrameReader::Result::kFrame) ++frames;
  }
  state.counters["frames/s"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * read);
}
BENCHMARK(BM_MessageStream);

// A MEMBERS list of range(0) members (what every gossip round sends): encode + decode.
void BM_Members(benchmark::State &state) {
  wire::Members members;
  for (int i = 0; i < state.range(0); ++i)
    members.members.push_back({"clusterd" + std::to_string(i) + "@10.0.0." + std::to_string(i),
                               "10.0.0." + std::to_string(i) + ":9200",
                               1'700'000'000'000'000'000u + static_cast<std::uint64_t>(i),
                               wire::MemberState::kAlive});
  const wire::Frame in = members;
  wire::Frame frame;
  std::string out, error;
  for (auto _ : state) {
    out.clear();
    wire::encode(in, out);
    if (!wire::decode(std::string_view(out).substr(4), frame, error)) state.SkipWithError("decode");
    benchmark::DoNotOptimize(frame);
  }
}
BENCHMARK(BM_Members)->Arg(5)->Arg(50);

}  // namespace
