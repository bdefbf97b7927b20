/* libclusterd-client — the application side of a binary control session (link with
 * -lclusterd-client; pkg-config clusterd-client; CMake clusterd::client). An application opens a
 * session on a transport instance's channel (the partisan overlay's), then sends messages to
 * member nodes and receives theirs as length-prefixed frames on the daemon's control socket,
 * with no JSON per message (docs/control-protocol.md, "Binary sessions").
 *
 * Two ways to use it, mixable:
 *  - blocking: clusterd_client_send_wait() sends one message and waits for its acknowledgement;
 *    clusterd_client_wait() waits for the next events;
 *  - event loop: clusterd_client_send() only queues; poll clusterd_client_fd() for reading (and
 *    for writing while clusterd_client_want_write() says so), then call clusterd_client_process(),
 *    which writes what it can, reads what is there and calls your handler per event. It never
 *    blocks.
 * One client's messages reach a node in the order sent; every send gets one acknowledgement,
 * carrying the id send() returned (one that cannot go out may overtake earlier ones).
 * Plain C11; no exceptions leave it (C++ callers: a handler must not throw either). Thread-
 * compatible: one client is used by one thread at a time; distinct clients are independent.
 * Not part of the plugin ABI (sdk/docs/abi.md); versioned by its soname. */
#ifndef CLUSTERD_CLIENT_H
#define CLUSTERD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results of the calls below (0 or negative). */
#define CLUSTERD_CLIENT_OK 0
#define CLUSTERD_CLIENT_E_AGAIN (-1)     /* the send buffer is full: process() and retry */
#define CLUSTERD_CLIENT_E_CLOSED (-2)    /* the session is over; clusterd_client_error() says why */
#define CLUSTERD_CLIENT_E_INVALID (-3)   /* a NULL or out-of-range argument */
#define CLUSTERD_CLIENT_E_TIMEOUT (-4)   /* the deadline passed first */
#define CLUSTERD_CLIENT_E_TOO_LARGE (-5) /* data over the daemon's max_message_size */

/* The status of an acknowledgement (clusterd_client_event_t.status). */
#define CLUSTERD_CLIENT_DELIVERED 0         /* a receiver on the node took the message */
#define CLUSTERD_CLIENT_NO_RECEIVER 1       /* the node has no receiver on the channel */
#define CLUSTERD_CLIENT_RECEIVER_TOO_SLOW 2 /* its receivers did not keep up; they were closed */
#define CLUSTERD_CLIENT_REFUSED 3           /* the node refused the message (malformed) */
#define CLUSTERD_CLIENT_NOT_SENT                                 \
  4 /* not sent or lost on the way (not an up member, connection \
       lost before the acknowledgement: it may have arrived) */

/* Options of clusterd_client_open(). Zero-initialise, set struct_size = sizeof, fill in. */
#define CLUSTERD_CLIENT_SEND_ONLY 1u /* flags: do not receive the channel's messages */
typedef struct clusterd_client_options {
  uint32_t struct_size;    /* sizeof(clusterd_client_options_t) of the caller's build */
  uint32_t flags;          /* CLUSTERD_CLIENT_SEND_ONLY, or 0 */
  const char *socket_path; /* the daemon's control socket; NULL: /run/clusterd/clusterd.sock */
  const char *transport;   /* the transport instance's name; NULL: "partisan" */
  const char *channel;     /* the channel (the daemon's `channels`); NULL: "default" */
  int timeout_ms;          /* bounds connecting and opening; 0: 5000 */
  uint32_t spin_us;        /* the blocking waits poll without sleeping this long first (0: none):
                              lower latency for a process that has a core to spare */
  uint64_t max_buffered;   /* bytes queued before send() says E_AGAIN; 0: 16 MiB */
} clusterd_client_options_t;

typedef struct clusterd_client clusterd_client_t;

/* What the daemon reported: an acknowledgement of one of ours, or a message from a node. */
#define CLUSTERD_CLIENT_ACK 1
#define CLUSTERD_CLIENT_MESSAGE 2
typedef struct clusterd_client_event {
  int kind;           /* CLUSTERD_CLIENT_ACK or CLUSTERD_CLIENT_MESSAGE */
  int status;         /* ACK: CLUSTERD_CLIENT_DELIVERED .. CLUSTERD_CLIENT_NOT_SENT */
  uint64_t id;        /* ACK: the id send() returned */
  const char *reason; /* ACK: why it was not delivered (not NUL-terminated; "" if delivered) */
  size_t reason_length;
  const char *node; /* MESSAGE: the sending node (not NUL-terminated) */
  size_t node_length;
  const void *data; /* MESSAGE: the message's bytes */
  size_t data_length;
} clusterd_client_event_t;
/* Called once per event. The event's pointers are valid until the handler returns. It may call
 * send() (not close(), not process() or the waits of the same client). */
typedef void (*clusterd_client_handler_fn)(void *context, const clusterd_client_event_t *event);

/* Connects to the daemon and opens a session (blocks up to timeout_ms). The client, or NULL with
 * the reason in error[0, error_size) (NUL-terminated, cut to fit): the daemon unreachable, the
 * transport or channel unknown, "permission denied" for a peer with read-only control access. */
clusterd_client_t *clusterd_client_open(const clusterd_client_options_t *options, char *error,
                                        size_t error_size);

/* Ends the session (queued messages not yet written are dropped) and frees the client. NULL is
 * fine. */
void clusterd_client_close(clusterd_client_t *client);

/* This node's name, as the daemon said (NUL-terminated; valid while the client is). */
const char *clusterd_client_node(const clusterd_client_t *client);

/* The daemon's max_message_size: the largest `length` send() accepts. */
size_t clusterd_client_max_message_size(const clusterd_client_t *client);

/* Queues one message of `length` bytes for node `to` (NUL-terminated name); *id (if not NULL)
 * is the id its acknowledgement will carry. Small messages are only queued (process(), flush()
 * or a wait writes them, many per syscall); one of 16 KiB or more is written at once when
 * nothing else is queued (one writev, no copy of the data). Never blocks.
 * CLUSTERD_CLIENT_OK, E_AGAIN past max_buffered, E_TOO_LARGE, E_INVALID (bad `to`), E_CLOSED. */
int clusterd_client_send(clusterd_client_t *client, const char *to, const void *data, size_t length,
                         uint64_t *id);

/* Writes what is queued, as far as the socket takes it now (never blocks). CLUSTERD_CLIENT_OK
 * or E_CLOSED. */
int clusterd_client_flush(clusterd_client_t *client);

/* The socket to poll (readable: process(); writable: see want_write). -1 once closed. */
int clusterd_client_fd(const clusterd_client_t *client);

/* 1 if bytes are queued that the socket did not take yet (poll for writing too), else 0. */
int clusterd_client_want_write(const clusterd_client_t *client);

/* Writes what it can, reads what is there, and calls `handler` for each event (never blocks).
 * The number of events handled (>= 0), or E_CLOSED once the session is over (the daemon
 * stopped, it ended the session: clusterd_client_error() says why; events read before that
 * were handled). */
int clusterd_client_process(clusterd_client_t *client, clusterd_client_handler_fn handler,
                            void *context);

/* Blocking: flushes, then waits until at least one event was handled or timeout_ms passed (-1:
 * no limit). As process(); 0 when the time ran out. */
int clusterd_client_wait(clusterd_client_t *client, clusterd_client_handler_fn handler,
                         void *context, int timeout_ms);

/* Blocking: sends one message and waits for its acknowledgement, up to timeout_ms (-1: no
 * limit). Its status (CLUSTERD_CLIENT_DELIVERED .. NOT_SENT, >= 0; the reason, if any, via
 * clusterd_client_error()), or a negative result as send() or E_TIMEOUT. Other events arriving
 * meanwhile (messages, older acknowledgements) go to `handler` (NULL: dropped). */
int clusterd_client_send_wait(clusterd_client_t *client, const char *to, const void *data,
                              size_t length, clusterd_client_handler_fn handler, void *context,
                              int timeout_ms);

/* The last error's text (NUL-terminated; "" if none): why the session ended, or the reason of
 * the last acknowledgement send_wait() returned that was not a delivery. Valid until the next
 * call on the client. */
const char *clusterd_client_error(const clusterd_client_t *client);

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_CLIENT_H */
