/* SPOP and SRANDMEMBER, with the cases of Redis 7.0 (same reply shapes
 * and errors; the picks are random). A whole-set answer comes in the
 * order of a freshly built copy, as Redis's (sorted for intsets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/hash_util.h"
#include "shard/set_cmd.h"
#include "shard/forward.h"
#include "shard/notify.h"

/* Reply the whole set as Redis does via sunionDiffGenericCommand: a new
 * set built from it, in that set's order. */
static void reply_whole(kv_client_t *c, const kv_obj *o)
{
    if (o->enc == KV_ENC_INTSET) { /* the copy would be the same intset */
        const kv_intset *is = kv_db_ptr(o);
        kv_reply_array(&c->out, is->length);
        for (uint32_t i = 0; i < is->length; i++) kv_reply_bulk_ll(&c->out, kv_intset_get(is, i));
        return;
    }
    kv_reply_array(&c->out, (long long)kv_set_size(o));
    kv_set_iter it;
    kv_lp_val v;
    kv_set_iter_init(&it, o);
    while (kv_set_iter_next(&it, &v)) kv_set_reply_val(c, &v);
    kv_set_iter_done(&it);
}

/* AOF/replication: the random pick is logged as SREM key member, as
 * Redis propagates SPOP (forward.h kv_fwd_propagate_as). */
static void propagate_srem(kv_client_t *c, const char *m, size_t ml)
{
    kv_resp_arg v[3] = { { "SREM", 4 }, c->argv[1], { m, ml } };
    kv_fwd_propagate_as(c, 3, v);
}

/* Remove and reply one random member of o. */
static void pop_one(kv_client_t *c, kv_obj *o)
{
    if (o->enc == KV_ENC_INTSET) {
        kv_intset *is = kv_db_ptr(o);
        uint32_t pos = (uint32_t)kv_coll_rand_n(is->length);
        kv_reply_bulk_ll(&c->out, kv_intset_get(is, pos));
        char num[24];
        propagate_srem(c, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)kv_intset_get(is, pos)));
        kv_db_set_ptr(o, KV_ENC_INTSET, kv_intset_remove_at(is, pos));
        return;
    }
    kv_set_ht *h = kv_db_ptr(o);
    kv_dict_entry *e = kv_dict_random(h->d);
    size_t kl = kv_dict_entry_klen(e);
    kv_reply_bulk(&c->out, kv_dict_entry_key(e), kl);
    propagate_srem(c, kv_dict_entry_key(e), kl);
    kv_dict_unlink_entry(h->d, e);
    h->bytes -= kv_dict_entry_alloc_size(kl, 0);
    kv_dict_entry_free(e);
}

void kv_spop_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    long long count = 1;
    if (c->argc > 3) {
        kv_reply_syntax(c);
        return;
    }
    if (c->argc == 3 && (!kv_str2ll(c->argv[2].ptr, c->argv[2].len, &count) || count < 0)) {
        kv_reply_error_cstr(&c->out, "value is out of range, must be positive");
        return;
    }
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, k, KV_LOOKUP_WRITE, &wrong);
    if (wrong) return;
    if (!e) {
        if (c->argc == 3) kv_reply_array(&c->out, 0);
        else kv_reply_null(&c->out);
        return;
    }
    if (count == 0) {
        kv_reply_array(&c->out, 0);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    size_t size = kv_set_size(o);
    if (c->argc == 3 && (unsigned long long)count >= size) {
        reply_whole(c, o); /* everything: reply it and drop the key */
        kv_resp_arg del[2] = { { "DEL", 3 }, *k }; /* logged as DEL (AOF) */
        kv_fwd_propagate_as(c, 2, del);
        kv_db_delete_entry(c->db, e);
        kv_db_changed(c->db, k->ptr, k->len, (unsigned)size);
        kv_notify(c->db, KV_NOTIFY_SET, "spop", k->ptr, k->len);
        kv_notify(c->db, KV_NOTIFY_GENERIC, "del", k->ptr, k->len);
        return;
    }
    KV_SET_MEM_BEFORE(o);
    if (c->argc == 3) kv_reply_array(&c->out, count);
    for (long long i = 0; i < count; i++) pop_one(c, o);
    KV_SET_MEM_AFTER(c, o);
    if (kv_set_size(o) == 0) kv_db_delete_entry(c->db, e);
    kv_db_changed(c->db, k->ptr, k->len, (unsigned)count);
    kv_notify(c->db, KV_NOTIFY_SET, "spop", k->ptr, k->len);
    kv_notify_if_deleted(c->db, k->ptr, k->len);
}

void kv_srandmember_cmd(kv_client_t *c)
{
    long long l = 0;
    if (c->argc > 3) {
        kv_reply_syntax(c);
        return;
    }
    if (c->argc == 3 && !kv_coll_rand_count(c, 2, &l)) return;
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, &c->argv[1], 0, &wrong);
    if (wrong) return;
    if (!e) {
        if (c->argc == 3) kv_reply_array(&c->out, 0);
        else kv_reply_null(&c->out);
        return;
    }
    const kv_obj *o = kv_db_obj(e);
    kv_lp_val v;
    if (c->argc == 2) {
        kv_set_random(o, &v, NULL);
        kv_set_reply_val(c, &v);
        return;
    }
    int uniq = l >= 0;
    unsigned long long count = uniq ? (unsigned long long)l : 0ULL - (unsigned long long)l;
    size_t size = kv_set_size(o);
    if (count == 0) {
        kv_reply_array(&c->out, 0);
        return;
    }
    /* CASE 1: repetitions allowed (or a single pick) */
    if (!uniq || count == 1) {
        kv_reply_array(&c->out, (long long)count);
        for (unsigned long long i = 0; i < count; i++) {
            kv_set_random(o, &v, NULL);
            kv_set_reply_val(c, &v);
        }
        return;
    }
    /* CASE 2: the whole set */
    if (count >= size) {
        reply_whole(c, o);
        return;
    }
    kv_reply_array(&c->out, (long long)count);
    if (o->enc == KV_ENC_INTSET || count * 3 > size) {
        /* selection sampling over one walk: exactly count distinct */
        size_t need = count, left = size;
        kv_set_iter it;
        kv_set_iter_init(&it, o);
        while (need && kv_set_iter_next(&it, &v)) {
            if (kv_coll_rand_n(left--) < need) {
                kv_set_reply_val(c, &v);
                need--;
            }
        }
        kv_set_iter_done(&it);
        return;
    }
    /* few picks from a big hashtable: random entries, deduplicated by
     * address in a scratch dict */
    kv_dict *seen = kv_dict_new();
    if (!seen) return;
    for (unsigned long long added = 0; added < count;) {
        kv_dict_entry *pe;
        int created;
        kv_set_random(o, &v, &pe);
        kv_dict_upsert(seen, &pe, sizeof pe, 0, &created);
        if (!created) continue;
        kv_set_reply_val(c, &v);
        added++;
    }
    kv_dict_free(seen, NULL, NULL);
}
