// HttpClient against real servers on 127.0.0.1: tests/servers/http_server.py (plain, TLS,
// mutual TLS, token) with a throwaway PKI made by tests/servers/make_test_pki.sh.
#include "services/http_client.hpp"

#include "test_support.hpp"

#include <clusterd/common.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

namespace clusterd::services {
namespace {

using namespace std::chrono_literals;
using test::contains;
using test::contains_nocase;
using test::run_until;

// One server process, started on first use and killed by PID at the end of the suite.
class TestServer {
 public:
  TestServer(const test::TempDir &dir, const std::string &name, std::vector<std::string> flags) {
    const std::string port_file = dir / (name + ".port");
    std::vector<std::string> argv = {CLUSTERD_TEST_PYTHON,
                                     std::string(CLUSTERD_TEST_SERVERS_DIR) + "/http_server.py",
                                     "--port-file", port_file};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<test::Process>(argv, dir / (name + ".log"));
    if (!test::wait_ready(*process_, [&] { return !test::read_file(port_file).empty(); })) {
      throw std::runtime_error(name +
                               " server did not start: " + test::read_file(dir / (name + ".log")));
    }
    port_ = std::stoi(test::read_file(port_file));
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<test::Process> process_;
  int port_ = 0;
};

class HttpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Tests talk to loopback only: never through a proxy from the environment.
    setenv("NO_PROXY", "*", 1);
    setenv("no_proxy", "*", 1);
    dir_ = new test::TempDir();
    const std::string pki = dir_->path() + "/pki";
    test::Process make_pki(
        {"/bin/sh", std::string(CLUSTERD_TEST_SERVERS_DIR) + "/make_test_pki.sh", pki},
        *dir_ / "pki.log");
    if (make_pki.wait_exit() != 0) FAIL() << "PKI: " << test::read_file(*dir_ / "pki.log");
  }
  static void TearDownTestSuite() {
    servers_.clear();
    delete dir_;
    dir_ = nullptr;
  }

  static std::string pki(const std::string &file) { return dir_->path() + "/pki/" + file; }

  static const TestServer &server(const std::string &name) {
    auto it = servers_.find(name);
    if (it != servers_.end()) return *it->second;
    std::vector<std::string> flags;
    if (name != "plain") {
      flags = {"--tls-cert", pki("server.crt"), "--tls-key", pki("server.key")};
    }
    if (name == "mtls") flags.insert(flags.end(), {"--client-ca", pki("ca.crt")});
    if (name == "token") flags.insert(flags.end(), {"--token", "s3cret-token"});
    auto [inserted, ok] = servers_.emplace(name, std::make_unique<TestServer>(*dir_, name, flags));
    return *inserted->second;
  }
  static std::string http(const std::string &path) {
    return "http://127.0.0.1:" + std::to_string(server("plain").port()) + path;
  }
  static std::string https(const std::string &path, const std::string &name = "tls") {
    return "https://127.0.0.1:" + std::to_string(server(name).port()) + path;
  }

  struct Outcome {
    int calls = 0;
    HttpClient::Response response;
  };
  static HttpClient::Done record(Outcome &outcome) {
    return [&outcome](const HttpClient::Response &response) {
      ++outcome.calls;
      outcome.response = response;
    };
  }

  static HttpClient::Request get(std::string url) {
    HttpClient::Request request;
    request.url = std::move(url);
    request.timeout = 10s;
    return request;
  }
  HttpClient::Request tls_get(const std::string &path) {
    HttpClient::Request request = get(https(path));
    request.ca_file = pki("ca.crt");
    return request;
  }

  // Runs one request to completion.
  HttpClient::Response fetch(HttpClient::Request request) {
    Outcome outcome;
    client_.start(std::move(request), record(outcome));
    EXPECT_EQ(outcome.calls, 0) << "done ran inline";
    EXPECT_TRUE(run_until(
        io_, [&] { return outcome.calls > 0; }, 20s));
    EXPECT_EQ(outcome.calls, 1);
    return outcome.response;
  }

  static std::optional<std::string> header(const HttpClient::Response &response,
                                           const std::string &name) {
    for (const auto &line : response.headers) {
      if (line.size() > name.size() + 1 && line.compare(0, name.size() + 1, name + ":") == 0) {
        std::string value = line.substr(name.size() + 1);
        value.erase(0, value.find_first_not_of(' '));
        return value;
      }
    }
    return std::nullopt;
  }

  // Releases the next chunk of stream `id` on the plain or "tls" server (through the client
  // under test).
  void cue(const std::string &id, bool tls = false) {
    HttpClient::Request request = tls ? tls_get("/cue/" + id) : get(http("/cue/" + id));
    request.method = "POST";
    EXPECT_EQ(fetch(std::move(request)).http_status, 200);
  }

  static std::string unique_name() { return "s" + std::to_string(++counter_); }

  boost::asio::io_context io_;
  HttpClient client_{io_};

  static inline test::TempDir *dir_ = nullptr;
  static inline std::map<std::string, std::unique_ptr<TestServer>> servers_;
  static inline int counter_ = 0;
};

// ---- TLS --------------------------------------------------------------------------------

TEST_F(HttpClientTest, VerifiedTlsWithCaFile) {
  HttpClient::Response response = fetch(tls_get("/healthz"));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(response.http_status, 200);
  EXPECT_EQ(response.body, "ok");
  EXPECT_EQ(response.error, "");
}

TEST_F(HttpClientTest, WrongCaFailsClosed) {
  HttpClient::Request request = tls_get("/healthz");
  request.ca_file = pki("other-ca.crt");
  HttpClient::Response response = fetch(std::move(request));
  EXPECT_NE(response.status, CLUSTERD_OK);
  EXPECT_EQ(response.http_status, 0);
  EXPECT_TRUE(contains_nocase(response.error, "certificate")) << response.error;
  EXPECT_TRUE(contains(response.error, "127.0.0.1")) << response.error;
}

TEST_F(HttpClientTest, SystemStoreDoesNotTrustTestCa) {
  HttpClient::Response response = fetch(get(https("/healthz")));
  EXPECT_NE(response.status, CLUSTERD_OK);
  EXPECT_TRUE(contains_nocase(response.error, "certificate")) << response.error;
}

TEST_F(HttpClientTest, InsecureSkipVerify) {
  HttpClient::Request request = get(https("/healthz"));
  request.insecure_skip_verify = true;
  HttpClient::Response response = fetch(std::move(request));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(response.http_status, 200);
}

TEST_F(HttpClientTest, MutualTls) {
  HttpClient::Request request = tls_get("/healthz");
  request.url = https("/healthz", "mtls");
  request.client_cert_file = pki("client.crt");
  request.client_key_file = pki("client.key");
  HttpClient::Response with_cert = fetch(request);
  EXPECT_EQ(with_cert.status, CLUSTERD_OK) << with_cert.error;
  EXPECT_EQ(with_cert.http_status, 200);

  request.client_cert_file.clear();
  request.client_key_file.clear();
  HttpClient::Response without_cert = fetch(request);
  EXPECT_NE(without_cert.status, CLUSTERD_OK);
  EXPECT_EQ(without_cert.http_status, 0);
}

// ---- plain HTTP, methods, headers, statuses ---------------------------------------------

TEST_F(HttpClientTest, PlainHttp) {
  HttpClient::Response response = fetch(get(http("/healthz")));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(response.http_status, 200);
  EXPECT_EQ(response.body, "ok");
}

TEST_F(HttpClientTest, RequestHeadersAndBodyReachServer) {
  HttpClient::Request request = tls_get("/echo?x=1");
  request.method = "POST";
  request.headers = {"X-Test: hello", "Content-Type: application/json"};
  request.body = R"({"a":1})";
  HttpClient::Response response = fetch(std::move(request));
  ASSERT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(response.http_status, 200);
  EXPECT_EQ(response.body, R"({"a":1})");
  EXPECT_EQ(header(response, "X-Echo-Method"), "POST");
  EXPECT_EQ(header(response, "X-Echo-Path"), "/echo?x=1");
  EXPECT_EQ(header(response, "X-Echo-H-x-test"), "hello");
  EXPECT_EQ(header(response, "X-Echo-H-content-type"), "application/json");
  EXPECT_EQ(header(response, "X-Echo-H-expect"), std::nullopt);  // no 100-continue dance
  for (const auto &line : response.headers) {
    EXPECT_FALSE(contains(line, "\r") || contains(line, "\n") || line.rfind("HTTP/", 0) == 0)
        << line;
  }
}

TEST_F(HttpClientTest, Methods) {
  for (std::string method : {"PUT", "PATCH", "DELETE", "GET"}) {
    HttpClient::Request request = get(http("/echo"));
    request.method = method;
    request.body = method == "DELETE" ? "" : "data-" + method;
    HttpClient::Response response = fetch(std::move(request));
    ASSERT_EQ(response.status, CLUSTERD_OK) << method << ": " << response.error;
    EXPECT_EQ(header(response, "X-Echo-Method"), method);
    EXPECT_EQ(response.body, method == "DELETE" ? "" : "data-" + method);
  }
  HttpClient::Request head = get(http("/echo"));
  head.method = "HEAD";
  HttpClient::Response response = fetch(std::move(head));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(response.http_status, 200);
  EXPECT_EQ(response.body, "");
}

TEST_F(HttpClientTest, HttpErrorStatusesAreResponses) {
  for (int code : {403, 404, 500}) {
    HttpClient::Response response = fetch(tls_get("/status/" + std::to_string(code)));
    EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
    EXPECT_EQ(response.http_status, code);
    EXPECT_EQ(response.body, "status " + std::to_string(code));
    EXPECT_EQ(response.error, "");
  }
}

TEST_F(HttpClientTest, BearerTokenAndErrorsNeverShowHeaders) {
  HttpClient::Request request = tls_get("/echo");
  request.url = https("/echo", "token");
  EXPECT_EQ(fetch(request).http_status, 401);
  request.headers = {"Authorization: Bearer s3cret-token"};
  EXPECT_EQ(fetch(request).http_status, 200);

  request.url = "https://127.0.0.1:" + std::to_string(test::unused_tcp_port()) + "/x?y=z";
  HttpClient::Response failed = fetch(request);
  EXPECT_NE(failed.status, CLUSTERD_OK);
  EXPECT_FALSE(contains(failed.error, "s3cret")) << failed.error;
  EXPECT_FALSE(contains(failed.error, "y=z")) << failed.error;
}

// ---- credentials: AWS SigV4 (computed by libcurl) and HTTP Basic -------------------------

TEST_F(HttpClientTest, AwsSigV4SignsWithCredentialsAndSessionToken) {
  HttpClient::Request request = get(http("/echo"));
  request.method = "POST";
  request.headers = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                     "X-Amz-Security-Token: session-t0ken"};
  request.body = "Action=DescribeInstances&Version=2016-11-15";
  request.aws_sigv4 = "aws:amz:eu-west-3:ec2";
  request.username = "AKIDEXAMPLE";
  request.password = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  HttpClient::Response response = fetch(std::move(request));
  ASSERT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(response.body, "Action=DescribeInstances&Version=2016-11-15");
  // No std::regex: GCC 12 warns about it under ASan (-Wmaybe-uninitialized).
  auto all_of = [](std::string_view text, const char *set) {
    return !text.empty() && text.find_first_not_of(set) == std::string_view::npos;
  };
  const auto date = header(response, "X-Echo-H-x-amz-date");
  ASSERT_TRUE(date);
  ASSERT_EQ(date->size(), 16u) << *date;
  EXPECT_TRUE(all_of(date->substr(0, 8), "0123456789") && (*date)[8] == 'T' &&
              all_of(date->substr(9, 6), "0123456789") && (*date)[15] == 'Z')
      << *date;
  const auto auth = header(response, "X-Echo-H-authorization");
  ASSERT_TRUE(auth);
  const std::string scope = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + date->substr(0, 8) +
                            "/eu-west-3/ec2/aws4_request, SignedHeaders=";
  ASSERT_EQ(auth->rfind(scope, 0), 0u) << *auth;
  const auto signature_at = auth->find(", Signature=");
  ASSERT_NE(signature_at, std::string::npos) << *auth;
  const std::string signed_headers = auth->substr(scope.size(), signature_at - scope.size());
  const std::string signature = auth->substr(signature_at + 12);
  EXPECT_EQ(signature.size(), 64u) << *auth;
  EXPECT_TRUE(all_of(signature, "0123456789abcdef")) << *auth;
  // The session token is signed like every header the caller set.
  EXPECT_TRUE(contains(";" + signed_headers + ";", ";host;")) << signed_headers;
  EXPECT_TRUE(contains(";" + signed_headers + ";", ";x-amz-date;")) << signed_headers;
  EXPECT_TRUE(contains(";" + signed_headers + ";", ";x-amz-security-token;")) << signed_headers;
  EXPECT_EQ(header(response, "X-Echo-H-x-amz-security-token"), "session-t0ken");
  EXPECT_FALSE(contains(*auth, "wJalr"));
}

TEST_F(HttpClientTest, BasicAuthWithoutSigV4AndNoSecretInErrors) {
  HttpClient::Request request = get(http("/echo"));
  request.username = "clusterd";
  request.password = "pa ss:w0rd";
  EXPECT_EQ(header(fetch(request), "X-Echo-H-authorization"), "Basic Y2x1c3RlcmQ6cGEgc3M6dzByZA==");
  request.username.clear();
  request.password.clear();
  EXPECT_EQ(header(fetch(request), "X-Echo-H-authorization"), std::nullopt);

  request.username = "clusterd";
  request.password = "pa ss:w0rd";
  request.aws_sigv4 = "aws:amz:eu-west-3:ec2";
  request.url = "http://127.0.0.1:" + std::to_string(test::unused_tcp_port()) + "/";
  HttpClient::Response failed = fetch(request);
  EXPECT_NE(failed.status, CLUSTERD_OK);
  EXPECT_FALSE(contains(failed.error, "w0rd")) << failed.error;
}

// ---- failures ---------------------------------------------------------------------------

TEST_F(HttpClientTest, TimeoutWhenServerNeverAnswers) {
  test::SilentTcpServer silent;
  HttpClient::Request request = get("http://127.0.0.1:" + std::to_string(silent.port()) + "/");
  request.timeout = 300ms;
  const auto start = test::Clock::now();
  HttpClient::Response response = fetch(std::move(request));
  const auto elapsed = test::Clock::now() - start;
  EXPECT_EQ(response.status, CLUSTERD_E_TIMEOUT) << response.error;
  EXPECT_TRUE(contains(response.error, "127.0.0.1")) << response.error;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
}

TEST_F(HttpClientTest, ConnectionRefused) {
  HttpClient::Response response =
      fetch(get("http://127.0.0.1:" + std::to_string(test::unused_tcp_port()) + "/"));
  EXPECT_EQ(response.status, CLUSTERD_E_IO);
  EXPECT_EQ(response.http_status, 0);
  EXPECT_TRUE(contains(response.error, "127.0.0.1")) << response.error;
  // The same failure gives the same text every time (curl's "after 0 ms" is dropped), so a
  // plugin that logs a reason once per change does not log it every round.
  EXPECT_FALSE(contains(response.error, " ms")) << response.error;
  EXPECT_TRUE(contains(response.error, "Couldn't connect to server")) << response.error;
}

TEST_F(HttpClientTest, BodyCap) {
  for (std::string query : {"", "?chunked=1"}) {  // announced length, and unknown length
    HttpClient::Request request = get(http("/bytes/100000" + query));
    request.max_body_bytes = 1000;
    HttpClient::Response response = fetch(request);
    EXPECT_EQ(response.status, CLUSTERD_E_IO) << query;
    EXPECT_TRUE(contains(response.error, "exceeds the limit of 1000 bytes")) << response.error;
    EXPECT_TRUE(contains(response.error, "127.0.0.1")) << response.error;
    EXPECT_EQ(response.body, "");

    request.url = http("/bytes/1000" + query);
    response = fetch(request);
    EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
    EXPECT_EQ(response.body, std::string(1000, 'x'));
  }
}

TEST_F(HttpClientTest, InvalidRequestsFailAsynchronously) {
  std::vector<HttpClient::Request> requests(5);
  requests[0].url = "";
  requests[1].url = "ftp://127.0.0.1/x";
  requests[2].url = http("/echo");
  requests[2].headers = {"X-A: 1\r\nX-Injected: 2"};
  requests[3].url = http("/echo");
  requests[3].method = "GE T";
  requests[4].url = http("/echo");
  requests[4].timeout = 0ms;
  for (auto &request : requests) {
    HttpClient::Response response = fetch(request);  // asserts done is not inline
    EXPECT_EQ(response.status, CLUSTERD_E_INVALID_ARG) << request.url;
    EXPECT_FALSE(response.error.empty());
  }
}

// ---- streaming --------------------------------------------------------------------------

TEST_F(HttpClientTest, StreamDeliversChunksBeforeCompletion) {
  const std::string id = unique_name();
  std::string received;
  int chunks = 0;
  HttpClient::Request request = get(http("/stream/" + id + "?chunks=3"));
  request.timeout = 5s;
  request.on_data = [&](std::string_view chunk) {
    received.append(chunk);
    ++chunks;
    return true;
  };
  Outcome outcome;
  client_.start(std::move(request), record(outcome));

  ASSERT_TRUE(run_until(io_, [&] { return received == "chunk-0\n"; }));
  EXPECT_EQ(outcome.calls, 0);
  cue(id);
  ASSERT_TRUE(run_until(io_, [&] { return received == "chunk-0\nchunk-1\n"; }));
  EXPECT_EQ(outcome.calls, 0);
  cue(id);
  ASSERT_TRUE(run_until(io_, [&] { return outcome.calls > 0; }));
  EXPECT_EQ(outcome.response.status, CLUSTERD_OK) << outcome.response.error;
  EXPECT_EQ(outcome.response.http_status, 200);
  EXPECT_EQ(outcome.response.body, "");
  EXPECT_EQ(received, "chunk-0\nchunk-1\nchunk-2\n");
  EXPECT_GE(chunks, 3);
}

TEST_F(HttpClientTest, QuietStreamDoesNotSpin) {
  const std::string id = unique_name();
  std::string received;
  HttpClient::Request request = tls_get("/stream/" + id + "?chunks=2");
  request.timeout = 5s;
  request.on_data = [&](std::string_view chunk) {
    received.append(chunk);
    return true;
  };
  Outcome outcome;
  client_.start(std::move(request), record(outcome));
  ASSERT_TRUE(run_until(io_, [&] { return received == "chunk-0\n"; }));
  // Waiting for data: a handful of handlers at most, not a busy loop.
  EXPECT_LE(test::wakeups_while_idle(io_), 3u);
  cue(id, true);
  ASSERT_TRUE(run_until(io_, [&] { return outcome.calls > 0; }));
  EXPECT_EQ(outcome.response.status, CLUSTERD_OK) << outcome.response.error;
  EXPECT_EQ(received, "chunk-0\nchunk-1\n");
}

TEST_F(HttpClientTest, StreamWithDelaysOverTls) {
  std::string received;
  HttpClient::Request request = tls_get("/stream/" + unique_name() + "?chunks=5&delay_ms=50");
  request.timeout = 2s;
  request.on_data = [&](std::string_view chunk) {
    received.append(chunk);
    return true;
  };
  HttpClient::Response response = fetch(std::move(request));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_EQ(received, "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
}

TEST_F(HttpClientTest, StreamIdleTimeout) {
  std::string received;
  HttpClient::Request request = get(http("/stream/" + unique_name() + "?chunks=2"));  // no cue
  request.timeout = 400ms;
  request.on_data = [&](std::string_view chunk) {
    received.append(chunk);
    return true;
  };
  const auto start = test::Clock::now();
  HttpClient::Response response = fetch(std::move(request));
  const auto elapsed = test::Clock::now() - start;
  EXPECT_EQ(response.status, CLUSTERD_E_TIMEOUT) << response.error;
  EXPECT_TRUE(contains(response.error, "127.0.0.1")) << response.error;
  EXPECT_EQ(received, "chunk-0\n");
  EXPECT_GE(elapsed, 350ms);
  EXPECT_LT(elapsed, 3s);
}

TEST_F(HttpClientTest, StreamWithDataIsNotTimedOutByTotalTime) {
  // 6 chunks 100 ms apart take ~500 ms; the 300 ms timeout bounds only the gaps.
  std::string received;
  HttpClient::Request request = get(http("/stream/" + unique_name() + "?chunks=6&delay_ms=100"));
  request.timeout = 300ms;
  request.on_data = [&](std::string_view chunk) {
    received.append(chunk);
    return true;
  };
  HttpClient::Response response = fetch(std::move(request));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  EXPECT_TRUE(contains(received, "chunk-5\n"));
}

TEST_F(HttpClientTest, StreamAbortedByReader) {
  HttpClient::Request request = get(http("/stream/" + unique_name() + "?chunks=3"));
  int chunks = 0;
  request.on_data = [&](std::string_view) {
    ++chunks;
    return false;
  };
  HttpClient::Response response = fetch(std::move(request));
  EXPECT_EQ(response.status, CLUSTERD_E_CANCELLED) << response.error;
  EXPECT_EQ(chunks, 1);
  EXPECT_EQ(client_.active(), 0u);
}

TEST_F(HttpClientTest, StreamCancelsItselfFromOnData) {
  HttpClient::Request request = get(http("/stream/" + unique_name() + "?chunks=3"));
  std::uint64_t id = 0;
  int chunks = 0;
  request.on_data = [&](std::string_view) {
    ++chunks;
    client_.cancel(id);
    return true;
  };
  Outcome outcome;
  id = client_.start(std::move(request), record(outcome));
  ASSERT_TRUE(run_until(io_, [&] { return chunks > 0; }));
  EXPECT_EQ(client_.active(), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(outcome.calls, 0);
  EXPECT_EQ(chunks, 1);
  EXPECT_EQ(fetch(get(http("/healthz"))).http_status, 200);  // still works
}

TEST_F(HttpClientTest, StartAndCancelFromOnData) {
  // A request started from inside curl's callback is added once curl returns; another one is
  // cancelled from there.
  HttpClient::Request hanging = get(http("/stream/" + unique_name() + "?chunks=2"));
  hanging.on_data = [](std::string_view) { return true; };
  Outcome hanging_outcome, started_outcome;
  std::uint64_t hanging_id = client_.start(hanging, record(hanging_outcome));

  HttpClient::Request request = get(http("/stream/" + unique_name() + "?chunks=1"));
  bool started = false;
  request.on_data = [&](std::string_view) {
    if (!started) {
      started = true;
      client_.start(get(http("/healthz")), record(started_outcome));
      client_.cancel(hanging_id);
    }
    return true;
  };
  HttpClient::Response response = fetch(std::move(request));
  EXPECT_EQ(response.status, CLUSTERD_OK) << response.error;
  ASSERT_TRUE(run_until(io_, [&] { return started_outcome.calls > 0; }));
  EXPECT_EQ(started_outcome.response.http_status, 200);
  EXPECT_EQ(hanging_outcome.calls, 0);
  EXPECT_EQ(client_.active(), 0u);
}

// ---- cancel and destruction -------------------------------------------------------------

TEST_F(HttpClientTest, CancelBeforeCompletion) {
  test::SilentTcpServer silent;
  Outcome early, later;
  // Cancelled before the loop ever ran.
  client_.cancel(
      client_.start(get("http://127.0.0.1:" + std::to_string(silent.port())), record(early)));
  // Cancelled while connected and waiting.
  std::uint64_t id =
      client_.start(get("http://127.0.0.1:" + std::to_string(silent.port())), record(later));
  io_.restart();
  io_.run_for(100ms);
  EXPECT_EQ(client_.active(), 1u);
  client_.cancel(id);
  client_.cancel(id);          // twice: no-op
  client_.cancel(123456789u);  // unknown: no-op
  EXPECT_EQ(client_.active(), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(early.calls, 0);
  EXPECT_EQ(later.calls, 0);
}

TEST_F(HttpClientTest, CancelBetweenCompletionAndDelivery) {
  // An invalid request completes at once, but its done is only posted: cancel still wins.
  Outcome invalid;
  std::uint64_t id = client_.start(HttpClient::Request{}, record(invalid));
  EXPECT_EQ(client_.active(), 1u);
  client_.cancel(id);
  EXPECT_EQ(client_.active(), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(invalid.calls, 0);

  // A finished request: cancelling it afterwards is a no-op.
  Outcome outcome;
  id = client_.start(get(http("/healthz")), record(outcome));
  ASSERT_TRUE(run_until(io_, [&] { return outcome.calls > 0; }));
  client_.cancel(id);
  EXPECT_EQ(outcome.calls, 1);
}

TEST_F(HttpClientTest, CancelFromAnotherRequestsDone) {
  HttpClient::Request hanging = get(http("/stream/" + unique_name() + "?chunks=2"));
  hanging.on_data = [](std::string_view) { return true; };
  Outcome hanging_outcome;
  std::uint64_t hanging_id = client_.start(hanging, record(hanging_outcome));
  int fast_calls = 0;
  client_.start(get(http("/healthz")), [&](const HttpClient::Response &) {
    ++fast_calls;
    client_.cancel(hanging_id);
  });
  ASSERT_TRUE(run_until(io_, [&] { return fast_calls > 0; }));
  EXPECT_EQ(client_.active(), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(hanging_outcome.calls, 0);
}

TEST_F(HttpClientTest, FiftyParallelRequests) {
  constexpr int kCount = 50;
  std::vector<Outcome> outcomes(kCount);
  for (int i = 0; i < kCount; ++i) {
    HttpClient::Request request = get(i % 2 ? http("/echo") : https("/echo"));
    request.ca_file = pki("ca.crt");
    request.method = "POST";
    request.body = "request-" + std::to_string(i);
    client_.start(std::move(request), record(outcomes[i]));
  }
  EXPECT_EQ(client_.active(), static_cast<std::size_t>(kCount));
  ASSERT_TRUE(run_until(
      io_,
      [&] {
        return std::all_of(outcomes.begin(), outcomes.end(), [](auto &o) { return o.calls > 0; });
      },
      30s));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(outcomes[i].calls, 1);
    EXPECT_EQ(outcomes[i].response.status, CLUSTERD_OK) << outcomes[i].response.error;
    EXPECT_EQ(outcomes[i].response.body, "request-" + std::to_string(i));
  }
  EXPECT_EQ(client_.active(), 0u);
}

TEST_F(HttpClientTest, DestroyWithRequestsInFlight) {
  test::SilentTcpServer silent;
  boost::asio::io_context io;
  auto client = std::make_unique<HttpClient>(io);
  int calls = 0;
  auto count = [&](const HttpClient::Response &) { ++calls; };
  client->start(get("http://127.0.0.1:" + std::to_string(silent.port())), count);
  HttpClient::Request stream = get(http("/stream/" + unique_name() + "?chunks=2"));
  bool streaming = false;
  stream.on_data = [&](std::string_view) { return streaming = true; };
  client->start(stream, count);
  ASSERT_TRUE(run_until(io, [&] { return streaming; }));
  client->start(tls_get("/healthz"), count);    // not even connected yet
  client->start(HttpClient::Request{}, count);  // completion already posted
  client.reset();
  EXPECT_TRUE(test::nothing_armed(io));
  EXPECT_EQ(calls, 0);
}

TEST_F(HttpClientTest, DestroyFromDoneAndFromOnData) {
  auto client = std::make_unique<HttpClient>(io_);
  int other_calls = 0;
  HttpClient::Request hanging = get(http("/stream/" + unique_name() + "?chunks=2"));
  hanging.on_data = [](std::string_view) { return true; };
  client->start(hanging, [&](const HttpClient::Response &) { ++other_calls; });
  bool destroyed = false;
  client->start(get(http("/healthz")), [&](const HttpClient::Response &) {
    client.reset();
    destroyed = true;
  });
  ASSERT_TRUE(run_until(io_, [&] { return destroyed; }));
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(other_calls, 0);

  client = std::make_unique<HttpClient>(io_);
  HttpClient::Request request = get(http("/stream/" + unique_name() + "?chunks=2"));
  destroyed = false;
  request.on_data = [&](std::string_view) {
    client.reset();
    destroyed = true;
    return true;
  };
  client->start(request, [&](const HttpClient::Response &) { ++other_calls; });
  ASSERT_TRUE(run_until(io_, [&] { return destroyed; }));
  EXPECT_TRUE(test::nothing_armed(io_));
  EXPECT_EQ(other_calls, 0);
}

TEST_F(HttpClientTest, IdleClientCausesNoWakeups) {
  EXPECT_EQ(fetch(tls_get("/healthz")).status, CLUSTERD_OK);
  EXPECT_EQ(fetch(get(http("/healthz"))).status, CLUSTERD_OK);
  EXPECT_EQ(client_.active(), 0u);
  EXPECT_EQ(test::wakeups_while_idle(io_), 0u);
  EXPECT_TRUE(test::nothing_armed(io_));
}

}  // namespace
}  // namespace clusterd::services
