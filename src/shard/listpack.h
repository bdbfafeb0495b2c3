/*
 * Listpack: Redis 7.0's compact list-of-strings format, byte for byte.
 *
 * SHARED MODULE (owner: the hash/set engineer). Hashes keep their small
 * encoding in this very format, and the list, sorted-set and stream codecs
 * use it to read and write Redis's RDB blobs, so a DUMP is byte-identical
 * with redis-server's. Keep the API small and the format exact.
 *
 * Layout (all little endian):
 *
 *   total bytes u32 | count u16 (65535: unknown, count by walking) |
 *   entry ... | 0xFF
 *   entry = encoding [+ data] + backlen (1..5 bytes, size of
 *           encoding+data, readable from the right so we can walk back)
 *
 * An element is either a string or a 64-bit integer. Appending or
 * replacing with a string that is the canonical decimal of an int64
 * ("12", not "012" or "+1") stores the integer, exactly as Redis's
 * lpEncodeGetType does, so equal command sequences give equal bytes.
 *
 * Blobs are plain malloc'd byte arrays; every function that changes one
 * may realloc it and returns the new pointer (NULL only if out of memory,
 * the old blob then unchanged). Entry pointers `p` point into a blob and
 * die with any change to it, except where a function returns a new one.
 *
 * Input from outside (RESTORE, snapshots) must pass kv_lp_validate()
 * before any other function reads it: the others trust the blob.
 */
#ifndef KV_SHARD_LISTPACK_H
#define KV_SHARD_LISTPACK_H

#include <stddef.h>
#include <stdint.h>

#define KV_LP_HDR_SIZE 6
#define KV_LP_EOF 0xFF
#define KV_LP_COUNT_UNKNOWN 65535
#define KV_LP_INTBUF 21 /* kv_lp_val_str buffer: "-9223372036854775808" */
/* Redis refuses to grow a listpack past 1 GB (LISTPACK_MAX_SAFETY_SIZE);
 * callers convert to their big encoding first. */
#define KV_LP_SAFETY_SIZE (1UL << 30)

/* One decoded element: a string (s != NULL, len bytes, pointing into the
 * blob) or an integer (s == NULL, ll). */
typedef struct kv_lp_val {
    const unsigned char *s;
    uint32_t len;
    long long ll;
} kv_lp_val;

/* ---- whole blob ------------------------------------------------------- */

/* An empty listpack (7 bytes). */
unsigned char *kv_lp_new(void);
static inline size_t kv_lp_bytes(const unsigned char *lp)
{
    return (size_t)lp[0] | (size_t)lp[1] << 8 | (size_t)lp[2] << 16 | (size_t)lp[3] << 24;
}
/* Number of elements (walks the blob when the header says unknown). */
size_t kv_lp_count(const unsigned char *lp);
/* Would adding `add` bytes keep the blob under KV_LP_SAFETY_SIZE? */
static inline int kv_lp_safe_to_add(const unsigned char *lp, size_t add)
{
    return (lp ? kv_lp_bytes(lp) : 0) + add <= KV_LP_SAFETY_SIZE;
}
/* A copy (COPY command). */
unsigned char *kv_lp_dup(const unsigned char *lp);

/* Check a blob of `size` bytes from untrusted input: header, every
 * entry's encoding, bounds and backlen, the terminator and the count.
 * Returns 1 if good and sets *count (if non-NULL). Bounded by size: never
 * reads outside [lp, lp+size). */
int kv_lp_validate(const unsigned char *lp, size_t size, size_t *count);

/* ---- walking ---------------------------------------------------------- */

/* First / last element, or NULL when empty. */
unsigned char *kv_lp_first(const unsigned char *lp);
unsigned char *kv_lp_last(const unsigned char *lp);
/* Next / previous element, or NULL past either end. */
unsigned char *kv_lp_next(const unsigned char *lp, const unsigned char *p);
unsigned char *kv_lp_prev(const unsigned char *lp, const unsigned char *p);
/* Element at index (negative: from the end, -1 is the last), or NULL. */
unsigned char *kv_lp_seek(const unsigned char *lp, long index);
/* Decode the element at p. */
void kv_lp_get(const unsigned char *p, kv_lp_val *v);
/* The element as bytes: a string's own bytes, or an integer formatted
 * into buf (KV_LP_INTBUF bytes). */
const char *kv_lp_val_str(const kv_lp_val *v, char *buf, size_t *len);
/* Does the element at p equal the bytes s[0..n)? (An integer element
 * equals its canonical decimal.) */
int kv_lp_eq(const unsigned char *p, const char *s, size_t n);
/* From p, compare every (skip+1)-th element with s: the first match, or
 * NULL. skip=1 searches the fields of field/value pairs (Redis's lpFind). */
unsigned char *kv_lp_find(const unsigned char *lp, unsigned char *p, const char *s, size_t n,
                          unsigned skip);

/* ---- changing --------------------------------------------------------- */

/* Append an element at the end: string (integer-encoded when canonical)
 * or integer. */
unsigned char *kv_lp_append(unsigned char *lp, const char *s, size_t n);
unsigned char *kv_lp_append_int(unsigned char *lp, long long v);
/* Insert before the element at p (p NULL: append). *newp, if non-NULL,
 * gets the inserted element. */
unsigned char *kv_lp_insert(unsigned char *lp, unsigned char *p, const char *s, size_t n,
                            unsigned char **newp);
/* Replace the element at p; *p is updated to the replaced element. */
unsigned char *kv_lp_replace(unsigned char *lp, unsigned char **p, const char *s, size_t n);
unsigned char *kv_lp_replace_int(unsigned char *lp, unsigned char **p, long long v);
/* Delete num elements starting at *p (fewer if the end comes first); *p
 * becomes the element after them, or NULL at the end. */
unsigned char *kv_lp_delete(unsigned char *lp, unsigned char **p, size_t num);

/* ---- encoding size (for memory estimates and conversions) ------------- */

/* Bytes an element for s[0..n) takes, backlen included. */
size_t kv_lp_entry_size(const char *s, size_t n);

#endif
