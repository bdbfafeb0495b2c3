/*
 * Unit tests for the shard locks (shard/lock.c, docs/transactions.md),
 * linked alone: forward.c's side (kv_fwd_self, kv_fwd_send_lock_frame,
 * kv_fwd_peer_up, kv_fwd_replay_frame, kv_fwd_run_waiting,
 * kv_fwd_unlocked) is faked here and every call is logged, in order, with
 * the callbacks of kv_lock_acquire.
 *
 * lock.c's state is one worker's: its shard (number `self`) and its
 * coordinator side. The test plays the other workers by hand -- it calls
 * kv_lock_on_lock / on_unlock / on_locked / peer_reset as their frames or
 * resets would arrive, and reads the frames lock.c sends them from the
 * log. Every test leaves the shard free and no operation alive (the
 * teardown checks the first; LeakSanitizer, in the ASan run, the second).
 * lock.c's state is per process, with no way to reset it: each test runs
 * in a child process of its own, so one that fails half way (the shard
 * left locked) does not fail all the ones after it.
 *
 * Built by the generic rule (objs/t/test_lock, linked with libkevy.a):
 * every symbol lock.o needs is defined here, so the archive gives lock.o
 * alone. Should lock.c come to call another of forward.c's functions, the
 * link pulls forward.o in and fails on duplicate definitions: add a fake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "shard/gather.h"   /* kv_fwd_self */
#include "shard/lock.h"

#define NPEERS 8

/* ---- the fakes and their log ---------------------------------------------- */

enum { EV_SEND, EV_REPLAY, EV_RUN, EV_UNLOCKED, EV_CB };

typedef struct {
    int          kind;
    int          peer;          /* SEND: to; REPLAY: from                  */
    int          which;         /* SEND: KV_LOCK_FRAME_*                   */
    uint64_t     id;            /* SEND                                    */
    uint16_t     type;          /* REPLAY                                  */
    char         data[64];      /* REPLAY: the bytes; RUN: argv joined     */
    size_t       len;
    int          busy;          /* REPLAY, RUN: kv_lock_busy() during it   */
    kv_slot_t   *slot;          /* RUN                                     */
    int          part, argc;
    const kv_cmd_t *cmd;
    kv_lockop_t *op;            /* CB                                      */
    int          failed;
    void        *cbdata;
} ev_t;

static ev_t ev[KV_LOCK_HOLD_PASSES + 64];
static int  nev, seen;

static int  self = 2;
static int  peer_down[NPEERS];
static int  send_rc;            /* what kv_fwd_send_lock_frame returns     */
static int  cb_unref;           /* the callback drops its reference at once */
/* Run during the next kv_fwd_run_waiting (then cleared): a hook to act
 * from inside the FIFO's drain. */
static void (*on_run_hook)(void);

static ev_t *ev_new(int kind)
{
    assert_true(nev < (int) (sizeof(ev) / sizeof(ev[0])));
    ev_t *e = &ev[nev++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    return e;
}

int kv_fwd_self(void) { return self; }

int kv_fwd_peer_up(int peer)
{
    assert_true(peer >= 0 && peer < NPEERS);
    assert_int_not_equal(peer, self);   /* the local shard is never asked */
    return !peer_down[peer];
}

int kv_fwd_send_lock_frame(int peer, int which, uint64_t id)
{
    assert_true(peer >= 0 && peer < NPEERS);
    assert_int_not_equal(peer, self);   /* no frame to ourselves */
    ev_t *e = ev_new(EV_SEND);
    e->peer = peer, e->which = which, e->id = id;
    return send_rc;
}

void kv_fwd_replay_frame(int from, uint16_t type, const void *bytes, size_t len)
{
    ev_t *e = ev_new(EV_REPLAY);
    assert_true(len < sizeof(e->data));
    e->peer = from, e->type = type, e->len = len;
    memcpy(e->data, bytes, len);
    e->busy = kv_lock_busy();
}

void kv_fwd_run_waiting(kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv)
{
    ev_t *e = ev_new(EV_RUN);
    e->slot = s, e->part = part, e->cmd = cmd, e->argc = argc;
    e->busy = kv_lock_busy();
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        assert_true(n + argv[i].len + 1 < sizeof(e->data));
        if (i) e->data[n++] = ' ';
        memcpy(e->data + n, argv[i].ptr, argv[i].len);
        n += argv[i].len;
    }
    e->len = n;
    if (on_run_hook) {
        void (*h)(void) = on_run_hook;
        on_run_hook = NULL;
        h();
    }
}

void kv_fwd_unlocked(void)
{
    ev_new(EV_UNLOCKED);
    assert_false(kv_lock_busy());       /* said only when nothing waits */
}

static void cb(kv_lockop_t *op, int failed, void *data)
{
    ev_t *e = ev_new(EV_CB);
    e->op = op, e->failed = failed, e->cbdata = data;
    if (cb_unref) kv_lock_unref(op);
}

/* ---- reading the log ------------------------------------------------------- */

/* The expect_* helpers are macros: a failure names the test's line, and
 * shows the event that did not match. */

static const char *const kind_name[] = { "SEND", "REPLAY", "RUN", "UNLOCKED", "CB" };
static const char *const frame_name[] = { "LOCK", "LOCKED", "UNLOCK" };

static void ev_str(const ev_t *e, char *buf, size_t n)
{
    switch (e->kind) {
    case EV_SEND:
        snprintf(buf, n, "SEND %s id %llu to %d",
                 e->which >= 0 && e->which <= 2 ? frame_name[e->which] : "?",
                 (unsigned long long) e->id, e->peer);
        break;
    case EV_REPLAY:
        snprintf(buf, n, "REPLAY from %d type %u \"%.*s\" busy %d", e->peer, e->type,
                 (int) e->len, e->data, e->busy);
        break;
    case EV_RUN:
        snprintf(buf, n, "RUN slot %p part %d \"%.*s\" busy %d", (void *) e->slot, e->part,
                 (int) e->len, e->data, e->busy);
        break;
    case EV_UNLOCKED: snprintf(buf, n, "UNLOCKED"); break;
    case EV_CB: snprintf(buf, n, "CB failed %d", e->failed); break;
    default: snprintf(buf, n, "?");
    }
}

static void ev_fail(const ev_t *e, const char *what, int line)
{
    char d[160];
    ev_str(e, d, sizeof(d));
    print_error("event %d (%s): %s\n", (int) (e - ev), d, what);
    _fail(__FILE__, line);
}

#define EV_CHECK(cond) do { if (!(cond)) ev_fail(e, #cond, line); } while (0)

static ev_t *next_ev(int kind, int line)
{
    if (seen >= nev) {
        print_error("event %d missing: %s expected\n", seen, kind_name[kind]);
        _fail(__FILE__, line);
    }
    ev_t *e = &ev[seen++];
    if (e->kind != kind) ev_fail(e, kind_name[kind], line);
    return e;
}

static void expect_send_at(int line, int peer, int which, uint64_t id)
{
    ev_t *e = next_ev(EV_SEND, line);
    EV_CHECK(e->peer == peer);
    EV_CHECK(e->which == which);
    EV_CHECK(e->id == id);
}
#define expect_send(peer, which, id) expect_send_at(__LINE__, peer, which, id)

/* A LOCK frame to peer: its id (the operation's). */
static uint64_t expect_lock_frame_at(int line, int peer)
{
    ev_t *e = next_ev(EV_SEND, line);
    EV_CHECK(e->peer == peer);
    EV_CHECK(e->which == KV_LOCK_FRAME_LOCK);
    EV_CHECK(e->id != 0);
    return e->id;
}
#define expect_lock_frame(peer) expect_lock_frame_at(__LINE__, peer)

static void expect_replay_at(int line, int from, uint16_t type, const char *bytes, int busy)
{
    ev_t *e = next_ev(EV_REPLAY, line);
    EV_CHECK(e->peer == from);
    EV_CHECK(e->type == type);
    EV_CHECK(e->len == strlen(bytes) && memcmp(e->data, bytes, e->len) == 0);
    EV_CHECK(e->busy == busy);
}
#define expect_replay(from, type, bytes, busy) expect_replay_at(__LINE__, from, type, bytes, busy)

static void expect_run_at(int line, kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc,
                          const char *joined, int busy)
{
    ev_t *e = next_ev(EV_RUN, line);
    EV_CHECK(e->slot == s);
    EV_CHECK(e->part == part);
    EV_CHECK(e->cmd == cmd);
    EV_CHECK(e->argc == argc);
    EV_CHECK(e->len == strlen(joined) && memcmp(e->data, joined, e->len) == 0);
    EV_CHECK(e->busy == busy);
}
#define expect_run(s, part, cmd, argc, joined, busy) \
    expect_run_at(__LINE__, s, part, cmd, argc, joined, busy)

#define expect_unlocked() ((void) next_ev(EV_UNLOCKED, __LINE__))

static kv_lockop_t *expect_cb_at(int line, int failed, void *data)
{
    ev_t *e = next_ev(EV_CB, line);
    EV_CHECK(e->op != NULL);
    EV_CHECK(e->failed == failed);
    EV_CHECK(e->cbdata == data);
    return e->op;
}
#define expect_cb(failed, data) expect_cb_at(__LINE__, failed, data)

/* Every event logged so far was expected. */
static void no_more_at(int line)
{
    if (seen == nev) return;
    for (int i = seen; i < nev; i++) {
        char d[160];
        ev_str(&ev[i], d, sizeof(d));
        print_error("event %d (%s): unexpected\n", i, d);
    }
    _fail(__FILE__, line);
}
#define no_more() no_more_at(__LINE__)

/* An UNLOCK to each of peers[0..n) (with ids[i]), in any order, and
 * nothing else. */
static void expect_unlocks_at(int line, const int *peers, const uint64_t *ids, int n)
{
    int got[NPEERS] = { 0 };
    for (int i = 0; i < n; i++) {
        ev_t *e = next_ev(EV_SEND, line);
        EV_CHECK(e->which == KV_LOCK_FRAME_UNLOCK);
        EV_CHECK(e->peer >= 0 && e->peer < NPEERS && !got[e->peer]);
        int k = 0;
        while (k < n && peers[k] != e->peer) k++;
        EV_CHECK(k < n && e->id == ids[k]);
        got[e->peer]++;
    }
}
#define expect_unlocks(peers, ids, n) expect_unlocks_at(__LINE__, peers, ids, n)

/* The hold h asked of shard sh is granted to the one operation waiting
 * (callback with data), which is done at once; at the end of the turn
 * the hold goes back. */
#define grant_run_release(sh, h, data) grant_run_release_at(__LINE__, sh, h, data)
static void grant_run_release_at(int line, int sh, uint64_t h, void *data)
{
    kv_lock_on_locked(sh, h);
    kv_lock_unref(expect_cb_at(line, -1, data));
    kv_lock_turn_end();
    expect_send_at(line, sh, KV_LOCK_FRAME_UNLOCK, h);
    no_more_at(line);
}

/* ---- dummies: lock.c only stores these pointers ---------------------------- */

static char slot_mem[4], client_mem[3];
#define SLOT(i)   ((kv_slot_t *) &slot_mem[i])
#define CLIENT(i) ((kv_client_t *) &client_mem[i])
static const kv_cmd_t cmd_a, cmd_b;
static int data_a, data_b, data_c;

static void defer_str(int from, uint16_t type, const char *s)
{
    kv_lock_defer_frame(from, type, s, strlen(s));
}

static int setup(void **state)
{
    (void) state;
    nev = seen = 0;
    self = 2;
    memset(peer_down, 0, sizeof(peer_down));
    send_rc = 0;
    cb_unref = 0;
    on_run_hook = NULL;
    assert_false(kv_lock_busy());
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    assert_false(kv_lock_busy());
    return 0;
}

/* ---- shard side ------------------------------------------------------------ */

/* A free shard grants at once; the next LOCK waits; only the holder's
 * UNLOCK with its id releases, and grants the next. */
static void test_grant_and_queue(void **state)
{
    (void) state;
    assert_false(kv_lock_busy());

    kv_lock_on_lock(1, 10);
    expect_send(1, KV_LOCK_FRAME_LOCKED, 10);
    no_more();
    assert_true(kv_lock_busy());
    assert_true(kv_lock_held_by(1, 10));
    assert_false(kv_lock_held_by(1, 11));
    assert_false(kv_lock_held_by(3, 10));

    kv_lock_on_lock(3, 20);             /* busy: waits, no answer yet */
    no_more();
    assert_true(kv_lock_held_by(1, 10));

    kv_lock_on_unlock(3, 20);           /* not the holder */
    kv_lock_on_unlock(1, 11);           /* the holder, a wrong id */
    kv_lock_on_unlock(0, 10);           /* the id, from another peer */
    no_more();
    assert_true(kv_lock_held_by(1, 10));
    assert_true(kv_lock_busy());

    kv_lock_on_unlock(1, 10);           /* the next in the FIFO gets it */
    expect_send(3, KV_LOCK_FRAME_LOCKED, 20);
    no_more();                          /* not unlocked: 3 holds it */
    assert_true(kv_lock_held_by(3, 20));
    assert_false(kv_lock_held_by(1, 10));

    kv_lock_on_unlock(1, 10);           /* a stale UNLOCK changes nothing */
    no_more();
    assert_true(kv_lock_held_by(3, 20));

    kv_lock_on_unlock(3, 20);
    expect_unlocked();
    no_more();
    assert_false(kv_lock_busy());

    kv_lock_on_unlock(3, 20);           /* twice: nothing */
    no_more();
}

/* What waits runs in arrival order on unlock, up to the next LOCK; the
 * rest waits for that holder's unlock. Frames and arguments are copies. */
static void test_fifo_replay_order(void **state)
{
    (void) state;
    kv_lock_on_lock(1, 10);
    expect_send(1, KV_LOCK_FRAME_LOCKED, 10);

    char a[] = "frame-a";
    kv_lock_defer_frame(0, 5, a, strlen(a));
    char k1[] = "set", k2[] = "key", k3[] = "value";
    kv_resp_arg args[3] = { { k1, 3 }, { k2, 3 }, { k3, 5 } };
    kv_lock_defer_local(SLOT(0), 0, &cmd_a, 3, args);
    defer_str(3, 6, "bb");
    kv_lock_on_lock(4, 40);
    defer_str(0, 7, "c");
    kv_resp_arg args2[1] = { { "get", 3 } };
    kv_lock_defer_local(SLOT(1), 3, &cmd_b, 1, args2);
    kv_lock_defer_local(SLOT(2), 1, &cmd_b, 0, NULL);
    no_more();
    assert_true(kv_lock_busy());

    /* The originals change or go: the FIFO holds copies. */
    memset(a, 'x', sizeof(a) - 1);
    memset(k2, 'y', sizeof(k2) - 1);
    memset(args, 0, sizeof(args));

    kv_lock_on_unlock(1, 10);
    expect_replay(0, 5, "frame-a", 1);          /* more wait: still busy */
    expect_run(SLOT(0), 0, &cmd_a, 3, "set key value", 1);
    expect_replay(3, 6, "bb", 1);
    expect_send(4, KV_LOCK_FRAME_LOCKED, 40);   /* and there it stops */
    no_more();
    assert_true(kv_lock_held_by(4, 40));
    assert_true(kv_lock_busy());

    /* Arrivals while 4 holds it queue behind what is there. */
    defer_str(1, 8, "late");
    no_more();

    kv_lock_on_unlock(4, 40);
    expect_replay(0, 7, "c", 1);
    expect_run(SLOT(1), 3, &cmd_b, 1, "get", 1);
    expect_run(SLOT(2), 1, &cmd_b, 0, "", 1);
    expect_replay(1, 8, "late", 0);             /* the last: nothing waits */
    expect_unlocked();
    no_more();
    assert_false(kv_lock_busy());
}

/* Several LOCKs in a row in the FIFO: one holder at a time. */
static void test_fifo_lock_chain(void **state)
{
    (void) state;
    kv_lock_on_lock(0, 1);
    kv_lock_on_lock(1, 2);
    kv_lock_on_lock(3, 3);
    defer_str(4, 9, "z");
    expect_send(0, KV_LOCK_FRAME_LOCKED, 1);
    no_more();

    kv_lock_on_unlock(0, 1);
    expect_send(1, KV_LOCK_FRAME_LOCKED, 2);
    no_more();
    kv_lock_on_unlock(3, 3);            /* queued, not holding: nothing */
    no_more();
    kv_lock_on_unlock(1, 2);
    expect_send(3, KV_LOCK_FRAME_LOCKED, 3);
    no_more();
    kv_lock_on_unlock(3, 3);
    expect_replay(4, 9, "z", 0);
    expect_unlocked();
    no_more();
}

/* ---- coordinator side ------------------------------------------------------ */

/* Remote shards only: ascending, deduplicated, one at a time, each with a
 * hold of its own id; the callback once; the last unref leaves the holds
 * idle, and the end of the turn gives them back. */
static void test_acquire_ascending(void **state)
{
    (void) state;
    int shards[] = { 4, 0, 3, 0, 4, 1, 3 };
    kv_lock_acquire(shards, 7, CLIENT(0), cb, &data_a);
    uint64_t h0 = expect_lock_frame(0);
    no_more();

    kv_lock_on_locked(0, h0);
    uint64_t h1 = expect_lock_frame(1);
    no_more();

    /* A LOCKED from a shard not asked (3 comes later), or with another
     * id, is given back, and acquisition does not move. */
    kv_lock_on_locked(3, h0);
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h0);
    kv_lock_on_locked(1, h1 + 1000);
    expect_send(1, KV_LOCK_FRAME_UNLOCK, h1 + 1000);
    no_more();

    kv_lock_on_locked(1, h1);
    uint64_t h3 = expect_lock_frame(3);
    no_more();
    kv_lock_on_locked(3, h3);
    uint64_t h4 = expect_lock_frame(4);
    no_more();
    kv_lock_on_locked(4, h4);
    kv_lockop_t *op = expect_cb(-1, &data_a);
    no_more();

    assert_true(h0 != h1 && h1 != h3 && h3 != h4 && h0 != h4);
    assert_int_equal(kv_lock_wire_id(op, 0), h0);
    assert_int_equal(kv_lock_wire_id(op, 4), h4);
    assert_ptr_equal(kv_lock_client(op), CLIENT(0));
    assert_false(kv_lock_holds_self(op));
    assert_false(kv_lock_holds_self(NULL));
    assert_false(kv_lock_busy());       /* our shard is not involved */

    kv_lock_ref(op);
    kv_lock_ref(op);
    kv_lock_unref(op);
    kv_lock_unref(op);
    no_more();                          /* references remain */
    kv_lock_unref(op);
    no_more();                          /* idle till the end of the turn */
    kv_lock_turn_end();
    int held[] = { 0, 1, 3, 4 };
    uint64_t ids[] = { h0, h1, h3, h4 };
    expect_unlocks(held, ids, 4);
    no_more();
    kv_lock_turn_end();                 /* nothing more to give back */
    no_more();

    /* A new hold, a new id. */
    int one[] = { 5 };
    kv_lock_acquire(one, 1, CLIENT(0), cb, &data_b);
    uint64_t h5 = expect_lock_frame(5);
    assert_true(h5 != h0 && h5 != h4);
    kv_lock_on_locked(5, h5);
    op = expect_cb(-1, &data_b);
    kv_lock_unref(op);
    kv_lock_turn_end();
    expect_send(5, KV_LOCK_FRAME_UNLOCK, h5);
    no_more();
}

/* Holds shared in one turn: an operation that comes while our hold is
 * idle takes it with no frame; ones that come while it is asked for or
 * in use queue, and get it in arrival order, one after the other, on the
 * LOCKED and at each release. */
static void test_hold_reuse(void **state)
{
    (void) state;
    int s[] = { 3 };
    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_a);
    uint64_t h = expect_lock_frame(3);
    kv_lock_acquire(s, 1, CLIENT(1), cb, &data_b);     /* asked: queues */
    kv_lock_acquire(s, 1, CLIENT(2), cb, &data_c);
    no_more();

    kv_lock_on_locked(3, h);
    kv_lockop_t *a = expect_cb(-1, &data_a);
    no_more();
    assert_int_equal(kv_lock_wire_id(a, 3), h);
    kv_lock_unref(a);                   /* handed on: no frame */
    kv_lockop_t *b = expect_cb(-1, &data_b);
    no_more();
    assert_int_equal(kv_lock_wire_id(b, 3), h);
    kv_lock_turn_end();                 /* in use: kept */
    no_more();
    kv_lock_unref(b);
    kv_lockop_t *c = expect_cb(-1, &data_c);
    kv_lock_unref(c);
    no_more();

    /* Idle: the next one takes it at once, before acquire returns. */
    int s2[] = { 3, 6 };
    kv_lock_acquire(s2, 2, CLIENT(0), cb, &data_a);
    uint64_t h6 = expect_lock_frame(6);    /* 3 taken on the way */
    no_more();
    kv_lock_on_locked(6, h6);
    a = expect_cb(-1, &data_a);
    assert_int_equal(kv_lock_wire_id(a, 3), h);
    kv_lock_unref(a);
    no_more();
    kv_lock_turn_end();
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h);
    expect_send(6, KV_LOCK_FRAME_UNLOCK, h6);
    no_more();

    /* The next turn asks anew. */
    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_b);
    uint64_t h2 = expect_lock_frame(3);
    assert_true(h2 != h);
    grant_run_release(3, h2, &data_b);
}

/* A hold serves at most a bounded number of our operations in a row;
 * then it goes back and is asked anew, behind whoever waits at the shard.
 * The handing on runs in a loop: thousands of waiting operations that
 * each finish in their callback do not nest. */
static void test_hold_fairness(void **state)
{
    (void) state;
    cb_unref = 1;
    enum { N = 5000 };
    int s[] = { 1 };
    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_a);
    uint64_t h = expect_lock_frame(1);
    for (int i = 1; i < N; i++) kv_lock_acquire(s, 1, CLIENT(0), cb, &data_b);
    no_more();

    int asks = 1, served = 0;
    while (served < N) {
        nev = seen = 0;                 /* the log holds one round */
        kv_lock_on_locked(1, h);
        int cbs = 0;
        while (seen < nev && ev[seen].kind == EV_CB) {
            assert_int_equal(ev[seen].failed, -1);
            seen++, cbs++;
        }
        served += cbs;
        assert_true(cbs >= 1 && cbs <= KV_LOCK_HOLD_PASSES);
        if (served < N) {               /* given back, asked anew */
            expect_send(1, KV_LOCK_FRAME_UNLOCK, h);
            h = expect_lock_frame(1);
            asks++;
        }
        no_more();
    }
    assert_true(asks >= N / KV_LOCK_HOLD_PASSES);
    kv_lock_turn_end();
    expect_send(1, KV_LOCK_FRAME_UNLOCK, h);
    no_more();
}

/* A plain request about to go to a shard we hold (it would wait there):
 * an idle hold goes back at once; one in use takes no new user, so the
 * next operation asks anew, behind the request. */
static void test_hold_before_request(void **state)
{
    (void) state;
    kv_lock_before_request(3);          /* no hold: nothing */
    no_more();

    int s[] = { 3 };
    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_a);
    uint64_t h = expect_lock_frame(3);
    kv_lock_on_locked(3, h);
    kv_lock_unref(expect_cb(-1, &data_a));
    no_more();
    kv_lock_before_request(3);          /* idle */
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h);
    no_more();
    kv_lock_turn_end();
    no_more();

    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_a);
    h = expect_lock_frame(3);
    kv_lock_on_locked(3, h);
    kv_lockop_t *a = expect_cb(-1, &data_a);
    kv_lock_acquire(s, 1, CLIENT(1), cb, &data_b);     /* queued behind a */
    no_more();
    kv_lock_before_request(3);          /* in use: closed to new users */
    no_more();
    kv_lock_unref(a);
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h);
    uint64_t h2 = expect_lock_frame(3);
    no_more();
    grant_run_release(3, h2, &data_b);

    /* Asked for, not yet granted: closed all the same -- its grant does
     * not reopen it to an operation that came after the request. */
    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_a);
    h = expect_lock_frame(3);
    kv_lock_before_request(3);
    kv_lock_acquire(s, 1, CLIENT(1), cb, &data_b);
    no_more();
    kv_lock_on_locked(3, h);
    a = expect_cb(-1, &data_a);
    kv_lock_unref(a);
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h);
    h2 = expect_lock_frame(3);
    no_more();
    grant_run_release(3, h2, &data_b);
}

/* The local shard, free: taken without a frame, between the remote ones
 * in shard order; while we hold it, others wait; unref releases it. */
static void test_acquire_local_free(void **state)
{
    (void) state;
    int shards[] = { 3, 2, 1, 2 };
    kv_lock_acquire(shards, 4, CLIENT(0), cb, &data_a);
    uint64_t h1 = expect_lock_frame(1);
    no_more();
    assert_false(kv_lock_busy());       /* not ours yet: 1 first */

    kv_lock_on_locked(1, h1);
    uint64_t h3 = expect_lock_frame(3); /* 2 taken on the way */
    no_more();
    assert_true(kv_lock_busy());

    /* Others wait while the operation holds our shard. */
    kv_lock_on_lock(4, 77);
    defer_str(0, 5, "req");
    no_more();

    kv_lock_on_locked(3, h3);
    kv_lockop_t *op = expect_cb(-1, &data_a);
    no_more();
    assert_true(kv_lock_holds_self(op));
    assert_true(kv_lock_held_by(self, kv_lock_id(op)));

    kv_lock_unref(op);
    /* Ours released: the LOCK from 4 is granted, the request after it
     * still waits; 1 and 3 go back at the end of the turn. */
    expect_send(4, KV_LOCK_FRAME_LOCKED, 77);
    no_more();
    assert_true(kv_lock_held_by(4, 77));
    kv_lock_turn_end();
    expect_send(1, KV_LOCK_FRAME_UNLOCK, h1);
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h3);
    no_more();

    kv_lock_on_unlock(4, 77);
    expect_replay(0, 5, "req", 0);
    expect_unlocked();
    no_more();
}

/* Only the local shard, free: the callback runs before acquire returns,
 * with no frame at all. */
static void test_acquire_local_only(void **state)
{
    (void) state;
    int shards[] = { 2, 2 };
    kv_lock_acquire(shards, 2, CLIENT(1), cb, &data_c);
    kv_lockop_t *op = expect_cb(-1, &data_c);
    no_more();
    assert_true(kv_lock_holds_self(op));
    assert_true(kv_lock_held_by(self, kv_lock_id(op)));

    /* A peer's LOCK and one of our own commands wait behind it. */
    kv_lock_on_lock(0, 5);
    kv_resp_arg a[1] = { { "incr", 4 } };
    kv_lock_defer_local(SLOT(0), 0, &cmd_a, 1, a);
    no_more();

    kv_lock_unref(op);
    expect_send(0, KV_LOCK_FRAME_LOCKED, 5);
    no_more();
    kv_lock_on_unlock(0, 5);
    expect_run(SLOT(0), 0, &cmd_a, 1, "incr", 0);
    expect_unlocked();
    no_more();

    /* No shard at all: done at once. */
    int none[1] = { 0 };
    kv_lock_acquire(none, 0, CLIENT(1), cb, &data_b);
    op = expect_cb(-1, &data_b);
    assert_false(kv_lock_holds_self(op));
    kv_lock_unref(op);
    no_more();
}

/* The local shard, busy: the operation waits in the FIFO in arrival
 * order, is granted from it, and goes on to the shards above ours. */
static void test_acquire_local_busy(void **state)
{
    (void) state;
    kv_lock_on_lock(1, 50);             /* peer 1 holds our shard */
    expect_send(1, KV_LOCK_FRAME_LOCKED, 50);
    defer_str(3, 5, "before");          /* these arrived first */
    kv_lock_on_lock(3, 60);
    no_more();

    int shards[] = { 4, 2, 0 };
    kv_lock_acquire(shards, 3, CLIENT(0), cb, &data_a);
    uint64_t h0 = expect_lock_frame(0);
    no_more();
    kv_lock_on_locked(0, h0);           /* now ours: busy, so it waits */
    no_more();
    defer_str(0, 6, "after");           /* arrived after our lock request */

    kv_lock_on_unlock(1, 50);
    expect_replay(3, 5, "before", 1);
    expect_send(3, KV_LOCK_FRAME_LOCKED, 60);   /* 3 asked first */
    no_more();

    kv_lock_on_unlock(3, 60);
    /* Granted from the FIFO, and acquisition goes on with shard 4 (the
     * path that once stopped here); the request after it still waits. */
    uint64_t h4 = expect_lock_frame(4);
    no_more();
    assert_true(kv_lock_busy());

    kv_lock_on_locked(4, h4);
    kv_lockop_t *op = expect_cb(-1, &data_a);
    no_more();
    assert_true(kv_lock_holds_self(op));

    kv_lock_unref(op);
    expect_replay(0, 6, "after", 0);
    expect_unlocked();
    no_more();
    kv_lock_turn_end();
    expect_send(0, KV_LOCK_FRAME_UNLOCK, h0);
    expect_send(4, KV_LOCK_FRAME_UNLOCK, h4);
    no_more();
}

/* The local shard is the last one: granted from the FIFO, the callback
 * fires from inside the drain; dropping the operation there releases the
 * shard and the drain goes on with what waited behind it. */
static void test_acquire_local_last_from_fifo(void **state)
{
    (void) state;
    cb_unref = 1;
    kv_lock_on_lock(4, 9);
    expect_send(4, KV_LOCK_FRAME_LOCKED, 9);

    int shards[] = { 2, 0 };
    kv_lock_acquire(shards, 2, CLIENT(0), cb, &data_b);
    uint64_t h0 = expect_lock_frame(0);
    kv_lock_on_locked(0, h0);
    defer_str(1, 7, "x");
    kv_lock_on_lock(3, 33);
    defer_str(1, 7, "y");
    no_more();

    kv_lock_on_unlock(4, 9);
    expect_cb(-1, &data_b);             /* the operation is freed by now */
    expect_replay(1, 7, "x", 1);
    expect_send(3, KV_LOCK_FRAME_LOCKED, 33);
    no_more();
    kv_lock_turn_end();
    expect_send(0, KV_LOCK_FRAME_UNLOCK, h0);
    no_more();

    kv_lock_on_unlock(3, 33);
    expect_replay(1, 7, "y", 0);
    expect_unlocked();
    no_more();
}

/* Two operations of ours on the local shard: the second waits for the
 * first's last unref. */
static void test_two_local_ops(void **state)
{
    (void) state;
    int s1[] = { 2 }, s2[] = { 2, 5 };
    kv_lock_acquire(s1, 1, CLIENT(0), cb, &data_a);
    kv_lockop_t *op1 = expect_cb(-1, &data_a);
    kv_lock_acquire(s2, 2, CLIENT(1), cb, &data_b);
    no_more();                          /* waits for our shard */
    assert_true(kv_lock_holds_self(op1));

    kv_lock_unref(op1);
    uint64_t h5 = expect_lock_frame(5);
    no_more();
    assert_true(kv_lock_busy());

    kv_lock_on_locked(5, h5);
    kv_lockop_t *op2 = expect_cb(-1, &data_b);
    assert_ptr_equal(kv_lock_client(op2), CLIENT(1));
    assert_true(kv_lock_holds_self(op2));
    kv_lock_unref(op2);
    expect_unlocked();
    no_more();
    kv_lock_turn_end();
    expect_send(5, KV_LOCK_FRAME_UNLOCK, h5);
    no_more();
}

/* A command run from the FIFO starts an operation on our shard: it waits
 * behind what is still queued, and is granted when its turn comes. */
static kv_lockop_t *hook_op;
static void hook_acquire_self(void)
{
    int s[] = { 2 };
    kv_lock_acquire(s, 1, CLIENT(2), cb, &data_c);
}

static void test_acquire_from_drain(void **state)
{
    (void) state;
    kv_lock_on_lock(1, 3);
    expect_send(1, KV_LOCK_FRAME_LOCKED, 3);
    kv_resp_arg a[1] = { { "mset", 4 } };
    kv_lock_defer_local(SLOT(0), 0, &cmd_a, 1, a);
    defer_str(0, 5, "q");
    no_more();

    on_run_hook = hook_acquire_self;
    kv_lock_on_unlock(1, 3);
    expect_run(SLOT(0), 0, &cmd_a, 1, "mset", 1);
    expect_replay(0, 5, "q", 1);        /* the operation queued behind it */
    hook_op = expect_cb(-1, &data_c);
    no_more();                          /* held by it: not unlocked */
    assert_true(kv_lock_holds_self(hook_op));

    kv_lock_unref(hook_op);
    expect_unlocked();
    no_more();
}

/* A LOCKED nobody waits for (unknown id, or a hold given back) is
 * answered with UNLOCK; a second LOCKED for a hold we have changes
 * nothing (an UNLOCK would free the shard under us). */
static void test_stray_locked(void **state)
{
    (void) state;
    kv_lock_on_locked(3, 123456);
    expect_send(3, KV_LOCK_FRAME_UNLOCK, 123456);
    no_more();

    int shards[] = { 3 };
    kv_lock_acquire(shards, 1, CLIENT(0), cb, &data_a);
    uint64_t h = expect_lock_frame(3);
    kv_lock_on_locked(3, h);
    kv_lockop_t *op = expect_cb(-1, &data_a);
    kv_lock_on_locked(3, h);            /* a second one: ours already */
    no_more();
    kv_lock_unref(op);
    kv_lock_on_locked(3, h);            /* idle, still ours */
    no_more();
    kv_lock_turn_end();
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h);
    kv_lock_on_locked(3, h);            /* after it went back */
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h);
    no_more();
}

/* ---- peers down and resets ------------------------------------------------- */

/* A shard whose worker is down fails the operation at it; the shards
 * locked so far stay held until the last unref. */
static void test_peer_down(void **state)
{
    (void) state;
    peer_down[3] = 1;

    int shards[] = { 4, 3, 1 };
    kv_lock_acquire(shards, 3, CLIENT(0), cb, &data_a);
    uint64_t h1 = expect_lock_frame(1);
    no_more();
    kv_lock_on_locked(1, h1);
    kv_lockop_t *op = expect_cb(3, &data_a);   /* no LOCK to 3, nor to 4 */
    no_more();
    kv_lock_unref(op);
    kv_lock_turn_end();
    expect_send(1, KV_LOCK_FRAME_UNLOCK, h1);
    no_more();

    /* The first shard down: the callback before acquire returns. */
    int first[] = { 5, 3 };
    kv_lock_acquire(first, 2, CLIENT(0), cb, &data_b);
    op = expect_cb(3, &data_b);
    no_more();
    kv_lock_unref(op);
    no_more();

    /* Our shard taken first, then a dead one: ours is held until unref. */
    int withself[] = { 3, 2 };
    kv_lock_acquire(withself, 2, CLIENT(0), cb, &data_c);
    op = expect_cb(3, &data_c);
    no_more();
    assert_true(kv_lock_holds_self(op));
    kv_lock_on_lock(0, 8);
    no_more();
    kv_lock_unref(op);
    expect_send(0, KV_LOCK_FRAME_LOCKED, 8);
    no_more();
    kv_lock_on_unlock(0, 8);
    expect_unlocked();
    no_more();
    peer_down[3] = 0;

    /* A LOCK frame that cannot be sent fails the same way. */
    send_rc = -1;
    int one[] = { 6 };
    kv_lock_acquire(one, 1, CLIENT(0), cb, &data_a);
    uint64_t id2 = expect_lock_frame(6);
    op = expect_cb(6, &data_a);
    no_more();
    send_rc = 0;
    kv_lock_unref(op);
    kv_lock_turn_end();
    no_more();                          /* 6 was never held */
    kv_lock_on_locked(6, id2);          /* should it come after all */
    expect_send(6, KV_LOCK_FRAME_UNLOCK, id2);
    no_more();
}

/* The holder dies: the shard is free, its queued frames and LOCKs go,
 * everybody else's run in order. */
static void test_reset_holder(void **state)
{
    (void) state;
    kv_lock_on_lock(1, 10);
    expect_send(1, KV_LOCK_FRAME_LOCKED, 10);
    defer_str(1, 5, "dead-1");
    defer_str(0, 5, "zero-1");
    kv_lock_on_lock(1, 11);
    kv_resp_arg a[1] = { { "local-1", 7 } };
    kv_lock_defer_local(SLOT(0), 0, &cmd_a, 1, a);
    kv_lock_on_lock(3, 30);
    defer_str(0, 5, "zero-2");
    defer_str(1, 5, "dead-2");
    kv_lock_on_lock(1, 12);
    no_more();

    kv_lock_peer_reset(1);
    expect_replay(0, 5, "zero-1", 1);
    expect_run(SLOT(0), 0, &cmd_a, 1, "local-1", 1);
    expect_send(3, KV_LOCK_FRAME_LOCKED, 30);  /* not 1's LOCK 11 */
    no_more();
    assert_true(kv_lock_held_by(3, 30));
    assert_false(kv_lock_held_by(1, 10));

    kv_lock_on_unlock(1, 10);           /* a late UNLOCK of the dead one */
    no_more();
    assert_true(kv_lock_held_by(3, 30));

    /* The FIFO is still well formed after the removal (its tail). */
    defer_str(4, 5, "four");
    kv_lock_on_unlock(3, 30);
    expect_replay(0, 5, "zero-2", 1);
    expect_replay(4, 5, "four", 0);
    expect_unlocked();
    no_more();
}

/* A peer that does not hold the shard dies: the holder keeps it, the
 * dead one's entries go (including the FIFO's last). */
static void test_reset_waiting_peer(void **state)
{
    (void) state;
    kv_lock_on_lock(0, 1);
    expect_send(0, KV_LOCK_FRAME_LOCKED, 1);
    defer_str(3, 5, "three");
    kv_lock_on_lock(4, 2);
    defer_str(4, 5, "four");
    no_more();

    kv_lock_peer_reset(4);
    no_more();                          /* 0 still holds: nothing runs */
    assert_true(kv_lock_held_by(0, 1));
    assert_true(kv_lock_busy());

    defer_str(5, 5, "five");            /* appended after "three" */
    kv_lock_on_unlock(0, 1);
    expect_replay(3, 5, "three", 1);
    expect_replay(5, 5, "five", 0);
    expect_unlocked();
    no_more();

    /* Everything queued belonged to the dead peer: the FIFO is empty. */
    kv_lock_on_lock(0, 3);
    expect_send(0, KV_LOCK_FRAME_LOCKED, 3);
    defer_str(1, 5, "a");
    kv_lock_on_lock(1, 4);
    kv_lock_peer_reset(1);
    no_more();
    defer_str(3, 5, "b");
    kv_lock_on_unlock(0, 3);
    expect_replay(3, 5, "b", 0);
    expect_unlocked();
    no_more();

    /* The holder dies with nothing queued: free, and said so. */
    kv_lock_on_lock(5, 6);
    expect_send(5, KV_LOCK_FRAME_LOCKED, 6);
    kv_lock_peer_reset(5);
    expect_unlocked();
    no_more();
    assert_false(kv_lock_busy());
}

/* Our operation waits for the LOCKED of a peer that dies: it fails at
 * that shard, keeps (until unref) what it holds, and its late LOCKED is
 * given back. One that held the dead shard goes on without it. */
static void test_reset_coordinator(void **state)
{
    (void) state;
    int shards[] = { 3, 0, 2, 5 };
    kv_lock_acquire(shards, 4, CLIENT(0), cb, &data_a);
    uint64_t h0 = expect_lock_frame(0);
    kv_lock_on_locked(0, h0);
    uint64_t h3 = expect_lock_frame(3);     /* ours (2) taken */
    no_more();
    assert_true(kv_lock_busy());

    kv_lock_peer_reset(3);
    kv_lockop_t *op = expect_cb(3, &data_a);
    no_more();                          /* no LOCK to 5 */
    assert_true(kv_lock_holds_self(op));
    kv_lock_on_locked(3, h3);           /* from nowhere, late */
    expect_send(3, KV_LOCK_FRAME_UNLOCK, h3);
    no_more();

    kv_lock_unref(op);
    expect_unlocked();
    no_more();
    kv_lock_turn_end();
    expect_send(0, KV_LOCK_FRAME_UNLOCK, h0);
    no_more();

    /* The dead peer held one of our shards: no UNLOCK goes to it, and
     * the operation goes on. */
    int s2[] = { 1, 4 };
    kv_lock_acquire(s2, 2, CLIENT(1), cb, &data_b);
    uint64_t h1 = expect_lock_frame(1);
    kv_lock_on_locked(1, h1);
    uint64_t h4 = expect_lock_frame(4);
    kv_lock_peer_reset(1);
    expect_unlocked();                  /* our shard is free: said so */
    no_more();
    kv_lock_on_locked(4, h4);
    op = expect_cb(-1, &data_b);
    kv_lock_unref(op);
    kv_lock_turn_end();
    expect_send(4, KV_LOCK_FRAME_UNLOCK, h4);
    no_more();

    /* A reset of a peer an operation has nothing to do with. */
    int s3[] = { 4 };
    kv_lock_acquire(s3, 1, CLIENT(1), cb, &data_c);
    uint64_t h4b = expect_lock_frame(4);
    kv_lock_peer_reset(5);
    expect_unlocked();                  /* our shard is free: said so */
    no_more();
    kv_lock_on_locked(4, h4b);
    op = expect_cb(-1, &data_c);
    kv_lock_unref(op);
    kv_lock_turn_end();
    expect_send(4, KV_LOCK_FRAME_UNLOCK, h4b);
    no_more();
}

/* A reset fails the operation waiting for the dead shard; the callback
 * drops it, which hands our other hold on to the operation queued for it. */
static void test_reset_many_ops(void **state)
{
    (void) state;
    cb_unref = 1;
    int s[] = { 0, 4 };
    kv_lock_acquire(s, 2, CLIENT(0), cb, &data_a);
    uint64_t h0 = expect_lock_frame(0);
    kv_lock_acquire(s, 2, CLIENT(1), cb, &data_b);     /* queues for 0 */
    kv_lock_on_locked(0, h0);
    uint64_t h4 = expect_lock_frame(4);
    no_more();

    kv_lock_peer_reset(4);              /* the first waits for 4: fails */
    expect_cb(4, &data_a);
    uint64_t h4b = expect_lock_frame(4);    /* the second, holding 0, asks 4 anew */
    assert_true(h4b != h4);
    expect_unlocked();
    no_more();

    kv_lock_peer_reset(0);              /* held 0; waits for 4: goes on */
    expect_unlocked();
    no_more();
    kv_lock_on_locked(4, h4b);
    expect_cb(-1, &data_b);
    no_more();
    kv_lock_turn_end();
    expect_send(4, KV_LOCK_FRAME_UNLOCK, h4b);  /* not to 0 */
    no_more();
}

/* ---- clients --------------------------------------------------------------- */

static void test_client_gone(void **state)
{
    (void) state;
    int s[] = { 1 };
    kv_lock_acquire(s, 1, CLIENT(0), cb, &data_a);
    uint64_t ha = expect_lock_frame(1);
    kv_lock_on_locked(1, ha);
    kv_lockop_t *a = expect_cb(-1, &data_a);

    int t[] = { 3 };
    kv_lock_acquire(t, 1, CLIENT(1), cb, &data_b);
    uint64_t hb = expect_lock_frame(3);
    kv_lock_on_locked(3, hb);
    kv_lockop_t *b = expect_cb(-1, &data_b);

    kv_lock_acquire(t, 1, CLIENT(0), cb, &data_c);  /* waits for b */
    no_more();

    assert_ptr_equal(kv_lock_client(a), CLIENT(0));
    assert_ptr_equal(kv_lock_client(b), CLIENT(1));
    kv_lock_client_gone(CLIENT(0));
    assert_null(kv_lock_client(a));
    assert_ptr_equal(kv_lock_client(b), CLIENT(1));
    no_more();                          /* nothing released */

    kv_lock_unref(b);
    kv_lockop_t *c = expect_cb(-1, &data_c);
    assert_null(kv_lock_client(c));

    kv_lock_client_gone(CLIENT(2));     /* nobody's */
    kv_lock_unref(a);
    kv_lock_unref(c);
    no_more();
    kv_lock_turn_end();
    expect_send(1, KV_LOCK_FRAME_UNLOCK, ha);
    expect_send(3, KV_LOCK_FRAME_UNLOCK, hb);
    no_more();
}

/* One test in a child process: lock.c starts from its initial state. */
static int run_isolated(const struct CMUnitTest *t)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) exit(_cmocka_run_group_tests(t->name, t, 1, NULL, NULL));
    int st;
    if (waitpid(pid, &st, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "%s: killed by signal %d\n", t->name, WTERMSIG(st));
        return 1;
    }
    return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grant_and_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_replay_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_lock_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_ascending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_fairness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_before_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_local_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_local_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_local_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_local_last_from_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_local_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_from_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stray_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_waiting_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_coordinator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_many_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
    };
    int n = (int) (sizeof(tests) / sizeof(tests[0])), failed = 0;
    for (int i = 0; i < n; i++) failed += run_isolated(&tests[i]);
    printf("test_lock: %d of %d tests passed\n", n - failed, n);
    return failed != 0;
}
