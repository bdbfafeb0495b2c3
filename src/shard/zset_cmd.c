/* Helpers of the sorted-set command files (zset_cmd.h): Redis 7.0's
 * argument parsing for scores and ranges, lookups, storing results,
 * replying runs of ranks. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "shard/zset_cmd.h"
#include "shard/notify.h"

/* A NUL-terminated copy for strtod: on the stack when short. */
typedef struct {
    char sbuf[128];
    char *p;
} cstr_t;
static char *cstr(cstr_t *t, const char *s, size_t n)
{
    t->p = n < sizeof t->sbuf ? t->sbuf : malloc(n + 1);
    if (!t->p) abort();
    memcpy(t->p, s, n);
    t->p[n] = '\0';
    return t->p;
}
static void cstr_done(cstr_t *t)
{
    if (t->p != t->sbuf) free(t->p);
}

int kv_zarg_double(const kv_resp_arg *a, double *d)
{
    cstr_t t;
    char *s = cstr(&t, a->ptr, a->len), *end;
    errno = 0;
    double v = strtod(s, &end);
    int ok = a->len > 0 && !isspace((unsigned char)s[0]) && (size_t)(end - s) == a->len &&
             !(errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)) &&
             !isnan(v);
    cstr_done(&t);
    *d = v;
    return ok;
}

/* zslParseRange's half: C-string strtod, so trailing bytes after a NUL,
 * leading spaces and "" (0) pass as they do in Redis. */
static int parse_bound(const kv_resp_arg *a, double *v, int *ex)
{
    size_t n = (size_t)kv_arg_cstrlen(a), skip = n > 0 && a->ptr[0] == '(';
    cstr_t t;
    char *s = cstr(&t, a->ptr + skip, n - skip), *end;
    *ex = (int)skip;
    *v = strtod(s, &end);
    int ok = end[0] == '\0' && !isnan(*v);
    cstr_done(&t);
    return ok;
}

int kv_zarg_range(const kv_resp_arg *min, const kv_resp_arg *max, kv_zrange *r)
{
    return parse_bound(min, &r->min, &r->minex) && parse_bound(max, &r->max, &r->maxex);
}

static int parse_lex(const kv_resp_arg *a, kv_zlexb *b)
{
    char c0 = a->len ? a->ptr[0] : '\0', c1 = a->len > 1 ? a->ptr[1] : '\0';
    b->inf = 0, b->p = a->ptr + 1, b->len = a->len ? a->len - 1 : 0;
    switch (c0) {
    case '+':
    case '-':
        if (c1 != '\0') return 0;
        b->inf = c0 == '+' ? 1 : -1, b->ex = 1;
        return 1;
    case '(': b->ex = 1; return 1;
    case '[': b->ex = 0; return 1;
    default: return 0;
    }
}

int kv_zarg_lex(const kv_resp_arg *min, const kv_resp_arg *max, kv_zlex *r)
{
    return parse_lex(min, &r->min) && parse_lex(max, &r->max);
}

int kv_zlookup(kv_client_t *c, int i, int flags, kv_dict_entry **e)
{
    *e = kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, flags);
    if (*e && kv_db_obj(*e)->type != KV_TYPE_ZSET) {
        kv_reply_wrongtype(c);
        return 0;
    }
    return 1;
}

void kv_zset_drop_if_empty(kv_db_t *db, kv_dict_entry *e)
{
    if (kv_zset_len(kv_db_obj(e)) == 0) kv_db_delete_entry(db, e);
}

size_t kv_zset_store(kv_db_t *db, const kv_resp_arg *key, kv_zval *v)
{
    kv_dict_entry *old = kv_db_find(db, key->ptr, key->len, KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH);
    size_t n = kv_zset_len(&v->o);
    if (old) kv_db_delete_entry(db, old);
    if (n == 0) {
        kv_zset_free(v->ptr, v->o.enc);
        if (old) kv_db_changed(db, key->ptr, key->len, 1);
        if (old) kv_notify(db, KV_NOTIFY_GENERIC, "del", key->ptr, key->len);
        return 0;
    }
    kv_zset_shrink_if_fits(&v->o);
    kv_db_add_ptr(db, key->ptr, key->len, KV_TYPE_ZSET, v->o.enc, v->ptr);
    kv_db_changed(db, key->ptr, key->len, 1);
    return n;
}

void kv_zreply_ranks(kv_client_t *c, const kv_obj *o, size_t from, size_t n, int rev, int scores)
{
    kv_zit it;
    kv_reply_array(&c->out, (long long)(scores ? n * 2 : n));
    if (n == 0) return;
    kv_zit_rank(&it, o, from);
    for (size_t i = 0; i < n && it.valid; i++) {
        const char *m;
        size_t ml;
        double s;
        kv_zit_get(&it, &m, &ml, &s);
        kv_reply_bulk(&c->out, m, ml);
        if (scores) kv_reply_double(&c->out, s);
        if (rev) kv_zit_prev(&it);
        else kv_zit_next(&it);
    }
}

