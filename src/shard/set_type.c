/* The set value's two encodings; see set_type.h. */
#include <stdlib.h>
#include <string.h>

#include "shard/hash_util.h"
#include "shard/set_type.h"

size_t kv_set_max_intset_entries = 512;
void kv_set_set_max_intset_entries(size_t n) { kv_set_max_intset_entries = n; }

static kv_set_ht *ht_new(size_t presize)
{
    kv_set_ht *h = malloc(sizeof *h);
    if (!h) return NULL;
    if (!(h->d = kv_dict_new())) {
        free(h);
        return NULL;
    }
    if (presize) kv_dict_expand(h->d, presize);
    h->bytes = 0;
    return h;
}

static int ht_add(kv_set_ht *h, const char *s, size_t n)
{
    int created;
    if (!kv_dict_upsert(h->d, s, n, 0, &created)) return -1;
    if (created) h->bytes += kv_dict_entry_alloc_size(n, 0);
    return created;
}

int kv_set_box_init(kv_set_box *b, int ht)
{
    b->o = (kv_obj){ KV_TYPE_SET, ht ? KV_ENC_HT : KV_ENC_INTSET, KV_STORE_PTR, 0, 0 };
    b->ptr = ht ? (void *)ht_new(0) : (void *)kv_intset_new();
    return b->ptr ? 0 : -1;
}

void *kv_set_new_for(const char *s, size_t n, uint8_t *enc)
{
    long long v;
    if (kv_str2ll(s, n, &v)) {
        *enc = KV_ENC_INTSET;
        return kv_intset_new();
    }
    *enc = KV_ENC_HT;
    return ht_new(0);
}

size_t kv_set_size(const kv_obj *o)
{
    if (o->enc == KV_ENC_INTSET) return kv_intset_len(kv_db_ptr(o));
    return kv_dict_size(((kv_set_ht *)kv_db_ptr(o))->d);
}

int kv_set_ismember(const kv_obj *o, const char *s, size_t n)
{
    if (o->enc == KV_ENC_INTSET) {
        long long v;
        return kv_str2ll(s, n, &v) && kv_intset_find(kv_db_ptr(o), v);
    }
    return kv_dict_find(((kv_set_ht *)kv_db_ptr(o))->d, s, n) != NULL;
}

int kv_set_has_val(const kv_obj *o, const kv_lp_val *v)
{
    if (!v->s && o->enc == KV_ENC_INTSET) return kv_intset_find(kv_db_ptr(o), v->ll);
    char buf[KV_LP_INTBUF];
    size_t n;
    const char *s = kv_lp_val_str(v, buf, &n);
    return kv_set_ismember(o, s, n);
}

int kv_set_convert(kv_obj *o, size_t presize)
{
    if (o->enc != KV_ENC_INTSET) return 0;
    kv_intset *is = kv_db_ptr(o);
    kv_set_ht *h = ht_new(presize > is->length ? presize : is->length);
    if (!h) return -1;
    for (uint32_t i = 0; i < is->length; i++) {
        char buf[KV_LP_INTBUF];
        size_t n;
        kv_lp_val v = { NULL, 0, kv_intset_get(is, i) };
        const char *s = kv_lp_val_str(&v, buf, &n);
        if (ht_add(h, s, n) < 0) {
            kv_set_free(h, KV_ENC_HT);
            return -1;
        }
    }
    free(is);
    kv_db_set_ptr(o, KV_ENC_HT, h);
    return 0;
}

int kv_set_add_int(kv_obj *o, long long v)
{
    if (o->enc == KV_ENC_INTSET) {
        int added;
        kv_intset *is = kv_intset_add(kv_db_ptr(o), v, &added);
        if (!is) return -1;
        kv_db_set_ptr(o, KV_ENC_INTSET, is);
        if (added && is->length > kv_set_max_intset_entries && kv_set_convert(o, 0) < 0) return -1;
        return added;
    }
    char buf[KV_LP_INTBUF];
    size_t n;
    kv_lp_val lv = { NULL, 0, v };
    const char *s = kv_lp_val_str(&lv, buf, &n);
    return ht_add(kv_db_ptr(o), s, n);
}

int kv_set_add(kv_obj *o, const char *s, size_t n)
{
    if (o->enc == KV_ENC_INTSET) {
        long long v;
        if (kv_str2ll(s, n, &v)) return kv_set_add_int(o, v);
        /* Redis pre-sizes the table for the intset plus the newcomer */
        if (kv_set_convert(o, kv_intset_len(kv_db_ptr(o)) + 1) < 0) return -1;
    }
    return ht_add(kv_db_ptr(o), s, n);
}

int kv_set_remove(kv_obj *o, const char *s, size_t n)
{
    if (o->enc == KV_ENC_INTSET) {
        long long v;
        int removed;
        if (!kv_str2ll(s, n, &v)) return 0;
        kv_db_set_ptr(o, KV_ENC_INTSET, kv_intset_remove(kv_db_ptr(o), v, &removed));
        return removed;
    }
    kv_set_ht *h = kv_db_ptr(o);
    kv_dict_entry *e = kv_dict_unlink(h->d, s, n);
    if (!e) return 0;
    h->bytes -= kv_dict_entry_alloc_size(n, 0);
    kv_dict_entry_free(e);
    return 1;
}

void kv_set_random(const kv_obj *o, kv_lp_val *v, kv_dict_entry **ep)
{
    if (o->enc == KV_ENC_INTSET) {
        const kv_intset *is = kv_db_ptr(o);
        v->s = NULL;
        v->ll = kv_intset_get(is, (uint32_t)kv_coll_rand_n(is->length));
        if (ep) *ep = NULL;
        return;
    }
    kv_dict_entry *e = kv_dict_random(((kv_set_ht *)kv_db_ptr(o))->d);
    v->s = (const unsigned char *)kv_dict_entry_key(e);
    v->len = (uint32_t)kv_dict_entry_klen(e);
    if (ep) *ep = e;
}

void kv_set_iter_init(kv_set_iter *it, const kv_obj *o)
{
    it->o = o;
    it->pos = 0;
    it->cur = NULL;
    if (o->enc != KV_ENC_INTSET) kv_dict_iter_init(&it->di, ((kv_set_ht *)kv_db_ptr(o))->d);
}

int kv_set_iter_next(kv_set_iter *it, kv_lp_val *v)
{
    if (it->o->enc == KV_ENC_INTSET) {
        const kv_intset *is = kv_db_ptr(it->o);
        if (it->pos >= is->length) return 0;
        v->s = NULL;
        v->ll = kv_intset_get(is, it->pos++);
        return 1;
    }
    kv_dict_entry *e = kv_dict_iter_next(&it->di);
    if (!(it->cur = e)) return 0;
    v->s = (const unsigned char *)kv_dict_entry_key(e);
    v->len = (uint32_t)kv_dict_entry_klen(e);
    return 1;
}

void kv_set_iter_done(kv_set_iter *it)
{
    if (it->o->enc != KV_ENC_INTSET) kv_dict_iter_done(&it->di);
}

void kv_set_free(void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_INTSET) {
        free(ptr);
        return;
    }
    kv_set_ht *h = ptr;
    kv_dict_free(h->d, NULL, NULL);
    free(h);
}

void *kv_set_dup(const void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_INTSET) return kv_intset_dup(ptr);
    const kv_set_ht *h = ptr;
    kv_set_ht *c = ht_new(kv_dict_size(h->d));
    if (!c) return NULL;
    kv_dict_iter it;
    kv_dict_iter_init(&it, h->d);
    for (kv_dict_entry *e; (e = kv_dict_iter_next(&it));) {
        if (ht_add(c, kv_dict_entry_key(e), kv_dict_entry_klen(e)) < 0) {
            kv_dict_iter_done(&it);
            kv_set_free(c, KV_ENC_HT);
            return NULL;
        }
    }
    kv_dict_iter_done(&it);
    return c;
}

size_t kv_set_mem(const void *ptr, uint8_t enc)
{
    if (enc == KV_ENC_INTSET) return kv_intset_bytes(ptr);
    const kv_set_ht *h = ptr;
    return sizeof *h + sizeof(kv_dict) + h->bytes + 8 * kv_dict_size(h->d);
}

static const kv_db_type_ops set_ops = { kv_set_free, kv_set_dup, kv_set_mem };

__attribute__((constructor)) static void set_register(void)
{
    kv_db_register_type(KV_TYPE_SET, &set_ops);
}
