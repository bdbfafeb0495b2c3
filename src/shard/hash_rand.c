/* HRANDFIELD, following the cases of Redis 7.0's hrandfieldWithCountCommand
 * (same reply shapes; the picks themselves are random). */
#include <stdlib.h>
#include <string.h>

#include "shard/hash_type.h"
#include "shard/hash_util.h"

static void reply_val(kv_client_t *c, const kv_lp_val *v)
{
    if (v->s) kv_reply_bulk(&c->out, v->s, v->len);
    else kv_reply_bulk_ll(&c->out, v->ll);
}

/* Reply one HT entry (field [, value]). */
static void reply_entry(kv_client_t *c, const kv_dict_entry *e, int withvalues)
{
    kv_reply_bulk(&c->out, kv_dict_entry_key(e), kv_dict_entry_klen(e));
    if (withvalues) {
        kv_lp_val v;
        kv_hash_entry_val(e, &v);
        kv_reply_bulk(&c->out, v.s, v.len);
    }
}

static void reply_lp_pair(kv_client_t *c, const unsigned char *lp, unsigned char *p, int withvalues)
{
    kv_lp_val v;
    kv_lp_get(p, &v);
    reply_val(c, &v);
    if (withvalues) {
        kv_lp_get(kv_lp_next(lp, p), &v);
        reply_val(c, &v);
    }
}

/* Field pointers of a listpack hash: one walk, then O(1) picks. */
static unsigned char **lp_fields(const unsigned char *lp, size_t n)
{
    unsigned char **f = malloc((n ? n : 1) * sizeof *f);
    if (!f) return NULL;
    size_t i = 0;
    for (unsigned char *p = kv_lp_first(lp); p && i < n; p = kv_lp_next(lp, kv_lp_next(lp, p)))
        f[i++] = p;
    return f;
}

static void with_count(kv_client_t *c, kv_obj *o, long long l, int withvalues)
{
    size_t size = kv_hash_len(o);
    int uniq = l >= 0;
    unsigned long long count = uniq ? (unsigned long long)l : 0ULL - (unsigned long long)l;
    if (count == 0) {
        kv_reply_array(&c->out, 0);
        return;
    }
    int lp = o->enc == KV_ENC_LISTPACK;
    unsigned char *blob = lp ? kv_db_ptr(o) : NULL;
    kv_dict *d = lp ? NULL : ((kv_hash_ht *)kv_db_ptr(o))->d;

    /* CASE 1: repetitions allowed (or a single pick) */
    if (!uniq || count == 1) {
        kv_reply_array(&c->out, (long long)(withvalues ? 2 * count : count));
        unsigned char **f = lp ? lp_fields(blob, size) : NULL;
        if (lp && !f) return;
        for (unsigned long long i = 0; i < count; i++) {
            if (lp) reply_lp_pair(c, blob, f[kv_coll_rand_n(size)], withvalues);
            else reply_entry(c, kv_dict_random(d), withvalues);
        }
        free(f);
        return;
    }
    /* CASE 2: the whole hash, in its order */
    if (count >= size) {
        kv_reply_array(&c->out, (long long)(withvalues ? 2 * size : size));
        kv_hash_iter it;
        kv_lp_val f, v;
        kv_hash_iter_init(&it, o);
        while (kv_hash_iter_next(&it, &f, &v)) {
            reply_val(c, &f);
            if (withvalues) reply_val(c, &v);
        }
        kv_hash_iter_done(&it);
        return;
    }
    kv_reply_array(&c->out, (long long)(withvalues ? 2 * count : count));
    /* listpack: selection sampling keeps the picks in order (as Redis's
     * lpRandomPairsUnique) with one walk */
    if (lp) {
        size_t need = count, left = size;
        for (unsigned char *p = kv_lp_first(blob); p && need; p = kv_lp_next(blob, kv_lp_next(blob, p)), left--) {
            if (kv_coll_rand_n(left) < need) {
                reply_lp_pair(c, blob, p, withvalues);
                need--;
            }
        }
        return;
    }
    /* CASE 3: a large share of the hash: shuffle a copy of its entries */
    if (count * 3 > size) {
        kv_dict_entry **v = malloc(size * sizeof *v);
        if (!v) return;
        size_t n = 0;
        kv_dict_iter it;
        kv_dict_iter_init(&it, d);
        for (kv_dict_entry *e; (e = kv_dict_iter_next(&it)) && n < size;) v[n++] = e;
        kv_dict_iter_done(&it);
        for (size_t i = 0; i < count; i++) {
            size_t j = i + (size_t)kv_coll_rand_n(n - i);
            kv_dict_entry *t = v[i];
            v[i] = v[j], v[j] = t;
            reply_entry(c, v[i], withvalues);
        }
        free(v);
        return;
    }
    /* CASE 4: few picks from many: random entries, deduplicated through a
     * scratch dict keyed by the entry address */
    kv_dict *seen = kv_dict_new();
    if (!seen) return;
    for (unsigned long long added = 0; added < count;) {
        kv_dict_entry *e = kv_dict_random(d);
        int created;
        kv_dict_upsert(seen, &e, sizeof e, 0, &created);
        if (!created) continue;
        reply_entry(c, e, withvalues);
        added++;
    }
    kv_dict_free(seen, NULL, NULL);
}

void kv_hrandfield_cmd(kv_client_t *c);
void kv_hrandfield_cmd(kv_client_t *c)
{
    long long l = 0;
    int withvalues = 0;
    if (c->argc >= 3) {
        if (!kv_coll_rand_count(c, 2, &l)) return;
        if (c->argc > 4 || (c->argc == 4 && !kv_arg_is(&c->argv[3], "withvalues"))) {
            kv_reply_syntax(c);
            return;
        }
        if (c->argc == 4) {
            withvalues = 1;
            if (l < -INT64_MAX / 2 || l > INT64_MAX / 2) {
                kv_reply_error_cstr(&c->out, "value is out of range");
                return;
            }
        }
    }
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    if (!e) {
        if (c->argc >= 3) kv_reply_array(&c->out, 0);
        else kv_reply_null(&c->out);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    if (o->type != KV_TYPE_HASH) {
        kv_reply_wrongtype(c);
        return;
    }
    if (c->argc >= 3) {
        with_count(c, o, l, withvalues);
        return;
    }
    if (o->enc == KV_ENC_LISTPACK) {
        unsigned char *lp = kv_db_ptr(o);
        reply_lp_pair(c, lp, kv_lp_seek(lp, 2 * (long)kv_coll_rand_n(kv_hash_len(o))), 0);
    } else {
        reply_entry(c, kv_dict_random(((kv_hash_ht *)kv_db_ptr(o))->d), 0);
    }
}
