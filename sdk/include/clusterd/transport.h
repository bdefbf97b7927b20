/* clusterd plugin SDK — transports: plugins that connect, disconnect and list nodes, and
 * report nodeup/nodedown. Operations are asynchronous; the host numbers them and the plugin
 * completes them through the transport sink. */
#ifndef CLUSTERD_TRANSPORT_H
#define CLUSTERD_TRANSPORT_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- What a transport implements (clusterd_plugin_t.get_interface) ------------------- */
#define CLUSTERD_INTERFACE_TRANSPORT "clusterd.transport/1"

/* Every operation gets a host-chosen, non-zero `op` id. The plugin completes it exactly once
 * with the sink's complete()/complete_list(), on the loop thread, possibly from inside the
 * call. If the call itself returns an error, the operation is over and must not be completed.
 * The host may cancel(op) (timeout, stop); after that the plugin must not complete it. */
typedef struct clusterd_transport {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Connects the managed node(s) to `node`. Complete with CLUSTERD_OK (connected or already
   * connected), CLUSTERD_E_UNREACHABLE, CLUSTERD_E_NOT_ALIVE, CLUSTERD_E_TIMEOUT, ... */
  clusterd_status_t(CLUSTERD_ABI *connect)(clusterd_plugin_t *self, clusterd_id_t op,
                                           const char *node);
  /* Disconnects `node`. Complete with CLUSTERD_OK, or CLUSTERD_E_NOT_FOUND if not connected. */
  clusterd_status_t(CLUSTERD_ABI *disconnect)(clusterd_plugin_t *self, clusterd_id_t op,
                                              const char *node);
  /* Lists the nodes currently connected (without the local node). Optional (NULL): the
   * host then relies on node_up/node_down alone. Complete with complete_list(). */
  clusterd_status_t(CLUSTERD_ABI *list_nodes)(clusterd_plugin_t *self, clusterd_id_t op);
  /* Abandons an operation; its completion must not be reported. Optional (NULL). */
  void(CLUSTERD_ABI *cancel)(clusterd_plugin_t *self, clusterd_id_t op);
  /* The local node's name (the managed node), or NULL while unknown. Valid until the next
   * call on self. Optional (NULL). */
  const char *(CLUSTERD_ABI *local_node)(const clusterd_plugin_t *self);
} clusterd_transport_t;

/* ---- What the host offers a transport (clusterd_host_t.get_service) ------------------ */
#define CLUSTERD_SERVICE_TRANSPORT_SINK "clusterd.transport-sink/1"

/* All functions are [loop-thread]; arguments are borrowed for the call (a node array may be
 * NULL when its count is 0). Unknown or already completed op ids are ignored. */
typedef struct clusterd_transport_sink {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Completes a connect or disconnect. `message` says why on failure; may be NULL. */
  void(CLUSTERD_ABI *complete)(const clusterd_host_t *host, clusterd_id_t op,
                               clusterd_status_t status, const char *message);
  /* Completes a list_nodes. On failure pass the status, a message and no nodes. */
  void(CLUSTERD_ABI *complete_list)(const clusterd_host_t *host, clusterd_id_t op,
                                    clusterd_status_t status, const char *message,
                                    const char *const *nodes, uint32_t count);
  /* The managed node gained a connection to `node`. */
  void(CLUSTERD_ABI *node_up)(const clusterd_host_t *host, const char *node);
  /* The managed node lost its connection to `node`; `reason` may be NULL. */
  void(CLUSTERD_ABI *node_down)(const clusterd_host_t *host, const char *node, const char *reason);
  /* The local node's name changed (e.g. the managed node restarted under another name), or
   * the transport lost / regained it: the host re-reads local_node() and re-lists. */
  void(CLUSTERD_ABI *local_changed)(const clusterd_host_t *host);
} clusterd_transport_sink_t;

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_TRANSPORT_H */
