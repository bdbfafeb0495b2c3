/*
 * Ziplist reader: Redis's pre-7.0 compact encoding, met only when loading
 * old RDB objects (RDB_TYPE_LIST_ZIPLIST, the nodes of
 * RDB_TYPE_LIST_QUICKLIST, RDB_TYPE_HASH_ZIPLIST, RDB_TYPE_ZSET_ZIPLIST).
 * Redis 7.0 never writes ziplists, so there is no encoder: loaders convert
 * the entries into their own encoding.
 *
 * Layout (little endian):
 *   zlbytes u32 | zltail u32 | zllen u16 (65535: count by walking) |
 *   entry ... | 0xFF
 *   entry = prevlen (1 byte < 254, else 0xFE + u32) | encoding | data
 *
 * The input is untrusted: kv_zl_validate() checks every entry (bounds,
 * encodings, prevlen chain, tail offset, count) and must pass before the
 * walking functions are used on a blob.
 */
#ifndef KV_PERSIST_ZIPLIST_H
#define KV_PERSIST_ZIPLIST_H

#include <stddef.h>
#include <stdint.h>

#define KV_ZL_HDR_SIZE 10

/* One decoded entry: a string (s != NULL, len bytes, pointing into the
 * blob) or an integer (s == NULL, ll). */
typedef struct kv_zl_val {
    const unsigned char *s;
    uint32_t len;
    long long ll;
} kv_zl_val;

/* 1 if the `size` bytes at zl are a well-formed ziplist; *count (if not
 * NULL) gets its number of entries. Never reads outside [zl, zl+size). */
int kv_zl_validate(const unsigned char *zl, size_t size, size_t *count);

/* First entry, or NULL when empty. */
const unsigned char *kv_zl_first(const unsigned char *zl);
/* Entry after p, or NULL at the end. */
const unsigned char *kv_zl_next(const unsigned char *p);
/* Decode the entry at p. */
void kv_zl_get(const unsigned char *p, kv_zl_val *v);

#endif
