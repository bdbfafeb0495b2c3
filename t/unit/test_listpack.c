/* Unit tests for the Redis-format listpack (shard/listpack): randomized
 * append/insert/replace/delete against an array model, walking both ways,
 * seek, the integer encodings at every boundary, exact bytes of known
 * blobs, and validation of corrupted and random input (run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shard/listpack.h"

#include "testutil.h"



/* A random element: integers near every encoding boundary, short, 12-bit
 * and 32-bit-length strings, non-canonical numbers. */
static size_t make_elem(char *buf)
{
    static const long long edges[] = { 0, 1, 127, 128, -1, -4096, 4095, -4097, 4096, 32767,
                                       -32768, 32768, 8388607, -8388608, 8388608, 2147483647,
                                       -2147483648LL, 2147483648LL, INT64_MAX, INT64_MIN };
    switch (rnd() % 6) {
    case 0: return (size_t)sprintf(buf, "%lld", edges[rnd() % (sizeof edges / sizeof *edges)]);
    case 1: return (size_t)sprintf(buf, "%lld", (long long)rnd());
    case 2: return (size_t)sprintf(buf, "0%d", (int)(rnd() % 100)); /* not canonical */
    case 3: {
        size_t n = rnd() % 64;
        for (size_t i = 0; i < n; i++) buf[i] = (char)rnd();
        return n;
    }
    case 4: {
        size_t n = 64 + rnd() % 4100;
        memset(buf, 'a' + (int)(rnd() % 26), n);
        return n;
    }
    default: {
        size_t n = rnd() % 3 ? 4096 + rnd() % 100 : 70000;
        memset(buf, 'z', n);
        buf[0] = (char)rnd();
        return n;
    }
    }
}

typedef struct {
    char *s;
    size_t n;
} elem;

static void check(const unsigned char *lp, const elem *m, size_t n)
{
    size_t cnt;
    assert_true(kv_lp_validate(lp, kv_lp_bytes(lp), &cnt));
    assert_int_equal(cnt, n);
    assert_int_equal(kv_lp_count(lp), n);
    unsigned char *p = kv_lp_first(lp);
    for (size_t i = 0; i < n; i++, p = kv_lp_next(lp, p)) {
        assert_non_null(p);
        assert_true(kv_lp_eq(p, m[i].s, m[i].n));
        kv_lp_val v;
        char buf[KV_LP_INTBUF];
        size_t l;
        kv_lp_get(p, &v);
        const char *s = kv_lp_val_str(&v, buf, &l);
        assert_int_equal(l, m[i].n);
        assert_memory_equal(s, m[i].s, l);
    }
    assert_null(p);
    p = kv_lp_last(lp);
    for (size_t i = n; i-- > 0; p = kv_lp_prev(lp, p)) assert_true(kv_lp_eq(p, m[i].s, m[i].n));
    assert_null(p);
    if (n) {
        size_t i = rnd() % n;
        assert_true(kv_lp_eq(kv_lp_seek(lp, (long)i), m[i].s, m[i].n));
        assert_true(kv_lp_eq(kv_lp_seek(lp, -(long)(n - i)), m[i].s, m[i].n));
    }
    assert_null(kv_lp_seek(lp, (long)n));
}

static void test_random_ops(void **state)
{
    (void)state;
    char *buf = malloc(80000);
    elem *m = calloc(600, sizeof *m);
    int rounds = quick() ? 4000 : 40000;
    for (int r = 0; r < 20; r++) {
        unsigned char *lp = kv_lp_new();
        size_t n = 0;
        for (int op = 0; op < rounds / 20; op++) {
            int what = (int)(rnd() % 4);
            if (n == 0 || (what == 0 && n < 590)) {
                size_t l = make_elem(buf);
                size_t at = n ? rnd() % (n + 1) : 0;
                unsigned char *p = at == n ? NULL : kv_lp_seek(lp, (long)at), *np;
                lp = kv_lp_insert(lp, p, buf, l, &np);
                assert_true(kv_lp_eq(np, buf, l));
                memmove(m + at + 1, m + at, (n - at) * sizeof *m);
                m[at].s = malloc(l ? l : 1), m[at].n = l;
                memcpy(m[at].s, buf, l);
                n++;
            } else if (what == 1) {
                size_t l = make_elem(buf), at = rnd() % n;
                unsigned char *p = kv_lp_seek(lp, (long)at);
                lp = kv_lp_replace(lp, &p, buf, l);
                assert_true(kv_lp_eq(p, buf, l));
                free(m[at].s);
                m[at].s = malloc(l ? l : 1), m[at].n = l;
                memcpy(m[at].s, buf, l);
            } else if (what == 2) {
                size_t at = rnd() % n, k = 1 + rnd() % 3;
                if (k > n - at) k = n - at;
                unsigned char *p = kv_lp_seek(lp, (long)at);
                lp = kv_lp_delete(lp, &p, k);
                for (size_t i = 0; i < k; i++) free(m[at + i].s);
                memmove(m + at, m + at + k, (n - at - k) * sizeof *m);
                n -= k;
                if (at < n) assert_true(kv_lp_eq(p, m[at].s, m[at].n));
                else assert_null(p);
            } else {
                size_t at = rnd() % n;
                unsigned char *p = kv_lp_find(lp, kv_lp_first(lp), m[at].s, m[at].n, 0);
                assert_non_null(p);
                assert_true(kv_lp_eq(p, m[at].s, m[at].n));
            }
            if (op % 7 == 0) check(lp, m, n);
        }
        check(lp, m, n);
        unsigned char *d = kv_lp_dup(lp);
        assert_memory_equal(d, lp, kv_lp_bytes(lp));
        free(d);
        for (size_t i = 0; i < n; i++) free(m[i].s);
        free(lp);
    }
    free(m);
    free(buf);
}

/* Known bytes (from redis-server 7.0: DUMP of HSET k a 1 -5 hello 1000000 ""): ["a", "1", "-5", "hello",
 * "1000000", ""] */
static void test_known_bytes(void **state)
{
    (void)state;
    static const unsigned char want[] = {
        0x1d, 0, 0, 0, 6, 0, 0x81, 'a', 2, 0x01, 1, 0xdf, 0xfb, 2, 0x85, 'h', 'e', 'l',
        'l', 'o', 6, 0xf2, 0x40, 0x42, 0x0f, 4, 0x80, 1, 0xff,
    };
    unsigned char *lp = kv_lp_new();
    const char *e[] = { "a", "1", "-5", "hello", "1000000", "" };
    for (int i = 0; i < 6; i++) lp = kv_lp_append(lp, e[i], strlen(e[i]));
    assert_int_equal(kv_lp_bytes(lp), sizeof want);
    assert_memory_equal(lp, want, sizeof want);
    lp = kv_lp_append_int(lp, -1);
    unsigned char *p = kv_lp_last(lp);
    kv_lp_val v;
    kv_lp_get(p, &v);
    assert_null(v.s);
    assert_int_equal(v.ll, -1);
    free(lp);
}

static void test_validate_fuzz(void **state)
{
    (void)state;
    unsigned char buf[512];
    int rounds = quick() ? 20000 : 200000;
    /* random bytes with a plausible header */
    for (int r = 0; r < rounds; r++) {
        size_t n = 7 + rnd() % 60;
        for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)rnd();
        if (rnd() % 2) {
            buf[0] = (unsigned char)n, buf[1] = buf[2] = buf[3] = 0;
            buf[n - 1] = 0xFF;
        }
        size_t cnt;
        if (kv_lp_validate(buf, n, &cnt)) { /* then every walk must stay inside */
            unsigned char *c = malloc(n);
            memcpy(c, buf, n);
            for (unsigned char *p = kv_lp_first(c); p; p = kv_lp_next(c, p)) {
                kv_lp_val v;
                kv_lp_get(p, &v);
            }
            for (unsigned char *p = kv_lp_last(c); p; p = kv_lp_prev(c, p)) continue;
            free(c);
        }
    }
    /* single-byte corruptions of a valid blob */
    unsigned char *lp = kv_lp_new();
    const char *e[] = { "a", "12345", "-70000", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
    for (int i = 0; i < 4; i++) lp = kv_lp_append(lp, e[i], strlen(e[i]));
    size_t n = kv_lp_bytes(lp);
    for (size_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            memcpy(buf, lp, n);
            buf[i] ^= (unsigned char)(1 << b);
            kv_lp_validate(buf, n, NULL);
        }
    }
    for (size_t cut = 0; cut < n; cut++) assert_false(kv_lp_validate(lp, cut, NULL));
    free(lp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_bytes),
        cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_validate_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
