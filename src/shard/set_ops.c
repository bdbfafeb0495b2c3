/* SINTER, SINTERCARD, SINTERSTORE, SUNION[STORE], SDIFF[STORE], as Redis
 * 7.0's sinterGenericCommand and sunionDiffGenericCommand: the same
 * lookups and errors in the same order, the same result encodings (the
 * result is built as a new set, intset first), and SINTER replying in the
 * smallest set's order. */
#include <stdlib.h>
#include <string.h>

#include "shard/hash_util.h"
#include "shard/set_cmd.h"
#include "shard/notify.h"

#define OOM_MSG "-OOM command not allowed when used memory > 'maxmemory'."

/* Look up nkeys keys at argv[first..]; sets[j] NULL for a missing key.
 * Returns the number missing, or -1 after WRONGTYPE. */
static int lookup_sets(kv_client_t *c, int first, int nkeys, int write, kv_obj **sets)
{
    int empty = 0;
    for (int j = 0; j < nkeys; j++) {
        int wrong;
        kv_dict_entry *e =
            kv_set_lookup(c, &c->argv[first + j], write ? KV_LOOKUP_WRITE : 0, &wrong);
        if (wrong) return -1;
        sets[j] = e ? kv_db_obj(e) : NULL;
        if (!e) empty++;
    }
    return empty;
}

/* Replace dst by the result (or delete it when the result is empty) and
 * reply the result's size, as the *STORE commands do. Takes box. */
static void store_result(kv_client_t *c, const kv_resp_arg *dst, kv_set_box *box)
{
    size_t n = kv_set_size(&box->o);
    int existed = kv_db_delete(c->db, dst->ptr, dst->len);
    if (n) {
        kv_db_add_ptr(c->db, dst->ptr, dst->len, KV_TYPE_SET, box->o.enc, box->ptr);
    } else {
        kv_set_free(box->ptr, box->o.enc);
    }
    if (n || existed) kv_db_changed(c->db, dst->ptr, dst->len, 1);
    kv_notify_stored(c->db, KV_NOTIFY_SET, &c->argv[0], dst->ptr, dst->len);
    if (!n && existed) kv_notify(c->db, KV_NOTIFY_GENERIC, "del", dst->ptr, dst->len);
    kv_reply_int(&c->out, (long long)n);
}

static void reply_box(kv_client_t *c, kv_set_box *box)
{
    kv_reply_array(&c->out, (long long)kv_set_size(&box->o));
    kv_set_iter it;
    kv_lp_val v;
    kv_set_iter_init(&it, &box->o);
    while (kv_set_iter_next(&it, &v)) kv_set_reply_val(c, &v);
    kv_set_iter_done(&it);
    kv_set_free(box->ptr, box->o.enc);
}

static int add_val(kv_set_box *box, const kv_lp_val *v)
{
    if (!v->s) return kv_set_add_int(&box->o, v->ll);
    return kv_set_add(&box->o, (const char *)v->s, v->len);
}

static int by_size(const void *a, const void *b)
{
    size_t x = kv_set_size(*(kv_obj *const *)a), y = kv_set_size(*(kv_obj *const *)b);
    return x < y ? -1 : x > y;
}
static int by_size_rev(const void *a, const void *b) { return by_size(b, a); }

enum { REPLY, CARD, STORE };

/* keys at argv[first .. first+nkeys); dst for STORE; limit for CARD. */
static void sinter_generic(kv_client_t *c, int first, int nkeys, const kv_resp_arg *dst,
                           int mode, long long limit)
{
    kv_obj *stack[16], **sets = nkeys <= 16 ? stack : malloc((size_t)nkeys * sizeof *sets);
    if (!sets) {
        kv_reply_error_cstr(&c->out, OOM_MSG);
        return;
    }
    int empty = lookup_sets(c, first, nkeys, mode == STORE, sets);
    if (empty < 0) goto out;
    if (empty > 0) { /* an intersection with an empty set is empty */
        if (mode == STORE) {
            if (kv_db_delete(c->db, dst->ptr, dst->len))
                kv_db_changed(c->db, dst->ptr, dst->len, 1), kv_notify(c->db, KV_NOTIFY_GENERIC, "del", dst->ptr, dst->len);
            kv_reply_int(&c->out, 0);
        } else if (mode == CARD) {
            kv_reply_int(&c->out, 0);
        } else {
            kv_reply_array(&c->out, 0);
        }
        goto out;
    }
    qsort(sets, (size_t)nkeys, sizeof *sets, by_size);
    kv_set_box box;
    if (mode == STORE && kv_set_box_init(&box, 0) < 0) {
        kv_reply_error_cstr(&c->out, OOM_MSG);
        goto out;
    }
    /* REPLY: the members point into sets[0], stable for this command */
    kv_lp_val *vals = NULL;
    size_t nv = 0, cap = 0;
    long long card = 0;
    kv_set_iter it;
    kv_lp_val v;
    kv_set_iter_init(&it, sets[0]);
    while (kv_set_iter_next(&it, &v)) {
        int j;
        for (j = 1; j < nkeys; j++)
            if (sets[j] != sets[0] && !kv_set_has_val(sets[j], &v)) break;
        if (j < nkeys) continue;
        if (mode == CARD) {
            if (++card == limit) break;
        } else if (mode == STORE) {
            add_val(&box, &v);
        } else {
            if (nv == cap) {
                size_t ncap = cap ? 2 * cap : 64;
                kv_lp_val *n = realloc(vals, ncap * sizeof *n);
                if (!n) break;
                vals = n, cap = ncap;
            }
            vals[nv++] = v;
        }
    }
    kv_set_iter_done(&it);
    if (mode == CARD) {
        kv_reply_int(&c->out, card);
    } else if (mode == STORE) {
        store_result(c, dst, &box);
    } else {
        kv_reply_array(&c->out, (long long)nv);
        for (size_t i = 0; i < nv; i++) kv_set_reply_val(c, &vals[i]);
    }
    free(vals);
out:
    if (sets != stack) free(sets);
}

void kv_sinter_cmd(kv_client_t *c) { sinter_generic(c, 1, c->argc - 1, NULL, REPLY, 0); }
void kv_sinterstore_cmd(kv_client_t *c)
{
    sinter_generic(c, 2, c->argc - 2, &c->argv[1], STORE, 0);
}

void kv_sintercard_cmd(kv_client_t *c)
{
    long long numkeys, limit = 0;
    if (!kv_str2ll(c->argv[1].ptr, c->argv[1].len, &numkeys) || numkeys < 1) {
        kv_reply_error_cstr(&c->out, "numkeys should be greater than 0");
        return;
    }
    if (numkeys > c->argc - 2) {
        kv_reply_error_cstr(&c->out, "Number of keys can't be greater than number of args");
        return;
    }
    for (int i = 2 + (int)numkeys; i < c->argc; i++) {
        int more = c->argc - 1 - i;
        if (kv_arg_is(&c->argv[i], "limit") && more) {
            i++;
            if (!kv_str2ll(c->argv[i].ptr, c->argv[i].len, &limit) || limit < 0) {
                kv_reply_error_cstr(&c->out, "LIMIT can't be negative");
                return;
            }
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    sinter_generic(c, 2, (int)numkeys, NULL, CARD, limit);
}

enum { UNION, DIFF };

static void sunion_diff_generic(kv_client_t *c, int first, int nkeys, const kv_resp_arg *dst,
                                int op)
{
    kv_obj *stack[16], **sets = nkeys <= 16 ? stack : malloc((size_t)nkeys * sizeof *sets);
    if (!sets) {
        kv_reply_error_cstr(&c->out, OOM_MSG);
        return;
    }
    if (lookup_sets(c, first, nkeys, dst != NULL, sets) < 0) goto out;
    int sameset = 0;
    for (int j = 1; j < nkeys; j++)
        if (sets[j] && sets[j] == sets[0]) sameset = 1;
    kv_set_box box;
    if (kv_set_box_init(&box, 0) < 0) {
        kv_reply_error_cstr(&c->out, OOM_MSG);
        goto out;
    }
    kv_set_iter it;
    kv_lp_val v;
    if (op == UNION) {
        for (int j = 0; j < nkeys; j++) {
            if (!sets[j]) continue;
            kv_set_iter_init(&it, sets[j]);
            while (kv_set_iter_next(&it, &v)) add_val(&box, &v);
            kv_set_iter_done(&it);
        }
    } else if (sets[0] && !sameset) {
        /* Redis's choice: walk the first set probing the others, or copy
         * it and remove the others' members, whichever costs less */
        long long one = 0, two = 0;
        for (int j = 0; j < nkeys; j++) {
            if (!sets[j]) continue;
            one += (long long)kv_set_size(sets[0]);
            two += (long long)kv_set_size(sets[j]);
        }
        if (one / 2 <= two) {
            if (nkeys > 1) qsort(sets + 1, (size_t)nkeys - 1, sizeof *sets, by_size_rev);
            kv_set_iter_init(&it, sets[0]);
            while (kv_set_iter_next(&it, &v)) {
                int j;
                for (j = 1; j < nkeys; j++)
                    if (sets[j] && (sets[j] == sets[0] || kv_set_has_val(sets[j], &v))) break;
                if (j == nkeys) add_val(&box, &v);
            }
            kv_set_iter_done(&it);
        } else {
            for (int j = 0; j < nkeys; j++) {
                if (!sets[j]) continue;
                kv_set_iter_init(&it, sets[j]);
                while (kv_set_iter_next(&it, &v)) {
                    if (j == 0) {
                        add_val(&box, &v);
                    } else {
                        char buf[KV_LP_INTBUF];
                        size_t n;
                        const char *s = kv_lp_val_str(&v, buf, &n);
                        kv_set_remove(&box.o, s, n);
                    }
                }
                kv_set_iter_done(&it);
                if (kv_set_size(&box.o) == 0) break;
            }
        }
    }
    if (dst) store_result(c, dst, &box);
    else reply_box(c, &box);
out:
    if (sets != stack) free(sets);
}

void kv_sunion_cmd(kv_client_t *c) { sunion_diff_generic(c, 1, c->argc - 1, NULL, UNION); }
void kv_sunionstore_cmd(kv_client_t *c)
{
    sunion_diff_generic(c, 2, c->argc - 2, &c->argv[1], UNION);
}
void kv_sdiff_cmd(kv_client_t *c) { sunion_diff_generic(c, 1, c->argc - 1, NULL, DIFF); }
void kv_sdiffstore_cmd(kv_client_t *c)
{
    sunion_diff_generic(c, 2, c->argc - 2, &c->argv[1], DIFF);
}
