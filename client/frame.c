#include "frame.h"

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v) {
  put_u32(p, (uint32_t)(v >> 32));
  put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* The prefix and type of a frame whose body (after the prefix) is `body` bytes. */
static size_t put_start(unsigned char *out, uint8_t type, size_t body) {
  put_u32(out, (uint32_t)body);
  out[4] = type;
  return 5;
}

size_t clusterd_frame_send_header(unsigned char *out, uint64_t id, size_t to_length,
                                  size_t data_length) {
  size_t n = put_start(out, CLUSTERD_FRAME_SEND, 1 + 8 + 2 + to_length + data_length);
  put_u64(out + n, id);
  out[n + 8] = (unsigned char)(to_length >> 8);
  out[n + 9] = (unsigned char)to_length;
  return n + 10;
}

size_t clusterd_frame_ack_header(unsigned char *out, uint64_t id, uint8_t status,
                                 size_t reason_length) {
  size_t n = put_start(out, CLUSTERD_FRAME_ACK, 1 + 8 + 1 + reason_length);
  put_u64(out + n, id);
  out[n + 8] = status;
  return n + 9;
}

size_t clusterd_frame_message_header(unsigned char *out, size_t from_length, size_t data_length) {
  size_t n = put_start(out, CLUSTERD_FRAME_MESSAGE, 1 + 2 + from_length + data_length);
  out[n] = (unsigned char)(from_length >> 8);
  out[n + 1] = (unsigned char)from_length;
  return n + 2;
}

size_t clusterd_frame_error_header(unsigned char *out, size_t reason_length) {
  return put_start(out, CLUSTERD_FRAME_ERROR, 1 + reason_length);
}

/* A node name at p[0, left): its u16 length, then the name (1..255 bytes). */
static int take_node(const unsigned char **p, size_t *left, clusterd_frame_t *frame) {
  if (*left < 2) return 0;
  size_t n = (size_t)(*p)[0] << 8 | (*p)[1];
  if (n == 0 || n > CLUSTERD_FRAME_MAX_NODE || *left - 2 < n) return 0;
  frame->node = (const char *)*p + 2;
  frame->node_length = n;
  *p += 2 + n;
  *left -= 2 + n;
  return 1;
}

long clusterd_frame_parse(const char *buf, size_t length, size_t max_frame, int from_app,
                          clusterd_frame_t *frame, const char **error) {
  if (length < CLUSTERD_FRAME_PREFIX) return CLUSTERD_FRAME_NEED_MORE;
  const unsigned char *p = (const unsigned char *)buf;
  const size_t body = get_u32(p);
  if (body == 0) {
    *error = "frame of length 0";
    return CLUSTERD_FRAME_MALFORMED;
  }
  if (body > max_frame) {
    *error = "frame longer than the limit (max_message_size plus 64 KiB)";
    return CLUSTERD_FRAME_MALFORMED;
  }
  if (length - CLUSTERD_FRAME_PREFIX < body) return CLUSTERD_FRAME_NEED_MORE;
  const uint8_t type = p[4];
  p += 5;
  size_t left = body - 1;
  frame->type = type;
  frame->status = 0;
  frame->id = 0;
  frame->node = frame->data = 0;
  frame->node_length = frame->data_length = 0;
  const int fits_direction = from_app
                                 ? type == CLUSTERD_FRAME_SEND
                                 : type == CLUSTERD_FRAME_ACK || type == CLUSTERD_FRAME_MESSAGE ||
                                       type == CLUSTERD_FRAME_ERROR;
  if (!fits_direction) {
    *error = type >= CLUSTERD_FRAME_SEND && type <= CLUSTERD_FRAME_ERROR
                 ? "frame type not allowed in this direction"
                 : "unknown frame type";
    return CLUSTERD_FRAME_MALFORMED;
  }
  switch (type) {
    case CLUSTERD_FRAME_SEND:
      if (left < 8) break;
      frame->id = get_u64(p);
      p += 8;
      left -= 8;
      if (!take_node(&p, &left, frame)) break;
      frame->data = (const char *)p;
      frame->data_length = left;
      return (long)(CLUSTERD_FRAME_PREFIX + body);
    case CLUSTERD_FRAME_ACK:
      if (left < 9) break;
      frame->id = get_u64(p);
      frame->status = p[8];
      frame->data = (const char *)p + 9;
      frame->data_length = left - 9;
      return (long)(CLUSTERD_FRAME_PREFIX + body);
    case CLUSTERD_FRAME_MESSAGE:
      if (!take_node(&p, &left, frame)) break;
      frame->data = (const char *)p;
      frame->data_length = left;
      return (long)(CLUSTERD_FRAME_PREFIX + body);
    default: /* CLUSTERD_FRAME_ERROR */
      frame->data = (const char *)p;
      frame->data_length = left;
      return (long)(CLUSTERD_FRAME_PREFIX + body);
  }
  *error = "frame body too short for its type, or a node name of 0 or over 255 bytes";
  return CLUSTERD_FRAME_MALFORMED;
}
