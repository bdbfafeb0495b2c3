/*
 * BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH, as Redis 7.0's t_list.c: the
 * non-blocking form when something is there, else wait (shard/block.h).
 * What is logged is the non-blocking command that had the same effect
 * (Redis rewrites BLPOP as LPOP key ...): a replay must not depend on
 * which key a re-run would look at first.
 */
#include <stdio.h>

#include "shard/block.h"
#include "shard/list_util.h"
#include "shard/notify.h"

void kv_list_blpop_cmd(kv_client_t *c);
void kv_list_brpop_cmd(kv_client_t *c);
void kv_list_blmpop_cmd(kv_client_t *c);
void kv_list_blmove_cmd(kv_client_t *c);
void kv_list_brpoplpush_cmd(kv_client_t *c);

/* The list at argv[j] to pop from: 1 (e, ql set), 0 none, -1 after
 * WRONGTYPE. Woken (kv_block_ready_key), only the key that changed
 * counts, and a non-list there means "keep waiting", as in Redis. */
static int pop_source(kv_client_t *c, int j, kv_dict_entry **e, kv_qlist **ql)
{
    if (!kv_block_ready_key()) return kv_list_lookup(c, j, KV_LOOKUP_WRITE, e, ql);
    if (!kv_block_is_ready_key(&c->argv[j])) return 0;
    *e = kv_db_find(c->db, c->argv[j].ptr, c->argv[j].len, KV_LOOKUP_WRITE);
    if (!*e || kv_db_obj(*e)->type != KV_TYPE_LIST) return 0;
    *ql = kv_db_ptr(kv_db_obj(*e));
    return 1;
}

/* *2 key value (count < 0), or *2 key [values] (BLMPOP). */
static void pop_reply(kv_client_t *c, int j, kv_dict_entry *e, kv_qlist *ql, int where, long long count)
{
    const kv_resp_arg *k = &c->argv[j];
    long long len = (long long)kv_ql_count(ql);
    char nbuf[24];
    kv_reply_array(&c->out, 2);
    kv_reply_bulk(&c->out, k->ptr, k->len);
    if (count < 0) kv_list_pop_one(c, e, ql, where);
    else kv_list_pop_range(c, e, ql, where, count);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_LIST, where == KV_QL_HEAD ? "lpop" : "rpop", k->ptr, k->len);
    kv_notify_if_deleted(c->db, k->ptr, k->len);
    int nlen = snprintf(nbuf, sizeof nbuf, "%lld", count < len ? count : len);
    kv_resp_arg av[3] = { { where == KV_QL_HEAD ? "LPOP" : "RPOP", 4 }, *k, { nbuf, (size_t)nlen } };
    kv_fwd_propagate_as(c, count < 0 ? 2 : 3, av);
}

/* Redis's blockingPopGenericCommand: keys argv[first .. first+nkeys),
 * the timeout at argv[ti]; count < 0 pops one element. */
static void bpop(kv_client_t *c, int first, int nkeys, int where, long long count, int ti)
{
    long long timeout;
    if (!kv_block_timeout(c, ti, 1, &timeout)) return;
    for (int j = first; j < first + nkeys; j++) {
        kv_dict_entry *e;
        kv_qlist *ql;
        int found = pop_source(c, j, &e, &ql);
        if (found < 0) return;
        if (!found) continue;
        pop_reply(c, j, e, ql, where, count);
        return;
    }
    if (!kv_block_wait(c->argc, c->argv, first, nkeys, timeout)) kv_reply_null_array(&c->out);
}

void kv_list_blpop_cmd(kv_client_t *c) { bpop(c, 1, c->argc - 2, KV_QL_HEAD, -1, c->argc - 1); }
void kv_list_brpop_cmd(kv_client_t *c) { bpop(c, 1, c->argc - 2, KV_QL_TAIL, -1, c->argc - 1); }

/* BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: the
 * arguments first, then the timeout, as Redis. */
void kv_list_blmpop_cmd(kv_client_t *c)
{
    long long numkeys, count;
    int where;
    if (!kv_list_mpop_args(c, 2, &numkeys, &where, &count)) return;
    bpop(c, 3, (int)numkeys, where, count, 1);
}

/* Redis's blmoveGenericCommand: waits on the source only. */
static void blmove(kv_client_t *c, int from, int to, int ti)
{
    long long timeout;
    kv_dict_entry *e;
    kv_qlist *ql;
    if (!kv_block_timeout(c, ti, 1, &timeout)) return;
    int found = pop_source(c, 1, &e, &ql);
    if (found < 0) return;
    if (!found) {
        /* In MULTI Redis answers a null bulk here, but a null array when
         * the wait times out (block.c). */
        if (!kv_block_wait(c->argc, c->argv, 1, 1, timeout)) kv_reply_null(&c->out);
        return;
    }
    /* A destination of another type: WRONGTYPE, nothing moves, and a
     * woken waiter is answered so (Redis 7.0 does the same). */
    if (!kv_list_lmove(c, from, to)) return;
    if (c->argv[0].len == 10) {         /* brpoplpush */
        kv_resp_arg av[3] = { { "RPOPLPUSH", 9 }, c->argv[1], c->argv[2] };
        kv_fwd_propagate_as(c, 3, av);
    } else {
        kv_resp_arg av[5] = { { "LMOVE", 5 }, c->argv[1], c->argv[2],
                              { from == KV_QL_HEAD ? "LEFT" : "RIGHT", from == KV_QL_HEAD ? 4u : 5u },
                              { to == KV_QL_HEAD ? "LEFT" : "RIGHT", to == KV_QL_HEAD ? 4u : 5u } };
        kv_fwd_propagate_as(c, 5, av);
    }
}

void kv_list_blmove_cmd(kv_client_t *c)
{
    int from, to;
    if (!kv_list_arg_where(c, 3, &from) || !kv_list_arg_where(c, 4, &to)) return;
    blmove(c, from, to, 5);
}

void kv_list_brpoplpush_cmd(kv_client_t *c) { blmove(c, KV_QL_TAIL, KV_QL_HEAD, 3); }
