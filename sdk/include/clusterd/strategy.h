/* clusterd plugin SDK — strategies: plugins that discover nodes and report them.
 * Strategies report, the host decides: diffing, retries, backoff and disconnects are the
 * host's reconciler's job, never the strategy's. */
#ifndef CLUSTERD_STRATEGY_H
#define CLUSTERD_STRATEGY_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- What a strategy implements (clusterd_plugin_t.get_interface) -------------------- */
#define CLUSTERD_INTERFACE_STRATEGY "clusterd.strategy/1"

typedef struct clusterd_strategy {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* Asks for a discovery round now (e.g. `clusterctl` or a transport event). Optional:
   * NULL means the strategy only discovers on its own schedule. [loop-thread] */
  clusterd_status_t(CLUSTERD_ABI *refresh)(clusterd_plugin_t *self);
} clusterd_strategy_t;

/* ---- What the host offers a strategy (clusterd_host_t.get_service) ------------------- */
#define CLUSTERD_SERVICE_STRATEGY_SINK "clusterd.strategy-sink/1"

/* Node names follow the rule of node_name.h ("name@host[:port]"); the host refuses, counts
 * and logs names that break it, and they never reach the topology. All functions are [loop-thread];
 * arguments are borrowed for the call. A node array may be NULL when its count is 0. */
typedef struct clusterd_strategy_sink {
  uint32_t struct_size; /* sizeof at the producer's build; fields are appended only */
  uint32_t reserved;
  /* A complete discovery round: exactly these nodes exist now. An empty list is a real
   * answer ("no members"); a round that failed must call discovery_failed instead. */
  void(CLUSTERD_ABI *set_nodes)(const clusterd_host_t *host, const char *const *nodes,
                                uint32_t count);
  /* Event style: one node appeared. */
  void(CLUSTERD_ABI *node_seen)(const clusterd_host_t *host, const char *node);
  /* Event style: one node went away (expired, deregistered). */
  void(CLUSTERD_ABI *node_lost)(const clusterd_host_t *host, const char *node);
  /* A round failed (API error, timeout, NXDOMAIN...). The host keeps the last good node set,
   * shows `reason` in `clusterctl status` and logs it once per change of reason. */
  void(CLUSTERD_ABI *discovery_failed)(const clusterd_host_t *host, const char *reason);
  /* The name of the local node as the topology's transport knows it (to skip self, or to
   * announce it), or NULL while unknown. Valid until the next call. */
  const char *(CLUSTERD_ABI *local_node)(const clusterd_host_t *host);
} clusterd_strategy_sink_t;

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_STRATEGY_H */
