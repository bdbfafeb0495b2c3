/*
 * Internal to the chain modules (chain.c, chain_scan.c, chain_scatter.c):
 * the state of a multi-round cross-shard command and the helpers its
 * steps share.
 */
#ifndef KV_SHARD_CHAIN_INT_H
#define KV_SHARD_CHAIN_INT_H

#include <string.h>

#include "shard/chain.h"
#include "shard/gather.h"

typedef enum { CH_MSETNX, CH_RENAME, CH_RENAMENX, CH_COPY, CH_SCAN, CH_SCATTER } chain_kind_e;

/* SCATTER: one involved key, as fetched from its shard. */
typedef struct {
    int     arg;                /* index in argv                         */
    int     shard;
    int     exists;
    char   *payload;            /* DUMP payload when it exists           */
    size_t  plen;
    int64_t ttl;                /* absolute unix ms, -1 none             */
} skey_t;

typedef struct chain_s {
    chain_kind_e kind;
    int          step;
    int          argc;
    kv_resp_arg *argv;          /* copies: the query buffer moves on     */
    int          replace;
    int          src_shard, dst_shard;
    char        *payload;       /* exported value                        */
    size_t       plen;
    char         ttl[24];
    /* SCAN: the shard being scanned, the keys gathered so far */
    int          shard;
    long long    count, nkeys;
    kv_reply_buf keys;
    /* SCATTER */
    const kv_cmd_t *cmd;
    skey_t      *skeys;
    int          nskeys;
    kv_reply_buf reply;         /* the command's reply, sent after write-back */
    char       **wb;            /* write-back payload/ttl strings to free  */
    int          nwb;
} chain_t;

/* One round of n parts: the +1 guard keeps the round open while parts
 * that run here complete at once; the chain drops it after issuing. */
static inline void round_begin(kv_slot_t *s, int nparts) { s->outstanding = nparts + 1; }
static inline kv_resp_arg arg(const char *s) { return (kv_resp_arg) { s, strlen(s) }; }

void chain_free(chain_t *ch);
const kv_cmd_t *cmd_named(const char *name);
int  one_part(kv_slot_t *s, int shard, int argc, kv_resp_arg *argv);
/* Read kevy.export's reply into ch->payload/plen/ttl; 0: no such key. */
int  take_export(chain_t *ch, const char *flat, size_t len);
chain_t *chain_new(kv_client_t *c, chain_kind_e kind, int src, int dst, int replace);
void chain_run(kv_client_t *c, chain_t *ch, int nparts);

int  kv_chain_scan_route(kv_client_t *c);
int  kv_chain_scan_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len);
int  kv_chain_scatter_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len);

#endif
