// EC2 Query API helpers; see ec2_api.hpp. The XML is read with libexpat as a stream of
// elements: only the few paths the strategy needs are kept, by exact position, because an
// instance item also nests items of its own (network interfaces have privateIpAddress too).
#include "ec2_api.hpp"

#include <expat.h>

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

namespace clusterd_ec2 {
namespace {

constexpr std::size_t kMaxDepth = 64;
constexpr char kNsSeparator = ' ';  // cannot occur in a namespace URI or a local name

class Reader {
 public:
  Reader(DescribeResult &out) : out_(out) {}

  // False with error_ set when the document is malformed, too large or not a reply we know.
  bool run(std::string_view xml) {
    if (xml.size() > INT_MAX) return fail("reply too large");
    XML_Parser p = XML_ParserCreateNS(nullptr, kNsSeparator);
    if (p == nullptr) return fail("out of memory");
    parser_ = p;
    XML_SetUserData(p, this);
    XML_SetElementHandler(p, &Reader::on_start, &Reader::on_end);
    XML_SetCharacterDataHandler(p, &Reader::on_text);
    // EC2 never sends a DTD; refusing one rules out entity expansion attacks.
    XML_SetStartDoctypeDeclHandler(
        p, [](void *self, const XML_Char *, const XML_Char *, const XML_Char *, int) {
          static_cast<Reader *>(self)->abort("a DTD is not allowed");
        });
    const auto rc = XML_Parse(p, xml.data(), static_cast<int>(xml.size()), XML_TRUE);
    if (rc != XML_STATUS_OK && error_.empty()) {
      error_ = std::string("XML error at line ") + std::to_string(XML_GetCurrentLineNumber(p)) +
               ": " + XML_ErrorString(XML_GetErrorCode(p));
    }
    XML_ParserFree(p);
    if (!error_.empty()) return false;
    if (is_error_doc()) return fail(code_ + ": " + (message_.empty() ? "(no message)" : message_));
    if (path_root_ != "DescribeInstancesResponse")
      return fail("unexpected root element <" + path_root_ + ">");
    return true;
  }

  bool is_error_doc() const { return path_root_ == "Response" || path_root_ == "ErrorResponse"; }
  const std::string &error() const { return error_; }

 private:
  static std::string local_name(const XML_Char *name) {
    std::string_view n(name);
    const auto at = n.rfind(kNsSeparator);
    return std::string(at == std::string_view::npos ? n : n.substr(at + 1));
  }

  static void on_start(void *self, const XML_Char *name, const XML_Char **) {
    static_cast<Reader *>(self)->start(local_name(name));
  }
  static void on_end(void *self, const XML_Char *) { static_cast<Reader *>(self)->end(); }
  static void on_text(void *self, const XML_Char *s, int len) {
    auto *r = static_cast<Reader *>(self);
    if (r->target_ == nullptr) return;
    if (r->text_.size() + static_cast<std::size_t>(len) > kMaxText)
      return r->abort("a text field is longer than " + std::to_string(kMaxText) + " bytes");
    r->text_.append(s, static_cast<std::size_t>(len));
  }

  bool at(std::initializer_list<std::string_view> tail) const {
    if (path_.size() < tail.size()) return false;
    return std::equal(tail.begin(), tail.end(), path_.end() - static_cast<long>(tail.size()));
  }

  void start(std::string name) {
    if (path_.size() >= kMaxDepth) return abort("elements nested too deeply");
    if (path_.empty()) path_root_ = name;
    path_.push_back(std::move(name));
    target_ = nullptr;
    text_.clear();
    const std::size_t n = path_.size();
    if (path_root_ == "DescribeInstancesResponse") {
      if (n == 2 && at({"nextToken"})) {
        target_ = &out_.next_token;
      } else if (n == 5 && at({"reservationSet", "item", "instancesSet", "item"})) {
        if (out_.instances.size() >= kMaxInstances) return abort("too many instances");
        instance_ = Instance{};
      } else if (n == 6 && path_[3] == "instancesSet") {
        const auto &f = path_[5];
        if (f == "instanceId") target_ = &instance_.id;
        if (f == "privateIpAddress") target_ = &instance_.private_ip;
        if (f == "ipAddress") target_ = &instance_.public_ip;
        if (f == "privateDnsName") target_ = &instance_.private_dns;
      } else if (n == 7 && path_[3] == "instancesSet" && at({"instanceState", "name"})) {
        target_ = &instance_.state;
      } else if (n == 7 && path_[3] == "instancesSet" && at({"tagSet", "item"})) {
        tag_ = {};
      } else if (n == 8 && path_[3] == "instancesSet" && path_[5] == "tagSet") {
        if (path_[7] == "key") target_ = &tag_.first;
        if (path_[7] == "value") target_ = &tag_.second;
      }
    } else if (is_error_doc() && n >= 2 && path_[n - 2] == "Error") {
      // The first error is the one to show.
      if (path_[n - 1] == "Code" && code_.empty()) target_ = &code_;
      if (path_[n - 1] == "Message" && message_.empty()) target_ = &message_;
    }
  }

  void end() {
    if (target_ != nullptr) *target_ = text_;
    target_ = nullptr;
    text_.clear();
    const std::size_t n = path_.size();
    if (path_root_ == "DescribeInstancesResponse" && n >= 5 && path_[3] == "instancesSet") {
      if (n == 5) out_.instances.push_back(std::move(instance_));
      if (n == 7 && path_[5] == "tagSet") instance_.tags.push_back(std::move(tag_));
    }
    if (!path_.empty()) path_.pop_back();
  }

  void abort(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    XML_StopParser(parser_, XML_FALSE);
  }
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }

  DescribeResult &out_;
  XML_Parser parser_ = nullptr;
  std::vector<std::string> path_;
  std::string path_root_;
  std::string *target_ = nullptr;  // the field the current element's text goes to
  std::string text_;
  Instance instance_;
  std::pair<std::string, std::string> tag_;
  std::string code_, message_, error_;
};

bool digits(std::string_view s, std::size_t pos, std::size_t n, int &out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

bool parse_describe_instances(std::string_view xml, DescribeResult &out, std::string &error) {
  out = DescribeResult{};
  Reader reader(out);
  if (reader.run(xml)) return true;
  error = reader.error();
  out = DescribeResult{};
  return false;
}

std::string api_error(std::string_view body) {
  DescribeResult ignored;
  Reader reader(ignored);
  if (reader.run(body) || !reader.is_error_doc()) return {};
  return reader.error();
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string form(const std::vector<std::pair<std::string, std::string>> &params) {
  std::string out;
  for (const auto &[name, value] : params)
    out += (out.empty() ? "" : "&") + url_encode(name) + "=" + url_encode(value);
  return out;
}

std::string describe_tagged_form(std::string_view tag_name, std::string_view tag_value,
                                 std::string_view next_token) {
  std::vector<std::pair<std::string, std::string>> p{
      {"Action", "DescribeInstances"},
      {"Version", "2016-11-15"},
      {"Filter.1.Name", "tag:" + std::string(tag_name)},
      {"Filter.1.Value.1", std::string(tag_value)},
      {"Filter.2.Name", "instance-state-name"},
      {"Filter.2.Value.1", "running"}};
  if (!next_token.empty()) p.emplace_back("NextToken", std::string(next_token));
  return form(p);
}

std::string describe_instance_form(std::string_view instance_id) {
  return form({{"Action", "DescribeInstances"},
               {"Version", "2016-11-15"},
               {"InstanceId.1", std::string(instance_id)}});
}

bool parse_iso8601(std::string_view s, int64_t &out) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || s[10] != 'T' || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se))
    return false;
  std::size_t pos = 19;
  if (s[pos] == '.') {
    for (++pos; pos < s.size() && s[pos] >= '0' && s[pos] <= '9';) ++pos;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
  out = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
        mi * 60 + se;
  return true;
}

bool parse_role_credentials(std::string_view json, Credentials &out, std::string &error) {
  const auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "not a JSON object";
    return false;
  }
  auto field = [&](const char *key, std::string &to, bool required) {
    const auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) {
      if (required) error = std::string("no \"") + key + "\"";
      return !required;
    }
    if (!it->is_string()) {
      error = std::string("\"") + key + "\" is not a string";
      return false;
    }
    to = it->get<std::string>();
    return true;
  };
  Credentials c;
  std::string code, expiration;
  if (!field("Code", code, false)) return false;
  if (!code.empty() && code != "Success") {
    error = "Code is \"" + code.substr(0, 64) + "\", not \"Success\"";
    return false;
  }
  if (!field("AccessKeyId", c.access_key_id, true) ||
      !field("SecretAccessKey", c.secret_access_key, true) ||
      !field("Token", c.session_token, false) || !field("Expiration", expiration, false))
    return false;
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    error = "empty AccessKeyId or SecretAccessKey";
    return false;
  }
  if (!expiration.empty() && !parse_iso8601(expiration, c.expiration)) {
    error = "Expiration \"" + expiration.substr(0, 64) + "\" is not an ISO 8601 UTC time";
    return false;
  }
  out = std::move(c);
  return true;
}

bool parse_name_type(std::string_view text, NameType &out) {
  if (text == "private")
    out = NameType::private_ip;
  else if (text == "public")
    out = NameType::public_ip;
  else if (text == "private_dns")
    out = NameType::private_dns;
  else
    return false;
  return true;
}

bool valid_region(std::string_view text) {
  if (text.empty() || text.size() > 32 || text.front() == '-' || text.back() == '-') return false;
  std::size_t dashes = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '-') {
      if (text[i - 1] == '-') return false;
      ++dashes;
    } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return dashes >= 2;
}

std::vector<std::string> node_names(const std::vector<Instance> &instances,
                                    std::string_view app_prefix, NameType type,
                                    std::vector<std::string> &skipped) {
  std::vector<std::string> names;
  for (const auto &i : instances) {
    if (i.state != "running") continue;  // the filter asks for running ones; be sure
    const std::string &address = type == NameType::private_ip  ? i.private_ip
                                 : type == NameType::public_ip ? i.public_ip
                                                               : i.private_dns;
    if (address.empty()) {
      skipped.push_back(i.id + (type == NameType::private_ip  ? ": no private IP"
                                : type == NameType::public_ip ? ": no public IP"
                                                              : ": no private DNS name"));
      continue;
    }
    names.push_back(std::string(app_prefix) + "@" + address);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace clusterd_ec2
