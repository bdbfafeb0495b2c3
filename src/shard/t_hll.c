/* HyperLogLog commands, reply for reply as Redis 7.0's hyperloglog.c.
 *
 * A HLL is an ordinary string ("raw", as Redis's createHLLObject makes
 * it), so GET, DUMP/RESTORE, COPY and persistence see Redis's exact bytes
 * without any type of their own. The algorithms live in hll_core.c.
 *
 * Modifying a value: a dense HLL (12304 bytes) is changed in place in its
 * string; a sparse one (at most hll-sparse-max-bytes, 3000 by default) is
 * copied into a scratch buffer, changed there by as many elements as the
 * command has, and written back once, so a PFADD of many elements resizes
 * the stored string at most once. A sparse HLL that becomes dense is
 * stored with an exact-size allocation. */
#include <stdlib.h>
#include <string.h>

#include "shard/forward.h"
#include "shard/hll_core.h"
#include "shard/t_util.h"
#include "shard/notify.h"

#define ERR_NOT_HLL "-WRONGTYPE Key is not a valid HyperLogLog string value."
#define ERR_INVALID "-INVALIDOBJ Corrupted HLL object detected"

/* One scratch buffer for sparse work and PFDEBUG DECODE, kept between
 * commands (a worker runs one command at a time), and the 16384-register
 * array of PFCOUNT/PFMERGE of several keys. */
static uint8_t *scratch;
static size_t scratch_cap;
static uint8_t max_regs[KV_HLL_REGISTERS];

static uint8_t *scratch_get(size_t n)
{
    if (n > scratch_cap) {
        size_t cap = n < 4096 ? 4096 : n;
        uint8_t *p = realloc(scratch, cap);
        if (!p) abort();
        scratch = p;
        scratch_cap = cap;
    }
    return scratch;
}

/* The bytes of a string value that must be a HLL, or NULL after replying
 * WRONGTYPE (another type, an "int" string, a bad header). */
static const uint8_t *hll_bytes(kv_client_t *c, const kv_obj *o, size_t *len)
{
    if (o->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return NULL;
    }
    char buf[KV_DB_INTBUF];
    const uint8_t *p = (const uint8_t *)kv_db_str(o, buf, len);
    if (o->enc == KV_ENC_INT || !kv_hll_valid(p, *len)) {
        kv_reply_error_cstr(&c->out, ERR_NOT_HLL);
        return NULL;
    }
    return p;
}

/* Redis's dbUnshareStringValue: the value becomes "raw" (even when not
 * modified after all) and writable in place; returns its bytes. */
static uint8_t *hll_unshare(kv_client_t *c, kv_dict_entry **ep)
{
    return (uint8_t *)kv_db_str_resize(c->db, ep, kv_db_strlen(kv_db_obj(*ep)));
}

/* Open the HLL at *ep (NULL: a new empty one) for modification in b. */
static void hll_open(kv_client_t *c, kv_dict_entry **ep, kv_hll_buf *b)
{
    if (!*ep) {
        b->p = scratch_get(KV_HLL_EMPTY_SIZE + 4);
        b->cap = scratch_cap, b->owned = 1;
        kv_hll_init(b->p);
        b->len = KV_HLL_EMPTY_SIZE;
        return;
    }
    size_t len = kv_db_strlen(kv_db_obj(*ep));
    uint8_t *p = hll_unshare(c, ep);
    if (p[4] == KV_HLL_DENSE) {
        *b = (kv_hll_buf){ p, len, len, 0 };
        return;
    }
    b->p = scratch_get(len + 4);
    memcpy(b->p, p, len);
    b->len = len, b->cap = scratch_cap, b->owned = 1;
}

/* Store b back into key after hll_open (nothing to do for an in-place
 * dense one). Returns the key's entry. */
static kv_dict_entry *hll_close(kv_client_t *c, const kv_resp_arg *k, kv_dict_entry *e,
                                kv_hll_buf *b)
{
    if (b->owned) {
        scratch = b->p, scratch_cap = b->cap; /* it may have been realloc'd */
        if (!e || b->p[4] == KV_HLL_DENSE) {
            /* new key, or just converted: an exact-size string */
            e = kv_db_set_str(c->db, k->ptr, k->len, (const char *)b->p, b->len,
                              KV_SET_RAW | KV_SET_KEEPTTL);
        } else {
            memcpy(kv_db_str_resize(c->db, &e, b->len), b->p, b->len);
        }
    }
    return e;
}

static void pfadd_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    size_t len = 0;
    if (e && !hll_bytes(c, kv_db_obj(e), &len)) return;
    int updated = e ? 0 : 1, err = 0;
    kv_hll_buf b;
    hll_open(c, &e, &b);
    for (int j = 2; j < c->argc; j++) {
        int r = kv_hll_add(&b, c->argv[j].ptr, c->argv[j].len);
        if (r < 0) {
            err = 1;
            break;
        }
        updated += r;
    }
    /* An error keeps the registers set so far and leaves the cache as it
     * was, as Redis does. */
    if (updated && !err) kv_hll_invalidate(b.p);
    if (updated) hll_close(c, k, e, &b);
    else if (b.owned) scratch = b.p, scratch_cap = b.cap;
    if (err) {
        kv_reply_error_cstr(&c->out, ERR_INVALID);
        return;
    }
    if (updated) kv_db_changed(c->db, k->ptr, k->len, (unsigned)updated);
    if (updated) kv_notify(c->db, KV_NOTIFY_STRING, "pfadd", k->ptr, k->len);
    kv_reply_int(&c->out, updated ? 1 : 0);
}

static void pfcount_cmd(kv_client_t *c)
{
    if (c->argc > 2) {
        /* several keys: count the union, storing nothing */
        memset(max_regs, 0, sizeof max_regs);
        for (int j = 1; j < c->argc; j++) {
            kv_dict_entry *e = kv_db_find(c->db, c->argv[j].ptr, c->argv[j].len, 0);
            if (!e) continue;
            size_t len;
            const uint8_t *p = hll_bytes(c, kv_db_obj(e), &len);
            if (!p) return;
            if (kv_hll_merge(max_regs, p, len) < 0) {
                kv_reply_error_cstr(&c->out, ERR_INVALID);
                return;
            }
        }
        kv_reply_int(&c->out, (long long)kv_hll_count_raw(max_regs));
        return;
    }
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, 0);
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    size_t len;
    if (!hll_bytes(c, kv_db_obj(e), &len)) return;
    uint8_t *p = hll_unshare(c, &e);
    if (kv_hll_cache_valid(p)) {
        kv_reply_int(&c->out, (long long)kv_hll_cache_get(p));
        return;
    }
    int invalid = 0;
    uint64_t card = kv_hll_count(p, len, &invalid);
    if (invalid) {
        kv_reply_error_cstr(&c->out, ERR_INVALID);
        return;
    }
    /* the cache is part of the string: a read-only command that writes */
    kv_hll_cache_set(p, card);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_fwd_propagate_as(c, c->argc, c->argv); /* AOF: as Redis, PFCOUNT is logged when it wrote the cache */
    kv_reply_int(&c->out, (long long)card);
}

static void pfmerge_cmd(kv_client_t *c)
{
    int use_dense = 0;
    memset(max_regs, 0, sizeof max_regs);
    for (int j = 1; j < c->argc; j++) {
        kv_dict_entry *e = kv_db_find(c->db, c->argv[j].ptr, c->argv[j].len, 0);
        if (!e) continue;
        size_t len;
        const uint8_t *p = hll_bytes(c, kv_db_obj(e), &len);
        if (!p) return;
        if (p[4] == KV_HLL_DENSE) use_dense = 1;
        if (kv_hll_merge(max_regs, p, len) < 0) {
            kv_reply_error_cstr(&c->out, ERR_INVALID);
            return;
        }
    }
    const kv_resp_arg *k = &c->argv[1];
    /* the destination was checked above as the first source */
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    kv_hll_buf b;
    hll_open(c, &e, &b);
    if (use_dense && kv_hll_to_dense(&b) < 0) {
        if (b.owned) scratch = b.p, scratch_cap = b.cap;
        kv_reply_error_cstr(&c->out, ERR_INVALID);
        return;
    }
    /* register by register, as Redis: a sparse destination's bytes depend
     * on the order of the updates */
    for (long j = 0; j < KV_HLL_REGISTERS; j++)
        if (max_regs[j]) kv_hll_set(&b, j, max_regs[j]);
    kv_hll_invalidate(b.p);
    hll_close(c, k, e, &b);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "pfadd", k->ptr, k->len);
    kv_reply_ok(&c->out);
}

/* PFDEBUG GETREG|DECODE|ENCODING|TODENSE key */
static void pfdebug_cmd(kv_client_t *c)
{
    const kv_resp_arg *sub = &c->argv[1], *k = &c->argv[2];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    if (!e) {
        kv_reply_error_cstr(&c->out, "The specified key does not exist");
        return;
    }
    size_t len;
    if (!hll_bytes(c, kv_db_obj(e), &len)) return;
    int getreg = kv_arg_is(sub, "getreg");
    if (getreg || kv_arg_is(sub, "todense")) {
        kv_hll_buf b;
        int conv = 0;
        hll_open(c, &e, &b);
        if (b.owned) {
            if (kv_hll_to_dense(&b) < 0) {
                scratch = b.p, scratch_cap = b.cap;
                kv_reply_error_cstr(&c->out, ERR_INVALID);
                return;
            }
            e = hll_close(c, k, e, &b);
            c->db->dirty++; /* propagate the conversion, as Redis */
            conv = 1;
        }
        if (!getreg) {
            kv_reply_int(&c->out, conv);
            return;
        }
        size_t n;
        char buf[KV_DB_INTBUF];
        const uint8_t *regs = (const uint8_t *)kv_db_str(kv_db_obj(e), buf, &n) + KV_HLL_HDR_SIZE;
        kv_reply_array(&c->out, KV_HLL_REGISTERS);
        for (long j = 0; j < KV_HLL_REGISTERS; j++)
            kv_reply_int(&c->out, kv_hll_dense_get(regs, j));
        return;
    }
    const uint8_t *p = hll_unshare(c, &e);
    if (kv_arg_is(sub, "decode")) {
        if (p[4] != KV_HLL_SPARSE) {
            kv_reply_error_cstr(&c->out, "HLL encoding is not sparse");
            return;
        }
        char *out = (char *)scratch_get(kv_hll_decode_cap(len));
        kv_reply_bulk(&c->out, out, kv_hll_decode(p, len, out));
    } else if (kv_arg_is(sub, "encoding")) {
        kv_reply_status(&c->out, p[4] == KV_HLL_DENSE ? "dense" : "sparse");
    } else {
        kv_reply_errorf(&c->out, "Unknown PFDEBUG subcommand '%.*s'", kv_arg_cstrlen(sub), sub->ptr);
    }
}

static void pfselftest_cmd(kv_client_t *c)
{
    const char *why;
    if (kv_hll_selftest(&why) < 0) kv_reply_error_cstr(&c->out, why);
    else kv_reply_ok(&c->out);
}

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define A KV_CMD_ADMIN

const kv_cmd_t kv_hll_cmds[] = {
    { "pfadd", -2, W | D | F, 1, 1, 1, KV_ROUTE_KEY, pfadd_cmd, "hyperloglog", "2.8.9",
      "Adds the specified elements to the specified HyperLogLog." },
    { "pfcount", -2, R, 1, -1, 1, KV_ROUTE_KEYS, pfcount_cmd, "hyperloglog", "2.8.9",
      "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s)." },
    { "pfdebug", 3, W | D | A, 2, 2, 1, KV_ROUTE_KEY, pfdebug_cmd, "hyperloglog", "2.8.9",
      "Internal commands for debugging HyperLogLog values" },
    { "pfmerge", -2, W | D, 1, -1, 1, KV_ROUTE_KEYS, pfmerge_cmd, "hyperloglog", "2.8.9",
      "Merge N different HyperLogLogs into a single one." },
    { "pfselftest", 1, A, 0, 0, 0, KV_ROUTE_LOCAL, pfselftest_cmd, "hyperloglog", "2.8.9",
      "An internal command for testing HyperLogLog values" },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
