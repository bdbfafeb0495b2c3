/*
 * Sorted sets: the value behind a KV_TYPE_ZSET key, in one of the two
 * encodings Redis 7.0 reports (docs/zset.md):
 *
 *   KV_ENC_LISTPACK  kv_zsmall: one packed buffer of (member, score) in
 *                    order, for zsets up to zset-max-listpack-entries
 *                    members of at most zset-max-listpack-value bytes;
 *   KV_ENC_SKIPLIST  kv_zsl: a skiplist with spans whose nodes live inside
 *                    the member dict's entries (zskiplist.h).
 *
 * The functions here hide the encoding from the command files: lookups,
 * adds and deletes, iteration by rank / score / lex, conversion, and the
 * byte counts the db's memory accounting needs.
 */
#ifndef KV_SHARD_ZSET_TYPE_H
#define KV_SHARD_ZSET_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "shard/db.h"
#include "shard/zskiplist.h"

/* Thresholds, named after Redis's config parameters (CONFIG wires them). */
extern size_t kv_zset_max_listpack_entries; /* zset-max-listpack-entries 128 */
extern size_t kv_zset_max_listpack_value;   /* zset-max-listpack-value 64 */
void kv_zset_set_max_listpack_entries(size_t n);
void kv_zset_set_max_listpack_value(size_t n);

/* ---- the small encoding ("listpack") ------------------------------------
 * data[] holds count elements, in (score, member) order, each
 *   mlen (1 byte < 255, or 0xFF + u32)  member  score (8 B double)
 *   back (1 byte total element length < 255, or u32 + 0xFF)
 * so it can be walked both ways. 8 bytes of header against Redis's 7, and
 * the score is read without strtod. */
typedef struct kv_zsmall {
    uint32_t len;   /* bytes used in data */
    uint32_t count; /* elements */
    unsigned char data[];
} kv_zsmall;

kv_zsmall *kv_zsm_new(size_t cap);
size_t kv_zsm_mem(const kv_zsmall *z);
/* Element at byte offset off: member, length, score; returns its length. */
size_t kv_zsm_get(const kv_zsmall *z, size_t off, const char **m, size_t *mlen, double *score);
size_t kv_zsm_prev(const kv_zsmall *z, size_t off); /* off > 0 */
/* Offset of member, or -1. */
long kv_zsm_find(const kv_zsmall *z, const char *m, size_t mlen, double *score);
/* Insert (member absent) in order; returns the (maybe moved) buffer. */
kv_zsmall *kv_zsm_insert(kv_zsmall *z, const char *m, size_t mlen, double score);
/* Append at the end (caller guarantees order: loading, conversion). */
kv_zsmall *kv_zsm_append(kv_zsmall *z, const char *m, size_t mlen, double score);
/* Delete the elements in bytes [from, to), n of them. */
void kv_zsm_delete(kv_zsmall *z, size_t from, size_t to, size_t n);
/* Offset of the element of 0-based rank r (< count). */
size_t kv_zsm_at_rank(const kv_zsmall *z, size_t r);

/* ---- ranges (Redis's zrangespec / zlexrangespec) ------------------------ */

typedef struct {
    double min, max;
    int minex, maxex;
} kv_zrange;

/* A lex bound: inf < 0 is "-", > 0 is "+"; else p/len, ex exclusive. */
typedef struct {
    const char *p;
    size_t len;
    int ex, inf;
} kv_zlexb;
typedef struct {
    kv_zlexb min, max;
} kv_zlex;

int kv_zscore_gte_min(double v, const kv_zrange *r);
int kv_zscore_lte_max(double v, const kv_zrange *r);
int kv_zlex_gte_min(const char *m, size_t n, const kv_zlex *r);
int kv_zlex_lte_max(const char *m, size_t n, const kv_zlex *r);
/* Whether the range can hold anything at all. */
int kv_zrange_empty(const kv_zrange *r);
int kv_zlex_empty(const kv_zlex *r);
int kv_zmember_cmp(const char *a, size_t al, const char *b, size_t bl);

/* ---- iteration ----------------------------------------------------------- */

typedef struct {
    const kv_obj *o;
    size_t off;          /* listpack: byte offset */
    kv_dict_entry *node; /* skiplist */
    int valid;
} kv_zit;

void kv_zit_rank(kv_zit *it, const kv_obj *o, size_t rank); /* rank < len */
/* The elements in a range are consecutive ranks: the first (0-based) in
 * *first, the count returned. */
size_t kv_zset_span_score(const kv_obj *o, const kv_zrange *r, size_t *first);
size_t kv_zset_span_lex(const kv_obj *o, const kv_zlex *r, size_t *first);
void kv_zit_get(const kv_zit *it, const char **m, size_t *mlen, double *score);
void kv_zit_next(kv_zit *it);
void kv_zit_prev(kv_zit *it);

/* A value outside the keyspace (a result being built, a set converted for
 * ZUNION): laid out as a kv_obj without TTL, so every kv_zset_* call and
 * kv_db_ptr() work on &v->o. */
typedef struct {
    kv_obj o;
    void *ptr;
} kv_zval;
static inline kv_obj *kv_zval_init(kv_zval *v, uint8_t enc, void *ptr)
{
    v->o = (kv_obj){ .type = KV_TYPE_ZSET, .enc = enc, .flags = KV_STORE_PTR };
    v->ptr = ptr;
    return &v->o;
}

/* ---- whole value --------------------------------------------------------- */

size_t kv_zset_len(const kv_obj *o);
size_t kv_zset_mem(const void *ptr, uint8_t enc);
/* A new, empty value for `hint` elements whose longest member is maxlen:
 * a listpack when both fit (the caller stores enc/ptr). */
void *kv_zset_create(size_t hint, size_t maxlen, uint8_t *enc);
void kv_zset_free(void *ptr, uint8_t enc);
void *kv_zset_dup(const void *ptr, uint8_t enc);
/* Convert o in place to enc (the listpack one only when it fits). */
void kv_zset_convert(kv_obj *o, uint8_t enc);
/* A finished skiplist value that fits the listpack limits goes back to a
 * listpack (STORE results, loading), as Redis's
 * zsetConvertToListpackIfNeeded. */
void kv_zset_shrink_if_fits(kv_obj *o);

/* Score of member: 1 found, 0 not. */
int kv_zset_score(const kv_obj *o, const char *m, size_t mlen, double *score);
/* 0-based rank of member (rev: from the top); -1 when absent. */
long kv_zset_rank(const kv_obj *o, const char *m, size_t mlen, int rev, double *score);

/* Redis's zsetAdd flags. */
#define KV_ZADD_IN_INCR 1
#define KV_ZADD_IN_NX 2
#define KV_ZADD_IN_XX 4
#define KV_ZADD_IN_GT 8
#define KV_ZADD_IN_LT 16
#define KV_ZADD_OUT_NOP 1
#define KV_ZADD_OUT_NAN 2
#define KV_ZADD_OUT_ADDED 4
#define KV_ZADD_OUT_UPDATED 8
/* Add or update member (may convert o). Returns 0 when INCR made NaN. */
int kv_zset_add(kv_obj *o, double score, const char *m, size_t mlen, int in, int *out,
                double *newscore);
/* Add a member known to be absent and to sort after every element
 * (building a value in order), converting to a skiplist when it grows
 * past the listpack limits. */
void kv_zset_append(kv_obj *o, const char *m, size_t mlen, double score);
/* Delete member: 1 if it was there. */
int kv_zset_del(kv_obj *o, const char *m, size_t mlen);
/* Delete the ranks [start, end] (0-based, in range); returns count. */
size_t kv_zset_del_ranks(kv_obj *o, size_t start, size_t end);

/* Db glue: adjust the db's byte count by the change since `before`. */
static inline void kv_zset_account(kv_db_t *db, const kv_obj *o, size_t before)
{
    db->mem_values += kv_zset_mem(kv_db_ptr(o), o->enc);
    db->mem_values -= before;
}

#endif
