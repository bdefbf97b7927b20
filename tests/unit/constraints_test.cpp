// Option constraints (ABI 1.3): formats, ranges, non-empty, finite, needs/conflicts, and the
// checks of a declared schema, through the same validator the daemon and `clusterd check` use.
#include <gtest/gtest.h>

#include <clusterd/options.hpp>

#include "config/constraints.hpp"
#include "config/schema.hpp"

using namespace clusterd::config;
namespace opt = clusterd::option;

namespace {

// The problems of `text` (the body of a [t] table) against `options`, as "key: message" lines.
std::string problems_of(std::vector<clusterd_option_t> options, const std::string &text) {
  std::vector<OptionSpec> schema;
  for (const auto &o : options) schema.push_back(option_spec(o));
  EXPECT_EQ(check_schema(schema), "");
  const std::string document = "[t]\n" + text;
  auto doc = toml::parse(std::string_view(document), std::string("t.toml"));
  std::vector<Problem> problems;
  validate_options(schema, doc["t"].as_table(), {}, "t.toml", "t.toml:1:1", "t.", "demo", problems);
  std::string out;
  for (const auto &p : problems) out += p.str() + "\n";
  return out;
}

}  // namespace

TEST(Formats, AcceptAndRefuse) {
  struct Case {
    std::uint32_t format;
    std::vector<const char *> good, bad;
  };
  const Case cases[] = {
      {CLUSTERD_FORMAT_NODE_NAME,
       {"a@b", "app@10.0.0.1", "app@host.example.com", "a@::1"},
       {"a", "@h", "a@", "a b@h", "a@b@c", "a\x01@h"}},
      {CLUSTERD_FORMAT_NODE_BASENAME, {"app", "my_app-1"}, {"a@b", "a b", "a\tb", "x\x7f"}},
      {CLUSTERD_FORMAT_HOST_PORT,
       {"h", "h.example:80", "10.0.0.1", "10.0.0.1:53", "::1", "[::1]", "[::1]:53"},
       {"", "h:0", "h:65536", "h:x", "[::1]:", "a b", "h:80:90", "-h"}},
      {CLUSTERD_FORMAT_IPV4, {"0.0.0.0", "198.18.0.1"}, {"::1", "1.2.3", "1.2.3.256", "h"}},
      {CLUSTERD_FORMAT_IPV6, {"::1", "fe80::1"}, {"1.2.3.4", "[::1]", "h"}},
      {CLUSTERD_FORMAT_IP, {"::1", "1.2.3.4"}, {"h", "1.2.3.4:5"}},
      {CLUSTERD_FORMAT_HTTPS_URL,
       {"https://h", "https://h:6443/api", "https://[::1]:443/"},
       {"http://h", "https://", "ftp://h", "h", "https://h /x", "https://u@h"}},
      {CLUSTERD_FORMAT_URL, {"http://h/x", "https://h"}, {"h/x", "file:///etc/passwd"}},
      {CLUSTERD_FORMAT_IP_PORT,
       {"127.0.0.1:9568", "[::1]:0"},
       {"127.0.0.1", "localhost:9568", "::1:9568", "1.2.3.4:65536"}},
  };
  for (const auto &c : cases) {
    for (const char *text : c.good) EXPECT_EQ(check_format(c.format, text), "") << text;
    for (const char *text : c.bad) EXPECT_NE(check_format(c.format, text), "") << text;
  }
  EXPECT_NE(check_format(99, "x"), "");
}

TEST(Constraints, RangesOfEveryKind) {
  EXPECT_EQ(problems_of({opt::range(opt::integer("port", "p", "1"), 1, 65535)}, "port = 0\n"),
            "t.toml:2:8: t.port: must be from 1 to 65535, not 0\n");
  EXPECT_EQ(problems_of({opt::finite(opt::positive(opt::duration("d", "d", "\"5s\"")))}, "d = 0\n"),
            "t.toml:2:5: t.d: must be at least 1ms, not 0ms\n");
  EXPECT_EQ(problems_of({opt::finite(opt::duration("d", "d", "\"5s\""))}, "d = \"infinity\"\n"),
            "t.toml:2:5: t.d: must be a finite duration (\"infinity\" is not allowed here)\n");
  // Without finite(), infinity passes a minimum but never a maximum.
  EXPECT_EQ(problems_of({opt::positive(opt::duration("d", "d", "\"5s\""))}, "d = \"infinity\"\n"),
            "");
  EXPECT_EQ(
      problems_of({opt::at_most(opt::duration("d", "d", "\"5s\""), 60'000)}, "d = \"infinity\"\n"),
      "t.toml:2:5: t.d: must be at most 1m, not \"infinity\"\n");
  EXPECT_EQ(problems_of({opt::range(opt::string("s", "s"), 2, 3)}, "s = \"abcd\"\n"),
            "t.toml:2:5: t.s: must be from 2 to 3 bytes long, not 4\n");
  EXPECT_EQ(problems_of({opt::at_most(opt::string_list("l", "l"), 1)}, "l = [\"a\", \"b\"]\n"),
            "t.toml:2:5: t.l: must have at most 1 element(s), not 2\n");
}

TEST(Constraints, NonEmptyAndFormatOfListElements) {
  auto hosts =
      opt::nonempty(opt::format(opt::string_list("hosts", "h"), CLUSTERD_FORMAT_NODE_NAME));
  EXPECT_EQ(problems_of({hosts}, "hosts = []\n"),
            "t.toml:2:9: t.hosts: needs at least one element\n");
  EXPECT_EQ(problems_of({hosts}, "hosts = [\"a@b\", \"\"]\n"),
            "t.toml:2:9: t.hosts: element #2 must not be empty\n");
  EXPECT_EQ(problems_of({hosts}, "hosts = [\"a@b\", \"nohost\"]\n"),
            "t.toml:2:9: t.hosts: element #2 \"nohost\" is not a node name: no '@' (expected "
            "name@host)\n");
  // A value that does not fit on a line is cut, and control bytes are escaped.
  auto long_bad = problems_of({hosts}, "hosts = [\"" + std::string(200, 'x') + "\\u0001\"]\n");
  EXPECT_NE(long_bad.find("...\""), std::string::npos) << long_bad;
  EXPECT_EQ(problems_of({hosts}, "hosts = [\"x\\u0001y\"]\n"),
            "t.toml:2:9: t.hosts: element #1 \"x\\x01y\" is not a node name: no '@' (expected "
            "name@host)\n");
}

TEST(Constraints, SecretValuesAreNeverQuoted) {
  auto key =
      opt::at_least(opt::format(opt::secret(opt::string("key", "k")), CLUSTERD_FORMAT_IPV4), 20);
  EXPECT_EQ(problems_of({key}, "key = \"hunter2\"\n"),
            "t.toml:2:7: t.key: is not an IPv4 address (a.b.c.d)\n");
  auto long_key = opt::at_least(opt::secret(opt::string("key", "k")), 20);
  EXPECT_EQ(problems_of({long_key}, "key = \"hunter2\"\n"),
            "t.toml:2:7: t.key: must be at least 20 bytes long\n");
}

TEST(Constraints, NeedsAndConflictsCountOnlyWhatIsWritten) {
  std::vector<clusterd_option_t> tls = {
      opt::needs(opt::string("cert", "c"), "key"),
      opt::string("key", "k", "\"default-key\""),  // a default does not satisfy needs
      opt::conflicts(opt::string("plain", "p"), "cert"),
  };
  EXPECT_EQ(problems_of(tls, "cert = \"c.pem\"\n"),
            "t.toml:2:8: t.cert: needs 'key' to be set as well\n");
  EXPECT_EQ(problems_of(tls, "cert = \"c.pem\"\nkey = \"k.pem\"\n"), "");
  EXPECT_EQ(problems_of(tls, "cert = \"c.pem\"\nkey = \"k.pem\"\nplain = \"yes\"\n"),
            "t.toml:4:9: t.plain: set either 'plain' or 'cert', not both\n");
  // A key with a bad value still counts as written: no second, spurious problem.
  EXPECT_EQ(problems_of(tls, "cert = \"c.pem\"\nkey = 5\n"),
            "t.toml:3:7: t.key: expected a string, found integer 5; put it in quotes\n");
}

TEST(Constraints, FiniteDurationTypeErrorDoesNotOfferInfinity) {
  auto d = problems_of({opt::finite(opt::duration("d", "d", "\"5s\""))}, "d = true\n");
  EXPECT_EQ(d.find("infinity"), std::string::npos) << d;
  auto any = problems_of({opt::duration("d", "d", "\"5s\"")}, "d = true\n");
  EXPECT_NE(any.find("infinity"), std::string::npos) << any;
}

TEST(Schema, ConstraintsMustFitTheOption) {
  auto check = [](clusterd_option_t o, std::vector<clusterd_option_t> more = {}) {
    std::vector<OptionSpec> schema{option_spec(o)};
    for (const auto &m : more) schema.push_back(option_spec(m));
    return check_schema(schema);
  };
  EXPECT_EQ(check(opt::range(opt::integer("p", "p", "5"), 1, 9)), "");
  EXPECT_NE(check(opt::format(opt::integer("p", "p"), CLUSTERD_FORMAT_IPV4)), "");
  EXPECT_NE(check(opt::format(opt::string("p", "p"), 42)), "");
  EXPECT_NE(check(opt::nonempty(opt::integer("p", "p"))), "");
  EXPECT_NE(check(opt::finite(opt::integer("p", "p"))), "");
  EXPECT_NE(check(opt::range(opt::boolean("p", "p"), 0, 1)), "");
  EXPECT_NE(check(opt::range(opt::integer("p", "p"), 9, 1)), "");
  EXPECT_NE(check(opt::needs(opt::string("p", "p"), "q")), "");  // q is not declared
  EXPECT_EQ(check(opt::needs(opt::string("p", "p"), "q"), {opt::string("q", "q")}), "");
  EXPECT_NE(check(opt::needs(opt::string("p", "p"), "p")), "");  // itself
  // A default must meet its own constraints.
  auto bad_default = check(opt::range(opt::integer("p", "p", "0"), 1, 9));
  EXPECT_NE(bad_default.find("breaks its own constraint"), std::string::npos) << bad_default;
}

TEST(Schema, PluginsBeforeAbi13HaveNoConstraints) {
  // An older plugin's option struct ends before the constraint fields: its other flag bits
  // (garbage to it) are ignored, whatever they are.
  auto o = opt::string("s", "s");
  o.flags |= CLUSTERD_OPT_NONEMPTY | CLUSTERD_OPT_MIN;
  o.min = 5;
  auto spec = option_spec(o, false);
  EXPECT_FALSE(spec.nonempty());
  EXPECT_FALSE(spec.min);
  EXPECT_EQ(describe_constraints(spec), "");
  EXPECT_EQ(describe_constraints(option_spec(o)), "non-empty; at least 5 bytes long");
}

TEST(Durations, ReadAsWritten) {
  EXPECT_EQ(duration_text(0), "0ms");
  EXPECT_EQ(duration_text(1500), "1500ms");
  EXPECT_EQ(duration_text(5000), "5s");
  EXPECT_EQ(duration_text(120'000), "2m");
  EXPECT_EQ(duration_text(7'200'000), "2h");
  EXPECT_EQ(duration_text(-1), "infinity");
}
