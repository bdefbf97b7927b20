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
  EXPECT_EQ(c.problems.size(), 5u) << text;  // a single string is a list of one: hosts is fine
  EXPECT_NE(text.find("topologies.x.config.port: expected an integer"), std::string::npos) << text;
  EXPECT_NE(text.find("timeout: expected a duration"), std::string::npos);
  EXPECT_NE(text.find("broadcast_only: expected true or false"), std::string::npos);
  EXPECT_NE(text.find("ratio: expected a number"), std::string::npos);
  EXPECT_NE(text.find("mode: expected one of ip, dns, hostname"), std::string::npos);
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
