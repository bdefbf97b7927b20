/* The frames of a binary control session (docs/control-protocol.md, "Binary sessions"): the
 * codec that libclusterd-client and the partisan transport share, so that both ends parse with
 * the same code. Pure C, no allocation, no I/O; internal (not installed): applications use
 * clusterd/client.h. Fuzzed by tests/fuzz/client_frame_fuzz.cpp.
 *
 * A frame is a u32 big-endian length (of what follows it, at least 1) and a u8 type:
 *   SEND    1  app -> daemon   u64 id, u16 to_length, to, data (the rest)
 *   ACK     2  daemon -> app   u64 id, u8 status, reason (the rest; UTF-8, empty if delivered)
 *   MESSAGE 3  daemon -> app   u16 from_length, from, data (the rest)
 *   ERROR   4  daemon -> app   reason (the rest); the daemon closes the session after it
 * Integers are big-endian. A node name is 1..255 bytes. */
#ifndef CLUSTERD_CLIENT_FRAME_H
#define CLUSTERD_CLIENT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  CLUSTERD_FRAME_SEND = 1,
  CLUSTERD_FRAME_ACK = 2,
  CLUSTERD_FRAME_MESSAGE = 3,
  CLUSTERD_FRAME_ERROR = 4
};

#define CLUSTERD_FRAME_PREFIX 4u      /* the length prefix */
#define CLUSTERD_FRAME_MAX_HEADER 15u /* prefix, type, id, to_length: SEND's fixed part */
#define CLUSTERD_FRAME_MAX_NODE 255u  /* a node name (CLUSTERD_NODE_NAME_MAX) */
#define CLUSTERD_FRAME_SLACK 65536u   /* a frame may exceed the data limit by this much */

/* One decoded frame: views into the parsed buffer (valid while it is). */
typedef struct clusterd_frame {
  uint8_t type;
  uint8_t status;   /* ACK */
  uint64_t id;      /* SEND, ACK */
  const char *node; /* SEND: to; MESSAGE: from */
  size_t node_length;
  const char *data; /* SEND, MESSAGE: the message; ACK, ERROR: the reason */
  size_t data_length;
} clusterd_frame_t;

/* Results of clusterd_frame_parse. */
#define CLUSTERD_FRAME_NEED_MORE 0
#define CLUSTERD_FRAME_MALFORMED (-1)

/* Decodes the frame at the start of buf[0, length): the bytes it takes (> 0) with `frame` set,
 * CLUSTERD_FRAME_NEED_MORE if buf holds only part of it, or CLUSTERD_FRAME_MALFORMED with
 * *error (static text) saying why: a length of 0 or above `max_frame`, an unknown type, or a
 * body that does not fit its type. `from_app` selects the direction: SEND only (the daemon's
 * view), or ACK, MESSAGE and ERROR only (the client's). Never reads outside buf[0, length). */
long clusterd_frame_parse(const char *buf, size_t length, size_t max_frame, int from_app,
                          clusterd_frame_t *frame, const char **error);

/* Header encoders: each writes the bytes that precede the variable parts into `out` (at least
 * CLUSTERD_FRAME_MAX_HEADER bytes) and returns how many; the caller then writes the named
 * parts, in order (writev, or appends). Lengths must be within the limits above. */
size_t clusterd_frame_send_header(unsigned char *out, uint64_t id, size_t to_length,
                                  size_t data_length); /* then to, data */
size_t clusterd_frame_ack_header(unsigned char *out, uint64_t id, uint8_t status,
                                 size_t reason_length); /* then reason */
size_t clusterd_frame_message_header(unsigned char *out, size_t from_length,
                                     size_t data_length);                     /* then from, data */
size_t clusterd_frame_error_header(unsigned char *out, size_t reason_length); /* then reason */

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_CLIENT_FRAME_H */
