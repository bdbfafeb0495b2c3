/* Small helpers shared by the data-type command files (t_*.c, expire.c):
 * Redis's common error replies, option matching with Redis's C-string
 * semantics, integer arguments. Header-only: all trivially inlined. */
#ifndef KV_SHARD_T_UTIL_H
#define KV_SHARD_T_UTIL_H

#include <string.h>
#include <strings.h>

#include "shard/cmd.h"
#include "shard/db.h"

#define KV_ERR_WRONGTYPE "-WRONGTYPE Operation against a key holding the wrong kind of value"
#define KV_ERR_SYNTAX "syntax error"
#define KV_ERR_NOT_INT "value is not an integer or out of range"
#define KV_ERR_NOT_FLOAT "value is not a valid float"

/* Redis compares options with strcasecmp on NUL-terminated sds, so an
 * argument "nx\0junk" is NX: compare up to the first NUL. */
static inline int kv_arg_is(const kv_resp_arg *a, const char *opt)
{
    size_t n = strlen(opt);
    if (a->len < n) return 0;
    if (a->len > n && a->ptr[n] != '\0') return 0;
    return strncasecmp(a->ptr, opt, n) == 0;
}

/* Length of an argument as C sees it (up to the first NUL): what Redis's
 * "%s" prints in error messages. */
static inline int kv_arg_cstrlen(const kv_resp_arg *a)
{
    const char *z = memchr(a->ptr, '\0', a->len);
    return (int)(z ? (size_t)(z - a->ptr) : a->len);
}

static inline void kv_reply_wrongtype(kv_client_t *c) { kv_reply_error_cstr(&c->out, KV_ERR_WRONGTYPE); }
static inline void kv_reply_syntax(kv_client_t *c) { kv_reply_error_cstr(&c->out, KV_ERR_SYNTAX); }

/* argv[i] as a 64-bit integer, or reply Redis's error and return 0. */
static inline int kv_arg_ll(kv_client_t *c, int i, long long *v)
{
    if (kv_str2ll(c->argv[i].ptr, c->argv[i].len, v)) return 1;
    kv_reply_error_cstr(&c->out, KV_ERR_NOT_INT);
    return 0;
}

/* Reply a string value as a bulk. */
static inline void kv_reply_strval(kv_client_t *c, const kv_obj *o)
{
    if (o->enc == KV_ENC_INT) {
        kv_reply_bulk_ll(&c->out, (long long)*(const int64_t *)kv_db_payload(o));
        return;
    }
    char buf[KV_DB_INTBUF];
    size_t n;
    const char *p = kv_db_str(o, buf, &n);
    kv_reply_bulk(&c->out, p, n);
}

#endif
