/* The keyspace: values inside dict entries, expiry, LRU/LFU. See db.h. */
#include "shard/db.h"
#include "shard/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"

#define EXPIRE_KEYS_PER_LOOP 20 /* Redis ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP */
#define EXPIRE_STALE_PCT 10     /* Redis 7.0 acceptable stale share */
#define EXPIRE_SLOW_CPU_PCT 25  /* Redis ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC */

static const kv_db_type_ops *g_ops[KV_TYPE_MAX];

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q && n) {
        fputs("kevy: out of memory in db\n", stderr);
        abort();
    }
    return q;
}

int64_t kv_db_now_ms(void) { return (int64_t)kv_time_unix_ms(); }


void kv_db_register_type(uint8_t type, const kv_db_type_ops *ops)
{
    if (type < KV_TYPE_MAX) g_ops[type] = ops;
}

kv_db_t *kv_db_new(void)
{
    kv_db_t *db = xrealloc(NULL, sizeof *db);
    memset(db, 0, sizeof *db);
    db->dict = kv_dict_new();
    db->lruclock = kv_db_lru_clock_now();
    db->lfu_log_factor = 10;
    db->lfu_decay_time = 1;
    return db;
}

void kv_db_set_policy(kv_db_t *db, int lfu, int no_shared_ints)
{
    db->lfu = (uint8_t)!!lfu;
    db->no_shared_ints = (uint8_t)!!no_shared_ints;
}

/* ---- value layout ------------------------------------------------------ */

static inline size_t payload_size(const kv_obj *o)
{
    return (o->flags & KV_OBJ_STORE_MASK) == KV_STORE_INLINE ? o->ilen : 8;
}

static inline size_t extra_size(const kv_obj *o)
{
    return 8 + ((o->flags & KV_OBJ_TTL) ? sizeof(kv_ttl) : 0) + payload_size(o);
}

static inline size_t entry_bytes(const kv_dict_entry *e)
{
    return kv_dict_entry_alloc_size(kv_dict_entry_klen(e), extra_size(kv_db_obj(e)));
}

/* Release what the payload owns (not the entry). */
static void free_payload(kv_db_t *db, kv_obj *o)
{
    if ((o->flags & KV_OBJ_STORE_MASK) != KV_STORE_PTR) return;
    void *p = kv_db_ptr(o);
    if (o->type == KV_TYPE_STRING) {
        kv_str_heap *h = p;
        db->mem_values -= sizeof *h + h->cap;
        free(h);
    } else if (g_ops[o->type] && g_ops[o->type]->free) {
        if (g_ops[o->type]->mem) db->mem_values -= g_ops[o->type]->mem(p, o->enc);
        g_ops[o->type]->free(p, o->enc);
    }
}

/* ---- the TTL array --------------------------------------------------- */

static void ttl_add(kv_db_t *db, kv_dict_entry *e, kv_obj *o)
{
    if (db->nttl == db->ttl_cap) {
        db->ttl_cap = db->ttl_cap ? db->ttl_cap * 2 : 16;
        db->ttl = xrealloc(db->ttl, db->ttl_cap * sizeof *db->ttl);
    }
    kv_db_ttl(o)->slot = (uint32_t)db->nttl;
    db->ttl[db->nttl++] = e;
}

static void ttl_remove(kv_db_t *db, kv_obj *o)
{
    size_t s = kv_db_ttl(o)->slot;
    kv_dict_entry *last = db->ttl[--db->nttl];
    if (s != db->nttl) {
        db->ttl[s] = last;
        kv_db_ttl(kv_db_obj(last))->slot = (uint32_t)s;
    }
    if (db->ttl_cap > 64 && db->nttl < db->ttl_cap / 4) {
        db->ttl_cap /= 2;
        db->ttl = xrealloc(db->ttl, db->ttl_cap * sizeof *db->ttl);
    }
}

/* Resize e's extra bytes; keeps the TTL array pointing at it. The caller
 * has already set the flags the new size follows from. */
static kv_dict_entry *entry_resize(kv_db_t *db, kv_dict_entry *e, size_t old_extra,
                                   size_t new_extra)
{
    if (old_extra == new_extra) return e;
    size_t klen = kv_dict_entry_klen(e);
    db->mem_values += kv_dict_entry_alloc_size(klen, new_extra);
    db->mem_values -= kv_dict_entry_alloc_size(klen, old_extra);
    kv_dict_entry *n = kv_dict_entry_resize(db->dict, e, new_extra);
    kv_obj *o = kv_db_obj(n);
    if (o->flags & KV_OBJ_TTL) db->ttl[kv_db_ttl(o)->slot] = n;
    return n;
}

/* ---- delete ---------------------------------------------------------- */

static void free_entry_cb(void *ud, kv_dict_entry *e)
{
    kv_db_t *db = ud;
    free_payload(db, kv_db_obj(e));
}

void kv_db_delete_entry(kv_db_t *db, kv_dict_entry *e)
{
    kv_obj *o = kv_db_obj(e);
    if (o->flags & KV_OBJ_TTL) ttl_remove(db, o);
    free_payload(db, o);
    db->mem_values -= entry_bytes(e);
    kv_dict_unlink_entry(db->dict, e);
    kv_dict_entry_free(e);
}

void kv_db_flush(kv_db_t *db)
{
    if (db->nwatched) kv_watch_touch_all(db);
    kv_dict_empty(db->dict, free_entry_cb, db);
    free(db->ttl);
    db->ttl = NULL;
    db->nttl = db->ttl_cap = 0;
    db->mem_values = 0;
}

void kv_db_free(kv_db_t *db)
{
    if (!db) return;
    kv_db_flush(db);
    kv_dict_free(db->dict, NULL, NULL);
    free(db);
}

size_t kv_db_mem(const kv_db_t *db)
{
    return sizeof *db + db->mem_values + kv_dict_mem(db->dict) + db->ttl_cap * sizeof *db->ttl;
}

/* ---- lookup / expiry --------------------------------------------------- */

static void expire_entry(kv_db_t *db, kv_dict_entry *e)
{
    db->stat_expired++;
    if (db->on_expired) db->on_expired(db->hook_ud, kv_dict_entry_key(e), kv_dict_entry_klen(e));
    if (db->nwatched) kv_watch_touch(db, kv_dict_entry_key(e), kv_dict_entry_klen(e));
    kv_notify(db, KV_NOTIFY_EXPIRED, "expired", kv_dict_entry_key(e), kv_dict_entry_klen(e));
    kv_db_delete_entry(db, e);
}

kv_dict_entry *kv_db_find(kv_db_t *db, const char *key, size_t klen, int flags)
{
    kv_dict_entry *e = kv_dict_find(db->dict, key, klen);
    if (e) {
        kv_obj *o = kv_db_obj(e);
        if ((o->flags & KV_OBJ_TTL) && kv_db_ttl(o)->when <= kv_db_now_ms()) {
            expire_entry(db, e);
            e = NULL;
        } else if (!(flags & KV_LOOKUP_NOTOUCH)) {
            kv_db_touch(db, o);
        }
    }
    if (!(flags & KV_LOOKUP_WRITE)) {
        if (e) db->stat_hits++;
        else db->stat_misses++;
    }
    return e;
}

int kv_db_delete(kv_db_t *db, const char *key, size_t klen)
{
    kv_dict_entry *e = kv_db_find(db, key, klen, KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH);
    if (!e) return 0;
    kv_db_delete_entry(db, e);
    return 1;
}

kv_dict_entry *kv_db_expire_set(kv_db_t *db, kv_dict_entry *e, int64_t when)
{
    kv_obj *o = kv_db_obj(e);
    if (o->flags & KV_OBJ_TTL) {
        kv_db_ttl(o)->when = when;
        return e;
    }
    size_t old = extra_size(o), psz = payload_size(o);
    o->flags |= KV_OBJ_TTL;
    kv_dict_entry *n = kv_dict_entry_resize(db->dict, e, old + sizeof(kv_ttl));
    db->mem_values += sizeof(kv_ttl);
    o = kv_db_obj(n);
    memmove((char *)o + 8 + sizeof(kv_ttl), (char *)o + 8, psz);
    kv_db_ttl(o)->when = when;
    kv_db_ttl(o)->spare = 0;
    ttl_add(db, n, o);
    return n;
}

kv_dict_entry *kv_db_expire_clear(kv_db_t *db, kv_dict_entry *e)
{
    kv_obj *o = kv_db_obj(e);
    if (!(o->flags & KV_OBJ_TTL)) return e;
    size_t old = extra_size(o), psz = payload_size(o);
    ttl_remove(db, o);
    memmove((char *)o + 8, (char *)o + 8 + sizeof(kv_ttl), psz);
    o->flags &= (uint8_t)~KV_OBJ_TTL;
    db->mem_values -= sizeof(kv_ttl);
    return kv_dict_entry_resize(db->dict, e, old - sizeof(kv_ttl));
}

size_t kv_db_active_expire_cycle(kv_db_t *db, uint64_t budget_us)
{
    uint64_t start = kv_time_mono_us();
    size_t deleted = 0, sampled_total = 0, expired_total = 0;
    int iteration = 0;
    db->stat_expire_cycles++;
    for (;;) {
        if (db->nttl == 0) break;
        size_t sampled = 0, expired = 0;
        int64_t now = kv_db_now_ms();
        unsigned n = db->nttl < EXPIRE_KEYS_PER_LOOP ? (unsigned)db->nttl : EXPIRE_KEYS_PER_LOOP;
        for (unsigned i = 0; i < n && db->nttl; i++) {
            /* uniform: any slot of the flat array */
            kv_dict_entry *e = db->ttl[(size_t)rand() % db->nttl];
            sampled++;
            if (kv_db_ttl(kv_db_obj(e))->when <= now) {
                expire_entry(db, e);
                expired++;
            }
        }
        deleted += expired;
        sampled_total += sampled, expired_total += expired;
        /* the clock is read every 16 loops, as Redis does */
        if ((++iteration & 15) == 0 && kv_time_mono_us() - start > budget_us) break;
        if (sampled == 0 || expired * 100 / sampled <= EXPIRE_STALE_PCT) break;
    }
    if (sampled_total) {
        double perc = (double)expired_total / (double)sampled_total;
        db->stat_expired_stale_perc = perc * 0.05 + db->stat_expired_stale_perc * 0.95;
    }
    return deleted;
}

void kv_db_cron(kv_db_t *db, int hz)
{
    if (hz < 1) hz = 1;
    db->lruclock = kv_db_lru_clock_now();
    kv_db_active_expire_cycle(db, 1000000ull * EXPIRE_SLOW_CPU_PCT / (unsigned)hz / 100);
    kv_dict_rehash_ms(db->dict, 1);
}

/* ---- strings --------------------------------------------------------- */

const char *kv_db_str(const kv_obj *o, char buf[KV_DB_INTBUF], size_t *len)
{
    const char *p = kv_db_payload(o);
    switch (o->flags & KV_OBJ_STORE_MASK) {
    case KV_STORE_INT: {
        int64_t v;
        memcpy(&v, p, 8);
        *len = (size_t)snprintf(buf, KV_DB_INTBUF, "%lld", (long long)v);
        return buf;
    }
    case KV_STORE_INLINE:
        *len = o->ilen;
        return p;
    default: {
        const kv_str_heap *h = *(kv_str_heap *const *)(const void *)p;
        *len = h->len;
        return h->data;
    }
    }
}

size_t kv_db_strlen(const kv_obj *o)
{
    char buf[KV_DB_INTBUF];
    size_t n;
    if ((o->flags & KV_OBJ_STORE_MASK) == KV_STORE_INT) kv_db_str(o, buf, &n);
    else if ((o->flags & KV_OBJ_STORE_MASK) == KV_STORE_INLINE) n = o->ilen;
    else n = (*(kv_str_heap **)kv_db_payload(o))->len;
    return n;
}

/* Make key hold a fresh payload of psize bytes stored as `store`: creates
 * the entry or frees the old value in place. With when >= 0 the key gets
 * that TTL in the same allocation (SET EX: one realloc, not two); else the
 * TTL survives only with keepttl (and only if not already past). Header
 * fields other than flags/lru are the caller's to fill. */
static kv_dict_entry *prepare(kv_db_t *db, const char *key, size_t klen, size_t psize,
                              uint8_t store, int keepttl, int64_t when)
{
    int created, want = when >= 0;
    size_t tsz = want ? sizeof(kv_ttl) : 0;
    kv_dict_entry *e = kv_dict_upsert(db->dict, key, klen, 8 + tsz + psize, &created);
    if (!e) abort(); /* klen > 4 GB cannot pass the protocol limit */
    kv_obj *o = kv_db_obj(e);
    if (created) {
        db->mem_values += kv_dict_entry_alloc_size(klen, 8 + tsz + psize);
        o->flags = (uint8_t)(store | (want ? KV_OBJ_TTL : 0));
        o->lru = kv_db_clock_init(db);
        if (want) {
            kv_db_ttl(o)->when = when;
            kv_db_ttl(o)->spare = 0;
            ttl_add(db, e, o);
        }
        return e;
    }
    size_t old = extra_size(o);
    free_payload(db, o);
    int ttl = (o->flags & KV_OBJ_TTL) != 0;
    if (ttl && keepttl && !want && kv_db_ttl(o)->when <= kv_db_now_ms()) {
        /* expired but not yet collected: it is a new key */
        db->stat_expired++;
        if (db->on_expired) db->on_expired(db->hook_ud, key, klen);
        if (db->nwatched) kv_watch_touch(db, key, klen);
        kv_notify(db, KV_NOTIFY_EXPIRED, "expired", key, klen);
        keepttl = 0;
    }
    if (ttl && !keepttl && !want) {
        ttl_remove(db, o);
        ttl = 0;
    }
    /* the TTL flag is set only once the slot is valid (entry_resize) */
    o->flags = (uint8_t)((ttl ? KV_OBJ_TTL : 0) | store);
    if (!db->lfu) o->lru = db->lruclock; /* LFU keeps the counter, as Redis */
    e = entry_resize(db, e, old, 8 + ((ttl || want) ? sizeof(kv_ttl) : 0) + psize);
    if (want) {
        o = kv_db_obj(e);
        if (!ttl) {
            o->flags |= KV_OBJ_TTL;
            kv_db_ttl(o)->spare = 0;
            ttl_add(db, e, o);
        }
        kv_db_ttl(o)->when = when;
    }
    return e;
}

static kv_str_heap *heap_new(kv_db_t *db, size_t cap)
{
    kv_str_heap *h = xrealloc(NULL, sizeof *h + cap);
    h->cap = cap;
    db->mem_values += sizeof *h + cap;
    return h;
}

kv_dict_entry *kv_db_set_ll(kv_db_t *db, const char *key, size_t klen, long long v,
                            unsigned flags)
{
    return kv_db_set_ll_ttl(db, key, klen, v, flags, -1);
}

kv_dict_entry *kv_db_set_ll_ttl(kv_db_t *db, const char *key, size_t klen, long long v,
                                unsigned flags, int64_t when)
{
    kv_dict_entry *e = prepare(db, key, klen, 8, KV_STORE_INT, flags & KV_SET_KEEPTTL, when);
    kv_obj *o = kv_db_obj(e);
    o->type = KV_TYPE_STRING;
    o->enc = KV_ENC_INT;
    o->ilen = 0;
    int64_t x = v;
    memcpy(kv_db_payload(o), &x, 8);
    return e;
}

kv_dict_entry *kv_db_set_str(kv_db_t *db, const char *key, size_t klen, const char *v,
                             size_t vlen, unsigned flags)
{
    return kv_db_set_str_ttl(db, key, klen, v, vlen, flags, -1);
}

kv_dict_entry *kv_db_set_str_ttl(kv_db_t *db, const char *key, size_t klen, const char *v,
                                 size_t vlen, unsigned flags, int64_t when)
{
    long long ll;
    /* Redis's tryObjectEncoding */
    if (!(flags & (KV_SET_RAW | KV_SET_EMBSTR)) && vlen <= 20 && kv_str2ll(v, vlen, &ll))
        return kv_db_set_ll_ttl(db, key, klen, ll, flags, when);
    int inl = vlen <= KV_DB_INLINE_MAX;
    kv_dict_entry *e = prepare(db, key, klen, inl ? vlen : 8, inl ? KV_STORE_INLINE : KV_STORE_PTR,
                               flags & KV_SET_KEEPTTL, when);
    kv_obj *o = kv_db_obj(e);
    o->type = KV_TYPE_STRING;
    o->enc = (!(flags & KV_SET_RAW) && vlen <= KV_EMBSTR_MAX) ? KV_ENC_EMBSTR : KV_ENC_RAW;
    if (inl) {
        o->ilen = (uint8_t)vlen;
        if (vlen) memcpy(kv_db_payload(o), v, vlen);
    } else {
        o->ilen = 0;
        kv_str_heap *h = heap_new(db, vlen);
        h->len = vlen;
        memcpy(h->data, v, vlen);
        *(kv_str_heap **)kv_db_payload(o) = h;
    }
    return e;
}

char *kv_db_str_resize(kv_db_t *db, kv_dict_entry **ep, size_t newlen)
{
    kv_dict_entry *e = *ep;
    kv_obj *o = kv_db_obj(e);
    int store = o->flags & KV_OBJ_STORE_MASK;
    o->enc = KV_ENC_RAW;
    if (store == KV_STORE_PTR) {
        kv_str_heap *h = kv_db_ptr(o);
        if (newlen > h->cap) {
            /* greedy growth, as sds: APPEND in a loop stays amortised O(1) */
            size_t cap = newlen < 1024 * 1024 ? newlen * 2 : newlen + 1024 * 1024;
            db->mem_values += cap - h->cap;
            h = xrealloc(h, sizeof *h + cap);
            h->cap = cap;
            kv_db_set_ptr(o, KV_ENC_RAW, h);
        }
        if (newlen > h->len) memset(h->data + h->len, 0, newlen - h->len);
        h->len = newlen;
        return h->data;
    }
    /* int or inline: take the current bytes out first */
    char buf[KV_DB_INTBUF], small[KV_DB_INLINE_MAX];
    size_t olen;
    const char *cur = kv_db_str(o, buf, &olen);
    memcpy(small, cur, olen);
    size_t old = extra_size(o), keep = olen < newlen ? olen : newlen;
    uint8_t ttl = o->flags & KV_OBJ_TTL;
    char *dst;
    if (newlen <= KV_DB_INLINE_MAX) {
        o->flags = (uint8_t)(ttl | KV_STORE_INLINE);
        o->ilen = (uint8_t)newlen;
        e = entry_resize(db, e, old, 8 + (ttl ? sizeof(kv_ttl) : 0) + newlen);
        dst = kv_db_payload(kv_db_obj(e));
    } else {
        o->flags = (uint8_t)(ttl | KV_STORE_PTR);
        o->ilen = 0;
        e = entry_resize(db, e, old, 8 + (ttl ? sizeof(kv_ttl) : 0) + 8);
        size_t cap = newlen < 1024 * 1024 ? newlen * 2 : newlen + 1024 * 1024;
        kv_str_heap *h = heap_new(db, cap);
        h->len = newlen;
        *(kv_str_heap **)kv_db_payload(kv_db_obj(e)) = h;
        dst = h->data;
    }
    memcpy(dst, small, keep);
    if (newlen > keep) memset(dst + keep, 0, newlen - keep);
    *ep = e;
    return dst;
}

/* ---- other values, rename, copy ---------------------------------------- */

kv_dict_entry *kv_db_add_ptr(kv_db_t *db, const char *key, size_t klen, uint8_t type,
                             uint8_t enc, void *ptr)
{
    kv_dict_entry *e = prepare(db, key, klen, 8, KV_STORE_PTR, 0, -1);
    kv_obj *o = kv_db_obj(e);
    o->type = type;
    o->ilen = 0;
    kv_db_set_ptr(o, enc, ptr);
    if (g_ops[type] && g_ops[type]->mem) db->mem_values += g_ops[type]->mem(ptr, enc);
    return e;
}

/* Create dst (replacing any value) with src's header and payload bytes;
 * the payload is shared until the caller either drops src's entry
 * without freeing it (rename) or replaces the copy's pointer (copy). */
static kv_dict_entry *clone_entry(kv_db_t *db, kv_dict_entry *src, const char *dst, size_t dlen)
{
    kv_obj *so = kv_db_obj(src);
    size_t psz = payload_size(so);
    kv_dict_entry *old = kv_dict_find(db->dict, dst, dlen);
    if (old) kv_db_delete_entry(db, old);
    kv_dict_entry *e = kv_dict_insert(db->dict, dst, dlen, 8 + psz);
    if (!e) abort();
    db->mem_values += kv_dict_entry_alloc_size(dlen, 8 + psz);
    kv_obj *o = kv_db_obj(e);
    *o = *kv_db_obj(src); /* inserts never move other entries */
    o->flags &= (uint8_t)~KV_OBJ_TTL;
    memcpy((char *)o + 8, kv_db_payload(kv_db_obj(src)), psz);
    return e;
}

kv_dict_entry *kv_db_rename(kv_db_t *db, kv_dict_entry *src, const char *dst, size_t dlen)
{
    int64_t when = kv_db_expire_get(kv_db_obj(src));
    kv_dict_entry *e = clone_entry(db, src, dst, dlen);
    /* drop src without freeing the payload the new key now owns */
    kv_obj *so = kv_db_obj(src);
    if (so->flags & KV_OBJ_TTL) ttl_remove(db, so);
    db->mem_values -= entry_bytes(src);
    kv_dict_unlink_entry(db->dict, src);
    kv_dict_entry_free(src);
    if (when != -1) e = kv_db_expire_set(db, e, when);
    return e;
}

kv_dict_entry *kv_db_copy(kv_db_t *db, kv_dict_entry *src, const char *dst, size_t dlen)
{
    kv_obj *so = kv_db_obj(src);
    void *copy = NULL;
    if ((so->flags & KV_OBJ_STORE_MASK) == KV_STORE_PTR) {
        void *p = kv_db_ptr(so);
        if (so->type == KV_TYPE_STRING) {
            const kv_str_heap *h = p;
            kv_str_heap *n = heap_new(db, h->len);
            n->len = h->len;
            memcpy(n->data, h->data, h->len);
            copy = n;
        } else {
            const kv_db_type_ops *ops = g_ops[so->type];
            if (!ops || !ops->dup) return NULL;
            copy = ops->dup(p, so->enc);
            if (ops->mem) db->mem_values += ops->mem(copy, so->enc);
        }
    }
    int64_t when = kv_db_expire_get(so);
    kv_dict_entry *e = clone_entry(db, src, dst, dlen);
    kv_obj *o = kv_db_obj(e);
    if (copy) *(void **)kv_db_payload(o) = copy;
    o->lru = kv_db_clock_init(db);
    if (when != -1) e = kv_db_expire_set(db, e, when);
    return e;
}

