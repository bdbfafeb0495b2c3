/* Unit tests for the HyperLogLog core (shard/hll_core): 6-bit register
 * access against a byte array, sparse updates against a model of the
 * registers (through promotions at several hll-sparse-max-bytes values),
 * sparse -> dense conversion, merge, corrupt-data detection, estimate
 * error on random elements, and exact counts and bytes recorded from
 * redis-server 7.0 for the same inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shard/hll_core.h"

#include "testutil.h"



static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static kv_hll_buf new_sparse(void)
{
    kv_hll_buf b = { malloc(64), KV_HLL_EMPTY_SIZE, 64, 1 };
    assert_non_null(b.p);
    kv_hll_init(b.p);
    return b;
}

/* The registers of any HLL, through the merge path. */
static void registers(const kv_hll_buf *b, uint8_t *regs)
{
    memset(regs, 0, KV_HLL_REGISTERS);
    assert_int_equal(kv_hll_merge(regs, b->p, b->len), 0);
}

static void test_registers(void **state)
{
    (void)state;
    static uint8_t dense[KV_HLL_DENSE_SIZE], model[KV_HLL_REGISTERS];
    int cycles = quick() ? 5 : 50;
    for (int c = 0; c < cycles; c++) {
        for (long i = 0; i < KV_HLL_REGISTERS; i++) {
            model[i] = (uint8_t)(rnd() & 63);
            kv_hll_dense_set(dense + KV_HLL_HDR_SIZE, i, model[i]);
        }
        /* rewrite a few at random: neighbours must not be disturbed */
        for (int k = 0; k < 1000; k++) {
            long i = (long)(rnd() % KV_HLL_REGISTERS);
            model[i] = (uint8_t)(rnd() & 63);
            kv_hll_dense_set(dense + KV_HLL_HDR_SIZE, i, model[i]);
        }
        for (long i = 0; i < KV_HLL_REGISTERS; i++)
            assert_int_equal(kv_hll_dense_get(dense + KV_HLL_HDR_SIZE, i), model[i]);
    }
}

static void test_empty(void **state)
{
    (void)state;
    uint8_t e[KV_HLL_EMPTY_SIZE];
    kv_hll_init(e);
    assert_memory_equal(e, "HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff", KV_HLL_EMPTY_SIZE);
    assert_true(kv_hll_valid(e, sizeof e));
    int inv = 0;
    assert_int_equal(kv_hll_count(e, sizeof e, &inv), 0);
    assert_int_equal(inv, 0);
    char out[64];
    size_t n = kv_hll_decode(e, sizeof e, out);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "Z:16384", 7);
}

/* Random register updates on a sparse HLL, checked against a model after
 * every change; promotion to dense happens at the configured size. */
static void test_sparse_model(void **state)
{
    (void)state;
    static const size_t maxb[] = { 0, 40, 300, 3000, 100000 };
    static uint8_t model[KV_HLL_REGISTERS], regs[KV_HLL_REGISTERS];
    int rounds = quick() ? 4 : 20;
    for (size_t m = 0; m < sizeof maxb / sizeof maxb[0]; m++) {
        kv_hll_set_sparse_max_bytes(maxb[m]);
        for (int r = 0; r < rounds; r++) {
            kv_hll_buf b = new_sparse();
            memset(model, 0, sizeof model);
            int nset = (int)(rnd() % (quick() ? 1500 : 4000)), clustered = r & 1;
            long base = (long)(rnd() % KV_HLL_REGISTERS);
            for (int k = 0; k < nset; k++) {
                /* clustered indexes build runs of VALs that merge */
                long i = clustered ? (base + (long)(rnd() % 200)) % KV_HLL_REGISTERS
                                   : (long)(rnd() % KV_HLL_REGISTERS);
                unsigned v = 1 + (unsigned)(rnd() % (rnd() % 50 ? 6 : 40));
                int was_sparse = b.p[4] == KV_HLL_SPARSE;
                int ch = kv_hll_set(&b, i, v);
                assert_int_equal(ch, v > model[i]);
                if (v > model[i]) model[i] = (uint8_t)v;
                if (was_sparse && b.p[4] == KV_HLL_SPARSE) {
                    assert_true(b.len <= (maxb[m] > KV_HLL_EMPTY_SIZE ? maxb[m] : KV_HLL_EMPTY_SIZE) ||
                                !ch);
                    if (ch) assert_false(kv_hll_cache_valid(b.p));
                }
                if (b.p[4] == KV_HLL_DENSE) assert_int_equal(b.len, KV_HLL_DENSE_SIZE);
                if (k % 97 == 0 || k == nset - 1) {
                    registers(&b, regs);
                    assert_memory_equal(regs, model, KV_HLL_REGISTERS);
                    int inv = 0;
                    uint64_t c1 = kv_hll_count(b.p, b.len, &inv);
                    assert_int_equal(inv, 0);
                    assert_int_equal(c1, kv_hll_count_raw(model));
                }
            }
            /* explicit conversion keeps registers, header and count */
            uint8_t hdr[KV_HLL_HDR_SIZE];
            memcpy(hdr, b.p, sizeof hdr);
            uint64_t before = kv_hll_count(b.p, b.len, NULL);
            assert_int_equal(kv_hll_to_dense(&b), 0);
            assert_int_equal(b.len, KV_HLL_DENSE_SIZE);
            assert_int_equal(b.p[4], KV_HLL_DENSE);
            assert_memory_equal(b.p + 5, hdr + 5, KV_HLL_HDR_SIZE - 5);
            registers(&b, regs);
            assert_memory_equal(regs, model, KV_HLL_REGISTERS);
            assert_int_equal(kv_hll_count(b.p, b.len, NULL), before);
            free(b.p);
        }
    }
    kv_hll_set_sparse_max_bytes(3000);
}

static void test_corrupt(void **state)
{
    (void)state;
    uint8_t regs[KV_HLL_REGISTERS];
    static const struct {
        const char *data;
        size_t len;
    } bad[] = {
        { "HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xfe", 18 },         /* 16383 registers */
        { "HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff\x80", 19 },     /* 16385 */
        { "HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f", 17 },             /* truncated XZERO */
        { "HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80", 16 },                 /* nothing */
        { "HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff\x00\x7f\xff", 21 }, /* zeros past the end */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const uint8_t *p = (const uint8_t *)bad[k].data;
        assert_true(kv_hll_valid(p, bad[k].len));
        int inv = 0;
        kv_hll_count(p, bad[k].len, &inv);
        assert_int_equal(inv, 1);
        memset(regs, 0, sizeof regs);
        assert_int_equal(kv_hll_merge(regs, p, bad[k].len), -1);
        kv_hll_buf b = { malloc(bad[k].len + 1), bad[k].len, bad[k].len + 1, 1 };
        memcpy(b.p, p, bad[k].len);
        assert_int_equal(kv_hll_to_dense(&b), -1);
        assert_int_equal(b.len, bad[k].len); /* untouched */
        assert_memory_equal(b.p, p, bad[k].len);
        free(b.p);
    }
    /* header checks */
    uint8_t d[KV_HLL_DENSE_SIZE] = "HYLL";
    assert_true(kv_hll_valid(d, sizeof d));
    assert_false(kv_hll_valid(d, sizeof d - 1));
    assert_false(kv_hll_valid((const uint8_t *)"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0\x7f\xff", 18));
    assert_false(kv_hll_valid((const uint8_t *)"HYLX\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff", 18));
    assert_false(kv_hll_valid((const uint8_t *)"HYLL\x01", 5));
    /* setting a register beyond the covered ones is an error */
    kv_hll_buf b = { malloc(32), 18, 32, 1 };
    memcpy(b.p, bad[0].data, 18);
    assert_int_equal(kv_hll_set(&b, KV_HLL_REGISTERS - 1, 3), -1);
    assert_int_equal(kv_hll_set(&b, 5, 3), 1);
    free(b.p);
}

/* Counts and bytes recorded from redis-server 7.0.15: PFADD key e0 ...
 * e<n-1>, then PFCOUNT key (which stores the cache), then GET key. */
static void test_redis_recorded(void **state)
{
    (void)state;
    static const struct {
        long n;
        uint64_t count;
        size_t len;
        uint64_t fnv;
    } rec[] = {
        { 1, 1, 21, 0x546d16fdfd2c805aULL },
        { 2, 2, 24, 0x0487415237f99c33ULL },
        { 10, 10, 48, 0xd06c25fbeaa23420ULL },
        { 100, 100, 285, 0x40dec5e3b1513cfaULL },
        { 500, 506, 1068, 0x4785b546f1b4a8cbULL },
        { 1000, 1008, 1906, 0x4ded8ea0046b668dULL },
        { 3000, 2979, 12304, 0xb581fa7fa1f68d1cULL },
        { 10000, 9973, 12304, 0x91141a0852dc0034ULL },
        { 100000, 100853, 12304, 0xfd1fc23694773e63ULL },
        { 1000000, 991657, 12304, 0x26781802e035ca9bULL },
    };
    kv_hll_set_sparse_max_bytes(3000);
    kv_hll_buf b = new_sparse();
    long added;
    char ele[32];
    for (size_t k = 0; k < sizeof rec / sizeof rec[0]; k++) {
        if (quick() && rec[k].n > 100000) break;
        /* each record is its own key in Redis: start over */
        free(b.p);
        b = new_sparse();
        for (added = 0; added < rec[k].n; added++) {
            int n = snprintf(ele, sizeof ele, "e%ld", added);
            assert_true(kv_hll_add(&b, ele, (size_t)n) >= 0);
        }
        int inv = 0;
        uint64_t card = kv_hll_count(b.p, b.len, &inv);
        assert_int_equal(inv, 0);
        assert_int_equal(card, rec[k].count);
        kv_hll_cache_set(b.p, card);
        assert_int_equal(b.len, rec[k].len);
        assert_int_equal(fnv(b.p, b.len), rec[k].fnv);
    }
    free(b.p);
    /* the whole value of a small one, as GET returned it */
    b = new_sparse();
    const char *els[] = { "a", "b", "c", "hello", "world" };
    for (int i = 0; i < 5; i++) kv_hll_add(&b, els[i], strlen(els[i]));
    assert_int_equal(b.len, 33);
    assert_memory_equal(b.p,
                        "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"
                        "J\xb5\x88V<\x80"
                        "C\n\x80M\xa5\x84K\xfb\x80"
                        "BZ",
                        33);
    free(b.p);
}

/* The estimate stays within Redis's error on random elements, and sparse
 * and dense agree while both exist. */
static void test_error(void **state)
{
    (void)state;
    long total = quick() ? 100000 : 1000000;
    static uint8_t dense_mem[KV_HLL_DENSE_SIZE + 1];
    memset(dense_mem, 0, sizeof dense_mem);
    memcpy(dense_mem, "HYLL", 4);
    kv_hll_buf d = { dense_mem, KV_HLL_DENSE_SIZE, KV_HLL_DENSE_SIZE, 0 };
    kv_hll_buf s = new_sparse();
    double worst = 0;
    for (long j = 1; j <= total; j++) {
        uint64_t ele[2] = { rnd(), (uint64_t)j };
        int a = kv_hll_add(&d, ele, sizeof ele), b = kv_hll_add(&s, ele, sizeof ele);
        assert_int_equal(a, b);
        if (j % 997 == 0 || j == total || j < 100) {
            uint64_t cd = kv_hll_count(d.p, d.len, NULL), cs = kv_hll_count(s.p, s.len, NULL);
            assert_int_equal(cd, cs);
            double err = ((double)cd - (double)j) / (double)j;
            if (err < 0) err = -err;
            if (j >= 1000 && err > worst) worst = err;
            /* 0.81% standard error: 5 sigma */
            assert_true(j < 100 ? err <= 0.02 : err <= 0.05);
        }
    }
    assert_true(worst < 0.05);
    free(s.p);
    const char *why = NULL;
    assert_int_equal(kv_hll_selftest(&why), 0);
}

static void test_decode(void **state)
{
    (void)state;
    kv_hll_buf b = new_sparse();
    /* registers 1000 = 2, 1020..1021 = 3: the example of Redis's docs */
    kv_hll_set(&b, 1000, 2);
    kv_hll_set(&b, 1020, 3);
    kv_hll_set(&b, 1021, 3);
    char out[256];
    size_t n = kv_hll_decode(b.p, b.len, out);
    out[n] = 0;
    assert_string_equal(out, "Z:1000 v:2,1 z:19 v:3,2 Z:15362");
    assert_int_equal(b.len, KV_HLL_HDR_SIZE + 7);
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registers),      cmocka_unit_test(test_empty),
        cmocka_unit_test(test_sparse_model),   cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_redis_recorded), cmocka_unit_test(test_error),
        cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
