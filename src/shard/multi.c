/*
 * MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 *
 * The client's worker queues the commands (copies of their arguments).
 * At EXEC, a transaction whose keys and watched keys all live on one
 * shard goes there whole, as the internal command kevy.exec; that shard
 * checks the watches (watch.c) and runs the commands back to back, so no
 * other client sees it half done. A transaction over several shards locks
 * them and runs there (multi_cross.c).
 *
 * WATCH registers each key on its own shard (kevy.watch) under the
 * client's id; UNWATCH, DISCARD, EXEC and a disconnect remove them
 * (kevy.unwatch, nobody waiting for the answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/db.h"
#include "shard/forward.h"
#include "shard/gather.h"
#include "shard/multi.h"
#include "shard/multi_int.h"
#include "shard/route.h"
#include "shard/watch.h"

const kv_cmd_t *kv_multi_internal(const char *name) { return kv_cmd_lookup_any(name, strlen(name)); }

static kv_multi_t *state(kv_client_t *c)
{
    if (!c->multi && !(c->multi = calloc(1, sizeof(kv_multi_t)))) abort();
    return c->multi;
}

static void clear_queue(kv_multi_t *m)
{
    for (int i = 0; i < m->nq; i++) free(m->q[i].argv);
    m->nq = 0;
    m->active = m->dirty = 0;
}


/* ---- WATCH bookkeeping ----------------------------------------------------- */

static void ok_combine(kv_slot_t *s)
{
    for (int i = 0; i < s->nparts; i++) {
        size_t len;
        char *flat = kv_gather_flatten(&s->parts[i], &len);
        if (len && flat[0] == '-' && kv_reply_buf_len(&s->out) == 0) kv_reply_raw(&s->out, flat, len);
        free(flat);
    }
    if (kv_reply_buf_len(&s->out) == 0) kv_reply_ok(&s->out);
}

/* Send `name id key...` to every shard holding some of the keys. With a
 * client, its reply is +OK once all answered; without, nobody waits. */
void kv_multi_per_shard(kv_client_t *c, const char *name, int n, const kv_resp_arg *keys, uint64_t id)
{
    int nsh = kv_route_nshards(), shard_of[n > 0 ? n : 1], used[KV_SHARDS_MAX] = { 0 }, nparts = 0;
    for (int i = 0; i < n; i++) {
        shard_of[i] = kv_route_shard(keys[i].ptr, keys[i].len);
        if (!used[shard_of[i]]++) nparts++;
    }
    kv_slot_t *s = c ? kv_fwd_slot(c, nparts ? nparts : 1, ok_combine) : kv_fwd_detached(nparts, ok_combine);
    if (nparts == 0) {
        kv_fwd_part_done(s);
        return;
    }
    char idbuf[24];
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long) id);
    kv_resp_arg *argv = malloc(sizeof(*argv) * (size_t) (n + 2));
    if (!argv) abort();
    for (int sh = 0, p = 0; sh < nsh; sh++) {
        if (!used[sh]) continue;
        int argc = 0;
        argv[argc++] = (kv_resp_arg) { name, strlen(name) };
        argv[argc++] = (kv_resp_arg) { idbuf, strlen(idbuf) };
        for (int i = 0; i < n; i++) if (shard_of[i] == sh) argv[argc++] = keys[i];
        kv_fwd_part(s, p++, sh, kv_multi_internal(name), argc, argv);
    }
    free(argv);
}

static void unwatch_all(kv_client_t *c)
{
    kv_multi_t *m = c->multi;
    if (!m || m->nw == 0) return;
    kv_resp_arg *keys = malloc(sizeof(*keys) * (size_t) m->nw);
    if (!keys) abort();
    for (int i = 0; i < m->nw; i++) keys[i] = (kv_resp_arg) { m->w[i].key, m->w[i].len };
    kv_multi_per_shard(NULL, "kevy.unwatch", m->nw, keys, c->id);
    free(keys);
    for (int i = 0; i < m->nw; i++) free(m->w[i].key);
    m->nw = 0;
}

/* ---- queueing (from kv_cmd_dispatch) --------------------------------------------- */

int kv_multi_queueing(kv_client_t *c, const kv_cmd_t *cmd)
{
    if (!c->multi || !c->multi->active) return 0;
    if (cmd) {
        const char *n = cmd->name;
        if (!strcmp(n, "exec") || !strcmp(n, "discard") || !strcmp(n, "multi") || !strcmp(n, "watch")
            || !strcmp(n, "quit") || !strcmp(n, "reset"))
            return 0;
    }
    return 1;
}

void kv_multi_queue(kv_client_t *c, const kv_cmd_t *cmd)
{
    kv_multi_t *m = c->multi;
    if (m->nq == m->qcap) {
        m->qcap = m->qcap ? m->qcap * 2 : 8;
        m->q = realloc(m->q, sizeof(queued_t) * (size_t) m->qcap);
        if (!m->q) abort();
    }
    /* One allocation: the argv array, then the argument bytes. */
    void *mem = malloc(kv_resp_argv_size(c->argc, c->argv) + 1);
    if (!mem) abort();
    m->q[m->nq++] = (queued_t) { c->argc, kv_resp_argv_copy(mem, c->argc, c->argv) };
    (void) cmd;
    kv_reply_status(&c->out, "QUEUED");
}

void kv_multi_flag(kv_client_t *c) { c->multi->dirty = 1; }

/* ---- commands --------------------------------------------------------------------- */

static void multi_cmd(kv_client_t *c)
{
    kv_multi_t *m = state(c);
    if (m->active) {
        kv_reply_error_cstr(&c->out, "MULTI calls can not be nested");
        return;
    }
    m->active = 1;
    kv_reply_ok(&c->out);
}

static void discard_cmd(kv_client_t *c)
{
    if (!c->multi || !c->multi->active) {
        kv_reply_error_cstr(&c->out, "DISCARD without MULTI");
        return;
    }
    clear_queue(c->multi);
    unwatch_all(c);
    kv_reply_ok(&c->out);
}

static void watch_cmd(kv_client_t *c)
{
    kv_multi_t *m = state(c);
    if (m->active) {
        kv_reply_error_cstr(&c->out, "WATCH inside MULTI is not allowed");
        return;
    }
    for (int i = 1; i < c->argc; i++) {
        if (m->nw == m->wcap) {
            m->wcap = m->wcap ? m->wcap * 2 : 4;
            m->w = realloc(m->w, sizeof(watched_t) * (size_t) m->wcap);
            if (!m->w) abort();
        }
        char *k = malloc(c->argv[i].len + 1);
        if (!k) abort();
        memcpy(k, c->argv[i].ptr, c->argv[i].len);
        m->w[m->nw++] = (watched_t) { k, c->argv[i].len, kv_route_shard(k, c->argv[i].len) };
    }
    kv_multi_per_shard(c, "kevy.watch", c->argc - 1, c->argv + 1, c->id);
}

static void unwatch_cmd(kv_client_t *c)
{
    unwatch_all(c);
    kv_reply_ok(&c->out);
}

/* The shards of every key of the transaction and of its watches, each
 * once, into out (KV_SHARDS_MAX entries); their count. */
static int tx_shards(kv_client_t *c, kv_multi_t *m, int *out)
{
    int n = kv_route_nshards(), used[KV_SHARDS_MAX] = { 0 }, all = 0;
    for (int i = 0; i < m->nw; i++) used[m->w[i].shard] = 1;
    int sargc = c->argc;
    kv_resp_arg *sargv = c->argv;
    for (int i = 0; i < m->nq && n > 1 && !all; i++) {
        const kv_cmd_t *cmd = kv_cmd_lookup(m->q[i].argv[0].ptr, m->q[i].argv[0].len);
        if (cmd->route == KV_ROUTE_LOCAL) continue;
        if (cmd->route == KV_ROUTE_ALL) { all = 1; break; }
        c->argc = m->q[i].argc, c->argv = m->q[i].argv;
        int idx[m->q[i].argc + 1], nk = kv_gather_keys(c, cmd, idx);
        for (int k = 0; k < nk; k++) used[kv_route_shard(m->q[i].argv[idx[k]].ptr, m->q[i].argv[idx[k]].len)] = 1;
    }
    c->argc = sargc, c->argv = sargv;
    int k = 0;
    for (int sh = 0; sh < n; sh++) if (all || used[sh]) out[k++] = sh;
    return k;
}

static void exec_cmd(kv_client_t *c)
{
    kv_multi_t *m = c->multi;
    if (!m || !m->active) {
        kv_reply_error_cstr(&c->out, "EXEC without MULTI");
        return;
    }
    if (m->dirty) {
        clear_queue(m);
        unwatch_all(c);
        kv_reply_error_cstr(&c->out, "-EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    int shards[KV_SHARDS_MAX], nsh = tx_shards(c, m, shards);
    if (nsh > 1) {                      /* under the shards' locks */
        kv_multi_exec_cross(c, m, shards, nsh);
        return;
    }
    int shard = nsh ? shards[0] : kv_fwd_self();
    /* kevy.exec id nwatch wkey... ncmds (argc arg...)... */
    int argc = 4 + m->nw;
    for (int i = 0; i < m->nq; i++) argc += 1 + m->q[i].argc;
    kv_resp_arg *argv = malloc(sizeof(*argv) * (size_t) argc);
    char (*nums)[24] = malloc(24 * (size_t) (3 + m->nq));
    if (!argv || !nums) abort();
    int a = 0, nn = 0;
    argv[a++] = (kv_resp_arg) { "kevy.exec", 9 };
    snprintf(nums[nn], 24, "%llu", (unsigned long long) c->id), argv[a++] = (kv_resp_arg) { nums[nn], strlen(nums[nn]) }, nn++;
    snprintf(nums[nn], 24, "%d", m->nw), argv[a++] = (kv_resp_arg) { nums[nn], strlen(nums[nn]) }, nn++;
    for (int i = 0; i < m->nw; i++) argv[a++] = (kv_resp_arg) { m->w[i].key, m->w[i].len };
    snprintf(nums[nn], 24, "%d", m->nq), argv[a++] = (kv_resp_arg) { nums[nn], strlen(nums[nn]) }, nn++;
    for (int i = 0; i < m->nq; i++) {
        snprintf(nums[nn], 24, "%d", m->q[i].argc);
        argv[a++] = (kv_resp_arg) { nums[nn], strlen(nums[nn]) }, nn++;
        for (int j = 0; j < m->q[i].argc; j++) argv[a++] = m->q[i].argv[j];
    }
    kv_slot_t *s = kv_fwd_slot(c, 1, NULL);
    kv_fwd_part(s, 0, shard, kv_multi_internal("kevy.exec"), a, argv);
    free(argv);
    free(nums);
    clear_queue(m);
    /* kevy.exec removed the watches on its shard: forget them here. */
    for (int i = 0; i < m->nw; i++) free(m->w[i].key);
    m->nw = 0;
}

void kv_multi_reset(kv_client_t *c)
{
    if (!c->multi) return;
    clear_queue(c->multi);
    unwatch_all(c);
}

int kv_multi_running(const kv_client_t *c) { return c->multi && kv_multi_cross_running(c->multi); }

void kv_multi_client_gone(kv_client_t *c)
{
    if (!c->multi) return;
    kv_multi_cross_gone(c->multi);
    kv_multi_reset(c);
    free(c->multi->q);
    free(c->multi->w);
    free(c->multi);
    c->multi = NULL;
}

/* ---- the shard side ------------------------------------------------------------------------ */

static int parse_int(const kv_resp_arg *a, long long *v)
{
    char buf[24];
    if (a->len == 0 || a->len >= sizeof(buf)) return -1;
    memcpy(buf, a->ptr, a->len);
    buf[a->len] = '\0';
    char *end;
    *v = strtoll(buf, &end, 10);
    return *end ? -1 : 0;
}

static void kwatch_cmd(kv_client_t *c)
{
    long long id;
    if (parse_int(&c->argv[1], &id) != 0) {
        kv_reply_error_cstr(&c->out, "bad client id");
        return;
    }
    for (int i = 2; i < c->argc; i++) {
        /* An expired key goes now, so its expiry is not a later change. */
        kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH);
        kv_watch_add(c->db, c->argv[i].ptr, c->argv[i].len, (uint64_t) id);
    }
    kv_reply_ok(&c->out);
}

static void kunwatch_cmd(kv_client_t *c)
{
    long long id;
    if (parse_int(&c->argv[1], &id) != 0) {
        kv_reply_error_cstr(&c->out, "bad client id");
        return;
    }
    for (int i = 2; i < c->argc; i++) kv_watch_remove(c->db, c->argv[i].ptr, c->argv[i].len, (uint64_t) id);
    kv_reply_ok(&c->out);
}

/* kevy.wcheck id key...: was any of id's watched keys here touched? The
 * watches go (a cross-shard EXEC checks them under its locks). */
static void kwcheck_cmd(kv_client_t *c)
{
    long long id;
    int touched = 0;
    if (parse_int(&c->argv[1], &id) != 0) {
        kv_reply_error_cstr(&c->out, "bad client id");
        return;
    }
    for (int i = 2; i < c->argc; i++) touched |= kv_watch_remove(c->db, c->argv[i].ptr, c->argv[i].len, (uint64_t) id);
    kv_reply_int(&c->out, touched);
}

static void kexec_cmd(kv_client_t *c)
{
    long long id, nw, nq, argc;
    int a = 2, touched = 0, total = c->argc;
    kv_resp_arg *all = c->argv;
    if (parse_int(&all[1], &id) || parse_int(&all[a++], &nw) || nw < 0 || a + nw >= total) {
        kv_reply_error_cstr(&c->out, "malformed transaction");
        return;
    }
    for (long long i = 0; i < nw; i++, a++) touched |= kv_watch_remove(c->db, all[a].ptr, all[a].len, (uint64_t) id);
    if (parse_int(&all[a++], &nq) || nq < 0) {
        kv_reply_error_cstr(&c->out, "malformed transaction");
        return;
    }
    if (touched) {
        kv_reply_null_array(&c->out);
        return;
    }
    /* Two writes or more: logged between MULTI and EXEC, so a replay
     * after a crash runs all of them or none (aof_load.c). */
    int writes = 0;
    for (long long i = 0, b = a; i < nq && b < total; i++) {
        if (parse_int(&all[b++], &argc) || argc < 1 || b + argc > total) break;
        const kv_cmd_t *cmd = kv_cmd_lookup(all[b].ptr, all[b].len);
        writes += cmd && (cmd->flags & KV_CMD_WRITE);
        b += (int) argc;
    }
    kv_resp_arg marker = { "MULTI", 5 };
    if (writes > 1) kv_fwd_propagate_raw(c, 1, &marker);
    kv_reply_array(&c->out, nq);
    for (long long i = 0; i < nq; i++) {
        if (a >= total || parse_int(&all[a++], &argc) || argc < 1 || a + argc > total) break;
        const kv_cmd_t *cmd = kv_cmd_lookup(all[a].ptr, all[a].len);
        c->argc = (int) argc, c->argv = all + a;
        kv_fwd_call(c, cmd);
        a += (int) argc;
    }
    c->argc = total, c->argv = all;
    marker = (kv_resp_arg) { "EXEC", 4 };
    if (writes > 1) kv_fwd_propagate_raw(c, 1, &marker);
}

const kv_cmd_t kv_multi_cmds[] = {
    { "discard", 1, KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, KV_ROUTE_LOCAL, discard_cmd,
      "transactions", "2.0.0", "Discards a transaction." },
    { "exec", 1, KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, KV_ROUTE_LOCAL, exec_cmd, "transactions", "1.2.0",
      "Executes all commands in a transaction." },
    { "multi", 1, KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, KV_ROUTE_LOCAL, multi_cmd,
      "transactions", "1.2.0", "Starts a transaction." },
    { "unwatch", 1, KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, KV_ROUTE_LOCAL, unwatch_cmd,
      "transactions", "2.2.0", "Forgets about all watched keys." },
    { "watch", -2, KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE, 1, -1, 1, KV_ROUTE_LOCAL, watch_cmd,
      "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction." },
    { NULL },
};

const kv_cmd_t kv_multi_internal_cmds[] = {
    { "kevy.watch", -3, 0, 2, -1, 1, KV_ROUTE_KEY, kwatch_cmd, "internal", "0.1.0", "Registers watches." },
    { "kevy.unwatch", -3, 0, 2, -1, 1, KV_ROUTE_KEY, kunwatch_cmd, "internal", "0.1.0", "Removes watches." },
    { "kevy.wcheck", -3, 0, 2, -1, 1, KV_ROUTE_KEY, kwcheck_cmd, "internal", "0.1.0", "Checks and removes watches." },
    { "kevy.exec", -4, 0, 0, 0, 0, KV_ROUTE_LOCAL, kexec_cmd, "internal", "0.1.0", "Runs a transaction." },
    { NULL },
};
