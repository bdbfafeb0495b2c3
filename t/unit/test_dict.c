/* Unit tests for the keyspace dict (shard/dict): randomized operations
 * against a direct-indexed model, SCAN's guarantee across resizes, bounded
 * incremental rehash, safe iteration with deletion, empty, sampling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shard/dict.h"

#include "testutil.h"

/* Key for id: varied lengths (empty, short, >= 255 to hit the long
 * header), binary bytes; distinct per id because the id is encoded. */
static size_t make_key(uint32_t id, char *out)
{
    size_t n;
    switch (id % 7) {
    case 0: n = (size_t)snprintf(out, 32, "key:%u", id); break;
    case 1: n = 4; memcpy(out, &id, 4); break; /* binary, may hold NULs */
    case 2: n = (size_t)snprintf(out, 32, "%u", id); break;
    case 3:
        n = 255 + id % 300;
        memset(out, 'L', n);
        memcpy(out, &id, 4);
        break;
    default: n = (size_t)snprintf(out, 64, "user:%u:profile:%u", id, id * 7u); break;
    }
    if (id == 0) n = 0; /* the empty key */
    return n;
}

/* extra bytes: [u64 id][u64 stamp][filler...] */
static size_t extra_for(uint32_t id) { return 16 + id % 37; }

static void fill_extra(kv_dict_entry *e, uint32_t id, uint64_t stamp, size_t extra)
{
    unsigned char *x = kv_dict_entry_extra(e);
    assert_int_equal((uintptr_t)x % 8, 0);
    uint64_t *h = (uint64_t *)x;
    h[0] = id;
    h[1] = stamp;
    memset(x + 16, (int)(id & 0xFF), extra - 16);
}

static void check_extra(const kv_dict_entry *e, uint32_t id, uint64_t stamp, size_t extra)
{
    const unsigned char *x = kv_dict_entry_extra(e);
    const uint64_t *h = (const uint64_t *)x;
    assert_int_equal(h[0], id);
    assert_int_equal(h[1], stamp);
    for (size_t i = 16; i < extra; i++) assert_int_equal(x[i], id & 0xFF);
}

typedef struct {
    uint8_t *present;
    uint64_t *stamp;
    size_t *extra;
    size_t count;
} model;

static uint32_t entry_id(const kv_dict_entry *e)
{
    return (uint32_t)((const uint64_t *)kv_dict_entry_extra(e))[0];
}

static void verify_all(kv_dict *d, model *m, uint32_t universe)
{
    assert_int_equal(kv_dict_size(d), m->count);
    uint8_t *seen = calloc(universe, 1);
    kv_dict_iter it;
    kv_dict_iter_init(&it, d);
    kv_dict_entry *e;
    size_t n = 0;
    while ((e = kv_dict_iter_next(&it))) {
        uint32_t id = entry_id(e);
        assert_true(id < universe);
        assert_true(m->present[id]);
        assert_false(seen[id]);
        seen[id] = 1;
        char k[600];
        size_t kl = make_key(id, k);
        assert_int_equal(kv_dict_entry_klen(e), kl);
        assert_memory_equal(kv_dict_entry_key(e), k, kl);
        check_extra(e, id, m->stamp[id], m->extra[id]);
        n++;
    }
    kv_dict_iter_done(&it);
    assert_int_equal(n, m->count);
    free(seen);
}

static void test_model(void **state)
{
    (void)state;
    const uint32_t U = quick() ? 5000 : 100000;
    const long ops = quick() ? 100000 : 1000000;
    model m = {calloc(U, 1), calloc(U, 8), calloc(U, sizeof(size_t)), 0};
    kv_dict *d = kv_dict_new();
    char k[600];
    uint64_t stamp = 1;
    /* phases bias the mix so the table grows, shrinks and regrows */
    for (long i = 0; i < ops; i++) {
        int phase = (int)((i * 4 / ops) % 2); /* 0: grow-biased, 1: shrink-biased */
        uint32_t id = (uint32_t)(rnd() % U);
        size_t kl = make_key(id, k);
        unsigned op = (unsigned)(rnd() % 100);
        int ins = phase == 0 ? 45 : 20, del = phase == 0 ? 15 : 50;
        if (op < (unsigned)ins) {
            int created;
            size_t ex = extra_for(id);
            kv_dict_entry *e = (op & 1) ? kv_dict_upsert(d, k, kl, ex, &created)
                                        : kv_dict_insert(d, k, kl, ex);
            if (!(op & 1)) created = e != NULL;
            assert_int_equal(created, !m.present[id]);
            if (created) {
                fill_extra(e, id, ++stamp, ex);
                m.present[id] = 1;
                m.stamp[id] = stamp;
                m.extra[id] = ex;
                m.count++;
            } else if (op & 1) {
                check_extra(e, id, m.stamp[id], m.extra[id]);
            }
        } else if (op < (unsigned)(ins + del)) {
            kv_dict_entry *e;
            if (op & 1) {
                e = kv_dict_unlink(d, k, kl);
            } else {
                e = kv_dict_find(d, k, kl);
                if (e) assert_int_equal(kv_dict_unlink_entry(d, e), 0);
            }
            assert_int_equal(e != NULL, m.present[id]);
            if (e) {
                check_extra(e, id, m.stamp[id], m.extra[id]);
                kv_dict_entry_free(e);
                m.present[id] = 0;
                m.count--;
            }
        } else if (op < 90) {
            kv_dict_entry *e = kv_dict_find(d, k, kl);
            assert_int_equal(e != NULL, m.present[id]);
            if (e) check_extra(e, id, m.stamp[id], m.extra[id]);
        } else if (op < 95) {
            kv_dict_entry *e = kv_dict_find(d, k, kl);
            if (e) { /* grow or shrink the inline value */
                size_t ex = 16 + rnd() % 200;
                e = kv_dict_entry_resize(d, e, ex);
                assert_non_null(e);
                fill_extra(e, id, ++stamp, ex);
                m.stamp[id] = stamp;
                m.extra[id] = ex;
                assert_ptr_equal(kv_dict_find(d, k, kl), e);
            }
        } else if (op < 98) {
            kv_dict_entry *e = kv_dict_random(d);
            assert_int_equal(e == NULL, m.count == 0);
            if (e) assert_true(m.present[entry_id(e)]);
        } else if (op < 99) {
            kv_dict_entry *s[20];
            unsigned n = kv_dict_sample(d, s, 20);
            assert_true(n <= 20 && n <= m.count);
            for (unsigned j = 0; j < n; j++) assert_true(m.present[entry_id(s[j])]);
        } else {
            kv_dict_rehash(d, 1 + (int)(rnd() % 50));
        }
        if (i % (ops / 10) == 0) verify_all(d, &m, U);
        /* load factor stays bounded (growth is never postponed) */
        assert_true(kv_dict_size(d) <= 2 * kv_dict_buckets(d) + 8);
    }
    verify_all(d, &m, U);
    /* sparse tables shrink back */
    for (uint32_t id = 0; id < U; id++) {
        if (!m.present[id]) continue;
        size_t kl = make_key(id, k);
        kv_dict_entry_free(kv_dict_unlink(d, k, kl));
    }
    while (kv_dict_rehash(d, 100)) {}
    assert_int_equal(kv_dict_size(d), 0);
    assert_true(kv_dict_buckets(d) <= 8);
    kv_dict_free(d, NULL, NULL);
    free(m.present);
    free(m.stamp);
    free(m.extra);
}

/* ---- SCAN ------------------------------------------------------------ */

typedef struct {
    uint8_t *seen;
    uint32_t n;
    kv_dict *d;
    int delete_volatile; /* callback unlinks entries of volatile keys */
    uint32_t stable;     /* ids < stable are never deleted */
    size_t *vol_count;
} scan_ctx;

static void scan_cb(void *ud, kv_dict_entry *e)
{
    scan_ctx *c = ud;
    uint32_t id = entry_id(e);
    assert_true(id < c->n);
    c->seen[id] = 1;
    if (c->delete_volatile && id >= c->stable && (id & 3) == 0) {
        assert_int_equal(kv_dict_unlink_entry(c->d, e), 0);
        kv_dict_entry_free(e);
        (*c->vol_count)--;
    }
}

static void add_id(kv_dict *d, uint32_t id)
{
    char k[600];
    size_t kl = make_key(id, k);
    kv_dict_entry *e = kv_dict_insert(d, k, kl, 16);
    if (e) fill_extra(e, id, 0, 16);
}

static int del_id(kv_dict *d, uint32_t id)
{
    char k[600];
    size_t kl = make_key(id, k);
    kv_dict_entry *e = kv_dict_unlink(d, k, kl);
    if (e) kv_dict_entry_free(e);
    return e != NULL;
}

static void scan_round(int delete_in_cb, int shrink)
{
    const uint32_t stable = quick() ? 2000 : 20000, vol = stable * 8;
    kv_dict *d = kv_dict_new();
    for (uint32_t id = 0; id < stable; id++) add_id(d, id);
    size_t vcount = 0;
    if (shrink) { /* start big so the scan crosses shrinking rehashes */
        for (uint32_t id = stable; id < stable + vol; id++) add_id(d, id);
        vcount = vol;
    }
    scan_ctx c = {calloc(stable + vol, 1), stable + vol, d, delete_in_cb, stable, &vcount};
    unsigned long cur = 0;
    int steps = 0, rehash_seen = 0;
    do {
        cur = kv_dict_scan(d, cur, scan_cb, &c);
        steps++;
        rehash_seen |= kv_dict_is_rehashing(d);
        /* mutate between steps: volatile inserts/deletes and partial
         * rehashing, so the scan spans several table sizes */
        for (int j = 0; j < 8; j++) {
            uint32_t id = stable + (uint32_t)(rnd() % vol);
            if (shrink ? (rnd() % 4 == 0) : (rnd() % 4 != 0)) add_id(d, id);
            else del_id(d, id);
        }
        if (rnd() % 3 == 0) kv_dict_rehash(d, 1);
    } while (cur != 0);
    for (uint32_t id = 0; id < stable; id++)
        if (!c.seen[id]) {
            print_error("stable id %u not returned (steps %d)\n", id, steps);
            fail();
        }
    assert_true(rehash_seen);
    free(c.seen);
    kv_dict_free(d, NULL, NULL);
}

static void test_scan_grow(void **state) { (void)state; scan_round(0, 0); }
static void test_scan_shrink(void **state) { (void)state; scan_round(1, 1); }

static void test_scan_static(void **state)
{
    (void)state;
    /* without changes each entry is returned exactly once */
    kv_dict *d = kv_dict_new();
    const uint32_t n = 5000;
    for (uint32_t id = 0; id < n; id++) add_id(d, id);
    while (kv_dict_rehash(d, 100)) {}
    uint8_t *seen = calloc(n, 1);
    scan_ctx c = {seen, n, d, 0, n, NULL};
    unsigned long cur = 0;
    do cur = kv_dict_scan(d, cur, scan_cb, &c);
    while (cur);
    for (uint32_t id = 0; id < n; id++) assert_true(seen[id]);
    free(seen);
    kv_dict_entry *none = NULL;
    kv_dict_empty(d, NULL, NULL);
    assert_int_equal(kv_dict_scan(d, 0, scan_cb, &c), 0);
    assert_null(kv_dict_random(d));
    assert_int_equal(kv_dict_sample(d, &none, 1), 0);
    kv_dict_free(d, NULL, NULL);
}

/* ---- incremental rehash is bounded ------------------------------------ */

static void test_rehash_bounded(void **state)
{
    (void)state;
    kv_dict *d = kv_dict_new();
    const uint32_t n = quick() ? 50000 : 400000;
    int rehashing_ops = 0;
    for (uint32_t id = 0; id < n; id++) {
        long before = d->rehashidx;
        unsigned long moved_before = d->used[1];
        int was = kv_dict_is_rehashing(d);
        unsigned long size1 = d->size[1];
        add_id(d, id);
        /* (a rehash may finish and the next one start within one op) */
        if (was && kv_dict_is_rehashing(d) && d->size[1] == size1) {
            rehashing_ops++;
            /* one step: at most 1 bucket moved after 10 empty visits */
            assert_true(d->rehashidx - before <= 11);
            /* entries moved by this op: one chain plus the new key */
            assert_true(d->used[1] - moved_before <= 16);
        }
    }
    assert_true(rehashing_ops > 1000);
    /* a time-bounded step finishes a pending rehash in slices */
    kv_dict_expand(d, kv_dict_size(d) * 4);
    assert_true(kv_dict_is_rehashing(d));
    long total = 0;
    int calls = 0;
    while (kv_dict_is_rehashing(d)) {
        total += kv_dict_rehash_ms(d, 1);
        calls++;
    }
    assert_true(total > 0 && calls >= 1);
    assert_int_equal(kv_dict_size(d), n);
    /* paused by an iterator: no progress */
    kv_dict_expand(d, kv_dict_size(d) * 4);
    kv_dict_iter it;
    kv_dict_iter_init(&it, d);
    long idx = d->rehashidx;
    assert_int_equal(kv_dict_rehash_ms(d, 1), 0);
    assert_int_equal(kv_dict_rehash(d, 100), 1);
    char k[600];
    size_t kl = make_key(5, k);
    assert_non_null(kv_dict_find(d, k, kl));
    assert_int_equal(d->rehashidx, idx);
    kv_dict_iter_done(&it);
    assert_int_equal(kv_dict_mem(d), sizeof(kv_dict) + kv_dict_buckets(d) * sizeof(void *));
    kv_dict_free(d, NULL, NULL);
}

/* ---- safe iterator ----------------------------------------------------- */

static void test_iter_delete(void **state)
{
    (void)state;
    kv_dict *d = kv_dict_new();
    const uint32_t n = 20000;
    for (uint32_t id = 0; id < n; id++) add_id(d, id);
    uint8_t *seen = calloc(n + 5000, 1);
    kv_dict_iter it;
    kv_dict_iter_init(&it, d);
    kv_dict_entry *e;
    uint32_t visited = 0, deleted = 0, added = 0;
    while ((e = kv_dict_iter_next(&it))) {
        uint32_t id = entry_id(e);
        if (id < n) {
            assert_false(seen[id]);
            seen[id] = 1;
            visited++;
        }
        if (id % 2 == 0) { /* delete the current entry */
            assert_int_equal(kv_dict_unlink_entry(d, e), 0);
            kv_dict_entry_free(e);
            deleted++;
        } else if (id % 3 == 0) { /* resize the current entry */
            e = kv_dict_entry_resize(d, e, 64);
            fill_extra(e, id, 0, 64);
        }
        if (added < 5000 && visited % 4 == 0) add_id(d, n + added++);
    }
    kv_dict_iter_done(&it);
    assert_int_equal(visited, n);
    assert_int_equal(kv_dict_size(d), n + added - deleted);
    /* the dict works normally afterwards */
    while (kv_dict_rehash(d, 100)) {}
    char k[600];
    for (uint32_t id = 0; id < n; id++) {
        size_t kl = make_key(id, k);
        kv_dict_entry *f = kv_dict_find(d, k, kl);
        if (id % 2 == 0) assert_null(f);
        else assert_non_null(f);
    }
    free(seen);
    kv_dict_free(d, NULL, NULL);
}

/* ---- empty, callbacks, layout ----------------------------------------- */

static void count_cb(void *ud, kv_dict_entry *e)
{
    (void)e;
    (*(size_t *)ud)++;
}

static void test_empty_and_layout(void **state)
{
    (void)state;
    kv_dict *d = kv_dict_new();
    for (uint32_t id = 0; id < 1000; id++) add_id(d, id);
    size_t cnt = 0;
    kv_dict_empty(d, count_cb, &cnt);
    assert_int_equal(cnt, 1000);
    assert_int_equal(kv_dict_size(d), 0);
    assert_int_equal(kv_dict_buckets(d), 0);
    assert_null(kv_dict_find(d, "x", 1));
    assert_null(kv_dict_unlink(d, "x", 1));
    /* reusable after empty */
    kv_dict_entry *e = kv_dict_insert(d, "x", 1, 8);
    assert_non_null(e);
    assert_null(kv_dict_insert(d, "x", 1, 8));
    int created;
    assert_ptr_equal(kv_dict_upsert(d, "x", 1, 8, &created), e);
    assert_false(created);
    /* layout: next, 1-byte klen, key, pad to 8, extra */
    assert_ptr_equal(kv_dict_entry_key(e), (char *)e + 9);
    assert_ptr_equal(kv_dict_entry_extra(e), (char *)e + 16);
    assert_int_equal(kv_dict_entry_alloc_size(1, 8), 24);
    assert_int_equal(kv_dict_entry_alloc_size(10, 0), 19);
    assert_int_equal(kv_dict_entry_alloc_size(16, 24), 24 + 24 + 8);
    assert_int_equal(kv_dict_entry_alloc_size(300, 8), 8 + 5 + 300 + 7 + 8);
    char big[300];
    memset(big, 'b', sizeof big);
    e = kv_dict_insert(d, big, sizeof big, 8);
    assert_int_equal(kv_dict_entry_klen(e), 300);
    assert_ptr_equal(kv_dict_entry_key(e), (char *)e + 13);
    assert_int_equal((uintptr_t)kv_dict_entry_extra(e) % 8, 0);
    assert_ptr_equal(kv_dict_find(d, big, sizeof big), e);
    assert_null(kv_dict_find(d, big, sizeof big - 1));
    cnt = 0;
    kv_dict_free(d, count_cb, &cnt);
    assert_int_equal(cnt, 2);
}

static void test_random_fair(void **state)
{
    (void)state;
    kv_dict *d = kv_dict_new();
    const uint32_t n = 500;
    for (uint32_t id = 0; id < n; id++) add_id(d, id);
    uint32_t *hits = calloc(n, sizeof *hits);
    const int draws = quick() ? 100000 : 500000;
    for (int i = 0; i < draws; i++) hits[entry_id(kv_dict_random(d))]++;
    uint32_t mn = UINT32_MAX, mx = 0;
    for (uint32_t id = 0; id < n; id++) {
        if (hits[id] < mn) mn = hits[id];
        if (hits[id] > mx) mx = hits[id];
    }
    double mean = (double)draws / n;
    assert_true(mn > mean / 4); /* every key reachable, none starved */
    assert_true(mx < mean * 4);
    /* sampling returns distinct present entries */
    kv_dict_entry *s[16];
    unsigned got = kv_dict_sample(d, s, 16);
    assert_true(got > 0);
    for (unsigned i = 0; i < got; i++)
        for (unsigned j = i + 1; j < got; j++) assert_ptr_not_equal(s[i], s[j]);
    free(hits);
    kv_dict_free(d, NULL, NULL);
}

int main(void)
{
    rs = 88172645463325252ULL;   /* this file's seed, as before testutil.h */
    kv_dict_set_seed(0x6b657679); /* reproducible runs */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_scan_static),
        cmocka_unit_test(test_scan_grow),
        cmocka_unit_test(test_scan_shrink),
        cmocka_unit_test(test_rehash_bounded),
        cmocka_unit_test(test_iter_delete),
        cmocka_unit_test(test_empty_and_layout),
        cmocka_unit_test(test_random_fair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
