/* libclusterd-client (clusterd/client.h): the application side of a binary control session.
 * One socket, one output buffer (frames queued by send(), written by flush()), one input buffer
 * (frames read and handed to the handler). Everything is non-blocking underneath; the blocking
 * calls poll() with a deadline. */
#define _GNU_SOURCE
#include <clusterd/client.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define DEFAULT_SOCKET "/run/clusterd/clusterd.sock"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_BUFFERED (16u * 1024u * 1024u)
#define READ_CHUNK (256u * 1024u)
#define READS_PER_PROCESS 16        /* then return to the caller's loop (it polls again) */
#define MAX_OPEN_LINE 4096          /* the daemon's answer to "open" */
#define WRITE_AT_ONCE (16u * 1024u) /* send() writes data this large at once (no copy) */

struct clusterd_client {
  int fd;
  char node[CLUSTERD_FRAME_MAX_NODE + 1];
  size_t max_message, max_frame, max_buffered;
  long long spin_ns; /* options.spin_us */
  uint64_t next_id;
  char *out; /* queued frames: out[out_start, out_end) */
  size_t out_start, out_end, out_cap;
  char *in; /* received bytes not handled yet: in[in_start, in_end) */
  size_t in_start, in_end, in_cap;
  int closed;
  char error[512];
};

typedef long long millis_t;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static millis_t now_ms(void) {
  return now_ns() / 1000000;
}

static void set_error(clusterd_client_t *c, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(c->error, sizeof c->error, format, args);
  va_end(args);
}

/* Marks the session over, keeping the first reason. */
static int fail(clusterd_client_t *c, const char *why) {
  if (!c->closed) {
    c->closed = 1;
    snprintf(c->error, sizeof c->error, "%s", why);
  }
  return CLUSTERD_CLIENT_E_CLOSED;
}

/* Grows *buffer to hold at least `need` bytes. 0 when out of memory. */
static int reserve(char **buffer, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  size_t grown = *cap ? *cap : 4096;
  while (grown < need) grown *= 2;
  char *bigger = realloc(*buffer, grown);
  if (!bigger) return 0;
  *buffer = bigger;
  *cap = grown;
  return 1;
}

/* Waits until fd is ready for `events` or the deadline (-1: none) passes. 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, millis_t deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline >= 0) {
      millis_t left = deadline - now_ms();
      if (left <= 0) return 0;
      timeout = left > 60000 ? 60000 : (int)left;
    }
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, timeout);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return 1; /* the next call reports it */
  }
}

/* ---- opening ---------------------------------------------------------------------------- */

/* Appends `text` as a JSON string to out[0, cap) at *n. 0 if it does not fit. */
static int json_string(char *out, size_t cap, size_t *n, const char *text) {
  if (*n + 1 >= cap) return 0;
  out[(*n)++] = '"';
  for (const unsigned char *p = (const unsigned char *)text; *p; ++p) {
    if (*n + 7 >= cap) return 0;
    if (*p == '"' || *p == '\\') {
      out[(*n)++] = '\\';
      out[(*n)++] = (char)*p;
    } else if (*p < 0x20) {
      *n += (size_t)snprintf(out + *n, cap - *n, "\\u%04x", *p);
    } else {
      out[(*n)++] = (char)*p;
    }
  }
  if (*n + 1 >= cap) return 0;
  out[(*n)++] = '"';
  return 1;
}

/* The value of "key" in the daemon's one-line answer: a string (unescaped into out, cut to
 * out_size) or a number (as text). 0 if the key is absent. Enough for the daemon's own compact
 * output: keys appear once, at the top level. */
static int json_member(const char *line, const char *key, char *out, size_t out_size) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *p = strstr(line, pattern);
  if (!p || out_size == 0) return 0;
  p += strlen(pattern);
  while (*p == ' ') ++p;
  size_t n = 0;
  if (*p != '"') {
    while (*p && *p != ',' && *p != '}' && n + 1 < out_size) out[n++] = *p++;
    out[n] = '\0';
    return 1;
  }
  for (++p; *p && *p != '"'; ++p) {
    char ch = *p;
    if (ch == '\\' && p[1]) {
      ++p;
      ch = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'u' ? '?' : *p;
      if (*p == 'u')
        for (int i = 0; i < 4 && p[1]; ++i) ++p;
    }
    if (n + 1 < out_size) out[n++] = ch;
  }
  out[n] = '\0';
  return 1;
}

static int connect_socket(clusterd_client_t *c, const char *path, millis_t deadline) {
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof address.sun_path) {
    set_error(c, "socket path too long: %s", path);
    return 0;
  }
  memcpy(address.sun_path, path, strlen(path));
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    set_error(c, "socket: %s", strerror(errno));
    return 0;
  }
  while (connect(c->fd, (const struct sockaddr *)&address, sizeof address) != 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN && now_ms() < deadline) { /* its backlog is full: shortly again */
      poll(NULL, 0, 10);
      continue;
    }
    if (errno != EINPROGRESS) {
      set_error(c, "cannot connect to clusterd at %s: %s", path, strerror(errno));
      return 0;
    }
    int so_error = 0;
    socklen_t length = sizeof so_error;
    if (!wait_fd(c->fd, POLLOUT, deadline) ||
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_error, &length) != 0 || so_error != 0) {
      set_error(c, "cannot connect to clusterd at %s: %s", path,
                so_error ? strerror(so_error) : "timed out");
      return 0;
    }
    break;
  }
  return 1;
}

/* Sends the "open" line and reads the daemon's answer; the bytes after it (frames already
 * sent) stay in the input buffer. */
static int open_session(clusterd_client_t *c, const clusterd_client_options_t *o,
                        millis_t deadline) {
  char line[1024];
  size_t n = (size_t)snprintf(line, sizeof line, "{\"cmd\":\"open\",\"transport\":");
  const char *transport = o->transport ? o->transport : "partisan";
  const char *channel = o->channel ? o->channel : "default";
  int fits = json_string(line, sizeof line, &n, transport);
  if (fits && n + 11 < sizeof line) {
    memcpy(line + n, ",\"channel\":", 11);
    n += 11;
    fits = json_string(line, sizeof line, &n, channel);
  }
  if (!fits || n + 20 >= sizeof line) {
    set_error(c, "transport or channel name too long");
    return 0;
  }
  n += (size_t)snprintf(line + n, sizeof line - n, ",\"receive\":%s}\n",
                        (o->flags & CLUSTERD_CLIENT_SEND_ONLY) ? "false" : "true");
  for (size_t sent = 0; sent < n;) {
    if (!wait_fd(c->fd, POLLOUT, deadline)) {
      set_error(c, "clusterd did not take the request in time");
      return 0;
    }
    ssize_t w = send(c->fd, line + sent, n - sent, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      set_error(c, "cannot send to clusterd: %s", strerror(errno));
      return 0;
    }
    if (w > 0) sent += (size_t)w;
  }
  char *newline = NULL;
  while (!newline) {
    if (c->in_end >= MAX_OPEN_LINE) {
      set_error(c, "clusterd's answer to open is longer than %d bytes", MAX_OPEN_LINE);
      return 0;
    }
    if (!wait_fd(c->fd, POLLIN, deadline)) {
      set_error(c, "clusterd did not answer within the timeout");
      return 0;
    }
    ssize_t r = recv(c->fd, c->in + c->in_end, c->in_cap - c->in_end, 0);
    if (r == 0) {
      set_error(c, "clusterd closed the connection without answering");
      return 0;
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      set_error(c, "cannot read from clusterd: %s", strerror(errno));
      return 0;
    }
    newline = memchr(c->in + c->in_end, '\n', (size_t)r);
    c->in_end += (size_t)r;
  }
  *newline = '\0';
  char value[512] = "";
  if (json_member(c->in, "error", value, sizeof value) || !strstr(c->in, "\"ok\":true")) {
    set_error(c, "%s", value[0] && strstr(c->in, "\"error\"") ? value : c->in);
    return 0;
  }
  if (!json_member(c->in, "node", c->node, sizeof c->node) ||
      !json_member(c->in, "max_message_size", value, sizeof value)) {
    set_error(c, "clusterd's answer to open lacks node or max_message_size: %s", c->in);
    return 0;
  }
  c->max_message = (size_t)strtoull(value, NULL, 10);
  c->max_frame = c->max_message + CLUSTERD_FRAME_SLACK;
  c->in_start = (size_t)(newline + 1 - c->in);
  return 1;
}

clusterd_client_t *clusterd_client_open(const clusterd_client_options_t *options, char *error,
                                        size_t error_size) {
  if (error && error_size) error[0] = '\0';
  if (!options || options->struct_size < offsetof(clusterd_client_options_t, max_buffered) +
                                             sizeof options->max_buffered) {
    if (error && error_size) snprintf(error, error_size, "options missing or too old");
    return NULL;
  }
  clusterd_client_t *c = calloc(1, sizeof *c);
  if (!c || !reserve(&c->in, &c->in_cap, READ_CHUNK)) {
    free(c);
    if (error && error_size) snprintf(error, error_size, "out of memory");
    return NULL;
  }
  c->fd = -1;
  c->max_buffered = options->max_buffered ? options->max_buffered : DEFAULT_MAX_BUFFERED;
  c->spin_ns = (long long)options->spin_us * 1000;
  const int timeout = options->timeout_ms > 0 ? options->timeout_ms : DEFAULT_TIMEOUT_MS;
  const millis_t deadline = now_ms() + timeout;
  const char *path = options->socket_path ? options->socket_path : DEFAULT_SOCKET;
  if (connect_socket(c, path, deadline) && open_session(c, options, deadline)) return c;
  if (error && error_size) snprintf(error, error_size, "%s", c->error);
  clusterd_client_close(c);
  return NULL;
}

void clusterd_client_close(clusterd_client_t *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

const char *clusterd_client_node(const clusterd_client_t *c) {
  return c ? c->node : "";
}

size_t clusterd_client_max_message_size(const clusterd_client_t *c) {
  return c ? c->max_message : 0;
}

int clusterd_client_fd(const clusterd_client_t *c) {
  return c && !c->closed ? c->fd : -1;
}

int clusterd_client_want_write(const clusterd_client_t *c) {
  return c && !c->closed && c->out_end > c->out_start;
}

const char *clusterd_client_error(const clusterd_client_t *c) {
  return c ? c->error : "";
}

/* ---- sending ---------------------------------------------------------------------------- */

/* Checks a send's arguments; its frame's header into `header`, its length into *header_length. */
static int prepare_send(clusterd_client_t *c, const char *to, const void *data, size_t length,
                        unsigned char *header, size_t *header_length, uint64_t *id) {
  if (!c || !to || (!data && length)) return CLUSTERD_CLIENT_E_INVALID;
  if (c->closed) return CLUSTERD_CLIENT_E_CLOSED;
  const size_t to_length = strlen(to);
  if (to_length == 0 || to_length > CLUSTERD_FRAME_MAX_NODE) return CLUSTERD_CLIENT_E_INVALID;
  if (length > c->max_message) return CLUSTERD_CLIENT_E_TOO_LARGE;
  if (c->out_end - c->out_start > c->max_buffered) return CLUSTERD_CLIENT_E_AGAIN;
  *id = ++c->next_id;
  *header_length = clusterd_frame_send_header(header, *id, to_length, length);
  return CLUSTERD_CLIENT_OK;
}

/* Appends the parts to the output buffer, from byte `skip` of their concatenation on. */
static int queue_parts(clusterd_client_t *c, const struct iovec *parts, int count, size_t skip) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += parts[i].iov_len;
  if (c->out_start > 0 && c->out_start == c->out_end) c->out_start = c->out_end = 0;
  if (c->out_end + total - skip > c->out_cap && c->out_start > 0) { /* compact first */
    memmove(c->out, c->out + c->out_start, c->out_end - c->out_start);
    c->out_end -= c->out_start;
    c->out_start = 0;
  }
  if (!reserve(&c->out, &c->out_cap, c->out_end + total - skip)) {
    set_error(c, "out of memory");
    return CLUSTERD_CLIENT_E_AGAIN;
  }
  for (int i = 0; i < count; ++i) {
    size_t n = parts[i].iov_len;
    const char *p = parts[i].iov_base;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    memcpy(c->out + c->out_end, p + skip, n - skip);
    c->out_end += n - skip;
    skip = 0;
  }
  return CLUSTERD_CLIENT_OK;
}

static int send_message(clusterd_client_t *c, const char *to, const void *data, size_t length,
                        uint64_t *id, int write_now);

int clusterd_client_send(clusterd_client_t *c, const char *to, const void *data, size_t length,
                         uint64_t *id) {
  return send_message(c, to, data, length, id, length >= WRITE_AT_ONCE);
}

/* A write's error as the session's end. */
static int write_failed(clusterd_client_t *c) {
  char why[128];
  snprintf(why, sizeof why, "cannot write to clusterd: %s", strerror(errno));
  return fail(c, why);
}

/* Writes what is queued until the socket is full: 0, or the errno of a failed write. */
static int write_queued(clusterd_client_t *c) {
  while (c->out_end > c->out_start) {
    ssize_t w = send(c->fd, c->out + c->out_start, c->out_end - c->out_start, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return errno;
    }
    c->out_start += (size_t)w;
  }
  if (c->out_start == c->out_end) c->out_start = c->out_end = 0;
  return 0;
}

int clusterd_client_flush(clusterd_client_t *c) {
  if (!c) return CLUSTERD_CLIENT_E_INVALID;
  if (c->closed) return CLUSTERD_CLIENT_E_CLOSED;
  int error = write_queued(c);
  if (error == 0) return CLUSTERD_CLIENT_OK;
  errno = error;
  return write_failed(c);
}

/* Queues one SEND frame, or with `write_now` and nothing queued before it, writes it at once
 * with one writev (no copy of the data; what the socket does not take is queued). */
static int send_message(clusterd_client_t *c, const char *to, const void *data, size_t length,
                        uint64_t *id, int write_now) {
  unsigned char header[CLUSTERD_FRAME_MAX_HEADER];
  size_t header_length = 0;
  uint64_t my_id = 0;
  int rc = prepare_send(c, to, data, length, header, &header_length, &my_id);
  if (rc != CLUSTERD_CLIENT_OK) return rc;
  struct iovec parts[3] = {
      {header, header_length}, {(void *)to, strlen(to)}, {(void *)data, length}};
  size_t written = 0;
  if (write_now && c->out_end == c->out_start) {
    ssize_t w;
    do w = writev(c->fd, parts, 3);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN) return write_failed(c);
    if (w > 0) written = (size_t)w;
  }
  if (written < header_length + parts[1].iov_len + length) rc = queue_parts(c, parts, 3, written);
  if (rc == CLUSTERD_CLIENT_OK && id) *id = my_id;
  return rc;
}

/* ---- receiving -------------------------------------------------------------------------- */

/* Hands every complete frame in the input buffer to `handler`. The number handled, or
 * E_CLOSED (a malformed frame, or the daemon's ERROR). */
static int handle_frames(clusterd_client_t *c, clusterd_client_handler_fn handler, void *context) {
  int handled = 0;
  for (;;) {
    clusterd_frame_t frame;
    const char *why = NULL;
    long n = clusterd_frame_parse(c->in + c->in_start, c->in_end - c->in_start, c->max_frame, 0,
                                  &frame, &why);
    if (n == CLUSTERD_FRAME_NEED_MORE) break;
    if (n < 0) {
      char text[160];
      snprintf(text, sizeof text, "malformed frame from clusterd: %s", why);
      return fail(c, text);
    }
    c->in_start += (size_t)n;
    if (frame.type == CLUSTERD_FRAME_ERROR) {
      char text[sizeof c->error];
      int shown =
          frame.data_length > sizeof text - 1 ? (int)sizeof text - 1 : (int)frame.data_length;
      snprintf(text, sizeof text, "%.*s", shown, frame.data);
      return fail(c, text);
    }
    clusterd_client_event_t event;
    memset(&event, 0, sizeof event);
    if (frame.type == CLUSTERD_FRAME_ACK) {
      event.kind = CLUSTERD_CLIENT_ACK;
      event.status = frame.status;
      event.id = frame.id;
      event.reason = frame.data;
      event.reason_length = frame.data_length;
    } else {
      event.kind = CLUSTERD_CLIENT_MESSAGE;
      event.node = frame.node;
      event.node_length = frame.node_length;
      event.data = frame.data;
      event.data_length = frame.data_length;
    }
    ++handled;
    if (handler) handler(context, &event);
  }
  /* Keep the unfinished frame at the front, with room for all of it. */
  if (c->in_start > 0) {
    memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
    c->in_end -= c->in_start;
    c->in_start = 0;
  }
  return handled;
}

int clusterd_client_process(clusterd_client_t *c, clusterd_client_handler_fn handler,
                            void *context) {
  if (!c) return CLUSTERD_CLIENT_E_INVALID;
  if (c->closed) return CLUSTERD_CLIENT_E_CLOSED;
  /* Frames read along with open's answer, or left by an earlier call. */
  int handled = handle_frames(c, handler, context);
  if (handled < 0) return handled;
  /* A failed write ends the session only after the reads: the daemon's ERROR frame, if it
   * sent one before closing, is the better reason. */
  int write_error = 0;
  for (int i = 0; i < READS_PER_PROCESS; ++i) {
    if (!write_error) write_error = write_queued(c);
    if (c->in_cap - c->in_end < READ_CHUNK / 4 &&
        !reserve(&c->in, &c->in_cap, c->in_end + READ_CHUNK)) {
      return fail(c, "out of memory");
    }
    const size_t room = c->in_cap - c->in_end;
    ssize_t r = recv(c->fd, c->in + c->in_end, room, 0);
    if (r == 0) return fail(c, "clusterd closed the session");
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      char why[128];
      snprintf(why, sizeof why, "cannot read from clusterd: %s", strerror(errno));
      return fail(c, why);
    }
    c->in_end += (size_t)r;
    int n = handle_frames(c, handler, context);
    if (n < 0) return n;
    handled += n;
    if ((size_t)r < room) break; /* drained: spare the recv saying EAGAIN */
  }
  if (write_error) {
    errno = write_error;
    return write_failed(c);
  }
  return handled;
}

/* process() until it handles events (their number), the session ends (< 0) or the deadline
 * (-1: none) passes (0). Spins for spin_ns before it sleeps in poll(). */
static int next_events(clusterd_client_t *c, clusterd_client_handler_fn handler, void *context,
                       millis_t deadline) {
  const long long spin_until = c->spin_ns ? now_ns() + c->spin_ns : 0;
  for (;;) {
    int n = clusterd_client_process(c, handler, context);
    if (n != 0) return n;
    if (spin_until && now_ns() < spin_until) continue;
    short events = POLLIN | (clusterd_client_want_write(c) ? POLLOUT : 0);
    if (!wait_fd(c->fd, events, deadline)) return 0;
  }
}

int clusterd_client_wait(clusterd_client_t *c, clusterd_client_handler_fn handler, void *context,
                         int timeout_ms) {
  if (!c) return CLUSTERD_CLIENT_E_INVALID;
  return next_events(c, handler, context, timeout_ms < 0 ? -1 : now_ms() + timeout_ms);
}

/* send_wait's handler: catches the acknowledgement it waits for, passes the rest on. */
struct awaited {
  clusterd_client_t *client;
  uint64_t id;
  int status; /* -1 until the acknowledgement came */
  clusterd_client_handler_fn handler;
  void *context;
};

static void catch_ack(void *context, const clusterd_client_event_t *event) {
  struct awaited *a = context;
  if (event->kind == CLUSTERD_CLIENT_ACK && event->id == a->id) {
    a->status = event->status;
    int shown = event->reason_length > sizeof a->client->error - 1
                    ? (int)sizeof a->client->error - 1
                    : (int)event->reason_length;
    set_error(a->client, "%.*s", shown, event->reason);
  } else if (a->handler) {
    a->handler(a->context, event);
  }
}

int clusterd_client_send_wait(clusterd_client_t *c, const char *to, const void *data, size_t length,
                              clusterd_client_handler_fn handler, void *context, int timeout_ms) {
  struct awaited a = {c, 0, -1, handler, context};
  int rc = send_message(c, to, data, length, &a.id, 1);
  if (rc != CLUSTERD_CLIENT_OK) return rc;
  const millis_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  while (a.status < 0) {
    rc = next_events(c, catch_ack, &a, deadline);
    if (a.status >= 0) break;
    if (rc < 0) return rc;
    if (rc == 0) return CLUSTERD_CLIENT_E_TIMEOUT;
  }
  return a.status;
}
