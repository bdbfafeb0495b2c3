/*
 * The worker process: owns shard `id`, serves clients on the inherited
 * listening sockets, and reports liveness in its control block.
 */
#ifndef KV_SHARD_WORKER_H
#define KV_SHARD_WORKER_H

#include "core/conf.h"
#include "core/listen.h"
#include "event/segment.h"

typedef struct {
    int                 id;          /* shard number, 0..nshards-1        */
    int                 cpu;         /* pinned CPU or -1                  */
    kv_conf_t          *conf;        /* the master's copy, inherited       */
    const char         *conf_path;   /* to re-read reloadable settings     */
    const kv_conf_override_t *ov;
    int                 nov;
    kv_segment_t       *seg;
    kv_listeners_t     *listeners;   /* only this worker's fds remain open */
} kv_worker_args_t;

/* Exit statuses a worker reports to the master. */
#define KV_WORKER_EXIT_OK     0
#define KV_WORKER_EXIT_FATAL  2      /* cannot start: do not respawn fast  */

/* Runs in the forked child; returns the exit status. */
int kv_worker_main(const kv_worker_args_t *args);

#endif
