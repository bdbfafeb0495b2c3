/* Sorted-set values, encoding-independent (zset_type.h): what the command
 * files and the RDB codec use, following Redis 7.0's zset* functions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shard/zset_type.h"

size_t kv_zset_max_listpack_entries = 128;
size_t kv_zset_max_listpack_value = 64;

void kv_zset_set_max_listpack_entries(size_t n) { kv_zset_max_listpack_entries = n; }
void kv_zset_set_max_listpack_value(size_t n) { kv_zset_max_listpack_value = n; }

#define IS_SMALL(o) ((o)->enc == KV_ENC_LISTPACK)

/* ---- ranges --------------------------------------------------------------- */

int kv_zscore_gte_min(double v, const kv_zrange *r) { return r->minex ? v > r->min : v >= r->min; }
int kv_zscore_lte_max(double v, const kv_zrange *r) { return r->maxex ? v < r->max : v <= r->max; }

int kv_zrange_empty(const kv_zrange *r)
{
    return r->min > r->max || (r->min == r->max && (r->minex || r->maxex));
}

int kv_zmember_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Redis's sdscmplex: "-" below everything, "+" above. */
static int cmp_lex(const char *m, size_t n, const kv_zlexb *b)
{
    if (b->inf) return -b->inf;
    return kv_zmember_cmp(m, n, b->p, b->len);
}

int kv_zlex_gte_min(const char *m, size_t n, const kv_zlex *r)
{
    int c = cmp_lex(m, n, &r->min);
    return r->min.ex ? c > 0 : c >= 0;
}

int kv_zlex_lte_max(const char *m, size_t n, const kv_zlex *r)
{
    int c = cmp_lex(m, n, &r->max);
    return r->max.ex ? c < 0 : c <= 0;
}

int kv_zlex_empty(const kv_zlex *r)
{
    const kv_zlexb *a = &r->min, *b = &r->max;
    int c;
    if (a->inf && a->inf == b->inf) c = 0;
    else if (a->inf < 0 || b->inf > 0) c = -1;
    else if (a->inf > 0 || b->inf < 0) c = 1;
    else c = kv_zmember_cmp(a->p, a->len, b->p, b->len);
    return c > 0 || (c == 0 && (a->ex || b->ex));
}

/* ---- iteration ------------------------------------------------------------- */

#define ZSM(o) ((kv_zsmall *)kv_db_ptr(o))
#define ZSL(o) ((kv_zsl *)kv_db_ptr(o))

size_t kv_zset_len(const kv_obj *o) { return IS_SMALL(o) ? ZSM(o)->count : ZSL(o)->length; }

void kv_zit_rank(kv_zit *it, const kv_obj *o, size_t rank)
{
    it->o = o;
    it->valid = rank < kv_zset_len(o);
    if (!it->valid) return;
    if (IS_SMALL(o)) it->off = kv_zsm_at_rank(ZSM(o), rank);
    else it->node = kv_zsl_at_rank(ZSL(o), rank + 1);
}

void kv_zit_get(const kv_zit *it, const char **m, size_t *mlen, double *score)
{
    if (IS_SMALL(it->o)) {
        kv_zsm_get(ZSM(it->o), it->off, m, mlen, score);
    } else {
        *m = kv_dict_entry_key(it->node);
        *mlen = kv_dict_entry_klen(it->node);
        *score = kv_zsl_score(it->node);
    }
}

void kv_zit_next(kv_zit *it)
{
    if (IS_SMALL(it->o)) {
        const char *m;
        size_t n;
        double s;
        it->off += kv_zsm_get(ZSM(it->o), it->off, &m, &n, &s);
        it->valid = it->off < ZSM(it->o)->len;
    } else {
        it->node = kv_zsl_n(it->node)->fwd0;
        it->valid = it->node != NULL;
    }
}

void kv_zit_prev(kv_zit *it)
{
    if (IS_SMALL(it->o)) {
        it->valid = it->off > 0;
        if (it->valid) it->off = kv_zsm_prev(ZSM(it->o), it->off);
    } else {
        it->node = kv_zsl_n(it->node)->backward;
        it->valid = it->node != NULL;
    }
}

static int below_min(const void *ud, const kv_dict_entry *e)
{
    return !kv_zscore_gte_min(kv_zsl_score(e), ud);
}
static int within_max(const void *ud, const kv_dict_entry *e)
{
    return kv_zscore_lte_max(kv_zsl_score(e), ud);
}
static int lex_below_min(const void *ud, const kv_dict_entry *e)
{
    return !kv_zlex_gte_min(kv_dict_entry_key(e), kv_dict_entry_klen(e), ud);
}
static int lex_within_max(const void *ud, const kv_dict_entry *e)
{
    return kv_zlex_lte_max(kv_dict_entry_key(e), kv_dict_entry_klen(e), ud);
}

/* Tests of an element against the near (lo) and far (hi) end of a range,
 * shared by the score and lex spans. */
typedef int elem_test(const void *r, const char *m, size_t n, double s);
static int t_score_lo(const void *r, const char *m, size_t n, double s)
{
    (void)m, (void)n;
    return kv_zscore_gte_min(s, r);
}
static int t_score_hi(const void *r, const char *m, size_t n, double s)
{
    (void)m, (void)n;
    return kv_zscore_lte_max(s, r);
}
static int t_lex_lo(const void *r, const char *m, size_t n, double s)
{
    (void)s;
    return kv_zlex_gte_min(m, n, r);
}
static int t_lex_hi(const void *r, const char *m, size_t n, double s)
{
    (void)s;
    return kv_zlex_lte_max(m, n, r);
}

/* The elements in a range are consecutive: their first rank and count.
 * On a skiplist two O(log n) seeks (below min / within max) give both. */
static size_t span(const kv_obj *o, const void *r, elem_test *lo, elem_test *hi,
                   kv_zsl_pred *below, kv_zsl_pred *within, size_t *first)
{
    *first = 0;
    /* Redis's zsl/zzlIsIn[Lex]Range first: the last element must reach
     * min and the first one max. Implied for scores; for lex ranges over
     * mixed scores (undefined order) it is what makes replies match. */
    size_t len = kv_zset_len(o);
    kv_zit it;
    const char *m;
    size_t ml;
    double s;
    if (len == 0) return 0;
    kv_zit_rank(&it, o, len - 1);
    kv_zit_get(&it, &m, &ml, &s);
    if (!lo(r, m, ml, s)) return 0;
    kv_zit_rank(&it, o, 0);
    kv_zit_get(&it, &m, &ml, &s);
    if (!hi(r, m, ml, s)) return 0;
    if (IS_SMALL(o)) {
        const kv_zsmall *z = ZSM(o);
        size_t off = 0, rank = 0, n = 0;
        while (off < z->len) {
            const char *m;
            size_t ml;
            double s;
            off += kv_zsm_get(z, off, &m, &ml, &s);
            if (!n && !lo(r, m, ml, s)) { /* once inside, only max ends it */
                rank++;
                continue;
            }
            if (!hi(r, m, ml, s)) break;
            n++;
        }
        *first = rank;
        return n;
    }
    unsigned long ra, rb;
    kv_zsl_seek(ZSL(o), below, r, &ra);
    kv_zsl_seek(ZSL(o), within, r, &rb);
    *first = ra;
    return rb > ra ? rb - ra : 0;
}

size_t kv_zset_span_score(const kv_obj *o, const kv_zrange *r, size_t *first)
{
    if (kv_zrange_empty(r)) return *first = 0, 0;
    return span(o, r, t_score_lo, t_score_hi, below_min, within_max, first);
}

size_t kv_zset_span_lex(const kv_obj *o, const kv_zlex *r, size_t *first)
{
    if (kv_zlex_empty(r)) return *first = 0, 0;
    return span(o, r, t_lex_lo, t_lex_hi, lex_below_min, lex_within_max, first);
}

/* ---- whole values ------------------------------------------------------------ */

size_t kv_zset_mem(const void *ptr, uint8_t enc)
{
    return enc == KV_ENC_LISTPACK ? kv_zsm_mem(ptr) : kv_zsl_mem(ptr);
}

void *kv_zset_create(size_t hint, size_t maxlen, uint8_t *enc)
{
    if (hint <= kv_zset_max_listpack_entries && maxlen <= kv_zset_max_listpack_value &&
        kv_zset_max_listpack_entries > 0) {
        *enc = KV_ENC_LISTPACK;
        return kv_zsm_new(hint * (maxlen + 12) < 256 ? hint * (maxlen + 12) : 256);
    }
    *enc = KV_ENC_SKIPLIST;
    return kv_zsl_new(hint);
}

void kv_zset_free(void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_LISTPACK) free(ptr);
    else kv_zsl_free(ptr);
}

static kv_zsl *small_to_sl(const kv_zsmall *z)
{
    kv_zsl *sl = kv_zsl_new(z->count);
    size_t off = 0;
    while (off < z->len) {
        const char *m;
        size_t n;
        double s;
        off += kv_zsm_get(z, off, &m, &n, &s);
        kv_zsl_append(sl, m, n, s);
    }
    return sl;
}

static kv_zsmall *sl_to_small(const kv_zsl *sl)
{
    kv_zsmall *z = kv_zsm_new(64);
    for (kv_dict_entry *e = kv_zsl_first(sl); e; e = kv_zsl_n(e)->fwd0)
        z = kv_zsm_append(z, kv_dict_entry_key(e), kv_dict_entry_klen(e), kv_zsl_score(e));
    return z;
}

void *kv_zset_dup(const void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_LISTPACK) {
        const kv_zsmall *z = ptr;
        kv_zsmall *c = kv_zsm_new(z->len);
        memcpy(c, z, sizeof *z + z->len);
        return c;
    }
    const kv_zsl *src = ptr;
    kv_zsl *sl = kv_zsl_new(src->length);
    for (kv_dict_entry *e = kv_zsl_first(src); e; e = kv_zsl_n(e)->fwd0)
        kv_zsl_append(sl, kv_dict_entry_key(e), kv_dict_entry_klen(e), kv_zsl_score(e));
    return sl;
}

void kv_zset_convert(kv_obj *o, uint8_t enc)
{
    if (o->enc == enc) return;
    void *old = kv_db_ptr(o);
    if (enc == KV_ENC_SKIPLIST) {
        kv_db_set_ptr(o, enc, small_to_sl(old));
        free(old);
    } else {
        kv_db_set_ptr(o, enc, sl_to_small(old));
        kv_zsl_free(old);
    }
}

void kv_zset_shrink_if_fits(kv_obj *o)
{
    if (o->enc != KV_ENC_SKIPLIST || ZSL(o)->length > kv_zset_max_listpack_entries) return;
    for (kv_dict_entry *e = kv_zsl_first(ZSL(o)); e; e = kv_zsl_n(e)->fwd0)
        if (kv_dict_entry_klen(e) > kv_zset_max_listpack_value) return;
    kv_zset_convert(o, KV_ENC_LISTPACK);
}

/* ---- members ----------------------------------------------------------------- */

int kv_zset_score(const kv_obj *o, const char *m, size_t mlen, double *score)
{
    if (IS_SMALL(o)) return kv_zsm_find(ZSM(o), m, mlen, score) >= 0;
    kv_dict_entry *e = kv_dict_find(ZSL(o)->dict, m, mlen);
    if (!e) return 0;
    *score = kv_zsl_score(e);
    return 1;
}

long kv_zset_rank(const kv_obj *o, const char *m, size_t mlen, int rev, double *score)
{
    size_t len = kv_zset_len(o);
    long rank;
    if (IS_SMALL(o)) {
        const kv_zsmall *z = ZSM(o);
        size_t off = 0;
        for (rank = 0; off < z->len; rank++) {
            const char *em;
            size_t n;
            off += kv_zsm_get(z, off, &em, &n, score);
            if (n == mlen && memcmp(em, m, n) == 0) break;
        }
        if (off > z->len || rank == (long)z->count) return -1;
    } else {
        kv_dict_entry *e = kv_dict_find(ZSL(o)->dict, m, mlen);
        if (!e) return -1;
        *score = kv_zsl_score(e);
        rank = (long)kv_zsl_rank(ZSL(o), e) - 1;
    }
    return rev ? (long)len - 1 - rank : rank;
}

int kv_zset_add(kv_obj *o, double score, const char *m, size_t mlen, int in, int *out,
                double *newscore)
{
    int incr = in & KV_ZADD_IN_INCR, nx = in & KV_ZADD_IN_NX, xx = in & KV_ZADD_IN_XX;
    int gt = in & KV_ZADD_IN_GT, lt = in & KV_ZADD_IN_LT;
    double cur;
    kv_dict_entry *e = NULL;
    long off = -1;
    int found;
    *out = 0;
    if (isnan(score)) {
        *out = KV_ZADD_OUT_NAN;
        return 0;
    }
    if (IS_SMALL(o)) found = (off = kv_zsm_find(ZSM(o), m, mlen, &cur)) >= 0;
    else found = (e = kv_dict_find(ZSL(o)->dict, m, mlen)) != NULL, cur = e ? kv_zsl_score(e) : 0;
    if (found) {
        if (nx) {
            *out |= KV_ZADD_OUT_NOP;
            return 1;
        }
        if (incr) {
            score += cur;
            if (isnan(score)) {
                *out |= KV_ZADD_OUT_NAN;
                return 0;
            }
        }
        if ((lt && score >= cur) || (gt && score <= cur)) {
            *out |= KV_ZADD_OUT_NOP;
            return 1;
        }
        if (newscore) *newscore = score;
        if (score != cur) {
            if (IS_SMALL(o)) {
                kv_zsmall *z = ZSM(o);
                const char *em;
                size_t n;
                double s;
                size_t sz = kv_zsm_get(z, (size_t)off, &em, &n, &s);
                kv_zsm_delete(z, (size_t)off, (size_t)off + sz, 1);
                kv_db_set_ptr(o, o->enc, kv_zsm_insert(z, m, mlen, score));
            } else {
                kv_zsl_update(ZSL(o), e, score);
            }
            *out |= KV_ZADD_OUT_UPDATED;
        }
        return 1;
    }
    if (xx) {
        *out |= KV_ZADD_OUT_NOP;
        return 1;
    }
    if (IS_SMALL(o)) {
        if (ZSM(o)->count + 1 > kv_zset_max_listpack_entries || mlen > kv_zset_max_listpack_value)
            kv_zset_convert(o, KV_ENC_SKIPLIST);
        else kv_db_set_ptr(o, o->enc, kv_zsm_insert(ZSM(o), m, mlen, score));
    }
    if (!IS_SMALL(o)) kv_zsl_insert(ZSL(o), m, mlen, score);
    if (newscore) *newscore = score;
    *out |= KV_ZADD_OUT_ADDED;
    return 1;
}

int kv_zset_del(kv_obj *o, const char *m, size_t mlen)
{
    if (IS_SMALL(o)) {
        kv_zsmall *z = ZSM(o);
        long off = kv_zsm_find(z, m, mlen, NULL);
        if (off < 0) return 0;
        const char *em;
        size_t n;
        double s;
        size_t sz = kv_zsm_get(z, (size_t)off, &em, &n, &s);
        kv_zsm_delete(z, (size_t)off, (size_t)off + sz, 1);
        return 1;
    }
    kv_dict_entry *e = kv_dict_find(ZSL(o)->dict, m, mlen);
    if (!e) return 0;
    kv_zsl_delete(ZSL(o), e);
    return 1;
}

size_t kv_zset_del_ranks(kv_obj *o, size_t start, size_t end)
{
    if (!IS_SMALL(o)) return kv_zsl_delete_ranks(ZSL(o), start + 1, end + 1);
    kv_zsmall *z = ZSM(o);
    size_t from = kv_zsm_at_rank(z, start), to = from;
    for (size_t r = start; r <= end; r++) {
        const char *m;
        size_t n;
        double s;
        to += kv_zsm_get(z, to, &m, &n, &s);
    }
    kv_zsm_delete(z, from, to, end - start + 1);
    return end - start + 1;
}

/* ---- db glue --------------------------------------------------------------- */

static const kv_db_type_ops zset_db_ops = {
    .free = kv_zset_free,
    .dup = kv_zset_dup,
    .mem = kv_zset_mem,
};

__attribute__((constructor)) static void zset_register(void)
{
    kv_db_register_type(KV_TYPE_ZSET, &zset_db_ops);
}

void kv_zset_append(kv_obj *o, const char *m, size_t mlen, double score)
{
    if (IS_SMALL(o) && (ZSM(o)->count + 1 > kv_zset_max_listpack_entries ||
                        mlen > kv_zset_max_listpack_value))
        kv_zset_convert(o, KV_ENC_SKIPLIST);
    if (IS_SMALL(o)) kv_db_set_ptr(o, o->enc, kv_zsm_append(ZSM(o), m, mlen, score));
    else kv_zsl_append(ZSL(o), m, mlen, score);
}
