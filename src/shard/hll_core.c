/* HyperLogLog algorithms on byte buffers: see hll_core.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shard/hll_core.h"

size_t kv_hll_sparse_max_bytes = 3000;

void kv_hll_set_sparse_max_bytes(size_t n) { kv_hll_sparse_max_bytes = n; }

/* ---- sparse opcodes ----------------------------------------------------- */

#define IS_ZERO(p) ((*(p) & 0xc0) == 0)
#define IS_XZERO(p) ((*(p) & 0xc0) == 0x40)
#define IS_VAL(p) (*(p) & 0x80)
#define ZERO_LEN(p) ((*(p) & 0x3f) + 1)
#define VAL_VALUE(p) (((*(p) >> 2) & 0x1f) + 1)
#define VAL_LEN(p) ((*(p) & 0x3) + 1)
#define VAL_MAX_LEN 4
#define ZERO_MAX_LEN 64
#define XZERO_MAX_LEN 16384

/* An XZERO's length. A truncated one (the last byte) reads its second
 * byte as 0: Redis reads the sds NUL terminator there. */
static inline long xzero_len(const uint8_t *p, const uint8_t *end)
{
    return ((long)(*p & 0x3f) << 8 | (p + 1 < end ? p[1] : 0)) + 1;
}
static inline void val_set(uint8_t *p, unsigned val, unsigned len)
{
    *p = (uint8_t)(((val - 1) << 2 | (len - 1)) | 0x80);
}
static inline void zero_set(uint8_t *p, long len) { *p = (uint8_t)(len - 1); }
static inline void xzero_set(uint8_t *p, long len)
{
    p[0] = (uint8_t)(((len - 1) >> 8) | 0x40);
    p[1] = (uint8_t)((len - 1) & 0xff);
}

/* ---- hashing ------------------------------------------------------------ */

uint64_t kv_hll_murmur64a(const void *key, size_t len, uint32_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    const int r = 47;
    /* Redis takes len as an int */
    uint64_t h = seed ^ ((uint64_t)(int)len * m);
    const uint8_t *data = key, *end = data + (len - (len & 7));
    while (data != end) {
        uint64_t k = 0;
        for (int i = 7; i >= 0; i--) k = k << 8 | data[i]; /* little endian */
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
        data += 8;
    }
    switch (len & 7) {
    case 7: h ^= (uint64_t)data[6] << 48; /* fall through */
    case 6: h ^= (uint64_t)data[5] << 40; /* fall through */
    case 5: h ^= (uint64_t)data[4] << 32; /* fall through */
    case 4: h ^= (uint64_t)data[3] << 24; /* fall through */
    case 3: h ^= (uint64_t)data[2] << 16; /* fall through */
    case 2: h ^= (uint64_t)data[1] << 8;  /* fall through */
    case 1: h ^= (uint64_t)data[0]; h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

int kv_hll_patlen(const void *ele, size_t len, long *reg)
{
    uint64_t hash = kv_hll_murmur64a(ele, len, 0xadc83b19U);
    *reg = (long)(hash & (KV_HLL_REGISTERS - 1));
    hash >>= KV_HLL_P;
    hash |= (uint64_t)1 << KV_HLL_Q; /* the run ends by bit Q: count <= Q+1 */
    return __builtin_ctzll(hash) + 1;
}

/* ---- header -------------------------------------------------------------- */

int kv_hll_valid(const uint8_t *p, size_t len)
{
    if (len < KV_HLL_HDR_SIZE || memcmp(p, "HYLL", 4) != 0) return 0;
    if (p[4] > KV_HLL_SPARSE) return 0;
    return p[4] != KV_HLL_DENSE || len == KV_HLL_DENSE_SIZE;
}

void kv_hll_init(uint8_t *out)
{
    memset(out, 0, KV_HLL_EMPTY_SIZE);
    memcpy(out, "HYLL", 4);
    out[4] = KV_HLL_SPARSE;
    xzero_set(out + KV_HLL_HDR_SIZE, KV_HLL_REGISTERS);
}

uint64_t kv_hll_cache_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[8 + i];
    return v;
}

void kv_hll_cache_set(uint8_t *p, uint64_t card)
{
    for (int i = 0; i < 8; i++) p[8 + i] = (uint8_t)(card >> (8 * i));
}

/* ---- sparse -> raw / dense ---------------------------------------------- */

/* Decode sparse opcodes into max[] (max[i] = MAX(max[i], reg i)), as
 * Redis's hllMerge / hllSparseToDense with the CVE-2025-32023 fix that
 * Debian's 7.0 carries: any run past the last register makes the HLL
 * corrupt. 0 when the runs cover exactly 16384 registers. */
static int sparse_merge(uint8_t *max, const uint8_t *p, const uint8_t *end)
{
    long i = 0;
    while (p < end) {
        long run;
        if (IS_ZERO(p)) {
            run = ZERO_LEN(p);
            if (run + i > KV_HLL_REGISTERS) return -1;
            p++;
        } else if (IS_XZERO(p)) {
            run = xzero_len(p, end);
            if (run + i > KV_HLL_REGISTERS) return -1;
            p += 2;
        } else {
            run = VAL_LEN(p);
            uint8_t v = (uint8_t)VAL_VALUE(p);
            if (run + i > KV_HLL_REGISTERS) return -1;
            for (long k = i; k < i + run; k++)
                if (v > max[k]) max[k] = v;
            p++;
        }
        i += run;
    }
    return i == KV_HLL_REGISTERS ? 0 : -1;
}

/* Make room for n bytes plus the NUL Redis's sds keeps after them (the
 * sparse code reads and moves that byte, see kv_hll_set). */
static void reserve(kv_hll_buf *b, size_t n)
{
    if (n + 1 <= b->cap) return;
    size_t cap = n + 1 < 2 * b->cap ? 2 * b->cap : n + 1;
    uint8_t *np = realloc(b->p, cap);
    if (!np) abort();
    b->p = np;
    b->cap = cap;
}

/* Scratch registers for conversions; a worker runs one command at a time,
 * so one static array serves them all without a 16 KB stack frame. */
static uint8_t scratch_regs[KV_HLL_REGISTERS];

int kv_hll_to_dense(kv_hll_buf *b)
{
    if (b->p[4] == KV_HLL_DENSE) return 0;
    memset(scratch_regs, 0, sizeof scratch_regs);
    if (sparse_merge(scratch_regs, b->p + KV_HLL_HDR_SIZE, b->p + b->len) < 0) return -1;
    reserve(b, KV_HLL_DENSE_SIZE);
    /* header kept: magic, unused bytes and the cached cardinality */
    b->p[4] = KV_HLL_DENSE;
    uint8_t *regs = b->p + KV_HLL_HDR_SIZE;
    memset(regs, 0, KV_HLL_DENSE_SIZE - KV_HLL_HDR_SIZE);
    for (long i = 0; i < KV_HLL_REGISTERS; i++)
        if (scratch_regs[i]) kv_hll_dense_set(regs, i, scratch_regs[i]);
    b->len = KV_HLL_DENSE_SIZE;
    return 0;
}

/* ---- set ------------------------------------------------------------------ */

static int dense_set(uint8_t *regs, long index, unsigned count)
{
    if (count <= kv_hll_dense_get(regs, index)) return 0;
    kv_hll_dense_set(regs, index, count);
    return 1;
}

static int promote(kv_hll_buf *b, long index, unsigned count)
{
    if (kv_hll_to_dense(b) < 0) return -1;
    /* the register needed a larger value, so this always changes it */
    return dense_set(b->p + KV_HLL_HDR_SIZE, index, count);
}

/* Redis's hllSparseSet: find the opcode covering index; update it in
 * place, or split it into up to three opcodes (worst case XZERO-VAL-XZERO,
 * +3 bytes); then merge adjacent equal VALs around it. Converts to dense
 * when the value does not fit a VAL or the string would outgrow
 * hll-sparse-max-bytes. */
static int sparse_set(kv_hll_buf *b, long index, unsigned count)
{
    if (count > KV_HLL_SPARSE_VAL_MAX) return promote(b, index, count);
    reserve(b, b->len + 3);
    b->p[b->len] = 0;
    uint8_t *sparse = b->p + KV_HLL_HDR_SIZE, *end = b->p + b->len, *p = sparse;
    uint8_t *prev = NULL, *next;
    long first = 0, span = 0;
    while (p < end) {
        long oplen = 1;
        if (IS_ZERO(p)) {
            span = ZERO_LEN(p);
        } else if (IS_VAL(p)) {
            span = VAL_LEN(p);
        } else {
            span = xzero_len(p, end);
            oplen = 2;
        }
        if (index <= first + span - 1) break;
        prev = p;
        p += oplen;
        first += span;
    }
    if (span == 0 || p >= end) return -1;
    next = IS_XZERO(p) ? p + 2 : p + 1;
    if (next >= end) next = NULL;

    int is_zero = IS_ZERO(p), is_xzero = IS_XZERO(p), is_val = !is_zero && !is_xzero;
    long runlen = is_zero ? ZERO_LEN(p) : is_xzero ? xzero_len(p, end) : VAL_LEN(p);
    if (is_val) {
        if ((unsigned)VAL_VALUE(p) >= count) return 0;
        if (runlen == 1) {
            val_set(p, count, 1);
            goto updated;
        }
    }
    if (is_zero && runlen == 1) {
        val_set(p, count, 1);
        goto updated;
    }

    /* split: [before] VAL:count,1 [after] */
    uint8_t seq[5], *n = seq;
    long last = first + span - 1, len;
    if (is_zero || is_xzero) {
        if (index != first) {
            len = index - first;
            if (len > ZERO_MAX_LEN) xzero_set(n, len), n += 2;
            else zero_set(n, len), n++;
        }
        val_set(n++, count, 1);
        if (index != last) {
            len = last - index;
            if (len > ZERO_MAX_LEN) xzero_set(n, len), n += 2;
            else zero_set(n, len), n++;
        }
    } else {
        unsigned cur = VAL_VALUE(p);
        if (index != first) val_set(n++, cur, (unsigned)(index - first));
        val_set(n++, count, 1);
        if (index != last) val_set(n++, cur, (unsigned)(last - index));
    }
    long seqlen = n - seq, delta = seqlen - (is_xzero ? 2 : 1);
    if (delta > 0 && b->len + (size_t)delta > kv_hll_sparse_max_bytes)
        return promote(b, index, count);
    if (delta && next) memmove(next + delta, next, (size_t)(end - next));
    b->len = (size_t)((long)b->len + delta);
    memcpy(p, seq, (size_t)seqlen);
    end += delta;

updated:
    /* merge adjacent VALs of the same value, scanning up to 5 opcodes from
     * the one before the change (Redis's exact window: the bytes depend
     * on it) */
    p = prev ? prev : sparse;
    for (int scan = 5; p < end && scan--;) {
        if (IS_XZERO(p)) {
            p += 2;
            continue;
        }
        if (IS_ZERO(p)) {
            p++;
            continue;
        }
        if (p + 1 < end && IS_VAL(p + 1)) {
            unsigned v1 = VAL_VALUE(p), v2 = VAL_VALUE(p + 1);
            unsigned l = (unsigned)(VAL_LEN(p) + VAL_LEN(p + 1));
            if (v1 == v2 && l <= VAL_MAX_LEN) {
                val_set(p + 1, v1, l);
                memmove(p, p + 1, (size_t)(end - p - 1));
                b->len--;
                end--;
                continue; /* try the merged VAL with the next one */
            }
        }
        p++;
    }
    b->p[b->len] = 0;
    kv_hll_invalidate(b->p);
    return 1;
}

int kv_hll_set(kv_hll_buf *b, long index, unsigned count)
{
    switch (b->p[4]) {
    case KV_HLL_DENSE: return dense_set(b->p + KV_HLL_HDR_SIZE, index, count);
    case KV_HLL_SPARSE: return sparse_set(b, index, count);
    default: return -1;
    }
}

int kv_hll_add(kv_hll_buf *b, const void *ele, size_t len)
{
    long reg;
    int count = kv_hll_patlen(ele, len, &reg);
    return kv_hll_set(b, reg, (unsigned)count);
}

/* ---- count ---------------------------------------------------------------- */

static void dense_histo(const uint8_t *r, int *h)
{
    /* 4 registers per 3 bytes */
    for (int j = 0; j < KV_HLL_REGISTERS / 4; j++, r += 3) {
        h[r[0] & 63]++;
        h[(r[0] >> 6 | r[1] << 2) & 63]++;
        h[(r[1] >> 4 | r[2] << 4) & 63]++;
        h[(r[2] >> 2) & 63]++;
    }
}

static void sparse_histo(const uint8_t *p, const uint8_t *end, int *invalid, int *h)
{
    long idx = 0;
    while (p < end) {
        long run;
        if (IS_ZERO(p)) {
            run = ZERO_LEN(p);
            h[0] += (int)run;
            p++;
        } else if (IS_XZERO(p)) {
            run = xzero_len(p, end);
            h[0] += (int)run;
            p += 2;
        } else {
            run = VAL_LEN(p);
            h[VAL_VALUE(p)] += (int)run;
            p++;
        }
        idx += run;
    }
    if (idx != KV_HLL_REGISTERS && invalid) *invalid = 1;
}

/* Ertl, "New cardinality estimation algorithms for HyperLogLog sketches",
 * arXiv:1702.01284; the same series and rounding as Redis so the results
 * match to the unit. */
static double hll_sigma(double x)
{
    if (x == 1.) return INFINITY;
    double zp, y = 1, z = x;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (zp != z);
    return z;
}

static double hll_tau(double x)
{
    if (x == 0. || x == 1.) return 0.;
    double zp, y = 1.0, z = 1 - x;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= pow(1 - x, 2) * y;
    } while (zp != z);
    return z / 3;
}

static uint64_t estimate(const int *h)
{
    const double m = KV_HLL_REGISTERS, alpha_inf = 0.721347520444481703680;
    double z = m * hll_tau((m - h[KV_HLL_Q + 1]) / m);
    for (int j = KV_HLL_Q; j >= 1; --j) {
        z += h[j];
        z *= 0.5;
    }
    z += m * hll_sigma(h[0] / m);
    return (uint64_t)llroundl(alpha_inf * m * m / z);
}

uint64_t kv_hll_count(const uint8_t *p, size_t len, int *invalid)
{
    int h[64] = { 0 };
    if (p[4] == KV_HLL_DENSE) dense_histo(p + KV_HLL_HDR_SIZE, h);
    else sparse_histo(p + KV_HLL_HDR_SIZE, p + len, invalid, h);
    return estimate(h);
}

uint64_t kv_hll_count_raw(const uint8_t *regs)
{
    int h[64] = { 0 };
    for (long i = 0; i < KV_HLL_REGISTERS; i++) h[regs[i] & 63]++;
    return estimate(h);
}

int kv_hll_merge(uint8_t *max, const uint8_t *p, size_t len)
{
    if (p[4] == KV_HLL_DENSE) {
        const uint8_t *regs = p + KV_HLL_HDR_SIZE;
        for (long i = 0; i < KV_HLL_REGISTERS; i++) {
            uint8_t v = (uint8_t)kv_hll_dense_get(regs, i);
            if (v > max[i]) max[i] = v;
        }
        return 0;
    }
    return sparse_merge(max, p + KV_HLL_HDR_SIZE, p + len);
}

/* ---- debugging ------------------------------------------------------------ */

static size_t put_uint(char *out, long v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n) out[k++] = tmp[--n];
    return k;
}

size_t kv_hll_decode(const uint8_t *p, size_t len, char *out)
{
    const uint8_t *end = p + len;
    size_t n = 0;
    for (p += KV_HLL_HDR_SIZE; p < end;) {
        if (IS_ZERO(p)) {
            out[n++] = 'z', out[n++] = ':';
            n += put_uint(out + n, ZERO_LEN(p));
            p++;
        } else if (IS_XZERO(p)) {
            out[n++] = 'Z', out[n++] = ':';
            n += put_uint(out + n, xzero_len(p, end));
            p += 2;
        } else {
            out[n++] = 'v', out[n++] = ':';
            n += put_uint(out + n, VAL_VALUE(p));
            out[n++] = ',';
            n += put_uint(out + n, VAL_LEN(p));
            p++;
        }
        out[n++] = ' ';
    }
    return n ? n - 1 : 0; /* Redis trims the trailing blank */
}

/* ---- PFSELFTEST ----------------------------------------------------------- */

static uint64_t st_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Redis's two checks, scaled down to stay well under a millisecond budget
 * per thousand elements: the 6-bit register accessors against a byte
 * array, and the estimate within 5 standard errors of the truth, with the
 * sparse and the dense representation agreeing on every count. */
int kv_hll_selftest(const char **why)
{
    static uint8_t dense[KV_HLL_DENSE_SIZE];
    uint64_t seed = 0x2545F4914F6CDD1DULL;
    for (int cycle = 0; cycle < 20; cycle++) {
        for (long i = 0; i < KV_HLL_REGISTERS; i++) {
            scratch_regs[i] = (uint8_t)(st_rnd(&seed) & 63);
            kv_hll_dense_set(dense + KV_HLL_HDR_SIZE, i, scratch_regs[i]);
        }
        for (long i = 0; i < KV_HLL_REGISTERS; i++)
            if (kv_hll_dense_get(dense + KV_HLL_HDR_SIZE, i) != scratch_regs[i]) {
                *why = "TESTFAILED Register error";
                return -1;
            }
    }
    kv_hll_buf sp = { malloc(64), KV_HLL_EMPTY_SIZE, 64, 1 };
    if (!sp.p) abort();
    kv_hll_init(sp.p);
    memset(dense, 0, sizeof dense);
    memcpy(dense, "HYLL", 4);
    kv_hll_buf dn = { dense, KV_HLL_DENSE_SIZE, KV_HLL_DENSE_SIZE, 0 };
    double relerr = 1.04 / sqrt(KV_HLL_REGISTERS);
    int rc = 0;
    uint64_t checkpoint = 1;
    for (uint64_t j = 1; j <= 100000 && rc == 0; j++) {
        uint64_t ele = j ^ 0x5bd1e995ULL;
        if (kv_hll_add(&sp, &ele, sizeof ele) < 0 || kv_hll_add(&dn, &ele, sizeof ele) < 0) {
            *why = "TESTFAILED add error";
            rc = -1;
        } else if (j == checkpoint) {
            int inv = 0;
            uint64_t a = kv_hll_count(sp.p, sp.len, &inv), d = kv_hll_count(dn.p, dn.len, NULL);
            double err = fabs((double)d - (double)j) / (double)j;
            if (inv || a != d) *why = "TESTFAILED sparse and dense counts differ", rc = -1;
            else if (err > (j < 100 ? 0.1 : 5 * relerr)) *why = "TESTFAILED too big error", rc = -1;
            checkpoint *= 10;
        }
    }
    free(sp.p);
    return rc;
}
