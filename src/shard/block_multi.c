/*
 * Blocking commands over keys of several shards (docs/blocking.md).
 *
 * The client's worker coordinates; no shard pops anything on its own:
 *
 *   attempt   lock the shards of the keys (lock.h) and probe them with the
 *             non-blocking form, in the order Redis looks: BLPOP a b c asks
 *             "BLPOP a 0" on a's shard, then b's... (runs of keys on one
 *             shard in one probe); XREAD asks every shard at once and
 *             merges; BLMOVE checks dst's type, pops src, pushes dst.
 *             Something found: that is the reply. Nothing: register with
 *             every shard (kevy.bwait), then release the locks.
 *   wait      a write to one of the keys makes its shard send BREADY and
 *             drop our registration; we drop the others' (kevy.bunwait)
 *             and attempt again. Timeout, CLIENT UNBLOCK, disconnect: the
 *             same drop, and the timeout reply (or -UNBLOCKED, or none).
 *
 * Probes run under the locks, so each element goes to exactly one client.
 * A waiter whose keys are all on one shard waits on that shard (block.c),
 * in a strict FIFO; the ones here are served after them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shard/block.h"
#include "shard/block_multi.h"
#include "shard/db.h"
#include "shard/forward.h"
#include "shard/lock.h"
#include "shard/route.h"
#include "shard/stream_cmd.h"

typedef enum { K_FIRST, K_MPOP, K_XREAD, K_MOVE } kind_e;
typedef enum { S_ATTEMPT, S_WAITING } state_e;

typedef struct mwait_s {
    struct mwait_s *next;
    uint64_t        wid;
    kind_e          kind;
    state_e         state;
    kv_slot_t      *slot;           /* the client's, answered at the end   */
    const kv_cmd_t *cmd;
    int             argc;
    char          **args;           /* own copies ($ is rewritten)         */
    size_t         *lens;
    int             kfirst, nkeys;  /* keys: args[kfirst .. kfirst+nkeys)  */
    int             probe;          /* K_FIRST/K_MPOP: next key index;
                                       K_MOVE: step                        */
    int             retry;          /* woken: a key of another type now is
                                       no error, the waiter keeps waiting  */
    uint8_t         regs[KV_SHARDS_MAX];    /* shards we registered with   */
    kv_lockop_t    *op;             /* held during an attempt              */
    uv_timer_t      timer;
    int             has_timer;
    int             end_mode;       /* -1, or a KV_UNBLOCK_* asked meanwhile */
    char           *elem;           /* K_MOVE: the element popped          */
    size_t          elen;
} mwait_t;

static mwait_t *waits;
static uint64_t next_wid = 1;

static const kv_cmd_t *cmd_named(const char *name) { return kv_cmd_lookup_any(name, strlen(name)); }
static int arg_is(const mwait_t *w, int i, const char *s)
{
    return w->lens[i] == strlen(s) && !strncasecmp(w->args[i], s, w->lens[i]);
}
static int shard_of(const mwait_t *w, int i) { return kv_route_shard(w->args[i], w->lens[i]); }

/* ---- ending ----------------------------------------------------------------- */

static void wait_free(mwait_t *w)
{
    for (int i = 0; i < w->argc; i++) free(w->args[i]);
    free(w->args);
    free(w->lens);
    free(w->elem);
    free(w);
}

static void timer_closed(uv_handle_t *h) { wait_free(h->data); }

static void unregister(mwait_t *w)
{
    char from[16], wid[24];
    snprintf(from, sizeof(from), "%d", kv_fwd_self());
    snprintf(wid, sizeof(wid), "%llu", (unsigned long long) w->wid);
    kv_resp_arg argv[3] = { { "kevy.bunwait", 12 }, { from, strlen(from) }, { wid, strlen(wid) } };
    for (int sh = 0; sh < kv_route_nshards(); sh++) {
        if (!w->regs[sh]) continue;
        w->regs[sh] = 0;
        kv_slot_t *s = kv_fwd_detached(1, NULL);    /* nobody waits for it */
        kv_fwd_part(s, 0, sh, cmd_named("kevy.bunwait"), 3, argv);
    }
}

/* Answer the client (reply: RESP bytes; NULL answers nothing but frees the
 * slot) and forget the waiter. */
static void finish(mwait_t *w, const char *reply, size_t len)
{
    unregister(w);
    mwait_t **pp = &waits;
    while (*pp && *pp != w) pp = &(*pp)->next;
    if (*pp) *pp = w->next;
    kv_reply_buf b;
    kv_reply_buf_init(&b);
    if (reply) kv_reply_raw(&b, reply, len);
    kv_fwd_target t = { kv_fwd_self(), 0, w->slot, 0 };
    kv_fwd_answer(&t, &b);
    kv_reply_buf_free(&b);
    if (w->op) kv_lock_unref(w->op);
    w->op = NULL;
    if (w->has_timer) uv_close((uv_handle_t *) &w->timer, timer_closed);
    else wait_free(w);
}

/* What Redis 7.0 answers at a timeout, BLMOVE included. */
static void finish_timeout(mwait_t *w) { finish(w, "*-1\r\n", 5); }

static void finish_mode(mwait_t *w, int mode)
{
    static const char unblocked[] = "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";
    if (mode == KV_UNBLOCK_ERROR) finish(w, unblocked, sizeof(unblocked) - 1);
    else if (mode == KV_UNBLOCK_TIMEOUT) finish_timeout(w);
    else finish(w, NULL, 0);
}

/* ---- attempts ------------------------------------------------------------------- */

static void attempt(mwait_t *w);
static void register_all(mwait_t *w);

static int is_null(const char *r, size_t len) { return len >= 3 && (r[0] == '*' || r[0] == '$') && r[1] == '-'; }

typedef struct { mwait_t *w; } box_t;

/* A detached slot of n parts under w's lock, whose combine gets w. */
static kv_slot_t *probe_slot(mwait_t *w, int nparts, kv_gather_fn *done)
{
    kv_lockop_t *prev = kv_fwd_under_lock(w->op);
    kv_slot_t *s = kv_fwd_detached(nparts, done);
    kv_fwd_under_lock(prev);
    box_t *box = malloc(sizeof(*box));
    if (!box) abort();
    box->w = w;
    s->cdata = box;
    return s;
}

static void send_part(mwait_t *w, kv_slot_t *s, int part, int shard, const char *name, int argc, kv_resp_arg *argv)
{
    kv_lockop_t *prev = kv_fwd_under_lock(w->op);
    kv_fwd_part(s, part, shard, cmd_named(name), argc, argv);
    kv_fwd_under_lock(prev);
}

static void probe_done(kv_slot_t *s);

/* BLPOP-like: the next run of keys on one shard, without blocking. */
static void probe_next(mwait_t *w)
{
    if (w->probe >= w->nkeys) {
        register_all(w);
        return;
    }
    int first = w->kfirst + w->probe, sh = shard_of(w, first), n = 1;
    while (w->probe + n < w->nkeys && shard_of(w, first + n) == sh) n++;
    w->probe += n;
    kv_resp_arg argv[w->argc + 1];
    int argc = 0;
    char nbuf[16];
    argv[argc++] = (kv_resp_arg) { w->args[0], w->lens[0] };
    if (w->kind == K_MPOP) {            /* name timeout numkeys keys... rest */
        snprintf(nbuf, sizeof(nbuf), "%d", n);
        argv[argc++] = (kv_resp_arg) { "0", 1 };
        argv[argc++] = (kv_resp_arg) { nbuf, strlen(nbuf) };
    }
    for (int i = 0; i < n; i++) argv[argc++] = (kv_resp_arg) { w->args[first + i], w->lens[first + i] };
    if (w->kind == K_MPOP)
        for (int i = w->kfirst + w->nkeys; i < w->argc; i++) argv[argc++] = (kv_resp_arg) { w->args[i], w->lens[i] };
    else argv[argc++] = (kv_resp_arg) { "0", 1 };
    kv_slot_t *s = probe_slot(w, 1, probe_done);
    send_part(w, s, 0, sh, w->cmd->name, argc, argv);
}

/* XREAD/XREADGROUP: every shard at once, its streams and their ids. */
static void probe_streams(mwait_t *w)
{
    int used[KV_SHARDS_MAX] = { 0 }, nparts = 0, n = kv_route_nshards();
    for (int i = 0; i < w->nkeys; i++) if (!used[shard_of(w, w->kfirst + i)]++) nparts++;
    kv_slot_t *s = probe_slot(w, nparts, probe_done);
    kv_resp_arg argv[w->argc + 1];
    for (int sh = 0, p = 0; sh < n; sh++) {
        if (!used[sh]) continue;
        int argc = 0;
        for (int i = 0; i < w->kfirst; i++) {
            if (arg_is(w, i, "block")) { i++; continue; }     /* probes never block */
            argv[argc++] = (kv_resp_arg) { w->args[i], w->lens[i] };
        }
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < w->nkeys; i++)
                if (shard_of(w, w->kfirst + i) == sh) {
                    int a = w->kfirst + i + pass * w->nkeys;
                    argv[argc++] = (kv_resp_arg) { w->args[a], w->lens[a] };
                }
        send_part(w, s, p++, sh, w->cmd->name, argc, argv);
    }
}

/* BLMOVE/BRPOPLPUSH, as Redis orders its checks: 0 LLEN src (missing:
 * wait; another type: WRONGTYPE), 1 TYPE dst (another type: WRONGTYPE),
 * 2 pop src, 3 push dst, then the element is the reply. */
static void probe_move(mwait_t *w, const char *elem, size_t elen)
{
    int lmove = w->cmd->name[1] == 'l';         /* blmove / brpoplpush */
    static const char *fixed[] = { "llen", "type" };
    kv_resp_arg argv[3];
    const char *name;
    int key;
    if (w->probe < 2) name = fixed[w->probe], key = w->probe == 0 ? 1 : 2;
    else if (w->probe == 2) name = lmove && arg_is(w, 3, "left") ? "lpop" : "rpop", key = 1;
    else name = !lmove || arg_is(w, 4, "left") ? "lpush" : "rpush", key = 2;
    argv[0] = (kv_resp_arg) { name, strlen(name) };
    argv[1] = (kv_resp_arg) { w->args[key], w->lens[key] };
    argv[2] = (kv_resp_arg) { elem, elen };
    kv_slot_t *s = probe_slot(w, 1, probe_done);
    send_part(w, s, 0, shard_of(w, key), name, w->probe == 3 ? 3 : 2, argv);
}

static void move_step(mwait_t *w, const char *r, size_t len)
{
    static const char wt[] = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    switch (w->probe) {
    case 0:                             /* src's length */
        if (r[0] == '-' && w->retry) {  /* another type now: keep waiting */
            register_all(w);
            return;
        }
        if (r[0] == '-') {
            finish(w, r, len);
            return;
        }
        if (!strcmp(r, ":0\r\n")) {
            register_all(w);
            return;
        }
        break;
    case 1:                             /* dst's type */
        if (strcmp(r, "+none\r\n") && strcmp(r, "+list\r\n")) {
            finish(w, wt, sizeof(wt) - 1);
            return;
        }
        break;
    case 2: {                           /* popped (src is a non-empty list) */
        const char *nl = memchr(r, '\n', len);
        w->elen = (size_t) strtoull(r + 1, NULL, 10);
        if (r[0] != '$' || !nl || (size_t) (r + len - nl - 1) < w->elen) {
            finish(w, r, len);
            return;
        }
        w->elem = malloc(w->elen + 1);
        if (!w->elem) abort();
        memcpy(w->elem, nl + 1, w->elen);
        break;
    }
    default: {                          /* pushed: the element is the reply */
        kv_reply_buf b;
        kv_reply_buf_init(&b);
        kv_reply_bulk(&b, w->elem, w->elen);
        size_t n;
        char *flat = kv_gather_flatten(&b, &n);
        finish(w, flat, n);
        free(flat);
        kv_reply_buf_free(&b);
        return;
    }
    }
    w->probe++;
    probe_move(w, w->elem, w->elen);
}

/* Merge XREAD parts: the non-nil streams, in the order of the keys. */
static void merge_streams(mwait_t *w, kv_slot_t *s, char **flat, size_t *len, kv_reply_buf *out)
{
    const char *elems[w->nkeys], *ends[w->nkeys];
    int found = 0;
    for (int i = 0; i < w->nkeys; i++) elems[i] = NULL;
    for (int p = 0; p < s->nparts; p++) {
        if (is_null(flat[p], len[p]) || flat[p][0] != '*') continue;
        const char *end = flat[p] + len[p], *q = memchr(flat[p], '\n', len[p]);
        long long n = strtoll(flat[p] + 1, NULL, 10);
        for (q = q ? q + 1 : end; n-- > 0 && q < end;) {
            const char *e = kv_gather_elem_end(q, end);
            /* *2 $len key ...: find which key it is */
            const char *k = memchr(q, '\n', (size_t) (e - q));
            k = k ? memchr(k + 1, '\n', (size_t) (e - k - 1)) : NULL;
            size_t klen = k ? (size_t) strtoull(memchr(q, '\n', (size_t) (e - q)) + 2, NULL, 10) : 0;
            for (int i = 0; k && i < w->nkeys; i++)
                if (!elems[i] && w->lens[w->kfirst + i] == klen && !memcmp(k + 1, w->args[w->kfirst + i], klen)) {
                    elems[i] = q, ends[i] = e, found++;
                    break;
                }
            q = e;
        }
    }
    if (!found) return;
    kv_reply_array(out, found);
    for (int i = 0; i < w->nkeys; i++) if (elems[i]) kv_reply_raw(out, elems[i], (size_t) (ends[i] - elems[i]));
}

/*
 * A woken XREADGROUP whose stream or group is gone answers as Redis's
 * unblockDeletedStreamReadgroupClients: -UNBLOCKED when a stream key no
 * longer is one, -NOGROUP when only the group went. The probe's own error
 * says neither, so the keys' types are asked, still under the locks.
 */
static int is_group_gone(const mwait_t *w, const char *r, size_t len)
{
    return w->kind == K_XREAD && w->kfirst > 1 && arg_is(w, 1, "group")
        && ((len > 8 && !memcmp(r, "-NOGROUP", 8)) || (len > 10 && !memcmp(r, "-WRONGTYPE", 10)));
}

static void group_keys_done(kv_slot_t *s)
{
    static const char key_gone[] = "-UNBLOCKED the stream key no longer exists\r\n",
                      group_gone[] = "-NOGROUP the consumer group this client was blocked on no longer exists\r\n";
    mwait_t *w = ((box_t *) s->cdata)->w;
    int streams = 1;
    for (int i = 0; i < s->nparts; i++) {
        size_t len;
        char *r = kv_gather_flatten(&s->parts[i], &len);
        streams &= len == 9 && !memcmp(r, "+stream\r\n", 9);
        free(r);
    }
    if (streams) finish(w, group_gone, sizeof(group_gone) - 1);
    else finish(w, key_gone, sizeof(key_gone) - 1);
}

static void probe_group_keys(mwait_t *w)
{
    kv_slot_t *s = probe_slot(w, w->nkeys, group_keys_done);
    for (int i = 0; i < w->nkeys; i++) {
        kv_resp_arg argv[2] = { { "type", 4 }, { w->args[w->kfirst + i], w->lens[w->kfirst + i] } };
        send_part(w, s, i, shard_of(w, w->kfirst + i), "type", 2, argv);
    }
}

static void probe_done(kv_slot_t *s)
{
    mwait_t *w = ((box_t *) s->cdata)->w;
    char *flat[s->nparts];
    size_t len[s->nparts];
    for (int i = 0; i < s->nparts; i++) flat[i] = kv_gather_flatten(&s->parts[i], &len[i]);
    int err = -1;
    for (int i = 0; i < s->nparts; i++) if (len[i] && flat[i][0] == '-' && err < 0) err = i;
    if (w->kind == K_MOVE) {
        move_step(w, flat[0], len[0]);
    } else if (err >= 0 && w->retry && !strncmp(flat[err], "-WRONGTYPE", 10) && w->kind != K_XREAD) {
        probe_next(w);                  /* another type now: as empty */
    } else if (err >= 0 && w->retry && is_group_gone(w, flat[err], len[err])) {
        probe_group_keys(w);            /* which one went: the key or its group */
    } else if (err >= 0) {
        finish(w, flat[err], len[err]);
    } else if (w->kind == K_XREAD) {
        kv_reply_buf b;
        kv_reply_buf_init(&b);
        merge_streams(w, s, flat, len, &b);
        if (kv_reply_buf_len(&b)) {
            size_t n;
            char *r = kv_gather_flatten(&b, &n);
            finish(w, r, n);
            free(r);
        } else {
            register_all(w);
        }
        kv_reply_buf_free(&b);
    } else if (is_null(flat[0], len[0])) {
        probe_next(w);
    } else {
        finish(w, flat[0], len[0]);
    }
    for (int i = 0; i < s->nparts; i++) free(flat[i]);
}

/* Nothing to take: register with every shard of the keys (still under
 * the locks, so no write can slip in between), then release them. */
static void registered(kv_slot_t *s)
{
    mwait_t *w = ((box_t *) s->cdata)->w;
    /* XREAD's $: the ids the streams had when we started to wait. */
    for (int p = 0; p < s->nparts && w->kind == K_XREAD; p++) {
        size_t len;
        char *flat = kv_gather_flatten(&s->parts[p], &len);
        const char *q = memchr(flat, '\n', len), *end = flat + len;
        while (q && q + 1 < end && q[1] == '$') {      /* $klen key $idlen id pairs */
            const char *key = memchr(q + 1, '\n', (size_t) (end - q - 1)) + 1;
            size_t klen = (size_t) strtoull(q + 2, NULL, 10);
            const char *idh = key + klen + 2, *id = memchr(idh, '\n', (size_t) (end - idh)) + 1;
            size_t idlen = (size_t) strtoull(idh + 1, NULL, 10);
            for (int i = 0; i < w->nkeys; i++) {
                int k = w->kfirst + i, a = k + w->nkeys;
                if (w->lens[k] != klen || memcmp(w->args[k], key, klen) || !arg_is(w, a, "$")) continue;
                free(w->args[a]);
                w->args[a] = malloc(idlen + 1);
                if (!w->args[a]) abort();
                memcpy(w->args[a], id, idlen);
                w->lens[a] = idlen;
            }
            q = id + idlen + 1;
        }
        free(flat);
    }
    w->state = S_WAITING;
    kv_lockop_t *op = w->op;            /* the locks go once this slot is done */
    w->op = NULL;
    kv_lock_unref(op);
    if (w->end_mode >= 0) finish_mode(w, w->end_mode);
}

static void register_all(mwait_t *w)
{
    if (w->end_mode >= 0) {             /* timed out or cancelled meanwhile */
        finish_mode(w, w->end_mode);
        return;
    }
    int used[KV_SHARDS_MAX] = { 0 }, nparts = 0, n = kv_route_nshards();
    int first = w->kind == K_MOVE ? 1 : w->kfirst, nkeys = w->kind == K_MOVE ? 1 : w->nkeys;
    for (int i = 0; i < nkeys; i++) if (!used[shard_of(w, first + i)]++) nparts++;
    kv_slot_t *s = probe_slot(w, nparts, registered);
    char from[16], wid[24];
    snprintf(from, sizeof(from), "%d", kv_fwd_self());
    snprintf(wid, sizeof(wid), "%llu", (unsigned long long) w->wid);
    kv_resp_arg argv[nkeys + 3];
    for (int sh = 0, p = 0; sh < n; sh++) {
        if (!used[sh]) continue;
        int argc = 0;
        argv[argc++] = (kv_resp_arg) { "kevy.bwait", 10 };
        argv[argc++] = (kv_resp_arg) { from, strlen(from) };
        argv[argc++] = (kv_resp_arg) { wid, strlen(wid) };
        for (int i = 0; i < nkeys; i++)
            if (shard_of(w, first + i) == sh) argv[argc++] = (kv_resp_arg) { w->args[first + i], w->lens[first + i] };
        w->regs[sh] = 1;
        send_part(w, s, p++, sh, "kevy.bwait", argc, argv);
    }
}

static void locked(kv_lockop_t *op, int failed, void *data)
{
    mwait_t *w = data;
    w->op = op;
    if (failed >= 0) {
        char msg[96];
        finish(w, msg, kv_fwd_loading_msg(msg, sizeof(msg), failed));
        return;
    }
    if (w->end_mode >= 0 || !w->slot->client) {
        finish_mode(w, w->end_mode >= 0 ? w->end_mode : KV_UNBLOCK_GONE);
        return;
    }
    w->probe = 0;
    if (w->kind == K_XREAD) probe_streams(w);
    else if (w->kind == K_MOVE) probe_move(w, NULL, 0);
    else probe_next(w);
}

static void attempt(mwait_t *w)
{
    int shards[w->nkeys + 1], n = 0;
    if (w->kind == K_MOVE) shards[n++] = shard_of(w, 1), shards[n++] = shard_of(w, 2);
    else for (int i = 0; i < w->nkeys; i++) shards[n++] = shard_of(w, w->kfirst + i);
    w->state = S_ATTEMPT;
    kv_lock_acquire(shards, n, w->slot->client, locked, w);
}

static void timer_cb(uv_timer_t *t)
{
    mwait_t *w = t->data;
    if (w->state == S_WAITING) finish_timeout(w);
    else w->end_mode = KV_UNBLOCK_TIMEOUT;     /* the attempt ends it */
}

/* ---- the coordinator's entry points ----------------------------------------------- */

static int find_streams(const kv_client_t *c)
{
    for (int i = 1; i < c->argc; i++)
        if (c->argv[i].len == 7 && !strncasecmp(c->argv[i].ptr, "streams", 7)) return i;
    return -1;
}

/* The timeout in ms (0: none), parsed as Redis does (block.c); -1 after
 * answering its error. */
static long long parse_timeout(kv_client_t *c, kind_e kind)
{
    int at = kind == K_MPOP ? 1 : c->argc - 1;
    if (kind == K_XREAD) {
        at = -1;
        for (int i = 1; i + 1 < c->argc; i++)
            if (c->argv[i].len == 5 && !strncasecmp(c->argv[i].ptr, "block", 5)) at = i + 1;
        if (at < 0) return 0;
    }
    long long ms = 0;
    kv_slot_t *held = kv_fwd_hold(c);   /* its error in c's reply order */
    int ok = kv_block_timeout(c, at, kind != K_XREAD, &ms);
    kv_fwd_release(c, held);
    return ok ? ms : -1;
}

void kv_bmulti_start(kv_client_t *c, const kv_cmd_t *cmd)
{
    const char *name = cmd->name;
    kind_e kind = !strcmp(name, "blmove") || !strcmp(name, "brpoplpush") ? K_MOVE
                : !strcmp(name, "blmpop") || !strcmp(name, "bzmpop")    ? K_MPOP
                : name[0] == 'x'                                        ? K_XREAD
                                                                        : K_FIRST;
    long long ms = parse_timeout(c, kind);
    if (ms < 0) return;
    mwait_t *w = calloc(1, sizeof(*w));
    if (!w) abort();
    w->wid = next_wid++;
    w->kind = kind, w->cmd = cmd, w->argc = c->argc;
    w->end_mode = -1;
    w->args = malloc(sizeof(char *) * (size_t) c->argc);
    w->lens = malloc(sizeof(size_t) * (size_t) c->argc);
    if (!w->args || !w->lens) abort();
    for (int i = 0; i < c->argc; i++) {
        w->args[i] = malloc(c->argv[i].len + 1);
        if (!w->args[i]) abort();
        memcpy(w->args[i], c->argv[i].ptr, c->argv[i].len);
        w->args[i][c->argv[i].len] = '\0';
        w->lens[i] = c->argv[i].len;
    }
    if (kind == K_FIRST) w->kfirst = 1, w->nkeys = c->argc - 2;
    else if (kind == K_MPOP) w->kfirst = 3, w->nkeys = (int) strtol(w->args[2], NULL, 10);
    else if (kind == K_MOVE) w->kfirst = 1, w->nkeys = 2;
    else {
        int st = find_streams(c);
        w->kfirst = st + 1, w->nkeys = (c->argc - st - 1) / 2;
    }
    w->slot = kv_fwd_blocking_slot(c);
    w->next = waits;
    waits = w;
    if (ms > 0) {
        uv_timer_init(kv_fwd_server()->loop, &w->timer);
        w->timer.data = w;
        w->has_timer = 1;
        uv_timer_start(&w->timer, timer_cb, (uint64_t) ms, 0);
    }
    attempt(w);
}

int kv_bmulti_nwaits(void)
{
    int n = 0;
    for (mwait_t *w = waits; w; w = w->next) n++;
    return n;
}

int kv_bmulti_cancel(kv_slot_t *s, int mode)
{
    for (mwait_t *w = waits; w; w = w->next) {
        if (w->slot != s) continue;
        if (w->state == S_WAITING) finish_mode(w, mode);
        else w->end_mode = mode;        /* the attempt ends it */
        return 1;
    }
    return 0;
}

void kv_bmulti_ready(uint64_t wid)
{
    for (mwait_t *w = waits; w; w = w->next) {
        if (w->wid != wid || w->state != S_WAITING) continue;
        unregister(w);
        w->retry = 1;
        attempt(w);
        return;
    }
}

/* ---- the shard side: other workers' waiters on our keys --------------------------- */

typedef struct {
    char    *key;
    size_t   len;
    int      from;
    uint64_t wid;
} reg_t;

static reg_t *regs;
static int    nregs, capregs;

int kv_bmulti_nregs(void) { return nregs; }

static void drop_regs(int from, uint64_t wid, int any_wid)
{
    int k = 0;
    for (int i = 0; i < nregs; i++) {
        if (regs[i].from == from && (any_wid || regs[i].wid == wid)) free(regs[i].key);
        else regs[k++] = regs[i];
    }
    nregs = k;
}

static void notify(int from, uint64_t wid)
{
    if (from == kv_fwd_self()) kv_bmulti_ready(wid);
    else kv_fwd_send_bready(from, wid);
}

/* A write changed key: each waiter registered on it is told, once. */
void kv_bmulti_signal(const char *key, size_t len)
{
    for (int i = 0; i < nregs; i++) {
        if (regs[i].len != len || memcmp(regs[i].key, key, len)) continue;
        int from = regs[i].from;
        uint64_t wid = regs[i].wid;
        drop_regs(from, wid, 0);
        notify(from, wid);
        i = -1;                         /* the array changed: look again */
    }
}

/* FLUSHALL/FLUSHDB: every waiter registered here is told (notify may
 * register some anew: only the ones here now). */
void kv_bmulti_signal_flush(void)
{
    int n = nregs;
    if (n == 0) return;
    struct { int from; uint64_t wid; } *told = malloc(sizeof(*told) * (size_t) n);
    if (!told) abort();
    for (int i = 0; i < n; i++) told[i].from = regs[i].from, told[i].wid = regs[i].wid;
    for (int i = 0; i < n; i++) drop_regs(told[i].from, told[i].wid, 0);
    for (int i = 0; i < n; i++)
        if (i == 0 || told[i].from != told[i - 1].from || told[i].wid != told[i - 1].wid) notify(told[i].from, told[i].wid);
    free(told);
}

void kv_bmulti_peer_reset(int peer)
{
    drop_regs(peer, 0, 1);
    /* Our waiters registered there: try again (the attempt reports the
     * shard down if it still is). */
    for (mwait_t *w = waits, *next; w; w = next) {
        next = w->next;
        if (w->state == S_WAITING && w->regs[peer]) {
            w->regs[peer] = 0;
            unregister(w);
            attempt(w);
        }
    }
}

static int parse_ids(kv_client_t *c, int *from, uint64_t *wid)
{
    char buf[24];
    if (c->argv[1].len >= sizeof(buf) || c->argv[2].len >= sizeof(buf)) return -1;
    memcpy(buf, c->argv[1].ptr, c->argv[1].len), buf[c->argv[1].len] = '\0';
    *from = atoi(buf);
    memcpy(buf, c->argv[2].ptr, c->argv[2].len), buf[c->argv[2].len] = '\0';
    *wid = strtoull(buf, NULL, 10);
    return 0;
}

/* kevy.bwait from wid key...: register; the reply pairs each key with
 * its stream's last id, 0-0 when it has none (what XREAD's $ means). */
static void bwait_cmd(kv_client_t *c)
{
    int from;
    uint64_t wid;
    if (parse_ids(c, &from, &wid) != 0) {
        kv_reply_error_cstr(&c->out, "bad waiter");
        return;
    }
    char ids[c->argc][48];
    for (int i = 3; i < c->argc; i++) {
        if (nregs == capregs) {
            capregs = capregs ? capregs * 2 : 16;
            regs = realloc(regs, sizeof(reg_t) * (size_t) capregs);
            if (!regs) abort();
        }
        char *k = malloc(c->argv[i].len + 1);
        if (!k) abort();
        memcpy(k, c->argv[i].ptr, c->argv[i].len);
        regs[nregs++] = (reg_t) { k, c->argv[i].len, from, wid };
        kv_dict_entry *e = kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, KV_LOOKUP_NOTOUCH);
        strcpy(ids[i], "0-0");          /* no stream yet: $ is 0-0 */
        if (e && kv_db_obj(e)->type == KV_TYPE_STREAM) kv_sid_fmt(ids[i], &kv_stream_of(e)->last_id);
    }
    kv_reply_array(&c->out, 2 * (c->argc - 3));
    for (int i = 3; i < c->argc; i++) {
        kv_reply_bulk(&c->out, c->argv[i].ptr, c->argv[i].len);
        kv_reply_bulk(&c->out, ids[i], strlen(ids[i]));
    }
}

static void bunwait_cmd(kv_client_t *c)
{
    int from;
    uint64_t wid;
    if (parse_ids(c, &from, &wid) == 0) drop_regs(from, wid, 0);
    kv_reply_ok(&c->out);
}

const kv_cmd_t kv_block_multi_internal_cmds[] = {
    { "kevy.bwait", -4, 0, 3, -1, 1, KV_ROUTE_KEY, bwait_cmd, "internal", "0.1.0",
      "Registers another worker's waiter on keys here." },
    { "kevy.bunwait", 3, 0, 0, 0, 0, KV_ROUTE_LOCAL, bunwait_cmd, "internal", "0.1.0",
      "Drops a waiter's registrations." },
    { NULL },
};
