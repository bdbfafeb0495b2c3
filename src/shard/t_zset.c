/* Sorted-set commands, reply for reply as Redis 7.0's t_zset.c: ZADD,
 * ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, Z[REV]RANK, ZCOUNT, ZLEXCOUNT,
 * ZPOPMIN/MAX, ZMPOP, ZRANDMEMBER, ZSCAN and the command table. Shared
 * helpers: zset_cmd.c; ranges: zset_range.c; unions etc.: zset_setops.c;
 * BZPOPMIN/MAX, BZMPOP: t_zset_block.c. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "core/glob.h"
#include "shard/zset_cmd.h"
#include "shard/notify.h"

/* ---- ZADD, ZINCRBY ----------------------------------------------------- */

/* Redis's zaddGenericCommand: options, pairs, option conflicts, every
 * score, then the key (so a bad float beats WRONGTYPE). */
static void zadd_generic(kv_client_t *c, int flags)
{
    const kv_resp_arg *k = &c->argv[1];
    int idx = 2, ch = 0;
    for (; idx < c->argc; idx++) {
        const kv_resp_arg *a = &c->argv[idx];
        if (kv_arg_is(a, "nx")) flags |= KV_ZADD_IN_NX;
        else if (kv_arg_is(a, "xx")) flags |= KV_ZADD_IN_XX;
        else if (kv_arg_is(a, "ch")) ch = 1;
        else if (kv_arg_is(a, "incr")) flags |= KV_ZADD_IN_INCR;
        else if (kv_arg_is(a, "gt")) flags |= KV_ZADD_IN_GT;
        else if (kv_arg_is(a, "lt")) flags |= KV_ZADD_IN_LT;
        else break;
    }
    int incr = flags & KV_ZADD_IN_INCR, nx = flags & KV_ZADD_IN_NX, xx = flags & KV_ZADD_IN_XX;
    int gt = flags & KV_ZADD_IN_GT, lt = flags & KV_ZADD_IN_LT;
    int elements = c->argc - idx;
    if (elements % 2 || !elements) {
        kv_reply_syntax(c);
        return;
    }
    elements /= 2;
    if (nx && xx) {
        kv_reply_error_cstr(&c->out, "XX and NX options at the same time are not compatible");
        return;
    }
    if ((gt && nx) || (lt && nx) || (gt && lt)) {
        kv_reply_error_cstr(&c->out,
                            "GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if (incr && elements > 1) {
        kv_reply_error_cstr(&c->out, "INCR option supports a single increment-element pair");
        return;
    }
    double one, *scores = elements == 1 ? &one : malloc(sizeof(double) * (size_t)elements);
    if (!scores) abort();
    for (int j = 0; j < elements; j++) {
        if (!kv_zarg_double(&c->argv[idx + j * 2], &scores[j])) {
            kv_reply_error_cstr(&c->out, KV_ERR_NOT_FLOAT);
            goto done;
        }
    }
    kv_dict_entry *e;
    long long added = 0, updated = 0, processed = 0;
    double score = 0;
    if (!kv_zlookup(c, 1, KV_LOOKUP_WRITE, &e)) goto done;
    if (!e) {
        if (xx) goto reply;
        /* Redis sizes a new zset by its first member only */
        uint8_t enc;
        void *p = kv_zset_create(1, c->argv[idx + 1].len, &enc);
        e = kv_db_add_ptr(c->db, k->ptr, k->len, KV_TYPE_ZSET, enc, p);
    }
    kv_obj *o = kv_db_obj(e);
    size_t before = kv_zset_mem(kv_db_ptr(o), o->enc);
    for (int j = 0; j < elements; j++) {
        const kv_resp_arg *m = &c->argv[idx + 1 + j * 2];
        int out;
        double ns = 0;
        if (!kv_zset_add(o, scores[j], m->ptr, m->len, flags, &out, &ns)) {
            kv_zset_account(c->db, o, before);
            kv_reply_error_cstr(&c->out, "resulting score is not a number (NaN)");
            goto done_changed;
        }
        if (out & KV_ZADD_OUT_ADDED) added++;
        if (out & KV_ZADD_OUT_UPDATED) updated++;
        if (!(out & KV_ZADD_OUT_NOP)) processed++;
        score = ns;
    }
    kv_zset_account(c->db, o, before);
    if (kv_zset_len(o) == 0) kv_db_delete_entry(c->db, e);
reply:
    if (incr) {
        if (processed) kv_reply_double(&c->out, score);
        else kv_reply_null(&c->out);
    } else {
        kv_reply_int(&c->out, ch ? added + updated : added);
    }
done_changed:
    if (added || updated) kv_db_changed(c->db, k->ptr, k->len, (unsigned)(added + updated));
    if (added || updated) kv_notify(c->db, KV_NOTIFY_ZSET, incr ? "zincr" : "zadd", k->ptr, k->len);
done:
    if (scores != &one) free(scores);
}

static void zadd_cmd(kv_client_t *c) { zadd_generic(c, 0); }
static void zincrby_cmd(kv_client_t *c) { zadd_generic(c, KV_ZADD_IN_INCR); }

/* ---- ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK -------------------------------- */

static void zrem_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    long long n = 0;
    if (!kv_zlookup(c, 1, KV_LOOKUP_WRITE, &e)) return;
    if (e) {
        kv_obj *o = kv_db_obj(e);
        size_t before = kv_zset_mem(kv_db_ptr(o), o->enc);
        for (int i = 2; i < c->argc; i++) {
            n += kv_zset_del(o, c->argv[i].ptr, c->argv[i].len);
            if (kv_zset_len(o) == 0) break;
        }
        kv_zset_account(c->db, o, before);
        kv_zset_drop_if_empty(c->db, e);
        if (n) kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, (unsigned)n);
        if (n) kv_notify(c->db, KV_NOTIFY_ZSET, "zrem", c->argv[1].ptr, c->argv[1].len);
        if (n) kv_notify_if_deleted(c->db, c->argv[1].ptr, c->argv[1].len);
    }
    kv_reply_int(&c->out, n);
}

static void zcard_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    kv_reply_int(&c->out, e ? (long long)kv_zset_len(kv_db_obj(e)) : 0);
}

static void zscore_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    double s;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    if (e && kv_zset_score(kv_db_obj(e), c->argv[2].ptr, c->argv[2].len, &s))
        kv_reply_double(&c->out, s);
    else kv_reply_null(&c->out);
}

static void zmscore_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    double s;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    kv_reply_array(&c->out, c->argc - 2);
    for (int i = 2; i < c->argc; i++) {
        if (e && kv_zset_score(kv_db_obj(e), c->argv[i].ptr, c->argv[i].len, &s))
            kv_reply_double(&c->out, s);
        else kv_reply_null(&c->out);
    }
}

static void zrank_generic(kv_client_t *c, int rev)
{
    kv_dict_entry *e;
    double s;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    long r = e ? kv_zset_rank(kv_db_obj(e), c->argv[2].ptr, c->argv[2].len, rev, &s) : -1;
    if (r < 0) kv_reply_null(&c->out);
    else kv_reply_int(&c->out, r);
}
static void zrank_cmd(kv_client_t *c) { zrank_generic(c, 0); }
static void zrevrank_cmd(kv_client_t *c) { zrank_generic(c, 1); }

/* ---- ZCOUNT, ZLEXCOUNT --------------------------------------------------- */

static void zcount_cmd(kv_client_t *c)
{
    kv_zrange r;
    kv_dict_entry *e;
    size_t first;
    if (!kv_zarg_range(&c->argv[2], &c->argv[3], &r)) {
        kv_reply_error_cstr(&c->out, KV_ERR_ZRANGE);
        return;
    }
    if (!kv_zlookup(c, 1, 0, &e)) return;
    kv_reply_int(&c->out, e ? (long long)kv_zset_span_score(kv_db_obj(e), &r, &first) : 0);
}

static void zlexcount_cmd(kv_client_t *c)
{
    kv_zlex r;
    kv_dict_entry *e;
    size_t first;
    if (!kv_zarg_lex(&c->argv[2], &c->argv[3], &r)) {
        kv_reply_error_cstr(&c->out, KV_ERR_ZLEX);
        return;
    }
    if (!kv_zlookup(c, 1, 0, &e)) return;
    kv_reply_int(&c->out, e ? (long long)kv_zset_span_lex(kv_db_obj(e), &r, &first) : 0);
}

/* ---- ZPOPMIN, ZPOPMAX, ZMPOP -------------------------------------------- */

/* Pop up to count (< 0: one) elements of the zset at argv[ki], entry e,
 * from one end, and reply them in one of genericZpopCommand's shapes. */
void kv_zset_pop_key(kv_client_t *c, int ki, kv_dict_entry *e, int max, int emit, long long count)
{
    if (count < 0) count = 1;
    kv_obj *o = kv_db_obj(e);
    size_t before = kv_zset_mem(kv_db_ptr(o), o->enc);
    long long len = (long long)kv_zset_len(o), n = count > len ? len : count;
    if (emit == KV_ZPOP_NESTED) {
        /* ZMPOP: [key, [[member, score], ...]] */
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, c->argv[ki].ptr, c->argv[ki].len);
        kv_reply_array(&c->out, n);
    } else if (emit == KV_ZPOP_KEY) {
        /* BZPOPMIN: [key, member, score] */
        kv_reply_array(&c->out, n * 2 + 1);
        kv_reply_bulk(&c->out, c->argv[ki].ptr, c->argv[ki].len);
    } else {
        kv_reply_array(&c->out, n * 2);
    }
    for (long long i = 0; i < n; i++) {
        kv_zit it;
        const char *m;
        size_t ml;
        double s;
        size_t r = max ? kv_zset_len(o) - 1 : 0;
        kv_zit_rank(&it, o, r);
        kv_zit_get(&it, &m, &ml, &s);
        if (emit == KV_ZPOP_NESTED) kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, m, ml);
        kv_reply_double(&c->out, s);
        kv_zset_del_ranks(o, r, r);
    }
    kv_zset_account(c->db, o, before);
    kv_db_changed(c->db, c->argv[ki].ptr, c->argv[ki].len, (unsigned)n);
    kv_zset_drop_if_empty(c->db, e);
    kv_notify(c->db, KV_NOTIFY_ZSET, max ? "zpopmax" : "zpopmin", c->argv[ki].ptr, c->argv[ki].len);
    kv_notify_if_deleted(c->db, c->argv[ki].ptr, c->argv[ki].len);
}

/* Redis's genericZpopCommand (non-blocking forms): the first non-empty
 * key of keys[0..nkeys), up to count elements from one end. */
static void zpop_generic(kv_client_t *c, int first, int nkeys, int max, int emit,
                         long long count, int nil_when_empty)
{
    kv_dict_entry *e = NULL;
    int ki = first;
    for (; ki < first + nkeys; ki++) {
        if (!kv_zlookup(c, ki, KV_LOOKUP_WRITE, &e)) return;
        if (e) break;
    }
    if (!e) {
        if (nil_when_empty) kv_reply_null_array(&c->out);
        else kv_reply_array(&c->out, 0);
        return;
    }
    if (count == 0) {
        kv_reply_array(&c->out, 0);
        return;
    }
    kv_zset_pop_key(c, ki, e, max, emit, count);
}

static void zpop_minmax(kv_client_t *c, int max)
{
    long long count = -1;
    if (c->argc > 3) {
        kv_reply_syntax(c);
        return;
    }
    if (c->argc == 3) {
        /* getPositiveLongFromObjectOrReply: one message for both */
        if (!kv_str2ll(c->argv[2].ptr, c->argv[2].len, &count) || count < 0) {
            kv_reply_error_cstr(&c->out, "value is out of range, must be positive");
            return;
        }
    }
    zpop_generic(c, 1, 1, max, KV_ZPOP_FLAT, count, 0);
}
static void zpopmin_cmd(kv_client_t *c) { zpop_minmax(c, 0); }
static void zpopmax_cmd(kv_client_t *c) { zpop_minmax(c, 1); }

/* getRangeLongFromObjectOrReply with a message: used for both errors. */
static int arg_range(kv_client_t *c, int i, long long min, const char *msg, long long *v)
{
    if (!kv_str2ll(c->argv[i].ptr, c->argv[i].len, v) || *v < min) {
        kv_reply_error_cstr(&c->out, msg);
        return 0;
    }
    return 1;
}

int kv_zmpop_args(kv_client_t *c, int ni, long long *numkeys, int *max, long long *count)
{
    *count = -1;
    if (!arg_range(c, ni, 1, "numkeys should be greater than 0", numkeys)) return 0;
    if (*numkeys >= c->argc - ni - 1) {
        kv_reply_syntax(c);
        return 0;
    }
    int where = ni + 1 + (int)*numkeys;
    if (kv_arg_is(&c->argv[where], "min")) *max = 0;
    else if (kv_arg_is(&c->argv[where], "max")) *max = 1;
    else {
        kv_reply_syntax(c);
        return 0;
    }
    for (int j = where + 1; j < c->argc; j++) {
        if (*count == -1 && kv_arg_is(&c->argv[j], "count") && j + 1 < c->argc) {
            j++;
            if (!arg_range(c, j, 1, "count should be greater than 0", count)) return 0;
        } else {
            kv_reply_syntax(c);
            return 0;
        }
    }
    if (*count < 0) *count = 1;
    return 1;
}

static void zmpop_cmd(kv_client_t *c)
{
    long long numkeys, count;
    int max;
    if (!kv_zmpop_args(c, 1, &numkeys, &max, &count)) return;
    zpop_generic(c, 2, (int)numkeys, max, KV_ZPOP_NESTED, count, 1);
}

/* ---- ZRANDMEMBER ------------------------------------------------------- */

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    if (!rnd_state) rnd_state = (uint64_t)kv_db_now_ms() * 0x9E3779B97F4A7C15ull | 1;
    rnd_state ^= rnd_state << 13, rnd_state ^= rnd_state >> 7, rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void reply_rank(kv_client_t *c, const kv_obj *o, size_t r, int scores)
{
    kv_zit it;
    const char *m;
    size_t ml;
    double s;
    kv_zit_rank(&it, o, r);
    kv_zit_get(&it, &m, &ml, &s);
    kv_reply_bulk(&c->out, m, ml);
    if (scores) kv_reply_double(&c->out, s);
}

static void zrandmember_count(kv_client_t *c, long long l, int scores)
{
    kv_dict_entry *e;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    if (!e) {
        kv_reply_array(&c->out, 0);
        return;
    }
    const kv_obj *o = kv_db_obj(e);
    size_t size = kv_zset_len(o);
    int uniq = l >= 0;
    unsigned long long count = uniq ? (unsigned long long)l : (unsigned long long)-l;
    if (count == 0) {
        kv_reply_array(&c->out, 0);
        return;
    }
    if (!uniq || count == 1) { /* with repetitions, in random order */
        kv_reply_array(&c->out, (long long)(scores ? count * 2 : count));
        for (unsigned long long i = 0; i < count; i++) reply_rank(c, o, rnd() % size, scores);
        return;
    }
    if (count >= size) { /* the whole zset, from the top as Redis does */
        kv_zreply_ranks(c, o, size - 1, size, 1, scores);
        return;
    }
    /* distinct ranks: a partial Fisher-Yates over all of them */
    size_t *idx = malloc(sizeof(size_t) * size);
    if (!idx) abort();
    for (size_t i = 0; i < size; i++) idx[i] = i;
    kv_reply_array(&c->out, (long long)(scores ? count * 2 : count));
    for (size_t i = 0; i < count; i++) {
        size_t j = i + rnd() % (size - i), t = idx[i];
        idx[i] = idx[j], idx[j] = t;
        reply_rank(c, o, idx[i], scores);
    }
    free(idx);
}

static void zrandmember_cmd(kv_client_t *c)
{
    if (c->argc >= 3) {
        long long l;
        if (!kv_arg_ll(c, 2, &l)) return;
        if (l == LLONG_MIN) {
            kv_reply_errorf(&c->out, "value is out of range, value must between %ld and %ld",
                            -LONG_MAX, LONG_MAX);
            return;
        }
        if (c->argc > 4 || (c->argc == 4 && !kv_arg_is(&c->argv[3], "withscores"))) {
            kv_reply_syntax(c);
            return;
        }
        if (c->argc == 4 && (l < -LONG_MAX / 2 || l > LONG_MAX / 2)) {
            kv_reply_error_cstr(&c->out, "value is out of range");
            return;
        }
        zrandmember_count(c, l, c->argc == 4);
        return;
    }
    kv_dict_entry *e;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    if (!e) {
        kv_reply_null(&c->out);
        return;
    }
    reply_rank(c, kv_db_obj(e), rnd() % kv_zset_len(kv_db_obj(e)), 0);
}

/* ---- ZSCAN ------------------------------------------------------------- */

typedef struct {
    kv_client_t *c;
    const kv_resp_arg *pat;
    kv_dict_entry **v;
    size_t n, cap;
} zscan_ctx;

static void zscan_cb(void *ud, kv_dict_entry *e)
{
    zscan_ctx *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n++] = e;
}

static int zscan_match(const zscan_ctx *s, const char *m, size_t n)
{
    return !s->pat || kv_glob_match(s->pat->ptr, s->pat->len, m, n, 0);
}

static void zscan_cmd(kv_client_t *c)
{
    char buf[64], *end;
    size_t cl = (size_t)kv_arg_cstrlen(&c->argv[2]);
    memcpy(buf, c->argv[2].ptr, cl < sizeof buf - 1 ? cl : sizeof buf - 1);
    buf[cl < sizeof buf - 1 ? cl : sizeof buf - 1] = '\0';
    errno = 0;
    unsigned long cursor = strtoul(buf, &end, 10);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || errno == ERANGE || cl >= sizeof buf) {
        kv_reply_error_cstr(&c->out, "invalid cursor");
        return;
    }
    kv_dict_entry *e;
    if (!kv_zlookup(c, 1, 0, &e)) return;
    if (!e) {
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, "0", 1);
        kv_reply_array(&c->out, 0);
        return;
    }
    long long count = 10;
    zscan_ctx s = { .c = c };
    for (int i = 3; i < c->argc; i += 2) {
        if (kv_arg_is(&c->argv[i], "count") && i + 1 < c->argc) {
            if (!kv_arg_ll(c, i + 1, &count)) return;
            if (count < 1) {
                kv_reply_syntax(c);
                return;
            }
        } else if (kv_arg_is(&c->argv[i], "match") && i + 1 < c->argc) {
            const kv_resp_arg *p = &c->argv[i + 1];
            s.pat = (p->len == 1 && p->ptr[0] == '*') ? NULL : p;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    const kv_obj *o = kv_db_obj(e);
    kv_reply_array(&c->out, 2);
    if (o->enc == KV_ENC_LISTPACK) { /* all at once, cursor 0, in order */
        size_t n = 0, len = kv_zset_len(o);
        kv_zit it;
        const char *m;
        size_t ml;
        double sc;
        for (kv_zit_rank(&it, o, 0); it.valid; kv_zit_next(&it)) {
            kv_zit_get(&it, &m, &ml, &sc);
            n += zscan_match(&s, m, ml);
        }
        kv_reply_bulk(&c->out, "0", 1);
        kv_reply_array(&c->out, (long long)n * 2);
        if (len == 0) return;
        for (kv_zit_rank(&it, o, 0); it.valid; kv_zit_next(&it)) {
            kv_zit_get(&it, &m, &ml, &sc);
            if (!zscan_match(&s, m, ml)) continue;
            kv_reply_bulk(&c->out, m, ml);
            kv_reply_double(&c->out, sc);
        }
        return;
    }
    kv_zsl *z = kv_db_ptr(o);
    long long maxiter = count * 10;
    do {
        cursor = kv_dict_scan(z->dict, cursor, zscan_cb, &s);
        /* Redis counts members and scores: two list nodes per element */
    } while (cursor && maxiter-- && (long long)s.n * 2 < count);
    size_t keep = 0;
    for (size_t i = 0; i < s.n; i++)
        if (zscan_match(&s, kv_dict_entry_key(s.v[i]), kv_dict_entry_klen(s.v[i])))
            s.v[keep++] = s.v[i];
    kv_reply_bulk_ll(&c->out, (long long)cursor);
    kv_reply_array(&c->out, (long long)keep * 2);
    for (size_t i = 0; i < keep; i++) {
        kv_reply_bulk(&c->out, kv_dict_entry_key(s.v[i]), kv_dict_entry_klen(s.v[i]));
        kv_reply_double(&c->out, kv_zsl_score(s.v[i]));
    }
    free(s.v);
}

/* ---- the command table ------------------------------------------------- */

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define RND KV_CMD_RANDOM
#define BL (KV_CMD_BLOCKING | KV_CMD_NOSCRIPT)
#define Z(name, arity, flags, proc, since, summary)                                            \
    { name, arity, flags, 1, 1, 1, KV_ROUTE_KEY, proc, "sorted-set", since, summary }
/* numkeys commands: the router reads their keys (KV_CMD_MOVABLE, cmd.c) */
#define ZN(name, arity, flags, first, proc, since, summary)                                    \
    { name, arity, flags, first, first, first, KV_ROUTE_KEYS, proc, "sorted-set", since, summary }

const kv_cmd_t kv_zset_cmds[] = {
    ZN("bzmpop", -5, W | KV_CMD_BLOCKING, 0, kv_bzmpop_cmd, "7.0.0",
       "Remove and return members with scores in a sorted set or block until one is available"),
    { "bzpopmax", -3, W | BL | F, 1, -2, 1, KV_ROUTE_KEYS, kv_bzpopmax_cmd, "sorted-set", "5.0.0",
      "Remove and return the member with the highest score from one or more sorted sets, or block "
      "until one is available" },
    { "bzpopmin", -3, W | BL | F, 1, -2, 1, KV_ROUTE_KEYS, kv_bzpopmin_cmd, "sorted-set", "5.0.0",
      "Remove and return the member with the lowest score from one or more sorted sets, or block "
      "until one is available" },
    Z("zadd", -4, W | D | F, zadd_cmd, "1.2.0",
      "Add one or more members to a sorted set, or update its score if it already exists"),
    Z("zcard", 2, R | F, zcard_cmd, "1.2.0", "Get the number of members in a sorted set"),
    Z("zcount", 4, R | F, zcount_cmd, "2.0.0",
      "Count the members in a sorted set with scores within the given values"),
    ZN("zdiff", -3, R, 0, kv_zdiff_cmd, "6.2.0", "Subtract multiple sorted sets"),
    ZN("zdiffstore", -4, W | D, 1, kv_zdiffstore_cmd, "6.2.0",
       "Subtract multiple sorted sets and store the resulting sorted set in a new key"),
    Z("zincrby", 4, W | D | F, zincrby_cmd, "1.2.0",
      "Increment the score of a member in a sorted set"),
    ZN("zinter", -3, R, 0, kv_zinter_cmd, "6.2.0", "Intersect multiple sorted sets"),
    ZN("zintercard", -3, R, 0, kv_zintercard_cmd, "7.0.0",
       "Intersect multiple sorted sets and return the cardinality of the result"),
    ZN("zinterstore", -4, W | D, 1, kv_zinterstore_cmd, "2.0.0",
       "Intersect multiple sorted sets and store the resulting sorted set in a new key"),
    Z("zlexcount", 4, R | F, zlexcount_cmd, "2.8.9",
      "Count the number of members in a sorted set between a given lexicographical range"),
    ZN("zmpop", -4, W, 0, zmpop_cmd, "7.0.0",
       "Remove and return members with scores in a sorted set"),
    Z("zmscore", -3, R | F, zmscore_cmd, "6.2.0",
      "Get the score associated with the given members in a sorted set"),
    Z("zpopmax", -2, W | F, zpopmax_cmd, "5.0.0",
      "Remove and return members with the highest scores in a sorted set"),
    Z("zpopmin", -2, W | F, zpopmin_cmd, "5.0.0",
      "Remove and return members with the lowest scores in a sorted set"),
    Z("zrandmember", -2, R | RND, zrandmember_cmd, "6.2.0",
      "Get one or multiple random elements from a sorted set"),
    Z("zrange", -4, R, kv_zrange_cmd, "1.2.0", "Return a range of members in a sorted set"),
    Z("zrangebylex", -4, R, kv_zrangebylex_cmd, "2.8.9",
      "Return a range of members in a sorted set, by lexicographical range"),
    Z("zrangebyscore", -4, R, kv_zrangebyscore_cmd, "1.0.5",
      "Return a range of members in a sorted set, by score"),
    { "zrangestore", -5, W | D, 1, 2, 1, KV_ROUTE_KEYS, kv_zrangestore_cmd, "sorted-set", "6.2.0",
      "Store a range of members from sorted set into another key" },
    Z("zrank", 3, R | F, zrank_cmd, "2.0.0", "Determine the index of a member in a sorted set"),
    Z("zrem", -3, W | F, zrem_cmd, "1.2.0", "Remove one or more members from a sorted set"),
    Z("zremrangebylex", 4, W, kv_zremrangebylex_cmd, "2.8.9",
      "Remove all members in a sorted set between the given lexicographical range"),
    Z("zremrangebyrank", 4, W, kv_zremrangebyrank_cmd, "2.0.0",
      "Remove all members in a sorted set within the given indexes"),
    Z("zremrangebyscore", 4, W, kv_zremrangebyscore_cmd, "1.2.0",
      "Remove all members in a sorted set within the given scores"),
    Z("zrevrange", -4, R, kv_zrevrange_cmd, "1.2.0",
      "Return a range of members in a sorted set, by index, with scores ordered from high to low"),
    Z("zrevrangebylex", -4, R, kv_zrevrangebylex_cmd, "2.8.9",
      "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings."),
    Z("zrevrangebyscore", -4, R, kv_zrevrangebyscore_cmd, "2.2.0",
      "Return a range of members in a sorted set, by score, with scores ordered from high to low"),
    Z("zrevrank", 3, R | F, zrevrank_cmd, "2.0.0",
      "Determine the index of a member in a sorted set, with scores ordered from high to low"),
    Z("zscan", -3, R | RND, zscan_cmd, "2.8.0",
      "Incrementally iterate sorted sets elements and associated scores"),
    Z("zscore", 3, R | F, zscore_cmd, "1.2.0",
      "Get the score associated with the given member in a sorted set"),
    ZN("zunion", -3, R, 0, kv_zunion_cmd, "6.2.0", "Add multiple sorted sets"),
    ZN("zunionstore", -4, W | D, 1, kv_zunionstore_cmd, "2.0.0",
       "Add multiple sorted sets and store the resulting sorted set in a new key"),
    { NULL },
};
