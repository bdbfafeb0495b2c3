/* RDB codec of hashes, as Redis 7.0 writes and loads them:
 *
 *   listpack  RDB_TYPE_HASH_LISTPACK (16): the listpack blob as a string
 *             (our in-memory blob is Redis's format, so DUMP bytes match)
 *   hashtable RDB_TYPE_HASH (4): count, then field and value strings
 *
 * Loading picks the encoding Redis would (listpack while within the
 * hash-max-listpack-* limits) and refuses, as "Bad data format", empty
 * hashes, malformed listpacks and duplicate fields. */
#include <stdlib.h>
#include <string.h>

#include "persist/rdbobj.h"
#include "shard/hash_type.h"

static int save(kv_rdb_buf *b, const kv_obj *o)
{
    unsigned char t;
    if (o->enc == KV_ENC_LISTPACK) {
        const unsigned char *lp = kv_db_ptr(o);
        t = KV_RDB_TYPE_HASH_LISTPACK;
        kv_rdb_buf_append(b, &t, 1);
        kv_rdb_save_string(b, lp, kv_lp_bytes(lp));
        return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
    }
    t = KV_RDB_TYPE_HASH;
    kv_rdb_buf_append(b, &t, 1);
    kv_rdb_save_len(b, kv_hash_len(o));
    kv_hash_iter it;
    kv_lp_val f, v;
    kv_hash_iter_init(&it, o);
    while (kv_hash_iter_next(&it, &f, &v)) {
        kv_rdb_save_string(b, f.s, f.len);
        kv_rdb_save_string(b, v.s, v.len);
    }
    kv_hash_iter_done(&it);
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

/* Any duplicate field in a listpack hash? n pairs. */
static int lp_has_dups(const unsigned char *lp, size_t n)
{
    if (n > 16) { /* a scratch dict beats the quadratic scan */
        kv_dict *d = kv_dict_new();
        int dup = 0;
        if (!d) return 1;
        for (unsigned char *p = kv_lp_first(lp); p && !dup; p = kv_lp_next(lp, kv_lp_next(lp, p))) {
            kv_lp_val v;
            char buf[KV_LP_INTBUF];
            size_t l;
            kv_lp_get(p, &v);
            const char *s = kv_lp_val_str(&v, buf, &l);
            int created;
            kv_dict_upsert(d, s, l, 0, &created);
            dup = !created;
        }
        kv_dict_free(d, NULL, NULL);
        return dup;
    }
    for (unsigned char *p = kv_lp_first(lp); p; p = kv_lp_next(lp, kv_lp_next(lp, p))) {
        kv_lp_val v;
        char buf[KV_LP_INTBUF];
        size_t l;
        kv_lp_get(p, &v);
        const char *s = kv_lp_val_str(&v, buf, &l);
        unsigned char *q = kv_lp_next(lp, kv_lp_next(lp, p));
        if (q && kv_lp_find(lp, q, s, l, 1)) return 1;
    }
    return 0;
}

static int load_listpack(kv_rdb_reader *r, uint8_t *enc, void **ptr)
{
    kv_rdb_str s;
    int rc = kv_rdb_load_string(r, &s);
    if (rc) return rc;
    size_t n;
    if (!kv_lp_validate((const unsigned char *)s.p, s.len, &n) || n == 0 || n % 2) {
        kv_rdb_str_free(&s);
        return KV_RDB_EBADFMT;
    }
    unsigned char *lp = malloc(s.len);
    if (!lp) {
        kv_rdb_str_free(&s);
        return KV_RDB_ENOMEM;
    }
    memcpy(lp, s.p, s.len);
    kv_rdb_str_free(&s);
    if (lp_has_dups(lp, n / 2)) {
        free(lp);
        return KV_RDB_EBADFMT;
    }
    /* a value over the limits gets the big encoding, as Redis's loader */
    kv_obj o = { KV_TYPE_HASH, KV_ENC_LISTPACK, KV_STORE_PTR, 0, 0 };
    struct {
        kv_obj o;
        void *p;
    } box = { o, lp };
    int convert = n / 2 > kv_hash_max_listpack_entries;
    for (unsigned char *p = kv_lp_first(lp); p && !convert; p = kv_lp_next(lp, p)) {
        kv_lp_val v;
        kv_lp_get(p, &v);
        if (v.s && v.len > kv_hash_max_listpack_value) convert = 1;
    }
    if (convert && kv_hash_convert(&box.o) < 0) {
        free(lp);
        return KV_RDB_ENOMEM;
    }
    *enc = box.o.enc;
    *ptr = box.p;
    return KV_RDB_OK;
}

static int load_ht(kv_rdb_reader *r, uint8_t *enc, void **ptr)
{
    uint64_t len;
    int encoded, rc;
    if ((rc = kv_rdb_load_len(r, &len, &encoded))) return rc;
    if (encoded || len == 0) return KV_RDB_EBADFMT;
    /* every pair takes at least 2 bytes: bounds the loop by the input */
    if (len > (r->len - r->pos) / 2) return KV_RDB_EBADFMT;
    struct {
        kv_obj o;
        void *p;
    } box = { { KV_TYPE_HASH, KV_ENC_LISTPACK, KV_STORE_PTR, 0, 0 }, NULL };
    if (len > kv_hash_max_listpack_entries) {
        box.o.enc = KV_ENC_HT;
        box.p = kv_hash_ht_new();
        if (box.p) kv_dict_expand(((kv_hash_ht *)box.p)->d, len);
    } else {
        box.p = kv_hash_new();
    }
    if (!box.p) return KV_RDB_ENOMEM;
    rc = KV_RDB_OK;
    for (uint64_t i = 0; i < len && rc == KV_RDB_OK; i++) {
        kv_rdb_str f, v;
        if ((rc = kv_rdb_load_string(r, &f))) break;
        if ((rc = kv_rdb_load_string(r, &v))) {
            kv_rdb_str_free(&f);
            break;
        }
        if (box.o.enc == KV_ENC_LISTPACK &&
            (f.len > kv_hash_max_listpack_value || v.len > kv_hash_max_listpack_value))
            if (kv_hash_convert(&box.o) < 0) rc = KV_RDB_ENOMEM;
        if (rc == KV_RDB_OK) {
            /* kv_hash_set on a fresh field returns 1; 0 means a duplicate */
            int s = kv_hash_set(&box.o, f.p, f.len, v.p, v.len);
            if (s < 0) rc = KV_RDB_ENOMEM;
            else if (s == 0) rc = KV_RDB_EBADFMT;
        }
        kv_rdb_str_free(&f);
        kv_rdb_str_free(&v);
    }
    if (rc) {
        kv_hash_free(box.p, box.o.enc);
        return rc;
    }
    *enc = box.o.enc;
    *ptr = box.p;
    return KV_RDB_OK;
}

static int load(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    if (rdbtype == KV_RDB_TYPE_HASH_LISTPACK) return load_listpack(r, enc, ptr);
    if (rdbtype == KV_RDB_TYPE_HASH) return load_ht(r, enc, ptr);
    return KV_RDB_ENOTSUP;
}

static const kv_rdbobj_ops ops = { save, load, kv_hash_free };

/* Runs at startup (constructor); callable again (idempotent) by tests,
 * which also makes a static link pull this file in. */
void kv_rdb_hash_register(void);
__attribute__((constructor)) void kv_rdb_hash_register(void)
{
    static const uint8_t types[] = { KV_RDB_TYPE_HASH, KV_RDB_TYPE_HASH_LISTPACK };
    kv_rdbobj_register(KV_TYPE_HASH, types, sizeof types, &ops);
}
