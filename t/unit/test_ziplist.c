/* Unit tests for the ziplist reader (persist/ziplist): every entry
 * encoding decodes to the value written (a small encoder here follows
 * Redis's ziplist.c), the validator accepts what it should and rejects
 * broken links, tails and counts, and random corruption never reads out
 * of bounds (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "persist/ziplist.h"

#include "testutil.h"

typedef struct { int is_int; long long ll; const char *s; size_t n; } ent;

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Encode entries as Redis's ziplist would; returns the size. */
static size_t build(unsigned char *zl, const ent *e, size_t n)
{
    size_t off = KV_ZL_HDR_SIZE, prev = 0, last = KV_ZL_HDR_SIZE;
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = zl + off;
        size_t h = 0;
        last = off;
        if (prev < 254) p[h++] = (unsigned char)prev;
        else p[h++] = 0xFE, put32(p + h, (uint32_t)prev), h += 4;
        if (e[i].is_int) {
            long long v = e[i].ll;
            if (v >= 0 && v <= 12) p[h++] = (unsigned char)(0xF1 + v);
            else if (v >= -128 && v <= 127) p[h++] = 0xFE, p[h++] = (unsigned char)v;
            else if (v >= -32768 && v <= 32767) p[h++] = 0xC0, p[h++] = (unsigned char)v, p[h++] = (unsigned char)(v >> 8);
            else if (v >= -8388608 && v <= 8388607) {
                p[h++] = 0xF0;
                for (int k = 0; k < 3; k++) p[h++] = (unsigned char)(v >> (8 * k));
            } else if (v >= INT32_MIN && v <= INT32_MAX) {
                p[h++] = 0xD0, put32(p + h, (uint32_t)v), h += 4;
            } else {
                p[h++] = 0xE0;
                for (int k = 0; k < 8; k++) p[h++] = (unsigned char)((unsigned long long)v >> (8 * k));
            }
        } else {
            size_t l = e[i].n;
            if (l < 64) p[h++] = (unsigned char)l;
            else if (l < 16384) p[h++] = (unsigned char)(0x40 | (l >> 8)), p[h++] = (unsigned char)l;
            else {
                p[h++] = 0x80;
                for (int k = 3; k >= 0; k--) p[h++] = (unsigned char)(l >> (8 * k));
            }
            memcpy(p + h, e[i].s, l);
            h += l;
        }
        off += h, prev = h;
    }
    zl[off++] = 0xFF;
    put32(zl, (uint32_t)off);
    put32(zl + 4, (uint32_t)last);
    zl[8] = (unsigned char)(n < 65535 ? n : 65535), zl[9] = (unsigned char)((n < 65535 ? n : 65535) >> 8);
    return off;
}

static void test_roundtrip(void **state)
{
    (void)state;
    static unsigned char zl[1 << 20];
    static char text[20000];
    static const long long ints[] = { 0, 12, 13, -1, -128, 127, 128, -32768, 32767, 32768,
                                      -8388608, 8388607, 8388608, INT32_MIN, INT32_MAX,
                                      (long long)INT32_MAX + 1, INT64_MIN, INT64_MAX };
    memset(text, 'q', sizeof(text));
    int rounds = quick() ? 200 : 2000;
    for (int r = 0; r < rounds; r++) {
        ent e[64];
        size_t n = rnd() % 64;
        for (size_t i = 0; i < n; i++) {
            e[i].is_int = (int)(rnd() % 2);
            e[i].ll = ints[rnd() % 18];
            e[i].s = text;
            e[i].n = rnd() % 3 == 0 ? rnd() % 20000 : rnd() % 300;
        }
        size_t sz = build(zl, e, n), cnt;
        assert_true(kv_zl_validate(zl, sz, &cnt));
        assert_int_equal(cnt, n);
        size_t i = 0;
        for (const unsigned char *p = kv_zl_first(zl); p; p = kv_zl_next(p), i++) {
            kv_zl_val v;
            kv_zl_get(p, &v);
            if (e[i].is_int) {
                assert_null(v.s);
                assert_int_equal(v.ll, e[i].ll);
            } else {
                assert_non_null(v.s);
                assert_int_equal(v.len, e[i].n);
                assert_memory_equal(v.s, text, v.len);
            }
        }
        assert_int_equal(i, n);
        /* corruption: flips and truncations fail cleanly or stay walkable */
        for (int k = 0; k < 20 && sz > 11; k++) {
            size_t len = sz;
            unsigned char *c = malloc(sz);
            memcpy(c, zl, sz);
            if (k % 3 == 0) len = rnd() % sz;
            else c[rnd() % sz] ^= (unsigned char)(1 << (rnd() % 8));
            if (kv_zl_validate(c, len, &cnt)) {
                size_t w = 0;
                for (const unsigned char *p = kv_zl_first(c); p; p = kv_zl_next(p)) {
                    kv_zl_val v;
                    kv_zl_get(p, &v);
                    w++;
                }
                assert_int_equal(w, cnt);
            }
            free(c);
        }
    }
}

static void test_reject(void **state)
{
    (void)state;
    unsigned char zl[64];
    ent e[2] = { { 0, 0, "ab", 2 }, { 1, 5, NULL, 0 } };
    size_t sz = build(zl, e, 2);
    assert_true(kv_zl_validate(zl, sz, NULL));
    assert_false(kv_zl_validate(zl, sz - 1, NULL)); /* zlbytes mismatch */
    zl[8] = 3;                                      /* wrong count */
    assert_false(kv_zl_validate(zl, sz, NULL));
    zl[8] = 0xFF, zl[9] = 0xFF;                     /* unknown count is fine */
    assert_true(kv_zl_validate(zl, sz, NULL));
    zl[4] = 10;                                     /* tail not at the last entry */
    assert_false(kv_zl_validate(zl, sz, NULL));
    sz = build(zl, e, 2);
    zl[KV_ZL_HDR_SIZE + 4] = 9;                     /* second entry's prevlen */
    assert_false(kv_zl_validate(zl, sz, NULL));
    sz = build(zl, e, 2);
    zl[KV_ZL_HDR_SIZE + 5] = 0xC1;                  /* not an encoding */
    assert_false(kv_zl_validate(zl, sz, NULL));
    sz = build(zl, NULL, 0);
    assert_true(kv_zl_validate(zl, sz, NULL));
    assert_null(kv_zl_first(zl));
}

int main(void)
{
    rs = 0x1234567887654321ULL;   /* this file's seed, as before testutil.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_reject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
