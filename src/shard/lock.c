/*
 * Shard locks (see lock.h for the model).
 */
#include <stdlib.h>
#include <string.h>

#include "shard/forward.h"
#include "shard/gather.h"
#include "shard/lock.h"
#include "shard/route.h"
#include "event/segment.h"

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

/*
 * A shard of another worker is locked through a *hold*, one per shard:
 * the shard knows it by the hold's id, and the operations of this worker
 * that want the shard use it one after the other. An operation done with
 * it hands it to the next one of ours waiting for it; nobody waiting, it
 * stays ours, idle, until the end of this loop turn (kv_lock_turn_end),
 * so operations that come in the same turn take it at once. So the
 * transactions a worker has pending on the same shards pay one lock round
 * trip together, not one each -- the difference between a few and
 * hundreds of thousands a second when clients pipeline.
 *
 * Isolation is unchanged: one operation uses a hold at a time, in
 * ascending shard order like any lock, and its requests to the shard are
 * on the ring before the next user's. Fairness: after HOLD_PASSES users
 * the hold is given back and asked anew, behind whoever waits at the
 * shard.
 */
#define HOLD_PASSES KV_LOCK_HOLD_PASSES

typedef enum { H_FREE, H_ASKED, H_HELD } hold_state_e;

typedef struct {
    hold_state_e  state;
    uint64_t      id;               /* what the shard knows the hold by    */
    kv_lockop_t  *user;             /* the operation using it; NULL: idle   */
    kv_lockop_t  *wq_head, *wq_tail;/* ours waiting for it (next_wait)      */
    int           passes;           /* users under this id                  */
} hold_t;

struct kv_lockop_s {
    kv_lockop_t *next_op;           /* this worker's live operations        */
    kv_lockop_t *next_wait;         /* in a hold's queue, or the ready list */
    uint64_t     id;                /* of the lock of our own shard         */
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
static hold_t       H[KV_SHARDS_MAX];
static int          nholds;         /* H[0..nholds) were ever asked for   */
static kv_lockop_t *ready_head, *ready_tail;
static int          running_ready;

uint64_t kv_lock_id(const kv_lockop_t *op) { return op->id; }
kv_client_t *kv_lock_client(const kv_lockop_t *op) { return op->client; }
void kv_lock_ref(kv_lockop_t *op) { op->refs++; }

uint64_t kv_lock_wire_id(const kv_lockop_t *op, int shard)
{
    return shard == kv_fwd_self() ? op->id : H[shard].id;
}

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

static void acquire_next(kv_lockop_t *op);

/* Granted a shard by a hold: go on with the next shard, from a loop (not
 * nested), as one release may hand holds to many operations in turn. */
static void make_ready(kv_lockop_t *op)
{
    op->held++;
    op->waiting = -1;
    op->next_wait = NULL;
    if (ready_tail) ready_tail->next_wait = op;
    else ready_head = op;
    ready_tail = op;
    if (running_ready) return;
    running_ready = 1;
    while ((op = ready_head)) {
        ready_head = op->next_wait;
        if (!ready_head) ready_tail = NULL;
        acquire_next(op);
    }
    running_ready = 0;
}

static void hold_enqueue(hold_t *h, kv_lockop_t *op)
{
    op->next_wait = NULL;
    if (h->wq_tail) h->wq_tail->next_wait = op;
    else h->wq_head = op;
    h->wq_tail = op;
}

static kv_lockop_t *hold_dequeue(hold_t *h)
{
    kv_lockop_t *op = h->wq_head;
    if (!op) return NULL;
    h->wq_head = op->next_wait;
    if (!h->wq_head) h->wq_tail = NULL;
    return op;
}

/* Ask shard sh for a new hold, for op. */
static int hold_ask(int sh, kv_lockop_t *op)
{
    hold_t *h = &H[sh];
    if (h->state == H_HELD) kv_fwd_send_lock_frame(sh, KV_LOCK_FRAME_UNLOCK, h->id);
    h->state = H_FREE;
    h->user = NULL;
    if (!kv_fwd_peer_up(sh)) return -1;
    uint64_t id = next_id++;
    if (kv_fwd_send_lock_frame(sh, KV_LOCK_FRAME_LOCK, id) != 0) return -1;
    if (sh >= nholds) nholds = sh + 1;
    h->state = H_ASKED, h->id = id, h->user = op, h->passes = 1;
    op->waiting = sh;
    return 0;
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
            hold_t *h = &H[sh];
            if (h->state == H_HELD && !h->user && h->passes < HOLD_PASSES) {
                h->user = op;           /* idle: ours at once */
                h->passes++;
            } else if (h->state == H_FREE || (h->state == H_HELD && !h->user)) {
                if (hold_ask(sh, op) != 0) finish(op, sh);
                return;
            } else {
                hold_enqueue(h, op);
                op->waiting = sh;
                return;
            }
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

/* The hold on sh has no user: the next of ours waiting for it takes it;
 * after HOLD_PASSES users (or once closed, kv_lock_before_request) it is
 * asked anew instead, behind whoever waits at the shard. */
static void hold_pass_on(int sh)
{
    hold_t *h = &H[sh];
    kv_lockop_t *next = hold_dequeue(h);
    if (!next) return;                  /* idle till the end of the turn */
    if (h->passes >= HOLD_PASSES) {
        if (hold_ask(sh, next) == 0) return;
        do finish(next, sh);            /* the shard is down */
        while ((next = hold_dequeue(h)));
        return;
    }
    h->user = next;
    h->passes++;
    make_ready(next);
}

void kv_lock_on_locked(int from, uint64_t id)
{
    hold_t *h = from >= 0 && from < KV_SHARDS_MAX ? &H[from] : NULL;
    if (h && h->state == H_HELD && h->id == id) return;    /* ours already */
    if (!h || h->state != H_ASKED || h->id != id) {
        /* Nobody asked (the hold was dropped meanwhile): give it back. */
        kv_fwd_send_lock_frame(from, KV_LOCK_FRAME_UNLOCK, id);
        return;
    }
    h->state = H_HELD;
    if (h->user) make_ready(h->user);
    else hold_pass_on(from);
}

/* op is done with shard sh. */
static void hold_release(int sh, kv_lockop_t *op)
{
    hold_t *h = &H[sh];
    if (h->user != op) return;
    h->user = NULL;
    hold_pass_on(sh);
}

void kv_lock_before_request(int sh)
{
    hold_t *h = &H[sh];
    if (h->state == H_FREE) return;
    if (h->state == H_HELD && !h->user && !h->wq_head) {
        kv_fwd_send_lock_frame(sh, KV_LOCK_FRAME_UNLOCK, h->id);   /* idle: back now */
        h->state = H_FREE;
        return;
    }
    /* The request will wait at the shard for this hold to go: a later
     * operation must not overtake it there under the same hold, so the
     * hold takes no new user; the next asks anew, behind the request. */
    h->passes = HOLD_PASSES;
}

void kv_lock_turn_end(void)
{
    for (int sh = 0; sh < nholds; sh++) {     /* every loop turn: only shards we asked */
        hold_t *h = &H[sh];
        if (h->state != H_HELD || h->user || h->wq_head) continue;
        kv_fwd_send_lock_frame(sh, KV_LOCK_FRAME_UNLOCK, h->id);
        h->state = H_FREE;
    }
}

void kv_lock_unref(kv_lockop_t *op)
{
    if (--op->refs > 0) return;
    kv_lockop_t **pp = &ops;
    while (*pp && *pp != op) pp = &(*pp)->next_op;
    if (*pp) *pp = op->next_op;
    /* Others' shards first: an operation of ours that then gets our own
     * finds them idle, and takes them at once. */
    int self = kv_fwd_self();
    for (int i = op->held - 1; i >= 0; i--)
        if (op->shards[i] != self) hold_release(op->shards[i], op);
    for (int i = 0; i < op->held; i++)
        if (op->shards[i] == self) release_here(self, op->id);
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
    /* Our hold on it died with it; whoever of ours waits for it fails. */
    memset(&H[peer], 0, sizeof(H[peer]));
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
