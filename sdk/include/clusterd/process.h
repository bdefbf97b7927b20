/* clusterd plugin SDK — child processes: "clusterd.process/1" (ABI 1.3; streamed output 1.5).
 * The host spawns, watches, times out, kills and reaps programs for a plugin; results arrive on
 * the loop. */
#ifndef CLUSTERD_PROCESS_H
#define CLUSTERD_PROCESS_H

#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The asynchronous contract of services.h applies: functions are [loop-thread]; `done` runs
 * exactly once, on the loop thread, never from inside spawn(); after cancel(id) returns it
 * never runs; ids are non-zero and never reused; what the instance left running when its
 * stop() returns is cancelled by the host.
 *
 * What the child gets (the same for every request, so that no plugin has to get it right):
 *  - argv exactly as given, never through a shell. argv[0] without a '/' is looked up in the
 *    daemon's PATH.
 *  - stdin = /dev/null; stdout and stderr are pipes the host reads (see max_capture_bytes).
 *  - No other descriptor: every fd above 2 is closed in the child (the host's sockets are
 *    not CLOEXEC).
 *  - Default signal dispositions and an empty signal mask (the daemon's must not leak).
 *  - Its own process group (pgid = its pid), so that a termination reaches the programs it
 *    started. Signals go to the group only while the child is not yet reaped, so they can
 *    never reach a reused pid. A group member still running when the child exits normally
 *    is left alone (a hook may start background work on purpose).
 *
 * Termination (timeout, cancel, overflow with CLUSTERD_PROCESS_STOP_ON_OVERFLOW, instance
 * stop): SIGTERM to the group, then SIGKILL to the group after grace_ms if the child has not
 * exited; if the child exits within the grace, its group gets SIGKILL before it is reaped.
 * The host always reaps the child, also after cancel: no zombie is left behind. */
#define CLUSTERD_SERVICE_PROCESS "clusterd.process/1"

/* Request flags.
 * MERGE_STDERR: stderr goes to the stdout pipe (one stream, in the order written); the
 *   result's stderr fields stay empty.
 * STOP_ON_OVERFLOW: terminate the child as soon as a stream exceeds max_capture_bytes (a
 *   runaway producer); the result then has the stream's truncated flag set. */
#define CLUSTERD_PROCESS_MERGE_STDERR 0x1u
#define CLUSTERD_PROCESS_STOP_ON_OVERFLOW 0x2u

/* Streams of clusterd_process_output_fn (since 1.5). */
#define CLUSTERD_PROCESS_STDOUT 1u
#define CLUSTERD_PROCESS_STDERR 2u

/* Output as it is read (since 1.5): `length` bytes of `stream` (CLUSTERD_PROCESS_STDOUT or
 * _STDERR; with MERGE_STDERR everything is stdout), in the order the child wrote them, cut
 * anywhere (not at line ends). Runs on the loop thread [loop-thread], zero or more times while
 * the child runs and before `done`, with the user_data of spawn(); never after cancel(id)
 * returned. `data` is borrowed for the call. The bytes are captured for `done` as well (their
 * tail: set max_capture_bytes small when this callback consumes them). For long-running
 * children that report line by line (a watch, an event stream). */
typedef void(CLUSTERD_ABI *clusterd_process_output_fn)(void *user_data, clusterd_id_t process_id,
                                                       uint32_t stream, const char *data,
                                                       uint64_t length);

/* What to run. Append-only: fields are only ever added at the end (ABI rule 3). All pointers
 * are borrowed for the spawn() call; the host copies what it keeps. */
typedef struct clusterd_process_request {
  uint32_t struct_size;
  uint32_t flags;             /* CLUSTERD_PROCESS_* */
  const char *const *argv;    /* argc strings, argv[0] = the program; no NULL terminator needed */
  uint32_t argc;              /* >= 1 */
  uint32_t envc;              /* number of strings in envp */
  const char *const *envp;    /* "NAME=value" strings: exactly the child's environment (envc 0 =
                                 empty). NULL = the daemon's own environment, unchanged */
  const char *cwd;            /* working directory of the child; NULL = the daemon's */
  uint64_t max_capture_bytes; /* per stream: the LAST max_capture_bytes of stdout and of stderr
                                 are kept (the rest is read and dropped, so the child never
                                 blocks on a full pipe); 0 = the host default (64 KiB); at
                                 most 16 MiB */
  uint64_t timeout_ms;        /* from spawn to termination (see above); 0 = no time limit */
  uint64_t grace_ms;          /* SIGTERM -> SIGKILL; 0 = the host default (2000 ms) */
  /* since 1.5 */
  clusterd_process_output_fn output; /* NULL = captured only (a host before 1.5 ignores it:
                                        check the host table's abi_minor) */
} clusterd_process_request_t;

/* The outcome, passed to `done`. Append-only. Valid only during the callback.
 * status: CLUSTERD_OK when the child ran and was reaped, whatever its exit (see exit_code,
 * term_signal, timed_out); CLUSTERD_E_NOT_FOUND when the program (or cwd) does not exist;
 * CLUSTERD_E_IO when it could not be started otherwise, or its exit status was lost (reaped by
 * someone else); `error` says why. The host never passes CLUSTERD_E_CANCELLED: a cancelled
 * process has no callback. Every pointer is the host's and valid only during the callback. */
typedef struct clusterd_process_result {
  uint32_t struct_size;
  clusterd_status_t status;
  int32_t exit_code;         /* exit status 0-255 if it exited, else -1 */
  int32_t term_signal;       /* the signal that ended it (15 SIGTERM, 9 SIGKILL...), else 0 */
  uint32_t timed_out;        /* 1 if the host terminated it at timeout_ms, else 0 */
  uint32_t stdout_truncated; /* 1 if stdout exceeded max_capture_bytes (its head was dropped) */
  uint32_t stderr_truncated; /* 1 if stderr exceeded max_capture_bytes */
  int32_t pid;               /* the child's pid, for logs (already reaped); 0 if none */
  const char *stdout_data;   /* captured stdout (NUL-terminated; may contain NULs), or "" */
  uint64_t stdout_length;
  const char *stderr_data; /* captured stderr, or "" */
  uint64_t stderr_length;
  const char *error; /* why status != OK (names the program), or "" */
} clusterd_process_result_t;

/* Runs once per spawn() that was not cancelled, on the loop thread [loop-thread], after the
 * child was reaped; `result` is borrowed for the call (copy what you keep). */
typedef void(CLUSTERD_ABI *clusterd_process_done_fn)(void *user_data, clusterd_id_t process_id,
                                                     const clusterd_process_result_t *result);

/* The service vtable. Append-only. Owned by the host, valid until destroy(). */
typedef struct clusterd_process_service {
  uint32_t struct_size;
  uint32_t reserved;
  /* Starts `request` and returns at once; `done(user_data, id, result)` runs once the child
   * has been reaped (or could not start). CLUSTERD_E_INVALID_ARG for a NULL or empty argv, a
   * NULL string in argv or envp, or max_capture_bytes above 16 MiB; CLUSTERD_E_STATE once the
   * instance is stopping. user_data must stay valid until `done` runs or cancel returns.
   * [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *spawn)(const clusterd_host_t *host,
                                         const clusterd_process_request_t *request,
                                         clusterd_process_done_fn done, void *user_data,
                                         clusterd_id_t *out_id);
  /* `done` will not run; the child, if still running, is terminated (SIGTERM, SIGKILL after
   * its grace) and reaped by the host in the background. Unknown or finished ids: no-op.
   * [loop-thread] */
  void(CLUSTERD_ABI *cancel)(const clusterd_host_t *host, clusterd_id_t process_id);
} clusterd_process_service_t;

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_PROCESS_H */
