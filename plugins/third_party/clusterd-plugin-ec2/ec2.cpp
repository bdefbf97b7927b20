// Strategy "ec2": libcluster_ec2's ClusterEC2.Strategy.Tags — every running EC2 instance
// tagged ec2_tagname=ec2_tagvalue, as app_prefix@private-IP, from DescribeInstances (EC2 Query
// API, signed with AWS SigV4 by the host's HTTP service). A round at start, then one
// polling_interval after each round ends (libcluster's schedule).
//
// A round: [IMDSv2 token] → [region] → [credentials: config, environment or instance role] →
// [own tag value: DescribeInstances of this instance] → DescribeInstances, every page. The
// bracketed steps run only when needed and their results are kept (credentials until shortly
// before they expire). Differences from libcluster_ec2: pages after the first are followed
// (NextToken), any failure keeps the last good set and shows why, requests have a time limit,
// endpoints are configurable.
//
// Partial answers: when page N fails after good pages, the nodes of pages 1..N-1 are added
// to the last reported set and nothing is removed (a node missing from the good pages may be
// on the failed one); the status shows the failure under "partial round" until a round
// completes.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include <clusterd/plugin.hpp>

#include "ec2_api.hpp"

namespace {

namespace opt = clusterd::option;
namespace api = clusterd_ec2;
using std::chrono::milliseconds;

constexpr uint64_t kMaxBodyBytes = 16 << 20;
constexpr int kMaxPages = 100;
constexpr std::size_t kMaxExcerpt = 200;
constexpr int64_t kRefreshBefore = 300;   // s: renew role credentials this long before expiry
constexpr int64_t kImdsTokenTtl = 21600;  // s: the longest IMDSv2 allows
constexpr const char *kSkippedKey = "instances skipped";
constexpr const char *kPartialKey = "partial round";

std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kMaxExcerpt)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return body.size() > kMaxExcerpt ? out + "..." : out;
}

int64_t now_s() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::string env(const char *name) {
  const char *v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string without_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

class Ec2Strategy final : public clusterd::Strategy {
 public:
  static constexpr const char *kName = "ec2";
  static constexpr const char *kVersion = "0.1.0";
  static constexpr const char *kDescription =
      "app_prefix@IP of every running EC2 instance with a given tag, from DescribeInstances "
      "(libcluster_ec2's ClusterEC2.Strategy.Tags)";
  static constexpr const char *kAliases[] = {"ClusterEC2.Strategy.Tags",
                                             "Elixir.ClusterEC2.Strategy.Tags"};
  static constexpr uint32_t kFlags = CLUSTERD_PLUGIN_DISCONNECTS_REMOVED;
  static constexpr clusterd_option_t kOptions[] = {
      opt::nonempty(
          opt::required(opt::string("ec2_tagname", "Tag key the instances of the cluster carry"))),
      opt::string("ec2_tagvalue",
                  "Tag value to match; unset: this instance's own value of ec2_tagname "
                  "(DescribeInstances of its instance id, from the instance metadata)"),
      opt::nonempty(opt::format(opt::string("app_prefix", "Node name part before '@'", "\"app\""),
                                CLUSTERD_FORMAT_NODE_BASENAME)),
      opt::choices(opt::string("ip_type",
                               "Address after '@': privateIpAddress, ipAddress (public) or "
                               "privateDnsName",
                               "\"private\""),
                   "private|public|private_dns"),
      opt::string("region",
                  "AWS region, e.g. \"eu-west-1\"; unset: the instance metadata's "
                  "placement/region"),
      opt::finite(opt::positive(opt::duration(
          "polling_interval", "Time from the end of one round to the next", "\"5s\""))),
      opt::finite(opt::positive(
          opt::duration("request_timeout", "Time limit of each HTTP request", "\"10s\""))),
      opt::needs(opt::nonempty(opt::string(
                     "access_key_id",
                     "AWS access key id; unset: AWS_ACCESS_KEY_ID, else the instance role")),
                 "secret_access_key"),
      opt::needs(opt::nonempty(opt::secret(opt::string("secret_access_key",
                                                       "AWS secret access key (with "
                                                       "access_key_id); unset: "
                                                       "AWS_SECRET_ACCESS_KEY"))),
                 "access_key_id"),
      opt::needs(opt::secret(opt::string("session_token",
                                         "Session token of temporary credentials; unset: "
                                         "AWS_SESSION_TOKEN (with the environment's keys)")),
                 "access_key_id"),
      opt::format(
          opt::string("endpoint", "EC2 endpoint URL; unset: https://ec2.REGION.amazonaws.com/"),
          CLUSTERD_FORMAT_URL),
      opt::format(opt::string("imds_endpoint", "Instance metadata service (IMDSv2) base URL",
                              "\"http://169.254.169.254\""),
                  CLUSTERD_FORMAT_URL),
      opt::string("ca_file", "PEM bundle to verify the EC2 endpoint with; unset: system store"),
  };

  // What the declared constraints cannot say (ABI 1.3); pure, so `clusterd check` runs it.
  static void validate(const clusterd::Config &config, clusterd::Problems &problems) {
    if (auto region = config.optional_string("region"); region && !api::valid_region(*region))
      problems.add("region", "\"" + *region +
                                 "\" is not an AWS region name (such as \"eu-west-1\" or "
                                 "\"us-gov-west-1\")");
  }

  // The constraints and validate() above already refused every bad value.
  void init(const clusterd::Config &config) override {
    tag_name_ = config.string("ec2_tagname");
    if (auto v = config.optional_string("ec2_tagvalue")) tag_value_ = *v;
    app_prefix_ = config.string("app_prefix");
    api::parse_name_type(config.string("ip_type"), name_type_);  // choices() checked it
    if (auto v = config.optional_string("region")) region_ = *v;
    interval_ = config.duration("polling_interval");
    timeout_ = config.duration("request_timeout");
    if (auto v = config.optional_string("endpoint")) endpoint_ = *v;
    imds_ = without_trailing_slash(config.string("imds_endpoint"));
    if (auto v = config.optional_string("ca_file")) ca_file_ = *v;

    const auto akid = config.optional_string("access_key_id").value_or("");
    const auto secret = config.optional_string("secret_access_key").value_or("");
    const auto token = config.optional_string("session_token").value_or("");
    if (!akid.empty()) {
      creds_ = {akid, secret, token, 0};
      creds_source_ = "config";
    } else if (!env("AWS_ACCESS_KEY_ID").empty() && !env("AWS_SECRET_ACCESS_KEY").empty()) {
      creds_ = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN"),
                0};
      creds_source_ = "environment";
    } else {
      role_ = true;  // fetched from the instance metadata, every time they near expiry
      creds_source_ = "instance role";
    }
    host().set_status("credentials", creds_source_);
    host().set_status("tag", tag_name_ + "=" + (tag_value_.empty() ? "(own value)" : tag_value_));
  }

  void start() override { round(); }

  void stop() override {
    timer_.reset();
    call_.reset();
  }

  void refresh() override {
    if (call_) return;  // a round is in flight
    timer_.reset();
    round();
  }

 private:
  using Next = std::function<void()>;
  using OnBody = std::function<void(std::string_view)>;

  // One request; `next` gets the body of a 2xx answer, anything else fails the round with
  // `what` and the reason (EC2's error code and message when the body is an EC2 error).
  void fetch(clusterd::HttpRequest request, std::string what, OnBody next) {
    const std::string label = what;  // `what` moves into the callback
    try {
      call_ = clusterd::HttpCall::start(
          host(), request.timeout(timeout_).max_body_bytes(kMaxBodyBytes),
          [this, what = std::move(what), next = std::move(next)](const clusterd::HttpResponse &r) {
            if (r.status() != CLUSTERD_OK)
              return failed(what + " failed: " + std::string(r.error()));
            if (!r.ok()) {
              std::string why = api::api_error(r.body());
              return failed(what + " answered HTTP " + std::to_string(r.http_status()) + ": " +
                                (why.empty() ? excerpt(r.body()) : why),
                            r.http_status());
            }
            // `next` usually starts the next request, which replaces call_ and with it this
            // callback: run it from a local copy.
            auto go = next;
            go(r.body());
          });
    } catch (const std::exception &e) {
      failed(label + ": " + e.what());
    }
  }

  void round() {
    if (role_ && creds_.expiration != 0 && now_s() >= creds_.expiration - kRefreshBefore)
      creds_ = {};  // renew role credentials before they expire
    need_region([this] { need_credentials([this] { need_tag_value([this] { describe(1); }); }); });
  }

  // ---- instance metadata (IMDSv2: a session token first, then GETs carrying it) ----

  void imds_get(const std::string &path, std::string what, OnBody next) {
    need_imds_token([this, path, what = std::move(what), next = std::move(next)] {
      fetch(clusterd::HttpRequest(imds_ + "/latest/meta-data/" + path)
                .header("X-aws-ec2-metadata-token", imds_token_),
            "instance metadata " + what, next);
    });
  }

  void need_imds_token(Next next) {
    if (!imds_token_.empty() && now_s() < imds_token_expiry_) return next();
    fetch(clusterd::HttpRequest(imds_ + "/latest/api/token")
              .method("PUT")
              .header("X-aws-ec2-metadata-token-ttl-seconds", std::to_string(kImdsTokenTtl)),
          "instance metadata token request (PUT " + imds_ + "/latest/api/token)",
          [this, next = std::move(next)](std::string_view body) {
            if (body.empty()) return failed("instance metadata token request: empty token");
            imds_token_ = std::string(body);
            imds_token_expiry_ = now_s() + kImdsTokenTtl - kRefreshBefore;
            next();
          });
  }

  void need_region(Next next) {
    if (!region_.empty()) return next();
    imds_get("placement/region", "placement/region",
             [this, next = std::move(next)](std::string_view body) {
               if (body.empty() || body.size() > 64 ||
                   body.find_first_of(" \r\n/") != std::string_view::npos)
                 return failed("instance metadata placement/region: not a region: \"" +
                               excerpt(body) + "\"");
               region_ = std::string(body);
               host().set_status("region", region_);
               next();
             });
  }

  void need_credentials(Next next) {
    if (!creds_.access_key_id.empty()) return next();
    imds_get("iam/security-credentials/", "iam/security-credentials/ (no instance role?)",
             [this, next = std::move(next)](std::string_view body) {
               std::string role(body.substr(0, body.find('\n')));
               if (role.empty() || role.find('/') != std::string::npos)
                 return failed("instance metadata iam/security-credentials/: no role name");
               imds_get("iam/security-credentials/" + role, "credentials of role " + role,
                        [this, role, next](std::string_view json) {
                          std::string error;
                          if (!api::parse_role_credentials(json, creds_, error))
                            return failed("instance metadata: credentials of role " + role + ": " +
                                          error);
                          host().set_status("credentials", "instance role " + role);
                          next();
                        });
             });
  }

  void need_tag_value(Next next) {
    if (!tag_value_.empty()) return next();
    imds_get("instance-id", "instance-id", [this, next = std::move(next)](std::string_view id) {
      const std::string instance(id);
      if (instance.empty()) return failed("instance metadata instance-id: empty");
      ec2(api::describe_instance_form(instance),
          "EC2 DescribeInstances of this instance (" + instance + ")",
          [this, instance, next](std::string_view xml) {
            api::DescribeResult result;
            std::string error;
            if (!api::parse_describe_instances(xml, result, error))
              return failed("EC2 DescribeInstances of this instance (" + instance +
                            "): malformed reply: " + error);
            for (const auto &i : result.instances) {
              for (const auto &[key, value] : i.tags) {
                if (i.id == instance && key == tag_name_ && !value.empty()) {
                  tag_value_ = value;
                  host().set_status("tag", tag_name_ + "=" + tag_value_ + " (own value)");
                  return next();
                }
              }
            }
            failed("this instance (" + instance + ") has no tag " + tag_name_ +
                   "; tag it or set ec2_tagvalue");
          });
    });
  }

  // ---- EC2 ----

  // POST of a Query API form: the payload is hashed into the signature, and the request URL
  // carries no query string whose canonical form libcurl would have to get right.
  void ec2(std::string form, std::string what, OnBody next) {
    const std::string endpoint =
        endpoint_.empty() ? "https://ec2." + region_ + ".amazonaws.com/" : endpoint_;
    clusterd::HttpRequest request(endpoint);
    request.method("POST")
        .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(std::move(form))
        .aws_sigv4("aws:amz:" + region_ + ":ec2")
        .credentials(creds_.access_key_id, creds_.secret_access_key);
    if (!creds_.session_token.empty()) request.header("X-Amz-Security-Token", creds_.session_token);
    if (!ca_file_.empty()) request.ca_file(ca_file_);
    fetch(std::move(request), std::move(what), std::move(next));
  }

  // Page `page` of the listing; pages_ holds the instances of the pages before it.
  void describe(int page) {
    if (page == 1) pages_.clear();
    page_ = page;
    const std::string what = "EC2 DescribeInstances (page " + std::to_string(page) + ")";
    ec2(api::describe_tagged_form(tag_name_, tag_value_, next_token_), what,
        [this, what, page](std::string_view xml) {
          api::DescribeResult result;
          std::string error;
          if (!api::parse_describe_instances(xml, result, error))
            return failed(what + ": malformed reply: " + error);
          for (auto &i : result.instances) pages_.push_back(std::move(i));
          next_token_ = result.next_token;
          if (!next_token_.empty()) {
            if (page >= kMaxPages)
              return failed("EC2 DescribeInstances: more than " + std::to_string(kMaxPages) +
                            " pages");
            return describe(page + 1);
          }
          finished();
        });
  }

  void finished() {
    page_ = 0;
    std::vector<std::string> skipped;
    reported_ = api::node_names(pages_, app_prefix_, name_type_, skipped);
    show_skipped(skipped);
    if (failing_) host().info("EC2 discovery works again");
    failing_ = false;
    show_partial("");
    report_nodes(reported_);
    schedule();
  }

  void failed(const std::string &reason, int http_status = 0) {
    next_token_.clear();
    // A refused signature may mean rotated role credentials; an IMDS error an expired token.
    if (role_ && (http_status == 401 || http_status == 403)) creds_ = {};
    if (reason.rfind("instance metadata", 0) == 0) imds_token_.clear();
    failing_ = true;
    if (page_ > 1) {
      partial(reason);
    } else {
      discovery_failed(reason);  // the host keeps the last good set and logs once per reason
    }
    page_ = 0;
    schedule();
  }

  // Page page_ failed after good pages: their nodes are added, nothing is removed.
  void partial(const std::string &reason) {
    std::vector<std::string> skipped;
    auto found = api::node_names(pages_, app_prefix_, name_type_, skipped);
    const std::size_t before = reported_.size();
    for (auto &n : found)
      if (std::find(reported_.begin(), reported_.end(), n) == reported_.end())
        reported_.push_back(std::move(n));
    show_partial(reason + "; the nodes of pages 1-" + std::to_string(page_ - 1) + " were added (" +
                 std::to_string(reported_.size() - before) + " new), none removed");
    report_nodes(reported_);
  }

  void show_partial(const std::string &text) {
    if (text == last_partial_) return;  // log once per change, not every round
    last_partial_ = text;
    if (text.empty()) return host().clear_status(kPartialKey);
    host().set_status(kPartialKey, text);
    host().warn(text);
  }

  void show_skipped(const std::vector<std::string> &skipped) {
    std::string text;
    for (const auto &s : skipped) text += (text.empty() ? "" : "; ") + s;
    if (text == last_skipped_) return;  // log once per change, not every round
    last_skipped_ = text;
    if (text.empty()) return host().clear_status(kSkippedKey);
    host().set_status(kSkippedKey, text);
    host().info("skipping instances without the address to name them by: " + text);
  }

  void schedule() {
    timer_ = clusterd::Timer::after(host(), interval_, [this] { round(); });
  }

  std::string tag_name_, tag_value_, app_prefix_, region_, endpoint_, imds_, ca_file_;
  api::NameType name_type_ = api::NameType::private_ip;
  milliseconds interval_{5000}, timeout_{10000};
  api::Credentials creds_;
  std::string creds_source_;
  bool role_ = false;
  std::string imds_token_;
  int64_t imds_token_expiry_ = 0;
  std::string next_token_;
  clusterd::Timer timer_;
  clusterd::HttpCall call_;
  bool failing_ = false;
  std::string last_skipped_, last_partial_;
  std::vector<api::Instance> pages_;  // of the round in flight, the pages so far
  int page_ = 0;                      // the page in flight, 0 outside the listing
  std::vector<std::string> reported_;
};

}  // namespace

CLUSTERD_EXPORT_PLUGIN(Ec2Strategy);
