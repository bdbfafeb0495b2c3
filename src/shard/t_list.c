/*
 * List commands, reply for reply as Redis 7.0's t_list.c. LPOS, LMOVE,
 * RPOPLPUSH and LMPOP are in list_move.c, the blocking ones (BLPOP ...)
 * in t_list_block.c. Values are shard/quicklist.h lists; OBJECT ENCODING
 * says "quicklist" for every list, as Redis 7.0 does (the "listpack"
 * encoding of small lists came with 7.2).
 */
#include <string.h>

#include "persist/rdbobj.h"
#include "shard/list_util.h"
#include "shard/notify.h"

void kv_list_rdb_register(void);

/* ---- type registration --------------------------------------------------- */

static void list_free(void *ptr, uint8_t enc)
{
    (void)enc;
    kv_ql_free(ptr);
}
static void *list_dup(const void *ptr, uint8_t enc)
{
    (void)enc;
    return kv_ql_dup(ptr);
}
static size_t list_mem(const void *ptr, uint8_t enc)
{
    (void)enc;
    return kv_ql_mem(ptr);
}

static const kv_db_type_ops list_db_ops = { list_free, list_dup, list_mem };

void kv_list_register(void)
{
    kv_db_register_type(KV_TYPE_LIST, &list_db_ops);
    kv_list_rdb_register();
}

/* Every object file of the server is linked in, so this runs at start. */
__attribute__((constructor)) static void list_init(void) { kv_list_register(); }

/* ---- shared with list_move.c --------------------------------------------- */

void kv_list_reply_range(kv_client_t *c, const kv_qlist *ql, long long start, long long n,
                         int reverse)
{
    kv_ql_pos pos;
    kv_reply_array(&c->out, n);
    if (n == 0 || !kv_ql_index(ql, reverse ? -start - 1 : start, &pos)) return;
    for (long long i = 0; i < n; i++) {
        kv_lp_val v;
        kv_ql_get(&pos, &v);
        kv_list_reply_val(c, &v);
        if (i + 1 < n && !(reverse ? kv_ql_prev(&pos) : kv_ql_next(&pos))) break;
    }
}

void kv_list_pop_range(kv_client_t *c, kv_dict_entry *e, kv_qlist *ql, int where, long long n)
{
    long long len = (long long)kv_ql_count(ql);
    if (n > len) n = len;
    size_t before = kv_ql_mem(ql);
    kv_list_reply_range(c, ql, 0, n, where == KV_QL_TAIL);
    kv_ql_del_range(ql, where == KV_QL_HEAD ? 0 : (uint64_t)(len - n), (uint64_t)n);
    kv_list_mem(c, ql, before);
    kv_list_del_if_empty(c, e, ql);
}

void kv_list_pop_one(kv_client_t *c, kv_dict_entry *e, kv_qlist *ql, int where)
{
    kv_ql_pos pos;
    kv_lp_val v;
    size_t before = kv_ql_mem(ql);
    kv_ql_index(ql, where == KV_QL_HEAD ? 0 : -1, &pos);
    kv_ql_get(&pos, &v);
    kv_list_reply_val(c, &v);
    kv_ql_delete(ql, &pos, 1);
    kv_list_mem(c, ql, before);
    kv_list_del_if_empty(c, e, ql);
}

/* ---- push / pop ------------------------------------------------------------ */

static void push_generic(kv_client_t *c, int where, int xx)
{
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &e, &ql);
    if (found < 0) return;
    if (!found) {
        if (xx) {
            kv_reply_int(&c->out, 0);
            return;
        }
        ql = kv_ql_new();
        for (int j = 2; j < c->argc; j++) kv_ql_push(ql, where, c->argv[j].ptr, c->argv[j].len);
        kv_db_add_ptr(c->db, k->ptr, k->len, KV_TYPE_LIST, KV_ENC_QUICKLIST, ql);
    } else {
        size_t before = kv_ql_mem(ql);
        for (int j = 2; j < c->argc; j++) kv_ql_push(ql, where, c->argv[j].ptr, c->argv[j].len);
        kv_list_mem(c, ql, before);
    }
    kv_db_changed(c->db, k->ptr, k->len, (unsigned)(c->argc - 2));
    kv_notify(c->db, KV_NOTIFY_LIST, where == KV_QL_HEAD ? "lpush" : "rpush", k->ptr, k->len);
    kv_reply_int(&c->out, (long long)kv_ql_count(ql));
}

static void lpush_cmd(kv_client_t *c) { push_generic(c, KV_QL_HEAD, 0); }
static void rpush_cmd(kv_client_t *c) { push_generic(c, KV_QL_TAIL, 0); }
static void lpushx_cmd(kv_client_t *c) { push_generic(c, KV_QL_HEAD, 1); }
static void rpushx_cmd(kv_client_t *c) { push_generic(c, KV_QL_TAIL, 1); }

static void pop_generic(kv_client_t *c, int where)
{
    const kv_resp_arg *k = &c->argv[1];
    long long count = 0;
    int hascount = c->argc == 3;
    if (c->argc > 3) {
        kv_reply_errorf(&c->out, "wrong number of arguments for '%s' command",
                        where == KV_QL_HEAD ? "lpop" : "rpop");
        return;
    }
    if (hascount && !kv_list_arg_positive(c, 2, NULL, &count)) return;
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &e, &ql);
    if (found < 0) return;
    if (!found) {
        if (hascount) kv_reply_null_array(&c->out);
        else kv_reply_null(&c->out);
        return;
    }
    if (hascount && count == 0) {
        kv_reply_array(&c->out, 0);
        return;
    }
    if (hascount) {
        kv_list_pop_range(c, e, ql, where, count);
        kv_db_changed(c->db, k->ptr, k->len, 1);
        kv_notify(c->db, KV_NOTIFY_LIST, where == KV_QL_HEAD ? "lpop" : "rpop", k->ptr, k->len);
        kv_notify_if_deleted(c->db, k->ptr, k->len);
        return;
    }
    kv_list_pop_one(c, e, ql, where);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_LIST, where == KV_QL_HEAD ? "lpop" : "rpop", k->ptr, k->len);
    kv_notify_if_deleted(c->db, k->ptr, k->len);
}

static void lpop_cmd(kv_client_t *c) { pop_generic(c, KV_QL_HEAD); }
static void rpop_cmd(kv_client_t *c) { pop_generic(c, KV_QL_TAIL); }

/* ---- reading --------------------------------------------------------------- */

static void llen_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, 0, &e, &ql);
    if (found >= 0) kv_reply_int(&c->out, found ? (long long)kv_ql_count(ql) : 0);
}

static void lindex_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    kv_qlist *ql;
    long long idx;
    int found = kv_list_lookup(c, 1, 0, &e, &ql);
    if (found < 0) return;
    if (!found) {
        kv_reply_null(&c->out);
        return;
    }
    if (!kv_arg_ll(c, 2, &idx)) return;
    kv_ql_pos pos;
    if (!kv_ql_index(ql, idx, &pos)) {
        kv_reply_null(&c->out);
        return;
    }
    kv_lp_val v;
    kv_ql_get(&pos, &v);
    kv_list_reply_val(c, &v);
}

/* Clip start/end as LRANGE and LTRIM do; 0 when the range is empty. */
static int clip_range(long long len, long long *start, long long *end)
{
    if (*start < 0) *start += len;
    if (*end < 0) *end += len;
    if (*start < 0) *start = 0;
    if (*start > *end || *start >= len) return 0;
    if (*end >= len) *end = len - 1;
    return 1;
}

static void lrange_cmd(kv_client_t *c)
{
    long long start, end;
    if (!kv_arg_ll(c, 2, &start) || !kv_arg_ll(c, 3, &end)) return;
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, 0, &e, &ql);
    if (found < 0) return;
    if (!found || !clip_range((long long)kv_ql_count(ql), &start, &end)) {
        kv_reply_array(&c->out, 0);
        return;
    }
    kv_list_reply_range(c, ql, start, end - start + 1, 0);
}

/* ---- changing ----------------------------------------------------------- */

static void lset_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1], *v = &c->argv[3];
    kv_dict_entry *e;
    kv_qlist *ql;
    long long idx;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &e, &ql);
    if (found < 0) return;
    if (!found) {
        kv_reply_error_cstr(&c->out, "no such key");
        return;
    }
    if (!kv_arg_ll(c, 2, &idx)) return;
    kv_ql_pos pos;
    if (!kv_ql_index(ql, idx, &pos)) {
        kv_reply_error_cstr(&c->out, "index out of range");
        return;
    }
    size_t before = kv_ql_mem(ql);
    kv_ql_replace(ql, &pos, v->ptr, v->len);
    kv_list_mem(c, ql, before);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_LIST, "lset", k->ptr, k->len);
    kv_reply_ok(&c->out);
}

static void ltrim_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    long long start, end;
    if (!kv_arg_ll(c, 2, &start) || !kv_arg_ll(c, 3, &end)) return;
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &e, &ql);
    if (found <= 0) {
        if (!found) kv_reply_ok(&c->out);
        return;
    }
    long long len = (long long)kv_ql_count(ql), ltrim, rtrim;
    if (!clip_range(len, &start, &end)) {
        ltrim = len, rtrim = 0;
    } else {
        ltrim = start, rtrim = len - end - 1;
    }
    size_t before = kv_ql_mem(ql);
    kv_ql_del_range(ql, 0, (uint64_t)ltrim);
    kv_ql_del_range(ql, kv_ql_count(ql) - (uint64_t)rtrim, (uint64_t)rtrim);
    kv_list_mem(c, ql, before);
    kv_list_del_if_empty(c, e, ql);
    kv_db_changed(c->db, k->ptr, k->len, (unsigned)(ltrim + rtrim));
    kv_notify(c->db, KV_NOTIFY_LIST, "ltrim", k->ptr, k->len);
    kv_notify_if_deleted(c->db, k->ptr, k->len);
    kv_reply_ok(&c->out);
}

static void linsert_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1], *pivot = &c->argv[3], *v = &c->argv[4];
    int after;
    if (kv_arg_is(&c->argv[2], "after")) after = 1;
    else if (kv_arg_is(&c->argv[2], "before")) after = 0;
    else {
        kv_reply_syntax(c);
        return;
    }
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &e, &ql);
    if (found <= 0) {
        if (!found) kv_reply_int(&c->out, 0);
        return;
    }
    kv_ql_pos pos;
    int ok = kv_ql_index(ql, 0, &pos);
    while (ok && !kv_ql_eq(&pos, pivot->ptr, pivot->len)) ok = kv_ql_next(&pos);
    if (!ok) {
        kv_reply_int(&c->out, -1);
        return;
    }
    size_t before = kv_ql_mem(ql);
    kv_ql_insert(ql, &pos, after, v->ptr, v->len);
    kv_list_mem(c, ql, before);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_LIST, "linsert", k->ptr, k->len);
    kv_reply_int(&c->out, (long long)kv_ql_count(ql));
}

static void lrem_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1], *v = &c->argv[3];
    long long toremove, removed = 0;
    if (!kv_arg_ll(c, 2, &toremove)) return;
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &e, &ql);
    if (found <= 0) {
        if (!found) kv_reply_int(&c->out, 0);
        return;
    }
    int forward = toremove >= 0;
    /* -LLONG_MIN is out of range: any count that large means "all" */
    unsigned long long limit = toremove < 0 ? 0ULL - (unsigned long long)toremove
                                            : (unsigned long long)toremove;
    size_t before = kv_ql_mem(ql);
    kv_ql_pos pos;
    int ok = kv_ql_index(ql, forward ? 0 : -1, &pos);
    while (ok) {
        if (kv_ql_eq(&pos, v->ptr, v->len)) {
            ok = kv_ql_delete(ql, &pos, forward);
            removed++;
            if (limit && (unsigned long long)removed == limit) break;
        } else {
            ok = forward ? kv_ql_next(&pos) : kv_ql_prev(&pos);
        }
    }
    kv_list_mem(c, ql, before);
    if (removed) {
        kv_list_del_if_empty(c, e, ql);
        kv_db_changed(c->db, k->ptr, k->len, (unsigned)removed);
        kv_notify(c->db, KV_NOTIFY_LIST, "lrem", k->ptr, k->len);
        kv_notify_if_deleted(c->db, k->ptr, k->len);
    }
    kv_reply_int(&c->out, removed);
}

void kv_list_lpos_cmd(kv_client_t *c);
void kv_list_lmove_cmd(kv_client_t *c);
void kv_list_rpoplpush_cmd(kv_client_t *c);
void kv_list_lmpop_cmd(kv_client_t *c);
void kv_list_blpop_cmd(kv_client_t *c);
void kv_list_brpop_cmd(kv_client_t *c);
void kv_list_blmove_cmd(kv_client_t *c);
void kv_list_brpoplpush_cmd(kv_client_t *c);
void kv_list_blmpop_cmd(kv_client_t *c);

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define B (KV_CMD_BLOCKING | KV_CMD_NOSCRIPT)
#define K KV_ROUTE_KEY
#define LST(name, arity, flags, proc, since, summary)                                          \
    { name, arity, flags, 1, 1, 1, K, proc, "list", since, summary, NULL }

const kv_cmd_t kv_list_cmds[] = {
    { "blmove", 6, W | D | B, 1, 2, 1, KV_ROUTE_KEYS, kv_list_blmove_cmd, "list", "6.2.0",
      "Pop an element from a list, push it to another list and return it; or block until one is "
      "available", NULL },
    { "blmpop", -5, W | KV_CMD_BLOCKING, 0, 0, 0, KV_ROUTE_KEYS, kv_list_blmpop_cmd, "list", "7.0.0",
      "Pop elements from a list, or block until one is available", NULL },
    { "blpop", -3, W | B, 1, -2, 1, KV_ROUTE_KEYS, kv_list_blpop_cmd, "list", "2.0.0",
      "Remove and get the first element in a list, or block until one is available", NULL },
    { "brpop", -3, W | B, 1, -2, 1, KV_ROUTE_KEYS, kv_list_brpop_cmd, "list", "2.0.0",
      "Remove and get the last element in a list, or block until one is available", NULL },
    { "brpoplpush", 4, W | D | B, 1, 2, 1, KV_ROUTE_KEYS, kv_list_brpoplpush_cmd, "list", "2.2.0",
      "Pop an element from a list, push it to another list and return it; or block until one is "
      "available", NULL },
    LST("lindex", 3, R, lindex_cmd, "1.0.0", "Get an element from a list by its index"),
    LST("linsert", 5, W | D, linsert_cmd, "2.2.0",
        "Insert an element before or after another element in a list"),
    LST("llen", 2, R | F, llen_cmd, "1.0.0", "Get the length of a list"),
    { "lmove", 5, W | D, 1, 2, 1, KV_ROUTE_KEYS, kv_list_lmove_cmd, "list", "6.2.0",
      "Pop an element from a list, push it to another list and return it", NULL },
    { "lmpop", -4, W, 0, 0, 0, KV_ROUTE_KEYS, kv_list_lmpop_cmd, "list", "7.0.0",
      "Pop elements from a list", NULL },
    LST("lpop", -2, W | F, lpop_cmd, "1.0.0", "Remove and get the first elements in a list"),
    LST("lpos", -3, R, kv_list_lpos_cmd, "6.0.6", "Return the index of matching elements on a list"),
    LST("lpush", -3, W | D | F, lpush_cmd, "1.0.0", "Prepend one or multiple elements to a list"),
    LST("lpushx", -3, W | D | F, lpushx_cmd, "2.2.0",
        "Prepend an element to a list, only if the list exists"),
    LST("lrange", 4, R, lrange_cmd, "1.0.0", "Get a range of elements from a list"),
    LST("lrem", 4, W, lrem_cmd, "1.0.0", "Remove elements from a list"),
    LST("lset", 4, W | D, lset_cmd, "1.0.0", "Set the value of an element in a list by its index"),
    LST("ltrim", 4, W, ltrim_cmd, "1.0.0", "Trim a list to the specified range"),
    LST("rpop", -2, W | F, rpop_cmd, "1.0.0", "Remove and get the last elements in a list"),
    { "rpoplpush", 3, W | D, 1, 2, 1, KV_ROUTE_KEYS, kv_list_rpoplpush_cmd, "list", "1.2.0",
      "Remove the last element in a list, prepend it to another list and return it", NULL },
    LST("rpush", -3, W | D | F, rpush_cmd, "1.0.0", "Append one or multiple elements to a list"),
    LST("rpushx", -3, W | D | F, rpushx_cmd, "2.2.0",
        "Append an element to a list, only if the list exists"),
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
