/* ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD, as Redis 7.0's
 * zunionInterDiffGenericCommand: inputs may be sorted sets or plain sets
 * (members scored 1), WEIGHTS, AGGREGATE SUM|MIN|MAX, WITHSCORES, LIMIT.
 * Inputs are ordered by size with the same (stable) qsort so SUM adds in
 * Redis's order and gives the same bits. */
#include <math.h>
#include <stdlib.h>

#include "shard/set_type.h"
#include "shard/zset_cmd.h"
#include "shard/notify.h"

enum { OP_UNION, OP_INTER, OP_DIFF };
enum { AGG_SUM, AGG_MIN, AGG_MAX };

typedef struct {
    const kv_obj *o; /* NULL: missing key */
    double weight;
    size_t len;
} zsrc;

static int by_len(const void *a, const void *b)
{
    size_t x = ((const zsrc *)a)->len, y = ((const zsrc *)b)->len;
    return x > y ? 1 : x < y ? -1 : 0;
}

/* Visit every element of a source: fn returns 0 to stop. */
typedef int visit_fn(void *ud, const char *m, size_t n, double s);
static void visit(const zsrc *src, visit_fn *fn, void *ud)
{
    if (!src->o || !src->len) return;
    if (src->o->type == KV_TYPE_ZSET) {
        kv_zit it;
        for (kv_zit_rank(&it, src->o, 0); it.valid; kv_zit_next(&it)) {
            const char *m;
            size_t n;
            double s;
            kv_zit_get(&it, &m, &n, &s);
            if (!fn(ud, m, n, s)) return;
        }
        return;
    }
    kv_set_iter it;
    kv_lp_val v;
    char buf[KV_REPLY_LL_MAX];
    kv_set_iter_init(&it, src->o);
    while (kv_set_iter_next(&it, &v)) {
        int go = v.s ? fn(ud, (const char *)v.s, v.len, 1.0)
                     : fn(ud, buf, (size_t)kv_reply_fmt_ll(buf, v.ll), 1.0);
        if (!go) break;
    }
    kv_set_iter_done(&it);
}

/* zuiFind: the member's score in src (1 for a set member). */
static int find(const zsrc *src, const char *m, size_t n, double *s)
{
    if (!src->o || !src->len) return 0;
    if (src->o->type == KV_TYPE_ZSET) return kv_zset_score(src->o, m, n, s);
    *s = 1.0;
    return kv_set_ismember(src->o, m, n);
}

static void aggregate(double *t, double v, int agg)
{
    if (agg == AGG_SUM) {
        *t = *t + v;
        if (isnan(*t)) *t = 0.0; /* inf + -inf: Redis's convention */
    } else if (agg == AGG_MIN) {
        *t = v < *t ? v : *t;
    } else {
        *t = v > *t ? v : *t;
    }
}

typedef struct {
    zsrc *src;
    long n;
    int agg, card_only;
    unsigned long card, limit;
    kv_zsl *dst;
    kv_dict *acc; /* union: member -> double */
    double w;     /* union: the current source's weight */
} opctx;

static int inter_cb(void *ud, const char *m, size_t n, double s)
{
    opctx *x = ud;
    double score = x->src[0].weight * s, v;
    if (isnan(score)) score = 0;
    long j;
    for (j = 1; j < x->n; j++) {
        if (!find(&x->src[j], m, n, &v)) break;
        aggregate(&score, v * x->src[j].weight, x->agg);
    }
    if (j < x->n) return 1;
    if (x->card_only) {
        x->card++;
        return !(x->limit && x->card >= x->limit);
    }
    kv_zsl_insert(x->dst, m, n, score);
    return 1;
}

static int union_cb(void *ud, const char *m, size_t n, double s)
{
    opctx *x = ud;
    double score = x->w * s;
    int created;
    if (isnan(score)) score = 0;
    kv_dict_entry *e = kv_dict_upsert(x->acc, m, n, sizeof(double), &created);
    double *t = kv_dict_entry_extra(e);
    if (created) *t = score;
    else aggregate(t, score, x->agg);
    return 1;
}

static int diff_cb(void *ud, const char *m, size_t n, double s)
{
    opctx *x = ud;
    double v;
    for (long j = 1; j < x->n; j++)
        if (find(&x->src[j], m, n, &v)) return 1;
    kv_zsl_insert(x->dst, m, n, s);
    return 1;
}

static void zsetop(kv_client_t *c, const kv_resp_arg *dstkey, int nkidx, int op, int card_only,
                   const char *name)
{
    long long setnum;
    int withscores = 0, agg = AGG_SUM;
    long long limit = 0;
    if (!kv_arg_ll(c, nkidx, &setnum)) return;
    if (setnum < 1) {
        kv_reply_errorf(&c->out, "at least 1 input key is needed for '%s' command", name);
        return;
    }
    if (setnum > c->argc - (nkidx + 1)) {
        kv_reply_syntax(c);
        return;
    }
    zsrc *src = calloc((size_t)setnum, sizeof *src);
    if (!src) abort();
    int j = nkidx + 1;
    for (long i = 0; i < setnum; i++, j++) {
        kv_dict_entry *e = kv_db_find(c->db, c->argv[j].ptr, c->argv[j].len, 0);
        if (e) {
            const kv_obj *o = kv_db_obj(e);
            if (o->type != KV_TYPE_ZSET && o->type != KV_TYPE_SET) {
                kv_reply_wrongtype(c);
                goto out;
            }
            src[i].o = o;
            src[i].len = o->type == KV_TYPE_ZSET ? kv_zset_len(o) : kv_set_size(o);
        }
        src[i].weight = 1.0;
    }
    while (j < c->argc) {
        int left = c->argc - j;
        const kv_resp_arg *a = &c->argv[j];
        if (op != OP_DIFF && !card_only && left >= setnum + 1 && kv_arg_is(a, "weights")) {
            j++;
            for (long i = 0; i < setnum; i++, j++) {
                if (!kv_zarg_double(&c->argv[j], &src[i].weight)) {
                    kv_reply_error_cstr(&c->out, "weight value is not a float");
                    goto out;
                }
            }
        } else if (op != OP_DIFF && !card_only && left >= 2 && kv_arg_is(a, "aggregate")) {
            const kv_resp_arg *v = &c->argv[j + 1];
            if (kv_arg_is(v, "sum")) agg = AGG_SUM;
            else if (kv_arg_is(v, "min")) agg = AGG_MIN;
            else if (kv_arg_is(v, "max")) agg = AGG_MAX;
            else {
                kv_reply_syntax(c);
                goto out;
            }
            j += 2;
        } else if (!dstkey && !card_only && kv_arg_is(a, "withscores")) {
            j++;
            withscores = 1;
        } else if (card_only && left >= 2 && kv_arg_is(a, "limit")) {
            if (!kv_str2ll(c->argv[j + 1].ptr, c->argv[j + 1].len, &limit) || limit < 0) {
                kv_reply_error_cstr(&c->out, "LIMIT can't be negative");
                goto out;
            }
            j += 2;
        } else {
            kv_reply_syntax(c);
            goto out;
        }
    }
    if (op != OP_DIFF) qsort(src, (size_t)setnum, sizeof *src, by_len);

    opctx x = { .src = src, .n = (long)setnum, .agg = agg, .card_only = card_only,
                .limit = (unsigned long)limit };
    x.dst = kv_zsl_new(0);
    if (op == OP_INTER) {
        if (src[0].len > 0) visit(&src[0], inter_cb, &x);
    } else if (op == OP_DIFF) {
        visit(&src[0], diff_cb, &x);
    } else {
        x.acc = kv_dict_new();
        if (setnum) kv_dict_expand(x.acc, src[setnum - 1].len);
        for (long i = 0; i < setnum; i++) {
            x.w = src[i].weight;
            visit(&src[i], union_cb, &x);
        }
        kv_dict_iter it;
        kv_dict_iter_init(&it, x.acc);
        for (kv_dict_entry *e; (e = kv_dict_iter_next(&it));)
            kv_zsl_insert(x.dst, kv_dict_entry_key(e), kv_dict_entry_klen(e),
                          *(double *)kv_dict_entry_extra(e));
        kv_dict_iter_done(&it);
        kv_dict_free(x.acc, NULL, NULL);
    }
    kv_zval v;
    kv_obj *res = kv_zval_init(&v, KV_ENC_SKIPLIST, x.dst);
    if (dstkey) {
        kv_reply_int(&c->out, (long long)kv_zset_store(c->db, dstkey, &v));
        kv_notify_stored(c->db, KV_NOTIFY_ZSET, &c->argv[0], dstkey->ptr, dstkey->len);
    } else {
        if (card_only) kv_reply_int(&c->out, (long long)x.card);
        else kv_zreply_ranks(c, res, 0, kv_zset_len(res), 0, withscores);
        kv_zsl_free(x.dst);
    }
out:
    free(src);
}

void kv_zunion_cmd(kv_client_t *c) { zsetop(c, NULL, 1, OP_UNION, 0, "zunion"); }
void kv_zinter_cmd(kv_client_t *c) { zsetop(c, NULL, 1, OP_INTER, 0, "zinter"); }
void kv_zdiff_cmd(kv_client_t *c) { zsetop(c, NULL, 1, OP_DIFF, 0, "zdiff"); }
void kv_zintercard_cmd(kv_client_t *c) { zsetop(c, NULL, 1, OP_INTER, 1, "zintercard"); }
void kv_zunionstore_cmd(kv_client_t *c) { zsetop(c, &c->argv[1], 2, OP_UNION, 0, "zunionstore"); }
void kv_zinterstore_cmd(kv_client_t *c) { zsetop(c, &c->argv[1], 2, OP_INTER, 0, "zinterstore"); }
void kv_zdiffstore_cmd(kv_client_t *c) { zsetop(c, &c->argv[1], 2, OP_DIFF, 0, "zdiffstore"); }
