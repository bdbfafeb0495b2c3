/*
 * Cross-shard commands that take more than one round (chain.c):
 * MSETNX, RENAME, RENAMENX and COPY whose keys live on different shards,
 * and SCAN, whose cursor walks the shards in turn.
 */
#ifndef KV_SHARD_CHAIN_H
#define KV_SHARD_CHAIN_H

#include "shard/cmd.h"

enum {
    KV_CHAIN_NO = 0,     /* not a chained command: route it the usual way  */
    KV_CHAIN_TAKEN,      /* running                                         */
    KV_CHAIN_ERROR,      /* bad arguments: run it here, the handler replies */
};

/* MSETNX, RENAME, RENAMENX, COPY whose keys span shards, and SCAN. */
int kv_chain_route(kv_client_t *c, const kv_cmd_t *cmd);

/* Any other command whose keys span shards: copy every key here into a
 * scratch keyspace, run the command on it, write back what changed. */
void kv_chain_scatter(kv_client_t *c, const kv_cmd_t *cmd);

#endif
