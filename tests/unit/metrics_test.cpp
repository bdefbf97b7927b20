// The metrics listener's pure parts: the Prometheus text it writes, the figures plugins set
// through clusterd.metrics/1 (names, kinds, limits), and the HTTP request-head parser.
#include <gtest/gtest.h>

#include "metrics/exposition.hpp"
#include "metrics/plugin_metrics.hpp"
#include "metrics/request_head.hpp"

namespace clusterd::metrics {
namespace {

TEST(Exposition, FamiliesSamplesAndEscaping) {
  Exposition out;
  out.family("clusterd_x_total", "Help with \\ and\nnewline.", "counter");
  out.sample("clusterd_x_total", {{"topology", "a\"b\\c\nd"}}, 3);
  out.sample("clusterd_x_total", {}, 0.5);
  EXPECT_EQ(out.text(),
            "# HELP clusterd_x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE clusterd_x_total counter\n"
            "clusterd_x_total{topology=\"a\\\"b\\\\c\\nd\"} 3\n"
            "clusterd_x_total 0.5\n");
}

TEST(Exposition, HistogramBucketsAreCumulative) {
  Histogram h;
  h.observe(0.003);  // first bucket
  h.observe(0.2);    // le 0.25
  h.observe(100);    // only +Inf
  Exposition out;
  out.histogram("d_seconds", {{"topology", "t"}}, h);
  const auto &text = out.text();
  EXPECT_NE(text.find("d_seconds_bucket{topology=\"t\",le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{topology=\"t\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{topology=\"t\",le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{topology=\"t\",le=\"30\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{topology=\"t\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_count{topology=\"t\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_sum{topology=\"t\"} 100.203\n"), std::string::npos);
}

TEST(PluginMetrics, CountersGaugesAndTheirLabels) {
  PluginMetrics m;
  EXPECT_EQ(m.counter_add("gossip_dropped_total", "Drops.", "reason", "bad_magic", 2), CLUSTERD_OK);
  EXPECT_EQ(m.counter_add("gossip_dropped_total", nullptr, "reason", "bad_magic", 3), CLUSTERD_OK);
  EXPECT_EQ(m.counter_add("gossip_dropped_total", nullptr, "reason", "oversize", 1), CLUSTERD_OK);
  EXPECT_EQ(m.gauge_set("peers", "Peers.", nullptr, nullptr, 7), CLUSTERD_OK);
  EXPECT_EQ(m.gauge_set("peers", nullptr, nullptr, nullptr, 4), CLUSTERD_OK);
  Families families;
  m.collect(families, {{"topology", "g"}});
  Exposition out;
  write(out, families);
  EXPECT_EQ(out.text(),
            "# HELP clusterd_gossip_dropped_total Drops.\n"
            "# TYPE clusterd_gossip_dropped_total counter\n"
            "clusterd_gossip_dropped_total{topology=\"g\",reason=\"bad_magic\"} 5\n"
            "clusterd_gossip_dropped_total{topology=\"g\",reason=\"oversize\"} 1\n"
            "# HELP clusterd_peers Peers.\n"
            "# TYPE clusterd_peers gauge\n"
            "clusterd_peers{topology=\"g\"} 4\n");
}

TEST(PluginMetrics, RefusesBadNamesKindsAndTooManySeries) {
  PluginMetrics m;
  EXPECT_EQ(m.counter_add(nullptr, "", nullptr, nullptr, 1), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(m.counter_add("Upper", "", nullptr, nullptr, 1), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(m.counter_add("has-dash", "", nullptr, nullptr, 1), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(m.counter_add("x_total", "", "bad label", "v", 1), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(m.counter_add("x_total", "", "reason", nullptr, 1), CLUSTERD_E_INVALID_ARG);
  // The instance label is the host's.
  EXPECT_EQ(m.counter_add("x_total", "", "topology", "t", 1), CLUSTERD_E_INVALID_ARG);
  EXPECT_EQ(m.counter_add("x_total", "", nullptr, nullptr, 1), CLUSTERD_OK);
  EXPECT_EQ(m.gauge_set("x_total", "", nullptr, nullptr, 1), CLUSTERD_E_TYPE);
  for (std::size_t i = 1; i < PluginMetrics::kMaxSeries; ++i)
    ASSERT_EQ(m.counter_add("x_total", "", "n", std::to_string(i).c_str(), 1), CLUSTERD_OK);
  EXPECT_EQ(m.counter_add("x_total", "", "n", "one too many", 1), CLUSTERD_E_AGAIN);
  EXPECT_EQ(m.counter_add("x_total", "", "n", "1", 1), CLUSTERD_OK);  // existing series still count
}

TEST(RequestHead, ParsesGetAndHeadOfAPath) {
  auto r = parse_request_head("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/metrics");
  r = parse_request_head("HEAD /ready?verbose=1 HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "HEAD");
  EXPECT_EQ(r->path, "/ready");
}

TEST(RequestHead, RefusesWhatIsNotHttp1) {
  for (const char *bad :
       {"", "GET /metrics HTTP/1.1", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/2\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n",
        "GET http://x/metrics HTTP/1.1\r\n\r\n", " /metrics HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"})
    EXPECT_FALSE(parse_request_head(bad)) << bad;
}

}  // namespace
}  // namespace clusterd::metrics
