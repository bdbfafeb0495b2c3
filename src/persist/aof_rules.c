/*
 * What the AOF logs for a command (persist/aof.h): the command as
 * executed, except where replaying it later would not give the same state.
 * As Redis 7.0 propagates them:
 *
 *   EXPIRE/PEXPIRE/EXPIREAT k t      PEXPIREAT k <abs ms>   (DEL k when gone)
 *   SET k v EX|PX|EXAT ...           SET k v PXAT <abs ms>
 *   SETEX/PSETEX k t v               SET k v PXAT <abs ms>
 *   GETEX k EX|PX|EXAT|PXAT|PERSIST  PEXPIREAT k <abs> | PERSIST k | DEL k
 *   INCRBYFLOAT k n                  SET k <result> KEEPTTL
 *   HINCRBYFLOAT k f n               HSET k f <result>
 *   RESTORE k ttl p (relative ttl)   RESTORE k <abs ms> p ... ABSTTL
 *   kevy.export k 1 (RENAME source)  DEL k
 *
 * The result is read back from the db after the command ran (the absolute
 * expiry the handler computed, the value it stored), so the log holds
 * exactly what is in memory. SPOP logs SREM/DEL from its handler
 * (kv_fwd_propagate_as), since only it knows the members it picked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "persist/aof.h"
#include "shard/hash_type.h"

static int is(const kv_resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

static kv_resp_arg A(const char *s) { return (kv_resp_arg){ s, strlen(s) }; }

/* The key's entry as stored, without expiring it (an already-past TTL is
 * logged as such; the replay expires it the same way). */
static kv_dict_entry *raw(kv_db_t *db, const kv_resp_arg *k) { return kv_dict_find(db->dict, k->ptr, k->len); }

static void emit_del(const kv_resp_arg *k, kv_aof_emit_fn *emit, void *ud)
{
    kv_resp_arg v[2] = { A("DEL"), *k };
    emit(ud, 2, v);
}

/* PEXPIREAT k <when>, or DEL k when the key is gone. */
static void emit_expire(kv_db_t *db, const kv_resp_arg *k, kv_aof_emit_fn *emit, void *ud)
{
    kv_dict_entry *e = raw(db, k);
    if (!e) {
        emit_del(k, emit, ud);
        return;
    }
    long long when = kv_db_expire_get(kv_db_obj(e));
    char num[32];
    if (when < 0) {
        kv_resp_arg v[2] = { A("PERSIST"), *k };
        emit(ud, 2, v);
        return;
    }
    snprintf(num, sizeof num, "%lld", when);
    kv_resp_arg v[3] = { A("PEXPIREAT"), *k, A(num) };
    emit(ud, 3, v);
}

/* SET k <stored value> [PXAT when | KEEPTTL]. */
static void emit_set_stored(kv_db_t *db, const kv_resp_arg *k, int keepttl, kv_aof_emit_fn *emit, void *ud)
{
    kv_dict_entry *e = raw(db, k);
    if (!e || kv_db_obj(e)->type != KV_TYPE_STRING) {
        if (!e) emit_del(k, emit, ud);
        return;
    }
    char ib[KV_DB_INTBUF], num[32];
    size_t vl;
    const char *vp = kv_db_str(kv_db_obj(e), ib, &vl);
    long long when = kv_db_expire_get(kv_db_obj(e));
    kv_resp_arg v[5] = { A("SET"), *k, { vp, vl } };
    int n = 3;
    if (keepttl) v[n++] = A("KEEPTTL");
    else if (when >= 0) {
        snprintf(num, sizeof num, "%lld", when);
        v[n++] = A("PXAT");
        v[n++] = A(num);
    }
    emit(ud, n, v);
}

static void emit_hset_stored(kv_db_t *db, const kv_resp_arg *argv, kv_aof_emit_fn *emit, void *ud)
{
    kv_dict_entry *e = raw(db, &argv[1]);
    kv_lp_val val;
    char num[32];
    if (!e || kv_db_obj(e)->type != KV_TYPE_HASH || !kv_hash_get(kv_db_obj(e), argv[2].ptr, argv[2].len, &val)) {
        emit(ud, 4, argv);      /* cannot happen after a success; log as is */
        return;
    }
    kv_resp_arg v[4] = { A("HSET"), argv[1], argv[2] };
    if (val.s) v[3] = (kv_resp_arg){ (const char *) val.s, val.len };
    else {
        snprintf(num, sizeof num, "%lld", val.ll);
        v[3] = A(num);
    }
    emit(ud, 4, v);
}

static void emit_restore(kv_db_t *db, int argc, const kv_resp_arg *argv, kv_aof_emit_fn *emit, void *ud)
{
    int absttl = 0;
    for (int i = 4; i < argc; i++)
        if (is(&argv[i], "absttl")) absttl = 1;
    if (absttl || (argv[2].len == 1 && argv[2].ptr[0] == '0')) {
        emit(ud, argc, argv);
        return;
    }
    kv_dict_entry *e = raw(db, &argv[1]);
    long long when = e ? kv_db_expire_get(kv_db_obj(e)) : -1;
    if (!e || when < 0) {       /* a ttl already past: RESTORE only deleted */
        emit_del(&argv[1], emit, ud);
        return;
    }
    kv_resp_arg *v = malloc((size_t) (argc + 1) * sizeof *v);
    char num[32];
    if (!v) abort();
    memcpy(v, argv, (size_t) argc * sizeof *v);
    snprintf(num, sizeof num, "%lld", when);
    v[2] = A(num);
    v[argc] = A("ABSTTL");
    emit(ud, argc + 1, v);
    free(v);
}

void kv_aof_translate(kv_db_t *db, int argc, const kv_resp_arg *argv, kv_aof_emit_fn *emit, void *ud)
{
    const kv_resp_arg *n = &argv[0];
    if (argc < 2) {
        emit(ud, argc, argv);
        return;
    }
    switch (n->len ? (n->ptr[0] | 0x20) : 0) {
    case 'e':
        if (is(n, "expire") || is(n, "expireat")) return emit_expire(db, &argv[1], emit, ud);
        break;
    case 'p':
        if (is(n, "pexpire")) return emit_expire(db, &argv[1], emit, ud);
        if (is(n, "psetex")) return emit_set_stored(db, &argv[1], 0, emit, ud);
        break;
    case 's':
        if (is(n, "setex")) return emit_set_stored(db, &argv[1], 0, emit, ud);
        if (is(n, "set")) {
            for (int i = 3; i < argc; i++)
                if (is(&argv[i], "ex") || is(&argv[i], "px") || is(&argv[i], "exat"))
                    return emit_set_stored(db, &argv[1], 0, emit, ud);
        }
        break;
    case 'g':
        if (is(n, "getex")) return emit_expire(db, &argv[1], emit, ud);
        break;
    case 'i':
        if (is(n, "incrbyfloat")) return emit_set_stored(db, &argv[1], 1, emit, ud);
        break;
    case 'h':
        if (is(n, "hincrbyfloat") && argc == 4) return emit_hset_stored(db, argv, emit, ud);
        break;
    case 'r':
        if (is(n, "restore") && argc >= 4) return emit_restore(db, argc, argv, emit, ud);
        break;
    case 'k':
        if (is(n, "kevy.export")) return emit_del(&argv[1], emit, ud);
        break;
    }
    emit(ud, argc, argv);
}

/* ---- RESP encoding ------------------------------------------------------------ */

static void reserve(kv_aof_buf *b, size_t more)
{
    if (b->cap - b->len >= more) return;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap - b->len < more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) abort();
    b->p = p, b->cap = cap;
}

static size_t put_len(char *p, char c, size_t n)
{
    char tmp[24];
    size_t k = 0, i = 0;
    do tmp[k++] = (char) ('0' + n % 10); while ((n /= 10));
    p[i++] = c;
    while (k) p[i++] = tmp[--k];
    p[i++] = '\r', p[i++] = '\n';
    return i;
}

void kv_aof_buf_cmd(kv_aof_buf *b, int argc, const kv_resp_arg *argv)
{
    size_t need = 24;
    for (int i = 0; i < argc; i++) need += argv[i].len + 26;
    reserve(b, need);
    char *p = b->p + b->len;
    p += put_len(p, '*', (size_t) argc);
    for (int i = 0; i < argc; i++) {
        p += put_len(p, '$', argv[i].len);
        memcpy(p, argv[i].ptr, argv[i].len);
        p += argv[i].len;
        *p++ = '\r', *p++ = '\n';
    }
    b->len = (size_t) (p - b->p);
}

void kv_aof_buf_free(kv_aof_buf *b)
{
    free(b->p);
    b->p = NULL, b->len = b->cap = 0;
}
