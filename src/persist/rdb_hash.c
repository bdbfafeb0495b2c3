/* RDB codec of hashes, as Redis 7.0 writes and loads them:
 *
 *   listpack  RDB_TYPE_HASH_LISTPACK (16): the listpack blob as a string
 *             (our in-memory blob is Redis's format, so DUMP bytes match)
 *   hashtable RDB_TYPE_HASH (4): count, then field and value strings
 *
 * Loading picks the encoding Redis would (listpack while within the
 * hash-max-listpack-* limits) and refuses, as "Bad data format", empty
 * hashes, malformed listpacks and duplicate fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/rdbobj.h"
#include "persist/ziplist.h"
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

/* ---- older encodings Redis 7.0 still loads ------------------------------ */

/* Build a hash from (field, value) pairs pulled by next(); duplicates are
 * a bad file, as in Redis. */
typedef int pair_fn(void *it, const char **f, size_t *fl, const char **v, size_t *vl, char *fb, char *vb);

static int build_pairs(pair_fn *next, void *it, uint8_t *enc, void **ptr)
{
    struct {
        kv_obj o;
        void *p;
    } box = { { KV_TYPE_HASH, KV_ENC_LISTPACK, KV_STORE_PTR, 0, 0 }, kv_hash_new() };
    if (!box.p) return KV_RDB_ENOMEM;
    const char *f, *v;
    size_t fl, vl, n = 0;
    char fb[32], vb[32];
    int rc = KV_RDB_OK, more;
    while (rc == KV_RDB_OK && (more = next(it, &f, &fl, &v, &vl, fb, vb)) > 0) {
        n++;
        if (box.o.enc == KV_ENC_LISTPACK && (n > kv_hash_max_listpack_entries || fl > kv_hash_max_listpack_value
                                             || vl > kv_hash_max_listpack_value))
            if (kv_hash_convert(&box.o) < 0) rc = KV_RDB_ENOMEM;
        if (rc == KV_RDB_OK) {
            int st = kv_hash_set(&box.o, f, fl, v, vl);
            rc = st < 0 ? KV_RDB_ENOMEM : st == 0 ? KV_RDB_EBADFMT : KV_RDB_OK;
        }
    }
    if (rc == KV_RDB_OK && (more < 0 || n == 0)) rc = KV_RDB_EBADFMT;
    if (rc) {
        kv_hash_free(box.p, box.o.enc);
        return rc;
    }
    *enc = box.o.enc;
    *ptr = box.p;
    return KV_RDB_OK;
}

/* RDB_TYPE_HASH_ZIPLIST (13): a ziplist of field, value, ... */
typedef struct { const unsigned char *p; } zl_it;

static const char *zl_str(const kv_zl_val *z, char *buf, size_t *len)
{
    if (z->s) { *len = z->len; return (const char *) z->s; }
    *len = (size_t) snprintf(buf, 32, "%lld", z->ll);
    return buf;
}

static int zl_next(void *vit, const char **f, size_t *fl, const char **v, size_t *vl, char *fb, char *vb)
{
    zl_it *it = vit;
    if (!it->p) return 0;
    const unsigned char *q = kv_zl_next(it->p);
    if (!q) return -1;                  /* a field without its value */
    kv_zl_val zf, zv;
    kv_zl_get(it->p, &zf);
    kv_zl_get(q, &zv);
    *f = zl_str(&zf, fb, fl);
    *v = zl_str(&zv, vb, vl);
    it->p = kv_zl_next(q);
    return 1;
}

static int load_ziplist(kv_rdb_reader *r, uint8_t *enc, void **ptr)
{
    kv_rdb_str s;
    size_t n;
    int rc = kv_rdb_load_string(r, &s);
    if (rc) return rc;
    if (!kv_zl_validate((const unsigned char *) s.p, s.len, &n) || n == 0 || n % 2) {
        kv_rdb_str_free(&s);
        return KV_RDB_EBADFMT;
    }
    zl_it it = { kv_zl_first((const unsigned char *) s.p) };
    rc = build_pairs(zl_next, &it, enc, ptr);
    kv_rdb_str_free(&s);
    return rc;
}

/* RDB_TYPE_HASH_ZIPMAP (9), Redis < 2.6: <zmlen> then <len>field<len><free>
 * value<free bytes> ... 0xFF, lengths 1 byte below 254, else 254 + 4 LE. */
typedef struct { const unsigned char *p, *end; } zm_it;

static int zm_len(zm_it *it, uint32_t *len)
{
    if (it->p >= it->end) return -1;
    if (*it->p < 254) { *len = *it->p++; return 0; }
    if (*it->p == 254 && it->end - it->p >= 5) {
        memcpy(len, it->p + 1, 4);      /* little endian, as x86 */
        it->p += 5;
        return 0;
    }
    return -1;
}

static int zm_next(void *vit, const char **f, size_t *fl, const char **v, size_t *vl, char *fb, char *vb)
{
    zm_it *it = vit;
    uint32_t a, b;
    (void) fb, (void) vb;
    if (it->p >= it->end) return -1;
    if (*it->p == 255) return 0;
    if (zm_len(it, &a) || (size_t) (it->end - it->p) < a) return -1;
    *f = (const char *) it->p, *fl = a;
    it->p += a;
    if (zm_len(it, &b) || it->p >= it->end) return -1;
    unsigned free_bytes = *it->p++;
    if ((size_t) (it->end - it->p) < (size_t) b + free_bytes) return -1;
    *v = (const char *) it->p, *vl = b;
    it->p += b + free_bytes;
    return 1;
}

static int load_zipmap(kv_rdb_reader *r, uint8_t *enc, void **ptr)
{
    kv_rdb_str s;
    int rc = kv_rdb_load_string(r, &s);
    if (rc) return rc;
    if (s.len < 2) {
        kv_rdb_str_free(&s);
        return KV_RDB_EBADFMT;
    }
    zm_it it = { (const unsigned char *) s.p + 1, (const unsigned char *) s.p + s.len };
    rc = build_pairs(zm_next, &it, enc, ptr);
    kv_rdb_str_free(&s);
    return rc;
}

static int load(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    if (rdbtype == KV_RDB_TYPE_HASH_LISTPACK) return load_listpack(r, enc, ptr);
    if (rdbtype == KV_RDB_TYPE_HASH) return load_ht(r, enc, ptr);
    if (rdbtype == KV_RDB_TYPE_HASH_ZIPLIST) return load_ziplist(r, enc, ptr);
    if (rdbtype == KV_RDB_TYPE_HASH_ZIPMAP) return load_zipmap(r, enc, ptr);
    return KV_RDB_ENOTSUP;
}

static const kv_rdbobj_ops ops = { save, load, kv_hash_free };

/* Runs at startup (constructor); callable again (idempotent) by tests,
 * which also makes a static link pull this file in. */
void kv_rdb_hash_register(void);
__attribute__((constructor)) void kv_rdb_hash_register(void)
{
    static const uint8_t types[] = { KV_RDB_TYPE_HASH, KV_RDB_TYPE_HASH_LISTPACK, KV_RDB_TYPE_HASH_ZIPLIST,
                                     KV_RDB_TYPE_HASH_ZIPMAP };
    kv_rdbobj_register(KV_TYPE_HASH, types, sizeof types, &ops);
}
