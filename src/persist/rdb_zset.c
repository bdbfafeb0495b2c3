/* Sorted sets in RDB, as Redis 7.0 writes and reads them:
 *
 *   save  listpack encoding -> RDB_TYPE_ZSET_LISTPACK (17): one string, a
 *         Redis listpack of member, score pairs (the score an integer
 *         element when it is a whole number within +-2^62, else its
 *         "%.17g"/"inf" text), byte for byte what redis-server dumps;
 *         skiplist -> RDB_TYPE_ZSET_2 (5): count, then from the highest
 *         element down, member string + 8-byte little-endian double.
 *   load  also RDB_TYPE_ZSET (3, scores as length-prefixed text) and
 *         RDB_TYPE_ZSET_ZIPLIST (12). Encodings after load as Redis: a
 *         listpack/ziplist stays a listpack unless it has more than
 *         zset-max-listpack-entries; a skiplist that fits the limits
 *         becomes a listpack. Empty zsets, duplicates and NaN scores are
 *         rejected (Redis reports them corrupt or asserts). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/rdbobj.h"
#include "persist/ziplist.h"
#include "shard/listpack.h"
#include "shard/reply.h"
#include "shard/zset_type.h"

/* Redis's double2ll: a whole number a long long holds exactly. */
static int double2ll(double d, long long *out)
{
    if (d < (double)(-LLONG_MAX / 2) || d > (double)(LLONG_MAX / 2)) return 0;
    long long ll = (long long)d;
    if ((double)ll != d) return 0;
    *out = ll;
    return 1;
}

static int save(kv_rdb_buf *b, const kv_obj *o)
{
    kv_zit it;
    const char *m;
    size_t ml;
    double s;
    unsigned char t;
    if (o->enc == KV_ENC_LISTPACK) {
        unsigned char *lp = kv_lp_new();
        if (!lp) return KV_RDB_ENOMEM;
        for (kv_zit_rank(&it, o, 0); it.valid && lp; kv_zit_next(&it)) {
            long long ll;
            char buf[KV_REPLY_DBL_MAX];
            kv_zit_get(&it, &m, &ml, &s);
            lp = kv_lp_append(lp, m, ml);
            if (!lp) break;
            if (double2ll(s, &ll)) lp = kv_lp_append_int(lp, ll);
            else lp = kv_lp_append(lp, buf, (size_t)kv_reply_fmt_double(buf, s));
        }
        if (!lp) return KV_RDB_ENOMEM;
        t = KV_RDB_TYPE_ZSET_LISTPACK;
        kv_rdb_buf_append(b, &t, 1);
        kv_rdb_save_string(b, lp, kv_lp_bytes(lp));
        free(lp);
        return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
    }
    size_t n = kv_zset_len(o);
    t = KV_RDB_TYPE_ZSET_2;
    kv_rdb_buf_append(b, &t, 1);
    kv_rdb_save_len(b, n);
    /* highest first: Redis's loader then always inserts at the head */
    for (kv_zit_rank(&it, o, n - 1); it.valid; kv_zit_prev(&it)) {
        unsigned char le[8];
        uint64_t bits;
        kv_zit_get(&it, &m, &ml, &s);
        kv_rdb_save_string(b, m, ml);
        memcpy(&bits, &s, 8);
        for (int i = 0; i < 8; i++) le[i] = (unsigned char)(bits >> (8 * i));
        kv_rdb_buf_append(b, le, 8);
    }
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

/* A value being loaded: a listpack while `small`, else a skiplist. */
typedef struct {
    kv_zval v;
    kv_obj *o;
} loading;

static void ld_init(loading *l, size_t count, int small)
{
    uint8_t enc = small ? KV_ENC_LISTPACK : KV_ENC_SKIPLIST;
    void *p = small ? (void *)kv_zsm_new(count * 16 < 4096 ? count * 16 : 4096)
                    : (void *)kv_zsl_new(count);
    l->o = kv_zval_init(&l->v, enc, p);
}

/* Insert in order, refusing duplicates and NaN. */
static int ld_add(loading *l, const char *m, size_t n, double s)
{
    double cur;
    if (isnan(s) || kv_zset_score(l->o, m, n, &cur)) return KV_RDB_EBADFMT;
    if (l->o->enc == KV_ENC_LISTPACK)
        kv_db_set_ptr(l->o, l->o->enc, kv_zsm_insert(kv_db_ptr(l->o), m, n, s));
    else kv_zsl_insert(kv_db_ptr(l->o), m, n, s);
    return KV_RDB_OK;
}

static int ld_fail(loading *l, int rc)
{
    kv_zset_free(kv_db_ptr(l->o), l->o->enc);
    return rc;
}

/* zzlStrtod: a score element of a listpack/ziplist. */
static int elem_score(const unsigned char *s, size_t len, long long ll, double *d)
{
    if (!s) {
        *d = (double)ll;
        return 1;
    }
    char buf[128], *end;
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *d = strtod(buf, &end);
    return *end == '\0' && !isnan(*d);
}

static int load_packed(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    kv_rdb_str blob;
    size_t count = 0;
    int rc = kv_rdb_load_string(r, &blob);
    if (rc) return rc;
    const unsigned char *p = (const unsigned char *)blob.p;
    int ok = rdbtype == KV_RDB_TYPE_ZSET_LISTPACK ? kv_lp_validate(p, blob.len, &count)
                                                  : kv_zl_validate(p, blob.len, &count);
    if (!ok || count == 0 || count % 2) {
        kv_rdb_str_free(&blob);
        return KV_RDB_EBADFMT;
    }
    loading l;
    ld_init(&l, count / 2, count / 2 <= kv_zset_max_listpack_entries);
    char ibuf[KV_LP_INTBUF];
    const unsigned char *e = rdbtype == KV_RDB_TYPE_ZSET_LISTPACK ? kv_lp_first(p) : kv_zl_first(p);
    while (e && rc == KV_RDB_OK) {
        const unsigned char *ms, *ss;
        size_t mn, sn;
        long long mll, sll;
        double score;
        if (rdbtype == KV_RDB_TYPE_ZSET_LISTPACK) {
            kv_lp_val v;
            kv_lp_get(e, &v);
            ms = v.s, mn = v.len, mll = v.ll;
            e = kv_lp_next(p, e);
            kv_lp_get(e, &v);
            ss = v.s, sn = v.len, sll = v.ll;
            e = kv_lp_next(p, e);
        } else {
            kv_zl_val v;
            kv_zl_get(e, &v);
            ms = v.s, mn = v.len, mll = v.ll;
            e = kv_zl_next(e);
            kv_zl_get(e, &v);
            ss = v.s, sn = v.len, sll = v.ll;
            e = kv_zl_next(e);
        }
        if (!ms) {
            kv_lp_val iv = { NULL, 0, mll };
            ms = (const unsigned char *)kv_lp_val_str(&iv, ibuf, &mn);
        }
        if (!elem_score(ss, sn, sll, &score)) rc = KV_RDB_EBADFMT;
        else rc = ld_add(&l, (const char *)ms, mn, score);
    }
    kv_rdb_str_free(&blob);
    if (rc) return ld_fail(&l, rc);
    *enc = l.o->enc, *ptr = kv_db_ptr(l.o);
    return KV_RDB_OK;
}

/* rdbLoadDoubleValue (RDB_TYPE_ZSET): length byte, 253 nan, 254 inf,
 * 255 -inf, else that many bytes of text. */
static int load_text_double(kv_rdb_reader *r, double *d)
{
    char buf[256];
    if (r->pos >= r->len) return 0;
    unsigned char n = r->p[r->pos++];
    if (n == 253) return *d = NAN, 1;
    if (n == 254) return *d = INFINITY, 1;
    if (n == 255) return *d = -INFINITY, 1;
    if (n > r->len - r->pos) return 0;
    memcpy(buf, r->p + r->pos, n);
    buf[n] = '\0';
    r->pos += n;
    return sscanf(buf, "%lg", d) == 1;
}

static int load_pairs(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    uint64_t n;
    int encoded, rc = kv_rdb_load_len(r, &n, &encoded);
    if (rc) return rc;
    /* every element takes at least 2 bytes: bound n before allocating */
    if (encoded || n == 0 || n > (r->len - r->pos) / 2) return KV_RDB_EBADFMT;
    loading l;
    ld_init(&l, (size_t)n, 0);
    for (uint64_t i = 0; i < n && rc == KV_RDB_OK; i++) {
        kv_rdb_str m;
        double s;
        if ((rc = kv_rdb_load_string(r, &m))) break;
        if (rdbtype == KV_RDB_TYPE_ZSET_2) {
            if (r->len - r->pos < 8) {
                rc = KV_RDB_EBADFMT;
            } else {
                uint64_t bits = 0;
                for (int k = 7; k >= 0; k--) bits = bits << 8 | r->p[r->pos + (size_t)k];
                memcpy(&s, &bits, 8);
                r->pos += 8;
            }
        } else if (!load_text_double(r, &s)) {
            rc = KV_RDB_EBADFMT;
        }
        if (rc == KV_RDB_OK) rc = ld_add(&l, m.p, m.len, s);
        kv_rdb_str_free(&m);
    }
    if (rc) return ld_fail(&l, rc);
    kv_zset_shrink_if_fits(l.o);
    *enc = l.o->enc, *ptr = kv_db_ptr(l.o);
    return KV_RDB_OK;
}

static int load(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    if (rdbtype == KV_RDB_TYPE_ZSET_LISTPACK || rdbtype == KV_RDB_TYPE_ZSET_ZIPLIST)
        return load_packed(r, rdbtype, enc, ptr);
    return load_pairs(r, rdbtype, enc, ptr);
}

static const kv_rdbobj_ops ops = { .save = save, .load = load, .free = kv_zset_free };

/* Runs at startup (constructor); callable again by tests. */
void kv_rdb_zset_register(void);
__attribute__((constructor)) void kv_rdb_zset_register(void)
{
    static const uint8_t types[] = { KV_RDB_TYPE_ZSET, KV_RDB_TYPE_ZSET_2, KV_RDB_TYPE_ZSET_ZIPLIST,
                                     KV_RDB_TYPE_ZSET_LISTPACK };
    kv_rdbobj_register(KV_TYPE_ZSET, types, sizeof types, &ops);
}
