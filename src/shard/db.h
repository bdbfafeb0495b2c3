/*
 * The keyspace of one shard: keys in a kv_dict, each value stored inside
 * its key's dict entry (the entry's "extra" bytes, see dict.h and
 * docs/keyspace.md), expiry, LRU/LFU clocks and memory accounting.
 *
 * Extra bytes of an entry:
 *
 *   0   kv_obj      8 B   type, encoding, flags, inline length, LRU/LFU
 *   8   kv_ttl     16 B   only when flags & KV_OBJ_TTL: unix ms + slot
 *   8|24 payload           KV_STORE_INT:    int64 (encoding "int")
 *                          KV_STORE_INLINE: ilen string bytes
 *                          KV_STORE_PTR:    a pointer (a long string's
 *                                           kv_str_heap, or a collection)
 *
 * `enc` is what OBJECT ENCODING reports and follows Redis exactly (int,
 * embstr <= 44 bytes, raw); the storage kind is ours: strings up to
 * KV_DB_INLINE_MAX bytes live inline even when Redis would say "raw",
 * because one allocation is both lighter and faster than two.
 *
 * Keys with a TTL are also listed in a flat array of entry pointers
 * (kv_ttl.slot is the index), which the active expire cycle samples
 * uniformly. Cost per volatile key: 16 B in the entry + 8 B in the array,
 * against Redis's 32 B dictEntry in its expires dict.
 *
 * Entry pointers stay valid until the next call that may move the entry:
 * every function that takes `kv_dict_entry *e` and returns one (the new
 * address), and any deletion. Collections (hash, list, set, zset, stream)
 * always use KV_STORE_PTR and register a kv_db_type_ops for their type.
 *
 * All keys a handler sees are local to this shard: the router has already
 * split or forwarded the command.
 */
#ifndef KV_SHARD_DB_H
#define KV_SHARD_DB_H

#include <stddef.h>
#include <stdint.h>

#include "shard/dict.h"

/* Types and encodings use Redis's numbering (OBJ_*, OBJ_ENCODING_*), which
 * the RDB code relies on. */
enum {
    KV_TYPE_STRING = 0,
    KV_TYPE_LIST = 1,
    KV_TYPE_SET = 2,
    KV_TYPE_ZSET = 3,
    KV_TYPE_HASH = 4,
    KV_TYPE_MODULE = 5,
    KV_TYPE_STREAM = 6,
    KV_TYPE_MAX = 8,
};
enum {
    KV_ENC_RAW = 0,
    KV_ENC_INT = 1,
    KV_ENC_HT = 2,
    KV_ENC_ZIPMAP = 3,
    KV_ENC_LINKEDLIST = 4,
    KV_ENC_ZIPLIST = 5,
    KV_ENC_INTSET = 6,
    KV_ENC_SKIPLIST = 7,
    KV_ENC_EMBSTR = 8,
    KV_ENC_QUICKLIST = 9,
    KV_ENC_STREAM = 10,
    KV_ENC_LISTPACK = 11,
};

#define KV_EMBSTR_MAX 44    /* Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT */
#define KV_DB_INLINE_MAX 255 /* strings up to this many bytes stay inline */
#define KV_SHARED_INTEGERS 10000 /* Redis's OBJ_SHARED_INTEGERS */
#define KV_SHARED_REFCOUNT 2147483647 /* OBJECT REFCOUNT of a shared object */
#define KV_STRING_MAX (512LL * 1024 * 1024) /* proto-max-bulk-len default */

/* kv_obj.flags */
#define KV_OBJ_TTL 0x01         /* a kv_ttl follows the header */
#define KV_OBJ_STORE_MASK 0x06
#define KV_STORE_INT 0x00
#define KV_STORE_INLINE 0x02
#define KV_STORE_PTR 0x04

typedef struct kv_obj {
    uint8_t type;  /* KV_TYPE_* */
    uint8_t enc;   /* KV_ENC_*, as OBJECT ENCODING reports */
    uint8_t flags; /* KV_OBJ_TTL | storage kind */
    uint8_t ilen;  /* KV_STORE_INLINE: string length */
    uint32_t lru;  /* LRU: clock in s (24 bits); LFU: minutes<<8 | counter */
} kv_obj;

typedef struct kv_ttl {
    int64_t when;  /* unix ms */
    uint32_t slot; /* index in the db's TTL array */
    uint32_t spare;
} kv_ttl;

/* A long string (KV_STORE_PTR, type string). */
typedef struct kv_str_heap {
    size_t len, cap;
    char data[];
} kv_str_heap;

/* Per collection type: what the db needs to free, copy and measure a
 * KV_STORE_PTR value it does not know. */
typedef struct kv_db_type_ops {
    void (*free)(void *ptr, uint8_t enc);
    void *(*dup)(const void *ptr, uint8_t enc);   /* COPY */
    size_t (*mem)(const void *ptr, uint8_t enc);  /* bytes, for accounting */
} kv_db_type_ops;

typedef struct kv_db_s kv_db_t;
struct kv_db_s {
    kv_dict *dict;
    kv_dict_entry **ttl; /* entries with a TTL, in any order */
    size_t nttl, ttl_cap;
    size_t mem_values;   /* bytes of entries and out-of-line values */
    uint64_t dirty;      /* changes since the last save (Redis's dirty) */
    uint32_t lruclock;   /* refreshed by the cron */
    uint8_t lfu;         /* maxmemory-policy is an LFU one */
    uint8_t no_shared_ints; /* an LRU/LFU policy with maxmemory set */
    uint32_t lfu_log_factor, lfu_decay_time;
    uint64_t stat_expired, stat_hits, stat_misses, stat_expire_cycles;
    double stat_expired_stale_perc;
    /* Hooks, all optional: a key was changed by a command (WATCH,
     * keyspace notifications); a key expired (propagate DEL to the AOF and
     * replicas). */
    void (*on_modified)(void *ud, const char *key, size_t klen);
    void (*on_expired)(void *ud, const char *key, size_t klen);
    void *hook_ud;
    size_t nwatched;     /* WATCH registrations on this shard (watch.c) */
};

/* watch.c: mark the watchers of key (a change, an expiry, a flush). */
void kv_watch_touch(kv_db_t *db, const char *key, size_t klen);
void kv_watch_touch_all(kv_db_t *db);

/* ---- lifecycle ------------------------------------------------------- */

kv_db_t *kv_db_new(void);
void kv_db_free(kv_db_t *db);
/* Remove every key (FLUSHDB / FLUSHALL, sync and async alike). */
void kv_db_flush(kv_db_t *db);
/* The worker's timer at `hz`: LRU clock, active expire (Redis's slow
 * cycle: up to 25% of a CPU), 1 ms of incremental rehash. */
void kv_db_cron(kv_db_t *db, int hz);
/* The active expire cycle alone, bounded by budget_us: sample 20 keys
 * with a TTL, delete the expired ones, repeat while more than 10% of a
 * sample had expired (Redis 7.0). Returns keys deleted. */
size_t kv_db_active_expire_cycle(kv_db_t *db, uint64_t budget_us);
static inline size_t kv_db_size(const kv_db_t *db) { return kv_dict_size(db->dict); }
static inline size_t kv_db_volatile(const kv_db_t *db) { return db->nttl; }
/* Bytes held by the keyspace: entries, out-of-line values, bucket and TTL
 * arrays (requested sizes, before allocator rounding). */
size_t kv_db_mem(const kv_db_t *db);
void kv_db_register_type(uint8_t type, const kv_db_type_ops *ops);
/* maxmemory-policy changed: LFU keeps frequency in the lru field; LRU/LFU
 * with maxmemory disables shared integers (OBJECT REFCOUNT). */
void kv_db_set_policy(kv_db_t *db, int lfu, int no_shared_ints);

/* ---- time ------------------------------------------------------------ */

int64_t kv_db_now_ms(void);
/* LRU clock now (s, 24 bits); a new value's lru field (object.c). */
uint32_t kv_db_lru_clock_now(void);
uint32_t kv_db_clock_init(const kv_db_t *db);

/* ---- lookup ---------------------------------------------------------- */

#define KV_LOOKUP_WRITE 0x01   /* no hit/miss statistics */
#define KV_LOOKUP_NOTOUCH 0x02 /* leave the LRU/LFU clock alone */

/* The live entry for key, or NULL (an expired key is deleted first). */
kv_dict_entry *kv_db_find(kv_db_t *db, const char *key, size_t klen, int flags);
static inline kv_obj *kv_db_obj(const kv_dict_entry *e) { return kv_dict_entry_extra(e); }
static inline kv_ttl *kv_db_ttl(const kv_obj *o) { return (kv_ttl *)(void *)((char *)o + 8); }
static inline void *kv_db_payload(const kv_obj *o)
{
    return (char *)o + ((o->flags & KV_OBJ_TTL) ? 24 : 8);
}
/* The pointer of a KV_STORE_PTR value. */
static inline void *kv_db_ptr(const kv_obj *o) { return *(void **)kv_db_payload(o); }
/* Replace a KV_STORE_PTR value's pointer and encoding (a collection that
 * converted itself); the old pointer is the caller's to free. */
static inline void kv_db_set_ptr(kv_obj *o, uint8_t enc, void *ptr)
{
    o->enc = enc;
    *(void **)kv_db_payload(o) = ptr;
}
/* Mark a value accessed (TOUCH; lookups do it unless NOTOUCH). */
void kv_db_touch(kv_db_t *db, kv_obj *o);
/* OBJECT IDLETIME in seconds; OBJECT FREQ (LFU counter after decay). */
long long kv_db_idle_seconds(const kv_db_t *db, const kv_obj *o);
unsigned kv_db_lfu_freq(const kv_db_t *db, kv_obj *o);
/* OBJECT REFCOUNT: Redis shares the integers 0..9999. */
long long kv_db_refcount(const kv_db_t *db, const kv_obj *o);

/* ---- strings --------------------------------------------------------- */

#define KV_DB_INTBUF 24 /* buffer for kv_db_str of an "int" string */

/* The bytes of a string value; an "int" one is formatted into buf. */
const char *kv_db_str(const kv_obj *o, char buf[KV_DB_INTBUF], size_t *len);
size_t kv_db_strlen(const kv_obj *o);

/* kv_db_set_str flags */
#define KV_SET_KEEPTTL 0x01 /* keep the key's TTL (SET KEEPTTL) */
#define KV_SET_RAW 0x02     /* store as Redis's "raw" (no int/embstr) */
#define KV_SET_EMBSTR 0x04  /* "embstr" up to 44 bytes, else "raw", never
                               "int" (INCRBYFLOAT's result) */

/* Set key to a string, creating it or replacing any value of any type.
 * Without KEEPTTL the TTL is dropped. Encoding as Redis's
 * tryObjectEncoding unless a flag says otherwise. Returns the entry. */
kv_dict_entry *kv_db_set_str(kv_db_t *db, const char *key, size_t klen, const char *v,
                             size_t vlen, unsigned flags);
/* Same with an integer value ("int" encoding). */
kv_dict_entry *kv_db_set_ll(kv_db_t *db, const char *key, size_t klen, long long v,
                            unsigned flags);
/* The same, also giving the key the TTL `when` (unix ms) when >= 0, in one
 * step (SET EX, SETEX, restoring a snapshot). */
kv_dict_entry *kv_db_set_str_ttl(kv_db_t *db, const char *key, size_t klen, const char *v,
                                 size_t vlen, unsigned flags, int64_t when);
kv_dict_entry *kv_db_set_ll_ttl(kv_db_t *db, const char *key, size_t klen, long long v,
                                unsigned flags, int64_t when);
/* Resize the string at e to newlen bytes (the first min(old,new) kept, new
 * bytes zeroed) and return a writable pointer to them; the encoding
 * becomes "raw" (as APPEND and SETRANGE leave it). *ep is updated. */
char *kv_db_str_resize(kv_db_t *db, kv_dict_entry **ep, size_t newlen);

/* ---- other values ---------------------------------------------------- */

/* Set key (created, or its old value of any type freed and its TTL
 * dropped) to a KV_STORE_PTR value of type/enc. The db owns ptr from now
 * on. */
kv_dict_entry *kv_db_add_ptr(kv_db_t *db, const char *key, size_t klen, uint8_t type,
                             uint8_t enc, void *ptr);

/* ---- delete, rename, copy -------------------------------------------- */

/* Delete key: 1 if a live key was deleted, 0 if absent or expired. */
int kv_db_delete(kv_db_t *db, const char *key, size_t klen);
void kv_db_delete_entry(kv_db_t *db, kv_dict_entry *e);
/* Move the value and TTL of src to the key dst (replacing dst), as RENAME.
 * src must be live. Returns dst's entry. */
kv_dict_entry *kv_db_rename(kv_db_t *db, kv_dict_entry *src, const char *dst, size_t dlen);
/* Copy the value (and TTL) of src to dst, replacing it; returns the new
 * entry or NULL if the type has no dup. */
kv_dict_entry *kv_db_copy(kv_db_t *db, kv_dict_entry *src, const char *dst, size_t dlen);

/* ---- expiry ---------------------------------------------------------- */

/* Unix ms of the TTL, -1 if none. */
static inline int64_t kv_db_expire_get(const kv_obj *o)
{
    return (o->flags & KV_OBJ_TTL) ? kv_db_ttl(o)->when : -1;
}
/* Give e a TTL at unix ms `when`; returns e's new address. */
kv_dict_entry *kv_db_expire_set(kv_db_t *db, kv_dict_entry *e, int64_t when);
/* Remove e's TTL (PERSIST); returns e's new address. */
kv_dict_entry *kv_db_expire_clear(kv_db_t *db, kv_dict_entry *e);

/* A command changed key: dirty counter and the on_modified hook. */
static inline void kv_db_changed(kv_db_t *db, const char *key, size_t klen, unsigned n)
{
    db->dirty += n;
    if (db->on_modified) db->on_modified(db->hook_ud, key, klen);
    if (db->nwatched) kv_watch_touch(db, key, klen);
}

/* ---- helpers shared by the command files ------------------------------ */

/* Redis's string2ll: canonical decimal of a 64-bit integer only (no
 * sign '+', no leading zeros, no spaces). 1 on success. */
int kv_str2ll(const char *s, size_t len, long long *out);
/* Redis's string2ld for INCRBYFLOAT: strtold on the whole slice, no
 * leading space, not NaN. 1 on success. */
int kv_str2ld(const char *s, size_t len, long double *out);

/* Type names as TYPE reports them ("string", "list", ..., "none"). */
const char *kv_db_type_name(int type);
const char *kv_db_enc_name(int enc);

#endif
