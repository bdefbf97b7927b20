/* clusterd plugin SDK — basic types shared by every header: ABI version, status codes, ids.
 * C11, no dependencies. The ABI rules these follow are in sdk/docs/abi.md. */
#ifndef CLUSTERD_COMMON_H
#define CLUSTERD_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Conventions every header follows (the rules themselves are in sdk/docs/abi.md):
 *  - Every struct that crosses the boundary starts with uint32_t struct_size, and its fields are
 *    appended only: never reordered, removed, retyped or inserted. A reader checks
 *    CLUSTERD_STRUCT_HAS before it reads a field added after 1.0.
 *  - Lengths: a struct field holds a byte length as uint64_t and an element count as uint32_t
 *    (fields are fixed-width, abi.md section 3); a function parameter or result that counts
 *    bytes in memory is size_t, as in C's own API. On the supported LP64 platforms size_t and
 *    uint64_t are the same type, so the two spellings never disagree.
 *  - Thread tags on functions:
 *      [loop-thread]  only on the host's event-loop thread, one call at a time (the default
 *                     for every function without a tag);
 *      [thread-safe]  from any thread, the plugin's own included (host->log and host->post);
 *      [any-thread]   read-only data (the config view) that a plugin thread may also read
 *                     while the instance lives. */

/* ABI version. MAJOR is part of the entry symbol's name; MINOR grows when fields or services
 * are appended. A plugin loads when its major equals the host's and its minor is <= the host's. */
#define CLUSTERD_ABI_MAJOR 1
#define CLUSTERD_ABI_MINOR 6

/* Calling convention of every function pointer in the ABI (empty on the supported platforms;
 * present from day one so that adding one later is not an ABI break). */
#ifndef CLUSTERD_ABI
#define CLUSTERD_ABI
#endif

/* Marks the one symbol a plugin library exports. */
#if defined(_WIN32)
#define CLUSTERD_EXPORT __declspec(dllexport)
#else
#define CLUSTERD_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define CLUSTERD_EXTERN_C extern "C"
#else
#define CLUSTERD_EXTERN_C
#endif

/* True when the struct behind `ptr` (of type `type`, first field `struct_size`) was produced
 * by a peer new enough to have `field`. Check this before reading any field added after 1.0. */
#define CLUSTERD_STRUCT_HAS(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof((ptr)->field))

/* Status codes: 0 is success, negative values are errors. Positive values are reserved.
 * A reader must treat an unknown negative value as CLUSTERD_E_GENERIC. */
typedef int32_t clusterd_status_t;
#define CLUSTERD_OK 0
#define CLUSTERD_E_GENERIC (-1)      /* failure with no better code; see the message */
#define CLUSTERD_E_INVALID_ARG (-2)  /* a NULL or out-of-range argument */
#define CLUSTERD_E_UNSUPPORTED (-3)  /* the operation is not implemented by this peer */
#define CLUSTERD_E_NO_MEMORY (-4)    /* allocation failed */
#define CLUSTERD_E_TIMEOUT (-5)      /* the operation ran out of time */
#define CLUSTERD_E_CANCELLED (-6)    /* the operation was cancelled */
#define CLUSTERD_E_IO (-7)           /* a network or file error */
#define CLUSTERD_E_AGAIN (-8)        /* transient; retrying later may succeed */
#define CLUSTERD_E_STATE (-9)        /* not allowed in the current state (e.g. after stop) */
#define CLUSTERD_E_CONFIG (-10)      /* the configuration is invalid */
#define CLUSTERD_E_NOT_FOUND (-11)   /* no such key, node or id */
#define CLUSTERD_E_UNREACHABLE (-12) /* the peer could not be reached (connect_node = false) */
#define CLUSTERD_E_NOT_ALIVE (-13)   /* the local side is not part of a network (= ignored) */
#define CLUSTERD_E_TYPE (-14)        /* a config value has another type than asked for */

/* Handle of an asynchronous operation, timer or watch. 0 is never a valid id, and the host
 * never reuses an id within one daemon run. */
typedef uint64_t clusterd_id_t;

/* Log levels for clusterd_host_t.log. */
#define CLUSTERD_LOG_TRACE 0
#define CLUSTERD_LOG_DEBUG 1
#define CLUSTERD_LOG_INFO 2
#define CLUSTERD_LOG_WARN 3
#define CLUSTERD_LOG_ERROR 4

#endif /* CLUSTERD_COMMON_H */
