/*
 * The hash value: two encodings behind one small API, as Redis's
 * t_hash.c hashType* functions.
 *
 *   KV_ENC_LISTPACK  a Redis-format listpack (shard/listpack.h) of
 *                    field, value, field, value ... in insertion order;
 *                    DUMP writes it verbatim, so bytes match Redis.
 *   KV_ENC_HT        a kv_hash_ht: a kv_dict whose entries hold the field
 *                    as the key and the value inline in the extra bytes
 *                    (1-byte length, or 0xFF + u32 past 254 bytes), so a
 *                    field costs one allocation against Redis's three
 *                    (dictEntry + two sds).
 *
 * A hash starts as a listpack and becomes a hashtable, never back, when it
 * gets more than hash-max-listpack-entries fields or a field or value
 * longer than hash-max-listpack-value bytes (Redis 7.0's rules, including
 * the check on HINCRBY* results).
 *
 * Memory accounting: kv_hash_mem() is O(1) and a function of the value
 * alone, so callers add (after - before) to the db's counter around a
 * change (bucket arrays are estimated at 8 B per field).
 */
#ifndef KV_SHARD_HASH_TYPE_H
#define KV_SHARD_HASH_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "shard/db.h"
#include "shard/dict.h"
#include "shard/listpack.h"
#include "shard/resp.h"

/* Thresholds, named after Redis's config parameters (CONFIG SET wires to
 * the setters). */
extern size_t kv_hash_max_listpack_entries; /* hash-max-listpack-entries 512 */
extern size_t kv_hash_max_listpack_value;   /* hash-max-listpack-value 64 */
void kv_hash_set_max_listpack_entries(size_t n);
void kv_hash_set_max_listpack_value(size_t n);

typedef struct kv_hash_ht {
    kv_dict *d;
    size_t bytes; /* requested bytes of all entries */
} kv_hash_ht;

/* A new, empty hash value (listpack) for kv_db_add_ptr. */
void *kv_hash_new(void);
size_t kv_hash_len(const kv_obj *o);
/* 1 and *v set (strings point into the hash, valid until it changes) if
 * field exists. */
int kv_hash_get(const kv_obj *o, const char *f, size_t fl, kv_lp_val *v);
/* Set field to value: 1 if the field is new, 0 if updated, -1 on OOM.
 * Converts the encoding first when needed. */
int kv_hash_set(kv_obj *o, const char *f, size_t fl, const char *v, size_t vl);
/* 1 if the field was deleted. */
int kv_hash_del(kv_obj *o, const char *f, size_t fl);
/* Convert a listpack hash to a hashtable (0, or -1 on OOM). */
int kv_hash_convert(kv_obj *o);
/* Convert when the listpack holds an argument too long for it (Redis's
 * hashTypeTryConversion over argv[first..last]). */
void kv_hash_try_convert(kv_obj *o, const kv_resp_arg *argv, int first, int last);

/* Iterate fields and values; safe against nothing (no changes while it
 * runs). Always pair init with done. */
typedef struct kv_hash_iter {
    const kv_obj *o;
    unsigned char *p; /* listpack: next field */
    kv_dict_iter di;
} kv_hash_iter;
void kv_hash_iter_init(kv_hash_iter *it, const kv_obj *o);
/* 1 and field/value set, or 0 at the end. */
int kv_hash_iter_next(kv_hash_iter *it, kv_lp_val *f, kv_lp_val *v);
void kv_hash_iter_done(kv_hash_iter *it);

/* Helpers for the HT encoding's entries (also used by the RDB codec). */
void kv_hash_entry_val(const kv_dict_entry *e, kv_lp_val *v);
/* Add field/value to an HT known not to hold field; 0 or -1 on OOM. */
int kv_hash_ht_add(kv_hash_ht *h, const char *f, size_t fl, const char *v, size_t vl);
kv_hash_ht *kv_hash_ht_new(void);

/* kv_db_type_ops of hashes (registered at startup). */
void kv_hash_free(void *ptr, uint8_t enc);
void *kv_hash_dup(const void *ptr, uint8_t enc);
size_t kv_hash_mem(const void *ptr, uint8_t enc);

#endif
