#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/schema.hpp"

using namespace clusterd::config;

namespace {

// A declared option without constraints (those are constraints_test.cpp's).
OptionSpec spec(std::string key, std::uint32_t type, std::uint32_t flags,
                std::optional<std::string> default_value, std::vector<std::string> choices,
                std::string description) {
  OptionSpec o;
  o.key = std::move(key);
  o.type = type;
  o.flags = flags;
  o.default_value = std::move(default_value);
  o.choices = std::move(choices);
  o.description = std::move(description);
  return o;
}

std::vector<OptionSpec> schema() {
  return {
      spec("hosts", CLUSTERD_OPT_STRING_LIST, CLUSTERD_OPT_REQUIRED, std::nullopt, {}, "nodes"),
      spec("timeout", CLUSTERD_OPT_DURATION, 0, "\"infinity\"", {}, "retry"),
      spec("port", CLUSTERD_OPT_INT, 0, "45892", {}, "port"),
      spec("broadcast_only", CLUSTERD_OPT_BOOL, 0, "false", {}, "broadcast"),
      spec("ratio", CLUSTERD_OPT_DOUBLE, 0, "0.5", {}, "ratio"),
      spec("mode", CLUSTERD_OPT_STRING, 0, "\"ip\"", {"ip", "dns", "hostname"}, "mode"),
      spec("secret", CLUSTERD_OPT_STRING, CLUSTERD_OPT_SECRET, std::nullopt, {}, "shared secret"),
      spec("keys", CLUSTERD_OPT_STRING_LIST, CLUSTERD_OPT_SECRET, std::nullopt, {}, "keys"),
  };
}

struct Checked {
  std::unique_ptr<OptionValues> values;
  std::vector<Problem> problems;
};

Checked check(const std::string &text) {
  Checked out;
  auto table = toml::parse(std::string_view(text), std::string_view("t.toml"));
  out.values = validate_options(schema(), &table, {"plugin"}, "t.toml", "t.toml:1:1",
                                "topologies.x.config.", "demo", out.problems);
  return out;
}

std::string problems_text(const Checked &c) {
  std::string s;
  for (const auto &p : c.problems) s += p.str() + "\n";
  return s;
}

}  // namespace

TEST(Schema, DefaultsAndConfiguredValuesReachTheCView) {
  auto c = check("hosts = [\"a@h\", \"b@h\"]\nport = 1234\n");
  ASSERT_TRUE(c.problems.empty()) << problems_text(c);
  const clusterd_config_t *cfg = c.values->view();
  uint32_t size = 0;
  ASSERT_EQ(cfg->get_list_size(cfg, "hosts", &size), CLUSTERD_OK);
  EXPECT_EQ(size, 2u);
  const char *item = nullptr;
  ASSERT_EQ(cfg->get_list_item(cfg, "hosts", 1, &item), CLUSTERD_OK);
  EXPECT_STREQ(item, "b@h");
  EXPECT_EQ(cfg->get_list_item(cfg, "hosts", 2, &item), CLUSTERD_E_INVALID_ARG);
  int64_t port = 0, timeout = 0;
  EXPECT_EQ(cfg->get_int(cfg, "port", &port), CLUSTERD_OK);
  EXPECT_EQ(port, 1234);
  EXPECT_EQ(cfg->get_duration_ms(cfg, "timeout", &timeout), CLUSTERD_OK);
  EXPECT_EQ(timeout, -1);
  int32_t flag = 7;
  EXPECT_EQ(cfg->get_bool(cfg, "broadcast_only", &flag), CLUSTERD_OK);
  EXPECT_EQ(flag, 0);
  double ratio = 0;
  EXPECT_EQ(cfg->get_double(cfg, "ratio", &ratio), CLUSTERD_OK);
  EXPECT_DOUBLE_EQ(ratio, 0.5);
  const char *mode = nullptr;
  EXPECT_EQ(cfg->get_string(cfg, "mode", &mode), CLUSTERD_OK);
  EXPECT_STREQ(mode, "ip");
  EXPECT_EQ(cfg->is_set(cfg, "port"), 1);
  EXPECT_EQ(cfg->is_set(cfg, "mode"), 0);
  EXPECT_STREQ(cfg->source_of(cfg, "port"), "t.toml:2:8");
  EXPECT_STREQ(cfg->source_of(cfg, "mode"), "");
  // Wrong type, unknown key, optional without default, NULL arguments.
  EXPECT_EQ(cfg->get_string(cfg, "port", &mode), CLUSTERD_E_TYPE);
  EXPECT_EQ(cfg->get_string(cfg, "nope", &mode), CLUSTERD_E_NOT_FOUND);
  EXPECT_EQ(cfg->get_string(cfg, "secret", &mode), CLUSTERD_E_NOT_FOUND);
  EXPECT_EQ(cfg->get_string(cfg, nullptr, &mode), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(cfg->get_int(cfg, "port", nullptr), CLUSTERD_E_INVALID_ARG);
}

TEST(Schema, UnknownOptionSuggestsTheClosestKey) {
  auto c = check("hosts = []\nhostz = []\n");
  ASSERT_EQ(c.problems.size(), 1u);
  EXPECT_EQ(c.problems[0].str(),
            "t.toml:2:9: topologies.x.config.hostz: unknown option for plugin 'demo' (did you mean "
            "'hosts'?)");
}

TEST(Schema, EveryTypeErrorIsReported) {
  auto c = check(
      "hosts = \"a@h\"\nport = \"x\"\ntimeout = \"soon\"\nbroadcast_only = 1\nratio = \"r\"\nmode "
      "= \"mac\"\n");
  auto text = problems_text(c);
  EXPECT_EQ(c.problems.size(), 6u) << text;
  EXPECT_NE(text.find("topologies.x.config.port: expected an integer"), std::string::npos) << text;
  EXPECT_NE(text.find("timeout: expected a duration"), std::string::npos);
  EXPECT_NE(text.find("broadcast_only: expected true or false"), std::string::npos);
  EXPECT_NE(text.find("ratio: expected a number"), std::string::npos);
  EXPECT_NE(text.find("mode: expected one of ip, dns, hostname"), std::string::npos);
}

// "expected X, found <type> <value>", with a hint when the fix is plain.
TEST(Schema, TypeErrorsShowWhatWasFound) {
  auto only = [](const std::string &text) {
    auto c = check("hosts = []\n" + text);
    EXPECT_EQ(c.problems.size(), 1u) << problems_text(c);
    return c.problems.empty() ? "" : c.problems[0].str();
  };
  EXPECT_EQ(only("port = \"45892\"\n"),
            "t.toml:2:8: topologies.x.config.port: expected an integer, found string \"45892\"; "
            "remove the quotes");
  EXPECT_EQ(only("port = \"x\"\n"),
            "t.toml:2:8: topologies.x.config.port: expected an integer, found string \"x\"");
  EXPECT_EQ(only("port = 1.5\n"),
            "t.toml:2:8: topologies.x.config.port: expected an integer, found float 1.5");
  EXPECT_EQ(only("broadcast_only = \"true\"\n"),
            "t.toml:2:18: topologies.x.config.broadcast_only: expected true or false, found "
            "string \"true\"; remove the quotes");
  EXPECT_EQ(only("ratio = \"0.25\"\n"),
            "t.toml:2:9: topologies.x.config.ratio: expected a number, found string \"0.25\"; "
            "remove the quotes");
  EXPECT_EQ(only("mode = 5\n"),
            "t.toml:2:8: topologies.x.config.mode: expected a string, found integer 5; put it "
            "in quotes");
  EXPECT_EQ(only("mode = \"dsn\"\n"),
            "t.toml:2:8: topologies.x.config.mode: expected one of ip, dns, hostname; found "
            "\"dsn\" (did you mean 'dns'?)");
  EXPECT_EQ(only("timeout = \"soon\"\n"),
            "t.toml:2:11: topologies.x.config.timeout: expected a duration such as \"5s\", "
            "\"250ms\", integer milliseconds or \"infinity\", found string \"soon\"");
  EXPECT_EQ(only("timeout = -5\n"),
            "t.toml:2:11: topologies.x.config.timeout: expected a duration such as \"5s\", "
            "\"250ms\", integer milliseconds or \"infinity\", found integer -5");
  EXPECT_EQ(only("mode = {a = 1}\n"),
            "t.toml:2:8: topologies.x.config.mode: expected a string, found table");
  // Long values are cut, so that a message stays one line.
  EXPECT_EQ(only("mode = [\"" + std::string(50, 'a') + "\", 1, 2, 3, 4, 5, 6]\n"),
            "t.toml:2:8: topologies.x.config.mode: expected a string, found array [\"" +
                std::string(40, 'a') + "...\", 1, 2, 3, 4, 5, ...]");
  EXPECT_EQ(
      only("mode = [11111, 22222, 33333, 44444, 55555, 66666, 77777, 88888, 99999, 10000, 11111, "
           "12222]\n"),
      "t.toml:2:8: topologies.x.config.mode: expected a string, found array [11111, 22222, "
      "33333, 44444, 55555, 66666, 77777, 88888, 99999, ...]");
}

// A duration string without a unit is refused (libcluster's integers stay milliseconds).
TEST(Schema, UnitlessDurationStringsAreRefused) {
  auto c = check("hosts = []\ntimeout = \"5\"\n");
  ASSERT_EQ(c.problems.size(), 1u) << problems_text(c);
  EXPECT_EQ(c.problems[0].str(),
            "t.toml:2:11: topologies.x.config.timeout: \"5\" has no unit: write \"5s\" or "
            "\"5ms\", or the integer 5 for milliseconds as in libcluster");
  auto ms = check("hosts = []\ntimeout = 5\n");
  ASSERT_TRUE(ms.problems.empty()) << problems_text(ms);
  EXPECT_EQ(ms.values->integer("timeout"), 5);
}

// A bare string is not a list of one: `hosts = "a"` among lists of many hides a missing [].
TEST(Schema, BareStringForAListIsRefused) {
  auto c = check("hosts = \"a@127.0.0.1\"\n");
  ASSERT_EQ(c.problems.size(), 1u) << problems_text(c);
  EXPECT_EQ(c.problems[0].str(),
            "t.toml:1:9: topologies.x.config.hosts: expected an array of strings, found string "
            "\"a@127.0.0.1\"; write [\"a@127.0.0.1\"]");
  auto several = check("hosts = \"a@h, b@h c@h\"\n");
  ASSERT_EQ(several.problems.size(), 1u) << problems_text(several);
  EXPECT_EQ(several.problems[0].str(),
            "t.toml:1:9: topologies.x.config.hosts: expected an array of strings, found string "
            "\"a@h, b@h c@h\"; write [\"a@h\", \"b@h\", \"c@h\"]");
  auto mixed = check("hosts = [\"a\", 5]\n");
  ASSERT_EQ(mixed.problems.size(), 1u) << problems_text(mixed);
  EXPECT_EQ(mixed.problems[0].str(),
            "t.toml:1:9: topologies.x.config.hosts: expected an array of strings, found integer "
            "5 as element #2");
}

// The value of a secret option is never quoted back, in any message.
TEST(Schema, SecretValuesAreNeverShown) {
  auto c = check("hosts = []\nsecret = 12345\nkeys = \"k3y-k3y\"\n");
  auto text = problems_text(c);
  EXPECT_EQ(text,
            "t.toml:2:10: topologies.x.config.secret: expected a string, found integer; put it "
            "in quotes\n"
            "t.toml:3:8: topologies.x.config.keys: expected an array of strings, found string; "
            "put it in brackets: [\"...\"]\n");
}

// A typo'd required key is one problem (the unknown key and its "did you mean"), not two.
TEST(Schema, TypoOfARequiredKeyIsOneProblem) {
  auto c = check("hsts = [\"a@h\"]\n");
  ASSERT_EQ(c.problems.size(), 1u) << problems_text(c);
  EXPECT_EQ(c.problems[0].str(),
            "t.toml:1:8: topologies.x.config.hsts: unknown option for plugin 'demo' (did you "
            "mean 'hosts'?)");
}

TEST(Schema, HostKeysAreNotThePlugins) {
  auto c = check("hosts = []\nplugin = \"demo\"\n");
  EXPECT_TRUE(c.problems.empty()) << problems_text(c);
}

TEST(Schema, NoTableMeansNoOptions) {
  std::vector<Problem> problems;
  auto values = validate_options(schema(), nullptr, {}, "t.toml", "t.toml:3:1",
                                 "topologies.x.config.", "demo", problems);
  ASSERT_EQ(problems.size(), 1u);  // only the required `hosts` is missing
  EXPECT_EQ(problems[0].where, "t.toml:3:1");
}

TEST(Schema, MissingRequiredOption) {
  auto c = check("port = 1\n");
  ASSERT_EQ(c.problems.size(), 1u);
  EXPECT_NE(c.problems[0].str().find(
                "topologies.x.config.hosts: missing required option of plugin 'demo'"),
            std::string::npos);
}

TEST(Schema, SecretsFromFileAndEnvironmentAreNeverEchoed) {
  auto dir = std::filesystem::temp_directory_path() / ("schema_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "secret") << "s3cret\n";
  auto from_file = check("hosts = []\nsecret_file = \"" + (dir / "secret").string() + "\"\n");
  ASSERT_TRUE(from_file.problems.empty()) << problems_text(from_file);
  const char *value = nullptr;
  from_file.values->view()->get_string(from_file.values->view(), "secret", &value);
  EXPECT_STREQ(value, "s3cret");  // trailing newline stripped

  ::setenv("SCHEMA_TEST_SECRET", "from-env", 1);
  auto from_env = check("hosts = []\nsecret_env = \"SCHEMA_TEST_SECRET\"\n");
  ASSERT_TRUE(from_env.problems.empty()) << problems_text(from_env);
  from_env.values->view()->get_string(from_env.values->view(), "secret", &value);
  EXPECT_STREQ(value, "from-env");

  auto both = check("hosts = []\nsecret = \"x\"\nsecret_env = \"SCHEMA_TEST_SECRET\"\n");
  EXPECT_NE(problems_text(both).find("set only one of secret, secret_file, secret_env"),
            std::string::npos);
  auto missing_env = check("hosts = []\nsecret_env = \"SCHEMA_TEST_UNSET_VARIABLE\"\n");
  EXPECT_NE(problems_text(missing_env).find("SCHEMA_TEST_UNSET_VARIABLE is not set"),
            std::string::npos);
  auto missing_file = check("hosts = []\nsecret_file = \"/nonexistent/secret\"\n");
  EXPECT_NE(problems_text(missing_file).find("cannot read '/nonexistent/secret'"),
            std::string::npos);
  // A secret list: one item per non-empty line, from a file or the environment.
  std::ofstream(dir / "keys") << "first\r\n\nsecond\n";
  auto keys = check("hosts = []\nkeys_file = \"" + (dir / "keys").string() + "\"\n");
  ASSERT_TRUE(keys.problems.empty()) << problems_text(keys);
  uint32_t count = 0;
  keys.values->view()->get_list_size(keys.values->view(), "keys", &count);
  ASSERT_EQ(count, 2u);
  keys.values->view()->get_list_item(keys.values->view(), "keys", 1, &value);
  EXPECT_STREQ(value, "second");
  ::setenv("SCHEMA_TEST_KEYS", "one\ntwo\nthree", 1);
  auto env_keys = check("hosts = []\nkeys_env = \"SCHEMA_TEST_KEYS\"\n");
  ASSERT_TRUE(env_keys.problems.empty()) << problems_text(env_keys);
  env_keys.values->view()->get_list_size(env_keys.values->view(), "keys", &count);
  EXPECT_EQ(count, 3u);

  auto wrong_type = check("hosts = []\nsecret = 12345\n");
  EXPECT_EQ(problems_text(wrong_type).find("12345"), std::string::npos);  // value not echoed
  std::filesystem::remove_all(dir);
}

TEST(Schema, OptionSpecsAreChecked) {
  EXPECT_EQ(check_schema({spec("a", CLUSTERD_OPT_INT, 0, "12", {}, "")}), "");
  EXPECT_NE(check_schema({spec("a", CLUSTERD_OPT_INT, 0, "\"x\"", {}, "")}), "");
  EXPECT_NE(check_schema({spec("a", 99, 0, std::nullopt, {}, "")}), "");
  EXPECT_NE(check_schema({spec("", CLUSTERD_OPT_INT, 0, std::nullopt, {}, "")}), "");
  EXPECT_NE(check_schema({spec("a", CLUSTERD_OPT_DURATION, 0, "\"soon\"", {}, "")}), "");
}
