/* Unit tests for the hash value (shard/hash_type): randomized set/delete
 * against a direct-indexed model across both encodings (thresholds
 * lowered so conversions happen often), iteration, and the RDB codec's
 * round trip and rejection of corrupt input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "persist/rdbobj.h"
#include "shard/hash_type.h"

#include "testutil.h"

#define U 300 /* field universe */

typedef struct {
    kv_obj o;
    void *p;
} box_t;

typedef struct {
    int present[U];
    char val[U][80];
    size_t vlen[U];
    size_t n;
} model_t;

static size_t field(int id, char *b)
{
    /* integers and strings, so listpack int-encoding is exercised */
    return (size_t)(id % 3 ? sprintf(b, "%d", id * 7 - 500) : sprintf(b, "field:%d", id));
}

static void check(box_t *h, model_t *m)
{
    assert_int_equal(kv_hash_len(&h->o), m->n);
    for (int id = 0; id < U; id++) {
        char f[32];
        size_t fl = field(id, f);
        kv_lp_val v;
        int got = kv_hash_get(&h->o, f, fl, &v);
        assert_int_equal(got, m->present[id]);
        if (got) {
            char buf[KV_LP_INTBUF];
            size_t l;
            const char *s = kv_lp_val_str(&v, buf, &l);
            assert_int_equal(l, m->vlen[id]);
            assert_memory_equal(s, m->val[id], l);
        }
    }
    size_t seen = 0;
    kv_hash_iter it;
    kv_lp_val f, v;
    kv_hash_iter_init(&it, &h->o);
    while (kv_hash_iter_next(&it, &f, &v)) seen++;
    kv_hash_iter_done(&it);
    assert_int_equal(seen, m->n);
}

static void roundtrip(box_t *h, model_t *m)
{
    if (!m->n) return;
    kv_rdb_buf b;
    kv_rdb_buf_init(&b);
    assert_int_equal(kv_rdbobj_save(&b, &h->o), KV_RDB_OK);
    kv_rdb_reader r;
    kv_rdbobj_value v;
    kv_rdb_reader_init(&r, b.p, b.len);
    assert_int_equal(kv_rdbobj_load(&r, &v), KV_RDB_OK);
    assert_int_equal(v.type, KV_TYPE_HASH);
    box_t c = { { KV_TYPE_HASH, v.enc, KV_STORE_PTR, 0, 0 }, v.ptr };
    check(&c, m);
    /* truncations and bit flips must fail cleanly or load something */
    for (size_t cut = 0; cut < b.len; cut += 1 + b.len / 50) {
        kv_rdb_reader_init(&r, b.p, cut);
        if (kv_rdbobj_load(&r, &v) == KV_RDB_OK) kv_rdbobj_value_free(&v);
    }
    for (int i = 0; i < 30; i++) {
        size_t at = rnd() % b.len;
        unsigned char old = b.p[at];
        b.p[at] ^= (unsigned char)(1u << (rnd() % 8));
        kv_rdb_reader_init(&r, b.p, b.len);
        if (kv_rdbobj_load(&r, &v) == KV_RDB_OK) kv_rdbobj_value_free(&v);
        b.p[at] = old;
    }
    kv_hash_free(c.p, c.o.enc);
    kv_rdb_buf_free(&b);
}

static void test_random(void **state)
{
    (void)state;
    static model_t m;
    void kv_rdb_hash_register(void);
    kv_rdb_hash_register();
    int rounds = quick() ? 20000 : 200000;
    for (int cfg = 0; cfg < 3; cfg++) {
        kv_hash_set_max_listpack_entries(cfg == 0 ? 512 : cfg == 1 ? 16 : 0);
        kv_hash_set_max_listpack_value(cfg == 0 ? 64 : 20);
        memset(&m, 0, sizeof m);
        box_t h = { { KV_TYPE_HASH, KV_ENC_LISTPACK, KV_STORE_PTR, 0, 0 }, kv_hash_new() };
        for (int op = 0; op < rounds; op++) {
            int id = (int)(rnd() % U);
            char f[32];
            size_t fl = field(id, f);
            if (rnd() % 3) {
                char v[80];
                size_t vl = rnd() % 2 ? (size_t)sprintf(v, "%lld", (long long)rnd() >> (rnd() % 64))
                                      : rnd() % 70;
                if (vl && v[0] != '-' && (v[0] < '0' || v[0] > '9')) memset(v, 'v', vl);
                if (!(vl && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))) memset(v, 'a' + id % 26, vl);
                int r = kv_hash_set(&h.o, f, fl, v, vl);
                assert_int_equal(r, !m.present[id]);
                if (!m.present[id]) m.n++;
                m.present[id] = 1;
                memcpy(m.val[id], v, vl);
                m.vlen[id] = vl;
            } else {
                assert_int_equal(kv_hash_del(&h.o, f, fl), m.present[id]);
                if (m.present[id]) m.n--;
                m.present[id] = 0;
            }
            if (op % 997 == 0) {
                check(&h, &m);
                roundtrip(&h, &m);
                void *d = kv_hash_dup(h.p, h.o.enc);
                box_t c = { { KV_TYPE_HASH, h.o.enc, KV_STORE_PTR, 0, 0 }, d };
                check(&c, &m);
                kv_hash_free(d, c.o.enc);
            }
        }
        check(&h, &m);
        if (cfg == 2) assert_int_equal(h.o.enc, KV_ENC_HT);
        kv_hash_free(h.p, h.o.enc);
    }
    kv_hash_set_max_listpack_entries(512);
    kv_hash_set_max_listpack_value(64);
}

static void test_conversion_points(void **state)
{
    (void)state;
    box_t h = { { KV_TYPE_HASH, KV_ENC_LISTPACK, KV_STORE_PTR, 0, 0 }, kv_hash_new() };
    char f[32];
    for (int i = 0; i < 512; i++) {
        size_t fl = (size_t)sprintf(f, "f%d", i);
        kv_hash_set(&h.o, f, fl, "v", 1);
    }
    assert_int_equal(h.o.enc, KV_ENC_LISTPACK);
    kv_hash_set(&h.o, "x", 1, "v", 1);
    assert_int_equal(h.o.enc, KV_ENC_HT);
    kv_hash_free(h.p, h.o.enc);
    box_t g = { { KV_TYPE_HASH, KV_ENC_LISTPACK, KV_STORE_PTR, 0, 0 }, kv_hash_new() };
    char v[65];
    memset(v, 'x', sizeof v);
    kv_hash_set(&g.o, "a", 1, v, 64);
    assert_int_equal(g.o.enc, KV_ENC_LISTPACK);
    kv_hash_set(&g.o, "a", 1, v, 65);
    assert_int_equal(g.o.enc, KV_ENC_HT);
    kv_hash_free(g.p, g.o.enc);
}

int main(void)
{
    rs = 0x2545F4914F6CDD1DULL;   /* this file's seed, as before testutil.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversion_points),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
