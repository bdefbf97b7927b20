// Kubernetes list/watch parsing and node naming; see k8s_parse.hpp.
#include "k8s_parse.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include <rapidjson/reader.h>

#include "printable.hpp"

namespace clusterd::kubernetes {

namespace {

constexpr std::size_t kMaxDepth = 64;  // deeper documents are not API answers

// The canonical text of an IPv4 or IPv6 address, or "" when `text` is neither.
std::string canonical_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return {};
  char in[INET6_ADDRSTRLEN] = {};
  std::copy(text.begin(), text.end(), in);
  unsigned char addr[16];
  char out[INET6_ADDRSTRLEN] = {};
  const int family = text.find(':') == std::string_view::npos ? AF_INET : AF_INET6;
  if (inet_pton(family, in, addr) != 1) return {};
  if (inet_ntop(family, addr, out, sizeof out) == nullptr) return {};
  return out;
}

void skip(Object &o, std::string why) {
  if (o.skipped++ == 0) o.skip_reason = std::move(why);
}

// One endpoint as read, before the item's fallbacks (namespace, service) are known.
struct RawEndpoint {
  std::string ip, ns, hostname;
  bool has_address = false;
  bool ready = true, serving = true, terminating = false;
  bool has_serving = false;
};

// What one item (an Endpoints, a Pod, an EndpointSlice, or a Status) says, read in any key
// order and turned into an Object at its end.
struct RawItem {
  std::string name, ns, resource_version, service_label, address_type;
  std::string pod_ip, pod_hostname, pod_subdomain;
  bool deleting = false, pod_ready = false;
  std::string condition_type, condition_status;  // the pod condition being read
  std::vector<RawEndpoint> endpoints;
  // A Status (watch ERROR).
  long long code = 0;
  std::string reason, message;
};

// Reads the parts of list responses and watch events that name nodes, as a RapidJSON SAX
// handler: no document tree, only those strings are copied. (nlohmann's DOM took 40-50 ms for
// a 10,000-endpoint list, its SAX parser 17-21 ms, RapidJSON's 8 ms.) Paths are the keys joined by
// '.' with "[]" for array elements, relative to the document or to the item being read.
class Reader {
 public:
  // kList: items at ".items.[]"; kEvent: the item at ".object".
  enum class Shape { kList, kEvent };
  Reader(Shape shape, Lookup lookup) : shape_(shape), lookup_(lookup) {}

  // RapidJSON's handler interface (rapidjson/reader.h). Returning false stops the parse.
  using Size = rapidjson::SizeType;
  bool Null() { return scalar(Kind::kNull, {}, false); }
  bool Bool(bool v) { return scalar(Kind::kBool, {}, v); }
  bool Int(int v) { return number(v); }
  bool Int64(int64_t v) { return number(v); }
  bool Uint(unsigned v) { return number(v > 0x7fffffffu ? 0 : static_cast<long long>(v)); }
  bool Uint64(uint64_t v) { return number(v > 0x7fffffffu ? 0 : static_cast<long long>(v)); }
  bool Double(double) { return scalar(Kind::kOther, {}, false); }
  bool RawNumber(const char *, Size, bool) { return scalar(Kind::kOther, {}, false); }
  bool String(const char *text, Size length, bool) {
    return scalar(Kind::kString, std::string_view(text, length), false);
  }

  bool StartObject() {
    if (!begin_value(Kind::kObject)) return false;
    const std::string_view p = path_;
    if (!in_item() && (shape_ == Shape::kList ? p == ".items.[]" : p == ".object")) {
      item_base_ = path_.size();
      item_ = RawItem{};
      item_open_ = true;
    } else if (in_item()) {
      const std::string_view r = rel();
      if (lookup_ == Lookup::kEndpoints &&
          (r == ".subsets.[].addresses.[]" || r == ".subsets.[].notReadyAddresses.[]")) {
        RawEndpoint e;
        e.ready = e.serving = r.find(".addresses.") != std::string_view::npos;
        e.has_address = true;  // an Endpoints address without ip is reported by add()
        item_.endpoints.push_back(std::move(e));
        in_endpoint_ = true;
      } else if (lookup_ == Lookup::kEndpointSlices && r == ".endpoints.[]") {
        item_.endpoints.emplace_back();
        in_endpoint_ = true;
      } else if (r == ".status.conditions.[]") {
        item_.condition_type.clear();
        item_.condition_status.clear();
      }
    }
    frames_.push_back({path_.size(), false, 0});
    return frames_.size() <= kMaxDepth || too_deep();
  }
  bool Key(const char *text, Size length, bool) {
    path_.resize(frames_.back().base);
    path_ += '.';
    path_.append(text, length);
    return true;
  }
  bool EndObject(Size) {
    path_.resize(frames_.back().base);
    frames_.pop_back();
    if (!in_item()) return true;
    const std::string_view r = rel();
    if (r.empty()) {
      finish_item();
    } else if (in_endpoint_ && (r == ".subsets.[].addresses.[]" ||
                                r == ".subsets.[].notReadyAddresses.[]" || r == ".endpoints.[]")) {
      in_endpoint_ = false;
    } else if (r == ".status.conditions.[]" && item_.condition_type == "Ready") {
      item_.pod_ready = item_.condition_status == "True";
    }
    return true;
  }
  bool StartArray() {
    if (!begin_value(Kind::kArray)) return false;
    frames_.push_back({path_.size(), true, 0});
    path_ += ".[]";
    return frames_.size() <= kMaxDepth || too_deep();
  }
  bool EndArray(Size) {
    path_.resize(frames_.back().base);
    frames_.pop_back();
    return true;
  }

  // Results.
  const std::string &shape_error() const { return shape_error_; }
  std::string resource_version, type;
  std::vector<Object> objects;
  RawItem status;  // the event's object as read (for ERROR)
  bool saw_object = false;

 private:
  enum class Kind { kNull, kBool, kString, kObject, kArray, kOther };
  struct Frame {
    std::size_t base;  // path_ length of the container itself
    bool array;
    std::size_t count;  // elements seen (arrays)
  };

  bool in_item() const { return item_open_; }
  std::string_view rel() const { return std::string_view(path_).substr(item_base_); }

  bool too_deep() {
    shape_error_ = "nested deeper than " + std::to_string(kMaxDepth) + " levels";
    return false;
  }

  // Bookkeeping at the start of every value; checks the document's shape.
  bool begin_value(Kind kind) {
    if (frames_.empty()) {
      if (kind != Kind::kObject) {
        shape_error_ = shape_ == Shape::kList ? "the list is not a JSON object"
                                              : "the watch event is not a JSON object";
        return false;
      }
      return true;
    }
    index_ = frames_.back().array ? frames_.back().count++ : 0;
    if (frames_.size() == 1) {
      const std::string_view p = path_;
      if (shape_ == Shape::kList && p == ".items" && kind != Kind::kArray && kind != Kind::kNull) {
        shape_error_ = "\"items\" is not a list";
        return false;
      }
      if (shape_ == Shape::kEvent && p == ".object") {
        if (kind != Kind::kObject) {
          shape_error_ = "the watch event's object is not an object";
          return false;
        }
        saw_object = true;
      }
    }
    return true;
  }

  bool number(long long v) {
    if (!begin_value(Kind::kOther)) return false;
    if (in_item() && rel() == ".code") item_.code = v;
    return true;
  }

  bool scalar(Kind kind, std::string_view text, bool flag) {
    if (!begin_value(kind)) return false;
    const std::string_view p = path_;
    if (!in_item()) {
      if (kind != Kind::kString) return true;
      if (p == ".metadata.resourceVersion") resource_version = text;
      if (shape_ == Shape::kEvent && p == ".type") type = text;
      return true;
    }
    const std::string_view r = rel();
    if (in_endpoint_) return endpoint_field(r, kind, text, flag);
    if (r == ".metadata.deletionTimestamp") {
      item_.deleting = kind != Kind::kNull;
      return true;
    }
    if (kind != Kind::kString) return true;
    std::string *target = nullptr;
    if (r == ".metadata.name") {
      target = &item_.name;
    } else if (r == ".metadata.namespace") {
      target = &item_.ns;
    } else if (r == ".metadata.resourceVersion") {
      target = &item_.resource_version;
    } else if (r == ".metadata.labels.kubernetes.io/service-name") {
      target = &item_.service_label;
    } else if (r == ".addressType") {
      target = &item_.address_type;
    } else if (r == ".status.podIP") {
      target = &item_.pod_ip;
    } else if (r == ".spec.hostname") {
      target = &item_.pod_hostname;
    } else if (r == ".spec.subdomain") {
      target = &item_.pod_subdomain;
    } else if (r == ".status.conditions.[].type") {
      target = &item_.condition_type;
    } else if (r == ".status.conditions.[].status") {
      target = &item_.condition_status;
    } else if (r == ".reason") {
      target = &item_.reason;
    } else if (r == ".message") {
      target = &item_.message;
    }
    if (target != nullptr) *target = text;
    return true;
  }

  bool endpoint_field(std::string_view r, Kind kind, std::string_view text, bool flag) {
    RawEndpoint &e = item_.endpoints.back();
    // r is relative to the item; the endpoint's own part follows its array element.
    const bool slice = r.rfind(".endpoints.[]", 0) == 0;
    const std::string_view f = r.substr(slice ? 13 : r.find(".[]", 10) + 3);
    if (kind == Kind::kBool && slice) {
      if (f == ".conditions.ready") e.ready = flag;
      if (f == ".conditions.serving") e.serving = flag, e.has_serving = true;
      if (f == ".conditions.terminating") e.terminating = flag;
      return true;
    }
    if (kind != Kind::kString) return true;
    if (slice && f == ".addresses.[]") {
      if (index_ == 0) e.ip = text, e.has_address = true;  // the API: consumers use the first
    } else if (!slice && f == ".ip") {
      e.ip = text;
    } else if (f == ".hostname") {
      e.hostname = text;
    } else if (f == ".targetRef.namespace") {
      e.ns = text;
    }
    return true;
  }

  // Adds e (address still raw) to o if its address is an IP.
  static void add(Object &o, std::string_view raw_ip, Endpoint e) {
    e.ip = canonical_ip(raw_ip);
    if (e.ip.empty()) {
      skip(o, raw_ip.empty()
                  ? std::string("an address has no IP")
                  : "address '" + printable_prefix(raw_ip.substr(0, 64)) + "' is not an IP");
      return;
    }
    o.endpoints.push_back(std::move(e));
  }

  void finish_item() {
    item_open_ = false;
    in_endpoint_ = false;
    RawItem &it = item_;
    Object o;
    o.key = it.ns + "/" + it.name;
    switch (lookup_) {
      case Lookup::kEndpoints:
        for (RawEndpoint &r : it.endpoints) {
          Endpoint e;
          e.ns = r.ns.empty() ? it.ns : std::move(r.ns);
          e.hostname = std::move(r.hostname);
          e.service = it.name;
          e.ready = e.serving = r.ready;
          add(o, r.ip, std::move(e));
        }
        break;
      case Lookup::kPods:
        if (!it.pod_ip.empty()) {  // Pending: no IP yet (libcluster skips it too)
          Endpoint e;
          e.ns = it.ns;
          e.hostname = it.pod_hostname;
          e.service = it.pod_subdomain;
          e.terminating = it.deleting;
          e.serving = it.pod_ready;
          e.ready = it.pod_ready && !it.deleting;
          add(o, it.pod_ip, std::move(e));
        }
        break;
      case Lookup::kEndpointSlices:
        if (it.address_type != "IPv4" && it.address_type != "IPv6") {
          if (!it.endpoints.empty())
            skip(o, "slice " + printable_prefix(o.key) + " has addressType '" +
                        printable_prefix(std::string_view(it.address_type).substr(0, 32)) +
                        "' (only IPv4 and IPv6 name nodes)");
          break;
        }
        for (RawEndpoint &r : it.endpoints) {
          if (!r.has_address) {
            skip(o, "an endpoint of slice " + printable_prefix(o.key) + " has no address");
            continue;
          }
          // EndpointConditions: ready unset = true; serving unset = ready; terminating unset
          // = false.
          Endpoint e;
          e.ns = r.ns.empty() ? it.ns : std::move(r.ns);
          e.hostname = std::move(r.hostname);
          e.service = it.service_label;
          e.ready = r.ready;
          e.serving = r.has_serving ? r.serving : r.ready;
          e.terminating = r.terminating;
          add(o, r.ip, std::move(e));
        }
        break;
    }
    if (shape_ == Shape::kEvent) status = std::move(it);
    if (shape_ == Shape::kEvent) event_rv_ = status.resource_version;
    objects.push_back(std::move(o));
  }

 public:
  std::string event_rv_;

 private:
  Shape shape_;
  Lookup lookup_;
  std::string path_;
  std::vector<Frame> frames_;
  std::size_t index_ = 0;  // the current value's index in its array
  std::size_t item_base_ = 0;
  bool item_open_ = false, in_endpoint_ = false;
  RawItem item_;
  std::string shape_error_;
};

// RapidJSON parses in situ, in a copy of the text: strings are decoded in place, never on the
// parser's internal stack, whose first growth does arithmetic on a null pointer (RapidJSON
// 1.1.0, flagged by UBSan). The recursive parser is about twice as fast as the iterative one,
// and its depth is bounded: the handlers refuse to go deeper than kMaxDepth before it descends.
constexpr unsigned kParseFlags =
    rapidjson::kParseInsituFlag | rapidjson::kParseValidateEncodingFlag;

// Runs `handler` over `text`; false when it is not one well-formed JSON value (or the handler
// stopped). In situ parsing ends at a NUL byte, so text with one is refused outright. The
// UTF-8 validator takes a sequence's continuation bytes before it checks them: a lead byte
// just before the end would read 3 bytes past it, so the copy carries that many more NULs
// (which then fail as continuation bytes).
template <class Handler>
bool parse_with(std::string_view text, Handler &handler) {
  if (text.find('\0') != std::string_view::npos) return false;
  std::string buffer;
  buffer.reserve(text.size() + 3);
  buffer.append(text).append(3, '\0');
  rapidjson::InsituStringStream in(buffer.data());
  rapidjson::Reader parser;
  return !parser.Parse<kParseFlags>(in, handler).IsError();
}

// The top-level "message" of a Status object.
struct StatusMessage : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, StatusMessage> {
  std::size_t depth = 0;
  bool is_message = false;  // the value being read is the top level's "message"
  std::string message;
  bool Default() {
    is_message = false;
    return true;
  }
  bool StartObject() { return Default() && ++depth <= kMaxDepth; }
  bool StartArray() { return Default() && ++depth <= kMaxDepth; }
  bool EndObject(rapidjson::SizeType) { return --depth, true; }
  bool EndArray(rapidjson::SizeType) { return --depth, true; }
  bool Key(const char *text, rapidjson::SizeType length, bool) {
    is_message = depth == 1 && std::string_view(text, length) == "message";
    return true;
  }
  bool String(const char *text, rapidjson::SizeType length, bool) {
    if (is_message) message.assign(text, length);
    return Default();
  }
};

// Runs `reader` over `text`; "" or why the text is unusable.
std::string read(std::string_view text, Reader &reader, const char *what) {
  if (parse_with(text, reader)) return {};
  if (!reader.shape_error().empty()) return reader.shape_error();
  return std::string("malformed ") + what + ": " + printable_prefix(text);
}

}  // namespace

std::string parse_list(std::string_view body, Lookup lookup, ListResult &out) {
  Reader reader(Reader::Shape::kList, lookup);
  if (std::string error = read(body, reader, "JSON"); !error.empty()) return error;
  out.resource_version = std::move(reader.resource_version);
  out.objects = std::move(reader.objects);
  return {};
}

std::string parse_event(std::string_view line, Lookup lookup, Event &out) {
  Reader reader(Reader::Shape::kEvent, lookup);
  if (std::string error = read(line, reader, "watch event"); !error.empty()) return error;
  if (!reader.saw_object || reader.objects.empty())
    return "watch event without an object: " + printable_prefix(line);
  Event e;
  const std::string &type = reader.type;
  if (type == "ADDED") {
    e.type = EventType::kAdded;
  } else if (type == "MODIFIED") {
    e.type = EventType::kModified;
  } else if (type == "DELETED") {
    e.type = EventType::kDeleted;
  } else if (type == "BOOKMARK") {
    e.type = EventType::kBookmark;
  } else if (type == "ERROR") {
    e.type = EventType::kError;
    e.code = static_cast<int>(reader.status.code);
    e.reason = printable_prefix(reader.status.reason);
    e.message = printable_prefix(reader.status.message);
    out = std::move(e);
    return {};
  } else {
    return "watch event of unknown type '" + printable_prefix(type.substr(0, 32)) + "'";
  }
  e.resource_version = std::move(reader.event_rv_);
  if (e.type != EventType::kBookmark) e.object = std::move(reader.objects.front());
  out = std::move(e);
  return {};
}

bool included(const Endpoint &e, Readiness readiness) {
  switch (readiness) {
    case Readiness::kReady:
      return e.ready;
    case Readiness::kServing:
      return e.ready || e.serving;
    case Readiness::kAll:
      return true;
  }
  return false;
}

bool valid_dns_name(std::string_view text) {
  if (text.empty() || text.size() > 253 || text.front() == '.' || text.back() == '.') return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
  });
}

std::string node_name(const Endpoint &e, const Naming &naming, std::string &why) {
  const std::string &domain = naming.domain;
  switch (naming.mode) {
    case Mode::kIp:
      return naming.basename + "@" + e.ip;
    case Mode::kDns: {
      if (!valid_dns_name(e.ns)) {
        why = "endpoint " + e.ip + " has no usable namespace";
        return {};
      }
      std::string dashed = e.ip;
      std::replace(dashed.begin(), dashed.end(), '.', '-');
      std::replace(dashed.begin(), dashed.end(), ':', '-');
      return naming.basename + "@" + dashed + "." + e.ns + ".pod." + domain;
    }
    case Mode::kHostname: {
      const std::string &service = naming.service_name.empty() ? e.service : naming.service_name;
      if (!valid_dns_name(e.hostname)) {
        why = "endpoint " + e.ip + " has no hostname (hostname mode)";
        return {};
      }
      if (!valid_dns_name(service) || !valid_dns_name(e.ns)) {
        why = "endpoint " + e.ip + " has no service name or namespace (hostname mode)";
        return {};
      }
      return naming.basename + "@" + e.hostname + "." + service + "." + e.ns + ".svc." + domain;
    }
  }
  return {};
}

NameSet node_names(const std::map<std::string, Object> &objects, const Naming &naming) {
  NameSet out;
  for (const auto &[key, o] : objects) {
    if (o.skipped > 0 && out.skipped == 0) out.why = o.skip_reason;
    out.skipped += o.skipped;
    for (const Endpoint &e : o.endpoints) {
      if (!included(e, naming.readiness)) continue;
      std::string why;
      std::string name = node_name(e, naming, why);
      if (name.empty()) {
        if (out.skipped++ == 0) out.why = std::move(why);
        continue;
      }
      out.names.push_back(std::move(name));
    }
  }
  std::sort(out.names.begin(), out.names.end());
  out.names.erase(std::unique(out.names.begin(), out.names.end()), out.names.end());
  return out;
}

std::string status_message(std::string_view body) {
  StatusMessage handler;
  const bool ok = parse_with(body, handler);
  const std::string_view message = handler.message;
  return printable_prefix(ok && !message.empty() ? message : body);
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

std::string collection_path(Lookup lookup, std::string_view ns) {
  const std::string n = percent_encode(ns);
  switch (lookup) {
    case Lookup::kEndpoints:
      return "/api/v1/namespaces/" + n + "/endpoints";
    case Lookup::kPods:
      return "/api/v1/namespaces/" + n + "/pods";
    case Lookup::kEndpointSlices:
      return "/apis/discovery.k8s.io/v1/namespaces/" + n + "/endpointslices";
  }
  return {};
}

std::string api_host(std::string_view master, std::string_view domain) {
  const bool ends_with_domain =
      master.size() >= domain.size() && master.substr(master.size() - domain.size()) == domain;
  if (ends_with_domain || (!master.empty() && master.back() == '.')) return std::string(master);
  return std::string(master) + "." + std::string(domain);
}

}  // namespace clusterd::kubernetes
