/*
 * Bitmap algorithms behind SETBIT/GETBIT/BITCOUNT/BITPOS/BITOP/BITFIELD,
 * free of any keyspace or protocol code so they can be unit-tested
 * against a naive model (t/unit/test_bitops.c).
 *
 * Bit numbering is Redis's: bit 0 is the most significant bit of byte 0,
 * so byte-aligned fields read as big-endian integers.
 */
#ifndef KV_SHARD_BITMAP_H
#define KV_SHARD_BITMAP_H

#include <stddef.h>
#include <stdint.h>

/* Number of set bits in p[0..n). */
uint64_t kv_bitmap_popcount(const void *p, size_t n);

/* First bit equal to `bit` (0|1) among bits [first, last] of p (last must
 * lie inside p); -1 when there is none. */
int64_t kv_bitmap_pos(const void *p, uint64_t first, uint64_t last, int bit);

/* BITOP operations. */
typedef enum { KV_BITOP_AND, KV_BITOP_OR, KV_BITOP_XOR, KV_BITOP_NOT } kv_bitop_e;

/* dst[0..maxlen) = op over src[0..n) (src[i] of len[i] bytes, zero-padded
 * to maxlen; src[i] may be NULL when len[i] is 0). NOT uses src[0] only.
 * dst must not overlap a source. */
void kv_bitmap_op(kv_bitop_e op, unsigned char *dst, size_t maxlen, const unsigned char *const *src,
                  const size_t *len, size_t n);

/* Field of `bits` (1..64) bits at bit `offset` of p (plen bytes; bits
 * beyond plen read as zero, as for a missing key). */
uint64_t kv_bitfield_get_u(const unsigned char *p, size_t plen, uint64_t offset, int bits);
int64_t kv_bitfield_get_i(const unsigned char *p, size_t plen, uint64_t offset, int bits);
/* Store the low `bits` bits of v at bit `offset`; p must hold
 * (offset + bits + 7) / 8 bytes. */
void kv_bitfield_set(unsigned char *p, uint64_t offset, int bits, uint64_t v);

/* BITFIELD OVERFLOW behaviours. */
typedef enum { KV_BF_WRAP, KV_BF_SAT, KV_BF_FAIL } kv_bf_overflow_e;

/* Would value + incr leave the range of a `bits`-bit unsigned (bits <=
 * 63) or signed (bits <= 64) field? Returns 0 if it fits, 1 on overflow,
 * -1 on underflow; when it does not fit, *res gets the value to store for
 * WRAP (two's complement truncation) or SAT (the nearer limit). For SET,
 * pass the new value with incr 0: an unsigned field given a negative
 * value overflows (SAT stores the maximum), as in Redis. */
int kv_bitfield_check_u(uint64_t value, int64_t incr, int bits, kv_bf_overflow_e ow, uint64_t *res);
int kv_bitfield_check_i(int64_t value, int64_t incr, int bits, kv_bf_overflow_e ow, int64_t *res);

#endif
