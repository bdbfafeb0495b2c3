/* Hash commands, reply for reply as Redis 7.0's t_hash.c. The value's
 * encodings live in hash_type.c; HRANDFIELD in hash_rand.c. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/glob.h"
#include "shard/hash_type.h"
#include "shard/hash_util.h"
#include "shard/notify.h"

/* The hash at argv[1] for reading: NULL when missing (nothing replied) or
 * of another type (*wrong set, WRONGTYPE replied). */
static kv_dict_entry *lookup_read(kv_client_t *c, int *wrong)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    *wrong = 0;
    if (e && kv_db_obj(e)->type != KV_TYPE_HASH) {
        kv_reply_wrongtype(c);
        *wrong = 1;
        return NULL;
    }
    return e;
}

/* Redis's hashTypeLookupWriteOrCreate. NULL after WRONGTYPE. */
static kv_obj *lookup_write_create(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    if (e) {
        if (kv_db_obj(e)->type == KV_TYPE_HASH) return kv_db_obj(e);
        kv_reply_wrongtype(c);
        return NULL;
    }
    void *lp = kv_hash_new();
    if (!lp) {
        kv_reply_error_cstr(&c->out, "-OOM command not allowed when used memory > 'maxmemory'.");
        return NULL;
    }
    return kv_db_obj(kv_db_add_ptr(c->db, k->ptr, k->len, KV_TYPE_HASH, KV_ENC_LISTPACK, lp));
}

/* Keep the db's byte counter in step with a change of o's value. */
#define MEM_BEFORE(o) size_t mem_before_ = kv_hash_mem(kv_db_ptr(o), (o)->enc)
#define MEM_AFTER(c, o) ((c)->db->mem_values += kv_hash_mem(kv_db_ptr(o), (o)->enc) - mem_before_)

static void reply_val(kv_client_t *c, const kv_lp_val *v)
{
    if (v->s) kv_reply_bulk(&c->out, v->s, v->len);
    else kv_reply_bulk_ll(&c->out, v->ll);
}

static void hset_generic(kv_client_t *c, int mset)
{
    if (c->argc % 2 == 1) {
        kv_reply_errorf(&c->out, "wrong number of arguments for '%s' command",
                        mset ? "hmset" : "hset");
        return;
    }
    kv_obj *o = lookup_write_create(c);
    if (!o) return;
    MEM_BEFORE(o);
    kv_hash_try_convert(o, c->argv, 2, c->argc - 1);
    long long created = 0;
    for (int i = 2; i < c->argc; i += 2) {
        int r = kv_hash_set(o, c->argv[i].ptr, c->argv[i].len, c->argv[i + 1].ptr,
                            c->argv[i + 1].len);
        if (r > 0) created++;
    }
    MEM_AFTER(c, o);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, (unsigned)((c->argc - 2) / 2));
    kv_notify(c->db, KV_NOTIFY_HASH, "hset", c->argv[1].ptr, c->argv[1].len);
    if (mset) kv_reply_ok(&c->out);
    else kv_reply_int(&c->out, created);
}

static void hset_cmd(kv_client_t *c) { hset_generic(c, 0); }
static void hmset_cmd(kv_client_t *c) { hset_generic(c, 1); }

static void hsetnx_cmd(kv_client_t *c)
{
    kv_obj *o = lookup_write_create(c);
    if (!o) return;
    kv_lp_val v;
    if (kv_hash_get(o, c->argv[2].ptr, c->argv[2].len, &v)) {
        kv_reply_int(&c->out, 0);
        return;
    }
    MEM_BEFORE(o);
    kv_hash_try_convert(o, c->argv, 2, 3);
    kv_hash_set(o, c->argv[2].ptr, c->argv[2].len, c->argv[3].ptr, c->argv[3].len);
    MEM_AFTER(c, o);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_HASH, "hset", c->argv[1].ptr, c->argv[1].len);
    kv_reply_int(&c->out, 1);
}

static void hget_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    kv_lp_val v;
    if (!e || !kv_hash_get(kv_db_obj(e), c->argv[2].ptr, c->argv[2].len, &v)) kv_reply_null(&c->out);
    else reply_val(c, &v);
}

static void hmget_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    kv_reply_array(&c->out, c->argc - 2);
    for (int i = 2; i < c->argc; i++) {
        kv_lp_val v;
        if (!e || !kv_hash_get(kv_db_obj(e), c->argv[i].ptr, c->argv[i].len, &v))
            kv_reply_null(&c->out);
        else reply_val(c, &v);
    }
}

static void hdel_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    if (o->type != KV_TYPE_HASH) {
        kv_reply_wrongtype(c);
        return;
    }
    MEM_BEFORE(o);
    long long deleted = 0;
    for (int i = 2; i < c->argc; i++) {
        deleted += kv_hash_del(o, c->argv[i].ptr, c->argv[i].len);
        if (kv_hash_len(o) == 0) break;
    }
    MEM_AFTER(c, o);
    if (deleted) {
        if (kv_hash_len(o) == 0) kv_db_delete_entry(c->db, e);
        kv_db_changed(c->db, k->ptr, k->len, (unsigned)deleted);
        kv_notify(c->db, KV_NOTIFY_HASH, "hdel", k->ptr, k->len);
        kv_notify_if_deleted(c->db, k->ptr, k->len);
    }
    kv_reply_int(&c->out, deleted);
}

static void hlen_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    kv_reply_int(&c->out, e ? (long long)kv_hash_len(kv_db_obj(e)) : 0);
}

static void hstrlen_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    kv_lp_val v;
    size_t n = 0;
    if (e && kv_hash_get(kv_db_obj(e), c->argv[2].ptr, c->argv[2].len, &v)) {
        char buf[KV_LP_INTBUF];
        kv_lp_val_str(&v, buf, &n);
    }
    kv_reply_int(&c->out, (long long)n);
}

static void hexists_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    kv_lp_val v;
    kv_reply_int(&c->out, e && kv_hash_get(kv_db_obj(e), c->argv[2].ptr, c->argv[2].len, &v));
}

static void hincrby_cmd(kv_client_t *c)
{
    long long incr, value = 0;
    if (!kv_arg_ll(c, 3, &incr)) return;
    kv_obj *o = lookup_write_create(c);
    if (!o) return;
    kv_lp_val v;
    if (kv_hash_get(o, c->argv[2].ptr, c->argv[2].len, &v)) {
        if (!v.s) value = v.ll;
        else if (!kv_str2ll((const char *)v.s, v.len, &value)) {
            kv_reply_error_cstr(&c->out, "hash value is not an integer");
            return;
        }
    }
    if ((incr < 0 && value < 0 && incr < (LLONG_MIN - value)) ||
        (incr > 0 && value > 0 && incr > (LLONG_MAX - value))) {
        kv_reply_error_cstr(&c->out, "increment or decrement would overflow");
        return;
    }
    value += incr;
    char buf[KV_REPLY_LL_MAX];
    int n = kv_reply_fmt_ll(buf, value);
    MEM_BEFORE(o);
    kv_hash_set(o, c->argv[2].ptr, c->argv[2].len, buf, (size_t)n);
    MEM_AFTER(c, o);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_HASH, "hincrby", c->argv[1].ptr, c->argv[1].len);
    kv_reply_int(&c->out, value);
}

static void hincrbyfloat_cmd(kv_client_t *c)
{
    long double incr, value = 0;
    if (!kv_str2ld(c->argv[3].ptr, c->argv[3].len, &incr)) {
        kv_reply_error_cstr(&c->out, KV_ERR_NOT_FLOAT);
        return;
    }
    if (isnan(incr) || isinf(incr)) {
        kv_reply_error_cstr(&c->out, "value is NaN or Infinity");
        return;
    }
    kv_obj *o = lookup_write_create(c);
    if (!o) return;
    kv_lp_val v;
    if (kv_hash_get(o, c->argv[2].ptr, c->argv[2].len, &v)) {
        if (!v.s) value = (long double)v.ll;
        else if (!kv_str2ld((const char *)v.s, v.len, &value)) {
            kv_reply_error_cstr(&c->out, "hash value is not a float");
            return;
        }
    }
    value += incr;
    if (isnan(value) || isinf(value)) {
        kv_reply_error_cstr(&c->out, "increment would produce NaN or Infinity");
        return;
    }
    char buf[KV_REPLY_LD_MAX];
    int n = kv_reply_fmt_ld_human(buf, sizeof buf, value);
    MEM_BEFORE(o);
    kv_hash_set(o, c->argv[2].ptr, c->argv[2].len, buf, (size_t)n);
    MEM_AFTER(c, o);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_HASH, "hincrbyfloat", c->argv[1].ptr, c->argv[1].len);
    kv_reply_bulk(&c->out, buf, (size_t)n);
}

enum { KEYS = 1, VALS = 2 };

static void getall_generic(kv_client_t *c, int what)
{
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_array(&c->out, 0);
        return;
    }
    const kv_obj *o = kv_db_obj(e);
    size_t n = kv_hash_len(o);
    kv_reply_array(&c->out, (long long)(what == (KEYS | VALS) ? 2 * n : n));
    kv_hash_iter it;
    kv_lp_val f, v;
    kv_hash_iter_init(&it, o);
    while (kv_hash_iter_next(&it, &f, &v)) {
        if (what & KEYS) reply_val(c, &f);
        if (what & VALS) reply_val(c, &v);
    }
    kv_hash_iter_done(&it);
}

static void hkeys_cmd(kv_client_t *c) { getall_generic(c, KEYS); }
static void hvals_cmd(kv_client_t *c) { getall_generic(c, VALS); }
static void hgetall_cmd(kv_client_t *c) { getall_generic(c, KEYS | VALS); }

/* ---- HSCAN ----------------------------------------------------------- */

typedef struct {
    kv_client_t *c;
    const kv_resp_arg *pat;
    kv_dict_entry **v;
    size_t n, cap, listed; /* listed: fields+values seen, as Redis counts */
} hscan_ctx;

static void hscan_cb(void *ud, kv_dict_entry *e)
{
    hscan_ctx *s = ud;
    s->listed += 2;
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

static void hscan_cmd(kv_client_t *c)
{
    kv_coll_scan sc;
    if (!kv_coll_scan_cursor(c, &c->argv[2], &sc.cursor)) return;
    int wrong;
    kv_dict_entry *e = lookup_read(c, &wrong);
    if (wrong) return;
    if (!e) {
        kv_coll_scan_empty(c);
        return;
    }
    if (!kv_coll_scan_opts(c, 3, &sc)) return;
    const kv_obj *o = kv_db_obj(e);
    if (o->enc == KV_ENC_LISTPACK) {
        /* small: everything in one call, cursor 0, as Redis */
        size_t n = 0;
        kv_hash_iter it;
        kv_lp_val f, v;
        char fb[KV_LP_INTBUF];
        for (int pass = 0; pass < 2; pass++) {
            if (pass) {
                kv_reply_array(&c->out, 2);
                kv_reply_bulk(&c->out, "0", 1);
                kv_reply_array(&c->out, (long long)(2 * n));
            }
            kv_hash_iter_init(&it, o);
            while (kv_hash_iter_next(&it, &f, &v)) {
                size_t fl;
                const char *fs = kv_lp_val_str(&f, fb, &fl);
                if (sc.pat && !kv_glob_match(sc.pat->ptr, sc.pat->len, fs, fl, 0)) continue;
                if (!pass) n++;
                else reply_val(c, &f), reply_val(c, &v);
            }
            kv_hash_iter_done(&it);
        }
        return;
    }
    hscan_ctx s = { c, sc.pat, NULL, 0, 0, 0 };
    kv_dict *d = ((kv_hash_ht *)kv_db_ptr(o))->d;
    unsigned long cursor = sc.cursor;
    long long maxiter = sc.count * 10;
    do {
        cursor = kv_dict_scan(d, cursor, hscan_cb, &s);
    } while (cursor && maxiter-- && s.listed < (unsigned long long)sc.count);
    kv_reply_array(&c->out, 2);
    kv_reply_bulk_ll(&c->out, (long long)cursor);
    kv_reply_array(&c->out, (long long)(2 * s.n));
    for (size_t i = 0; i < s.n; i++) {
        kv_lp_val v;
        kv_hash_entry_val(s.v[i], &v);
        kv_reply_bulk(&c->out, kv_dict_entry_key(s.v[i]), kv_dict_entry_klen(s.v[i]));
        kv_reply_bulk(&c->out, v.s, v.len);
    }
    free(s.v);
}

void kv_hrandfield_cmd(kv_client_t *c); /* hash_rand.c */

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define HASH(name, arity, flags, proc, since, summary)                                         \
    { name, arity, flags, 1, 1, 1, KV_ROUTE_KEY, proc, "hash", since, summary, NULL }

const kv_cmd_t kv_hash_cmds[] = {
    HASH("hdel", -3, W | F, hdel_cmd, "2.0.0", "Delete one or more hash fields"),
    HASH("hexists", 3, R | F, hexists_cmd, "2.0.0", "Determine if a hash field exists"),
    HASH("hget", 3, R | F, hget_cmd, "2.0.0", "Get the value of a hash field"),
    HASH("hgetall", 2, R, hgetall_cmd, "2.0.0", "Get all the fields and values in a hash"),
    HASH("hincrby", 4, W | D | F, hincrby_cmd, "2.0.0",
         "Increment the integer value of a hash field by the given number"),
    HASH("hincrbyfloat", 4, W | D | F, hincrbyfloat_cmd, "2.6.0",
         "Increment the float value of a hash field by the given amount"),
    HASH("hkeys", 2, R, hkeys_cmd, "2.0.0", "Get all the fields in a hash"),
    HASH("hlen", 2, R | F, hlen_cmd, "2.0.0", "Get the number of fields in a hash"),
    HASH("hmget", -3, R | F, hmget_cmd, "2.0.0", "Get the values of all the given hash fields"),
    HASH("hmset", -4, W | D | F, hmset_cmd, "2.0.0", "Set multiple hash fields to multiple values"),
    HASH("hrandfield", -2, R | KV_CMD_RANDOM, kv_hrandfield_cmd, "6.2.0",
         "Get one or multiple random fields from a hash"),
    HASH("hscan", -3, R | KV_CMD_RANDOM, hscan_cmd, "2.8.0",
         "Incrementally iterate hash fields and associated values"),
    HASH("hset", -4, W | D | F, hset_cmd, "2.0.0", "Set the string value of a hash field"),
    HASH("hsetnx", 4, W | D | F, hsetnx_cmd, "2.0.0",
         "Set the value of a hash field, only if the field does not exist"),
    HASH("hstrlen", 3, R | F, hstrlen_cmd, "3.2.0", "Get the length of the value of a hash field"),
    HASH("hvals", 2, R, hvals_cmd, "2.0.0", "Get all the values in a hash"),
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
