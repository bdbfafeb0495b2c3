/*
 * HyperLogLog, bit for bit Redis 7.0's representation (hyperloglog.c), so
 * that counts, `GET key` bytes and DUMP payloads are identical:
 *
 *   header  "HYLL" | encoding (0 dense, 1 sparse) | 3 unused | cached
 *           cardinality, 8 bytes little endian, MSB of the last byte set
 *           when stale
 *   dense   16384 6-bit registers packed LSB first (12288 bytes)
 *   sparse  run-length opcodes: ZERO 00xxxxxx (1..64 zeros), XZERO
 *           01xxxxxx yyyyyyyy (1..16384 zeros), VAL 1vvvvvxx (value 1..32
 *           repeated 1..4 times)
 *
 * Elements hash with MurmurHash64A (seed 0xadc83b19): the low 14 bits pick
 * the register, the run of zeros above them plus one is its candidate
 * value. Counts use Ertl's estimator (Redis >= 4).
 *
 * Sparse updates follow Redis's in-place split-and-merge algorithm step by
 * step: the bytes after a sequence of PFADDs depend on it, and GET must
 * return what Redis returns. Pure functions on byte buffers; the commands
 * (t_hll.c) store the result as an ordinary string.
 */
#ifndef KV_SHARD_HLL_CORE_H
#define KV_SHARD_HLL_CORE_H

#include <stddef.h>
#include <stdint.h>

#define KV_HLL_P 14
#define KV_HLL_Q (64 - KV_HLL_P)
#define KV_HLL_REGISTERS (1 << KV_HLL_P)
#define KV_HLL_HDR_SIZE 16
#define KV_HLL_DENSE_SIZE (KV_HLL_HDR_SIZE + (KV_HLL_REGISTERS * 6 + 7) / 8)
#define KV_HLL_DENSE 0
#define KV_HLL_SPARSE 1
#define KV_HLL_EMPTY_SIZE (KV_HLL_HDR_SIZE + 2) /* header + XZERO:16384 */
#define KV_HLL_SPARSE_VAL_MAX 32

/* hll-sparse-max-bytes (default 3000): a sparse HLL that would grow past
 * this many bytes (header included) is converted to dense. */
extern size_t kv_hll_sparse_max_bytes;
void kv_hll_set_sparse_max_bytes(size_t n);

/* A HLL being modified. p is malloc'd when the sparse code may grow it
 * (it reallocs p then); a dense HLL is modified in place and never
 * grows. */
typedef struct kv_hll_buf {
    uint8_t *p;
    size_t len, cap;
    int owned; /* p may be realloc'd */
} kv_hll_buf;

uint64_t kv_hll_murmur64a(const void *key, size_t len, uint32_t seed);
/* The register an element maps to (*reg) and its 000..1 run length. */
int kv_hll_patlen(const void *ele, size_t len, long *reg);

static inline unsigned kv_hll_dense_get(const uint8_t *regs, long i)
{
    size_t byte = (size_t)i * 6 / 8;
    unsigned fb = (unsigned)(i * 6) & 7;
    unsigned v = regs[byte] >> fb;
    /* Redis reads byte+1 unconditionally (the sds NUL terminator past the
     * last register); reading it only when the value straddles stays in
     * bounds for an exact-size string. */
    if (fb > 2) v |= (unsigned)regs[byte + 1] << (8 - fb);
    return v & 63;
}

static inline void kv_hll_dense_set(uint8_t *regs, long i, unsigned v)
{
    size_t byte = (size_t)i * 6 / 8;
    unsigned fb = (unsigned)(i * 6) & 7;
    regs[byte] = (uint8_t)((regs[byte] & ~(63u << fb)) | (v << fb));
    if (fb > 2)
        regs[byte + 1] = (uint8_t)((regs[byte + 1] & ~(63u >> (8 - fb))) | (v >> (8 - fb)));
}

/* Redis's isHLLObjectOrReply beyond the type check: header, magic,
 * encoding, exact dense size. */
int kv_hll_valid(const uint8_t *p, size_t len);
/* An empty sparse HLL (KV_HLL_EMPTY_SIZE bytes), as Redis creates it. */
void kv_hll_init(uint8_t *out);

static inline int kv_hll_cache_valid(const uint8_t *p) { return !(p[15] & 0x80); }
static inline void kv_hll_invalidate(uint8_t *p) { p[15] |= 0x80; }
uint64_t kv_hll_cache_get(const uint8_t *p);
void kv_hll_cache_set(uint8_t *p, uint64_t card);

/* Set register index to count if larger: 1 changed, 0 not, -1 corrupt
 * sparse data. A sparse HLL may be converted to dense (b grows to
 * KV_HLL_DENSE_SIZE). */
int kv_hll_set(kv_hll_buf *b, long index, unsigned count);
/* PFADD of one element: as kv_hll_set. */
int kv_hll_add(kv_hll_buf *b, const void *ele, size_t len);
/* Convert a sparse HLL to dense in b: 0 ok (or already dense), -1
 * corrupt (b unchanged). */
int kv_hll_to_dense(kv_hll_buf *b);

/* Estimated cardinality of a HLL string; *invalid set when its sparse
 * data does not cover exactly 16384 registers. */
uint64_t kv_hll_count(const uint8_t *p, size_t len, int *invalid);
/* The same for 16384 plain byte registers (PFCOUNT of several keys). */
uint64_t kv_hll_count_raw(const uint8_t *regs);
/* max[i] = MAX(max[i], register i of the HLL): 0 ok, -1 corrupt. */
int kv_hll_merge(uint8_t *max, const uint8_t *p, size_t len);

/* PFDEBUG DECODE of a sparse HLL ("Z:16384", "z:3 v:2,1 ..."): writes at
 * most kv_hll_decode_cap(len) bytes to out, returns the length. */
static inline size_t kv_hll_decode_cap(size_t len) { return len * 7 + 8; }
size_t kv_hll_decode(const uint8_t *p, size_t len, char *out);

/* PFSELFTEST: 0 when every check passes, else -1 with a message. */
int kv_hll_selftest(const char **why);

#endif
