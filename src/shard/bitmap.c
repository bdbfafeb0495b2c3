/* Bitmap algorithms (see bitmap.h). */
#include <string.h>

#include "shard/bitmap.h"

/* Unaligned 64-bit load; memcpy keeps it defined behaviour (and UBSan
 * quiet) and compiles to a single load. */
static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline void store64(unsigned char *p, uint64_t w) { memcpy(p, &w, 8); }

/* ---- popcount -------------------------------------------------------- */

/* Four independent accumulators so the popcounts of one step do not wait
 * on each other. */
#define KV_POPCOUNT_BODY                                                       \
    const unsigned char *s = p;                                                \
    uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;                                   \
    while (n >= 32) {                                                          \
        c0 += (uint64_t) __builtin_popcountll(load64(s));                      \
        c1 += (uint64_t) __builtin_popcountll(load64(s + 8));                  \
        c2 += (uint64_t) __builtin_popcountll(load64(s + 16));                 \
        c3 += (uint64_t) __builtin_popcountll(load64(s + 24));                 \
        s += 32, n -= 32;                                                      \
    }                                                                          \
    while (n >= 8) c0 += (uint64_t) __builtin_popcountll(load64(s)), s += 8, n -= 8; \
    while (n--) c0 += (uint64_t) __builtin_popcount(*s++);                     \
    return c0 + c1 + c2 + c3;

static uint64_t popcount_generic(const void *p, size_t n) { KV_POPCOUNT_BODY }

#if defined(__x86_64__) && defined(__GNUC__)
/* The baseline x86-64 target has no POPCNT instruction, so the builtin
 * becomes a libgcc call; compile a second copy for CPUs that have it and
 * pick one at run time (as Redis does). */
__attribute__((target("popcnt"))) static uint64_t popcount_hw(const void *p, size_t n)
{
    KV_POPCOUNT_BODY
}

uint64_t kv_bitmap_popcount(const void *p, size_t n)
{
    static int hw = -1; /* racy first use is harmless: same answer */
    if (hw < 0) hw = __builtin_cpu_supports("popcnt") ? 1 : 0;
    return hw ? popcount_hw(p, n) : popcount_generic(p, n);
}
#else
uint64_t kv_bitmap_popcount(const void *p, size_t n) { return popcount_generic(p, n); }
#endif

/* ---- bitpos ---------------------------------------------------------- */

int64_t kv_bitmap_pos(const void *vp, uint64_t first, uint64_t last, int bit)
{
    const unsigned char *p = vp;
    /* Search for a 1 in (byte ^ flip): looking for 0 is looking for a 1 in
     * the complement. */
    const unsigned char flip = bit ? 0 : 0xFF;
    const uint64_t skip = bit ? 0 : UINT64_MAX;
    uint64_t fb = first >> 3, lb = last >> 3, b = fb;

    if (first > last) return -1;
    while (b <= lb) {
        /* Whole words strictly inside the range, where no mask applies. */
        if (b > fb && lb - b > 8) {
            while (lb - b > 8 && load64(p + b) == skip) b += 8;
        }
        unsigned v = (unsigned char) (p[b] ^ flip);
        if (b == fb) v &= 0xFFu >> (first & 7);
        if (b == lb) v &= (0xFF00u >> ((last & 7) + 1)) & 0xFF;
        if (v) return (int64_t) (b * 8 + (uint64_t) (__builtin_clz(v) - 24));
        b++;
    }
    return -1;
}

/* ---- bitop ----------------------------------------------------------- */

void kv_bitmap_op(kv_bitop_e op, unsigned char *dst, size_t maxlen, const unsigned char *const *src,
                  const size_t *len, size_t n)
{
    size_t minlen = maxlen, j = 0;
    for (size_t i = 0; i < n; i++)
        if (len[i] < minlen) minlen = len[i];
    if (op == KV_BITOP_NOT) minlen = len[0] < maxlen ? len[0] : maxlen;

    /* Fast path: a word at a time while every source has bytes left. */
    for (; j + 8 <= minlen; j += 8) {
        uint64_t w = load64(src[0] + j);
        switch (op) {
        case KV_BITOP_AND:
            for (size_t i = 1; i < n; i++) w &= load64(src[i] + j);
            break;
        case KV_BITOP_OR:
            for (size_t i = 1; i < n; i++) w |= load64(src[i] + j);
            break;
        case KV_BITOP_XOR:
            for (size_t i = 1; i < n; i++) w ^= load64(src[i] + j);
            break;
        case KV_BITOP_NOT: w = ~w; break;
        }
        store64(dst + j, w);
    }
    /* The tail, where shorter sources read as zero bytes. */
    for (; j < maxlen; j++) {
        unsigned char out = len[0] > j ? src[0][j] : 0;
        if (op == KV_BITOP_NOT) {
            dst[j] = (unsigned char) ~out;
            continue;
        }
        for (size_t i = 1; i < n; i++) {
            unsigned char b = len[i] > j ? src[i][j] : 0;
            if (op == KV_BITOP_AND) out &= b;
            else if (op == KV_BITOP_OR) out |= b;
            else out ^= b;
        }
        dst[j] = out;
    }
}

/* ---- bitfield -------------------------------------------------------- */

uint64_t kv_bitfield_get_u(const unsigned char *p, size_t plen, uint64_t offset, int bits)
{
    /* A field of <= 64 bits spans at most 9 bytes: read them (zero past
     * the end) as a 72-bit big-endian window hi:lo, then cut the field. */
    uint64_t byte = offset >> 3, hi = 0, lo = 0;
    unsigned shift = (unsigned) (offset & 7);
    for (int i = 0; i < 8; i++) {
        uint64_t at = byte + (uint64_t) i;
        hi = (hi << 8) | (at < plen ? p[at] : 0);
    }
    if (byte + 8 < plen) lo = p[byte + 8];
    uint64_t w = shift ? (hi << shift) | (lo >> (8 - shift)) : hi;
    return bits == 64 ? w : w >> (64 - bits);
}

int64_t kv_bitfield_get_i(const unsigned char *p, size_t plen, uint64_t offset, int bits)
{
    uint64_t u = kv_bitfield_get_u(p, plen, offset, bits);
    /* Sign-extend from the field's top bit. */
    if (bits < 64 && (u >> (bits - 1)) & 1) u |= UINT64_MAX << bits;
    return (int64_t) u;
}

void kv_bitfield_set(unsigned char *p, uint64_t offset, int bits, uint64_t v)
{
    /* Bit by bit: at most 64 steps, and obviously right at both ends. */
    for (int j = 0; j < bits; j++, offset++) {
        unsigned bitval = (unsigned) (v >> (bits - 1 - j)) & 1;
        unsigned sh = 7 - (unsigned) (offset & 7);
        unsigned char *b = p + (offset >> 3);
        *b = (unsigned char) ((*b & ~(1u << sh)) | (bitval << sh));
    }
}

int kv_bitfield_check_u(uint64_t value, int64_t incr, int bits, kv_bf_overflow_e ow, uint64_t *res)
{
    uint64_t max = (UINT64_C(1) << bits) - 1; /* bits <= 63 */
    int r = 0;
    if (value > max || (incr > 0 && (uint64_t) incr > max - value)) r = 1;
    else if (incr < 0 && (uint64_t) 0 - (uint64_t) incr > value) r = -1;
    if (r == 0) return 0;
    if (ow == KV_BF_SAT) *res = r > 0 ? max : 0;
    else *res = (value + (uint64_t) incr) & max;
    return r;
}

int kv_bitfield_check_i(int64_t value, int64_t incr, int bits, kv_bf_overflow_e ow, int64_t *res)
{
    int64_t max = bits == 64 ? INT64_MAX : (int64_t) ((UINT64_C(1) << (bits - 1)) - 1);
    int64_t min = -max - 1;
    /* Redis's checkSignedBitfieldOverflow, condition for condition, with
     * its wrapping differences (done in uint64_t here, so defined). They
     * matter for SET of a value far below the range: max - value wraps
     * negative, so Redis reports an overflow (SAT stores the maximum)
     * where exact arithmetic says underflow; users see that behaviour. */
    int64_t maxincr = (int64_t) ((uint64_t) max - (uint64_t) value);
    int64_t minincr = (int64_t) ((uint64_t) min - (uint64_t) value);
    int r = 0;
    if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr))
        r = 1;
    else if (value < min || (bits != 64 && incr < minincr) ||
             (value < 0 && incr < 0 && incr < minincr))
        r = -1;
    if (r == 0) return 0;
    if (ow == KV_BF_SAT) {
        *res = r > 0 ? max : min;
    } else {
        uint64_t c = (uint64_t) value + (uint64_t) incr;
        if (bits < 64) {
            uint64_t mask = UINT64_MAX << bits;
            c = (c >> (bits - 1)) & 1 ? c | mask : c & ~mask;
        }
        *res = (int64_t) c;
    }
    return r;
}
