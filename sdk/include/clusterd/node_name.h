/* clusterd plugin SDK — the node-name rule: the one check (and parser) of "name@host[:port]"
 * that the host applies to every name a strategy reports, offered to plugins as inline code. */
#ifndef CLUSTERD_NODE_NAME_H
#define CLUSTERD_NODE_NAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The rule (since ABI 1.3; sdk/docs/abi.md §9). A node name is
 *
 *   node = name "@" host [":" port]            3..CLUSTERD_NODE_NAME_MAX bytes in all
 *   name = 1*(ALPHA / DIGIT / "_" / "-")       ASCII only
 *   host = hostname / IPv4 / IPv6 / "[" IPv6 "]"
 *   hostname = labels of ALPHA / DIGIT / "-" / "_" joined by single "."
 *   port = 1..65535 in decimal, no leading zero; after a hostname, an IPv4 address or a
 *          bracketed IPv6 address only (in "a@::1:80" the ":80" is part of the address)
 *
 * Why: `name` is what OTP's net_kernel accepts as a node's own name (checked on OTP 25: '.',
 * '+', '%' and non-ASCII letters are refused), so a name outside it can never be a BEAM node.
 * Erlang short names have a host without dots, long names a dotted host, an IPv4 or a bare
 * IPv6 address ("a@::1", -proto_dist inet6_tcp); partisan adds an optional ":port" and writes
 * IPv6 in brackets to carry one ("a@[::1]:9200"). Which of these a node actually uses is the
 * transport's business: the rule accepts all of them, and reports the parts so that nobody
 * re-parses by hand. 255 bytes is both the longest atom and the longest name EPMD registers.
 *
 * Refused: an empty string, more than 255 bytes, no '@', a second '@', an empty name or host,
 * whitespace, control bytes, non-ASCII bytes (also valid UTF-8: net_kernel refuses it in the
 * name, and DNS needs punycode in the host), empty labels ("a@b..c", "a@.b", "a@b."), a host of
 * digits and dots that is not an IPv4 address ("a@1.2.3.400"), a colon in a hostname other than
 * the port's, a port out of range, an IPv6 zone ("%eth0"), an empty "[]". */

/* The longest node name, in bytes. */
#define CLUSTERD_NODE_NAME_MAX 255

/* Results of clusterd_node_name_parse. */
#define CLUSTERD_NODE_NAME_OK 0
#define CLUSTERD_NODE_NAME_E_LENGTH 1    /* empty, or longer than CLUSTERD_NODE_NAME_MAX */
#define CLUSTERD_NODE_NAME_E_NO_AT 2     /* no '@' */
#define CLUSTERD_NODE_NAME_E_NAME 3      /* the part before '@' is empty or not [A-Za-z0-9_-] */
#define CLUSTERD_NODE_NAME_E_SECOND_AT 4 /* more than one '@' */
#define CLUSTERD_NODE_NAME_E_HOST 5      /* the host is empty, has a bad byte or an empty label */
#define CLUSTERD_NODE_NAME_E_PORT 6      /* the port is not 1..65535 (or has a leading zero) */
#define CLUSTERD_NODE_NAME_E_IPV6 7      /* in brackets, or with colons, but no IPv6 address */

/* Kinds of host part. */
#define CLUSTERD_NODE_HOST_SHORT 1  /* a hostname without dots (Erlang short names) */
#define CLUSTERD_NODE_HOST_DOTTED 2 /* a hostname with dots (an FQDN: Erlang long names) */
#define CLUSTERD_NODE_HOST_IPV4 3   /* a dotted-quad IPv4 address */
#define CLUSTERD_NODE_HOST_IPV6 4   /* an IPv6 address, bracketed or not */

/* The parts of a valid node name, as offsets into the text that was parsed (which stays the
 * caller's: the parts are valid as long as it is). Header-only: it never crosses the ABI, but
 * opens with struct_size like every SDK struct, set by the parser. */
typedef struct clusterd_node_name {
  uint32_t struct_size;
  uint32_t host_kind;   /* CLUSTERD_NODE_HOST_* */
  uint32_t name_length; /* the name is text[0, name_length) */
  uint32_t host_offset; /* the host is text[host_offset, host_offset + host_length), */
  uint32_t host_length; /*   without the brackets of an IPv6 address */
  uint32_t port;        /* 1..65535, or 0 when the name has no port */
} clusterd_node_name_t;

/* Internal helpers of the parser below: not part of the SDK's interface. */
static inline int clusterd_node_name_impl_digit(char c) {
  return c >= '0' && c <= '9';
}
static inline int clusterd_node_name_impl_hex(char c) {
  return clusterd_node_name_impl_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static inline int clusterd_node_name_impl_alnum(char c) {
  return clusterd_node_name_impl_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* 1 if s[0, n) is a dotted-quad IPv4 address (decimal 0..255, no leading zeros). */
static inline int clusterd_node_name_impl_ipv4(const char *s, size_t n) {
  size_t i = 0;
  int part;
  for (part = 0; part < 4; ++part) {
    size_t digits = 0;
    unsigned value = 0;
    if (part > 0) {
      if (i >= n || s[i] != '.') return 0;
      ++i;
    }
    while (i < n && clusterd_node_name_impl_digit(s[i]) && digits < 4) {
      value = value * 10u + (unsigned)(s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3 || value > 255u || (digits > 1 && s[i - digits] == '0')) return 0;
  }
  return i == n;
}

/* 1 if s[0, n) is an IPv6 address in text form (RFC 4291 §2.2, with an IPv4 tail allowed). */
static inline int clusterd_node_name_impl_ipv6(const char *s, size_t n) {
  size_t i = 0;
  unsigned groups = 0;
  int compressed = 0;
  if (n < 2) return 0;
  if (s[0] == ':') {
    if (s[1] != ':') return 0;
    compressed = 1;
    i = 2;
  }
  while (i < n) {
    size_t end = i, digits = 0;
    int dotted = 0;
    while (end < n && s[end] != ':') dotted |= (s[end++] == '.');
    if (dotted) {
      /* An IPv4 tail ("::ffff:1.2.3.4") ends the address and counts as two groups. */
      if (end != n || !clusterd_node_name_impl_ipv4(s + i, n - i)) return 0;
      groups += 2;
      i = n;
      break;
    }
    while (i < end && clusterd_node_name_impl_hex(s[i]) && digits < 5) {
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 4 || i != end) return 0;
    ++groups;
    if (i == n) break;
    ++i; /* the ':' */
    if (i < n && s[i] == ':') {
      if (compressed) return 0;
      compressed = 1;
      ++i;
    } else if (i == n) {
      return 0; /* a single trailing ':' */
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

/* Checks `text[0, length)` (not necessarily NUL-terminated) against the rule above. Returns
 * CLUSTERD_NODE_NAME_OK and fills `*parts` (when not NULL) if it is a node name, or one of
 * the CLUSTERD_NODE_NAME_E_* codes (then `*parts` is unspecified). Pure, allocation-free and
 * reentrant: [thread-safe], from the loop or any other thread. */
static inline int clusterd_node_name_parse(const char *text, size_t length,
                                           clusterd_node_name_t *parts) {
  size_t at = 0, i, host_begin, host_end, port_begin = 0;
  uint32_t kind = 0;
  unsigned long port = 0;
  if (text == NULL || length < 1 || length > CLUSTERD_NODE_NAME_MAX)
    return CLUSTERD_NODE_NAME_E_LENGTH;
  while (at < length && text[at] != '@') {
    if (!clusterd_node_name_impl_alnum(text[at]) && text[at] != '_' && text[at] != '-') {
      /* Find out whether there is an '@' at all: "no '@'" is the more useful message. */
      for (i = at; i < length; ++i)
        if (text[i] == '@') return CLUSTERD_NODE_NAME_E_NAME;
      return CLUSTERD_NODE_NAME_E_NO_AT;
    }
    ++at;
  }
  if (at == length) return CLUSTERD_NODE_NAME_E_NO_AT;
  if (at == 0) return CLUSTERD_NODE_NAME_E_NAME;
  host_begin = at + 1;
  host_end = length;
  for (i = host_begin; i < length; ++i)
    if (text[i] == '@') return CLUSTERD_NODE_NAME_E_SECOND_AT;
  if (host_begin == length) return CLUSTERD_NODE_NAME_E_HOST;

  if (text[host_begin] == '[') {
    size_t close = host_begin + 1;
    while (close < length && text[close] != ']') ++close;
    if (close == length) return CLUSTERD_NODE_NAME_E_IPV6;
    if (!clusterd_node_name_impl_ipv6(text + host_begin + 1, close - host_begin - 1))
      return CLUSTERD_NODE_NAME_E_IPV6;
    if (close + 1 < length) {
      if (text[close + 1] != ':') return CLUSTERD_NODE_NAME_E_HOST;
      port_begin = close + 2;
    }
    host_begin += 1;
    host_end = close;
    kind = CLUSTERD_NODE_HOST_IPV6;
  } else {
    size_t colons = 0, last_colon = 0;
    for (i = host_begin; i < length; ++i)
      if (text[i] == ':') {
        ++colons;
        last_colon = i;
      }
    if (colons > 1) {
      if (!clusterd_node_name_impl_ipv6(text + host_begin, length - host_begin))
        return CLUSTERD_NODE_NAME_E_IPV6;
      kind = CLUSTERD_NODE_HOST_IPV6;
    } else {
      int dots = 0, only_digits_and_dots = 1;
      if (colons == 1) {
        host_end = last_colon;
        port_begin = last_colon + 1;
      }
      if (host_end == host_begin) return CLUSTERD_NODE_NAME_E_HOST;
      for (i = host_begin; i < host_end; ++i) {
        const char c = text[i];
        if (c == '.') {
          /* No empty label: not first, not last, never two dots in a row. */
          if (i == host_begin || i + 1 == host_end || text[i + 1] == '.')
            return CLUSTERD_NODE_NAME_E_HOST;
          ++dots;
        } else if (clusterd_node_name_impl_alnum(c) || c == '-' || c == '_') {
          only_digits_and_dots &= clusterd_node_name_impl_digit(c);
        } else {
          return CLUSTERD_NODE_NAME_E_HOST;
        }
      }
      if (only_digits_and_dots && dots > 0) {
        if (!clusterd_node_name_impl_ipv4(text + host_begin, host_end - host_begin))
          return CLUSTERD_NODE_NAME_E_HOST;
        kind = CLUSTERD_NODE_HOST_IPV4;
      } else {
        kind = dots > 0 ? CLUSTERD_NODE_HOST_DOTTED : CLUSTERD_NODE_HOST_SHORT;
      }
    }
  }

  if (port_begin != 0) {
    if (port_begin == length || length - port_begin > 5 || text[port_begin] == '0')
      return CLUSTERD_NODE_NAME_E_PORT;
    for (i = port_begin; i < length; ++i) {
      if (!clusterd_node_name_impl_digit(text[i])) return CLUSTERD_NODE_NAME_E_PORT;
      port = port * 10u + (unsigned long)(text[i] - '0');
    }
    if (port > 65535u) return CLUSTERD_NODE_NAME_E_PORT;
  }
  if (parts != NULL) {
    parts->struct_size = (uint32_t)sizeof *parts;
    parts->host_kind = kind;
    parts->name_length = (uint32_t)at;
    parts->host_offset = (uint32_t)host_begin;
    parts->host_length = (uint32_t)(host_end - host_begin);
    parts->port = (uint32_t)port;
  }
  return CLUSTERD_NODE_NAME_OK;
}

/* 1 if the NUL-terminated `node` is a node name, 0 if not (or NULL). [thread-safe] */
static inline int clusterd_node_name_valid(const char *node) {
  size_t n = 0;
  if (node == NULL) return 0;
  while (n <= CLUSTERD_NODE_NAME_MAX && node[n] != '\0') ++n;
  return clusterd_node_name_parse(node, n, NULL) == CLUSTERD_NODE_NAME_OK;
}

/* What a CLUSTERD_NODE_NAME_* code means, in words for messages ("" for OK). Static storage:
 * never freed. [thread-safe] */
static inline const char *clusterd_node_name_error(int code) {
  switch (code) {
    case CLUSTERD_NODE_NAME_OK:
      return "";
    case CLUSTERD_NODE_NAME_E_LENGTH:
      return "empty or longer than 255 bytes";
    case CLUSTERD_NODE_NAME_E_NO_AT:
      return "no '@' (expected name@host)";
    case CLUSTERD_NODE_NAME_E_NAME:
      return "the part before '@' must be 1 or more of A-Z a-z 0-9 _ -";
    case CLUSTERD_NODE_NAME_E_SECOND_AT:
      return "more than one '@'";
    case CLUSTERD_NODE_NAME_E_HOST:
      return "the host must be a hostname (A-Z a-z 0-9 - _ in dot-separated labels), an IPv4 or "
             "an IPv6 address, optionally with :port";
    case CLUSTERD_NODE_NAME_E_PORT:
      return "the port must be 1..65535";
    case CLUSTERD_NODE_NAME_E_IPV6:
      return "not an IPv6 address (write a port as name@[v6]:port)";
    default:
      return "not a node name";
  }
}

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_NODE_NAME_H */
