/*
 * The set value, as Redis 7.0's setType* functions:
 *
 *   KV_ENC_INTSET  a kv_intset (Redis's byte format, shard/intset.h) while
 *                  every member is the canonical decimal of an int64 and
 *                  there are at most set-max-intset-entries of them;
 *   KV_ENC_HT      a kv_set_ht: a kv_dict whose entries are the members
 *                  with no extra bytes (one allocation per member, against
 *                  Redis's dictEntry + sds).
 *
 * Redis 7.0 has no listpack sets (that is 7.2): a set that gets a
 * non-integer member is a hashtable from then on.
 *
 * Memory: kv_set_mem() is O(1) and a function of the value alone; callers
 * add (after - before) to the db's byte counter around a change.
 *
 * Standalone values (the result of SINTERSTORE before it becomes a key,
 * RDB loading) live in a kv_set_box, a kv_obj followed by its pointer, so
 * the same functions work on them.
 */
#ifndef KV_SHARD_SET_TYPE_H
#define KV_SHARD_SET_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "shard/db.h"
#include "shard/dict.h"
#include "shard/intset.h"
#include "shard/listpack.h"

extern size_t kv_set_max_intset_entries; /* set-max-intset-entries 512 */
void kv_set_set_max_intset_entries(size_t n);

typedef struct kv_set_ht {
    kv_dict *d;
    size_t bytes; /* requested bytes of all member entries */
} kv_set_ht;

typedef struct kv_set_box {
    kv_obj o;
    void *ptr;
} kv_set_box;

/* An empty standalone set: intset, or hashtable when `ht`. 0 or -1. */
int kv_set_box_init(kv_set_box *b, int ht);

/* The encoding and empty value for a set whose first member is s (Redis's
 * setTypeCreate). NULL when out of memory. */
void *kv_set_new_for(const char *s, size_t n, uint8_t *enc);
size_t kv_set_size(const kv_obj *o);
int kv_set_ismember(const kv_obj *o, const char *s, size_t n);
/* 1 if added, 0 if present, -1 on OOM (converts encodings as needed). */
int kv_set_add(kv_obj *o, const char *s, size_t n);
/* Add an integer member (intset fast path for SINTERSTORE etc.). */
int kv_set_add_int(kv_obj *o, long long v);
/* 1 if removed. */
int kv_set_remove(kv_obj *o, const char *s, size_t n);
/* Intset -> hashtable (0, -1 on OOM). */
int kv_set_convert(kv_obj *o, size_t presize);

/* A random member (set non-empty); for an HT set *e gets its entry. */
void kv_set_random(const kv_obj *o, kv_lp_val *v, kv_dict_entry **e);

/* Iterator: members as kv_lp_val (string or integer). */
typedef struct kv_set_iter {
    const kv_obj *o;
    uint32_t pos;
    kv_dict_iter di;
    kv_dict_entry *cur; /* HT: the entry just returned */
} kv_set_iter;
void kv_set_iter_init(kv_set_iter *it, const kv_obj *o);
int kv_set_iter_next(kv_set_iter *it, kv_lp_val *v);
void kv_set_iter_done(kv_set_iter *it);

/* Is the member v (from another set) in o? */
int kv_set_has_val(const kv_obj *o, const kv_lp_val *v);

/* kv_db_type_ops of sets. */
void kv_set_free(void *ptr, uint8_t enc);
void *kv_set_dup(const void *ptr, uint8_t enc);
size_t kv_set_mem(const void *ptr, uint8_t enc);

#endif
