/* Unit tests for the bitmap algorithms (shard/bitmap): each fast routine
 * against a bit-at-a-time model on random buffers, lengths and offsets,
 * including unaligned starts and the word fast paths; BITFIELD overflow
 * rules against exact 128-bit arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shard/bitmap.h"

#include "testutil.h"



static int getbit(const unsigned char *p, size_t len, uint64_t i)
{
    if ((i >> 3) >= len) return 0;
    return (p[i >> 3] >> (7 - (i & 7))) & 1;
}

/* Random bytes biased towards runs of 0x00 / 0xFF so the word skips and
 * their boundaries are exercised. */
static void fill(unsigned char *p, size_t n)
{
    int mode = (int)(rnd() % 4);
    for (size_t i = 0; i < n; i++) {
        switch (mode) {
        case 0: p[i] = (unsigned char)rnd(); break;
        case 1: p[i] = rnd() % 50 ? 0 : (unsigned char)rnd(); break;
        case 2: p[i] = rnd() % 50 ? 0xFF : (unsigned char)rnd(); break;
        default: p[i] = rnd() % 2 ? 0xFF : 0; break;
        }
    }
}

static void test_popcount(void **state)
{
    (void)state;
    unsigned char buf[600];
    int iters = quick() ? 300 : 3000;
    for (int it = 0; it < iters; it++) {
        size_t n = rnd() % 300, off = rnd() % 16;
        fill(buf + off, n);
        uint64_t want = 0;
        for (uint64_t i = 0; i < n * 8; i++) want += (uint64_t)getbit(buf + off, n, i);
        assert_int_equal(kv_bitmap_popcount(buf + off, n), want);
    }
    assert_int_equal(kv_bitmap_popcount(buf, 0), 0);
}

static void test_bitpos(void **state)
{
    (void)state;
    unsigned char buf[600];
    int iters = quick() ? 2000 : 20000;
    for (int it = 0; it < iters; it++) {
        size_t n = 1 + rnd() % 200, off = rnd() % 16;
        unsigned char *p = buf + off;
        fill(p, n);
        uint64_t first = rnd() % (n * 8), last = rnd() % (n * 8);
        if (rnd() % 4 == 0) first = 0, last = n * 8 - 1;
        int bit = (int)(rnd() & 1);
        int64_t want = -1;
        for (uint64_t i = first; i <= last && first <= last; i++)
            if (getbit(p, n, i) == bit) {
                want = (int64_t)i;
                break;
            }
        assert_int_equal(kv_bitmap_pos(p, first, last, bit), want);
    }
}

static void test_bitop(void **state)
{
    (void)state;
    unsigned char srcbuf[5][300], dst[300], want[300];
    int iters = quick() ? 500 : 5000;
    for (int it = 0; it < iters; it++) {
        size_t n = 1 + rnd() % 5, len[5], maxlen = 0;
        const unsigned char *src[5];
        kv_bitop_e op = (kv_bitop_e)(rnd() % 4);
        if (op == KV_BITOP_NOT) n = 1;
        for (size_t i = 0; i < n; i++) {
            len[i] = rnd() % 3 == 0 ? rnd() % 10 : rnd() % 300;
            fill(srcbuf[i], len[i]);
            src[i] = len[i] ? srcbuf[i] : NULL;
            if (len[i] > maxlen) maxlen = len[i];
        }
        for (size_t j = 0; j < maxlen; j++) {
            unsigned out = len[0] > j ? src[0][j] : 0;
            if (op == KV_BITOP_NOT) out = ~out;
            for (size_t i = 1; i < n; i++) {
                unsigned b = len[i] > j ? src[i][j] : 0;
                out = op == KV_BITOP_AND ? out & b : op == KV_BITOP_OR ? out | b : out ^ b;
            }
            want[j] = (unsigned char)out;
        }
        kv_bitmap_op(op, dst, maxlen, src, len, n);
        if (maxlen) assert_memory_equal(dst, want, maxlen);
    }
}

static uint64_t model_get_u(const unsigned char *p, size_t len, uint64_t off, int bits)
{
    uint64_t v = 0;
    for (int j = 0; j < bits; j++) v = (v << 1) | (uint64_t)getbit(p, len, off + (uint64_t)j);
    return v;
}

static void test_bitfield_getset(void **state)
{
    (void)state;
    unsigned char buf[64], model[64];
    int iters = quick() ? 5000 : 50000;
    for (int it = 0; it < iters; it++) {
        size_t len = rnd() % 40;
        fill(buf, sizeof(buf));
        int bits = 1 + (int)(rnd() % 64);
        uint64_t off = rnd() % (len * 8 + 80);
        uint64_t u = kv_bitfield_get_u(buf, len, off, bits);
        assert_int_equal(u, model_get_u(buf, len, off, bits));
        int64_t i = kv_bitfield_get_i(buf, len, off, bits);
        uint64_t sign = bits < 64 ? (u >> (bits - 1)) & 1 : 0;
        uint64_t ext = sign ? u | (UINT64_MAX << bits) : u;
        assert_int_equal((uint64_t)i, ext);

        /* set within a 64-byte buffer */
        off = rnd() % (64 * 8 - 64);
        uint64_t v = rnd();
        memcpy(model, buf, sizeof(buf));
        for (int j = 0; j < bits; j++) {
            uint64_t at = off + (uint64_t)j;
            int b = (int)((v >> (bits - 1 - j)) & 1);
            model[at >> 3] = (unsigned char)((model[at >> 3] & ~(1u << (7 - (at & 7)))) |
                                             ((unsigned)b << (7 - (at & 7))));
        }
        kv_bitfield_set(buf, off, bits, v);
        assert_memory_equal(buf, model, sizeof(buf));
        uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        assert_int_equal(kv_bitfield_get_u(buf, sizeof(buf), off, bits), v & mask);
    }
}

typedef __int128 i128;

static int64_t rnd_i64_near(int bits)
{
    int64_t max = bits == 64 ? INT64_MAX : (int64_t)((UINT64_C(1) << (bits - 1)) - 1);
    switch (rnd() % 5) {
    case 0: return (int64_t)rnd();
    case 1: return max - (int64_t)(rnd() % 4);
    case 2: return -max - 1 + (int64_t)(rnd() % 4);
    case 3: return (int64_t)(rnd() % 7) - 3;
    default: return bits == 64 || max == 0 ? (int64_t)rnd() : (int64_t)(rnd() % (uint64_t)max) * (rnd() % 2 ? 1 : -1);
    }
}

static void test_bitfield_overflow(void **state)
{
    (void)state;
    int iters = quick() ? 20000 : 200000;
    for (int it = 0; it < iters; it++) {
        int bits = 1 + (int)(rnd() % 64);
        kv_bf_overflow_e ow = rnd() % 2 ? KV_BF_SAT : KV_BF_WRAP;
        /* signed: value is a field value (in range) or, as SET does, any
         * int64 with incr 0 */
        int64_t max = bits == 64 ? INT64_MAX : (int64_t)((UINT64_C(1) << (bits - 1)) - 1), min = -max - 1;
        int64_t value, incr, res = 0;
        if (rnd() % 3 == 0) {
            value = rnd_i64_near(64), incr = 0;
        } else {
            value = rnd_i64_near(bits);
            if (value > max) value = max;
            if (value < min) value = min;
            incr = rnd_i64_near(rnd() % 2 ? 64 : bits);
        }
        i128 sum = (i128)value + incr;
        int want = sum > max ? 1 : sum < min ? -1 : 0;
        /* Redis's quirk: for a fixed-width field, max - value wrapping
         * past INT64_MAX reads as an overflow, not an underflow. */
        if (bits < 64 && (i128)max - value > INT64_MAX && incr <= 0) want = 1;
        int got = kv_bitfield_check_i(value, incr, bits, ow, &res);
        assert_int_equal(got, want);
        if (want && ow == KV_BF_SAT) assert_int_equal(res, want > 0 ? max : min);
        if (want && ow == KV_BF_WRAP) {
            uint64_t m = (uint64_t)sum;
            if (bits < 64) {
                m &= (UINT64_C(1) << bits) - 1;
                if ((m >> (bits - 1)) & 1) m |= UINT64_MAX << bits;
            }
            assert_int_equal((uint64_t)res, m);
        }

        /* unsigned (u1..u63) */
        int ubits = 1 + (int)(rnd() % 63);
        uint64_t umax = (UINT64_C(1) << ubits) - 1, uv, ures = 0;
        int64_t uincr;
        if (rnd() % 3 == 0) {
            uv = (uint64_t)rnd_i64_near(64), uincr = 0; /* SET of any int64 */
        } else {
            uv = rnd() & umax;
            uincr = rnd_i64_near(rnd() % 2 ? 64 : ubits);
        }
        i128 usum = (i128)uv + uincr;
        int uwant = (uv > umax || usum > (i128)umax) ? 1 : usum < 0 ? -1 : 0;
        got = kv_bitfield_check_u(uv, uincr, ubits, ow, &ures);
        assert_int_equal(got, uwant);
        if (uwant && ow == KV_BF_SAT) assert_int_equal(ures, uwant > 0 ? umax : 0);
        if (uwant && ow == KV_BF_WRAP) assert_int_equal(ures, (uint64_t)usum & umax);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_popcount),
        cmocka_unit_test(test_bitpos),
        cmocka_unit_test(test_bitop),
        cmocka_unit_test(test_bitfield_getset),
        cmocka_unit_test(test_bitfield_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
