/* The hash value's two encodings; see hash_type.h. */
#include <stdlib.h>
#include <string.h>

#include "shard/hash_type.h"

size_t kv_hash_max_listpack_entries = 512; /* Redis 7.0 compiled-in default (redis.conf says 128) */
size_t kv_hash_max_listpack_value = 64;
void kv_hash_set_max_listpack_entries(size_t n) { kv_hash_max_listpack_entries = n; }
void kv_hash_set_max_listpack_value(size_t n) { kv_hash_max_listpack_value = n; }

/* ---- HT entries: field as the dict key, value inline ------------------ */

static inline size_t vprefix(size_t vl) { return vl < 0xFF ? 1 : 5; }

static void entry_write(kv_dict_entry *e, const char *v, size_t vl)
{
    unsigned char *x = kv_dict_entry_extra(e);
    if (vl < 0xFF) {
        x[0] = (unsigned char)vl;
    } else {
        uint32_t l = (uint32_t)vl;
        x[0] = 0xFF;
        memcpy(x + 1, &l, 4);
    }
    if (vl) memcpy(x + vprefix(vl), v, vl);
}

void kv_hash_entry_val(const kv_dict_entry *e, kv_lp_val *v)
{
    const unsigned char *x = kv_dict_entry_extra(e);
    uint32_t l = x[0];
    if (l == 0xFF) memcpy(&l, x + 1, 4);
    v->len = l;
    v->s = x + vprefix(l);
    v->ll = 0;
}

static size_t entry_bytes(const kv_dict_entry *e)
{
    kv_lp_val v;
    kv_hash_entry_val(e, &v);
    return kv_dict_entry_alloc_size(kv_dict_entry_klen(e), vprefix(v.len) + v.len);
}

kv_hash_ht *kv_hash_ht_new(void)
{
    kv_hash_ht *h = malloc(sizeof *h);
    if (!h) return NULL;
    if (!(h->d = kv_dict_new())) {
        free(h);
        return NULL;
    }
    h->bytes = 0;
    return h;
}

int kv_hash_ht_add(kv_hash_ht *h, const char *f, size_t fl, const char *v, size_t vl)
{
    kv_dict_entry *e = kv_dict_insert(h->d, f, fl, vprefix(vl) + vl);
    if (!e) return -1;
    entry_write(e, v, vl);
    h->bytes += kv_dict_entry_alloc_size(fl, vprefix(vl) + vl);
    return 0;
}

static void ht_free_entry(void *ud, kv_dict_entry *e)
{
    (void)ud;
    (void)e; /* nothing outside the entry */
}

/* ---- the value ------------------------------------------------------- */

void *kv_hash_new(void) { return kv_lp_new(); }

size_t kv_hash_len(const kv_obj *o)
{
    if (o->enc == KV_ENC_LISTPACK) return kv_lp_count(kv_db_ptr(o)) / 2;
    return kv_dict_size(((kv_hash_ht *)kv_db_ptr(o))->d);
}

int kv_hash_get(const kv_obj *o, const char *f, size_t fl, kv_lp_val *v)
{
    if (o->enc == KV_ENC_LISTPACK) {
        unsigned char *lp = kv_db_ptr(o), *p = kv_lp_first(lp);
        if (!p || !(p = kv_lp_find(lp, p, f, fl, 1))) return 0;
        kv_lp_get(kv_lp_next(lp, p), v);
        return 1;
    }
    kv_dict_entry *e = kv_dict_find(((kv_hash_ht *)kv_db_ptr(o))->d, f, fl);
    if (!e) return 0;
    kv_hash_entry_val(e, v);
    return 1;
}

int kv_hash_convert(kv_obj *o)
{
    if (o->enc != KV_ENC_LISTPACK) return 0;
    unsigned char *lp = kv_db_ptr(o);
    kv_hash_ht *h = kv_hash_ht_new();
    if (!h) return -1;
    kv_dict_expand(h->d, kv_lp_count(lp) / 2);
    for (unsigned char *p = kv_lp_first(lp); p; p = kv_lp_next(lp, kv_lp_next(lp, p))) {
        kv_lp_val fv, vv;
        char fb[KV_LP_INTBUF], vb[KV_LP_INTBUF];
        size_t fl, vl;
        kv_lp_get(p, &fv);
        kv_lp_get(kv_lp_next(lp, p), &vv);
        const char *f = kv_lp_val_str(&fv, fb, &fl), *v = kv_lp_val_str(&vv, vb, &vl);
        if (kv_hash_ht_add(h, f, fl, v, vl) < 0) {
            kv_hash_free(h, KV_ENC_HT);
            return -1;
        }
    }
    free(lp);
    kv_db_set_ptr(o, KV_ENC_HT, h);
    return 0;
}

void kv_hash_try_convert(kv_obj *o, const kv_resp_arg *argv, int first, int last)
{
    if (o->enc != KV_ENC_LISTPACK) return;
    size_t sum = 0;
    for (int i = first; i <= last; i++) {
        if (argv[i].len > kv_hash_max_listpack_value) {
            kv_hash_convert(o);
            return;
        }
        sum += argv[i].len;
    }
    if (!kv_lp_safe_to_add(kv_db_ptr(o), sum)) kv_hash_convert(o);
}

int kv_hash_set(kv_obj *o, const char *f, size_t fl, const char *v, size_t vl)
{
    /* Redis checks here too, for HINCRBY*'s values (hashTypeSet) */
    if (o->enc == KV_ENC_LISTPACK &&
        (fl > kv_hash_max_listpack_value || vl > kv_hash_max_listpack_value))
        if (kv_hash_convert(o) < 0) return -1;
    if (o->enc == KV_ENC_LISTPACK) {
        unsigned char *lp = kv_db_ptr(o), *p = kv_lp_first(lp), *n;
        if (p && (p = kv_lp_find(lp, p, f, fl, 1))) {
            p = kv_lp_next(lp, p);
            if (!(n = kv_lp_replace(lp, &p, v, vl))) return -1;
            kv_db_set_ptr(o, KV_ENC_LISTPACK, n);
            return 0;
        }
        if (!(n = kv_lp_append(lp, f, fl))) return -1;
        lp = n;
        if (!(n = kv_lp_append(lp, v, vl))) {
            p = kv_lp_last(lp); /* undo the field: keep pairs whole */
            lp = kv_lp_delete(lp, &p, 1);
            kv_db_set_ptr(o, KV_ENC_LISTPACK, lp);
            return -1;
        }
        kv_db_set_ptr(o, KV_ENC_LISTPACK, n);
        if (kv_lp_count(n) / 2 > kv_hash_max_listpack_entries) kv_hash_convert(o);
        return 1;
    }
    kv_hash_ht *h = kv_db_ptr(o);
    int created;
    kv_dict_entry *e = kv_dict_upsert(h->d, f, fl, vprefix(vl) + vl, &created);
    if (!e) return -1;
    if (!created) {
        size_t old = entry_bytes(e);
        kv_lp_val cur;
        kv_hash_entry_val(e, &cur);
        if (vprefix(cur.len) + cur.len != vprefix(vl) + vl)
            e = kv_dict_entry_resize(h->d, e, vprefix(vl) + vl);
        h->bytes -= old;
    }
    entry_write(e, v, vl);
    h->bytes += kv_dict_entry_alloc_size(fl, vprefix(vl) + vl);
    return created;
}

int kv_hash_del(kv_obj *o, const char *f, size_t fl)
{
    if (o->enc == KV_ENC_LISTPACK) {
        unsigned char *lp = kv_db_ptr(o), *p = kv_lp_first(lp);
        if (!p || !(p = kv_lp_find(lp, p, f, fl, 1))) return 0;
        kv_db_set_ptr(o, KV_ENC_LISTPACK, kv_lp_delete(lp, &p, 2));
        return 1;
    }
    kv_hash_ht *h = kv_db_ptr(o);
    kv_dict_entry *e = kv_dict_unlink(h->d, f, fl);
    if (!e) return 0;
    h->bytes -= entry_bytes(e);
    kv_dict_entry_free(e);
    return 1;
}

/* ---- iteration ------------------------------------------------------- */

void kv_hash_iter_init(kv_hash_iter *it, const kv_obj *o)
{
    it->o = o;
    if (o->enc == KV_ENC_LISTPACK) it->p = kv_lp_first(kv_db_ptr(o));
    else kv_dict_iter_init(&it->di, ((kv_hash_ht *)kv_db_ptr(o))->d);
}

int kv_hash_iter_next(kv_hash_iter *it, kv_lp_val *f, kv_lp_val *v)
{
    if (it->o->enc == KV_ENC_LISTPACK) {
        const unsigned char *lp = kv_db_ptr(it->o);
        if (!it->p) return 0;
        unsigned char *vp = kv_lp_next(lp, it->p);
        kv_lp_get(it->p, f);
        kv_lp_get(vp, v);
        it->p = kv_lp_next(lp, vp);
        return 1;
    }
    kv_dict_entry *e = kv_dict_iter_next(&it->di);
    if (!e) return 0;
    f->s = (const unsigned char *)kv_dict_entry_key(e);
    f->len = (uint32_t)kv_dict_entry_klen(e);
    f->ll = 0;
    kv_hash_entry_val(e, v);
    return 1;
}

void kv_hash_iter_done(kv_hash_iter *it)
{
    if (it->o->enc != KV_ENC_LISTPACK) kv_dict_iter_done(&it->di);
}

/* ---- kv_db_type_ops -------------------------------------------------- */

void kv_hash_free(void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_LISTPACK) {
        free(ptr);
        return;
    }
    kv_hash_ht *h = ptr;
    kv_dict_free(h->d, ht_free_entry, NULL);
    free(h);
}

void *kv_hash_dup(const void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_LISTPACK) return kv_lp_dup(ptr);
    const kv_hash_ht *h = ptr;
    kv_hash_ht *c = kv_hash_ht_new();
    if (!c) return NULL;
    kv_dict_expand(c->d, kv_dict_size(h->d));
    kv_dict_iter it;
    kv_dict_iter_init(&it, h->d);
    for (kv_dict_entry *e; (e = kv_dict_iter_next(&it));) {
        kv_lp_val v;
        kv_hash_entry_val(e, &v);
        if (kv_hash_ht_add(c, kv_dict_entry_key(e), kv_dict_entry_klen(e), (const char *)v.s,
                           v.len) < 0) {
            kv_dict_iter_done(&it);
            kv_hash_free(c, KV_ENC_HT);
            return NULL;
        }
    }
    kv_dict_iter_done(&it);
    return c;
}

size_t kv_hash_mem(const void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_LISTPACK) return kv_lp_bytes(ptr);
    const kv_hash_ht *h = ptr;
    return sizeof *h + sizeof(kv_dict) + h->bytes + 8 * kv_dict_size(h->d);
}

static const kv_db_type_ops hash_ops = { kv_hash_free, kv_hash_dup, kv_hash_mem };

/* The db learns the type at startup: no central list to edit. */
__attribute__((constructor)) static void hash_register(void)
{
    kv_db_register_type(KV_TYPE_HASH, &hash_ops);
}
