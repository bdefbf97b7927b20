/* The binary data path of the partisan transport, measured through libclusterd-client
 * (clusterd/client.h); driven by bench/partisan_bench.py, next to its JSON path and Erlang
 * distribution.
 *
 *   partisan_client_bench echo SOCKET
 *       node B's application: every message whose data starts with 'E' goes back to its sender;
 *       'T' (throughput) messages are only read. Prints READY once open; ends when the session
 *       does (the daemon stops, or SIGTERM).
 *   partisan_client_bench drive SOCKET PEER RTTS RTTS_LARGE WARMUP MSGS MSGS_LARGE WINDOW
 *                         WINDOW_LARGE
 *       node A's application: round trips A -> B -> A (send, echo received) for 64 B and
 *       64 KiB, then pipelined sends with WINDOW in flight counted by their acknowledgements.
 *       Prints what the BEAM driver of partisan_bench.py prints: "LAT SIZE [us,...]" and
 *       "THR SIZE COUNT NS". Exit 3 on a failure (message on stderr).
 * PARTISAN_BENCH_SPIN_US=N sets the client's spin_us (its waits poll N us before sleeping). */
#define _GNU_SOURCE
#include <clusterd/client.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_MS 10000

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, clusterd_client_t *c) {
  fprintf(stderr, "partisan_client_bench: %s: %s\n", what, c ? clusterd_client_error(c) : "");
  exit(3);
}

static clusterd_client_t *open_client(const char *socket_path) {
  clusterd_client_options_t o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.socket_path = socket_path;
  o.transport = "overlay";
  o.channel = "default";
  o.max_buffered = 64u << 20;
  /* partisan_bench.py --client-spin-us: the waits poll this long before sleeping. */
  const char *spin = getenv("PARTISAN_BENCH_SPIN_US");
  o.spin_us = spin ? (uint32_t)strtoul(spin, NULL, 10) : 0;
  char error[512];
  clusterd_client_t *c = clusterd_client_open(&o, error, sizeof error);
  if (!c) {
    fprintf(stderr, "partisan_client_bench: open: %s\n", error);
    exit(3);
  }
  return c;
}

/* ---- echo ------------------------------------------------------------------------------ */

static void echo_event(void *context, const clusterd_client_event_t *e) {
  clusterd_client_t *c = context;
  if (e->kind != CLUSTERD_CLIENT_MESSAGE || e->data_length == 0 ||
      ((const char *)e->data)[0] != 'E')
    return;
  char to[256];
  snprintf(to, sizeof to, "%.*s", (int)e->node_length, e->node);
  if (clusterd_client_send(c, to, e->data, e->data_length, NULL) != CLUSTERD_CLIENT_OK)
    die("echo send", c);
}

static int echo_main(const char *socket_path) {
  clusterd_client_t *c = open_client(socket_path);
  printf("READY\n");
  fflush(stdout);
  for (;;) {
    int n = clusterd_client_wait(c, echo_event, c, -1);
    if (n < 0) break;
    clusterd_client_flush(c); /* the echoes of one read leave together */
  }
  clusterd_client_close(c);
  return 0;
}

/* ---- drive ----------------------------------------------------------------------------- */

struct drive {
  clusterd_client_t *client;
  char marker[16]; /* the echo a round trip waits for */
  int echoed;
  uint64_t acked, failed;
};

static void drive_event(void *context, const clusterd_client_event_t *e) {
  struct drive *d = context;
  if (e->kind == CLUSTERD_CLIENT_ACK) {
    if (e->status == CLUSTERD_CLIENT_DELIVERED) {
      ++d->acked;
    } else {
      ++d->failed;
      fprintf(stderr, "partisan_client_bench: not delivered (%d): %.*s\n", e->status,
              (int)e->reason_length, e->reason);
    }
  } else if (e->data_length >= 9 && memcmp(e->data, d->marker, 9) == 0) {
    d->echoed = 1;
  }
}

static void wait_until(struct drive *d, int *flag) {
  while (!*flag) {
    int n = clusterd_client_wait(d->client, drive_event, d, TIMEOUT_MS);
    if (n < 0) die("wait", d->client);
    if (n == 0) die("no echo within 10 s", d->client);
    if (d->failed) die("a message was not delivered", d->client);
  }
}

static void round_trips(struct drive *d, const char *peer, size_t size, int count, int warmup) {
  char *data = malloc(size);
  long long *us = malloc(sizeof *us * (size_t)(count > 0 ? count : 1));
  if (!data || !us) die("out of memory", NULL);
  memset(data, 'x', size);
  for (int i = 0; i < warmup + count; ++i) {
    snprintf(d->marker, sizeof d->marker, "E%08d", i);
    memcpy(data, d->marker, 9);
    d->echoed = 0;
    long long t0 = now_ns();
    if (clusterd_client_send(d->client, peer, data, size, NULL) != CLUSTERD_CLIENT_OK ||
        clusterd_client_flush(d->client) != CLUSTERD_CLIENT_OK)
      die("send", d->client);
    wait_until(d, &d->echoed);
    if (i >= warmup) us[i - warmup] = (now_ns() - t0) / 1000;
  }
  printf("LAT %zu [", size);
  for (int i = 0; i < count; ++i) printf("%s%lld", i ? "," : "", us[i]);
  printf("]\n");
  free(data);
  free(us);
}

static void throughput(struct drive *d, const char *peer, size_t size, uint64_t count,
                       uint64_t window) {
  char *data = malloc(size);
  if (!data) die("out of memory", NULL);
  memset(data, 'y', size);
  data[0] = 'T';
  d->acked = 0;
  uint64_t sent = 0;
  long long t0 = now_ns();
  while (d->acked < count) {
    while (sent < count && sent - d->acked < window) {
      int rc = clusterd_client_send(d->client, peer, data, size, NULL);
      if (rc == CLUSTERD_CLIENT_E_AGAIN) break;
      if (rc != CLUSTERD_CLIENT_OK) die("send", d->client);
      ++sent;
    }
    int n = clusterd_client_wait(d->client, drive_event, d, TIMEOUT_MS);
    if (n < 0) die("wait", d->client);
    if (n == 0) die("no acknowledgement within 10 s", d->client);
    if (d->failed) die("a message was not delivered", d->client);
  }
  printf("THR %zu %" PRIu64 " %lld\n", size, count, now_ns() - t0);
  free(data);
}

static int drive_main(char **argv) {
  struct drive d;
  memset(&d, 0, sizeof d);
  d.client = open_client(argv[0]);
  const char *peer = argv[1];
  int rtts = atoi(argv[2]), rtts_large = atoi(argv[3]), warmup = atoi(argv[4]);
  uint64_t msgs = strtoull(argv[5], NULL, 10), msgs_large = strtoull(argv[6], NULL, 10);
  uint64_t window = strtoull(argv[7], NULL, 10), window_large = strtoull(argv[8], NULL, 10);
  round_trips(&d, peer, 64, rtts, warmup);
  round_trips(&d, peer, 65536, rtts_large, warmup);
  throughput(&d, peer, 64, msgs, window);
  throughput(&d, peer, 65536, msgs_large, window_large);
  clusterd_client_close(d.client);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "echo") == 0) return echo_main(argv[2]);
  if (argc == 11 && strcmp(argv[1], "drive") == 0) return drive_main(argv + 2);
  fprintf(stderr,
          "usage: partisan_client_bench echo SOCKET\n"
          "       partisan_client_bench drive SOCKET PEER RTTS RTTS_LARGE WARMUP MSGS "
          "MSGS_LARGE WINDOW WINDOW_LARGE\n");
  return 2;
}
