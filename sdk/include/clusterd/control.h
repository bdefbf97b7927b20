/* clusterd plugin SDK — the control extension (ABI 1.1; read-only commands 1.4; detach 1.6): a
 * plugin that implements it serves local applications through the daemon's control socket. A
 * client's request that names the plugin's instance ({"transport": "NAME", ...} or
 * {"topology": "NAME", ...}) opens a session: a bidirectional stream of JSON lines between that
 * client and the plugin, which lasts until either side ends it. One-shot commands answer one
 * line and end; subscriptions keep sending. A plugin may also take the session's socket over
 * (detach, since 1.6) and speak its own protocol on it. The socket protocol is in
 * docs/control-protocol.md. */
#ifndef CLUSTERD_CONTROL_H
#define CLUSTERD_CONTROL_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- What a plugin implements (clusterd_plugin_t.get_interface) ---------------------- */
#define CLUSTERD_INTERFACE_CONTROL "clusterd.control/1"

typedef struct clusterd_control {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* One line from the client of `session` (a JSON object as text: `length` bytes, no newline;
   * also NUL-terminated). The first request opens the session; the client's later lines come
   * here too. Answer with the sink's send(), now or later; end() when done. Returning an error
   * makes the host answer {"error": last_error()} and end the session (session_closed()
   * follows). [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *request)(clusterd_plugin_t *self, clusterd_id_t session,
                                           const char *line, size_t length);
  /* The session is over: the client went away, the plugin ended it, its client read too
   * slowly, or the instance is stopping. Called once per session that saw a request, never
   * from inside a sink call. send() on it fails from now on. When the instance stops, the host
   * ends each open session (its client receives {"error": "<instance> stopped"} after what was
   * queued) and calls this for it before the plugin's stop(). [loop-thread] */
  void(CLUSTERD_ABI *session_closed)(clusterd_plugin_t *self, clusterd_id_t session);
  /* since 1.4: the `cmd` names of this interface's read-only requests, NULL-terminated (NULL:
   * none). A read-only request only reports: it changes nothing in the plugin, its peers or the
   * cluster, and reveals nothing beyond what the host's own `status` shows (membership,
   * events). Every command not listed, and every line without a string "cmd", is
   * state-changing. The host lets a peer with read-only access (control_read_uids /
   * control_read_groups) open a session only with a listed command, and ends the session of
   * such a peer on its first later line whose cmd is not listed ("permission denied").
   * Plugins built before 1.4 (a smaller struct_size) have no list: all their requests are
   * state-changing. The list and its strings must stay valid while the library is loaded
   * (static storage). */
  const char *const *read_only_commands;
} clusterd_control_t;

/* ---- What the host offers (clusterd_host_t.get_service) ------------------------------ */
#define CLUSTERD_SERVICE_CONTROL_SINK "clusterd.control-sink/1"

/* The host buffers what a session's client has not read yet, up to this many bytes. A send()
 * beyond it fails with CLUSTERD_E_AGAIN and the host ends the session (its client is too slow):
 * memory stays bounded and no line is lost silently. */
#define CLUSTERD_CONTROL_MAX_BUFFERED (16u * 1024u * 1024u)

typedef struct clusterd_control_sink {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Queues one line for the session's client: `length` bytes of JSON (the host adds the
   * newline; the line must not contain one). CLUSTERD_OK; CLUSTERD_E_NOT_FOUND for a session
   * that is over (also once end() was called); CLUSTERD_E_INVALID_ARG for a line with a newline;
   * CLUSTERD_E_AGAIN when the client is too slow (see above). [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *send)(const clusterd_host_t *host, clusterd_id_t session,
                                        const char *line, size_t length);
  /* Ends the session once what was queued is written. session_closed() follows. [loop-thread] */
  void(CLUSTERD_ABI *end)(const clusterd_host_t *host, clusterd_id_t session);
  /* Bytes queued for the session's client and not yet written (0 for a session that is
   * over), so a plugin can slow its own sources before the limit. [loop-thread] */
  size_t(CLUSTERD_ABI *buffered)(const clusterd_host_t *host, clusterd_id_t session);
  /* since 1.6: takes the session's connected socket over from the host, so that the plugin
   * speaks its own protocol with the client from now on, with no host copy per message (the
   * partisan transport's binary sessions, docs/control-protocol.md). Only from inside
   * request() for this same session (the host reads nothing more from the socket then), and
   * only while nothing is queued for its client (buffered() == 0). On CLUSTERD_OK, *fd is the
   * socket: a connected Unix stream socket, non-blocking and close-on-exec, which the plugin
   * now owns (it watches it with the fd service and closes it); *unread and *unread_length are
   * the bytes the client sent after the line request() is handling, which the host had read
   * already (*unread is valid until request() returns). The host forgets the session: send()
   * and buffered() see it as over, end() does nothing, and session_closed() follows as for any
   * session (the plugin's state for the socket must not hang on it). Errors:
   * CLUSTERD_E_NOT_FOUND for a session that is over; CLUSTERD_E_INVALID_ARG for a NULL
   * pointer or a call from outside that request(); CLUSTERD_E_AGAIN while bytes are queued for
   * the client; CLUSTERD_E_IO if the host cannot give the socket up. A plugin must check
   * CLUSTERD_STRUCT_HAS(sink, clusterd_control_sink_t, detach): hosts before 1.6 lack it.
   * [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *detach)(const clusterd_host_t *host, clusterd_id_t session,
                                          int *fd, const char **unread, size_t *unread_length);
} clusterd_control_sink_t;

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_CONTROL_H */
