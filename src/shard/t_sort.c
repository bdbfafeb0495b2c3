/*
 * SORT and SORT_RO, as Redis 7.0's sort.c: lists, sets and sorted sets;
 * ASC/DESC, ALPHA, LIMIT, BY pattern (no '*': "nosort"), GET patterns
 * ("#", "key*", "key*->field"), STORE (SORT only; stores a list).
 *
 * Pattern keys and shards: the handler runs on the shard of the sorted
 * key and can only read keys of that shard. A pattern that makes lookups
 * (it has a '*' and is not "#") is accepted when its key part carries a
 * constant hash tag -- "{tag}" whole before the '*', so the substitution
 * cannot change it -- that routes to this shard, or when there is one
 * shard. Anything else is refused with an error instead of silently
 * answering nils (docs/routing.md, "SORT"). A SORT ... STORE whose
 * destination is on another shard runs on copies of the two keys
 * (chain.c's scratch keyspace), where no pattern key exists: patterns
 * are refused there too.
 *
 * Order: the same comparison as Redis's sortCompare, through qsort_r on
 * the same glibc, so even ties (ALPHA BY with equal or missing weights)
 * come out in Redis's order for lists. ALPHA without STORE compares as
 * strcoll in the C locale, i.e. strcmp (up to a NUL).
 *
 * Elements and ALPHA weights are copied into a per-process arena before
 * any pattern lookup: a lookup may delete an expired key, which may move
 * dict entries, so nothing may point into the keyspace across lookups.
 * The arena and the vector are kept between commands (trimmed when a big
 * SORT left them large), so a SORT allocates nothing once warm.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard/hash_type.h"
#include "shard/notify.h"
#include "shard/quicklist.h"
#include "shard/route.h"
#include "shard/set_type.h"
#include "shard/t_util.h"
#include "shard/zset_type.h"

#define KV_SORT_ERR_SHARD                                                                          \
    "kevy: SORT BY/GET patterns must reference keys on the same shard; use a {hash tag}"
#define KV_SORT_KEEP (1u << 20) /* bytes of buffers kept after a command */

typedef struct {
    size_t off, len;   /* the element's bytes in the arena (a NUL follows) */
    size_t coff, clen; /* ALPHA BY: the weight's bytes in the arena */
    int has_cmp;       /* ALPHA BY: the weight exists (Redis's cmpobj) */
    double score;
} sort_item;

typedef struct {
    const char *base;
    int desc, alpha, bypattern, store;
} sort_ctx;

/* Reused buffers: arena of element bytes, the vector, GET pattern
 * indexes, the key being built from a pattern. */
static char *arena;
static size_t arena_len, arena_cap;
static sort_item *vec;
static size_t vec_cap;
static int *gets;
static size_t gets_cap;
static char *kbuf;
static size_t kbuf_cap;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(p, n * elem);
    if (!q) abort();
    *cap = n;
    return q;
}

/* Append s[0..n) and a NUL; returns its offset. */
static size_t arena_put(const char *s, size_t n)
{
    arena = grow(arena, &arena_cap, arena_len + n + 1, 1);
    size_t off = arena_len;
    memcpy(arena + off, s, n);
    arena[off + n] = '\0';
    arena_len += n + 1;
    return off;
}

static void trim_buffers(void)
{
    if (arena_cap > KV_SORT_KEEP) free(arena), arena = NULL, arena_cap = 0;
    if (vec_cap * sizeof(*vec) > KV_SORT_KEEP) free(vec), vec = NULL, vec_cap = 0;
    if (gets_cap * sizeof(*gets) > KV_SORT_KEEP) free(gets), gets = NULL, gets_cap = 0;
    if (kbuf_cap > KV_SORT_KEEP) free(kbuf), kbuf = NULL, kbuf_cap = 0;
    arena_len = 0;
}

/* ---- patterns ------------------------------------------------------------ */

/* Redis tests spat[0] == '#' && spat[1] == '\0' on the C string. */
static int pattern_is_self(const kv_resp_arg *p)
{
    return p->len >= 1 && p->ptr[0] == '#' && (p->len == 1 || p->ptr[1] == '\0');
}

/* Does the pattern read keys? ("#" does not; without '*' nothing is read.) */
static int pattern_reads(const kv_resp_arg *p)
{
    return !pattern_is_self(p) && memchr(p->ptr, '*', (size_t)kv_arg_cstrlen(p));
}

/* Can a lookup through p see its keys here? See the top comment. */
static int pattern_local(kv_client_t *c, const kv_resp_arg *p)
{
    int scratch = c->srv && c->srv->db && c->db != c->srv->db;
    if (!pattern_reads(p)) return 1;
    if (scratch) return 0;
    if (kv_route_nshards() <= 1) return 1;
    const char *star = memchr(p->ptr, '*', (size_t)kv_arg_cstrlen(p));
    const char *lb = memchr(p->ptr, '{', (size_t)(star - p->ptr));
    if (!lb) return 0;
    const char *rb = memchr(lb + 1, '}', (size_t)(star - lb - 1));
    if (!rb || rb == lb + 1) return 0; /* no tag, or "{}": the whole key */
    return kv_route_shard(lb, (size_t)(rb - lb + 1)) ==
           kv_route_shard(c->argv[1].ptr, c->argv[1].len);
}

/* A looked-up value: bytes, or an integer formatted into buf. */
typedef struct {
    const char *s;
    size_t len;
    char buf[KV_DB_INTBUF];
} sort_val;

/* Redis's lookupKeyByPattern: 1 with *out set when the pattern names a
 * string key (or a field of a hash key) that exists. The bytes in *out
 * are valid until the next lookup. */
static int lookup_pattern(kv_client_t *c, const kv_resp_arg *pat, const char *el, size_t elen,
                          sort_val *out)
{
    if (pattern_is_self(pat)) {
        out->s = el, out->len = elen;
        return 1;
    }
    const char *sp = pat->ptr;
    size_t slen = pat->len, clen = (size_t)kv_arg_cstrlen(pat);
    const char *star = memchr(sp, '*', clen);
    if (!star) return 0;
    /* strstr(p+1, "->") on the C string; a field must follow it */
    const char *f = NULL;
    size_t fieldlen = 0;
    for (const char *q = star + 1; q + 1 < sp + clen; q++)
        if (q[0] == '-' && q[1] == '>') {
            f = q;
            break;
        }
    if (f && f + 2 < sp + clen) fieldlen = slen - (size_t)(f - sp) - 2;
    size_t prefix = (size_t)(star - sp);
    size_t postfix = slen - prefix - 1 - (fieldlen ? fieldlen + 2 : 0);
    size_t klen = prefix + elen + postfix;
    kbuf = grow(kbuf, &kbuf_cap, klen + 1, 1);
    memcpy(kbuf, sp, prefix);
    memcpy(kbuf + prefix, el, elen);
    memcpy(kbuf + prefix + elen, star + 1, postfix);
    kv_dict_entry *e = kv_db_find(c->db, kbuf, klen, 0);
    if (!e) return 0;
    const kv_obj *o = kv_db_obj(e);
    if (fieldlen) {
        kv_lp_val v;
        if (o->type != KV_TYPE_HASH || !kv_hash_get(o, f + 2, fieldlen, &v)) return 0;
        if (v.s) out->s = (const char *)v.s, out->len = v.len;
        else out->len = (size_t)kv_reply_fmt_ll(out->buf, v.ll), out->s = out->buf;
        return 1;
    }
    if (o->type != KV_TYPE_STRING) return 0;
    out->s = kv_db_str(o, out->buf, &out->len);
    return 1;
}

/* ---- loading and ordering -------------------------------------------------- */

static void push_item(size_t *j, const char *s, size_t n)
{
    sort_item *it = &vec[(*j)++];
    it->off = arena_put(s, n), it->len = n;
    it->has_cmp = 0, it->score = 0;
}

static void push_lpval(size_t *j, const kv_lp_val *v)
{
    char b[KV_LP_INTBUF];
    if (v->s) push_item(j, (const char *)v->s, v->len);
    else push_item(j, b, (size_t)kv_reply_fmt_ll(b, v->ll));
}

/* Redis's compareStringObjects: memcmp, then the length. */
static int bin_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    if (r) return r;
    return al < bl ? -1 : al > bl;
}

/* Redis's sortCompare. */
static int sort_cmp(const void *x, const void *y, void *arg)
{
    const sort_item *a = x, *b = y;
    const sort_ctx *k = arg;
    int cmp;
    if (!k->alpha) {
        if (a->score > b->score) cmp = 1;
        else if (a->score < b->score) cmp = -1;
        else cmp = bin_cmp(k->base + a->off, a->len, k->base + b->off, b->len);
    } else if (k->bypattern) {
        if (!a->has_cmp || !b->has_cmp) cmp = a->has_cmp == b->has_cmp ? 0 : !a->has_cmp ? -1 : 1;
        else if (k->store) cmp = bin_cmp(k->base + a->coff, a->clen, k->base + b->coff, b->clen);
        else cmp = strcmp(k->base + a->coff, k->base + b->coff);
    } else {
        if (k->store) cmp = bin_cmp(k->base + a->off, a->len, k->base + b->off, b->len);
        else cmp = strcmp(k->base + a->off, k->base + b->off);
    }
    return k->desc ? -cmp : cmp;
}

/* Redis's strtod check: the whole C string, no ERANGE, not NaN. */
static int parse_score(const char *s, double *d)
{
    char *end;
    errno = 0;
    *d = strtod(s, &end);
    return !(end[0] != '\0' || errno == ERANGE || *d != *d);
}

/* Load the elements to sort into vec[0..n). For a list or sorted set in
 * "nosort" order only [start, start+n) in the asked direction. */
static size_t load(const kv_obj *o, int dontsort, int desc, long long start, long long n)
{
    size_t j = 0;
    vec = grow(vec, &vec_cap, (size_t)n + 1, sizeof(*vec));
    if (!o || n <= 0) return 0;
    if (o->type == KV_TYPE_LIST) {
        const kv_qlist *ql = kv_db_ptr(o);
        long long len = (long long)kv_ql_count(ql), from = 0;
        int back = 0;
        if (dontsort) from = desc ? len - start - 1 : start, back = desc;
        kv_ql_pos pos;
        int ok = kv_ql_index(ql, from, &pos);
        while (ok && (long long)j < n) {
            kv_lp_val v;
            kv_ql_get(&pos, &v);
            push_lpval(&j, &v);
            ok = back ? kv_ql_prev(&pos) : kv_ql_next(&pos);
        }
    } else if (o->type == KV_TYPE_SET) {
        kv_set_iter it;
        kv_lp_val v;
        kv_set_iter_init(&it, o);
        while ((long long)j < n && kv_set_iter_next(&it, &v)) push_lpval(&j, &v);
        kv_set_iter_done(&it);
    } else {
        long long len = (long long)kv_zset_len(o), from = 0;
        if (dontsort) from = desc ? len - start - 1 : start;
        kv_zit it;
        kv_zit_rank(&it, o, (size_t)from);
        while (it.valid && (long long)j < n) {
            const char *m;
            size_t ml;
            double sc;
            kv_zit_get(&it, &m, &ml, &sc);
            push_item(&j, m, ml);
            if (dontsort && desc) kv_zit_prev(&it);
            else kv_zit_next(&it);
        }
    }
    return j;
}

/* ---- the command ------------------------------------------------------------ */

static void sort_generic(kv_client_t *c, int readonly)
{
    int desc = 0, alpha = 0, dontsort = 0, ngets = 0;
    long long limit_start = 0, limit_count = -1;
    const kv_resp_arg *sortby = NULL, *storekey = NULL;

    gets = grow(gets, &gets_cap, (size_t)c->argc, sizeof(*gets));
    for (int j = 2; j < c->argc; j++) {
        int left = c->argc - j - 1;
        const kv_resp_arg *a = &c->argv[j];
        if (kv_arg_is(a, "asc")) desc = 0;
        else if (kv_arg_is(a, "desc")) desc = 1;
        else if (kv_arg_is(a, "alpha")) alpha = 1;
        else if (kv_arg_is(a, "limit") && left >= 2) {
            if (!kv_arg_ll(c, j + 1, &limit_start) || !kv_arg_ll(c, j + 2, &limit_count)) return;
            j += 2;
        } else if (!readonly && kv_arg_is(a, "store") && left >= 1) {
            storekey = &c->argv[++j];
        } else if (kv_arg_is(a, "by") && left >= 1) {
            sortby = &c->argv[++j];
            /* no '*': nothing to weigh by, keep the native order */
            if (!memchr(sortby->ptr, '*', (size_t)kv_arg_cstrlen(sortby))) dontsort = 1;
            else if (!pattern_local(c, sortby)) goto shard_err;
        } else if (kv_arg_is(a, "get") && left >= 1) {
            if (!pattern_local(c, &c->argv[j + 1])) goto shard_err;
            gets[ngets++] = ++j;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }

    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    kv_obj *o = e ? kv_db_obj(e) : NULL;
    if (o && o->type != KV_TYPE_SET && o->type != KV_TYPE_LIST && o->type != KV_TYPE_ZSET) {
        kv_reply_wrongtype(c);
        return;
    }
    /* A set's native order is not stable across servers: what is stored
     * is sorted (Redis does the same, and for scripts). */
    if (dontsort && o && o->type == KV_TYPE_SET && storekey) dontsort = 0, alpha = 1, sortby = NULL;
    /* Redis converts a listpack sorted set for SORT, destructively: OBJECT
     * ENCODING and DUMP show "skiplist" afterwards. */
    if (o && o->type == KV_TYPE_ZSET && o->enc == KV_ENC_LISTPACK) {
        size_t before = kv_zset_mem(kv_db_ptr(o), o->enc);
        kv_zset_convert(o, KV_ENC_SKIPLIST);
        kv_zset_account(c->db, o, before);
    }
    long long vectorlen = !o ? 0
                          : o->type == KV_TYPE_LIST ? (long long)kv_ql_count(kv_db_ptr(o))
                          : o->type == KV_TYPE_SET  ? (long long)kv_set_size(o)
                                                    : (long long)kv_zset_len(o);

    /* LIMIT as Redis clamps it; start + count saturates where Redis's
     * long arithmetic would overflow (it behaves as clamped there too). */
    long long start = limit_start < 0 ? 0 : limit_start, end;
    if (limit_count < 0) end = vectorlen - 1;
    else if (__builtin_add_overflow(start, limit_count - 1, &end)) end = vectorlen - 1;
    if (start >= vectorlen) start = vectorlen - 1, end = vectorlen - 2;
    if (end >= vectorlen) end = vectorlen - 1;
    long long nload = vectorlen;
    int ranged = o && o->type != KV_TYPE_SET && dontsort;
    if (ranged && (start != 0 || end != vectorlen - 1)) nload = end - start + 1;
    if (ranged && o->type == KV_TYPE_LIST && end < start) nload = 0;
    size_t n = load(o, dontsort, desc, start, nload);
    if (ranged && (o->type == KV_TYPE_ZSET || end >= start)) end -= start, start = 0;
    o = NULL, e = NULL; /* lookups below may move entries */

    int conv_err = 0;
    if (!dontsort) {
        for (size_t j = 0; j < n; j++) {
            sort_item *it = &vec[j];
            sort_val v;
            if (sortby) {
                if (!lookup_pattern(c, sortby, arena + it->off, it->len, &v)) continue;
            } else {
                v.s = arena + it->off, v.len = it->len;
            }
            if (alpha) {
                if (sortby) it->coff = arena_put(v.s, v.len), it->clen = v.len, it->has_cmp = 1;
            } else if (sortby) {
                size_t off = arena_put(v.s, v.len); /* NUL-terminated for strtod */
                if (!parse_score(arena + off, &it->score)) conv_err = 1;
                arena_len = off;
            } else if (!parse_score(arena + it->off, &it->score)) {
                conv_err = 1;
            }
        }
        sort_ctx k = { arena, desc, alpha, sortby != NULL, storekey != NULL };
        if (n > 1) qsort_r(vec, n, sizeof(*vec), sort_cmp, &k);
    }

    long long outputlen = (ngets ? ngets : 1) * (end - start + 1);
    if (conv_err) {
        kv_reply_error_cstr(&c->out, "One or more scores can't be converted into double");
    } else if (!storekey) {
        kv_reply_array(&c->out, outputlen);
        for (long long j = start; j <= end; j++) {
            const sort_item *it = &vec[j];
            if (!ngets) kv_reply_bulk(&c->out, arena + it->off, it->len);
            for (int g = 0; g < ngets; g++) {
                sort_val v;
                if (lookup_pattern(c, &c->argv[gets[g]], arena + it->off, it->len, &v))
                    kv_reply_bulk(&c->out, v.s, v.len);
                else kv_reply_null(&c->out);
            }
        }
    } else {
        kv_qlist *ql = kv_ql_new();
        for (long long j = start; j <= end; j++) {
            const sort_item *it = &vec[j];
            if (!ngets) kv_ql_push(ql, KV_QL_TAIL, arena + it->off, it->len);
            for (int g = 0; g < ngets; g++) {
                sort_val v;
                if (lookup_pattern(c, &c->argv[gets[g]], arena + it->off, it->len, &v))
                    kv_ql_push(ql, KV_QL_TAIL, v.s, v.len);
                else kv_ql_push(ql, KV_QL_TAIL, "", 0);
            }
        }
        if (outputlen > 0) {
            kv_db_add_ptr(c->db, storekey->ptr, storekey->len, KV_TYPE_LIST, KV_ENC_QUICKLIST, ql);
            kv_db_changed(c->db, storekey->ptr, storekey->len, (unsigned)outputlen);
            kv_notify(c->db, KV_NOTIFY_LIST, "sortstore", storekey->ptr, storekey->len);
        } else {
            kv_ql_free(ql);
            if (kv_db_delete(c->db, storekey->ptr, storekey->len)) {
                kv_db_changed(c->db, storekey->ptr, storekey->len, 1);
                kv_notify(c->db, KV_NOTIFY_GENERIC, "del", storekey->ptr, storekey->len);
            }
        }
        kv_reply_int(&c->out, outputlen);
    }
    trim_buffers();
    return;
shard_err:
    kv_reply_error_cstr(&c->out, KV_SORT_ERR_SHARD);
}

static void sort_cmd(kv_client_t *c) { sort_generic(c, 0); }
static void sort_ro_cmd(kv_client_t *c) { sort_generic(c, 1); }

/* SORT's STORE key is found by the router (gather.c, KV_CMD_MOVABLE);
 * SORT_RO is "movablekeys" in Redis's COMMAND INFO too, though its only
 * key is the first argument. */
const kv_cmd_t kv_sort_cmds[] = {
    { "sort", -2, KV_CMD_WRITE | KV_CMD_DENYOOM, 1, 1, 1, KV_ROUTE_KEYS, sort_cmd, "generic",
      "1.0.0", "Sort the elements in a list, set or sorted set", NULL },
    { "sort_ro", -2, KV_CMD_READONLY | KV_CMD_MOVABLE, 1, 1, 1, KV_ROUTE_KEY, sort_ro_cmd,
      "generic", "7.0.0", "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
      NULL },
    { NULL },
};
