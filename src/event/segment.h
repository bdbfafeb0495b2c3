/*
 * The shared segment: one MAP_SHARED|MAP_ANONYMOUS mapping the master
 * creates before it forks, so every worker sees the same bytes at the same
 * address. It holds no pointers (DESIGN.md invariant 2): the ring area is
 * found by offset from the segment base.
 *
 * Ownership: the master creates and destroys it; workers only write their
 * own control block's counters; the master writes state/pid/generation.
 * Rings and doorbells are written only through event/ring.h and
 * event/doorbell.h (protocols documented there and in docs/rings.md).
 */
#ifndef KV_EVENT_SEGMENT_H
#define KV_EVENT_SEGMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define KV_SHARDS_MAX    128
#define KV_SEGMENT_MAGIC 0x6b65767973656731ULL /* "kevyseg1" */

typedef enum {
    KV_SHARD_DOWN = 0,   /* no process: never started, dead, or stopped  */
    KV_SHARD_STARTING,   /* forked, not yet serving                       */
    KV_SHARD_LOADING,    /* loading its data; its keys answer -LOADING    */
    KV_SHARD_UP,         /* serving                                       */
    KV_SHARD_FAILED      /* refused to start (e.g. corrupt data)          */
} kv_shard_state_e;

/* The CONFIG SETs a shard's worker applied, for its next incarnation
 * (shard/cmd_config.c). Written by the worker only: the new text goes to
 * the copy that is not current, then `cur` flips, so a worker that dies
 * while writing leaves the previous copy whole. */
#define KV_CONFIG_JOURNAL_BYTES 4096
typedef struct {
    _Atomic uint32_t cur;
    uint32_t len[2];
    char     bytes[2][KV_CONFIG_JOURNAL_BYTES];
} kv_config_journal_t;

/* One per shard, each on its own cache lines so heartbeats of one worker
 * never bounce another's line. */
typedef struct {
    _Alignas(64) _Atomic uint32_t state;       /* kv_shard_state_e         */
    _Atomic uint32_t generation;               /* bumped by master on death */
    _Atomic int32_t  pid;
    _Atomic int32_t  cpu;                      /* -1 when not pinned        */
    _Atomic uint64_t heartbeat_ms;             /* kv_time_mono_ms() of last beat */
    _Atomic uint64_t started_ms;               /* when this incarnation forked */
    _Atomic uint32_t restarts;                 /* respawns since master start */
    _Atomic uint64_t clients;                  /* connected clients now     */
    _Atomic uint64_t commands;                 /* commands processed        */
    _Atomic uint64_t ring_backlog;             /* frames queued locally because a ring was full */
    char reason[128];                          /* why the worker refused to start (e.g. a
                                                  corrupt snapshot); "" when it serves.
                                                  Written by the worker only. */
    kv_config_journal_t config;
} kv_shard_ctl_t;

typedef struct {
    uint64_t magic;
    uint32_t nshards;
    uint32_t pad_;
    uint64_t size;          /* bytes of the whole mapping               */
    uint64_t ring_size;     /* capacity of one ring (power of two)      */
    uint64_t rings_off;     /* offset from the segment base of the ring area */
    uint64_t ring_stride;   /* bytes per ring: kv_ring_t header + ring_size */
    uint64_t bells_off;     /* offset of nshards kv_doorbell_t, one line each */
    _Atomic uint64_t master_start_ms;
    _Atomic uint32_t stopping;   /* set by the master at shutdown       */
    _Atomic uint32_t shutdown_save;  /* SHUTDOWN's choice for the final
                                        snapshot, kv_shutdown_save_e; set
                                        by the worker that ran it, read by
                                        every worker as it exits          */
    _Atomic uint32_t reloads;    /* configuration reloads (SIGHUP) done  */
    kv_shard_ctl_t shard[];      /* nshards entries                      */
} kv_segment_t;

typedef enum {
    KV_SHUTDOWN_SAVE_AS_CONFIGURED = 0,     /* a signal, or SHUTDOWN      */
    KV_SHUTDOWN_SAVE_FORCED = 1,            /* SHUTDOWN SAVE              */
    KV_SHUTDOWN_SAVE_NONE = 2,              /* SHUTDOWN NOSAVE            */
} kv_shutdown_save_e;

typedef struct kv_doorbell_s kv_doorbell_t;   /* event/doorbell.h */

/* Create the mapping for nshards shards and rings of ring_size bytes.
 * Returns NULL with errno set on failure. */
kv_segment_t *kv_segment_create(uint32_t nshards, uint64_t ring_size);
void kv_segment_destroy(kv_segment_t *seg);

/* Called by the master when worker `shard` has died (reaped: the process
 * no longer exists), before it respawns it: bumps the generation, drops
 * every frame published towards that shard, clears its doorbell, and rings
 * every other worker's doorbell with the shard's reset bit so the peers
 * notice at once (they drop their backlog to it, discard frames of the
 * dead incarnation, and fail their outstanding requests to it). Frames
 * carry both generations, so a stale frame is never delivered to the new
 * incarnation even if a peer publishes one after this call. */
void kv_segment_shard_reset(kv_segment_t *seg, uint32_t shard);

/* Layout (offsets from the base, no pointers stored):
 *   kv_segment_t, nshards x kv_shard_ctl_t          64-byte lines
 *   bells_off: nshards x kv_doorbell_t              one line each
 *   rings_off: nshards*(nshards-1) rings            page aligned, each
 *              kv_ring_t header (192 B) + ring_size data bytes
 * The i -> i ring does not exist. The mapping uses MAP_NORESERVE: rings
 * cost memory only once touched. */
uint64_t kv_segment_bytes(uint32_t nshards, uint64_t ring_size);

static inline kv_doorbell_t *kv_segment_bell(kv_segment_t *seg, uint32_t shard)
{
    return (kv_doorbell_t *)((char *)seg + seg->bells_off + (uint64_t)shard * 64u);
}

/* The ring carrying frames from worker `from` to worker `to` (from != to);
 * returns a kv_ring_t * (declared void * to keep this header light). */
static inline void *kv_segment_ring(kv_segment_t *seg, uint32_t from, uint32_t to)
{
    uint64_t idx = (uint64_t)from * (seg->nshards - 1) + (to < from ? to : to - 1);
    return (char *)seg + seg->rings_off + idx * seg->ring_stride;
}

#endif
