/* Unit tests for sorted sets (shard/zset_type, zskiplist, zset_small,
 * persist/rdb_zset): randomized adds, updates, deletes and range deletes
 * against a sorted-array model, in the listpack encoding, the skiplist
 * one, and across conversions; ranks, by-rank iteration both ways, score
 * and lex spans; RDB round trips and hostile payloads. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "persist/rdbobj.h"
#include "shard/zset_type.h"

#include "testutil.h"

/* ---- the model: ids sorted by (score, member) -------------------------- */

#define MAXID 20000
static char *mem_[MAXID];
static size_t mlen_of[MAXID];
static double score_[MAXID];
static int present[MAXID];
static uint32_t *ord; /* ids in order */
static size_t mlen_;

static size_t make_member(uint32_t id, char *out)
{
    switch (id % 5) {
    case 0: return (size_t)snprintf(out, 32, "m%u", id);
    case 1: memcpy(out, &id, 4); return 4; /* binary */
    case 2: memset(out, 'x', 70); memcpy(out, &id, 4); return 70; /* over listpack-value */
    case 3: memset(out, 'L', 260); memcpy(out + 256, &id, 4); return 260; /* long header */
    default: return (size_t)snprintf(out, 32, "%u", id);
    }
}

static int icmp(uint32_t a, double sa, uint32_t b)
{
    if (sa != score_[b]) return sa < score_[b] ? -1 : 1;
    return kv_zmember_cmp(mem_[a], mlen_of[a], mem_[b], mlen_of[b]);
}

/* first position whose element sorts after (id, s) */
static size_t mpos(uint32_t id, double s)
{
    size_t lo = 0, hi = mlen_;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (icmp(id, s, ord[mid]) > 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}
static void mins(uint32_t id, double s)
{
    size_t at = mpos(id, s);
    memmove(ord + at + 1, ord + at, (mlen_ - at) * sizeof *ord);
    ord[at] = id, score_[id] = s, present[id] = 1, mlen_++;
}
static void mdel(uint32_t id)
{
    size_t at = mpos(id, score_[id]);
    memmove(ord + at, ord + at + 1, (mlen_ - at - 1) * sizeof *ord);
    present[id] = 0, mlen_--;
}

static double make_score(void)
{
    switch (rnd() % 6) {
    case 0: return 0; /* many ties: order by member */
    case 1: return (double)(rnd() % 10);
    case 2: return (double)(int64_t)(rnd() % 2000) / 8 - 100;
    case 3: return rnd() % 50 == 0 ? INFINITY : -1.5;
    default: return (double)(rnd() % 1000);
    }
}

/* ---- checks ---------------------------------------------------------- */

static void check_all(const kv_obj *o)
{
    assert_int_equal(kv_zset_len(o), mlen_);
    kv_zit it;
    size_t i = 0;
    for (kv_zit_rank(&it, o, 0); it.valid; kv_zit_next(&it), i++) {
        const char *m;
        size_t n;
        double s;
        kv_zit_get(&it, &m, &n, &s);
        assert_true(i < mlen_);
        assert_int_equal(n, mlen_of[ord[i]]);
        assert_memory_equal(m, mem_[ord[i]], n);
        assert_true(s == score_[ord[i]]);
    }
    assert_int_equal(i, mlen_);
    if (mlen_ == 0) return;
    for (kv_zit_rank(&it, o, mlen_ - 1), i = mlen_; it.valid; kv_zit_prev(&it)) i--;
    assert_int_equal(i, 0);
    for (int k = 0; k < 8; k++) {
        size_t r = rnd() % mlen_;
        double s;
        uint32_t id = ord[r];
        assert_int_equal(kv_zset_rank(o, mem_[id], mlen_of[id], 0, &s), (long)r);
        assert_int_equal(kv_zset_rank(o, mem_[id], mlen_of[id], 1, &s), (long)(mlen_ - 1 - r));
        assert_true(s == score_[id]);
        kv_zit_rank(&it, o, r);
        const char *m;
        size_t n;
        kv_zit_get(&it, &m, &n, &s);
        assert_int_equal(n, mlen_of[id]);
    }
    /* a score span against a count over the model */
    kv_zrange zr = { (double)(rnd() % 20) - 5, (double)(rnd() % 1000), (int)(rnd() & 1),
                     (int)(rnd() & 1) };
    size_t first = 0, want = 0, wfirst = 0, got;
    for (i = 0; i < mlen_; i++) {
        if (!kv_zscore_gte_min(score_[ord[i]], &zr)) wfirst = i + 1;
        else if (kv_zscore_lte_max(score_[ord[i]], &zr)) want++;
    }
    got = kv_zset_span_score(o, &zr, &first);
    assert_int_equal(got, want);
    if (want) assert_int_equal(first, wfirst);
}

/* ---- randomized run ---------------------------------------------------- */

static void run(size_t entries, size_t value, int ops, uint32_t ids)
{
    kv_zset_set_max_listpack_entries(entries);
    kv_zset_set_max_listpack_value(value);
    mlen_ = 0;
    memset(present, 0, sizeof present);
    kv_zval v;
    uint8_t enc;
    void *p = kv_zset_create(1, 1, &enc);
    kv_obj *o = kv_zval_init(&v, enc, p);
    for (int i = 0; i < ops; i++) {
        uint32_t id = (uint32_t)(rnd() % ids);
        const char *m = mem_[id];
        size_t n = mlen_of[id];
        unsigned op = (unsigned)(rnd() % 100);
        if (op < 55) {
            double s = make_score(), ns = 0;
            int in = rnd() % 4 == 0 ? KV_ZADD_IN_INCR : 0, out;
            double want = in && present[id] ? score_[id] + s : s;
            int r = kv_zset_add(o, s, m, n, in, &out, &ns);
            if (isnan(want)) {
                assert_int_equal(r, 0);
                continue;
            }
            assert_int_equal(r, 1);
            assert_true(ns == want);
            if (!present[id]) assert_true(out & KV_ZADD_OUT_ADDED);
            else mdel(id);
            /* a listpack stores -0 as 0, as Redis's d2string does */
            mins(id, want == 0 && o->enc == KV_ENC_LISTPACK ? 0.0 : want);
        } else if (op < 80) {
            assert_int_equal(kv_zset_del(o, m, n), present[id]);
            if (present[id]) mdel(id);
        } else if (op < 83 && mlen_) {
            size_t a = rnd() % mlen_, b = a + rnd() % 5;
            if (b >= mlen_) b = mlen_ - 1;
            assert_int_equal(kv_zset_del_ranks(o, a, b), b - a + 1);
            for (size_t k = a; k <= b; k++) present[ord[k]] = 0;
            memmove(ord + a, ord + b + 1, (mlen_ - b - 1) * sizeof *ord);
            mlen_ -= b - a + 1;
        } else if (op < 85) {
            kv_zset_shrink_if_fits(o);
        }
        if (i % 97 == 0) check_all(o);
        /* the encoding follows the limits */
        if (o->enc == KV_ENC_LISTPACK) assert_true(kv_zset_len(o) <= entries);
    }
    check_all(o);
    /* COPY and the RDB codec give the same zset */
    kv_zval c;
    kv_obj *co = kv_zval_init(&c, o->enc, kv_zset_dup(kv_db_ptr(o), o->enc));
    check_all(co);
    kv_zset_free(kv_db_ptr(co), co->enc);
    if (mlen_) {
        kv_rdb_buf b;
        kv_rdb_buf_init(&b);
        assert_int_equal(kv_rdbobj_save(&b, o), KV_RDB_OK);
        kv_rdb_reader r;
        kv_rdbobj_value lv;
        kv_rdb_reader_init(&r, b.p, b.len);
        assert_int_equal(kv_rdbobj_load(&r, &lv), KV_RDB_OK);
        assert_int_equal(lv.type, KV_TYPE_ZSET);
        kv_zval l;
        check_all(kv_zval_init(&l, lv.enc, lv.ptr));
        kv_zset_free(lv.ptr, lv.enc);
        kv_rdb_buf_free(&b);
    }
    kv_zset_free(kv_db_ptr(o), o->enc);
    kv_zset_set_max_listpack_entries(128);
    kv_zset_set_max_listpack_value(64);
}

static void test_listpack(void **st)
{
    (void)st;
    run(1000000, 1000, quick() ? 3000 : 20000, 150);
}
static void test_skiplist(void **st)
{
    (void)st;
    run(0, 0, quick() ? 20000 : 200000, quick() ? 2000 : MAXID);
}
static void test_conversions(void **st)
{
    (void)st;
    for (int k = 0; k < (quick() ? 5 : 40); k++) run(16 + (size_t)k, 64, 3000, 60);
}

/* Hostile input never crashes and never loads. */
static void test_rdb_fuzz(void **st)
{
    (void)st;
    kv_zval v;
    uint8_t enc;
    kv_obj *o = kv_zval_init(&v, 0, kv_zset_create(200, 8, &enc));
    o->enc = enc;
    for (int i = 0; i < 200; i++) kv_zset_append(o, (char *)&i, 4, i * 0.5);
    kv_rdb_buf b[2];
    for (int k = 0; k < 2; k++) {
        kv_rdb_buf_init(&b[k]);
        kv_rdbobj_save(&b[k], o);
        kv_zset_convert(o, KV_ENC_LISTPACK);
    }
    for (int it = 0; it < (quick() ? 2000 : 20000); it++) {
        kv_rdb_buf *src = &b[it & 1];
        unsigned char *p = malloc(src->len);
        memcpy(p, src->p, src->len);
        size_t len = src->len - rnd() % 4;
        for (int f = 0; f < 1 + (int)(rnd() % 3); f++) p[1 + rnd() % (len - 1)] ^= (unsigned char)(1 + rnd() % 255);
        kv_rdb_reader r;
        kv_rdbobj_value lv;
        kv_rdb_reader_init(&r, p, len);
        if (kv_rdbobj_load(&r, &lv) == KV_RDB_OK) kv_rdbobj_value_free(&lv);
        free(p);
    }
    kv_rdb_buf_free(&b[0]), kv_rdb_buf_free(&b[1]);
    kv_zset_free(kv_db_ptr(o), o->enc);
}

/* The old formats: RDB_TYPE_ZSET (text scores, nan/inf codes) loads;
 * duplicates and NaN are refused. */
static void test_rdb_old(void **st)
{
    (void)st;
    static const unsigned char ok[] = { KV_RDB_TYPE_ZSET, 3, 1, 'a', 3, '1', '.', '5',
                                        1, 'b', 254, 1, 'c', 255 };
    static const unsigned char dup[] = { KV_RDB_TYPE_ZSET, 2, 1, 'a', 1, '1', 1, 'a', 1, '2' };
    static const unsigned char nan[] = { KV_RDB_TYPE_ZSET, 1, 1, 'a', 253 };
    kv_rdb_reader r;
    kv_rdbobj_value lv;
    kv_rdb_reader_init(&r, ok, sizeof ok);
    assert_int_equal(kv_rdbobj_load(&r, &lv), KV_RDB_OK);
    assert_int_equal(lv.enc, KV_ENC_LISTPACK);
    kv_zval v;
    kv_obj *o = kv_zval_init(&v, lv.enc, lv.ptr);
    double s;
    assert_int_equal(kv_zset_rank(o, "c", 1, 0, &s), 0);
    assert_true(s == -INFINITY);
    assert_int_equal(kv_zset_rank(o, "b", 1, 0, &s), 2);
    assert_true(s == INFINITY);
    assert_true(kv_zset_score(o, "a", 1, &s) && s == 1.5);
    kv_zset_free(lv.ptr, lv.enc);
    kv_rdb_reader_init(&r, dup, sizeof dup);
    assert_int_equal(kv_rdbobj_load(&r, &lv), KV_RDB_EBADFMT);
    kv_rdb_reader_init(&r, nan, sizeof nan);
    assert_int_equal(kv_rdbobj_load(&r, &lv), KV_RDB_EBADFMT);
}

void kv_rdb_zset_register(void); /* persist/rdb_zset.c */

int main(void)
{
    rs = 0x2545F4914F6CDD1DULL;   /* this file's seed, as before testutil.h */
    kv_rdb_zset_register(); /* a constructor, but archive members load on demand */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listpack),   cmocka_unit_test(test_skiplist),
        cmocka_unit_test(test_conversions), cmocka_unit_test(test_rdb_fuzz),
        cmocka_unit_test(test_rdb_old),
    };
    char buf[300];
    ord = calloc(MAXID, sizeof *ord);
    for (uint32_t id = 0; id < MAXID; id++) {
        mlen_of[id] = make_member(id, buf);
        mem_[id] = malloc(mlen_of[id] + 1);
        memcpy(mem_[id], buf, mlen_of[id]);
    }
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (uint32_t id = 0; id < MAXID; id++) free(mem_[id]);
    free(ord);
    return rc;
}
