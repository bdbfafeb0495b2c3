/*
 * Whole RDB files, in the format redis-server 7.0 writes (RDB version 10),
 * so redis-check-rdb and redis-server read kevy's shard snapshots and kevy
 * imports a Redis dump.rdb:
 *
 *   "REDIS0010"
 *   AUX redis-ver 7.0.15, redis-bits, ctime, used-mem, aof-base 0
 *   SELECTDB 0, RESIZEDB keys expires
 *   per key: [EXPIRETIME_MS t] type key value      (value: persist/rdbobj.h)
 *   EOF, CRC-64/Jones of everything before (8 bytes LE)
 *
 * Loading accepts every version Redis 7.0 loads (1..10) and every opcode
 * it knows: AUX, RESIZEDB, SELECTDB 0, EXPIRETIME(_MS), IDLE, FREQ are
 * read; FUNCTION2 libraries are skipped and counted (kevy has no
 * functions); MODULE_AUX, module values, the pre-release FUNCTION opcode
 * and keys in a database other than 0 are refused. The file is mapped
 * read-only and every read is bounded by its size: a torn or corrupt file
 * gives an error naming the file and the byte offset where it went wrong
 * ("FILE: corrupt at offset N: why"), never a crash.
 */
#ifndef KV_PERSIST_RDB_FILE_H
#define KV_PERSIST_RDB_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "persist/rdbobj.h"
#include "shard/db.h"

/* RDB opcodes (rdb.h). */
enum {
    KV_RDB_OPCODE_FUNCTION2 = 245,
    KV_RDB_OPCODE_FUNCTION_PRE_GA = 246,
    KV_RDB_OPCODE_MODULE_AUX = 247,
    KV_RDB_OPCODE_IDLE = 248,
    KV_RDB_OPCODE_FREQ = 249,
    KV_RDB_OPCODE_AUX = 250,
    KV_RDB_OPCODE_RESIZEDB = 251,
    KV_RDB_OPCODE_EXPIRETIME_MS = 252,
    KV_RDB_OPCODE_EXPIRETIME = 253,
    KV_RDB_OPCODE_SELECTDB = 254,
    KV_RDB_OPCODE_EOF = 255,
};

/* ---- saving ----------------------------------------------------------- */

/* Write db as a complete RDB file to fd (from its current position).
 * Returns 0, or -1 with errno set and a message in err. */
int kv_rdb_write_fd(kv_db_t *db, int fd, char *err, size_t errlen);
/* write(2) until all n bytes are written (EINTR retried); 0 or -1 (errno). */
int kv_write_all(int fd, const void *buf, size_t n);

/* Write db to tmp (created or truncated), fsync it, rename it to path and
 * fsync the directory: path holds either the old or the new snapshot,
 * whole, whatever happens. On failure tmp is removed; -1 with err. */
int kv_rdb_save_file(kv_db_t *db, const char *path, const char *tmp, char *err, size_t errlen);

/* ---- loading ---------------------------------------------------------- */

typedef struct kv_rdb_load_stats {
    uint64_t keys_loaded;
    uint64_t keys_expired;  /* had a TTL in the past: not stored */
    uint64_t functions_skipped;
    int version;            /* the file's RDB version */
    uint64_t bad_offset;    /* on error: where */
} kv_rdb_load_stats;

/* Called per key with its decoded value (owned by the callee from now on:
 * store it or free it with kv_rdbobj_value_free) and its absolute expiry
 * (unix ms, -1 none). Return 0, or -1 with a reason in err (the loader
 * adds file and offset). */
typedef int kv_rdb_key_fn(void *ud, const char *key, size_t klen, kv_rdbobj_value *v,
                          int64_t expire_ms, char *err, size_t errlen);
/* RESIZEDB hint (may be NULL). */
typedef void kv_rdb_resize_fn(void *ud, uint64_t keys, uint64_t expires);

/* Parse the RDB image p[0..n) (name is for messages). 0 or -1 with err
 * "NAME: corrupt at offset N: why" and st->bad_offset. */
int kv_rdb_load_mem(const void *p, size_t n, const char *name, kv_rdb_key_fn *fn,
                    kv_rdb_resize_fn *resize, void *ud, kv_rdb_load_stats *st, char *err,
                    size_t errlen);

/* Map and parse the file at path. 0, or -1 with err (also for a file that
 * cannot be opened: errno tells; ENOENT means there is none). */
int kv_rdb_load_file(const char *path, kv_rdb_key_fn *fn, kv_rdb_resize_fn *resize, void *ud,
                     kv_rdb_load_stats *st, char *err, size_t errlen);

/* Store one loaded key into db, taking v: 1 when its expiry has passed
 * (dropped, as a Redis master does), 0 stored, -1 duplicate or OOM (err). */
int kv_rdb_store_key(kv_db_t *db, const char *key, size_t klen, kv_rdbobj_value *v, int64_t expire_ms,
                     char *err, size_t errlen);

/* Load path into db (which should be empty): keys whose TTL has passed
 * are dropped, as a Redis master does; a key present twice is an error. */
int kv_rdb_load_db(kv_db_t *db, const char *path, kv_rdb_load_stats *st, char *err, size_t errlen);
/* The same from an image in memory (name for messages). */
int kv_rdb_load_db_mem(kv_db_t *db, const void *p, size_t n, const char *name, kv_rdb_load_stats *st,
                       char *err, size_t errlen);

#endif
