/*
 * EXEC of a transaction whose keys (or watched keys) live on several
 * shards (docs/transactions.md).
 *
 *   1. lock every shard involved, in ascending order (lock.h);
 *   2. with watches: kevy.wcheck on their shards; one touched -> nil;
 *   3. the *N header, then each queued command routed as usual but under
 *      the lock (its requests run at once on the locked shards, everyone
 *      else's wait); a command that takes several rounds (a cross-shard
 *      RENAME, a STORE) is waited for before the next one is routed;
 *   4. every command routed (a multi-round one finished), the locks go:
 *      the UNLOCKs follow the requests on the same rings, so each shard
 *      runs its part first.
 *
 * Commands on one shard run in their queued order (one ring, FIFO);
 * commands on different shards touch different keys, so the result is
 * the one of running them back to back, and nobody sees it half done.
 *
 * The client's barrier is up from EXEC to the end, so its next commands
 * wait; kv_client_resume calls kv_multi_resume, which goes on. A client
 * that leaves once the commands began to run stays until the last one is
 * routed (conn.c), so a transaction is never left half run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/forward.h"
#include "shard/lock.h"
#include "shard/multi_int.h"
#include "shard/route.h"

struct kv_txrun_s {
    kv_lockop_t *op;
    uint64_t     id;            /* the client's, for its watches          */
    queued_t    *q;
    int          nq, next;
    watched_t   *w;
    int          nw;
    int          started;       /* every shard locked                     */
    int          checking;      /* the watch check is out                 */
    int          aborted;       /* a watched key changed                  */
    int          orphan;        /* the client left during the check       */
};

static void run_free(kv_txrun_t *r)
{
    for (int i = 0; i < r->nq; i++) free(r->q[i].argv);
    free(r->q);
    for (int i = 0; i < r->nw; i++) free(r->w[i].key);
    free(r->w);
    free(r);
}

static void unwatch_keys(kv_txrun_t *r)
{
    if (r->nw == 0) return;
    kv_resp_arg keys[r->nw];
    for (int i = 0; i < r->nw; i++) keys[i] = (kv_resp_arg) { r->w[i].key, r->w[i].len };
    kv_multi_per_shard(NULL, "kevy.unwatch", r->nw, keys, r->id);
}

static void finish(kv_client_t *c, kv_txrun_t *r)
{
    if (c && c->multi && c->multi->run == r) c->multi->run = NULL;
    kv_lock_unref(r->op);
    run_free(r);
}

/* Route the queued commands in order; 1 while one of them is still
 * running (a chain: its end resumes the client, then us). */
static int step(kv_client_t *c, kv_txrun_t *r)
{
    while (r->next < r->nq && !r->aborted) {
        queued_t *q = &r->q[r->next++];
        const kv_cmd_t *cmd = kv_cmd_lookup(q->argv[0].ptr, q->argv[0].len);
        c->argc = q->argc, c->argv = q->argv;
        c->barrier = 0;
        kv_fwd_under_lock(r->op);
        kv_fwd_dispatch(c, cmd);
        kv_fwd_under_lock(NULL);
        if (c->barrier) return 1;
    }
    finish(c, r);
    c->barrier = 0;
    return 0;
}

typedef struct { kv_txrun_t *r; } box_t;

/* The watch check's parts are in: nil, or the header of the replies. */
static void wcheck_combine(kv_slot_t *s)
{
    kv_txrun_t *r = ((box_t *) s->cdata)->r;
    for (int i = 0; i < s->nparts; i++) {
        size_t len;
        char *flat = kv_gather_flatten(&s->parts[i], &len);
        if (len < 2 || flat[0] != ':' || flat[1] != '0') r->aborted = 1;   /* touched, or its shard failed */
        free(flat);
    }
    if (r->aborted) kv_reply_null_array(&s->out);
    else kv_reply_array(&s->out, r->nq);
    r->checking = 0;
    if (r->orphan) finish(NULL, r);
}

static void check_watches(kv_client_t *c, kv_txrun_t *r)
{
    int used[KV_SHARDS_MAX] = { 0 }, nparts = 0, n = kv_route_nshards();
    for (int i = 0; i < r->nw; i++) if (!used[r->w[i].shard]++) nparts++;
    kv_fwd_under_lock(r->op);           /* its parts run under the lock */
    kv_slot_t *s = kv_fwd_slot(c, nparts, wcheck_combine);
    kv_fwd_under_lock(NULL);
    box_t *box = malloc(sizeof(*box));
    if (!box) abort();
    box->r = r;
    s->cdata = box;
    s->barrier = 1;                     /* its end resumes the client, then us */
    r->checking = 1;
    char idbuf[24];
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long) r->id);
    kv_resp_arg argv[r->nw + 2];
    for (int sh = 0, p = 0; sh < n; sh++) {
        if (!used[sh]) continue;
        int argc = 0;
        argv[argc++] = (kv_resp_arg) { "kevy.wcheck", 11 };
        argv[argc++] = (kv_resp_arg) { idbuf, strlen(idbuf) };
        for (int i = 0; i < r->nw; i++) if (r->w[i].shard == sh) argv[argc++] = (kv_resp_arg) { r->w[i].key, r->w[i].len };
        kv_fwd_part(s, p++, sh, kv_multi_internal("kevy.wcheck"), argc, argv);
    }
}

static void locked(kv_lockop_t *op, int failed, void *data)
{
    kv_txrun_t *r = data;
    kv_client_t *c = kv_lock_client(op);
    r->op = op;
    if (!c || failed >= 0) {
        unwatch_keys(r);
        if (c) {
            char msg[96];
            kv_fwd_reply_raw(c, msg, kv_fwd_loading_msg(msg, sizeof(msg), failed));
        }
        finish(c, r);
        if (c) kv_client_resume(c);
        return;
    }
    r->started = 1;
    if (r->nw > 0) {
        check_watches(c, r);
        return;
    }
    char hdr[24];
    int n = snprintf(hdr, sizeof(hdr), "*%d\r\n", r->nq);
    kv_fwd_reply_raw(c, hdr, (size_t) n);
    if (!step(c, r)) kv_client_resume(c);
}

int kv_multi_resume(kv_client_t *c)
{
    kv_txrun_t *r = c->multi->run;
    if (!r) return 0;
    if (!r->started || r->checking) {   /* not ours to go on with yet */
        c->barrier = 1;
        return 1;
    }
    return step(c, r);
}

void kv_multi_exec_cross(kv_client_t *c, kv_multi_t *m, const int *shards, int n)
{
    kv_txrun_t *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->id = c->id;
    r->q = m->q, r->nq = m->nq;
    r->w = m->w, r->nw = m->nw;
    m->q = NULL, m->nq = m->qcap = 0;
    m->w = NULL, m->nw = m->wcap = 0;
    m->active = m->dirty = 0;
    m->run = r;
    c->barrier = 1;
    kv_lock_acquire(shards, n, c, locked, r);
}

/* Once the commands run, the client's teardown waits (conn.c), so the
 * rest of the transaction is routed even though nobody reads the replies;
 * before that, leaving costs nothing: no command of it has run. */
int kv_multi_cross_running(const kv_multi_t *m) { return m->run && m->run->started && !m->run->checking; }

void kv_multi_cross_gone(kv_multi_t *m)
{
    kv_txrun_t *r = m->run;
    if (!r) return;
    m->run = NULL;
    if (!r->started) return;            /* the lock callback cleans up */
    if (r->checking) {                  /* the check's combine does */
        r->orphan = 1;
        return;
    }
    finish(NULL, r);                    /* not reached: see kv_multi_cross_running */
}
