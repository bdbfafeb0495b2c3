/*
 * Internal to the transaction modules (multi.c, multi_cross.c).
 */
#ifndef KV_SHARD_MULTI_INT_H
#define KV_SHARD_MULTI_INT_H

#include <stdint.h>

#include "shard/gather.h"
#include "shard/multi.h"

typedef struct {
    int          argc;
    kv_resp_arg *argv;          /* argv[i].ptr point into one block      */
} queued_t;

typedef struct {
    char  *key;
    size_t len;
    int    shard;
} watched_t;

typedef struct kv_txrun_s kv_txrun_t;

struct kv_multi_s {
    int         active;         /* between MULTI and EXEC/DISCARD        */
    int         dirty;          /* a command was refused while queueing  */
    queued_t   *q;
    int         nq, qcap;
    watched_t  *w;
    int         nw, wcap;
    kv_txrun_t *run;            /* a cross-shard EXEC in progress        */
};

const kv_cmd_t *kv_multi_internal(const char *name);
/* Send `name id key...` to every shard holding some of the keys; with a
 * client its reply is +OK once all answered, without nobody waits. */
void kv_multi_per_shard(kv_client_t *c, const char *name, int n, const kv_resp_arg *keys, uint64_t id);

/* EXEC of a transaction over these shards (multi_cross.c): takes the
 * queue and the watches out of m. */
void kv_multi_exec_cross(kv_client_t *c, kv_multi_t *m, const int *shards, int n);
void kv_multi_cross_gone(kv_multi_t *m);
int  kv_multi_cross_running(const kv_multi_t *m);

#endif
