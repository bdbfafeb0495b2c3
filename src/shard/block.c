/*
 * Blocking commands, the shard side (block.h, docs/blocking.md).
 *
 * A waiter is a request whose reply forward.c let us keep (its target), a
 * private copy of its arguments and the keys it waits on. Each key with
 * waiters has a FIFO of them (Redis's db->blocking_keys); a write to the
 * key marks it ready (db->ready_keys), and kv_block_serve runs the
 * waiters' commands again, key by key in order of readiness, each key's
 * waiters oldest first: the first that answers gets the element. A re-run
 * cannot block: when it finds nothing the handler says so through
 * kv_block_wait and the waiter stays, its reply discarded.
 *
 * Re-entrancy: answering a local client may run its next pipelined
 * commands at once (forward.c resumes it), which may block, push or
 * cancel. So a waiter leaves every list before it is answered, and the
 * serve loop re-reads its FIFO whenever something was unlinked.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "shard/block.h"
#include "shard/db.h"
#include "shard/dict.h"
#include "shard/gather.h"
#include "shard/t_util.h"

typedef struct waiter_s waiter_t;
typedef struct bkey_s bkey_t;

typedef struct node_s {             /* one waiter in one key's FIFO       */
    waiter_t      *w;
    bkey_t        *k;
    struct node_s *prev, *next;
} node_t;

struct bkey_s {
    kv_dict_entry *e;               /* in B.keys: the key's bytes         */
    node_t        *head, *tail;
    bkey_t        *rnext;           /* the ready FIFO                     */
    unsigned       ready:1, busy:1; /* busy: being served, keep it        */
};

struct waiter_s {
    waiter_t       *prev, *next;    /* every waiter (peer reset)          */
    kv_fwd_target   t;
    kv_dict_entry  *te;             /* in B.targets                       */
    const kv_cmd_t *cmd;
    int             argc;
    kv_resp_arg    *argv;           /* copies; bytes follow the nodes     */
    int             nnodes;
    node_t         *nodes;
    uint64_t        seq, pass;
    unsigned        group:1, timed:1;
    uv_timer_t      timer;
};

static struct {
    kv_dict           *keys;        /* key -> bkey_t *                    */
    kv_dict           *targets;     /* (peer, token or slot) -> waiter_t * */
    waiter_t          *all;
    bkey_t            *ready_head, *ready_tail;
    int                nwaiting;
    uint64_t           seq, pass, unlinks;
    int                serving, rerun, would_block;
    kv_resp_arg        ready_key;
} B;

static const char TIMEOUT_REPLY[] = "*-1\r\n";
static const char UNBLOCKED_REPLY[] = "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";

int kv_block_nwaiting(void) { return B.nwaiting; }

const kv_resp_arg *kv_block_ready_key(void) { return B.rerun ? &B.ready_key : NULL; }

/* ---- timeouts ----------------------------------------------------------------- */

int kv_block_timeout(kv_client_t *c, int i, int seconds, long long *ms)
{
    const kv_resp_arg *a = &c->argv[i];
    long long tval;
    if (seconds) {
        long double v;
        if (!kv_str2ld(a->ptr, a->len, &v)) {
            kv_reply_error_cstr(&c->out, "timeout is not a float or out of range");
            return 0;
        }
        v *= 1000.0;
        /* Redis casts without a range check; on x86 an out-of-range value
         * (inf, 1e16 s) becomes LLONG_MIN, so it says "negative". */
        tval = v >= -9223372036854775808.0L && v < 9223372036854775808.0L ? (long long) v : LLONG_MIN;
    } else if (!kv_str2ll(a->ptr, a->len, &tval)) {
        kv_reply_error_cstr(&c->out, "timeout is not an integer or out of range");
        return 0;
    }
    if (tval < 0) {
        kv_reply_error_cstr(&c->out, "timeout is negative");
        return 0;
    }
    /* 7.0 has no "out of range" check yet: its deadline (now + tval)
     * overflows and never comes, so such a timeout waits forever. */
    *ms = tval > LLONG_MAX - (long long) kv_time_unix_ms() ? 0 : tval;
    return 1;
}

/* ---- keys and targets --------------------------------------------------------- */

typedef struct {
    int32_t  peer;
    uint32_t pad;
    uint64_t id;                    /* token, or the local slot's address */
} target_key;

static target_key tkey(int peer, uint64_t token, const kv_slot_t *slot)
{
    target_key k = { peer, 0, slot ? (uint64_t) (uintptr_t) slot : token };
    return k;
}

static bkey_t *key_get(const char *key, size_t len, int create)
{
    if (!B.keys) {
        if (!create) return NULL;
        B.keys = kv_dict_new();
        B.targets = kv_dict_new();
    }
    kv_dict_entry *e = kv_dict_find(B.keys, key, len);
    if (e) return *(bkey_t **) kv_dict_entry_extra(e);
    if (!create) return NULL;
    bkey_t *k = calloc(1, sizeof(*k));
    if (!k) abort();
    k->e = kv_dict_insert(B.keys, key, len, sizeof(bkey_t *));
    if (!k->e) abort();
    *(bkey_t **) kv_dict_entry_extra(k->e) = k;
    return k;
}

/* Forget k once nobody waits on it and nothing refers to it. */
static void key_maybe_free(bkey_t *k)
{
    if (k->head || k->ready || k->busy) return;
    kv_dict_unlink_entry(B.keys, k->e);
    kv_dict_entry_free(k->e);
    free(k);
}

static void key_make_ready(bkey_t *k)
{
    if (k->ready) return;
    k->ready = 1;
    k->rnext = NULL;
    if (B.ready_tail) B.ready_tail->rnext = k;
    else B.ready_head = k;
    B.ready_tail = k;
}

void kv_block_signal(const char *key, size_t len)
{
    if (!B.nwaiting) return;
    bkey_t *k = key_get(key, len, 0);
    if (k && k->head) key_make_ready(k);
}

void kv_block_signal_flush(void)
{
    for (waiter_t *w = B.all; w; w = w->next)
        if (w->group)
            for (int i = 0; i < w->nnodes; i++) key_make_ready(w->nodes[i].k);
}

/* ---- registering and leaving ----------------------------------------------------- */

static void on_timeout(uv_timer_t *t);

int kv_block_wait(int argc, const kv_resp_arg *argv, int first, int nkeys, long long timeout_ms)
{
    if (B.rerun || !kv_fwd_can_block()) {
        B.would_block = 1;
        return 0;
    }
    /* One allocation: the waiter, its key nodes, its argv and bytes. */
    waiter_t *w = calloc(1, sizeof(*w) + sizeof(node_t) * (size_t) nkeys + kv_resp_argv_size(argc, argv));
    if (!w) abort();
    w->nodes = (node_t *) (w + 1);
    w->argv = kv_resp_argv_copy(w->nodes + nkeys, argc, argv);
    w->argc = argc;
    w->cmd = kv_cmd_lookup_any(argv[0].ptr, argv[0].len);
    w->group = w->cmd && !strcmp(w->cmd->name, "xreadgroup");
    w->seq = B.seq++;
    kv_fwd_defer_reply(&w->t);

    for (int i = first; i < first + nkeys; i++) {
        const kv_resp_arg *a = &w->argv[i];
        bkey_t *k = key_get(a->ptr, a->len, 1);
        int dup = 0;                    /* BLPOP a a: one place in a's FIFO */
        for (int j = 0; j < w->nnodes; j++) dup |= w->nodes[j].k == k;
        if (dup) continue;
        node_t *n = &w->nodes[w->nnodes++];
        *n = (node_t) { w, k, k->tail, NULL };
        if (k->tail) k->tail->next = n;
        else k->head = n;
        k->tail = n;
    }
    target_key tk = tkey(w->t.peer, w->t.token, w->t.slot);
    w->te = kv_dict_insert(B.targets, &tk, sizeof(tk), sizeof(waiter_t *));
    if (!w->te) abort();                /* the router never defers one target twice */
    *(waiter_t **) kv_dict_entry_extra(w->te) = w;
    w->next = B.all;
    if (B.all) B.all->prev = w;
    B.all = w;
    B.nwaiting++;

    if (timeout_ms > 0) {
        /* Unreferenced: a waiter must not keep a stopping worker's loop alive. */
        uv_timer_init(kv_fwd_server()->loop, &w->timer);
        w->timer.data = w;
        w->timed = 1;
        uv_timer_start(&w->timer, on_timeout, (uint64_t) timeout_ms, 0);
        uv_unref((uv_handle_t *) &w->timer);
    }
    return 1;
}

static void waiter_free_cb(uv_handle_t *h) { free(h->data); }

/* Take w out of every structure (it is about to be answered or dropped). */
static void waiter_detach(waiter_t *w)
{
    for (int i = 0; i < w->nnodes; i++) {
        node_t *n = &w->nodes[i];
        bkey_t *k = n->k;
        if (n->prev) n->prev->next = n->next;
        else k->head = n->next;
        if (n->next) n->next->prev = n->prev;
        else k->tail = n->prev;
        key_maybe_free(k);
    }
    w->nnodes = 0;
    B.unlinks++;
    kv_dict_unlink_entry(B.targets, w->te);
    kv_dict_entry_free(w->te);
    if (w->prev) w->prev->next = w->next;
    else B.all = w->next;
    if (w->next) w->next->prev = w->prev;
    B.nwaiting--;
}

static void waiter_free(waiter_t *w)
{
    if (w->timed) uv_close((uv_handle_t *) &w->timer, waiter_free_cb);
    else free(w);
}

/* Leave, then answer (after: answering may run the client's next commands). */
static void waiter_finish(waiter_t *w, kv_reply_buf *b)
{
    kv_fwd_target t = w->t;
    waiter_detach(w);
    waiter_free(w);
    kv_fwd_answer(&t, b);
}

static void waiter_finish_raw(waiter_t *w, const char *reply, size_t len)
{
    kv_reply_buf b;
    kv_reply_buf_init(&b);
    kv_reply_raw(&b, reply, len);
    waiter_finish(w, &b);
    kv_reply_buf_free(&b);
}

/* Every blocking command of Redis 7.0 times out with a null array, even
 * BLMOVE, whose "cannot block" reply (in MULTI) is a null bulk. */
static void on_timeout(uv_timer_t *t)
{
    waiter_finish_raw(t->data, TIMEOUT_REPLY, sizeof(TIMEOUT_REPLY) - 1);
}

static waiter_t *find_target(int peer, uint64_t token, const kv_slot_t *slot)
{
    if (!B.targets) return NULL;
    target_key tk = tkey(peer, token, slot);
    kv_dict_entry *e = kv_dict_find(B.targets, &tk, sizeof(tk));
    return e ? *(waiter_t **) kv_dict_entry_extra(e) : NULL;
}

/*
 * A local client's CLIENT UNBLOCK arrives inside the CLIENT command:
 * answering there would run the unblocked client's next pipelined
 * commands nested in it, where they could not block. So such answers go
 * out from a zero timer, at top level; the waiter leaves at once.
 */
typedef struct later_s {
    struct later_s *next;
    kv_fwd_target   t;
    const char     *reply;
    size_t          len;
} later_t;

static later_t   *later_head, **later_tail = &later_head;
static uv_timer_t later_timer;
static int        later_init;

static void on_later(uv_timer_t *t)
{
    (void) t;
    while (later_head) {
        later_t *l = later_head;
        if (!(later_head = l->next)) later_tail = &later_head;
        kv_reply_buf b;
        kv_reply_buf_init(&b);
        kv_reply_raw(&b, l->reply, l->len);
        kv_fwd_answer(&l->t, &b);
        kv_reply_buf_free(&b);
        free(l);
    }
}

static void answer_later(waiter_t *w, const char *reply, size_t len)
{
    later_t *l = malloc(sizeof(*l));
    if (!l) abort();
    *l = (later_t) { NULL, w->t, reply, len };
    waiter_detach(w);
    waiter_free(w);
    *later_tail = l;
    later_tail = &l->next;
    if (!later_init) {
        uv_timer_init(kv_fwd_server()->loop, &later_timer);
        uv_unref((uv_handle_t *) &later_timer);
        later_init = 1;
    }
    uv_timer_start(&later_timer, on_later, 0, 0);
}

void kv_block_cancel(int peer, uint64_t token, kv_slot_t *slot, int mode)
{
    waiter_t *w = find_target(peer, token, slot);
    if (!w) return;
    const char *r = mode == KV_UNBLOCK_ERROR ? UNBLOCKED_REPLY : TIMEOUT_REPLY; /* GONE: dropped there */
    size_t len = mode == KV_UNBLOCK_ERROR ? sizeof(UNBLOCKED_REPLY) - 1 : sizeof(TIMEOUT_REPLY) - 1;
    if (slot && mode != KV_UNBLOCK_GONE) answer_later(w, r, len);
    else waiter_finish_raw(w, r, len);
}

void kv_block_peer_reset(int peer)
{
    for (waiter_t *w = B.all, *next; w; w = next) {
        next = w->next;
        if (w->t.peer != peer) continue;
        waiter_detach(w);             /* unlinks w only: next stays valid */
        waiter_free(w);
    }
}

/* ---- serving ----------------------------------------------------------------------- */

static int key_exists(const bkey_t *k)
{
    kv_db_t *db = kv_fwd_server()->db;
    return kv_db_find(db, kv_dict_entry_key(k->e), kv_dict_entry_klen(k->e),
                      KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH) != NULL;
}

/* Run w's command again for key k: 1 when it answered (w is gone). */
static int try_serve(waiter_t *w, bkey_t *k)
{
    if (!w->cmd) return 0;
    kv_reply_buf b;
    kv_reply_buf_init(&b);
    bkey_t *tail = B.ready_tail;
    B.ready_key = (kv_resp_arg) { kv_dict_entry_key(k->e), kv_dict_entry_klen(k->e) };
    B.rerun = 1;
    B.would_block = 0;
    kv_fwd_run_local(w->cmd, w->argc, w->argv, &b);
    B.rerun = 0;
    if (B.would_block) {
        /* Nothing changed, so nothing it marked ready is (a re-run that
         * finds nothing must not wake itself again). */
        bkey_t *r = tail ? tail->rnext : B.ready_head;
        if (tail) tail->rnext = NULL;
        else B.ready_head = NULL;
        B.ready_tail = tail;
        for (bkey_t *next; r; r = next) {
            next = r->rnext;
            r->ready = 0;
            key_maybe_free(r);
        }
        kv_reply_buf_free(&b);
        return 0;
    }
    waiter_finish(w, &b);
    kv_reply_buf_free(&b);
    return 1;
}

/*
 * k's waiters in FIFO order, each tried once per pass; those that blocked
 * after the pass began wait for the next change. Once the key is gone
 * only XREADGROUP waiters can still be answered (-UNBLOCKED), so the
 * others are not run in vain.
 */
static void serve_key(bkey_t *k)
{
    uint64_t pass = ++B.pass, limit = B.seq;
    int gone = !key_exists(k);
    k->busy = 1;
    for (node_t *n = k->head; n;) {
        waiter_t *w = n->w;
        if (w->pass == pass || w->seq >= limit || (gone && !w->group)) {
            n = n->next;
            continue;
        }
        if (kv_fwd_locked()) {          /* a client we answered locked us */
            key_make_ready(k);
            break;
        }
        w->pass = pass;
        uint64_t unlinks = B.unlinks;
        try_serve(w, k);
        gone = !key_exists(k);
        n = B.unlinks == unlinks ? n->next : k->head;   /* FIFO changed: re-read it */
    }
    k->busy = 0;
    key_maybe_free(k);
}

void kv_block_serve(void)
{
    if (B.serving || kv_fwd_locked()) return;
    B.serving = 1;
    while (B.ready_head) {
        bkey_t *k = B.ready_head;
        B.ready_head = k->rnext;
        if (!B.ready_head) B.ready_tail = NULL;
        k->ready = 0;
        if (k->head) serve_key(k);
        else key_maybe_free(k);
        if (kv_fwd_locked()) break;     /* the rest once the lock is released */
    }
    B.serving = 0;
}
