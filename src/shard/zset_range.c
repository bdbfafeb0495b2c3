/* ZRANGE and its family (ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
 * ZRANGEBYLEX, ZREVRANGEBYLEX, ZRANGESTORE) and ZREMRANGEBYRANK/SCORE/LEX,
 * as Redis 7.0's zrangeGenericCommand and zremrangeGenericCommand.
 *
 * Every range is a run of consecutive ranks, so each form reduces to
 * (first rank, count, direction): score and lex bounds become ranks with
 * two O(log n) seeks on a skiplist, and LIMIT offset is a rank jump
 * instead of a walk. */
#include <limits.h>

#include "shard/zset_cmd.h"
#include "shard/notify.h"

enum { BY_AUTO, BY_RANK, BY_SCORE, BY_LEX };
enum { DIR_AUTO, DIR_FWD, DIR_REV };

#define ERR_LIMIT "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
#define ERR_WITHSCORES_LEX "syntax error, WITHSCORES not supported in combination with BYLEX"

/* Ranks [from, from+n) of src into a new value (ascending, so it is built
 * by appends), stored at dst. */
static void store_ranks(kv_client_t *c, const kv_resp_arg *dst, const kv_obj *src, size_t from,
                        size_t n)
{
    kv_zval v;
    uint8_t enc;
    void *p = kv_zset_create(n, 0, &enc);
    kv_obj *o = kv_zval_init(&v, enc, p);
    kv_zit it;
    if (n) kv_zit_rank(&it, src, from);
    for (size_t i = 0; i < n && it.valid; i++, kv_zit_next(&it)) {
        const char *m;
        size_t ml;
        double s;
        kv_zit_get(&it, &m, &ml, &s);
        kv_zset_append(o, m, ml, s);
    }
    v.ptr = kv_db_ptr(o);
    kv_reply_int(&c->out, (long long)kv_zset_store(c->db, dst, &v));
    kv_notify_stored(c->db, KV_NOTIFY_ZSET, &c->argv[0], dst->ptr, dst->len);
}

static void zrange_generic(kv_client_t *c, int start, int store, int by, int dir)
{
    int minidx = start + 1, maxidx = start + 2, scores = 0;
    long long offset = 0, limit = -1, lo = 0, hi = 0;
    kv_zrange range;
    kv_zlex lex;
    for (int j = start + 3; j < c->argc; j++) {
        int left = c->argc - j - 1;
        const kv_resp_arg *a = &c->argv[j];
        if (!store && kv_arg_is(a, "withscores")) {
            scores = 1;
        } else if (kv_arg_is(a, "limit") && left >= 2) {
            if (!kv_arg_ll(c, j + 1, &offset) || !kv_arg_ll(c, j + 2, &limit)) return;
            j += 2;
        } else if (dir == DIR_AUTO && kv_arg_is(a, "rev")) {
            dir = DIR_REV;
        } else if (by == BY_AUTO && kv_arg_is(a, "bylex")) {
            by = BY_LEX;
        } else if (by == BY_AUTO && kv_arg_is(a, "byscore")) {
            by = BY_SCORE;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    if (dir == DIR_AUTO) dir = DIR_FWD;
    if (by == BY_AUTO) by = BY_RANK;
    if (limit != -1 && by == BY_RANK) {
        kv_reply_error_cstr(&c->out, ERR_LIMIT);
        return;
    }
    if (scores && by == BY_LEX) {
        kv_reply_error_cstr(&c->out, ERR_WITHSCORES_LEX);
        return;
    }
    int rev = dir == DIR_REV;
    if (rev && by != BY_RANK) { /* given as max, min */
        int t = maxidx;
        maxidx = minidx, minidx = t;
    }
    if (by == BY_RANK) {
        if (!kv_arg_ll(c, minidx, &lo) || !kv_arg_ll(c, maxidx, &hi)) return;
    } else if (by == BY_SCORE) {
        if (!kv_zarg_range(&c->argv[minidx], &c->argv[maxidx], &range)) {
            kv_reply_error_cstr(&c->out, KV_ERR_ZRANGE);
            return;
        }
    } else if (!kv_zarg_lex(&c->argv[minidx], &c->argv[maxidx], &lex)) {
        kv_reply_error_cstr(&c->out, KV_ERR_ZLEX);
        return;
    }
    kv_dict_entry *e;
    if (!kv_zlookup(c, start, 0, &e)) return;
    const kv_resp_arg *dst = store ? &c->argv[1] : NULL;
    if (!e) {
        if (store) {
            kv_reply_int(&c->out, 0);
            kv_dict_entry *d = kv_db_find(c->db, dst->ptr, dst->len, KV_LOOKUP_WRITE);
            if (d) {
                kv_db_delete_entry(c->db, d);
                kv_db_changed(c->db, dst->ptr, dst->len, 1);
                kv_notify(c->db, KV_NOTIFY_GENERIC, "del", dst->ptr, dst->len);
            }
        } else {
            kv_reply_array(&c->out, 0);
        }
        return;
    }
    const kv_obj *o = kv_db_obj(e);
    long long len = (long long)kv_zset_len(o);
    size_t first = 0, n = 0; /* ascending ranks [first, first+n) */
    if (by == BY_RANK) {
        if (lo < 0) lo += len;
        if (hi < 0) hi += len;
        if (lo < 0) lo = 0;
        if (!(lo > hi || lo >= len)) {
            if (hi >= len) hi = len - 1;
            n = (size_t)(hi - lo + 1);
            first = rev ? (size_t)(len - 1 - hi) : (size_t)lo;
        }
    } else if (!(offset > 0 && offset >= len) && offset >= 0) {
        size_t f, cnt = by == BY_SCORE ? kv_zset_span_score(o, &range, &f)
                                       : kv_zset_span_lex(o, &lex, &f);
        if ((size_t)offset < cnt) {
            n = cnt - (size_t)offset;
            if (limit >= 0 && (size_t)limit < n) n = (size_t)limit;
            first = rev ? f + cnt - (size_t)offset - n : f + (size_t)offset;
        }
    }
    if (store) store_ranks(c, dst, o, first, n);
    else kv_zreply_ranks(c, o, rev ? first + n - 1 : first, n, rev, scores);
}

void kv_zrange_cmd(kv_client_t *c) { zrange_generic(c, 1, 0, BY_AUTO, DIR_AUTO); }
void kv_zrevrange_cmd(kv_client_t *c) { zrange_generic(c, 1, 0, BY_RANK, DIR_REV); }
void kv_zrangebyscore_cmd(kv_client_t *c) { zrange_generic(c, 1, 0, BY_SCORE, DIR_FWD); }
void kv_zrevrangebyscore_cmd(kv_client_t *c) { zrange_generic(c, 1, 0, BY_SCORE, DIR_REV); }
void kv_zrangebylex_cmd(kv_client_t *c) { zrange_generic(c, 1, 0, BY_LEX, DIR_FWD); }
void kv_zrevrangebylex_cmd(kv_client_t *c) { zrange_generic(c, 1, 0, BY_LEX, DIR_REV); }
void kv_zrangestore_cmd(kv_client_t *c) { zrange_generic(c, 2, 1, BY_AUTO, DIR_AUTO); }

/* ---- ZREMRANGEBY* -------------------------------------------------------- */

static void zremrange_generic(kv_client_t *c, int by)
{
    long long lo = 0, hi = 0;
    kv_zrange range;
    kv_zlex lex;
    if (by == BY_RANK) {
        if (!kv_arg_ll(c, 2, &lo) || !kv_arg_ll(c, 3, &hi)) return;
    } else if (by == BY_SCORE) {
        if (!kv_zarg_range(&c->argv[2], &c->argv[3], &range)) {
            kv_reply_error_cstr(&c->out, KV_ERR_ZRANGE);
            return;
        }
    } else if (!kv_zarg_lex(&c->argv[2], &c->argv[3], &lex)) {
        kv_reply_error_cstr(&c->out, KV_ERR_ZLEX);
        return;
    }
    kv_dict_entry *e;
    if (!kv_zlookup(c, 1, KV_LOOKUP_WRITE, &e)) return;
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    long long len = (long long)kv_zset_len(o);
    size_t first = 0, n = 0;
    if (by == BY_RANK) {
        if (lo < 0) lo += len;
        if (hi < 0) hi += len;
        if (lo < 0) lo = 0;
        if (lo > hi || lo >= len) {
            kv_reply_int(&c->out, 0);
            return;
        }
        if (hi >= len) hi = len - 1;
        first = (size_t)lo, n = (size_t)(hi - lo + 1);
    } else if (by == BY_SCORE) {
        n = kv_zset_span_score(o, &range, &first);
    } else {
        n = kv_zset_span_lex(o, &lex, &first);
    }
    if (n) {
        size_t before = kv_zset_mem(kv_db_ptr(o), o->enc);
        kv_zset_del_ranks(o, first, first + n - 1);
        kv_zset_account(c->db, o, before);
        kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, (unsigned)n);
        kv_zset_drop_if_empty(c->db, e);
        kv_notify_cmd(c->db, KV_NOTIFY_ZSET, &c->argv[0], c->argv[1].ptr, c->argv[1].len);
        kv_notify_if_deleted(c->db, c->argv[1].ptr, c->argv[1].len);
    }
    kv_reply_int(&c->out, (long long)n);
}

void kv_zremrangebyrank_cmd(kv_client_t *c) { zremrange_generic(c, BY_RANK); }
void kv_zremrangebyscore_cmd(kv_client_t *c) { zremrange_generic(c, BY_SCORE); }
void kv_zremrangebylex_cmd(kv_client_t *c) { zremrange_generic(c, BY_LEX); }
