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
 * Not atomic: another client may see the moment between two rounds (e.g.
 * the key gone from src and not yet at dst). Atomic cross-shard commands
 * come with the transactions, which lock the shards involved.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "persist/rdbobj.h"
#include "shard/chain.h"
#include "shard/db.h"
#include "shard/gather.h"
#include "shard/route.h"

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

static void chain_free(chain_t *ch)
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

static const kv_cmd_t *cmd_named(const char *name)
{
    return kv_cmd_lookup_any(name, strlen(name));
}

static kv_resp_arg arg(const char *s) { return (kv_resp_arg) { s, strlen(s) }; }

/* Issue one round: parts are (shard, argv) pairs; returns 1 (issued). */
static void round_begin(kv_slot_t *s, int nparts) { s->outstanding = nparts + 1; }

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

static int one_part(kv_slot_t *s, int shard, int argc, kv_resp_arg *argv)
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
static int take_export(chain_t *ch, const char *flat, size_t len)
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

/* ---- SCAN -----------------------------------------------------------------
 *
 * The client's cursor carries the shard in its top 16 bits and that
 * shard's own cursor in the low 48, so shard 0's cursors look like Redis's.
 * When a shard's iteration ends and fewer than COUNT keys were found, the
 * same call goes on with the next shard; a small keyspace is returned
 * whole with cursor 0, as Redis does. Each shard keeps Redis's guarantee
 * (every key present throughout is returned), so the whole scan does.
 */
#define SCAN_LOCAL_BITS 48
#define SCAN_LOCAL_MASK ((1ULL << SCAN_LOCAL_BITS) - 1)

static int scan_round(kv_slot_t *s, chain_t *ch, unsigned long long local)
{
    char cur[24];
    snprintf(cur, sizeof(cur), "%llu", local);
    kv_resp_arg *argv = malloc(sizeof(*argv) * (size_t) ch->argc);
    if (!argv) abort();
    memcpy(argv, ch->argv, sizeof(*argv) * (size_t) ch->argc);
    argv[1] = arg(cur);
    round_begin(s, 1);
    kv_fwd_part(s, 0, ch->shard, cmd_named("scan"), ch->argc, argv);
    free(argv);
    return 1;
}

static int scan_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    if (ch->step++ == 0) return scan_round(s, ch, strtoull(ch->argv[1].ptr, NULL, 10) & SCAN_LOCAL_MASK);
    const char *r = flat[0], *end = flat[0] + len[0];
    if (!len[0] || r[0] != '*') {       /* an error (syntax, ...) */
        kv_reply_raw(&s->out, r, len[0]);
        return 0;
    }
    /* "*2\r\n$N\r\n<cursor>\r\n*M\r\n<M bulks>" */
    const char *p = strchr(r, '\n') + 1;               /* $N      */
    p = strchr(p, '\n') + 1;                           /* cursor  */
    unsigned long long next = strtoull(p, NULL, 10);
    p = strchr(p, '\n') + 1;                           /* *M      */
    ch->nkeys += strtoll(p + 1, NULL, 10);
    p = strchr(p, '\n') + 1;
    kv_reply_raw(&ch->keys, p, (size_t) (end - p));
    int n = kv_route_nshards();
    if (next == 0 && ch->shard + 1 < n && ch->nkeys < ch->count) {
        ch->shard++;
        return scan_round(s, ch, 0);
    }
    unsigned long long cursor;
    if (next != 0) cursor = ((unsigned long long) ch->shard << SCAN_LOCAL_BITS) | next;
    else cursor = ch->shard + 1 < n ? (unsigned long long) (ch->shard + 1) << SCAN_LOCAL_BITS : 0;
    char buf[24];
    int bl = snprintf(buf, sizeof(buf), "%llu", cursor);
    kv_reply_array(&s->out, 2);
    kv_reply_bulk(&s->out, buf, (size_t) bl);
    kv_reply_array(&s->out, ch->nkeys);
    struct iovec iov[64];
    int k;
    while ((k = kv_reply_buf_iov(&ch->keys, iov, 64)) > 0) {
        size_t got = 0;
        for (int i = 0; i < k; i++) kv_reply_raw(&s->out, iov[i].iov_base, iov[i].iov_len), got += iov[i].iov_len;
        kv_reply_buf_consume(&ch->keys, got);
    }
    return 0;
}

/* ---- SCATTER: a spanning command on copies of its keys ----------------------
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

static int scatter_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    switch (ch->step++) {
    case 0: return scatter_fetch(s, ch);
    case 1: return scatter_run(s, ch, flat, len);
    default: return scatter_done(s, ch, flat, len);
    }
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
                 : ch->kind == CH_SCAN    ? scan_step(s, ch, flat, len)
                 : ch->kind == CH_SCATTER ? scatter_step(s, ch, flat, len)
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

static chain_t *chain_new(kv_client_t *c, chain_kind_e kind, int src, int dst, int replace)
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
static void chain_run(kv_client_t *c, chain_t *ch, int nparts)
{
    kv_slot_t *s = kv_fwd_slot(c, nparts, chain_combine);
    s->cdata = ch;
    s->barrier = 1;                     /* later commands wait for it */
    c->barrier = 1;
    s->outstanding = 1;                 /* step 0 reads no replies */
    kv_fwd_part_done(s);
}

/* SCAN's cursor as Redis reads it (strtoul): an optional sign, digits,
 * no blanks, no overflow; "-1" is 2^64-1. */
static int parse_cursor(const kv_resp_arg *a, unsigned long long *out)
{
    size_t i = 0;
    int neg = 0;
    if (a->len > 0 && (a->ptr[0] == '-' || a->ptr[0] == '+')) neg = a->ptr[0] == '-', i = 1;
    if (a->len == i || a->len - i > 20) return -1;
    unsigned long long v = 0;
    for (; i < a->len; i++) {
        if (a->ptr[i] < '0' || a->ptr[i] > '9') return -1;
        unsigned d = (unsigned) (a->ptr[i] - '0');
        if (v > (~0ULL - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = neg ? (unsigned long long) -v : v;
    return 0;
}

static int scan_route(kv_client_t *c)
{
    unsigned long long cur;
    if (parse_cursor(&c->argv[1], &cur) != 0) {
        kv_reply_error_cstr(&c->out, "invalid cursor");
        return KV_CHAIN_TAKEN;
    }
    if ((cur >> SCAN_LOCAL_BITS) >= (unsigned long long) kv_route_nshards()) {
        /* Past the last shard: nothing left, as a cursor past Redis's table. */
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, "0", 1);
        kv_reply_array(&c->out, 0);
        return KV_CHAIN_TAKEN;
    }
    long long count = 10;
    for (int i = 2; i + 1 < c->argc; i++) {
        if (c->argv[i].len == 5 && !strncasecmp(c->argv[i].ptr, "count", 5)) {
            count = strtoll(c->argv[i + 1].ptr, NULL, 10);      /* the shard validates it */
            if (count < 1) count = 1;
            i++;
        }
    }
    chain_t *ch = chain_new(c, CH_SCAN, -1, -1, 0);
    ch->shard = (int) (cur >> SCAN_LOCAL_BITS);
    ch->count = count;
    chain_run(c, ch, 1);
    return KV_CHAIN_TAKEN;
}

int kv_chain_route(kv_client_t *c, const kv_cmd_t *cmd)
{
    const char *name = cmd->name;
    if (!strcmp(name, "scan")) return scan_route(c);
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
