/*
 * Shard locks (see lock.h for the model).
 */
#include <stdlib.h>
#include <string.h>

#include "shard/forward.h"
#include "shard/gather.h"
#include "shard/lock.h"
#include "shard/route.h"

/* ---- shard side ----------------------------------------------------------- */

typedef enum { W_FRAME, W_LOCK, W_LOCAL_LOCK, W_LOCAL_RUN } wait_kind_e;

typedef struct waiter_s {
    struct waiter_s *next;
    wait_kind_e      kind;
    int              from;          /* W_FRAME, W_LOCK                      */
    uint16_t         type;          /* W_FRAME                              */
    uint64_t         id;            /* W_LOCK                               */
    kv_lockop_t     *op;            /* W_LOCAL_LOCK                         */
    kv_slot_t       *slot;          /* W_LOCAL_RUN                          */
    int              part, argc;
    const kv_cmd_t  *cmd;
    kv_resp_arg     *argv;          /* points into bytes                    */
    size_t           len;
    char             bytes[];       /* the frame, or argv + argument bytes  */
} waiter_t;

static struct {
    int       holder;               /* worker holding the lock; -1: free   */
    uint64_t  holder_id;
    waiter_t *head, *tail;
    int       draining;
} L = { .holder = -1 };

int kv_lock_busy(void) { return L.holder >= 0 || L.head != NULL; }

int kv_lock_held_by(int peer, uint64_t id) { return L.holder == peer && L.holder_id == id; }

static waiter_t *waiter_new(wait_kind_e kind, size_t extra)
{
    waiter_t *w = calloc(1, sizeof(*w) + extra);
    if (!w) abort();
    w->kind = kind;
    if (L.tail) L.tail->next = w;
    else L.head = w;
    L.tail = w;
    return w;
}

void kv_lock_defer_frame(int from, uint16_t type, const void *bytes, size_t len)
{
    waiter_t *w = waiter_new(W_FRAME, len);
    w->from = from, w->type = type, w->len = len;
    memcpy(w->bytes, bytes, len);
}

void kv_lock_defer_local(kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc, const kv_resp_arg *argv)
{
    waiter_t *w = waiter_new(W_LOCAL_RUN, kv_resp_argv_size(argc, argv));
    w->slot = s, w->part = part, w->cmd = cmd, w->argc = argc;
    w->argv = kv_resp_argv_copy(w->bytes, argc, argv);
}

static void acquire_next(kv_lockop_t *op);
static void local_granted(kv_lockop_t *op);

static void grant(int holder, uint64_t id)
{
    L.holder = holder, L.holder_id = id;
    if (holder != kv_fwd_self()) kv_fwd_send_lock_frame(holder, KV_LOCK_FRAME_LOCKED, id);
}

/* Run what waited, in arrival order, until the FIFO is empty or one of
 * the entries (a lock request) locks the shard again. */
static void drain(void)
{
    if (L.draining) return;         /* the outer loop goes on */
    L.draining = 1;
    while (L.holder < 0 && L.head) {
        waiter_t *w = L.head;
        L.head = w->next;
        if (!L.head) L.tail = NULL;
        switch (w->kind) {
        case W_FRAME:
            kv_fwd_replay_frame(w->from, w->type, w->bytes, w->len);
            break;
        case W_LOCK:
            grant(w->from, w->id);
            break;
        case W_LOCAL_LOCK:
            grant(kv_fwd_self(), kv_lock_id(w->op));
            local_granted(w->op);
            kv_lock_unref(w->op);   /* the FIFO's reference */
            break;
        case W_LOCAL_RUN:
            kv_fwd_run_waiting(w->slot, w->part, w->cmd, w->argc, w->argv);
            break;
        }
        free(w);
    }
    L.draining = 0;
    if (L.holder < 0) kv_fwd_unlocked();
}

void kv_lock_on_lock(int from, uint64_t id)
{
    if (!kv_lock_busy()) {
        grant(from, id);
        return;
    }
    waiter_t *w = waiter_new(W_LOCK, 0);
    w->from = from, w->id = id;
}

static void release_here(int peer, uint64_t id)
{
    if (!kv_lock_held_by(peer, id)) return;
    L.holder = -1;
    drain();
}

void kv_lock_on_unlock(int from, uint64_t id) { release_here(from, id); }

/* ---- coordinator side ----------------------------------------------------- */

struct kv_lockop_s {
    kv_lockop_t *next_op;           /* this worker's live operations        */
    uint64_t     id;
    int          refs;
    int          n, held;           /* shards[0..held) are locked           */
    int          waiting;           /* shard asked, not yet granted; -1     */
    int          done;              /* cb was called                        */
    kv_client_t *client;
    kv_lock_cb  *cb;
    void        *data;
    int          shards[];
};

static kv_lockop_t *ops;
static uint64_t     next_id = 1;

uint64_t kv_lock_id(const kv_lockop_t *op) { return op->id; }
kv_client_t *kv_lock_client(const kv_lockop_t *op) { return op->client; }
void kv_lock_ref(kv_lockop_t *op) { op->refs++; }

int kv_lock_holds_self(const kv_lockop_t *op)
{
    return op && kv_lock_held_by(kv_fwd_self(), op->id);
}

static void finish(kv_lockop_t *op, int failed)
{
    if (op->done) return;
    op->done = 1;
    op->waiting = -1;
    op->cb(op, failed, op->data);
}

static void acquire_next(kv_lockop_t *op)
{
    int self = kv_fwd_self();
    while (op->held < op->n) {
        int sh = op->shards[op->held];
        if (sh == self) {
            if (kv_lock_busy()) {
                waiter_t *w = waiter_new(W_LOCAL_LOCK, 0);
                w->op = op;
                op->refs++;
                op->waiting = sh;
                return;
            }
            grant(self, op->id);
        } else {
            if (!kv_fwd_peer_up(sh) || kv_fwd_send_lock_frame(sh, KV_LOCK_FRAME_LOCK, op->id) != 0) {
                finish(op, sh);
                return;
            }
            op->waiting = sh;
            return;
        }
        op->held++;
    }
    finish(op, -1);
}

/* Our own shard was granted from the FIFO: go on with the next. */
static void local_granted(kv_lockop_t *op)
{
    op->held++;
    op->waiting = -1;
    acquire_next(op);
}

static int cmp_int(const void *a, const void *b) { return *(const int *) a - *(const int *) b; }

void kv_lock_acquire(const int *shards, int n, kv_client_t *c, kv_lock_cb *cb, void *data)
{
    kv_lockop_t *op = calloc(1, sizeof(*op) + sizeof(int) * (size_t) (n > 0 ? n : 1));
    if (!op) abort();
    if (n > 0) memcpy(op->shards, shards, sizeof(int) * (size_t) n);
    qsort(op->shards, (size_t) n, sizeof(int), cmp_int);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || op->shards[k - 1] != op->shards[i]) op->shards[k++] = op->shards[i];
    op->n = k;
    op->id = next_id++;
    op->refs = 1;
    op->waiting = -1;
    op->client = c, op->cb = cb, op->data = data;
    op->next_op = ops;
    ops = op;
    acquire_next(op);
}

void kv_lock_on_locked(int from, uint64_t id)
{
    for (kv_lockop_t *op = ops; op; op = op->next_op) {
        if (op->id != id || op->waiting != from) continue;
        op->waiting = -1;
        op->held++;
        acquire_next(op);
        return;
    }
    /* Nobody asked (the operation failed meanwhile): give it back. */
    kv_fwd_send_lock_frame(from, KV_LOCK_FRAME_UNLOCK, id);
}

void kv_lock_unref(kv_lockop_t *op)
{
    if (--op->refs > 0) return;
    kv_lockop_t **pp = &ops;
    while (*pp && *pp != op) pp = &(*pp)->next_op;
    if (*pp) *pp = op->next_op;
    /* A lock asked for and not yet granted is released when it comes. */
    for (int i = 0; i < op->held; i++) {
        int sh = op->shards[i];
        if (sh == kv_fwd_self()) release_here(sh, op->id);
        else kv_fwd_send_lock_frame(sh, KV_LOCK_FRAME_UNLOCK, op->id);
    }
    free(op);
}

void kv_lock_client_gone(kv_client_t *c)
{
    for (kv_lockop_t *op = ops; op; op = op->next_op)
        if (op->client == c) op->client = NULL;
}

void kv_lock_peer_reset(int peer)
{
    /* Its lock on this shard, and what it had waiting here. */
    waiter_t **pp = &L.head, *last = NULL;
    while (*pp) {
        waiter_t *w = *pp;
        if ((w->kind == W_FRAME || w->kind == W_LOCK) && w->from == peer) {
            *pp = w->next;
            free(w);
            continue;
        }
        last = w;
        pp = &w->next;
    }
    L.tail = last;
    if (L.holder == peer) L.holder = -1;
    /* Our operations: a lock it held died with it; one we wait for fails. */
    for (kv_lockop_t *op = ops, *next; op; op = next) {
        next = op->next_op;             /* the callback may free op */
        for (int i = 0; i < op->held; i++) {
            if (op->shards[i] != peer) continue;
            memmove(&op->shards[i], &op->shards[i + 1], sizeof(int) * (size_t) (op->n - i - 1));
            op->n--, op->held--;
            break;
        }
        if (op->waiting == peer) finish(op, peer);
    }
    drain();
}
