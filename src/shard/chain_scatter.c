/*
 * The scratch-keyspace path for spanning commands (see chain.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "persist/rdbobj.h"
#include "shard/chain_int.h"
#include "shard/db.h"
#include "shard/route.h"

/*
 *
 * Round 1 fetches every key (kevy.export, kept); then the command's own
 * handler runs here on a scratch keyspace holding those copies, so its
 * reply and its errors (WRONGTYPE, syntax) are exactly the single-shard
 * ones; round 2 writes back every key whose value or expiry changed
 * (RESTORE ... ABSTTL REPLACE, or DEL). Costs a copy of each key, so it
 * suits the commands that need it (SUNIONSTORE, LMOVE, BITOP, ...).
 */
/* The write-back is done (flat NULL: nothing to write): the reply. */
static int scatter_done(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    for (int i = 0; flat && i < s->nparts; i++) {
        if (len[i] && flat[i][0] == '-') {
            kv_reply_raw(&s->out, flat[i], len[i]);
            return 0;
        }
    }
    struct iovec iov[64];
    int k;
    while ((k = kv_reply_buf_iov(&ch->reply, iov, 64)) > 0) {
        size_t got = 0;
        for (int i = 0; i < k; i++) kv_reply_raw(&s->out, iov[i].iov_base, iov[i].iov_len), got += iov[i].iov_len;
        kv_reply_buf_consume(&ch->reply, got);
    }
    return 0;
}

static int scatter_fetch(kv_slot_t *s, chain_t *ch)
{
    round_begin(s, ch->nskeys);
    for (int i = 0; i < ch->nskeys; i++) {
        kv_resp_arg argv[3] = { arg("kevy.export"), ch->argv[ch->skeys[i].arg], arg("0") };
        kv_fwd_part(s, i, ch->skeys[i].shard, cmd_named("kevy.export"), 3, argv);
    }
    return 1;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (!d) abort();
    memcpy(d, p, n);
    return d;
}

static int scatter_run(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    for (int i = 0; i < ch->nskeys; i++) {
        if (len[i] && flat[i][0] == '-') {              /* e.g. -LOADING */
            kv_reply_raw(&s->out, flat[i], len[i]);
            return 0;
        }
        chain_t tmp = { 0 };
        if (take_export(&tmp, flat[i], len[i])) {
            skey_t *k = &ch->skeys[i];
            k->exists = 1;
            k->payload = tmp.payload, k->plen = tmp.plen;
            k->ttl = strtoll(tmp.ttl, NULL, 10);
            if (k->ttl == 0) k->ttl = -1;
        }
    }
    kv_db_t *db = kv_db_new();
    for (int i = 0; i < ch->nskeys; i++) {
        skey_t *k = &ch->skeys[i];
        const kv_resp_arg *key = &ch->argv[k->arg];
        if (k->exists && kv_rdbobj_import(db, key->ptr, key->len, k->payload, k->plen, k->ttl) != KV_RDB_OK) {
            kv_db_free(db);
            kv_reply_error_cstr(&s->out, "kevy cannot move this key's value between shards");
            return 0;
        }
    }
    kv_client_t sc;
    memset(&sc, 0, sizeof(sc));
    sc.srv = kv_fwd_server();
    sc.db = db;
    sc.argc = ch->argc, sc.argv = ch->argv;
    kv_reply_buf_init(&sc.out);
    sc.srv->commands++;
    ch->cmd->proc(&sc);
    ch->reply = sc.out;

    /* What changed goes back to its shard. */
    int nparts = 0;
    kv_resp_arg (*parts)[6] = calloc((size_t) ch->nskeys, sizeof(*parts));
    int *pargc = calloc((size_t) ch->nskeys, sizeof(int)), *pshard = calloc((size_t) ch->nskeys, sizeof(int));
    ch->wb = calloc((size_t) ch->nskeys * 2, sizeof(char *));
    if (!parts || !pargc || !pshard || !ch->wb) abort();
    for (int i = 0; i < ch->nskeys; i++) {
        skey_t *k = &ch->skeys[i];
        const kv_resp_arg *key = &ch->argv[k->arg];
        kv_dict_entry *e = kv_db_find(db, key->ptr, key->len, KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH);
        if (!e) {
            if (!k->exists) continue;
            parts[nparts][0] = arg("del");
            parts[nparts][1] = *key;
            pargc[nparts] = 2;
        } else {
            kv_rdb_buf b;
            int64_t ttl = -1;
            kv_rdb_buf_init(&b);
            kv_rdbobj_export(e, &b, &ttl);
            if (k->exists && ttl == k->ttl && b.len == k->plen && !memcmp(b.p, k->payload, b.len)) {
                kv_rdb_buf_free(&b);
                continue;
            }
            char *p = dup_bytes(b.p, b.len), *t = malloc(24);
            if (!t) abort();
            snprintf(t, 24, "%lld", (long long) (ttl > 0 ? ttl : 0));
            ch->wb[ch->nwb++] = p, ch->wb[ch->nwb++] = t;
            parts[nparts][0] = arg("restore");
            parts[nparts][1] = *key;
            parts[nparts][2] = arg(t);
            parts[nparts][3] = (kv_resp_arg) { p, b.len };
            parts[nparts][4] = arg("ABSTTL");
            parts[nparts][5] = arg("REPLACE");
            pargc[nparts] = 6;
            kv_rdb_buf_free(&b);
        }
        pshard[nparts++] = k->shard;
    }
    kv_db_free(db);
    if (nparts == 0) {
        free(parts), free(pargc), free(pshard);
        return scatter_done(s, ch, NULL, NULL);
    }
    round_begin(s, nparts);
    for (int i = 0; i < nparts; i++)
        kv_fwd_part(s, i, pshard[i], cmd_named(parts[i][0].ptr), pargc[i], parts[i]);
    free(parts), free(pargc), free(pshard);
    return 1;
}

int kv_chain_scatter_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    switch (ch->step++) {
    case 0: return scatter_fetch(s, ch);
    case 1: return scatter_run(s, ch, flat, len);
    default: return scatter_done(s, ch, flat, len);
    }
}

void kv_chain_scatter(kv_client_t *c, const kv_cmd_t *cmd)
{
    int idx[c->argc + 1];
    int n = kv_gather_keys(c, cmd, idx);
    if (n <= 0) {                       /* cannot happen: it spans shards */
        kv_reply_error_cstr(&c->out, "-CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    chain_t *ch = chain_new(c, CH_SCATTER, -1, -1, 0);
    ch->cmd = cmd;
    kv_reply_buf_init(&ch->reply);
    ch->skeys = calloc((size_t) n, sizeof(skey_t));
    if (!ch->skeys) abort();
    for (int i = 0; i < n; i++) {
        const kv_resp_arg *a = &c->argv[idx[i]];
        int dup = 0;
        for (int j = 0; j < ch->nskeys && !dup; j++) {
            const kv_resp_arg *b = &c->argv[ch->skeys[j].arg];
            dup = a->len == b->len && !memcmp(a->ptr, b->ptr, a->len);
        }
        if (dup) continue;
        skey_t *k = &ch->skeys[ch->nskeys++];
        k->arg = idx[i];
        k->shard = kv_route_shard(a->ptr, a->len);
        k->ttl = -1;
    }
    chain_run(c, ch, ch->nskeys);
}

