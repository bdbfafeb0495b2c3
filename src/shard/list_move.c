/* LPOS, LMOVE, RPOPLPUSH and LMPOP, as Redis 7.0's t_list.c (the
 * blocking forms use kv_list_lmove and kv_list_mpop_args too). */
#include <stdlib.h>
#include <string.h>

#include "shard/list_util.h"
#include "shard/notify.h"

void kv_list_lpos_cmd(kv_client_t *c);
void kv_list_lmove_cmd(kv_client_t *c);
void kv_list_rpoplpush_cmd(kv_client_t *c);
void kv_list_lmpop_cmd(kv_client_t *c);

/* LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len] */
void kv_list_lpos_cmd(kv_client_t *c)
{
    const kv_resp_arg *ele = &c->argv[2];
    long long rank = 1, count = -1, maxlen = 0;
    for (int j = 3; j < c->argc; j++) {
        int more = c->argc - 1 - j;
        if (kv_arg_is(&c->argv[j], "rank") && more) {
            if (!kv_arg_ll(c, ++j, &rank)) return;
            if (rank == 0) {
                kv_reply_error_cstr(&c->out,
                                    "RANK can't be zero: use 1 to start from the first match, 2 "
                                    "from the second ... or use negative to start from the end of "
                                    "the list");
                return;
            }
        } else if (kv_arg_is(&c->argv[j], "count") && more) {
            if (!kv_list_arg_positive(c, ++j, "COUNT can't be negative", &count)) return;
        } else if (kv_arg_is(&c->argv[j], "maxlen") && more) {
            if (!kv_list_arg_positive(c, ++j, "MAXLEN can't be negative", &maxlen)) return;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    kv_dict_entry *e;
    kv_qlist *ql;
    int found = kv_list_lookup(c, 1, 0, &e, &ql);
    if (found < 0) return;
    if (!found) {
        if (count == -1) kv_reply_null(&c->out);
        else kv_reply_array(&c->out, 0);
        return;
    }
    /* Redis 7.0 negates RANK without a range check: LLONG_MIN stays
     * negative, so every match qualifies and COUNT never stops it. */
    int forward = rank > 0, unbounded = rank == LLONG_MIN;
    if (rank < 0 && !unbounded) rank = -rank;
    long long llen = (long long)kv_ql_count(ql), index = 0, matches = 0, found_at = -1;
    long long *hits = NULL, nhits = 0, cap = 0;
    kv_ql_pos pos;
    int ok = kv_ql_index(ql, forward ? 0 : -1, &pos);
    while (ok && (maxlen == 0 || index < maxlen)) {
        if (kv_ql_eq(&pos, ele->ptr, ele->len)) {
            matches++;
            if (unbounded || matches >= rank) {
                long long at = forward ? index : llen - index - 1;
                if (count == -1) {
                    found_at = at;
                    break;
                }
                if (nhits == cap) {
                    cap = cap ? cap * 2 : 16;
                    hits = realloc(hits, (size_t)cap * sizeof(*hits));
                    if (!hits) abort();
                }
                hits[nhits++] = at;
                if (!unbounded && count && matches - rank + 1 >= count) break;
            }
        }
        index++;
        ok = forward ? kv_ql_next(&pos) : kv_ql_prev(&pos);
    }
    if (count != -1) {
        kv_reply_array(&c->out, nhits);
        for (long long i = 0; i < nhits; i++) kv_reply_int(&c->out, hits[i]);
        free(hits);
    } else if (found_at >= 0) {
        kv_reply_int(&c->out, found_at);
    } else {
        kv_reply_null(&c->out);
    }
}

/* A popped element kept while the list it came from changes. */
typedef struct {
    char buf[128];
    char *heap;
    const char *p;
    size_t n;
} saved_val;

static void save_val(saved_val *sv, const kv_lp_val *v)
{
    sv->heap = NULL;
    if (!v->s) {
        sv->p = kv_lp_val_str(v, sv->buf, &sv->n);
        return;
    }
    sv->n = v->len;
    char *dst = sv->buf;
    if (v->len > sizeof(sv->buf)) {
        dst = sv->heap = malloc(v->len);
        if (!dst) abort();
    }
    memcpy(dst, v->s, v->len);
    sv->p = dst;
}

int kv_list_lmove(kv_client_t *c, int from, int to)
{
    const kv_resp_arg *sk = &c->argv[1], *dk = &c->argv[2];
    kv_dict_entry *se, *de;
    kv_qlist *src, *dst;
    int found = kv_list_lookup(c, 1, KV_LOOKUP_WRITE, &se, &src);
    if (found < 0) return 0;
    if (!found) {
        kv_reply_null(&c->out);
        return 0;
    }
    int dfound = kv_list_lookup(c, 2, KV_LOOKUP_WRITE, &de, &dst);
    if (dfound < 0) return 0;
    /* pop first, then push: with src == dst the node layout must be
     * what Redis's pop-then-push leaves */
    kv_ql_pos pos;
    kv_lp_val v;
    saved_val sv;
    size_t before = kv_ql_mem(src);
    kv_ql_index(src, from == KV_QL_HEAD ? 0 : -1, &pos);
    kv_ql_get(&pos, &v);
    save_val(&sv, &v);
    kv_ql_delete(src, &pos, 1);
    kv_list_mem(c, src, before);
    if (!dfound) {
        dst = kv_ql_new();
        kv_ql_push(dst, to, sv.p, sv.n);
        kv_db_add_ptr(c->db, dk->ptr, dk->len, KV_TYPE_LIST, KV_ENC_QUICKLIST, dst);
    } else {
        before = kv_ql_mem(dst);
        kv_ql_push(dst, to, sv.p, sv.n);
        kv_list_mem(c, dst, before);
    }
    kv_reply_bulk(&c->out, sv.p, sv.n);
    free(sv.heap);
    kv_list_del_if_empty(c, se, src);
    kv_db_changed(c->db, sk->ptr, sk->len, 1);
    kv_db_changed(c->db, dk->ptr, dk->len, 0);
    kv_notify(c->db, KV_NOTIFY_LIST, to == KV_QL_HEAD ? "lpush" : "rpush", dk->ptr, dk->len);
    kv_notify(c->db, KV_NOTIFY_LIST, from == KV_QL_HEAD ? "lpop" : "rpop", sk->ptr, sk->len);
    kv_notify_if_deleted(c->db, sk->ptr, sk->len);
    return 1;
}

void kv_list_lmove_cmd(kv_client_t *c)
{
    int from, to;
    if (!kv_list_arg_where(c, 3, &from) || !kv_list_arg_where(c, 4, &to)) return;
    kv_list_lmove(c, from, to);
}

void kv_list_rpoplpush_cmd(kv_client_t *c) { kv_list_lmove(c, KV_QL_TAIL, KV_QL_HEAD); }

/* lmpopGenericCommand's parsing: numkeys, LEFT|RIGHT, [COUNT count]. */
int kv_list_mpop_args(kv_client_t *c, int ni, long long *numkeys, int *where, long long *count)
{
    *count = -1;
    if (!kv_list_arg_range(c, ni, 1, LLONG_MAX, "numkeys should be greater than 0", numkeys))
        return 0;
    if (*numkeys >= c->argc - ni - 1) {
        kv_reply_syntax(c);
        return 0;
    }
    int wi = ni + 1 + (int)*numkeys;
    if (!kv_list_arg_where(c, wi, where)) return 0;
    for (int j = wi + 1; j < c->argc; j++) {
        int more = c->argc - 1 - j;
        if (*count == -1 && kv_arg_is(&c->argv[j], "count") && more) {
            if (!kv_list_arg_range(c, ++j, 1, LLONG_MAX, "count should be greater than 0", count))
                return 0;
        } else {
            kv_reply_syntax(c);
            return 0;
        }
    }
    if (*count == -1) *count = 1;
    return 1;
}

/* LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] */
void kv_list_lmpop_cmd(kv_client_t *c)
{
    long long numkeys, count;
    int where;
    if (!kv_list_mpop_args(c, 1, &numkeys, &where, &count)) return;
    for (int j = 2; j < 2 + (int)numkeys; j++) {
        kv_dict_entry *e;
        kv_qlist *ql;
        int found = kv_list_lookup(c, j, KV_LOOKUP_WRITE, &e, &ql);
        if (found < 0) return;
        if (!found) continue;
        const kv_resp_arg *k = &c->argv[j];
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, k->ptr, k->len);
        kv_list_pop_range(c, e, ql, where, count);
        kv_db_changed(c->db, k->ptr, k->len, 1);
        kv_notify(c->db, KV_NOTIFY_LIST, where == KV_QL_HEAD ? "lpop" : "rpop", k->ptr, k->len);
        kv_notify_if_deleted(c->db, k->ptr, k->len);
        return;
    }
    kv_reply_null_array(&c->out);
}
