/* String commands, reply for reply as Redis 7.0's t_string.c. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "shard/t_util.h"
#include "shard/notify.h"

/* SET / GETEX option flags (Redis's OBJ_*) */
#define F_NX (1 << 0)
#define F_XX (1 << 1)
#define F_GET (1 << 2)
#define F_KEEPTTL (1 << 3)
#define F_PERSIST (1 << 4)
#define F_EX (1 << 5)
#define F_PX (1 << 6)
#define F_EXAT (1 << 7)
#define F_PXAT (1 << 8)
#define F_ANY_EXPIRE (F_EX | F_PX | F_EXAT | F_PXAT)

enum { FOR_SET, FOR_GET };

/* Redis's parseExtendedStringArgumentsOrReply, including its quirks: a
 * repeated option is accepted (the last value wins), NX/XX and the expiry
 * kinds exclude each other only across kinds. */
static int parse_ext(kv_client_t *c, int kind, int *flags, int *expire)
{
    int f = 0;
    for (int j = kind == FOR_GET ? 2 : 3; j < c->argc; j++) {
        const kv_resp_arg *a = &c->argv[j];
        int next = j < c->argc - 1;
        if (kind == FOR_SET && kv_arg_is(a, "nx") && !(f & F_XX)) {
            f |= F_NX;
        } else if (kind == FOR_SET && kv_arg_is(a, "xx") && !(f & F_NX)) {
            f |= F_XX;
        } else if (kind == FOR_SET && kv_arg_is(a, "get")) {
            f |= F_GET;
        } else if (kind == FOR_SET && kv_arg_is(a, "keepttl") && !(f & (F_PERSIST | F_ANY_EXPIRE))) {
            f |= F_KEEPTTL;
        } else if (kind == FOR_GET && kv_arg_is(a, "persist") && !(f & (F_ANY_EXPIRE | F_KEEPTTL))) {
            f |= F_PERSIST;
        } else if (kv_arg_is(a, "ex") && !(f & (F_KEEPTTL | F_PERSIST | F_EXAT | F_PX | F_PXAT)) &&
                   next) {
            f |= F_EX, *expire = ++j;
        } else if (kv_arg_is(a, "px") && !(f & (F_KEEPTTL | F_PERSIST | F_EX | F_EXAT | F_PXAT)) &&
                   next) {
            f |= F_PX, *expire = ++j;
        } else if (kv_arg_is(a, "exat") &&
                   !(f & (F_KEEPTTL | F_PERSIST | F_EX | F_PX | F_PXAT)) && next) {
            f |= F_EXAT, *expire = ++j;
        } else if (kv_arg_is(a, "pxat") &&
                   !(f & (F_KEEPTTL | F_PERSIST | F_EX | F_EXAT | F_PX)) && next) {
            f |= F_PXAT, *expire = ++j;
        } else {
            kv_reply_syntax(c);
            return 0;
        }
    }
    *flags = f;
    return 1;
}

static void reply_expire_error(kv_client_t *c, const char *cmd)
{
    kv_reply_errorf(&c->out, "invalid expire time in '%s' command", cmd);
}

/* Redis's getExpireMillisecondsOrReply: absolute unix ms in *ms. */
static int expire_ms(kv_client_t *c, int i, int flags, const char *cmd, long long *ms)
{
    long long v;
    if (!kv_arg_ll(c, i, &v)) return 0;
    int seconds = flags & (F_EX | F_EXAT);
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) {
        reply_expire_error(c, cmd);
        return 0;
    }
    if (seconds) v *= 1000;
    if (flags & (F_EX | F_PX)) {
        /* Redis adds without an overflow check and tests the sign */
        v = (long long)((unsigned long long)v + (unsigned long long)kv_db_now_ms());
    }
    if (v <= 0) {
        reply_expire_error(c, cmd);
        return 0;
    }
    *ms = v;
    return 1;
}

/* GET's part of SET ... GET, GETSET, GETDEL: reply the value or nil.
 * Returns -1 after a WRONGTYPE error, else whether the key exists. */
static int get_generic(kv_client_t *c)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    if (!e) {
        kv_reply_null(&c->out);
        return 0;
    }
    if (kv_db_obj(e)->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return -1;
    }
    kv_reply_strval(c, kv_db_obj(e));
    return 1;
}

enum { REPLY_OK_NULL, REPLY_ONE_ZERO };

static void set_generic(kv_client_t *c, int flags, int vi, int expire, const char *cmd, int style)
{
    long long when = 0;
    const kv_resp_arg *k = &c->argv[1], *v = &c->argv[vi];
    if (expire && !expire_ms(c, expire, flags, cmd, &when)) return;
    int found = -1;
    if (flags & F_GET) {
        if ((found = get_generic(c)) < 0) return;
    }
    if (flags & (F_NX | F_XX)) {
        if (found < 0) found = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE) != NULL;
        if (((flags & F_NX) && found) || ((flags & F_XX) && !found)) {
            if (!(flags & F_GET)) {
                if (style == REPLY_ONE_ZERO) kv_reply_int(&c->out, 0);
                else kv_reply_null(&c->out);
            }
            return;
        }
    }
    kv_db_set_str_ttl(c->db, k->ptr, k->len, v->ptr, v->len, (flags & F_KEEPTTL) ? KV_SET_KEEPTTL : 0,
                      expire ? when : -1);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "set", k->ptr, k->len);
    if (expire) kv_notify(c->db, KV_NOTIFY_GENERIC, "expire", k->ptr, k->len);
    if (!(flags & F_GET)) {
        if (style == REPLY_ONE_ZERO) kv_reply_int(&c->out, 1);
        else kv_reply_ok(&c->out);
    }
}

static void set_cmd(kv_client_t *c)
{
    int flags, expire = 0;
    if (!parse_ext(c, FOR_SET, &flags, &expire)) return;
    set_generic(c, flags, 2, expire, "set", REPLY_OK_NULL);
}

static void setnx_cmd(kv_client_t *c) { set_generic(c, F_NX, 2, 0, "setnx", REPLY_ONE_ZERO); }
static void setex_cmd(kv_client_t *c) { set_generic(c, F_EX, 3, 2, "setex", REPLY_OK_NULL); }
static void psetex_cmd(kv_client_t *c) { set_generic(c, F_PX, 3, 2, "psetex", REPLY_OK_NULL); }

static void get_cmd(kv_client_t *c) { get_generic(c); }

static void getset_cmd(kv_client_t *c)
{
    if (get_generic(c) < 0) return;
    kv_db_set_str(c->db, c->argv[1].ptr, c->argv[1].len, c->argv[2].ptr, c->argv[2].len, 0);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "set", c->argv[1].ptr, c->argv[1].len);
}

static void getdel_cmd(kv_client_t *c)
{
    if (get_generic(c) <= 0) return;
    kv_db_delete(c->db, c->argv[1].ptr, c->argv[1].len);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_GENERIC, "del", c->argv[1].ptr, c->argv[1].len);
}

static void getex_cmd(kv_client_t *c)
{
    int flags, expire = 0;
    long long when = 0;
    const kv_resp_arg *k = &c->argv[1];
    if (!parse_ext(c, FOR_GET, &flags, &expire)) return;
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, 0);
    if (!e) {
        kv_reply_null(&c->out);
        return;
    }
    if (kv_db_obj(e)->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return;
    }
    if (expire && !expire_ms(c, expire, flags, "getex", &when)) return;
    kv_reply_strval(c, kv_db_obj(e));
    if ((flags & (F_EXAT | F_PXAT)) && when <= kv_db_now_ms()) {
        kv_db_delete_entry(c->db, e);
        kv_db_changed(c->db, k->ptr, k->len, 1);
        kv_notify(c->db, KV_NOTIFY_GENERIC, "del", k->ptr, k->len);
    } else if (expire) {
        kv_db_expire_set(c->db, e, when);
        kv_db_changed(c->db, k->ptr, k->len, 1);
        kv_notify(c->db, KV_NOTIFY_GENERIC, "expire", k->ptr, k->len);
    } else if ((flags & F_PERSIST) && (kv_db_obj(e)->flags & KV_OBJ_TTL)) {
        kv_db_expire_clear(c->db, e);
        kv_db_changed(c->db, k->ptr, k->len, 1);
        kv_notify(c->db, KV_NOTIFY_GENERIC, "persist", k->ptr, k->len);
    }
}

static void mget_cmd(kv_client_t *c)
{
    kv_reply_array(&c->out, c->argc - 1);
    for (int i = 1; i < c->argc; i++) {
        kv_dict_entry *e = kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, 0);
        if (!e || kv_db_obj(e)->type != KV_TYPE_STRING) kv_reply_null(&c->out);
        else kv_reply_strval(c, kv_db_obj(e));
    }
}

static void mset_generic(kv_client_t *c, int nx)
{
    if (c->argc % 2 == 0) {
        kv_reply_errorf(&c->out, "wrong number of arguments for '%s' command", nx ? "msetnx" : "mset");
        return;
    }
    if (nx) {
        for (int i = 1; i < c->argc; i += 2)
            if (kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, KV_LOOKUP_WRITE)) {
                kv_reply_int(&c->out, 0);
                return;
            }
    }
    for (int i = 1; i < c->argc; i += 2) {
        kv_db_set_str(c->db, c->argv[i].ptr, c->argv[i].len, c->argv[i + 1].ptr,
                      c->argv[i + 1].len, 0);
        kv_db_changed(c->db, c->argv[i].ptr, c->argv[i].len, 1);
        kv_notify(c->db, KV_NOTIFY_STRING, "set", c->argv[i].ptr, c->argv[i].len);
    }
    if (nx) kv_reply_int(&c->out, 1);
    else kv_reply_ok(&c->out);
}

static void mset_cmd(kv_client_t *c) { mset_generic(c, 0); }
static void msetnx_cmd(kv_client_t *c) { mset_generic(c, 1); }

/* The string at e as a 64-bit integer, or reply the error. */
static int value_ll(kv_client_t *c, const kv_obj *o, long long *v)
{
    if (o->enc == KV_ENC_INT) {
        *v = *(const int64_t *)kv_db_payload(o);
        return 1;
    }
    char buf[KV_DB_INTBUF];
    size_t n;
    const char *p = kv_db_str(o, buf, &n);
    if (kv_str2ll(p, n, v)) return 1;
    kv_reply_error_cstr(&c->out, KV_ERR_NOT_INT);
    return 0;
}

static void incr_generic(kv_client_t *c, long long incr)
{
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    long long v = 0;
    if (e) {
        kv_obj *o = kv_db_obj(e);
        if (o->type != KV_TYPE_STRING) {
            kv_reply_wrongtype(c);
            return;
        }
        if (!value_ll(c, o, &v)) return;
    }
    if ((incr < 0 && v < 0 && incr < LLONG_MIN - v) || (incr > 0 && v > 0 && incr > LLONG_MAX - v)) {
        kv_reply_error_cstr(&c->out, "increment or decrement would overflow");
        return;
    }
    v += incr;
    if (e && kv_db_obj(e)->enc == KV_ENC_INT) /* in place, TTL and clock kept */
        *(int64_t *)kv_db_payload(kv_db_obj(e)) = v;
    else
        kv_db_set_ll(c->db, k->ptr, k->len, v, KV_SET_KEEPTTL);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "incrby", k->ptr, k->len);
    kv_reply_int(&c->out, v);
}

static void incr_cmd(kv_client_t *c) { incr_generic(c, 1); }
static void decr_cmd(kv_client_t *c) { incr_generic(c, -1); }

static void incrby_cmd(kv_client_t *c)
{
    long long incr;
    if (kv_arg_ll(c, 2, &incr)) incr_generic(c, incr);
}

static void decrby_cmd(kv_client_t *c)
{
    long long incr;
    if (!kv_arg_ll(c, 2, &incr)) return;
    if (incr == LLONG_MIN) {
        kv_reply_error_cstr(&c->out, "decrement would overflow");
        return;
    }
    incr_generic(c, -incr);
}

static void incrbyfloat_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    long double v = 0, incr;
    if (e) {
        kv_obj *o = kv_db_obj(e);
        if (o->type != KV_TYPE_STRING) {
            kv_reply_wrongtype(c);
            return;
        }
        if (o->enc == KV_ENC_INT) {
            v = (long double)*(int64_t *)kv_db_payload(o);
        } else {
            char buf[KV_DB_INTBUF];
            size_t n;
            const char *p = kv_db_str(o, buf, &n);
            if (!kv_str2ld(p, n, &v)) {
                kv_reply_error_cstr(&c->out, KV_ERR_NOT_FLOAT);
                return;
            }
        }
    }
    if (!kv_str2ld(c->argv[2].ptr, c->argv[2].len, &incr)) {
        kv_reply_error_cstr(&c->out, KV_ERR_NOT_FLOAT);
        return;
    }
    v += incr;
    if (isnan(v) || isinf(v)) {
        kv_reply_error_cstr(&c->out, "increment would produce NaN or Infinity");
        return;
    }
    char buf[KV_REPLY_LD_MAX];
    int n = kv_reply_fmt_ld_human(buf, sizeof buf, v);
    kv_db_set_str(c->db, k->ptr, k->len, buf, (size_t)n, KV_SET_EMBSTR | KV_SET_KEEPTTL);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "incrbyfloat", k->ptr, k->len);
    kv_reply_bulk(&c->out, buf, (size_t)n);
}

/* Redis's checkStringLength */
static int check_len(kv_client_t *c, long long size, long long append)
{
    long long total = (long long)((unsigned long long)size + (unsigned long long)append);
    if (total > KV_STRING_MAX || total < size || total < append) {
        kv_reply_error_cstr(&c->out, "string exceeds maximum allowed size (proto-max-bulk-len)");
        return 0;
    }
    return 1;
}

static void append_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1], *v = &c->argv[2];
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    size_t total;
    if (!e) {
        kv_db_set_str(c->db, k->ptr, k->len, v->ptr, v->len, 0);
        total = v->len;
    } else {
        if (kv_db_obj(e)->type != KV_TYPE_STRING) {
            kv_reply_wrongtype(c);
            return;
        }
        size_t olen = kv_db_strlen(kv_db_obj(e));
        if (!check_len(c, (long long)olen, (long long)v->len)) return;
        total = olen + v->len;
        char *p = kv_db_str_resize(c->db, &e, total);
        if (v->len) memcpy(p + olen, v->ptr, v->len);
    }
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "append", k->ptr, k->len);
    kv_reply_int(&c->out, (long long)total);
}

static void strlen_cmd(kv_client_t *c)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (kv_db_obj(e)->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return;
    }
    kv_reply_int(&c->out, (long long)kv_db_strlen(kv_db_obj(e)));
}

static void getrange_cmd(kv_client_t *c)
{
    long long start, end;
    if (!kv_arg_ll(c, 2, &start) || !kv_arg_ll(c, 3, &end)) return;
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    if (!e) {
        kv_reply_bulk(&c->out, "", 0);
        return;
    }
    kv_obj *o = kv_db_obj(e);
    if (o->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return;
    }
    char buf[KV_DB_INTBUF];
    size_t len;
    const char *p = kv_db_str(o, buf, &len);
    long long n = (long long)len;
    if (start < 0 && end < 0 && start > end) {
        kv_reply_bulk(&c->out, "", 0);
        return;
    }
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= n) end = n - 1;
    if (start > end || n == 0) kv_reply_bulk(&c->out, "", 0);
    else kv_reply_bulk(&c->out, p + start, (size_t)(end - start + 1));
}

static void setrange_cmd(kv_client_t *c)
{
    const kv_resp_arg *k = &c->argv[1], *v = &c->argv[3];
    long long off;
    if (!kv_arg_ll(c, 2, &off)) return;
    if (off < 0) {
        kv_reply_error_cstr(&c->out, "offset is out of range");
        return;
    }
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    size_t olen = 0;
    if (e) {
        if (kv_db_obj(e)->type != KV_TYPE_STRING) {
            kv_reply_wrongtype(c);
            return;
        }
        olen = kv_db_strlen(kv_db_obj(e));
    }
    if (v->len == 0) {
        kv_reply_int(&c->out, (long long)olen);
        return;
    }
    if (!check_len(c, off, (long long)v->len)) return;
    size_t need = (size_t)off + v->len, len = need > olen ? need : olen;
    if (!e) e = kv_db_set_str(c->db, k->ptr, k->len, "", 0, KV_SET_RAW);
    char *p = kv_db_str_resize(c->db, &e, len);
    memcpy(p + off, v->ptr, v->len);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "setrange", k->ptr, k->len);
    kv_reply_int(&c->out, (long long)len);
}

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define K KV_ROUTE_KEY
#define STR(name, arity, flags, proc, since, summary)                                          \
    { name, arity, flags, 1, 1, 1, K, proc, "string", since, summary }

const kv_cmd_t kv_string_cmds[] = {
    STR("append", 3, W | D | F, append_cmd, "2.0.0", "Append a value to a key"),
    STR("decr", 2, W | D | F, decr_cmd, "1.0.0", "Decrement the integer value of a key by one"),
    STR("decrby", 3, W | D | F, decrby_cmd, "1.0.0",
        "Decrement the integer value of a key by the given number"),
    STR("get", 2, R | F, get_cmd, "1.0.0", "Get the value of a key"),
    STR("getdel", 2, W | F, getdel_cmd, "6.2.0", "Get the value of a key and delete the key"),
    STR("getex", -2, W | F, getex_cmd, "6.2.0",
        "Get the value of a key and optionally set its expiration"),
    STR("getrange", 4, R, getrange_cmd, "2.4.0", "Get a substring of the string stored at a key"),
    STR("getset", 3, W | D | F, getset_cmd, "1.0.0",
        "Set the string value of a key and return its old value"),
    STR("incr", 2, W | D | F, incr_cmd, "1.0.0", "Increment the integer value of a key by one"),
    STR("incrby", 3, W | D | F, incrby_cmd, "1.0.0",
        "Increment the integer value of a key by the given amount"),
    STR("incrbyfloat", 3, W | D | F, incrbyfloat_cmd, "2.6.0",
        "Increment the float value of a key by the given amount"),
    { "mget", -2, R | F, 1, -1, 1, KV_ROUTE_KEYS, mget_cmd, "string", "1.0.0",
      "Get the values of all the given keys" },
    { "mset", -3, W | D, 1, -1, 2, KV_ROUTE_KEYS, mset_cmd, "string", "1.0.1",
      "Set multiple keys to multiple values" },
    { "msetnx", -3, W | D, 1, -1, 2, KV_ROUTE_KEYS, msetnx_cmd, "string", "1.0.1",
      "Set multiple keys to multiple values, only if none of the keys exist" },
    STR("psetex", 4, W | D, psetex_cmd, "2.6.0",
        "Set the value and expiration in milliseconds of a key"),
    STR("set", -3, W | D, set_cmd, "1.0.0", "Set the string value of a key"),
    STR("setex", 4, W | D, setex_cmd, "2.0.0", "Set the value and expiration of a key"),
    STR("setnx", 3, W | D | F, setnx_cmd, "1.0.0",
        "Set the value of a key, only if the key does not exist"),
    STR("setrange", 4, W | D, setrange_cmd, "2.2.0",
        "Overwrite part of a string at key starting at the specified offset"),
    STR("strlen", 2, R | F, strlen_cmd, "2.2.0", "Get the length of the value stored in a key"),
    STR("substr", 4, R, getrange_cmd, "1.0.0", "Get a substring of the string stored at a key"),
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
