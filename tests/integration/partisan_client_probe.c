/* An application of the partisan transport's binary sessions, through libclusterd-client, for
 * tests/integration/test_partisan_binary.py. One mode per run; every wait is bounded.
 *
 *   partisan_client_probe SOCKET CHANNEL MODE [ARGS]
 *     open                   open, print "opened NODE MAX_MESSAGE_SIZE" or "error: WHY" (exit 1)
 *     send PEER COUNT SIZE [echo]
 *                            send COUNT messages of SIZE bytes ("S<seq>" + padding), wait for
 *                            every acknowledgement (and, with `echo`, for COUNT echoes, checked
 *                            to be the messages sent, in order); print
 *                            "acks D NR TS RF NS" (delivered, no receiver, too slow, refused,
 *                            not sent), "reason TEXT" (the first failure's) and "echoes N OK"
 *     sendwait PEER TEXT     one blocking send; print "status N TEXT"
 *     echo                   send every message back to its sender; "READY", then until closed
 *     stall                  open a receiving session and read nothing until a line arrives on
 *                            stdin ("READY" first), then read until the session ends
 *     malformed              write a frame of an unknown type, then read until the session ends
 *     hold                   "READY", then read until the session ends (a daemon restart)
 *   Modes that end with the session print "closed: REASON" and "messages N" (exit 0; exit 3 if
 *   it did not end within 30 s). */
#define _GNU_SOURCE
#include <clusterd/client.h>

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_MS 30000

struct state {
  clusterd_client_t *client;
  uint64_t statuses[5];
  char reason[512];
  uint64_t messages, echoes, echo_errors;
  size_t size;
  int echo; /* echo mode: send back */
};

static void on_event(void *context, const clusterd_client_event_t *e) {
  struct state *s = context;
  if (e->kind == CLUSTERD_CLIENT_ACK) {
    if (e->status >= 0 && e->status <= 4) ++s->statuses[e->status];
    if (e->status != CLUSTERD_CLIENT_DELIVERED && s->reason[0] == '\0')
      snprintf(s->reason, sizeof s->reason, "%.*s", (int)e->reason_length, e->reason);
    return;
  }
  ++s->messages;
  if (s->echo) {
    char to[256];
    snprintf(to, sizeof to, "%.*s", (int)e->node_length, e->node);
    clusterd_client_send(s->client, to, e->data, e->data_length, NULL);
    return;
  }
  /* An echo of ours: "S<seq>", in order, SIZE bytes. */
  char want[32];
  int n = snprintf(want, sizeof want, "S%08llu", (unsigned long long)s->echoes);
  if (e->data_length != s->size || memcmp(e->data, want, (size_t)n) != 0) ++s->echo_errors;
  ++s->echoes;
}

static clusterd_client_t *open_client(const char *socket_path, const char *channel) {
  clusterd_client_options_t o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.socket_path = socket_path;
  o.transport = "overlay";
  o.channel = channel;
  char error[512];
  clusterd_client_t *c = clusterd_client_open(&o, error, sizeof error);
  if (!c) {
    printf("error: %s\n", error);
    exit(1);
  }
  return c;
}

/* Reads until the session ends; prints why. */
static int until_closed(struct state *s) {
  for (;;) {
    int n = clusterd_client_wait(s->client, on_event, s, TIMEOUT_MS);
    if (n < 0) {
      printf("closed: %s\nmessages %llu\n", clusterd_client_error(s->client),
             (unsigned long long)s->messages);
      return 0;
    }
    if (n == 0) {
      printf("still open after %d ms\n", TIMEOUT_MS);
      return 3;
    }
    clusterd_client_flush(s->client);
  }
}

static int send_mode(struct state *s, const char *peer, uint64_t count, size_t size, int echo) {
  char *data = malloc(size + 16);
  if (!data) return 3;
  memset(data, 'p', size + 16);
  s->size = size;
  uint64_t sent = 0, acked = 0;
  while (acked < count || (echo && s->echoes < count)) {
    while (sent < count && sent - acked < 64) { /* a window, as an application would */
      int n = snprintf(data, 16, "S%08llu", (unsigned long long)sent);
      if (size > (size_t)n) data[n] = 'p';
      int rc = clusterd_client_send(s->client, peer, data, size, NULL);
      if (rc == CLUSTERD_CLIENT_E_AGAIN) break;
      if (rc != CLUSTERD_CLIENT_OK) {
        printf("send failed: %d %s\n", rc, clusterd_client_error(s->client));
        return 3;
      }
      ++sent;
    }
    int n = clusterd_client_wait(s->client, on_event, s, TIMEOUT_MS);
    if (n < 0) {
      printf("closed: %s\n", clusterd_client_error(s->client));
      return 3;
    }
    if (n == 0) {
      printf("timed out: %llu sent, %llu echoes\n", (unsigned long long)sent,
             (unsigned long long)s->echoes);
      return 3;
    }
    acked = 0;
    for (int i = 0; i < 5; ++i) acked += s->statuses[i];
  }
  printf("acks %llu %llu %llu %llu %llu\n", (unsigned long long)s->statuses[0],
         (unsigned long long)s->statuses[1], (unsigned long long)s->statuses[2],
         (unsigned long long)s->statuses[3], (unsigned long long)s->statuses[4]);
  printf("reason %s\n", s->reason);
  printf("echoes %llu %s\n", (unsigned long long)s->echoes, s->echo_errors ? "BAD" : "OK");
  free(data);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: partisan_client_probe SOCKET CHANNEL MODE [ARGS]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *mode = argv[3];
  struct state s;
  memset(&s, 0, sizeof s);
  s.client = open_client(argv[1], argv[2]);
  int rc = 2;
  if (strcmp(mode, "open") == 0) {
    printf("opened %s %zu\n", clusterd_client_node(s.client),
           clusterd_client_max_message_size(s.client));
    rc = 0;
  } else if (strcmp(mode, "send") == 0 && argc >= 7) {
    rc = send_mode(&s, argv[4], strtoull(argv[5], NULL, 10), strtoull(argv[6], NULL, 10),
                   argc >= 8 && strcmp(argv[7], "echo") == 0);
  } else if (strcmp(mode, "sendwait") == 0 && argc == 6) {
    int status = clusterd_client_send_wait(s.client, argv[4], argv[5], strlen(argv[5]), on_event,
                                           &s, TIMEOUT_MS);
    printf("status %d %s\n", status, clusterd_client_error(s.client));
    rc = 0;
  } else if (strcmp(mode, "echo") == 0) {
    s.echo = 1;
    printf("READY\n");
    rc = until_closed(&s);
  } else if (strcmp(mode, "stall") == 0) {
    printf("READY\n");
    char line[64];
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 60000) != 1 || !fgets(line, sizeof line, stdin)) return 3;
    rc = until_closed(&s);
  } else if (strcmp(mode, "malformed") == 0) {
    /* A frame of type 9 (unknown): length 1, type 9. */
    static const unsigned char bad[] = {0, 0, 0, 1, 9};
    if (write(clusterd_client_fd(s.client), bad, sizeof bad) != (ssize_t)sizeof bad) return 3;
    rc = until_closed(&s);
  } else if (strcmp(mode, "hold") == 0) {
    printf("READY\n");
    rc = until_closed(&s);
  }
  clusterd_client_close(s.client);
  return rc;
}
