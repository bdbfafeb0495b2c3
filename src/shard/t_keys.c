/* Generic keyspace commands (Redis's db.c / object.c side): DEL, EXISTS,
 * TYPE, RENAME, COPY, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSH*, OBJECT.
 * Everything is local: the router splits multi-key commands per shard and
 * fans KEYS/SCAN/DBSIZE/RANDOMKEY/FLUSH* out to every shard.
 *
 * SCAN cursor: the local cursor is kv_dict_scan's reverse-binary bucket
 * cursor, always below the largest bucket array size, so it fits in 48
 * bits; the router keeps the shard number in the bits above. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/glob.h"
#include "shard/block.h"
#include "shard/block_multi.h"
#include "shard/t_util.h"
#include "shard/notify.h"

static void del_cmd(kv_client_t *c)
{
    long long n = 0;
    for (int i = 1; i < c->argc; i++)
        if (kv_db_delete(c->db, c->argv[i].ptr, c->argv[i].len)) {
            kv_db_changed(c->db, c->argv[i].ptr, c->argv[i].len, 1);
            kv_notify(c->db, KV_NOTIFY_GENERIC, "del", c->argv[i].ptr, c->argv[i].len);
            n++;
        }
    kv_reply_int(&c->out, n);
}

/* EXISTS counts a key repeated in the arguments once per mention. */
static void exists_cmd(kv_client_t *c)
{
    long long n = 0;
    for (int i = 1; i < c->argc; i++)
        n += kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, KV_LOOKUP_NOTOUCH) != NULL;
    kv_reply_int(&c->out, n);
}

static void touch_cmd(kv_client_t *c)
{
    long long n = 0;
    for (int i = 1; i < c->argc; i++) n += kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, 0) != NULL;
    kv_reply_int(&c->out, n);
}

static void type_cmd(kv_client_t *c)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, KV_LOOKUP_NOTOUCH);
    kv_reply_status(&c->out, e ? kv_db_type_name(kv_db_obj(e)->type) : "none");
}

static int same_arg(const kv_resp_arg *a, const kv_resp_arg *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

static void rename_generic(kv_client_t *c, int nx)
{
    const kv_resp_arg *src = &c->argv[1], *dst = &c->argv[2];
    kv_dict_entry *e = kv_db_find(c->db, src->ptr, src->len, KV_LOOKUP_WRITE);
    if (!e) {
        kv_reply_error_cstr(&c->out, "no such key");
        return;
    }
    if (same_arg(src, dst)) {
        if (nx) kv_reply_int(&c->out, 0);
        else kv_reply_ok(&c->out);
        return;
    }
    if (nx && kv_db_find(c->db, dst->ptr, dst->len, KV_LOOKUP_WRITE)) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_db_rename(c->db, e, dst->ptr, dst->len);
    kv_db_changed(c->db, src->ptr, src->len, 1);
    kv_db_changed(c->db, dst->ptr, dst->len, 1);
    kv_notify(c->db, KV_NOTIFY_GENERIC, "rename_from", src->ptr, src->len);
    kv_notify(c->db, KV_NOTIFY_GENERIC, "rename_to", dst->ptr, dst->len);
    if (nx) kv_reply_int(&c->out, 1);
    else kv_reply_ok(&c->out);
}

static void rename_cmd(kv_client_t *c) { rename_generic(c, 0); }
static void renamenx_cmd(kv_client_t *c) { rename_generic(c, 1); }

/* kevy has one database: DB 0 is the only valid index (Redis's answer
 * for any other is what it says with `databases 1`). */
static void copy_cmd(kv_client_t *c)
{
    int replace = 0;
    for (int j = 3; j < c->argc; j++) {
        if (kv_arg_is(&c->argv[j], "replace")) {
            replace = 1;
        } else if (kv_arg_is(&c->argv[j], "db") && c->argc - j - 1 >= 1) {
            long long id;
            if (!kv_arg_ll(c, j + 1, &id)) return;
            if (id < INT32_MIN || id > INT32_MAX) { /* Redis's getIntFromObjectOrReply */
                kv_reply_error_cstr(&c->out, "value is out of range, value must between "
                                             "-2147483648 and 2147483647");
                return;
            }
            if (id != 0) {
                kv_reply_error_cstr(&c->out, "DB index is out of range");
                return;
            }
            j++;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    const kv_resp_arg *src = &c->argv[1], *dst = &c->argv[2];
    if (same_arg(src, dst)) {
        kv_reply_error_cstr(&c->out, "source and destination objects are the same");
        return;
    }
    kv_dict_entry *e = kv_db_find(c->db, src->ptr, src->len, 0);
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (kv_db_find(c->db, dst->ptr, dst->len, KV_LOOKUP_WRITE) && !replace) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (!kv_db_copy(c->db, e, dst->ptr, dst->len)) {
        kv_reply_error_cstr(&c->out, "COPY is not supported for this type yet");
        return;
    }
    kv_db_changed(c->db, dst->ptr, dst->len, 1);
    kv_notify(c->db, KV_NOTIFY_GENERIC, "copy_to", dst->ptr, dst->len);
    kv_reply_int(&c->out, 1);
}

/* ---- KEYS, SCAN ----------------------------------------------------------- */

typedef struct {
    kv_dict_entry **v;
    size_t n, cap;
    kv_dict_entry *stack[64]; /* most replies fit: no allocation */
} entry_vec;

static void vec_init(entry_vec *v) { v->v = v->stack, v->n = 0, v->cap = 64; }
static void vec_free(entry_vec *v)
{
    if (v->v != v->stack) free(v->v);
}
static void vec_push(entry_vec *v, kv_dict_entry *e)
{
    if (v->n == v->cap) {
        size_t cap = v->cap * 2;
        kv_dict_entry **n = malloc(cap * sizeof *n);
        if (!n) abort();
        memcpy(n, v->v, v->n * sizeof *n);
        vec_free(v);
        v->v = n, v->cap = cap;
    }
    v->v[v->n++] = e;
}

static void reply_keys(kv_client_t *c, const entry_vec *v)
{
    kv_reply_array(&c->out, (long long)v->n);
    for (size_t i = 0; i < v->n; i++)
        kv_reply_bulk(&c->out, kv_dict_entry_key(v->v[i]), kv_dict_entry_klen(v->v[i]));
}

static int expired(const kv_dict_entry *e, int64_t now)
{
    const kv_obj *o = kv_db_obj(e);
    return (o->flags & KV_OBJ_TTL) && kv_db_ttl(o)->when <= now;
}

/* As Redis, KEYS skips expired keys without deleting them. */
static void keys_cmd(kv_client_t *c)
{
    const kv_resp_arg *pat = &c->argv[1];
    int all = pat->len == 1 && pat->ptr[0] == '*';
    int64_t now = kv_db_now_ms();
    entry_vec v;
    vec_init(&v);
    kv_dict_iter it;
    kv_dict_iter_init(&it, c->db->dict);
    for (kv_dict_entry *e; (e = kv_dict_iter_next(&it));) {
        if (!all && !kv_glob_match(pat->ptr, pat->len, kv_dict_entry_key(e), kv_dict_entry_klen(e), 0))
            continue;
        if (!expired(e, now)) vec_push(&v, e);
    }
    kv_dict_iter_done(&it);
    reply_keys(c, &v);
    vec_free(&v);
}

typedef struct {
    entry_vec v;
    size_t visited;
    const kv_resp_arg *pat; /* NULL: no MATCH (or "*") */
    const char *type;       /* NULL: no TYPE */
    size_t tlen;
} scan_ctx;

static void scan_cb(void *ud, kv_dict_entry *e)
{
    scan_ctx *s = ud;
    s->visited++;
    if (s->pat &&
        !kv_glob_match(s->pat->ptr, s->pat->len, kv_dict_entry_key(e), kv_dict_entry_klen(e), 0))
        return;
    if (s->type) {
        const char *t = kv_db_type_name(kv_db_obj(e)->type);
        if (strlen(t) != s->tlen || strncasecmp(t, s->type, s->tlen) != 0) return;
    }
    vec_push(&s->v, e);
}

/* Redis's parseScanCursorOrReply: strtoul, so "", "-1" and "+5" pass. */
static int parse_cursor(kv_client_t *c, const kv_resp_arg *a, unsigned long *cur)
{
    char buf[64], *end;
    size_t n = (size_t)kv_arg_cstrlen(a);
    if (n >= sizeof buf) n = sizeof buf - 1; /* too long to be valid anyway */
    memcpy(buf, a->ptr, n);
    buf[n] = '\0';
    errno = 0;
    *cur = strtoul(buf, &end, 10);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || errno == ERANGE ||
        (size_t)kv_arg_cstrlen(a) >= sizeof buf) {
        kv_reply_error_cstr(&c->out, "invalid cursor");
        return 0;
    }
    return 1;
}

static void scan_cmd(kv_client_t *c)
{
    unsigned long cursor;
    long long count = 10;
    scan_ctx s;
    memset(&s, 0, sizeof s);
    if (!parse_cursor(c, &c->argv[1], &cursor)) return;
    for (int i = 2; i < c->argc;) {
        int left = c->argc - i;
        if (kv_arg_is(&c->argv[i], "count") && left >= 2) {
            if (!kv_arg_ll(c, i + 1, &count)) return;
            if (count < 1) {
                kv_reply_syntax(c);
                return;
            }
        } else if (kv_arg_is(&c->argv[i], "match") && left >= 2) {
            const kv_resp_arg *p = &c->argv[i + 1];
            s.pat = (p->len == 1 && p->ptr[0] == '*') ? NULL : p;
        } else if (kv_arg_is(&c->argv[i], "type") && left >= 2) {
            /* Redis compares with strcasecmp: the C string part only */
            s.type = c->argv[i + 1].ptr;
            s.tlen = (size_t)kv_arg_cstrlen(&c->argv[i + 1]);
        } else {
            kv_reply_syntax(c);
            return;
        }
        i += 2;
    }
    vec_init(&s.v);
    long long maxiter = count * 10;
    do {
        cursor = kv_dict_scan(c->db->dict, cursor, scan_cb, &s);
    } while (cursor && maxiter-- && s.visited < (unsigned long long)count);
    /* drop expired keys (deleting them, as Redis's expireIfNeeded) */
    int64_t now = kv_db_now_ms();
    size_t keep = 0;
    for (size_t i = 0; i < s.v.n; i++) {
        kv_dict_entry *e = s.v.v[i];
        if (expired(e, now)) kv_db_find(c->db, kv_dict_entry_key(e), kv_dict_entry_klen(e),
                                        KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH);
        else s.v.v[keep++] = e;
    }
    s.v.n = keep;
    kv_reply_array(&c->out, 2);
    kv_reply_bulk_ll(&c->out, (long long)cursor);
    reply_keys(c, &s.v);
    vec_free(&s.v);
}

static void randomkey_cmd(kv_client_t *c)
{
    kv_dict_entry *e;
    int64_t now = kv_db_now_ms();
    /* delete expired picks and retry, as Redis's dbRandomKey */
    while ((e = kv_dict_random(c->db->dict)) && expired(e, now))
        kv_db_find(c->db, kv_dict_entry_key(e), kv_dict_entry_klen(e),
                   KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH);
    if (!e) kv_reply_null(&c->out);
    else kv_reply_bulk(&c->out, kv_dict_entry_key(e), kv_dict_entry_klen(e));
}

static void dbsize_cmd(kv_client_t *c) { kv_reply_int(&c->out, (long long)kv_db_size(c->db)); }

/* ASYNC frees synchronously: the reply is the same, and a shard's
 * keyspace is a fraction of the whole. */
static void flush_cmd(kv_client_t *c)
{
    if (c->argc > 2 ||
        (c->argc == 2 && !kv_arg_is(&c->argv[1], "sync") && !kv_arg_is(&c->argv[1], "async"))) {
        kv_reply_syntax(c);
        return;
    }
    size_t n = kv_db_size(c->db);
    kv_db_flush(c->db);
    c->db->dirty += n;
    /* Every key went: waiters on them are told (XREADGROUP's answer). */
    kv_block_signal_flush();
    kv_bmulti_signal_flush();
    kv_reply_ok(&c->out);
}

/* ---- OBJECT ------------------------------------------------------------- */

static const char *const object_help[] = {
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
};

static void object_cmd(kv_client_t *c)
{
    static const char *const subs[] = { "encoding", "freq", "idletime", "refcount", "help" };
    int sub = -1;
    for (int i = 0; i < 5; i++)
        if (c->argv[1].len == strlen(subs[i]) && !strncasecmp(c->argv[1].ptr, subs[i], c->argv[1].len))
            sub = i;
    if (sub < 0) {
        char up[16];
        int n = c->argv[0].len < sizeof up ? (int)c->argv[0].len : (int)sizeof up - 1;
        for (int i = 0; i < n; i++) up[i] = (char)toupper((unsigned char)c->argv[0].ptr[i]);
        int sl = kv_arg_cstrlen(&c->argv[1]);
        kv_reply_errorf(&c->out, "unknown subcommand '%.*s'. Try %.*s HELP.", sl > 128 ? 128 : sl,
                        c->argv[1].ptr, n, up);
        return;
    }
    if (c->argc != (sub == 4 ? 2 : 3)) {
        kv_reply_errorf(&c->out, "wrong number of arguments for 'object|%s' command", subs[sub]);
        return;
    }
    if (sub == 4) {
        size_t nh = sizeof object_help / sizeof *object_help;
        kv_reply_array(&c->out, (long long)nh + 1);
        kv_reply_status(&c->out, "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        for (size_t i = 0; i < nh; i++) kv_reply_status(&c->out, object_help[i]);
        return;
    }
    kv_dict_entry *e = kv_db_find(c->db, c->argv[2].ptr, c->argv[2].len, KV_LOOKUP_NOTOUCH);
    if (!e) {
        kv_reply_null(&c->out);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    switch (sub) {
    case 0: kv_reply_bulk_cstr(&c->out, kv_db_enc_name(o->enc)); break;
    case 1:
        if (!c->db->lfu) {
            kv_reply_error_cstr(&c->out,
                                "An LFU maxmemory policy is not selected, access frequency not "
                                "tracked. Please note that when switching between policies at "
                                "runtime LRU and LFU data will take some time to adjust.");
            return;
        }
        kv_reply_int(&c->out, kv_db_lfu_freq(c->db, o));
        break;
    case 2:
        if (c->db->lfu) {
            kv_reply_error_cstr(&c->out,
                                "An LFU maxmemory policy is selected, idle time not tracked. "
                                "Please note that when switching between policies at runtime "
                                "LRU and LFU data will take some time to adjust.");
            return;
        }
        kv_reply_int(&c->out, kv_db_idle_seconds(c->db, o));
        break;
    default: kv_reply_int(&c->out, kv_db_refcount(c->db, o)); break;
    }
}

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM

const kv_cmd_t kv_keys_cmds[] = {
    { "copy", -3, W | D, 1, 2, 1, KV_ROUTE_CUSTOM, copy_cmd, "generic", "6.2.0", "Copy a key" },
    { "dbsize", 1, R | F, 0, 0, 0, KV_ROUTE_ALL, dbsize_cmd, "server", "1.0.0",
      "Return the number of keys in the selected database" },
    { "del", -2, W, 1, -1, 1, KV_ROUTE_KEYS, del_cmd, "generic", "1.0.0", "Delete a key" },
    { "exists", -2, R | F, 1, -1, 1, KV_ROUTE_KEYS, exists_cmd, "generic", "1.0.0",
      "Determine if a key exists" },
    { "flushall", -1, W, 0, 0, 0, KV_ROUTE_ALL, flush_cmd, "server", "1.0.0",
      "Remove all keys from all databases" },
    { "flushdb", -1, W, 0, 0, 0, KV_ROUTE_ALL, flush_cmd, "server", "1.0.0",
      "Remove all keys from the current database" },
    { "keys", 2, R, 0, 0, 0, KV_ROUTE_ALL, keys_cmd, "generic", "1.0.0",
      "Find all keys matching the given pattern" },
    /* key at 2 except OBJECT HELP: MOVABLE makes the router check argc */
    { "object", -2, KV_CMD_MOVABLE, 2, 2, 1, KV_ROUTE_KEY, object_cmd, "generic", "2.2.3",
      "A container for object introspection commands" },
    { "randomkey", 1, R, 0, 0, 0, KV_ROUTE_ALL, randomkey_cmd, "generic", "1.0.0",
      "Return a random key from the keyspace" },
    { "rename", 3, W, 1, 2, 1, KV_ROUTE_CUSTOM, rename_cmd, "generic", "1.0.0", "Rename a key" },
    { "renamenx", 3, W | F, 1, 2, 1, KV_ROUTE_CUSTOM, renamenx_cmd, "generic", "1.0.0",
      "Rename a key, only if the new key does not exist" },
    { "scan", -2, R, 0, 0, 0, KV_ROUTE_CUSTOM, scan_cmd, "generic", "2.8.0",
      "Incrementally iterate the keys space" },
    { "touch", -2, R | F, 1, -1, 1, KV_ROUTE_KEYS, touch_cmd, "generic", "3.2.1",
      "Alters the last access time of a key(s). Returns the number of existing keys specified." },
    { "type", 2, R | F, 1, 1, 1, KV_ROUTE_KEY, type_cmd, "generic", "1.0.0",
      "Determine the type stored at key" },
    { "unlink", -2, W | F, 1, -1, 1, KV_ROUTE_KEYS, del_cmd, "generic", "4.0.0",
      "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non "
      "blocking." },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
