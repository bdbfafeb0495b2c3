/*
 * CONFIG GET|SET|RESETSTAT|REWRITE|HELP with Redis's parameter names,
 * mapped onto kevy's YAML keys (README "CONFIG parameters").
 *
 * SET and RESETSTAT run on every worker (each holds its own copy of the
 * configuration); every worker validates the same way, so they all apply
 * a change or all refuse it with the same error. A change lasts until the
 * next reload re-applies the file's value (for the parameters the file
 * has), like Redis's CONFIG SET without REWRITE. A respawned worker starts
 * from the master's copy and replays the CONFIG SETs its shard's previous
 * incarnations applied (the journal in the shared segment, below), so it
 * is configured as its peers are.
 *
 * The data-type thresholds (hash-max-listpack-entries, ...) live in each
 * type's globals (hash_type.h, set_type.h, quicklist.h, zset_type.h,
 * hll_core.h) and are set through their setters, on every worker; values
 * convert as they next change, as in Redis. Redis's old ziplist names are
 * aliases (CONFIG GET answers under the name asked for).
 *
 * save and appendfsync are the snapshot save points and the AOF fsync
 * policy (persistence.snapshot.save, persistence.aof.fsync) on every
 * worker. appendonly reports persistence.aof.enabled; switching it at run
 * time is refused (set the key and restart). There is no eviction yet, so
 * maxmemory accepts only 0; maxmemory-policy is kept and reported (with no
 * limit it decides nothing, as in Redis).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/glob.h"
#include "core/log.h"
#include "shard/cmd_server.h"
#include "shard/hash_type.h"
#include "shard/hll_core.h"
#include "shard/quicklist.h"
#include "shard/set_type.h"
#include "shard/zset_type.h"
#include "shard/notify.h"
#include "shard/pubsub.h"

/* P_NUM: Redis's INTEGER_CONFIG numbers, parsed by string2ll (no '+',
 * no blanks) and applied through a type's setter. */
typedef enum { P_INT, P_MEM, P_STR, P_ENUM, P_BOOL, P_SAVE, P_COBL, P_FIXED, P_NOTIFY, P_NUM } ptype_e;

typedef struct {
    const char *name;
    ptype_e     type;
    long long   min, max;
    int         immutable;
    const char *const *choices;     /* P_ENUM */
} param_t;

static const char *const loglevels[] = { "debug", "verbose", "notice", "warning", NULL };
static const char *const fsyncs[] = { "everysec", "always", "no", NULL };
/* kv_fsync_e's order (core/conf.h). */
static const char *const conf_fsync_names[] = { "always", "everysec", "no" };
static const char *const policies[] = { "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
                                        "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction", NULL };

enum {
    K_MAXCLIENTS, K_TIMEOUT, K_PROTO_MAX_BULK_LEN, K_QUERYBUF, K_REQUIREPASS, K_HZ, K_LOGLEVEL, K_COBL, K_SAVE, K_APPENDONLY,
    K_APPENDFSYNC, K_MAXMEMORY, K_MAXMEMORY_POLICY, K_DATABASES, K_PORT, K_BIND, K_DIR, K_PIDFILE, K_LOGFILE, K_DAEMONIZE,
    K_UNIXSOCKET, K_NOTIFY,
    /* data-type thresholds, in this order (shadow_t.thr) */
    K_HASH_ENTRIES, K_HASH_VALUE, K_SET_INTSET, K_LIST_SIZE, K_LIST_DEPTH, K_ZSET_ENTRIES, K_ZSET_VALUE, K_HLL_SPARSE,
    K_NPARAMS
};
#define K_THR0 K_HASH_ENTRIES
#define K_NTHR (K_NPARAMS - K_THR0)

static const param_t params[K_NPARAMS] = {
    [K_MAXCLIENTS] = { "maxclients", P_INT, 1, 4294967295LL, 0, NULL },
    [K_TIMEOUT] = { "timeout", P_INT, 0, INT_MAX, 0, NULL },
    [K_PROTO_MAX_BULK_LEN] = { "proto-max-bulk-len", P_MEM, 1 << 20, LLONG_MAX, 0, NULL },
    [K_QUERYBUF] = { "client-query-buffer-limit", P_MEM, 1 << 20, LLONG_MAX, 0, NULL },
    [K_REQUIREPASS] = { "requirepass", P_STR, 0, 0, 0, NULL },
    [K_HZ] = { "hz", P_INT, 0, INT_MAX, 0, NULL },
    [K_LOGLEVEL] = { "loglevel", P_ENUM, 0, 0, 0, loglevels },
    [K_COBL] = { "client-output-buffer-limit", P_COBL, 0, 0, 0, NULL },
    [K_SAVE] = { "save", P_SAVE, 0, 0, 0, NULL },
    [K_APPENDONLY] = { "appendonly", P_BOOL, 0, 0, 0, NULL },
    [K_APPENDFSYNC] = { "appendfsync", P_ENUM, 0, 0, 0, fsyncs },
    [K_MAXMEMORY] = { "maxmemory", P_MEM, 0, LLONG_MAX, 0, NULL },
    [K_MAXMEMORY_POLICY] = { "maxmemory-policy", P_ENUM, 0, 0, 0, policies },
    [K_DATABASES] = { "databases", P_FIXED, 0, 0, 1, NULL },
    [K_PORT] = { "port", P_FIXED, 0, 0, 1, NULL },
    [K_BIND] = { "bind", P_FIXED, 0, 0, 1, NULL },
    [K_DIR] = { "dir", P_FIXED, 0, 0, 1, NULL },
    [K_PIDFILE] = { "pidfile", P_FIXED, 0, 0, 1, NULL },
    [K_LOGFILE] = { "logfile", P_FIXED, 0, 0, 1, NULL },
    [K_DAEMONIZE] = { "daemonize", P_FIXED, 0, 0, 1, NULL },
    [K_UNIXSOCKET] = { "unixsocket", P_FIXED, 0, 0, 1, NULL },
    [K_NOTIFY] = { "notify-keyspace-events", P_NOTIFY, 0, 0, 0, NULL },   /* notify.c */
    /* Redis's bounds: size_t ones 0..LONG_MAX, int ones as createIntConfig;
     * the *-value ones and hll-sparse-max-bytes are MEMORY_CONFIG ("1k") */
    [K_HASH_ENTRIES] = { "hash-max-listpack-entries", P_NUM, 0, LLONG_MAX, 0, NULL },
    [K_HASH_VALUE] = { "hash-max-listpack-value", P_MEM, 0, LLONG_MAX, 0, NULL },
    [K_SET_INTSET] = { "set-max-intset-entries", P_NUM, 0, LLONG_MAX, 0, NULL },
    [K_LIST_SIZE] = { "list-max-listpack-size", P_NUM, INT_MIN, INT_MAX, 0, NULL },
    [K_LIST_DEPTH] = { "list-compress-depth", P_NUM, 0, INT_MAX, 0, NULL },
    [K_ZSET_ENTRIES] = { "zset-max-listpack-entries", P_NUM, 0, LLONG_MAX, 0, NULL },
    [K_ZSET_VALUE] = { "zset-max-listpack-value", P_MEM, 0, LLONG_MAX, 0, NULL },
    [K_HLL_SPARSE] = { "hll-sparse-max-bytes", P_MEM, 0, LLONG_MAX, 0, NULL },
};

/* Redis 7.0's aliases (the pre-7.0 ziplist names). */
static const struct {
    const char *name;
    int         param;
} aliases[] = {
    { "hash-max-ziplist-entries", K_HASH_ENTRIES }, { "hash-max-ziplist-value", K_HASH_VALUE },
    { "list-max-ziplist-size", K_LIST_SIZE },       { "zset-max-ziplist-entries", K_ZSET_ENTRIES },
    { "zset-max-ziplist-value", K_ZSET_VALUE },
};
#define K_NALIASES ((int) (sizeof(aliases) / sizeof(aliases[0])))
#define K_NNAMES (K_NPARAMS + K_NALIASES)   /* parameters, then aliases */

static const char *name_at(int i) { return i < K_NPARAMS ? params[i].name : aliases[i - K_NPARAMS].name; }
static int param_at(int i) { return i < K_NPARAMS ? i : aliases[i - K_NPARAMS].param; }

/* Values kevy holds for the parameters it does not act on yet. */
typedef struct {
    char     save[128];
    int      appendonly, appendfsync, policy;
    uint64_t maxmemory;
    int      notify;                    /* notify-keyspace-events (notify.c) */
    uint64_t ps_hard, ps_soft, ps_secs; /* client-output-buffer-limit pubsub */
    /* Thresholds being set (thr_set: a bit per K_THR0 + i), applied
     * after validation; the list ones are also kept as given, since the
     * list setters clamp and CONFIG GET reports what was set, as Redis. */
    long long thr[K_NTHR];
    unsigned  thr_set;
    long long list_size, list_depth;
} shadow_t;
static shadow_t shadow = { "", 0, 0, 7, 0, 0, 32u << 20, 8u << 20, 60, { 0 }, 0, -2, 0 };

/* Index in name_at() order, or -1. */
static int find_name(const kv_resp_arg *a)
{
    for (int i = 0; i < K_NNAMES; i++)
        if (strlen(name_at(i)) == a->len && !strncasecmp(name_at(i), a->ptr, a->len)) return i;
    return -1;
}

static const param_t *find_param(const kv_resp_arg *a)
{
    int i = find_name(a);
    return i < 0 ? NULL : &params[param_at(i)];
}

static void apply_thresholds(const shadow_t *sh)
{
    for (int i = 0; i < K_NTHR; i++) {
        if (!(sh->thr_set & (1u << i))) continue;
        long long v = sh->thr[i];
        switch (K_THR0 + i) {
        case K_HASH_ENTRIES: kv_hash_set_max_listpack_entries((size_t) v); break;
        case K_HASH_VALUE: kv_hash_set_max_listpack_value((size_t) v); break;
        case K_SET_INTSET: kv_set_set_max_intset_entries((size_t) v); break;
        case K_LIST_SIZE: kv_list_set_max_listpack_size(v); break;
        case K_LIST_DEPTH: kv_list_set_compress_depth(v); break;
        case K_ZSET_ENTRIES: kv_zset_set_max_listpack_entries((size_t) v); break;
        case K_ZSET_VALUE: kv_zset_set_max_listpack_value((size_t) v); break;
        case K_HLL_SPARSE: kv_hll_set_sparse_max_bytes((size_t) v); break;
        }
    }
}

/* A list parameter as set, while the setter's clamped value still agrees
 * with it (nothing else changed the global since). */
static long long list_param(long long given, int now, int clamped)
{
    return clamped == now ? given : now;
}

/* ---- GET ------------------------------------------------------------------- */

static void value_of(const kv_conf_t *conf, int p, char *out, size_t cap)
{
    size_t n = 0;
    switch (p) {
    case K_MAXCLIENTS: snprintf(out, cap, "%llu", (unsigned long long) conf->maxclients); break;
    case K_TIMEOUT: snprintf(out, cap, "%llu", (unsigned long long) conf->timeout_s); break;
    case K_PROTO_MAX_BULK_LEN: snprintf(out, cap, "%llu", (unsigned long long) conf->proto_max_bulk_len); break;
    case K_QUERYBUF: snprintf(out, cap, "%llu", (unsigned long long) conf->client_query_buffer_limit); break;
    case K_REQUIREPASS: snprintf(out, cap, "%s", conf->requirepass); break;
    case K_HZ: snprintf(out, cap, "%llu", (unsigned long long) conf->hz); break;
    case K_LOGLEVEL: snprintf(out, cap, "%s", loglevels[conf->log_level]); break;
    case K_COBL:
        snprintf(out, cap, "normal %llu 0 0 slave 268435456 67108864 60 pubsub %llu %llu %llu",
                 (unsigned long long) conf->output_buffer_limit, (unsigned long long) shadow.ps_hard,
                 (unsigned long long) shadow.ps_soft, (unsigned long long) shadow.ps_secs);
        break;
    case K_NOTIFY: kv_notify_format(shadow.notify, out); break;
    case K_SAVE: {
        size_t n = 0;
        out[0] = '\0';
        for (int i = 0; i < conf->nsave && n < cap; i++)
            n += (size_t) snprintf(out + n, cap - n, "%s%llu %llu", i ? " " : "",
                                   (unsigned long long) conf->save[i].seconds,
                                   (unsigned long long) conf->save[i].changes);
        break;
    }
    case K_APPENDONLY: snprintf(out, cap, "%s", conf->aof_enabled ? "yes" : "no"); break;
    case K_APPENDFSYNC: snprintf(out, cap, "%s", conf_fsync_names[conf->aof_fsync]); break;
    case K_MAXMEMORY: snprintf(out, cap, "%llu", (unsigned long long) shadow.maxmemory); break;
    case K_MAXMEMORY_POLICY: snprintf(out, cap, "%s", policies[shadow.policy]); break;
    case K_DATABASES: snprintf(out, cap, "1"); break;
    case K_PORT:
        snprintf(out, cap, "0");
        for (int i = 0; i < conf->nlisten; i++)
            if (conf->listen[i].kind == KV_ADDR_TCP) { snprintf(out, cap, "%d", conf->listen[i].port); break; }
        break;
    case K_BIND:
        out[0] = '\0';
        for (int i = 0; i < conf->nlisten && n < cap; i++)
            if (conf->listen[i].kind == KV_ADDR_TCP)
                n += (size_t) snprintf(out + n, cap - n, "%s%s", n ? " " : "", conf->listen[i].host);
        break;
    case K_UNIXSOCKET:
        out[0] = '\0';
        for (int i = 0; i < conf->nlisten; i++)
            if (conf->listen[i].kind == KV_ADDR_UNIX) { snprintf(out, cap, "%s", conf->listen[i].path); break; }
        break;
    case K_DIR: snprintf(out, cap, "%s", conf->dir); break;
    case K_PIDFILE: snprintf(out, cap, "%s", conf->pid_file); break;
    case K_LOGFILE: snprintf(out, cap, "%s", strcmp(conf->log_file, "stderr") ? conf->log_file : ""); break;
    case K_DAEMONIZE: snprintf(out, cap, "%s", conf->daemonize ? "yes" : "no"); break;
    case K_HASH_ENTRIES: snprintf(out, cap, "%zu", kv_hash_max_listpack_entries); break;
    case K_HASH_VALUE: snprintf(out, cap, "%zu", kv_hash_max_listpack_value); break;
    case K_SET_INTSET: snprintf(out, cap, "%zu", kv_set_max_intset_entries); break;
    case K_LIST_SIZE: {
        long long g = shadow.list_size;
        snprintf(out, cap, "%lld", list_param(g, kv_list_max_listpack_size, g < -5 ? -5 : g > 32767 ? 32767 : (int) g));
        break;
    }
    case K_LIST_DEPTH: {
        long long g = shadow.list_depth;
        snprintf(out, cap, "%lld", list_param(g, kv_list_compress_depth, g > 65535 ? 65535 : (int) g));
        break;
    }
    case K_ZSET_ENTRIES: snprintf(out, cap, "%zu", kv_zset_max_listpack_entries); break;
    case K_ZSET_VALUE: snprintf(out, cap, "%zu", kv_zset_max_listpack_value); break;
    case K_HLL_SPARSE: snprintf(out, cap, "%zu", kv_hll_sparse_max_bytes); break;
    }
}

static void config_get(kv_client_t *c)
{
    /* Matches are per name, as in Redis's dict of names and aliases: a
     * parameter asked for under both names is answered under both. */
    const char *names[K_NNAMES];
    int which[K_NNAMES], n = 0, seen[K_NNAMES] = { 0 };
    size_t name_len[K_NNAMES];
    for (int a = 2; a < c->argc; a++) {
        const kv_resp_arg *pat = &c->argv[a];
        int glob = memchr(pat->ptr, '*', pat->len) || memchr(pat->ptr, '?', pat->len) || memchr(pat->ptr, '[', pat->len);
        if (!glob) {
            int i = find_name(pat);
            if (i < 0 || seen[i]) continue;
            seen[i] = 1;
            which[n] = param_at(i), names[n] = pat->ptr, name_len[n++] = pat->len;   /* as given */
            continue;
        }
        for (int i = 0; i < K_NNAMES; i++) {
            const char *nm = name_at(i);
            if (seen[i] || !kv_glob_match(pat->ptr, pat->len, nm, strlen(nm), 1)) continue;
            seen[i] = 1;
            which[n] = param_at(i), names[n] = nm, name_len[n++] = strlen(nm);
        }
    }
    kv_reply_array(&c->out, n * 2);
    for (int i = 0; i < n; i++) {
        char v[PATH_MAX + KV_PASS_MAX];
        value_of(c->srv->conf, which[i], v, sizeof(v));
        kv_reply_bulk(&c->out, names[i], name_len[i]);
        kv_reply_bulk_cstr(&c->out, v);
    }
}

/* ---- SET -------------------------------------------------------------------- */

static int enum_index(const char *const *choices, const char *v)
{
    for (int i = 0; choices[i]; i++) if (!strcasecmp(choices[i], v)) return i;
    return -1;
}

/* Parse v for param p into conf / sh; NULL, or Redis's reason. */
static const char *set_one(kv_conf_t *conf, shadow_t *sh, int p, const char *v, char *err, size_t errlen)
{
    const param_t *pm = &params[p];
    long long ll = 0;
    uint64_t u = 0;
    char *end;
    switch (pm->type) {
    case P_INT:
        errno = 0;
        ll = strtoll(v, &end, 10);
        if (!*v || *end || errno) return "argument couldn't be parsed into an integer";
        if (ll < pm->min || ll > pm->max) goto range;
        if (p == K_MAXCLIENTS) conf->maxclients = (uint64_t) ll;
        else if (p == K_TIMEOUT) conf->timeout_s = (uint64_t) ll;
        else conf->hz = (uint64_t) (ll < 1 ? 1 : ll > 500 ? 500 : ll);    /* Redis clamps hz */
        return NULL;
    case P_MEM:
        if (kv_conf_parse_size(v, &u) != 0 || u > (uint64_t) LLONG_MAX) return "argument must be a memory value";
        ll = (long long) u;
        if (ll < pm->min || ll > pm->max) goto range;
        if (p == K_PROTO_MAX_BULK_LEN) conf->proto_max_bulk_len = u;
        else if (p == K_QUERYBUF) conf->client_query_buffer_limit = u;
        else if (p >= K_THR0) sh->thr[p - K_THR0] = ll, sh->thr_set |= 1u << (p - K_THR0);
        else if (u != 0) return "kevy has no eviction yet: maxmemory must be 0";
        else sh->maxmemory = u;
        return NULL;
    case P_STR:
        if (strlen(v) >= sizeof(conf->requirepass)) return "argument is too long";
        strcpy(conf->requirepass, v);
        return NULL;
    case P_BOOL: {
        int on;
        if (!strcasecmp(v, "yes")) on = 1;
        else if (!strcasecmp(v, "no")) on = 0;
        else return "argument must be 'yes' or 'no'";
        if (on != conf->aof_enabled)
            return "kevy cannot switch the AOF at run time: set persistence.aof.enabled and restart";
        sh->appendonly = on;
        return NULL;
    }
    case P_ENUM: {
        int i = enum_index(pm->choices, v);
        if (i < 0) {
            size_t n = (size_t) snprintf(err, errlen, "argument(s) must be one of the following: ");
            for (int k = 0; pm->choices[k] && n < errlen; k++)
                n += (size_t) snprintf(err + n, errlen - n, "%s%s", k ? ", " : "", pm->choices[k]);
            return err;
        }
        if (p == K_LOGLEVEL) conf->log_level = i;
        else if (p == K_APPENDFSYNC) {
            sh->appendfsync = i;
            for (int f = 0; f < 3; f++)
                if (!strcmp(conf_fsync_names[f], pm->choices[i])) conf->aof_fsync = f;
        }
        else sh->policy = i;
        return NULL;
    }
    case P_SAVE: {
        /* Pairs of "seconds changes", as Redis checks them. */
        int count = 0;
        const char *q = v;
        while (*q) {
            while (*q == ' ') q++;
            if (!*q) break;
            errno = 0;
            ll = strtoll(q, &end, 10);
            if (end == q || errno || ll < 0 || (*end && *end != ' ')) return "Invalid save parameters";
            q = end, count++;
        }
        if (count % 2 || count / 2 > KV_SAVE_POINTS_MAX || strlen(v) >= sizeof(sh->save))
            return "Invalid save parameters";
        strcpy(sh->save, v);
        /* The snapshot cron reads conf->save on every tick. */
        conf->nsave = 0;
        for (q = v; count > 0; count -= 2) {
            unsigned long long secs = strtoull(q, &end, 10), changes = strtoull(end, &end, 10);
            q = end;
            if (secs == 0) continue;            /* Redis ignores 0-second points */
            conf->save[conf->nsave].seconds = secs;
            conf->save[conf->nsave++].changes = changes;
        }
        return NULL;
    }
    case P_COBL: {
        /* "class hard soft seconds" groups; kevy applies normal's hard. */
        char buf[256], *save = NULL, *tok[64];
        int nt = 0;
        if (strlen(v) >= sizeof(buf)) return "Wrong number of arguments in buffer limit configuration.";
        strcpy(buf, v);
        for (char *t = strtok_r(buf, " ", &save); t && nt < 64; t = strtok_r(NULL, " ", &save)) tok[nt++] = t;
        if (nt % 4) return "Wrong number of arguments in buffer limit configuration.";
        for (int i = 0; i < nt; i += 4) {
            uint64_t hard, soft;
            int cls = !strcasecmp(tok[i], "normal") ? 0 : (!strcasecmp(tok[i], "slave") || !strcasecmp(tok[i], "replica")
                                                         || !strcasecmp(tok[i], "pubsub")) ? 1 : -1;
            if (cls < 0) return "Invalid client class specified in buffer limit configuration.";
            errno = 0;
            long long secs = strtoll(tok[i + 3], &end, 10);
            if (kv_conf_parse_size(tok[i + 1], &hard) || kv_conf_parse_size(tok[i + 2], &soft) || *end || errno
                || secs < 0)
                return "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            if (cls == 0) conf->output_buffer_limit = hard;
            if (!strcasecmp(tok[i], "pubsub"))      /* pubsub.c enforces it */
                sh->ps_hard = hard, sh->ps_soft = soft, sh->ps_secs = (uint64_t) secs;
        }
        return NULL;
    }
    case P_FIXED:
        return "can't set immutable config";
    case P_NUM:
        if (!kv_str2ll(v, strlen(v), &ll)) return "argument couldn't be parsed into an integer";
        if (ll < pm->min || ll > pm->max) goto range;
        sh->thr[p - K_THR0] = ll, sh->thr_set |= 1u << (p - K_THR0);
        if (p == K_LIST_SIZE) sh->list_size = ll;
        if (p == K_LIST_DEPTH) sh->list_depth = ll;
        return NULL;
    case P_NOTIFY:
        if ((sh->notify = kv_notify_parse(v)) < 0) return "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
        return NULL;
    }
    return "internal error";
range:
    snprintf(err, errlen, "argument must be between %lld and %lld inclusive", pm->min, pm->max);
    return err;
}

/* Set pairs (which[i] = param, values[2 * i]) on conf and the shadow, all
 * or none: NULL, or why not and at which pair (*at). */
static const char *apply_pairs(kv_conf_t *conf, int npairs, const int *which, const kv_resp_arg *values, int *at,
                               char *err, size_t errlen)
{
    const char *why = NULL;
    kv_conf_t *fresh = malloc(sizeof(*fresh));
    shadow_t sh = shadow;
    if (!fresh) abort();
    *fresh = *conf;
    for (int i = 0; i < npairs && !why; i++) {
        const kv_resp_arg *v = &values[2 * i];
        char val[KV_PASS_MAX + 256];
        *at = i;
        if (v->len >= sizeof(val)) {
            why = "argument is too long";
            break;
        }
        memcpy(val, v->ptr, v->len);
        val[v->len] = '\0';
        why = set_one(fresh, &sh, which[i], val, err, errlen);
    }
    if (!why) {
        if (fresh->log_level != conf->log_level) kv_log_set_level(fresh->log_level);
        *conf = *fresh;
        apply_thresholds(&sh);
        sh.thr_set = 0;
        shadow = sh;
        kv_notify_flags = sh.notify;        /* pub/sub's parameters */
        kv_pubsub_set_limits(sh.ps_hard, sh.ps_soft, sh.ps_secs);
    }
    free(fresh);
    return why;
}

/* ---- the journal: CONFIG SETs for the next incarnation ---------------------------- */

/*
 * The last value set of each parameter, with the reload count it was set
 * under, mirrored into this shard's kv_config_journal_t as records of
 * u32 reloads, u16 name length, u16 value length, name, value. A
 * parameter the configuration file holds (reload_resets) is replayed only
 * if no reload came since: the reload gave the file's value back.
 */
static struct {
    int      set;
    uint32_t reloads;
    size_t   len;
    char     val[KV_PASS_MAX + 256];
} journal[K_NPARAMS];

static int reload_resets(int p)
{
    return p == K_MAXCLIENTS || p == K_TIMEOUT || p == K_PROTO_MAX_BULK_LEN || p == K_QUERYBUF || p == K_REQUIREPASS
        || p == K_HZ || p == K_LOGLEVEL || p == K_COBL || p == K_APPENDFSYNC;
}

static void journal_publish(kv_config_journal_t *j)
{
    uint32_t next = 1 - atomic_load_explicit(&j->cur, memory_order_relaxed);
    char *out = j->bytes[next];
    size_t n = 0;
    for (int p = 0; p < K_NPARAMS; p++) {
        if (!journal[p].set) continue;
        size_t nl = strlen(params[p].name), vl = journal[p].len;
        if (n + 8 + nl + vl > KV_CONFIG_JOURNAL_BYTES) {
            kv_log_warning("CONFIG SET: the journal is full; %s is not kept for a restart of this worker",
                           params[p].name);
            continue;
        }
        uint32_t r = journal[p].reloads;
        uint16_t l16[2] = { (uint16_t) nl, (uint16_t) vl };
        memcpy(out + n, &r, 4), memcpy(out + n + 4, l16, 4);
        memcpy(out + n + 8, params[p].name, nl), memcpy(out + n + 8 + nl, journal[p].val, vl);
        n += 8 + nl + vl;
    }
    j->len[next] = (uint32_t) n;
    atomic_store_explicit(&j->cur, next, memory_order_release);
}

static void journal_keep(int p, uint32_t reloads, const kv_resp_arg *v)
{
    journal[p].set = 1;
    journal[p].reloads = reloads;
    journal[p].len = v->len < sizeof(journal[p].val) ? v->len : sizeof(journal[p].val);
    memcpy(journal[p].val, v->ptr, journal[p].len);
}

static void journal_record(kv_server_t *srv, int npairs, const int *which, const kv_resp_arg *values)
{
    if (!srv->ctl || !srv->seg) return;
    for (int i = 0; i < npairs; i++) journal_keep(which[i], atomic_load(&srv->seg->reloads), &values[2 * i]);
    journal_publish(&srv->ctl->config);
}

void kv_config_restore(kv_server_t *srv)
{
    if (!srv->ctl || !srv->seg) return;
    kv_config_journal_t *j = &srv->ctl->config;
    uint32_t cur = atomic_load_explicit(&j->cur, memory_order_acquire) & 1, reloads = atomic_load(&srv->seg->reloads);
    const char *in = j->bytes[cur];
    size_t len = j->len[cur] <= KV_CONFIG_JOURNAL_BYTES ? j->len[cur] : 0, n = 0;
    int replayed = 0;
    while (n + 8 <= len) {
        uint32_t r;
        uint16_t l16[2];
        memcpy(&r, in + n, 4), memcpy(l16, in + n + 4, 4);
        if (n + 8 + l16[0] + l16[1] > len) break;
        kv_resp_arg name = { in + n + 8, l16[0] }, value = { in + n + 8 + l16[0], l16[1] };
        n += 8 + (size_t) l16[0] + l16[1];
        const param_t *pm = find_param(&name);
        int p = pm ? (int) (pm - params) : -1, at;
        char err[256];
        if (p < 0 || (reload_resets(p) && r != reloads)) continue;
        if (apply_pairs(srv->conf, 1, &p, &value, &at, err, sizeof(err))) continue;
        journal_keep(p, r, &value);
        replayed++;
    }
    if (replayed) kv_log_notice("replayed %d CONFIG SET parameter(s) of this shard's previous worker", replayed);
    journal_publish(j);                 /* without what no longer applies */
}

/* This worker's part of CONFIG SET: validate every pair, then apply all
 * or nothing. */
static void config_set(kv_client_t *c)
{
    int npairs = (c->argc - 2) / 2, which[npairs > 0 ? npairs : 1];
    const kv_resp_arg *unknown = NULL, *bad = NULL;
    const char *why = NULL;
    char err[256];
    if (c->argc < 4 || c->argc % 2) {
        kv_reply_syntax(c);
        return;
    }
    for (int i = 0; i < npairs; i++) {
        const kv_resp_arg *name = &c->argv[2 + 2 * i];
        const param_t *p = find_param(name);
        if (!p) {
            if (!unknown) unknown = name;
            which[i] = -1;
            continue;
        }
        which[i] = (int) (p - params);
        if (p->immutable) {
            bad = name, why = "can't set immutable config";
            break;
        }
        /* Redis finds duplicates by name: a parameter and its alias may
         * both be given (the last one wins). */
        for (int j = 0; j < i && !why; j++)
            if (which[j] == which[i] && find_name(&c->argv[2 + 2 * j]) == find_name(name))
                bad = name, why = "duplicate parameter";
    }
    if (!unknown && !why) {
        int at = -1;
        why = apply_pairs(c->srv->conf, npairs, which, c->argv + 3, &at, err, sizeof(err));
        if (why) bad = &c->argv[2 + 2 * at];
        else journal_record(c->srv, npairs, which, c->argv + 3);
    }
    if (unknown)
        kv_reply_errorf(&c->out, "Unknown option or number of arguments for CONFIG SET - '%.*s'",
                        kv_arg_cstrlen(unknown), unknown->ptr);
    else if (why)
        kv_reply_errorf(&c->out, "CONFIG SET failed (possibly related to argument '%.*s') - %s", kv_arg_cstrlen(bad),
                        bad->ptr, why);
    else
        kv_reply_ok(&c->out);
}

static void config_resetstat(kv_client_t *c)
{
    kv_info_resetstat(c->srv);
    kv_reply_ok(&c->out);
}

/* The every-worker entries: same name, so a peer finds "config" and runs
 * kv_config_cmd with a stand-in client, which does its part. */
static void config_part(kv_client_t *c)
{
    if (kv_arg_is(&c->argv[1], "set")) config_set(c);
    else config_resetstat(c);
}
static const kv_cmd_t config_all = { "config", -2, KV_CMD_ADMIN, 0, 0, 0, KV_ROUTE_ALL, config_part, "server",
                                     "2.0.0", NULL, NULL };

static const kv_subcmd_t subs[] = {
    { "get", -3 }, { "help", 2 }, { "resetstat", 2 }, { "rewrite", 2 }, { "set", -4 }, { NULL, 0 },
};

static const char *const help[] = {
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    NULL,
};

void kv_config_cmd(kv_client_t *c)
{
    const kv_subcmd_t *sub = kv_srv_subcmd(c, "config", subs);
    if (!sub) return;
    if (!strcmp(sub->name, "get")) config_get(c);
    else if (!strcmp(sub->name, "set") || !strcmp(sub->name, "resetstat")) {
        if (kv_client_is_conn(c)) kv_srv_fanout(c, &config_all);
        else config_part(c);
    } else if (!strcmp(sub->name, "rewrite"))
        kv_reply_error_cstr(&c->out, "CONFIG REWRITE is not supported by kevy: edit the YAML file and run "
                                     "kevy -s reload");
    else kv_srv_reply_help(c, "CONFIG", help);
}
