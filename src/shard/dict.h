/* Keyspace hash table: binary-safe keys -> caller-defined inline bytes.
 *
 * Chained, power-of-two bucket arrays, incremental rehash in the manner of
 * Redis's dict (two tables; every find/insert/delete moves one bucket, and
 * kv_dict_rehash_ms() moves more in a time budget), so growing a table of
 * millions of keys never stalls the loop. Keys are hashed with XXH3 and a
 * per-process random seed (so the dict index bits are independent of the
 * XXH3-based shard routing, and of anything a client can predict).
 *
 * Entry = ONE allocation, owned by the dict from insert until it is
 * unlinked:
 *
 *   offset 0   next            8 B  chain pointer
 *   offset 8   klen            1 B  (klen < 255), else 0xFF + u32 = 5 B
 *              key bytes       klen
 *              padding         to the next multiple of 8
 *   extra_off  extra bytes     `extra` as given at insert, 8-aligned
 *
 * The dict never reads or writes the extra bytes: the caller keeps there
 * whatever its value representation needs (type tag, LRU clock, a pointer
 * to a large value, or a small value inline). Their size is not recorded;
 * the caller's own header must tell it. Extra bytes start uninitialised.
 *
 * Cost per key: malloc size class of (align8(9 + klen) + extra), plus
 * 8..16 B of bucket array (load factor 0.5..1). See docs/keyspace.md.
 *
 * Single-threaded: a dict belongs to one worker. Entry pointers stay valid
 * until the entry is unlinked, resized (kv_dict_entry_resize) or the dict
 * is emptied; rehashing moves links, never entries.
 */
#ifndef KV_SHARD_DICT_H
#define KV_SHARD_DICT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct kv_dict_entry {
    struct kv_dict_entry *next;
    unsigned char hdr[]; /* klen, key, pad, extra: see above */
} kv_dict_entry;

typedef struct kv_dict {
    kv_dict_entry **table[2];
    unsigned long size[2]; /* 0 or a power of two */
    unsigned long used[2];
    long rehashidx;        /* next table[0] bucket to move; -1: not rehashing */
    int pause;             /* >0: safe iterators alive, no rehash steps */
    int resize;            /* KV_DICT_RESIZE_* */
    uint64_t rng;
} kv_dict;

#define KV_DICT_RESIZE_ENABLE 0 /* grow at load 1, shrink below 10% fill */
#define KV_DICT_RESIZE_AVOID 1  /* during fork: grow only past load 5, no shrink */

#define KV_DICT_KEY_MAX 0xFFFFFFFFu

/* Called by kv_dict_empty/kv_dict_free for each entry before the dict
 * frees it: release what the extra bytes reference, do not free e. */
typedef void kv_dict_free_fn(void *ud, kv_dict_entry *e);
/* Called by kv_dict_scan per entry. It may unlink (and free) the entry it
 * was given, nothing else; it must not insert. */
typedef void kv_dict_scan_fn(void *ud, kv_dict_entry *e);

/* ---- entry accessors (inline: on every lookup path) ------------------ */

static inline size_t kv_dict_entry_klen(const kv_dict_entry *e)
{
    if (e->hdr[0] != 0xFF) return e->hdr[0];
    uint32_t l;
    memcpy(&l, e->hdr + 1, 4);
    return l;
}
static inline const char *kv_dict_entry_key(const kv_dict_entry *e)
{
    return (const char *)e->hdr + (e->hdr[0] != 0xFF ? 1 : 5);
}
/* Offset of the extra bytes from the start of an entry with this klen. */
static inline size_t kv_dict_extra_offset(size_t klen)
{
    size_t o = sizeof(kv_dict_entry) + (klen < 0xFF ? 1 : 5) + klen;
    return (o + 7) & ~(size_t)7;
}
/* The caller's bytes, 8-byte aligned. */
static inline void *kv_dict_entry_extra(const kv_dict_entry *e)
{
    return (char *)e + kv_dict_extra_offset(kv_dict_entry_klen(e));
}
/* Bytes requested from malloc for such an entry (before size-class
 * rounding); use for memory accounting together with kv_dict_mem(). */
static inline size_t kv_dict_entry_alloc_size(size_t klen, size_t extra)
{
    if (extra == 0) /* a set member or a bare key: no padding needed */
        return sizeof(kv_dict_entry) + (klen < 0xFF ? 1 : 5) + klen;
    return kv_dict_extra_offset(klen) + extra;
}

/* ---- dict ------------------------------------------------------------ */

/* Fix the hash seed (tests, reproducible runs). Must be called before any
 * dict exists; otherwise a random seed is drawn on first use. */
void kv_dict_set_seed(uint64_t seed);
uint64_t kv_dict_hash(const void *key, size_t klen);

kv_dict *kv_dict_new(void);
/* Empty the dict (calling fn, if any, per entry) and free it. */
void kv_dict_free(kv_dict *d, kv_dict_free_fn *fn, void *ud);
/* Remove and free every entry (fn first, if any); the dict stays usable. */
void kv_dict_empty(kv_dict *d, kv_dict_free_fn *fn, void *ud);

static inline size_t kv_dict_size(const kv_dict *d) { return d->used[0] + d->used[1]; }
static inline int kv_dict_is_rehashing(const kv_dict *d) { return d->rehashidx != -1; }
/* Bucket slots in both tables. */
static inline size_t kv_dict_buckets(const kv_dict *d) { return d->size[0] + d->size[1]; }
/* Bytes held by the bucket arrays and the dict header (entries are the
 * caller's to count with kv_dict_entry_alloc_size or malloc_usable_size). */
size_t kv_dict_mem(const kv_dict *d);
/* KV_DICT_RESIZE_ENABLE or _AVOID (set while a fork child shares pages). */
void kv_dict_set_resize(kv_dict *d, int policy);
/* Pre-size for n keys (e.g. before loading a snapshot). Returns 0, or -1
 * if a rehash is running or n is below the current size. */
int kv_dict_expand(kv_dict *d, size_t n);

/* NULL if absent. */
kv_dict_entry *kv_dict_find(kv_dict *d, const void *key, size_t klen);
/* Add key with `extra` caller bytes; NULL if the key exists (or klen >
 * KV_DICT_KEY_MAX). The dict owns the returned entry. */
kv_dict_entry *kv_dict_insert(kv_dict *d, const void *key, size_t klen, size_t extra);
/* Find key, or insert it with `extra` bytes. *created tells which; an
 * existing entry keeps its extra size (see kv_dict_entry_resize). NULL
 * only for klen > KV_DICT_KEY_MAX. */
kv_dict_entry *kv_dict_upsert(kv_dict *d, const void *key, size_t klen, size_t extra,
                              int *created);
/* Remove key from the table and return its entry (NULL if absent). The
 * caller now owns it: release its value, then kv_dict_entry_free(). */
kv_dict_entry *kv_dict_unlink(kv_dict *d, const void *key, size_t klen);
/* Same for an entry pointer known to be in d. Returns 0, -1 if not found. */
int kv_dict_unlink_entry(kv_dict *d, kv_dict_entry *e);
void kv_dict_entry_free(kv_dict_entry *e);
/* Change an entry's extra size in place or by moving it (realloc: the
 * first min(old, new) extra bytes are kept). Returns the entry's new
 * address; the old pointer is dead. Inside a safe iteration only the
 * entry just returned may be resized. */
kv_dict_entry *kv_dict_entry_resize(kv_dict *d, kv_dict_entry *e, size_t new_extra);

/* ---- rehash ---------------------------------------------------------- */

/* Move up to n non-empty buckets (visiting at most 10*n empty ones).
 * Returns 1 if rehashing is still in progress. No-op while an iterator
 * pauses rehashing. */
int kv_dict_rehash(kv_dict *d, int n);
/* Rehash in 100-bucket steps for about ms milliseconds (the worker's
 * cron). Returns buckets moved. No-op while iterators pause rehashing. */
long kv_dict_rehash_ms(kv_dict *d, int ms);

/* ---- traversal ------------------------------------------------------- */

/* One SCAN step from cursor (start with 0): calls fn for the entries of
 * one bucket (both tables while rehashing) and returns the next cursor, 0
 * when done. Guarantee (Redis's reverse-binary cursor): every entry
 * present for the whole iteration is returned at least once, even if the
 * table grows, shrinks or rehashes between calls; some may repeat. */
unsigned long kv_dict_scan(kv_dict *d, unsigned long cursor, kv_dict_scan_fn *fn, void *ud);

/* Safe iterator, on the stack, no allocation. While any is alive the dict
 * does no rehash steps. The caller may unlink/free or resize the entry
 * just returned and may insert (new keys may or may not be returned); it
 * must not unlink other entries. Always pair with kv_dict_iter_done. */
typedef struct kv_dict_iter {
    kv_dict *d;
    unsigned long index;
    int table;
    kv_dict_entry *next;
} kv_dict_iter;
void kv_dict_iter_init(kv_dict_iter *it, kv_dict *d);
kv_dict_entry *kv_dict_iter_next(kv_dict_iter *it); /* NULL at the end */
void kv_dict_iter_done(kv_dict_iter *it);

/* A random entry (NULL if empty), fair enough for RANDOMKEY: picks
 * uniformly among a sample of up to 15 neighbouring entries from a random
 * bucket, like Redis's dictGetFairRandomKey. */
kv_dict_entry *kv_dict_random(kv_dict *d);
/* Up to n entries from a random region (eviction sampling; Redis's
 * dictGetSomeKeys). Returns how many were stored in out; may repeat none,
 * may return fewer than n. */
unsigned kv_dict_sample(kv_dict *d, kv_dict_entry **out, unsigned n);

#endif
