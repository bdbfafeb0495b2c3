/* Helpers shared by the list command files (t_list.c, list_move.c). */
#ifndef KV_SHARD_LIST_UTIL_H
#define KV_SHARD_LIST_UTIL_H

#include <limits.h>

#include "shard/quicklist.h"
#include "shard/t_util.h"

/* The list at argv[i]: 1 with *ep and *qlp set, 0 when absent, -1 after a
 * WRONGTYPE reply. */
static inline int kv_list_lookup(kv_client_t *c, int i, int flags, kv_dict_entry **ep,
                                 kv_qlist **qlp)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, flags);
    if (!e) return 0;
    kv_obj *o = kv_db_obj(e);
    if (o->type != KV_TYPE_LIST) {
        kv_reply_wrongtype(c);
        return -1;
    }
    *ep = e;
    *qlp = kv_db_ptr(o);
    return 1;
}

/* Keep the db's byte count right after a list changed size. */
static inline void kv_list_mem(kv_client_t *c, const kv_qlist *ql, size_t before)
{
    c->db->mem_values += kv_ql_mem(ql) - before;
}

/* After a command removed elements: delete the key if the list is empty. */
static inline void kv_list_del_if_empty(kv_client_t *c, kv_dict_entry *e, const kv_qlist *ql)
{
    if (kv_ql_count(ql) == 0) kv_db_delete_entry(c->db, e);
}

static inline void kv_list_reply_val(kv_client_t *c, const kv_lp_val *v)
{
    if (v->s) kv_reply_bulk(&c->out, v->s, v->len);
    else kv_reply_bulk_ll(&c->out, v->ll);
}

/* Redis's getRangeLongFromObjectOrReply: an integer in [min, max], or the
 * error: msg, for a non-integer too (every list caller passes one). */
static inline int kv_list_arg_range(kv_client_t *c, int i, long long min, long long max,
                                    const char *msg, long long *v)
{
    if (!kv_str2ll(c->argv[i].ptr, c->argv[i].len, v)) {
        kv_reply_error_cstr(&c->out, msg ? msg : KV_ERR_NOT_INT);
        return 0;
    }
    if (*v < min || *v > max) {
        kv_reply_error_cstr(&c->out, msg);
        return 0;
    }
    return 1;
}

/* getPositiveLongFromObjectOrReply */
static inline int kv_list_arg_positive(kv_client_t *c, int i, const char *msg, long long *v)
{
    return kv_list_arg_range(c, i, 0, LLONG_MAX, msg ? msg : "value is out of range, must be positive", v);
}

/* LEFT / RIGHT (getListPositionFromObjectOrReply) */
static inline int kv_list_arg_where(kv_client_t *c, int i, int *where)
{
    if (kv_arg_is(&c->argv[i], "left")) *where = KV_QL_HEAD;
    else if (kv_arg_is(&c->argv[i], "right")) *where = KV_QL_TAIL;
    else {
        kv_reply_syntax(c);
        return 0;
    }
    return 1;
}

/* Reply `n` elements from index `start` (>= 0), towards the tail, or
 * towards the head when reverse (start then counts from the tail). */
void kv_list_reply_range(kv_client_t *c, const kv_qlist *ql, long long start, long long n,
                         int reverse);
/* Pop `n` elements from `where` and reply them as an array (LPOP/RPOP
 * with COUNT, LMPOP): reply order is pop order. Deletes the key when it
 * empties. */
void kv_list_pop_range(kv_client_t *c, kv_dict_entry *e, kv_qlist *ql, int where, long long n);
/* Pop one element from `where` and reply it as a bulk (LPOP, BLPOP).
 * Deletes the key when it empties. */
void kv_list_pop_one(kv_client_t *c, kv_dict_entry *e, kv_qlist *ql, int where);
/* LMOVE argv[1] argv[2] (list_move.c): 1 when an element moved, 0 after
 * replying nil or an error. */
int kv_list_lmove(kv_client_t *c, int from, int to);
/* [B]LMPOP's arguments from numkeys at argv[ni]: 0 after replying the
 * error (count is 1 when not given). */
int kv_list_mpop_args(kv_client_t *c, int ni, long long *numkeys, int *where, long long *count);

#endif
