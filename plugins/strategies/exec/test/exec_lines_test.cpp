// The exec strategy's line protocol: periodic lists, the stream's +/-/= lines, bounds, and the
// same meaning whatever the chunks the pipe delivers.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec_lines.hpp"

namespace {

namespace ex = clusterd::exec;
using Kind = ex::StreamEvent::Kind;
using Names = std::vector<std::string>;

struct Fed {
  std::vector<ex::StreamEvent> events;
  std::vector<ex::Refusal> refused;
  bool open_set = false;
};

// `text` fed in chunks of `chunk` bytes (0 = at once), then the end of the stream.
Fed feed(std::string_view text, std::size_t chunk = 0, std::size_t max_set = 1 << 20) {
  ex::StreamParser parser(max_set);
  Fed out;
  if (chunk == 0) chunk = text.size() + 1;
  for (std::size_t i = 0; i < text.size(); i += chunk)
    parser.feed(text.substr(i, chunk), out.events, out.refused);
  out.open_set = parser.finish(out.events, out.refused);
  return out;
}

// The events as a readable script: "+a", "-b", "=[a,b]".
std::vector<std::string> script(const Fed &f) {
  std::vector<std::string> out;
  for (const auto &e : f.events) {
    if (e.kind == Kind::kSeen) out.push_back("+" + e.node);
    if (e.kind == Kind::kLost) out.push_back("-" + e.node);
    if (e.kind == Kind::kFullSet) {
      std::string s = "=[";
      for (std::size_t i = 0; i < e.nodes.size(); ++i) s += (i ? "," : "") + e.nodes[i];
      out.push_back(s + "]");
    }
  }
  return out;
}

TEST(ExecList, OneNamePerLineTrimmedSortedUnique) {
  const auto a = ex::parse_list("  b@h\t\r\n\n# a comment\na@h\nb@h\nlast@h");
  EXPECT_EQ(a.nodes, (Names{"a@h", "b@h", "last@h"}));
  EXPECT_TRUE(a.refused.empty());
}

TEST(ExecList, EmptyOutputIsTheEmptySet) {
  EXPECT_TRUE(ex::parse_list("").nodes.empty());
  EXPECT_TRUE(ex::parse_list("\n \n#x\n").nodes.empty());
}

TEST(ExecList, InvalidNamesArePassedOnForTheHostToRefuse) {
  // The node-name rule is the host's (it counts refusals at the sink): passed on as written.
  EXPECT_EQ(ex::parse_list("not a node\n").nodes, (Names{"not a node"}));
}

TEST(ExecList, OverlongLineIsRefusedAndTheRestKept) {
  const std::string output = "a@h\n" + std::string(5000, 'x') + "\nb@h\n";
  const auto a = ex::parse_list(output);
  EXPECT_EQ(a.nodes, (Names{"a@h", "b@h"}));
  ASSERT_EQ(a.refused.size(), 1u);
  EXPECT_EQ(a.refused[0].line, std::string(80, 'x') + "...");
  EXPECT_NE(a.refused[0].why.find("longer than 1024 bytes"), std::string::npos);
}

TEST(ExecStream, EventsInOrder) {
  const auto f = feed("+a@h\n+ b@h \n-a@h\n# comment\n\n");
  EXPECT_EQ(script(f), (Names{"+a@h", "+b@h", "-a@h"}));
  EXPECT_TRUE(f.refused.empty());
  EXPECT_FALSE(f.open_set);
}

TEST(ExecStream, FullSetAppliesAtItsClosingLine) {
  const auto f = feed("=b@h\n=a@h\n=a@h\n=\n+c@h\n=\n");
  EXPECT_EQ(script(f), (Names{"=[a@h,b@h]", "+c@h", "=[]"}));
}

TEST(ExecStream, EventsInsideAFullSetApplyAtOnce) {
  const auto f = feed("=a@h\n+x@h\n=b@h\n=\n");
  EXPECT_EQ(script(f), (Names{"+x@h", "=[a@h,b@h]"}));
}

TEST(ExecStream, FullSetCutShortByTheExitIsDropped) {
  const auto f = feed("+a@h\n=b@h\n=c@h\n");
  EXPECT_EQ(script(f), (Names{"+a@h"}));
  EXPECT_TRUE(f.open_set);
}

TEST(ExecStream, UnterminatedLastLineIsReadAtTheEnd) {
  EXPECT_EQ(script(feed("+a@h\n-a@h")), (Names{"+a@h", "-a@h"}));
  EXPECT_EQ(script(feed("=a@h\n=")), (Names{"=[a@h]"}));
}

TEST(ExecStream, MalformedLinesAreRefused) {
  const auto f = feed("a@h\n+\n-  \n*x\n+ok@h\n");
  EXPECT_EQ(script(f), (Names{"+ok@h"}));
  ASSERT_EQ(f.refused.size(), 4u);
  EXPECT_EQ(f.refused[0].line, "a@h");
  EXPECT_EQ(f.refused[0].why, "expected +NAME, -NAME, =NAME or =");
  EXPECT_EQ(f.refused[1].line, "+");
  EXPECT_EQ(f.refused[2].line, "-");
}

TEST(ExecStream, OversizedFullSetIsRefusedWhole) {
  const auto f = feed("=aaaa@h\n=bbbb@h\n=cccc@h\n=\n=d@h\n=\n", 0, /*max_set=*/12);
  EXPECT_EQ(script(f), (Names{"=[d@h]"}));
  ASSERT_EQ(f.refused.size(), 1u);
  EXPECT_NE(f.refused[0].why.find("more than 12 bytes"), std::string::npos);
}

TEST(ExecStream, OverlongLineDoesNotBecomeANameAndTheNextLineIsRead) {
  const std::string text = "+" + std::string(3000, 'y') + "\n+ok@h\n";
  const auto f = feed(text, 7);
  EXPECT_EQ(script(f), (Names{"+ok@h"}));
  ASSERT_EQ(f.refused.size(), 1u);
  EXPECT_EQ(f.refused[0].line, "+" + std::string(79, 'y') + "...");
}

TEST(ExecStream, SameMeaningWhateverTheChunks) {
  const std::string text =
      "+a@h\r\n=b@h\n=c@h\n=\n-a@h\nbad\n+" + std::string(2000, 'z') + "\n# c\n=\n+tail@h";
  const auto whole = feed(text);
  for (std::size_t chunk : {1u, 2u, 3u, 5u, 64u, 1023u, 1024u, 1025u}) {
    const auto f = feed(text, chunk);
    EXPECT_EQ(script(f), script(whole)) << "chunk " << chunk;
    ASSERT_EQ(f.refused.size(), whole.refused.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < f.refused.size(); ++i)
      EXPECT_EQ(f.refused[i].line, whole.refused[i].line) << "chunk " << chunk;
  }
  EXPECT_EQ(script(whole), (Names{"+a@h", "=[b@h,c@h]", "-a@h", "=[]", "+tail@h"}));
}

}  // namespace
