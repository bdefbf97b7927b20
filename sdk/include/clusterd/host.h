/* clusterd plugin SDK — the host table: what the daemon offers one plugin instance.
 * Each instance gets its own table, so the host can attribute and cancel its work. */
#ifndef CLUSTERD_HOST_H
#define CLUSTERD_HOST_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Threads.
 *   [loop-thread]  only on the host's event-loop thread: the thread that calls the plugin.
 *   [thread-safe]  from any thread, including threads the plugin owns.
 * Every callback the host makes into a plugin runs on the loop thread. */

typedef struct clusterd_host clusterd_host_t;
typedef void(CLUSTERD_ABI *clusterd_task_fn)(void *user_data);

/* The host table. Owned by the host; valid from create() until destroy() returns. */
struct clusterd_host {
  uint32_t struct_size;      /* sizeof at the producer's build; fields are appended only */
  uint32_t abi_major;        /* CLUSTERD_ABI_MAJOR of the host */
  uint32_t abi_minor;        /* CLUSTERD_ABI_MINOR of the host */
  uint32_t reserved;         /* 0 */
  const char *host_version;  /* clusterd's version, e.g. "0.1.0" */
  const char *instance_name; /* "topology NAME" or "transport NAME", for the plugin's own use */
  void *host_data;           /* host-private; plugins never touch it */

  /* Logs one line, prefixed by the host with the instance name. Never pass secrets.
   * The host escapes control characters and invalid UTF-8 (peer-supplied text may be passed
   * as it is: it cannot forge lines or send terminal escapes), and rate-limits info, warn and
   * error lines per instance, level and message shape (numbers, addresses and quoted parts
   * masked), logging "suppressed N similar ... messages" for what it dropped; debug and trace
   * are never dropped. [thread-safe]. `message` is borrowed for the call. */
  void(CLUSTERD_ABI *log)(const clusterd_host_t *host, int32_t level, const char *message);

  /* Returns the vtable of a host service by id (CLUSTERD_SERVICE_* in services.h, or a
   * kind sink from strategy.h / transport.h), or NULL if this host does not offer it.
   * The vtable is valid until destroy(). [loop-thread] */
  const void *(CLUSTERD_ABI *get_service)(const clusterd_host_t *host, const char *service_id);

  /* Runs fn(user_data) once on the loop thread, soon. The only way from a plugin-owned thread
   * back to the loop. Returns CLUSTERD_E_STATE once the instance is stopping: tasks not yet
   * run when stop() returns are dropped, so user_data stays the plugin's to free.
   * [thread-safe] */
  clusterd_status_t(CLUSTERD_ABI *post)(const clusterd_host_t *host, clusterd_task_fn fn,
                                        void *user_data);
};

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERD_HOST_H */
