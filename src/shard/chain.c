/*
 * Cross-shard commands that need more than one round: each step reads the
 * replies of the last round and either answers or sends the next round.
 *
 *   MSETNX   EXISTS on every shard of the keys; none exists: MSET there.
 *   RENAME   export+delete src on its shard; RESTORE ... REPLACE on dst's.
 *   RENAMENX EXISTS dst; free: as RENAME without REPLACE.
 *   COPY     export src (kept); RESTORE on dst's shard (REPLACE if asked).
 *
 * The value travels as a DUMP payload with its absolute expiry, through
 * the internal command `kevy.export`, which clients cannot call.
 *
 * The router runs a chain under the locks of its shards (lock.h), so no
 * other client sees the moment between two rounds.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "persist/rdbobj.h"
#include "shard/chain_int.h"
#include "shard/db.h"
#include "shard/route.h"

void chain_free(chain_t *ch)
{
    for (int i = 0; i < ch->argc; i++) free((void *) ch->argv[i].ptr);
    free(ch->argv);
    free(ch->payload);
    kv_reply_buf_free(&ch->keys);
    kv_reply_buf_free(&ch->reply);
    for (int i = 0; i < ch->nskeys; i++) free(ch->skeys[i].payload);
    free(ch->skeys);
    for (int i = 0; i < ch->nwb; i++) free(ch->wb[i]);
    free(ch->wb);
    free(ch);
}

const kv_cmd_t *cmd_named(const char *name)
{
    return kv_cmd_lookup_any(name, strlen(name));
}



static int reply_is(const char *flat, const char *prefix) { return !strncmp(flat, prefix, strlen(prefix)); }

/* ---- MSETNX ------------------------------------------------------------ */

/* Per shard of the keys: the command name then that shard's groups. */
static int per_shard_round(kv_slot_t *s, chain_t *ch, const char *name, int step)
{
    int n = kv_route_nshards(), nparts = 0;
    kv_resp_arg *argv = malloc(sizeof(*argv) * (size_t) ch->argc);
    if (!argv) abort();
    int used[KV_SHARDS_MAX] = { 0 };
    for (int i = 1; i < ch->argc; i += 2) used[kv_route_shard(ch->argv[i].ptr, ch->argv[i].len)] = 1;
    for (int sh = 0; sh < n; sh++) nparts += used[sh];
    round_begin(s, nparts);
    for (int sh = 0, p = 0; sh < n; sh++) {
        if (!used[sh]) continue;
        int argc = 1;
        argv[0] = arg(name);
        for (int i = 1; i < ch->argc; i += 2) {
            if (kv_route_shard(ch->argv[i].ptr, ch->argv[i].len) != sh) continue;
            for (int j = 0; j < step; j++) argv[argc++] = ch->argv[i + j];
        }
        kv_fwd_part(s, p++, sh, cmd_named(name), argc, argv);
    }
    free(argv);
    return 1;
}

static int msetnx_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    long long sum = 0;
    switch (ch->step++) {
    case 0:
        return per_shard_round(s, ch, "exists", 1);
    case 1:
        for (int i = 0; i < s->nparts; i++) {
            if (!len[i]) continue;
            if (flat[i][0] == '-') { kv_reply_raw(&s->out, flat[i], len[i]); return 0; }
            sum += strtoll(flat[i] + 1, NULL, 10);
        }
        if (sum > 0) { kv_reply_int(&s->out, 0); return 0; }
        return per_shard_round(s, ch, "mset", 2);
    default:
        for (int i = 0; i < s->nparts; i++)
            if (len[i] && flat[i][0] == '-') { kv_reply_raw(&s->out, flat[i], len[i]); return 0; }
        kv_reply_int(&s->out, 1);
        return 0;
    }
}

/* ---- RENAME / RENAMENX / COPY ---------------------------------------------- */

int one_part(kv_slot_t *s, int shard, int argc, kv_resp_arg *argv)
{
    round_begin(s, 1);
    kv_fwd_part(s, 0, shard, cmd_named(argv[0].ptr), argc, argv);
    return 1;
}

static int export_round(kv_slot_t *s, chain_t *ch, int del)
{
    kv_resp_arg argv[3] = { arg("kevy.export"), ch->argv[1], arg(del ? "1" : "0") };
    return one_part(s, ch->src_shard, 3, argv);
}

/* Read "*2 $payload :ttl" from kevy.export; 0 when the key is missing. */
int take_export(chain_t *ch, const char *flat, size_t len)
{
    if (len < 4 || flat[0] != '*' || flat[1] == '-') return 0;
    const char *p = strchr(flat, '\n');
    if (!p || p[1] != '$') return 0;
    size_t n = (size_t) strtoull(p + 2, NULL, 10);
    const char *data = strchr(p + 1, '\n');
    if (!data || (size_t) (flat + len - data - 1) < n + 2) return 0;
    data++;
    ch->payload = malloc(n ? n : 1);
    if (!ch->payload) abort();
    memcpy(ch->payload, data, n);
    ch->plen = n;
    long long ttl = strtoll(data + n + 3, NULL, 10);
    snprintf(ch->ttl, sizeof(ch->ttl), "%lld", ttl > 0 ? ttl : 0);
    return 1;
}

static int restore_round(kv_slot_t *s, chain_t *ch, int replace)
{
    kv_resp_arg argv[6] = { arg("restore"), ch->argv[2], arg(ch->ttl), { ch->payload, ch->plen },
                            arg("ABSTTL"), arg("REPLACE") };
    return one_part(s, ch->dst_shard, replace ? 6 : 5, argv);
}

static int move_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    const char *r = len[0] ? flat[0] : "";
    int nx = ch->kind == CH_RENAMENX, copy = ch->kind == CH_COPY;
    switch (ch->step++) {
    case 0:
        if (nx) {
            kv_resp_arg argv[2] = { arg("exists"), ch->argv[2] };
            return one_part(s, ch->dst_shard, 2, argv);
        }
        ch->step++;
        return export_round(s, ch, !copy);
    case 1:                                /* RENAMENX: does dst exist? */
        if (r[0] == '-') break;
        if (reply_is(r, ":1")) { kv_reply_int(&s->out, 0); return 0; }
        return export_round(s, ch, 1);
    case 2:                                /* exported */
        if (r[0] == '-') break;
        if (!take_export(ch, r, len[0])) {
            if (copy) kv_reply_int(&s->out, 0);
            else kv_reply_error_cstr(&s->out, "no such key");
            return 0;
        }
        return restore_round(s, ch, ch->kind == CH_RENAME || (copy && ch->replace));
    default:                               /* restored */
        if (copy && reply_is(r, "-BUSYKEY")) { kv_reply_int(&s->out, 0); return 0; }
        if (r[0] == '-') break;
        if (ch->kind == CH_RENAME) kv_reply_ok(&s->out);
        else kv_reply_int(&s->out, 1);
        return 0;
    }
    kv_reply_raw(&s->out, r, len[0]);
    return 0;
}

/* ---- driving ------------------------------------------------------------------ */

static void chain_combine(kv_slot_t *s)
{
    chain_t *ch = s->cdata;
    for (;;) {
        char *flat[s->nparts];
        size_t len[s->nparts];
        for (int i = 0; i < s->nparts; i++) flat[i] = kv_gather_flatten(&s->parts[i], &len[i]);
        int more = ch->kind == CH_MSETNX  ? msetnx_step(s, ch, flat, len)
                 : ch->kind == CH_SCAN    ? kv_chain_scan_step(s, ch, flat, len)
                 : ch->kind == CH_SCATTER ? kv_chain_scatter_step(s, ch, flat, len)
                                          : move_step(s, ch, flat, len);
        for (int i = 0; i < s->nparts; i++) free(flat[i]);
        if (!more) {
            s->outstanding = 0;
            chain_free(ch);
            s->cdata = NULL;            /* freed: the slot must not again */
            return;
        }
        /* Drop the guard of round_begin; parts that ran here are done. */
        if (--s->outstanding > 0) return;
    }
}

chain_t *chain_new(kv_client_t *c, chain_kind_e kind, int src, int dst, int replace)
{
    chain_t *ch = calloc(1, sizeof(*ch));
    if (!ch) abort();
    ch->kind = kind;
    kv_reply_buf_init(&ch->keys);
    ch->argc = c->argc;
    ch->argv = malloc(sizeof(kv_resp_arg) * (size_t) c->argc);
    if (!ch->argv) abort();
    for (int i = 0; i < c->argc; i++) {
        char *p = malloc(c->argv[i].len + 1);
        if (!p) abort();
        memcpy(p, c->argv[i].ptr, c->argv[i].len);
        p[c->argv[i].len] = '\0';
        ch->argv[i].ptr = p;
        ch->argv[i].len = c->argv[i].len;
    }
    ch->src_shard = src, ch->dst_shard = dst, ch->replace = replace;
    return ch;
}

/* Run the chain's first step; its later steps run as replies come. */
void chain_run(kv_client_t *c, chain_t *ch, int nparts)
{
    kv_slot_t *s = kv_fwd_slot(c, nparts, chain_combine);
    s->cdata = ch;
    kv_fwd_keep_lock(s);                /* its later rounds run under it */
    s->barrier = 1;                     /* later commands wait for it */
    c->barrier = 1;
    s->outstanding = 1;                 /* step 0 reads no replies */
    kv_fwd_part_done(s);
}

int kv_chain_route(kv_client_t *c, const kv_cmd_t *cmd)
{
    const char *name = cmd->name;
    if (!strcmp(name, "scan")) return kv_chain_scan_route(c);
    if (!strcmp(name, "msetnx")) {
        if (c->argc % 2 == 0) return KV_CHAIN_ERROR;     /* the handler's arity error */
        chain_run(c, chain_new(c, CH_MSETNX, -1, -1, 0), kv_route_nshards());
        return KV_CHAIN_TAKEN;
    }
    int rename = !strcmp(name, "rename"), renamenx = !strcmp(name, "renamenx"), copy = !strcmp(name, "copy");
    if (!rename && !renamenx && !copy) return KV_CHAIN_NO;
    int replace = 0;
    for (int i = 3; i < c->argc; i++) {
        const kv_resp_arg *a = &c->argv[i];
        if (copy && a->len == 7 && !strncasecmp(a->ptr, "replace", 7)) replace = 1;
        else if (copy && a->len == 2 && !strncasecmp(a->ptr, "db", 2) && i + 1 < c->argc
                 && c->argv[i + 1].len == 1 && c->argv[i + 1].ptr[0] == '0') i++;
        else return KV_CHAIN_ERROR;     /* other DBs, syntax: the handler says */
    }
    if ((rename || renamenx) && c->argc != 3) return KV_CHAIN_ERROR;
    int src = kv_route_shard(c->argv[1].ptr, c->argv[1].len);
    int dst = kv_route_shard(c->argv[2].ptr, c->argv[2].len);
    if (src == dst) return KV_CHAIN_NO;
    chain_run(c, chain_new(c, rename ? CH_RENAME : renamenx ? CH_RENAMENX : CH_COPY, src, dst, replace), 1);
    return KV_CHAIN_TAKEN;
}

/* ---- kevy.export key del ------------------------------------------------------------
 * On the key's shard: *2 [payload, absolute expiry ms or -1], or nil. */
static void export_cmd(kv_client_t *c)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, KV_LOOKUP_WRITE);
    if (!e) {
        kv_reply_null_array(&c->out);
        return;
    }
    kv_rdb_buf b;
    int64_t ttl = -1;
    kv_rdb_buf_init(&b);
    if (kv_rdbobj_export(e, &b, &ttl) != 0 || b.oom) {
        kv_rdb_buf_free(&b);
        kv_reply_error_cstr(&c->out, "internal error: cannot export the key");
        return;
    }
    kv_reply_array(&c->out, 2);
    kv_reply_bulk(&c->out, b.p, b.len);
    kv_reply_int(&c->out, ttl);
    kv_rdb_buf_free(&b);
    if (c->argv[2].len == 1 && c->argv[2].ptr[0] == '1') kv_db_delete_entry(c->db, e);
}

const kv_cmd_t kv_internal_cmds[] = {
    { "kevy.export", 3, KV_CMD_WRITE, 1, 1, 1, KV_ROUTE_KEY, export_cmd, "internal", "0.1.0",
      "Serializes a key for a move to another shard." },
    { NULL },
};
