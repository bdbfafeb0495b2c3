/* Expiry commands, as Redis 7.0's expire.c: EXPIRE/PEXPIRE/EXPIREAT/
 * PEXPIREAT with NX XX GT LT, TTL/PTTL/EXPIRETIME/PEXPIRETIME, PERSIST.
 * The expiry index itself lives in db.c. */
#include <limits.h>

#include "shard/t_util.h"
#include "shard/notify.h"

#define X_NX 1
#define X_XX 2
#define X_GT 4
#define X_LT 8

static int parse_flags(kv_client_t *c, int *flags)
{
    int f = 0;
    for (int j = 3; j < c->argc; j++) {
        const kv_resp_arg *a = &c->argv[j];
        if (kv_arg_is(a, "nx")) f |= X_NX;
        else if (kv_arg_is(a, "xx")) f |= X_XX;
        else if (kv_arg_is(a, "gt")) f |= X_GT;
        else if (kv_arg_is(a, "lt")) f |= X_LT;
        else {
            kv_reply_errorf(&c->out, "Unsupported option %.*s", kv_arg_cstrlen(a), a->ptr);
            return 0;
        }
    }
    if ((f & X_NX) && (f & (X_XX | X_GT | X_LT))) {
        kv_reply_error_cstr(&c->out, "NX and XX, GT or LT options at the same time are not compatible");
        return 0;
    }
    if ((f & X_GT) && (f & X_LT)) {
        kv_reply_error_cstr(&c->out, "GT and LT options at the same time are not compatible");
        return 0;
    }
    *flags = f;
    return 1;
}

/* basetime: now for relative forms, 0 for *AT; seconds: unit of argv[2]. */
static void expire_generic(kv_client_t *c, long long basetime, int seconds, const char *name)
{
    const kv_resp_arg *k = &c->argv[1];
    int flags;
    long long when;
    if (!parse_flags(c, &flags) || !kv_arg_ll(c, 2, &when)) return;
    if (seconds) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            kv_reply_errorf(&c->out, "invalid expire time in '%s' command", name);
            return;
        }
        when *= 1000;
    }
    if (when > LLONG_MAX - basetime) {
        kv_reply_errorf(&c->out, "invalid expire time in '%s' command", name);
        return;
    }
    when += basetime;
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (flags) {
        long long cur = kv_db_expire_get(kv_db_obj(e));
        if (((flags & X_NX) && cur != -1) || ((flags & X_XX) && cur == -1) ||
            ((flags & X_GT) && (when <= cur || cur == -1)) ||
            ((flags & X_LT) && cur != -1 && when >= cur)) {
            kv_reply_int(&c->out, 0);
            return;
        }
    }
    if (when <= kv_db_now_ms()) kv_db_delete_entry(c->db, e); /* already past: delete */
    else kv_db_expire_set(c->db, e, when);
    kv_db_changed(c->db, k->ptr, k->len, 1);
    kv_notify(c->db, KV_NOTIFY_GENERIC, when <= kv_db_now_ms() ? "del" : "expire", k->ptr, k->len);
    kv_reply_int(&c->out, 1);
}

static void expire_cmd(kv_client_t *c) { expire_generic(c, kv_db_now_ms(), 1, "expire"); }
static void pexpire_cmd(kv_client_t *c) { expire_generic(c, kv_db_now_ms(), 0, "pexpire"); }
static void expireat_cmd(kv_client_t *c) { expire_generic(c, 0, 1, "expireat"); }
static void pexpireat_cmd(kv_client_t *c) { expire_generic(c, 0, 0, "pexpireat"); }

static void ttl_generic(kv_client_t *c, int ms, int abs)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, KV_LOOKUP_NOTOUCH);
    if (!e) {
        kv_reply_int(&c->out, -2);
        return;
    }
    long long when = kv_db_expire_get(kv_db_obj(e));
    if (when == -1) {
        kv_reply_int(&c->out, -1);
        return;
    }
    long long ttl = abs ? when : when - kv_db_now_ms();
    if (ttl < 0) ttl = 0;
    /* Redis's (ttl+500)/1000 wraps like unsigned math near LLONG_MAX */
    kv_reply_int(&c->out, ms ? ttl : (long long)(((unsigned long long)ttl + 500) / 1000));
}

static void ttl_cmd(kv_client_t *c) { ttl_generic(c, 0, 0); }
static void pttl_cmd(kv_client_t *c) { ttl_generic(c, 1, 0); }
static void expiretime_cmd(kv_client_t *c) { ttl_generic(c, 0, 1); }
static void pexpiretime_cmd(kv_client_t *c) { ttl_generic(c, 1, 1); }

static void persist_cmd(kv_client_t *c)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, KV_LOOKUP_WRITE);
    if (!e || !(kv_db_obj(e)->flags & KV_OBJ_TTL)) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_db_expire_clear(c->db, e);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_GENERIC, "persist", c->argv[1].ptr, c->argv[1].len);
    kv_reply_int(&c->out, 1);
}

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define EXP(name, arity, flags, proc, since, summary)                                          \
    { name, arity, flags, 1, 1, 1, KV_ROUTE_KEY, proc, "generic", since, summary }

const kv_cmd_t kv_expire_cmds[] = {
    EXP("expire", -3, W | F, expire_cmd, "1.0.0", "Set a key's time to live in seconds"),
    EXP("expireat", -3, W | F, expireat_cmd, "1.2.0",
        "Set the expiration for a key as a UNIX timestamp"),
    EXP("expiretime", 2, R | F, expiretime_cmd, "7.0.0",
        "Get the expiration Unix timestamp for a key"),
    EXP("persist", 2, W | F, persist_cmd, "2.2.0", "Remove the expiration from a key"),
    EXP("pexpire", -3, W | F, pexpire_cmd, "2.6.0", "Set a key's time to live in milliseconds"),
    EXP("pexpireat", -3, W | F, pexpireat_cmd, "2.6.0",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
    EXP("pexpiretime", 2, R | F, pexpiretime_cmd, "7.0.0",
        "Get the expiration Unix timestamp for a key in milliseconds"),
    EXP("pttl", 2, R | F, pttl_cmd, "2.6.0", "Get the time to live for a key in milliseconds"),
    EXP("ttl", 2, R | F, ttl_cmd, "1.0.0", "Get the time to live for a key in seconds"),
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
