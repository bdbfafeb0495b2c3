/* Set commands, reply for reply as Redis 7.0's t_set.c. The value's
 * encodings live in set_type.c; SINTER/SUNION/SDIFF* in set_ops.c; SPOP
 * and SRANDMEMBER in set_rand.c. */
#include <stdlib.h>
#include <string.h>

#include "core/glob.h"
#include "shard/hash_util.h"
#include "shard/set_cmd.h"
#include "shard/notify.h"

kv_dict_entry *kv_set_lookup(kv_client_t *c, const kv_resp_arg *k, int flags, int *wrong)
{
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, flags);
    *wrong = 0;
    if (e && kv_db_obj(e)->type != KV_TYPE_SET) {
        kv_reply_wrongtype(c);
        *wrong = 1;
        return NULL;
    }
    return e;
}

void kv_set_reply_val(kv_client_t *c, const kv_lp_val *v)
{
    if (v->s) kv_reply_bulk(&c->out, v->s, v->len);
    else kv_reply_bulk_ll(&c->out, v->ll);
}

static void sadd_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, k, KV_LOOKUP_WRITE, &wrong);
    if (wrong) return;
    if (!e) {
        uint8_t enc;
        void *p = kv_set_new_for(c->argv[2].ptr, c->argv[2].len, &enc);
        if (!p) {
            kv_reply_error_cstr(&c->out, "-OOM command not allowed when used memory > 'maxmemory'.");
            return;
        }
        e = kv_db_add_ptr(c->db, k->ptr, k->len, KV_TYPE_SET, enc, p);
    }
    kv_obj *o = kv_db_obj(e);
    KV_SET_MEM_BEFORE(o);
    long long added = 0;
    for (int i = 2; i < c->argc; i++)
        if (kv_set_add(o, c->argv[i].ptr, c->argv[i].len) > 0) added++;
    KV_SET_MEM_AFTER(c, o);
    if (added) kv_db_changed(c->db, k->ptr, k->len, (unsigned)added);
    if (added) kv_notify(c->db, KV_NOTIFY_SET, "sadd", k->ptr, k->len);
    kv_reply_int(&c->out, added);
}

static void srem_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, k, KV_LOOKUP_WRITE, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    KV_SET_MEM_BEFORE(o);
    long long removed = 0;
    for (int i = 2; i < c->argc; i++) {
        removed += kv_set_remove(o, c->argv[i].ptr, c->argv[i].len);
        if (kv_set_size(o) == 0) break;
    }
    KV_SET_MEM_AFTER(c, o);
    if (removed) {
        if (kv_set_size(o) == 0) kv_db_delete_entry(c->db, e);
        kv_db_changed(c->db, k->ptr, k->len, (unsigned)removed);
        kv_notify(c->db, KV_NOTIFY_SET, "srem", k->ptr, k->len);
        kv_notify_if_deleted(c->db, k->ptr, k->len);
    }
    kv_reply_int(&c->out, removed);
}

static void smove_cmd(kv_client_t *c)
{
    const kv_resp_arg *sk = &c->argv[1], *dk = &c->argv[2], *m = &c->argv[3];
    kv_dict_entry *se = kv_db_find(c->db, sk->ptr, sk->len, KV_LOOKUP_WRITE);
    kv_dict_entry *de = kv_db_find(c->db, dk->ptr, dk->len, KV_LOOKUP_WRITE);
    if (!se) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (kv_db_obj(se)->type != KV_TYPE_SET || (de && kv_db_obj(de)->type != KV_TYPE_SET)) {
        kv_reply_wrongtype(c);
        return;
    }
    kv_obj *so = kv_db_obj(se);
    if (se == de) {
        kv_reply_int(&c->out, kv_set_ismember(so, m->ptr, m->len));
        return;
    }
    {
        KV_SET_MEM_BEFORE(so);
        int removed = kv_set_remove(so, m->ptr, m->len);
        KV_SET_MEM_AFTER(c, so);
        if (!removed) {
            kv_reply_int(&c->out, 0);
            return;
        }
    }
    kv_db_changed(c->db, sk->ptr, sk->len, 1);
    kv_notify(c->db, KV_NOTIFY_SET, "srem", sk->ptr, sk->len);
    if (kv_set_size(so) == 0) kv_db_delete_entry(c->db, se);
    kv_notify_if_deleted(c->db, sk->ptr, sk->len);
    if (!de) {
        uint8_t enc;
        void *p = kv_set_new_for(m->ptr, m->len, &enc);
        if (!p) {
            kv_reply_error_cstr(&c->out, "-OOM command not allowed when used memory > 'maxmemory'.");
            return;
        }
        de = kv_db_add_ptr(c->db, dk->ptr, dk->len, KV_TYPE_SET, enc, p);
    }
    kv_obj *dobj = kv_db_obj(de);
    KV_SET_MEM_BEFORE(dobj);
    if (kv_set_add(dobj, m->ptr, m->len) > 0)
        kv_db_changed(c->db, dk->ptr, dk->len, 1), kv_notify(c->db, KV_NOTIFY_SET, "sadd", dk->ptr, dk->len);
    KV_SET_MEM_AFTER(c, dobj);
    kv_reply_int(&c->out, 1);
}

static void scard_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, &c->argv[1], 0, &wrong);
    if (wrong) return;
    kv_reply_int(&c->out, e ? (long long)kv_set_size(kv_db_obj(e)) : 0);
}

static void sismember_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, &c->argv[1], 0, &wrong);
    if (wrong) return;
    kv_reply_int(&c->out, e && kv_set_ismember(kv_db_obj(e), c->argv[2].ptr, c->argv[2].len));
}

static void smismember_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, &c->argv[1], 0, &wrong);
    if (wrong) return;
    kv_reply_array(&c->out, c->argc - 2);
    for (int i = 2; i < c->argc; i++)
        kv_reply_int(&c->out, e && kv_set_ismember(kv_db_obj(e), c->argv[i].ptr, c->argv[i].len));
}

static void smembers_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, &c->argv[1], 0, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_array(&c->out, 0);
        return;
    }
    const kv_obj *o = kv_db_obj(e);
    kv_reply_array(&c->out, (long long)kv_set_size(o));
    kv_set_iter it;
    kv_lp_val v;
    kv_set_iter_init(&it, o);
    while (kv_set_iter_next(&it, &v)) kv_set_reply_val(c, &v);
    kv_set_iter_done(&it);
}

/* ---- SSCAN ----------------------------------------------------------- */

typedef struct {
    const kv_resp_arg *pat;
    kv_dict_entry **v;
    size_t n, cap, listed;
} sscan_ctx;

static void sscan_cb(void *ud, kv_dict_entry *e)
{
    sscan_ctx *s = ud;
    s->listed++;
    if (s->pat &&
        !kv_glob_match(s->pat->ptr, s->pat->len, kv_dict_entry_key(e), kv_dict_entry_klen(e), 0))
        return;
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 32;
        kv_dict_entry **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return;
        s->v = nv, s->cap = nc;
    }
    s->v[s->n++] = e;
}

static void sscan_cmd(kv_client_t *c)
{
    kv_coll_scan sc;
    if (!kv_coll_scan_cursor(c, &c->argv[2], &sc.cursor)) return;
    int wrong;
    kv_dict_entry *e = kv_set_lookup(c, &c->argv[1], 0, &wrong);
    if (wrong) return;
    if (!e) {
        kv_coll_scan_empty(c);
        return;
    }
    if (!kv_coll_scan_opts(c, 3, &sc)) return;
    const kv_obj *o = kv_db_obj(e);
    if (o->enc == KV_ENC_INTSET) {
        /* small: everything in one call, cursor 0, as Redis */
        const kv_intset *is = kv_db_ptr(o);
        size_t n = 0;
        for (int pass = 0; pass < 2; pass++) {
            if (pass) {
                kv_reply_array(&c->out, 2);
                kv_reply_bulk(&c->out, "0", 1);
                kv_reply_array(&c->out, (long long)n);
            }
            for (uint32_t i = 0; i < is->length; i++) {
                char buf[KV_LP_INTBUF];
                size_t l;
                kv_lp_val v = { NULL, 0, kv_intset_get(is, i) };
                const char *s = kv_lp_val_str(&v, buf, &l);
                if (sc.pat && !kv_glob_match(sc.pat->ptr, sc.pat->len, s, l, 0)) continue;
                if (pass) kv_reply_bulk(&c->out, s, l);
                else n++;
            }
        }
        return;
    }
    sscan_ctx s = { sc.pat, NULL, 0, 0, 0 };
    kv_dict *d = ((kv_set_ht *)kv_db_ptr(o))->d;
    unsigned long cursor = sc.cursor;
    long long maxiter = sc.count * 10;
    do {
        cursor = kv_dict_scan(d, cursor, sscan_cb, &s);
    } while (cursor && maxiter-- && s.listed < (unsigned long long)sc.count);
    kv_reply_array(&c->out, 2);
    kv_reply_bulk_ll(&c->out, (long long)cursor);
    kv_reply_array(&c->out, (long long)s.n);
    for (size_t i = 0; i < s.n; i++)
        kv_reply_bulk(&c->out, kv_dict_entry_key(s.v[i]), kv_dict_entry_klen(s.v[i]));
    free(s.v);
}

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define RND KV_CMD_RANDOM
#define SET1(name, arity, flags, proc, since, summary)                                         \
    { name, arity, flags, 1, 1, 1, KV_ROUTE_KEY, proc, "set", since, summary, NULL }
#define SETN(name, arity, flags, first, last, proc, since, summary)                            \
    { name, arity, flags, first, last, 1, KV_ROUTE_KEYS, proc, "set", since, summary, NULL }

const kv_cmd_t kv_set_cmds[] = {
    SET1("sadd", -3, W | D | F, sadd_cmd, "1.0.0", "Add one or more members to a set"),
    SET1("scard", 2, R | F, scard_cmd, "1.0.0", "Get the number of members in a set"),
    SETN("sdiff", -2, R, 1, -1, kv_sdiff_cmd, "1.0.0", "Subtract multiple sets"),
    SETN("sdiffstore", -3, W | D, 1, -1, kv_sdiffstore_cmd, "1.0.0",
         "Subtract multiple sets and store the resulting set in a key"),
    SETN("sinter", -2, R, 1, -1, kv_sinter_cmd, "1.0.0", "Intersect multiple sets"),
    { "sintercard", -3, R, 0, 0, 0, KV_ROUTE_KEYS, kv_sintercard_cmd, "set", "7.0.0",
      "Intersect multiple sets and return the cardinality of the result", NULL },
    SETN("sinterstore", -3, W | D, 1, -1, kv_sinterstore_cmd, "1.0.0",
         "Intersect multiple sets and store the resulting set in a key"),
    SET1("sismember", 3, R | F, sismember_cmd, "1.0.0",
         "Determine if a given value is a member of a set"),
    SET1("smembers", 2, R, smembers_cmd, "1.0.0", "Get all the members in a set"),
    SET1("smismember", -3, R | F, smismember_cmd, "6.2.0",
         "Returns the membership associated with the given elements for a set"),
    SETN("smove", 4, W | F, 1, 2, smove_cmd, "1.0.0",
         "Move a member from one set to another"),
    SET1("spop", -2, W | F | RND, kv_spop_cmd, "1.0.0",
         "Remove and return one or multiple random members from a set"),
    SET1("srandmember", -2, R | RND, kv_srandmember_cmd, "1.0.0",
         "Get one or multiple random members from a set"),
    SET1("srem", -3, W | F, srem_cmd, "1.0.0", "Remove one or more members from a set"),
    SET1("sscan", -3, R | RND, sscan_cmd, "2.8.0", "Incrementally iterate Set elements"),
    SETN("sunion", -2, R, 1, -1, kv_sunion_cmd, "1.0.0", "Add multiple sets"),
    SETN("sunionstore", -3, W | D, 1, -1, kv_sunionstore_cmd, "1.0.0",
         "Add multiple sets and store the resulting set in a key"),
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
