/* clusterd plugin SDK — host services fetched with clusterd_host_t.get_service: timers, fd
 * watches, a blocking-work pool, HTTP(S), DNS and status details. The host owns the loop and
 * all I/O so that plugins need no threads, no locks and no event loop of their own. */
#ifndef CLUSTERD_SERVICES_H
#define CLUSTERD_SERVICES_H

#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The asynchronous contract, shared by every service below:
 *  - Functions here are [loop-thread].
 *  - A one-shot callback (timer without period, work done, HTTP done, DNS done) runs exactly
 *    once, on the loop thread, never from inside the call that started the operation.
 *  - After cancel(id) returns, the callback never runs again and user_data is the plugin's.
 *    Cancelling an unknown or finished id is a harmless no-op.
 *  - When the plugin's stop() returns, the host cancels whatever the instance left running
 *    (and logs that the plugin forgot to). No callback runs after stop().
 *  - Pointers passed in are borrowed for the call; the host copies what it keeps. Pointers
 *    passed to callbacks are valid only during the callback. */

/* ---- Timers: "clusterd.timer/1" ------------------------------------------------------- */
#define CLUSTERD_SERVICE_TIMER "clusterd.timer/1"

typedef void(CLUSTERD_ABI *clusterd_timer_fn)(void *user_data, clusterd_id_t timer_id);

typedef struct clusterd_timer_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Fires after delay_ms, then every period_ms if period_ms > 0 (until cancelled). A periodic
   * timer is re-armed relative to its previous deadline, so it does not drift. */
  clusterd_status_t(CLUSTERD_ABI *add)(const clusterd_host_t *host, uint64_t delay_ms,
                                       uint64_t period_ms, clusterd_timer_fn fn, void *user_data,
                                       clusterd_id_t *out_id);
  void(CLUSTERD_ABI *cancel)(const clusterd_host_t *host, clusterd_id_t timer_id);
} clusterd_timer_service_t;

/* ---- File-descriptor readiness: "clusterd.fd/1" ---------------------------------------- */
#define CLUSTERD_SERVICE_FD "clusterd.fd/1"
#define CLUSTERD_FD_READ 0x1u
#define CLUSTERD_FD_WRITE 0x2u
#define CLUSTERD_FD_ERROR 0x4u /* reported only; hang-up or error on the fd */

typedef void(CLUSTERD_ABI *clusterd_fd_fn)(void *user_data, clusterd_id_t watch_id, int fd,
                                           uint32_t ready_events);

typedef struct clusterd_fd_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Level-triggered: fn runs whenever the fd is ready for one of `events`, until unwatched.
   * The plugin keeps ownership of the fd and must unwatch before closing it. */
  clusterd_status_t(CLUSTERD_ABI *watch)(const clusterd_host_t *host, int fd, uint32_t events,
                                         clusterd_fd_fn fn, void *user_data, clusterd_id_t *out_id);
  /* Changes the events of an existing watch. */
  clusterd_status_t(CLUSTERD_ABI *modify)(const clusterd_host_t *host, clusterd_id_t watch_id,
                                          uint32_t events);
  void(CLUSTERD_ABI *unwatch)(const clusterd_host_t *host, clusterd_id_t watch_id);
} clusterd_fd_service_t;

/* ---- Blocking work: "clusterd.work/1" -------------------------------------------------- */
#define CLUSTERD_SERVICE_WORK "clusterd.work/1"

typedef void(CLUSTERD_ABI *clusterd_work_fn)(void *user_data);
typedef void(CLUSTERD_ABI *clusterd_work_done_fn)(void *user_data, clusterd_id_t work_id);

typedef struct clusterd_work_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Runs work(user_data) on a host pool thread (it may block, but must finish in bounded
   * time), then done(user_data) on the loop thread. */
  clusterd_status_t(CLUSTERD_ABI *submit)(const clusterd_host_t *host, clusterd_work_fn work,
                                          clusterd_work_done_fn done, void *user_data,
                                          clusterd_id_t *out_id);
  /* CLUSTERD_OK: the job had not started and neither function will run.
   * CLUSTERD_E_AGAIN: work is running; done will not run, but work still finishes on its
   * thread, so user_data must stay alive until stop() (which waits for running work). */
  clusterd_status_t(CLUSTERD_ABI *cancel)(const clusterd_host_t *host, clusterd_id_t work_id);
} clusterd_work_service_t;

/* ---- HTTP(S): "clusterd.http/1" -------------------------------------------------------- */
#define CLUSTERD_SERVICE_HTTP "clusterd.http/1"
#define CLUSTERD_HTTP_INSECURE_SKIP_VERIFY 0x1u /* do not verify the server's certificate */

typedef struct clusterd_http_response clusterd_http_response_t;
typedef void(CLUSTERD_ABI *clusterd_http_done_fn)(void *user_data, clusterd_id_t request_id,
                                                  const clusterd_http_response_t *response);
/* Streaming body chunks (for watch APIs). Return 0 to go on, non-zero to abort the request,
 * which then completes with CLUSTERD_E_CANCELLED. */
typedef int32_t(CLUSTERD_ABI *clusterd_http_data_fn)(void *user_data, clusterd_id_t request_id,
                                                     const char *data, uint64_t length);

typedef struct clusterd_http_request {
  uint32_t struct_size;       /* sizeof at the producer's build; fields are appended only */
  uint32_t flags;             /* CLUSTERD_HTTP_* */
  const char *method;         /* "GET" when NULL */
  const char *url;            /* http:// or https:// */
  const char *const *headers; /* "Name: value" lines; may be NULL */
  uint32_t header_count;
  uint32_t reserved;
  const char *body; /* request body, may be NULL */
  uint64_t body_length;
  uint64_t timeout_ms;           /* whole request; 0 = the host default (30 s); for streams
                                    this bounds the time with no data at all. Connecting
                                    (TCP + TLS) gets at most 15 s of it */
  const char *ca_file;           /* PEM bundle to verify against; NULL = system store */
  const char *client_cert_file;  /* PEM client certificate for mutual TLS, or NULL */
  const char *client_key_file;   /* PEM key of client_cert_file, or NULL */
  uint64_t max_body_bytes;       /* 0 = the host default (16 MiB); larger bodies fail */
  clusterd_http_data_fn on_data; /* if set, the body streams here and is not buffered */
  /* ABI 1.2. Signs the request with AWS Signature Version 4, computed by libcurl
   * (CURLOPT_AWS_SIGV4): "aws:amz:REGION:SERVICE", e.g. "aws:amz:eu-west-1:ec2". NULL = no
   * signing. A session token (temporary credentials) goes in as the header
   * "X-Amz-Security-Token: ...", which is then signed too. */
  const char *aws_sigv4;
  /* ABI 1.2. Credentials: with aws_sigv4 the access key id and secret access key, otherwise
   * HTTP Basic authentication. NULL = none. Secrets: the host never logs them. */
  const char *username;
  const char *password;
} clusterd_http_request_t;

struct clusterd_http_response {
  uint32_t struct_size;     /* sizeof at the producer's build; fields are appended only */
  clusterd_status_t status; /* CLUSTERD_OK if an HTTP response arrived (any HTTP status) */
  int32_t http_status;      /* 200, 403, ...; 0 when none arrived */
  uint32_t header_count;
  const char *const *headers; /* "Name: value" lines of the final response */
  const char *body;           /* the buffered body (NUL-terminated), "" when streamed */
  uint64_t body_length;
  const char *error; /* why status != OK (names the URL's host), or "" */
};

typedef struct clusterd_http_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  clusterd_status_t(CLUSTERD_ABI *request)(const clusterd_host_t *host,
                                           const clusterd_http_request_t *request,
                                           clusterd_http_done_fn done, void *user_data,
                                           clusterd_id_t *out_id);
  void(CLUSTERD_ABI *cancel)(const clusterd_host_t *host, clusterd_id_t request_id);
} clusterd_http_service_t;

/* ---- DNS: "clusterd.dns/1" ------------------------------------------------------------- */
#define CLUSTERD_SERVICE_DNS "clusterd.dns/1"
/* Record types are the DNS RR type numbers. */
#define CLUSTERD_DNS_A 1
#define CLUSTERD_DNS_AAAA 28
#define CLUSTERD_DNS_SRV 33

typedef struct clusterd_dns_query {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t type;        /* CLUSTERD_DNS_A, _AAAA or _SRV */
  const char *name;     /* the name to look up */
  const char *server;   /* "ADDRESS" or "ADDRESS:PORT" ("[v6]:PORT"); NULL = system resolver */
  uint64_t timeout_ms;  /* 0 = the host default (5 s) */
} clusterd_dns_query_t;

typedef struct clusterd_dns_record {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t type;        /* CLUSTERD_DNS_* */
  uint32_t ttl;         /* seconds */
  uint16_t priority;    /* SRV only */
  uint16_t weight;      /* SRV only */
  uint16_t port;        /* SRV only */
  uint16_t reserved;
  uint32_t reserved2;  /* explicit padding: 0 */
  const char *address; /* A / AAAA: the address as text (IPv6 in compressed form) */
  const char *target;  /* SRV: the target host name, without the trailing dot */
} clusterd_dns_record_t;

/* status: CLUSTERD_OK (records may be empty: NODATA), CLUSTERD_E_NOT_FOUND (NXDOMAIN),
 * CLUSTERD_E_TIMEOUT, CLUSTERD_E_IO (SERVFAIL, refused, malformed reply). */
typedef struct clusterd_dns_result {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  clusterd_status_t status;
  const clusterd_dns_record_t *records; /* stride = records[0].struct_size */
  uint32_t record_count;
  uint32_t reserved;
  const char *error; /* why status != OK, or "" */
} clusterd_dns_result_t;

typedef void(CLUSTERD_ABI *clusterd_dns_done_fn)(void *user_data, clusterd_id_t query_id,
                                                 const clusterd_dns_result_t *result);

typedef struct clusterd_dns_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  clusterd_status_t(CLUSTERD_ABI *resolve)(const clusterd_host_t *host,
                                           const clusterd_dns_query_t *query,
                                           clusterd_dns_done_fn done, void *user_data,
                                           clusterd_id_t *out_id);
  void(CLUSTERD_ABI *cancel)(const clusterd_host_t *host, clusterd_id_t query_id);
} clusterd_dns_service_t;

/* ---- Status details: "clusterd.status/1" ----------------------------------------------- */
#define CLUSTERD_SERVICE_STATUS "clusterd.status/1"

typedef struct clusterd_status_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Sets a key/value detail shown under this instance by `clusterctl status` (e.g. "hosts
   * without node" = "b@10.0.0.2"). value NULL removes the key. Never pass secrets. */
  void(CLUSTERD_ABI *set)(const clusterd_host_t *host, const char *key, const char *value);
} clusterd_status_service_t;

/* ---- Metrics: "clusterd.metrics/1" (ABI 1.2) ------------------------------------------- */
#define CLUSTERD_SERVICE_METRICS "clusterd.metrics/1"

/* A plugin's own figures, exported by the host on its Prometheus listener (metrics_listen)
 * next to the host's. `name` matches [a-z][a-z0-9_]* and is exported as "clusterd_<name>"
 * with the label topology="..." or transport="..." of the calling instance, plus
 * label_name="label_value" when label_name is not NULL (one label: a reason, a peer class;
 * keep its values few, every value is a series kept until the instance stops). `help` is the
 * one-line HELP text, taken from the first call for a name. A name is one kind: a counter
 * name used as a gauge fails with CLUSTERD_E_TYPE. Bad names or labels give
 * CLUSTERD_E_INVALID_ARG. A plugin's series go away when its instance stops. */
typedef struct clusterd_metrics_service {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Adds `delta` to a counter (Prometheus type counter: name it ..._total). */
  clusterd_status_t(CLUSTERD_ABI *counter_add)(const clusterd_host_t *host, const char *name,
                                               const char *help, const char *label_name,
                                               const char *label_value, uint64_t delta);
  /* Sets a gauge to `value`. */
  clusterd_status_t(CLUSTERD_ABI *gauge_set)(const clusterd_host_t *host, const char *name,
                                             const char *help, const char *label_name,
                                             const char *label_value, double value);
} clusterd_metrics_service_t;

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_SERVICES_H */
