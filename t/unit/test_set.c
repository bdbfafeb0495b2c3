/* Unit tests for sets: the Redis-format intset (encoding upgrades, order,
 * validation), the set value (shard/set_type) against a direct-indexed
 * model across intset -> hashtable conversions, and the RDB codec's round
 * trip and rejection of corrupt input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "persist/rdbobj.h"
#include "shard/set_type.h"

#include "testutil.h"

static void test_intset(void **state)
{
    (void)state;
    static const int64_t vals[] = { 5, -3, 70000, -70000, 5000000000LL, INT64_MIN, INT64_MAX, 0 };
    kv_intset *is = kv_intset_new();
    int added, removed;
    is = kv_intset_add(is, 5, &added);
    assert_int_equal(is->encoding, 2);
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) is = kv_intset_add(is, vals[i], &added);
    assert_int_equal(is->encoding, 8);
    assert_int_equal(kv_intset_len(is), 8);
    for (uint32_t i = 1; i < is->length; i++) assert_true(kv_intset_get(is, i - 1) < kv_intset_get(is, i));
    assert_true(kv_intset_validate(is, kv_intset_bytes(is)));
    is = kv_intset_remove(is, 70000, &removed);
    assert_int_equal(removed, 1);
    assert_false(kv_intset_find(is, 70000));
    free(is);
    /* randomized against a sorted-unique model */
    int rounds = quick() ? 20000 : 200000;
    int64_t *m = malloc(sizeof *m * 5000);
    size_t n = 0;
    is = kv_intset_new();
    for (int r = 0; r < rounds; r++) {
        int64_t v = (int64_t)(rnd() >> (rnd() % 64)) * (rnd() % 2 ? 1 : -1);
        if (n > 4000 || rnd() % 3 == 0) v = n ? m[rnd() % n] : v;
        size_t pos = 0;
        while (pos < n && m[pos] < v) pos++;
        int in = pos < n && m[pos] == v;
        if (rnd() % 2 && n < 4500) {
            is = kv_intset_add(is, v, &added);
            assert_int_equal(added, !in);
            if (!in) memmove(m + pos + 1, m + pos, (n - pos) * sizeof *m), m[pos] = v, n++;
        } else {
            is = kv_intset_remove(is, v, &removed);
            assert_int_equal(removed, in);
            if (in) memmove(m + pos, m + pos + 1, (n - pos - 1) * sizeof *m), n--;
        }
        if (r % 1000 == 0) {
            assert_int_equal(is->length, n);
            for (size_t i = 0; i < n; i++) assert_true(kv_intset_get(is, (uint32_t)i) == m[i]);
            if (n) assert_true(kv_intset_validate(is, kv_intset_bytes(is)));
        }
    }
    free(is);
    free(m);
    /* validation of bad blobs */
    unsigned char b[16] = { 3, 0, 0, 0, 1, 0, 0, 0, 1, 0 };
    assert_false(kv_intset_validate(b, 10)); /* encoding 3 */
    b[0] = 2;
    assert_true(kv_intset_validate(b, 10));
    assert_false(kv_intset_validate(b, 12)); /* size mismatch */
    b[4] = 2, b[10] = 1, b[11] = 0;
    assert_false(kv_intset_validate(b, 12)); /* not ascending */
    b[4] = 0;
    assert_false(kv_intset_validate(b, 8)); /* empty */
}

#define U 1200

static size_t member(int id, char *b)
{
    return (size_t)(id % 5 ? sprintf(b, "%d", id * 13 - 5000) : sprintf(b, "m:%d", id));
}

static void check(const kv_set_box *s, const unsigned char *present, size_t n)
{
    assert_int_equal(kv_set_size(&s->o), n);
    for (int id = 0; id < U; id++) {
        char b[32];
        size_t l = member(id, b);
        assert_int_equal(kv_set_ismember(&s->o, b, l), present[id]);
    }
    size_t seen = 0;
    kv_set_iter it;
    kv_lp_val v;
    kv_set_iter_init(&it, &s->o);
    while (kv_set_iter_next(&it, &v)) seen++;
    kv_set_iter_done(&it);
    assert_int_equal(seen, n);
}

static void roundtrip(const kv_set_box *s, const unsigned char *present, size_t n)
{
    if (!n) return;
    kv_rdb_buf b;
    kv_rdb_buf_init(&b);
    assert_int_equal(kv_rdbobj_save(&b, &s->o), KV_RDB_OK);
    kv_rdb_reader r;
    kv_rdbobj_value v;
    kv_rdb_reader_init(&r, b.p, b.len);
    assert_int_equal(kv_rdbobj_load(&r, &v), KV_RDB_OK);
    kv_set_box c = { { KV_TYPE_SET, v.enc, KV_STORE_PTR, 0, 0 }, v.ptr };
    assert_int_equal(c.o.enc, s->o.enc);
    check(&c, present, n);
    kv_set_free(c.ptr, c.o.enc);
    for (int i = 0; i < 30; i++) {
        size_t at = rnd() % b.len;
        unsigned char old = b.p[at];
        b.p[at] ^= (unsigned char)(1u << (rnd() % 8));
        kv_rdb_reader_init(&r, b.p, rnd() % 2 ? b.len : at);
        if (kv_rdbobj_load(&r, &v) == KV_RDB_OK) kv_rdbobj_value_free(&v);
        b.p[at] = old;
    }
    kv_rdb_buf_free(&b);
}

static void test_random(void **state)
{
    (void)state;
    void kv_rdb_set_register(void);
    kv_rdb_set_register();
    static unsigned char present[U];
    int rounds = quick() ? 6000 : 60000;
    for (int cfg = 0; cfg < 2; cfg++) {
        kv_set_set_max_intset_entries(cfg ? 40 : 512);
        memset(present, 0, sizeof present);
        size_t n = 0;
        kv_set_box s;
        assert_int_equal(kv_set_box_init(&s, 0), 0);
        for (int op = 0; op < rounds; op++) {
            int id = (int)(rnd() % U);
            if (op < rounds / 2 && id % 5 == 0) id++; /* stay intset for a while */
            char b[32];
            size_t l = member(id, b);
            if (rnd() % 3) {
                assert_int_equal(kv_set_add(&s.o, b, l), !present[id]);
                if (!present[id]) n++;
                present[id] = 1;
            } else {
                assert_int_equal(kv_set_remove(&s.o, b, l), present[id]);
                if (present[id]) n--;
                present[id] = 0;
            }
            if (s.o.enc == KV_ENC_INTSET) assert_true(n <= kv_set_max_intset_entries);
            if (op % 1499 == 0) {
                check(&s, present, n);
                roundtrip(&s, present, n);
                kv_set_box d = { s.o, kv_set_dup(s.ptr, s.o.enc) };
                check(&d, present, n);
                kv_set_free(d.ptr, d.o.enc);
                if (n) {
                    kv_lp_val v;
                    kv_set_random(&s.o, &v, NULL);
                    assert_true(kv_set_has_val(&s.o, &v));
                }
            }
        }
        check(&s, present, n);
        assert_int_equal(s.o.enc, KV_ENC_HT);
        kv_set_free(s.ptr, s.o.enc);
    }
    kv_set_set_max_intset_entries(512);
}

int main(void)
{
    rs = 0x853C49E6748FEA9BULL;   /* this file's seed, as before testutil.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intset),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
