/*
 * Intset: a sorted array of distinct integers, in Redis's exact byte
 * format (so a set's DUMP is byte-identical: RDB_TYPE_SET_INTSET writes
 * this blob as a string).
 *
 *   encoding u32 (2, 4 or 8: bytes per element) | length u32 | elements
 *   (little endian, ascending)
 *
 * The encoding is the smallest that holds every element and only grows
 * (adding 70000 to an int16 set upgrades it to int32, as Redis does;
 * removing never downgrades). Blobs are malloc'd; functions that change
 * one return the new pointer (NULL only when out of memory, old blob kept).
 */
#ifndef KV_SHARD_INTSET_H
#define KV_SHARD_INTSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_intset {
    uint32_t encoding;
    uint32_t length;
    int8_t contents[];
} kv_intset;

kv_intset *kv_intset_new(void);
static inline uint32_t kv_intset_len(const kv_intset *is) { return is->length; }
static inline size_t kv_intset_bytes(const kv_intset *is)
{
    return sizeof(kv_intset) + (size_t)is->length * is->encoding;
}
int64_t kv_intset_get(const kv_intset *is, uint32_t pos);
/* 1 and *pos when found; else 0 and *pos = where it would go. */
int kv_intset_search(const kv_intset *is, int64_t v, uint32_t *pos);
static inline int kv_intset_find(const kv_intset *is, int64_t v)
{
    uint32_t pos;
    return kv_intset_search(is, v, &pos);
}
/* *added = 1 if v was not there. */
kv_intset *kv_intset_add(kv_intset *is, int64_t v, int *added);
/* *removed = 1 if v was there. */
kv_intset *kv_intset_remove(kv_intset *is, int64_t v, int *removed);
kv_intset *kv_intset_remove_at(kv_intset *is, uint32_t pos);
kv_intset *kv_intset_dup(const kv_intset *is);
/* Check a blob of `size` bytes from outside: header, size, strictly
 * ascending elements. 1 if good. */
int kv_intset_validate(const void *blob, size_t size);

#endif
