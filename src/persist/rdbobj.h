/*
 * One value as an RDB object, in Redis's format: the codec shared by
 * DUMP/RESTORE, by moving a key between shards, and (later) by snapshots.
 *
 *   object   = type byte + the type's encoding (RDB_TYPE_STRING: one
 *              string, see below)
 *   payload  = object + RDB version (2 bytes LE, 10 = Redis 7.0)
 *              + CRC-64/Jones of everything before it (8 bytes LE)
 *
 * Strings are written exactly as Redis's rdbSaveRawString, so DUMP is
 * byte-identical to redis-server's: up to 11 bytes that are the canonical
 * decimal of a 32-bit integer become an 8/16/32-bit integer encoding;
 * longer than 20 bytes, LZF (liblzf, the codec Redis bundles) when it
 * saves at least 4 bytes; otherwise length + bytes.
 *
 * Other types: an RDB type kevy cannot store yet decodes to
 * KV_RDB_ENOTSUP, which RESTORE reports as "Bad data format". A data-type
 * module adds its type with kv_rdbobj_register() (encoder for its kv type,
 * decoder for the RDB type bytes it understands); nothing here changes.
 *
 * Every decoder is bounded by the input: lengths are checked against the
 * bytes left before anything is allocated, so random or truncated input
 * fails cleanly (t/unit/test_rdbobj.c runs that under ASan).
 */
#ifndef KV_PERSIST_RDBOBJ_H
#define KV_PERSIST_RDBOBJ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "shard/db.h"

#define KV_RDB_VERSION 10 /* Redis 7.0's RDB_VERSION */

/* RDB object type bytes (rdb.h), the ones Redis 7.0 accepts. */
enum {
    KV_RDB_TYPE_STRING = 0,
    KV_RDB_TYPE_LIST = 1,
    KV_RDB_TYPE_SET = 2,
    KV_RDB_TYPE_ZSET = 3,
    KV_RDB_TYPE_HASH = 4,
    KV_RDB_TYPE_ZSET_2 = 5,
    KV_RDB_TYPE_MODULE = 6,
    KV_RDB_TYPE_MODULE_2 = 7,
    KV_RDB_TYPE_HASH_ZIPMAP = 9,
    KV_RDB_TYPE_LIST_ZIPLIST = 10,
    KV_RDB_TYPE_SET_INTSET = 11,
    KV_RDB_TYPE_ZSET_ZIPLIST = 12,
    KV_RDB_TYPE_HASH_ZIPLIST = 13,
    KV_RDB_TYPE_LIST_QUICKLIST = 14,
    KV_RDB_TYPE_STREAM_LISTPACKS = 15,
    KV_RDB_TYPE_HASH_LISTPACK = 16,
    KV_RDB_TYPE_ZSET_LISTPACK = 17,
    KV_RDB_TYPE_LIST_QUICKLIST_2 = 18,
    KV_RDB_TYPE_STREAM_LISTPACKS_2 = 19,
    KV_RDB_TYPE_MAX = 20,
};

/* Results (0 = success). */
#define KV_RDB_OK 0
#define KV_RDB_EBADFMT (-1) /* malformed or truncated input              */
#define KV_RDB_ENOTSUP (-2) /* a valid type this build cannot store yet  */
#define KV_RDB_ENOMEM (-3)

/* ---- byte buffer and reader ------------------------------------------ */

typedef struct kv_rdb_buf {
    unsigned char *p;
    size_t len, cap;
    int oom; /* an append failed: the content is incomplete */
} kv_rdb_buf;

void kv_rdb_buf_init(kv_rdb_buf *b);
void kv_rdb_buf_free(kv_rdb_buf *b);
void kv_rdb_buf_append(kv_rdb_buf *b, const void *p, size_t n);

typedef struct kv_rdb_reader {
    const unsigned char *p;
    size_t len, pos;
} kv_rdb_reader;

static inline void kv_rdb_reader_init(kv_rdb_reader *r, const void *p, size_t len)
{
    r->p = p, r->len = len, r->pos = 0;
}

/* A decoded string: p/len always valid; bytes either point into the
 * input, into ibuf (integer encodings), or into owned (LZF). */
typedef struct kv_rdb_str {
    const char *p;
    size_t len;
    char *owned;
    int is_int; /* came from an integer encoding: value in ll */
    long long ll;
    char ibuf[24];
} kv_rdb_str;

static inline void kv_rdb_str_free(kv_rdb_str *s)
{
    free(s->owned);
    s->owned = NULL;
}

/* ---- primitives (rdbSaveLen, rdbSaveRawString and their loaders) ------ */

void kv_rdb_save_len(kv_rdb_buf *b, uint64_t len);
void kv_rdb_save_string(kv_rdb_buf *b, const void *p, size_t n);
/* Length or, when *encoded is set, an encoding id (RDB_ENC_*). */
int kv_rdb_load_len(kv_rdb_reader *r, uint64_t *len, int *encoded);
int kv_rdb_load_string(kv_rdb_reader *r, kv_rdb_str *out);

/* ---- objects ---------------------------------------------------------- */

/* Per-type codec for data-type modules (see the top comment). */
typedef struct kv_rdbobj_ops {
    /* Append type byte + encoding of the KV_STORE_PTR value o. */
    int (*save)(kv_rdb_buf *b, const kv_obj *o);
    /* Decode an object of RDB type `rdbtype` (type byte consumed); on
     * success set *enc and *ptr, a value the db will own. */
    int (*load)(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr);
    /* Release a decoded value that is not stored after all. */
    void (*free)(void *ptr, uint8_t enc);
} kv_rdbobj_ops;

/* kv_type: KV_TYPE_*; rdbtypes: the RDB type bytes `load` accepts. */
void kv_rdbobj_register(uint8_t kv_type, const uint8_t *rdbtypes, size_t n,
                        const kv_rdbobj_ops *ops);
const kv_rdbobj_ops *kv_rdbobj_type_ops(uint8_t kv_type);

/* Append the RDB object of o (type byte included). */
int kv_rdbobj_save(kv_rdb_buf *b, const kv_obj *o);

/* A decoded object, ready to become a key's value. */
typedef struct kv_rdbobj_value {
    uint8_t type;    /* KV_TYPE_* */
    kv_rdb_str str;  /* KV_TYPE_STRING */
    uint8_t enc;     /* others: KV_STORE_PTR value */
    void *ptr;
} kv_rdbobj_value;

/* Decode one object (type byte first) from r. On failure nothing is left
 * to free. */
int kv_rdbobj_load(kv_rdb_reader *r, kv_rdbobj_value *v);
/* Release a decoded value that was not stored. */
void kv_rdbobj_value_free(kv_rdbobj_value *v);
/* Store a decoded value as key (which must not exist), taking ownership;
 * strings get Redis's encoding (int / embstr / raw) as RESTORE leaves
 * them. Returns the entry, or NULL (then the value is freed). */
kv_dict_entry *kv_rdbobj_store(kv_db_t *db, const char *key, size_t klen, kv_rdbobj_value *v);

/* ---- DUMP payloads ----------------------------------------------------- */

/* Append the footer (RDB version, CRC-64 of b->p[start..]) that turns the
 * object written from `start` on into a DUMP payload. */
void kv_rdb_payload_finish(kv_rdb_buf *b, size_t start);

/* The DUMP payload of o into b (appended). */
int kv_rdbobj_dump(kv_rdb_buf *b, const kv_obj *o);
/* Redis's verifyDumpPayload: >= 10 bytes, version <= ours, CRC matches.
 * 0 if good. */
int kv_rdbobj_verify(const void *p, size_t n);
/* Decode a verified payload's object (as RESTORE: trailing bytes after
 * the object are ignored, as Redis does). */
int kv_rdbobj_load_payload(const void *p, size_t n, kv_rdbobj_value *v);

/* ---- moving a key between shards -------------------------------------- */

/* Serialize the value of e (a DUMP payload) into b; *ttl_ms gets its
 * absolute expiry (unix ms) or -1. */
int kv_rdbobj_export(const kv_dict_entry *e, kv_rdb_buf *b, int64_t *ttl_ms);
/* Recreate key from an exported payload, replacing any existing value,
 * with absolute expiry ttl_ms (-1: none; already past: the key is only
 * deleted). Returns KV_RDB_OK or an error; the db is unchanged on error. */
int kv_rdbobj_import(kv_db_t *db, const char *key, size_t klen, const void *payload, size_t n,
                     int64_t ttl_ms);

#endif
