/*
 * Routing and forwarding (see forward.h for the model and the frames).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/time.h"
#include "event/ringio.h"
#include "shard/chain.h"
#include "shard/db.h"
#include "shard/forward.h"
#include "shard/block.h"
#include "shard/block_multi.h"
#include "shard/gather.h"
#include "shard/lock.h"
#include "shard/route.h"
#include "persist/aof.h"
#include "persist/snapshot.h"

#define FRAME_REQ     1
#define FRAME_REP     2
#define FRAME_LREQ    3     /* u64 lock id | REQ: runs under the sender's lock */
#define FRAME_LOCK    4     /* u64 lock id (lock.h)                           */
#define FRAME_LOCKED  5
#define FRAME_UNLOCK  6
#define FRAME_BCANCEL 7     /* u64 token | u32 mode: cancel a blocked request  */
#define FRAME_BREADY  8     /* u64 waiter: a key of a multi-shard waiter changed */

typedef struct {
    uint32_t   serial;      /* odd while in use                          */
    uint32_t   peer;
    kv_slot_t *slot;
    int        part;
    uint32_t   next_free;
} pend_t;

typedef struct {
    kv_server_t  *srv;
    kv_segment_t *seg;
    kv_ringio_t  *io;
    int           self;
    pend_t       *pend;
    uint32_t      npend, free_head;     /* free list through next_free   */
    char         *scratch;              /* REQ frame being built         */
    size_t        scratch_cap;
    kv_resp_arg  *rargv;                /* argv of a remote request       */
    int           rargc_cap;
    kv_client_t   remote;               /* stand-in client for REQs      */
    kv_lockop_t  *cur_lock;             /* commands being routed run under it */
    /* The request being run (blocking commands may answer it later). */
    int           depth;                /* call() nesting                */
    int           block_ok;             /* the outermost call may wait   */
    int           deferred;             /* ... and its handler chose to  */
    kv_fwd_target target;
} fwd_t;

static fwd_t F;

#define FRAME_TYPES_MAX 64
static kv_fwd_frame_fn     *frame_fns[FRAME_TYPES_MAX];
static kv_fwd_propagate_fn *propagate_fn;
static int                  propagate_replaced;  /* the handler called _as */

#define NO_PEND UINT32_MAX

/* ---- slots ------------------------------------------------------------- */

static kv_slot_t *slot_new(kv_client_t *c, int nparts, kv_gather_fn *combine)
{
    kv_slot_t *s = calloc(1, sizeof(*s) + (size_t) nparts * sizeof(kv_reply_buf));
    if (!s) abort();
    s->client = c;
    s->nparts = nparts;
    s->outstanding = nparts;
    s->combine = combine;
    kv_reply_buf_init(&s->out);
    for (int i = 0; i < nparts; i++) kv_reply_buf_init(&s->parts[i]);
    if (c->slots_tail) c->slots_tail->next = s;
    else c->slots_head = s;
    c->slots_tail = s;
    s->lock = F.cur_lock;               /* part of a locked operation */
    return s;
}

static void slot_free(kv_slot_t *s)
{
    kv_reply_buf_free(&s->out);
    for (int i = 0; i < s->nparts; i++) kv_reply_buf_free(&s->parts[i]);
    free(s->cdata);
    free(s);
}

static void buf_move(kv_reply_buf *dst, kv_reply_buf *src)
{
    struct iovec iov[64];
    int n;
    while ((n = kv_reply_buf_iov(src, iov, 64)) > 0) {
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            kv_reply_buf_append(dst, iov[i].iov_base, iov[i].iov_len);
            total += iov[i].iov_len;
        }
        kv_reply_buf_consume(src, total);
    }
}

/* Clients given replies since the turn began: written once, at the end
 * of the loop turn (on_turn_end), not once per reply -- as Redis writes
 * in beforeSleep. A pipeline whose replies come back from other workers
 * one by one thus costs one write, not one per command. */
static kv_client_t **flushq;
static size_t        nflushq, capflushq;

static void flush_later(kv_client_t *c)
{
    if (c->flush_queued || c->closing) return;     /* closing: nothing to write */
    if (nflushq == capflushq) {
        capflushq = capflushq ? capflushq * 2 : 64;
        flushq = realloc(flushq, capflushq * sizeof(*flushq));
        if (!flushq) abort();
    }
    flushq[nflushq++] = c;
    c->flush_queued = 1;
}

void kv_fwd_flush_later(kv_client_t *c)
{
    /* Whether the AOF holds the reply is decided now: by the turn's end the
     * commit (a check callback) has run, and after a failed write it would
     * no longer hold a write it did not store. */
    if (!F.io || kv_aof_hold_output(c)) kv_client_flush(c);
    else flush_later(c);
}

static void flush_queued(void)
{
    /* kv_client_flush may close a client (its limit), which takes it out
     * of the queue: index, no cached pointers. */
    for (size_t i = 0; i < nflushq; i++) {
        kv_client_t *c = flushq[i];
        if (!c) continue;
        flushq[i] = NULL;
        c->flush_queued = 0;
        kv_client_flush(c);
    }
    nflushq = 0;
}

static void unqueue_flush(kv_client_t *c)
{
    if (!c->flush_queued) return;
    for (size_t i = 0; i < nflushq; i++) if (flushq[i] == c) flushq[i] = NULL;
    c->flush_queued = 0;
}

/* Move every finished slot at the head of c's FIFO to its output. */
static void drain(kv_client_t *c)
{
    kv_slot_t *s;
    int moved = 0;
    while ((s = c->slots_head) && s->outstanding == 0) {
        c->slots_head = s->next;
        if (!c->slots_head) c->slots_tail = NULL;
        buf_move(&c->out, &s->out);
        slot_free(s);
        moved = 1;
    }
    if (moved) kv_fwd_flush_later(c);
}

/* Clients whose barrier lifted while a command ran: they go on once it
 * is over, so their next command is not run nested inside it (where, for
 * one, a blocking command could not block). */
static kv_client_t **resumes;
static int           nresumes, capresumes;

static void resume(kv_client_t *c)
{
    if (F.depth == 0) {
        kv_client_resume(c);
        return;
    }
    for (int i = 0; i < nresumes; i++) if (resumes[i] == c) return;
    if (nresumes == capresumes) {
        capresumes = capresumes ? capresumes * 2 : 16;
        resumes = realloc(resumes, sizeof(*resumes) * (size_t) capresumes);
        if (!resumes) abort();
    }
    resumes[nresumes++] = c;
}

/* At top level: the clients resumed meanwhile (none is freed before the
 * loop turns: a client goes in its handle's close callback). */
static void run_resumes(void)
{
    while (nresumes > 0) {
        kv_client_t *c = resumes[--nresumes];
        if (!c->barrier) kv_client_resume(c);   /* else it waits for something new */
    }
}

static void part_done(kv_slot_t *s)
{
    if (--s->outstanding > 0) return;
    if (s->combine) s->combine(s);
    if (s->outstanding > 0) return;     /* a chain sent its next round */
    kv_client_t *c = s->client;
    int barrier = s->barrier;
    kv_lockop_t *lock = s->lock_ref ? s->lock : NULL;   /* released once the reply is placed */
    s->lock = NULL, s->lock_ref = 0;
    if (!c) {                           /* its client left meanwhile */
        slot_free(s);
    } else {
        if (c->bslot == s) c->bslot = NULL;
        if (c->slots_head == s) drain(c);   /* may free s */
        if (barrier) {
            c->barrier = 0;
            resume(c);
        }
    }
    if (lock) kv_lock_unref(lock);
}

static kv_reply_buf *part_buf(kv_slot_t *s, int part) { return s->combine ? &s->parts[part] : &s->out; }

/* ---- running here ----------------------------------------------------------- */

/* The first byte of what a handler appended after (t, used): '-' is an
 * error reply. */
static const char *appended(const kv_reply_buf *b, const kv_reply_block *t, uint32_t used, size_t *len)
{
    const kv_reply_block *blk = t ? t : b->head;
    uint32_t off = t ? used : 0;
    if (blk && off >= blk->used) blk = blk->next, off = 0;
    if (!blk || off >= blk->used) return NULL;
    *len = blk->used - off;
    return blk->data + off;
}

static void call_counted(kv_client_t *c, const kv_cmd_t *cmd);

static void call_stats(kv_client_t *c, const kv_cmd_t *cmd);

/* Blocked clients are served after the command that made their keys
 * ready, as Redis does -- after a whole EXEC, and never while a
 * cross-shard operation holds the shard (it would see them served). */
static void call(kv_client_t *c, const kv_cmd_t *cmd)
{
    F.depth++;
    call_stats(c, cmd);
    if (--F.depth == 0 && kv_block_nwaiting() && !kv_lock_busy()) kv_block_serve();
    if (F.depth == 0 && nresumes) run_resumes();
}

static void call_stats(kv_client_t *c, const kv_cmd_t *cmd)
{
    kv_cmd_stats_t *st = kv_cmd_stats(cmd);
    if (!st) {                          /* internal: its parts count */
        call_counted(c, cmd);
        return;
    }
    const kv_reply_block *t = c->out.tail;
    uint32_t used = t ? t->used : 0;
    uint64_t t0 = kv_time_mono_us();
    call_counted(c, cmd);
    st->usec += kv_time_mono_us() - t0;
    st->calls++;
    size_t len = 0;
    const char *r = appended(&c->out, t, used, &len);
    if (r && r[0] == '-') {
        st->failed++;
        kv_cmd_count_error(r, len);
    }
}

/* A write changed these keys: clients blocked on them may be served. */
static void signal_keys(kv_client_t *c, const kv_cmd_t *cmd)
{
    int idx[c->argc + 1], n = kv_gather_keys(c, cmd, idx);
    for (int i = 0; i < n; i++) {
        kv_block_signal(c->argv[idx[i]].ptr, c->argv[idx[i]].len);
        if (kv_bmulti_nregs()) kv_bmulti_signal(c->argv[idx[i]].ptr, c->argv[idx[i]].len);
    }
}

static void call_counted(kv_client_t *c, const kv_cmd_t *cmd)
{
    c->srv->commands++;
    if (kv_aof_refuse(c, cmd)) return;  /* AOF write error: -MISCONF (persist/aof.h) */
    if (kv_snapshot_refuse(c, cmd)) return;     /* a failed BGSAVE: -MISCONF */
    if (!(cmd->flags & KV_CMD_WRITE) || !c->db) {
        cmd->proc(c);
        return;
    }
    uint64_t dirty = c->db->dirty;
    propagate_replaced = 0;
    cmd->proc(c);
    if (c->db->dirty != dirty && propagate_fn && !propagate_replaced) propagate_fn(c->db, c->argc, c->argv);
    propagate_replaced = 0;
    if (c->db->dirty != dirty && (kv_block_nwaiting() || kv_bmulti_nregs())) signal_keys(c, cmd);
}

void kv_fwd_call(kv_client_t *c, const kv_cmd_t *cmd) { call(c, cmd); }

void kv_fwd_propagate_as(kv_client_t *c, int argc, const kv_resp_arg *argv)
{
    propagate_replaced = 1;
    if (propagate_fn && c->db) propagate_fn(c->db, argc, argv);
}

void kv_fwd_set_propagate(kv_fwd_propagate_fn *fn) { propagate_fn = fn; }

void kv_fwd_propagate_raw(kv_client_t *c, int argc, const kv_resp_arg *argv)
{
    if (propagate_fn && c->db) propagate_fn(c->db, argc, argv);
}

void kv_fwd_on_frame(uint16_t type, kv_fwd_frame_fn *fn)
{
    if (type >= KV_FRAME_USER && type < FRAME_TYPES_MAX) frame_fns[type] = fn;
}

int kv_fwd_send(int peer, uint16_t type, const void *bytes, size_t len)
{
    if (!F.io || peer == F.self) return -1;
    return kv_ringio_send(F.io, (uint32_t) peer, type, bytes, len);
}

void kv_fwd_broadcast(uint16_t type, const void *bytes, size_t len)
{
    for (int p = 0; p < kv_route_nshards(); p++)
        if (p != F.self) kv_fwd_send(p, type, bytes, len);
}

int kv_fwd_nshards(void) { return kv_route_nshards(); }

/* Run cmd with the given argv on this shard, its reply into dst. */
static void call_into(kv_client_t *c, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv, kv_reply_buf *dst)
{
    kv_reply_buf saved = c->out;
    int sargc = c->argc;
    kv_resp_arg *sargv = c->argv;
    c->out = *dst;
    c->argc = argc, c->argv = argv;
    call(c, cmd);
    *dst = c->out;
    c->out = saved;
    c->argc = sargc, c->argv = sargv;
}

/* ---- sending ---------------------------------------------------------------- */

/* *p holds at least need bytes (capacity doubling from min). */
static void grow(char **p, size_t *cap, size_t need, size_t min)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : min;
    while (c < need) c *= 2;
    char *nb = realloc(*p, c);
    if (!nb) abort();
    *p = nb, *cap = c;
}

static uint32_t pend_alloc(void)
{
    if (F.free_head == NO_PEND) {
        uint32_t n = F.npend ? F.npend * 2 : 1024;
        pend_t *p = realloc(F.pend, n * sizeof(*p));
        if (!p) abort();
        for (uint32_t i = F.npend; i < n; i++) {
            p[i].serial = 0;
            p[i].slot = NULL;
            p[i].next_free = i + 1 < n ? i + 1 : F.free_head;
        }
        F.free_head = F.npend;
        F.pend = p, F.npend = n;
    }
    uint32_t i = F.free_head;
    F.free_head = F.pend[i].next_free;
    F.pend[i].serial++;                 /* odd: in use */
    return i;
}

static void pend_release(uint32_t i)
{
    F.pend[i].serial++;                 /* even: free; old tokens mismatch */
    F.pend[i].slot = NULL;
    F.pend[i].next_free = F.free_head;
    F.free_head = i;
}

size_t kv_fwd_loading_msg(char *buf, size_t cap, int shard)
{
    int n = snprintf(buf, cap, "-LOADING kevy shard %d is restarting\r\n", shard);
    return n < 0 ? 0 : (size_t) n < cap ? (size_t) n : cap - 1;
}

static void reply_loading(kv_reply_buf *b, int peer)
{
    char msg[96];
    kv_reply_raw(b, msg, kv_fwd_loading_msg(msg, sizeof(msg), peer));
}

static int peer_up(int peer)
{
    return atomic_load_explicit(&F.seg->shard[peer].state, memory_order_acquire) == KV_SHARD_UP;
}

/* Send argv to `peer`; its reply fills part `part` of slot s. */
static void send_req(kv_slot_t *s, int part, int peer, int argc, const kv_resp_arg *argv)
{
    if (!peer_up(peer)) {
        reply_loading(part_buf(s, part), peer);
        part_done(s);
        return;
    }
    size_t need = 20;                   /* room for the lock id in front */
    for (int i = 0; i < argc; i++) need += 4 + argv[i].len;
    grow(&F.scratch, &F.scratch_cap, need, 4096);
    uint32_t idx = pend_alloc();
    F.pend[idx].peer = (uint32_t) peer;
    F.pend[idx].slot = s;
    F.pend[idx].part = part;
    uint64_t token = ((uint64_t) F.pend[idx].serial << 32) | idx;
    char *p = F.scratch + 8;
    uint32_t n32 = (uint32_t) argc;
    memcpy(p, &token, 8), p += 8;
    memcpy(p, &n32, 4), p += 4;
    for (int i = 0; i < argc; i++) {
        n32 = (uint32_t) argv[i].len;
        memcpy(p, &n32, 4), p += 4;
        memcpy(p, argv[i].ptr, argv[i].len), p += argv[i].len;
    }
    /* Under a lock: LREQ, which the locked shard runs at once. */
    uint64_t lock_id = s->lock ? kv_lock_wire_id(s->lock, (int) peer) : 0;
    if (s->lock) memcpy(F.scratch, &lock_id, 8);
    else kv_lock_before_request((int) peer);
    if (kv_ringio_send(F.io, (uint32_t) peer, s->lock ? FRAME_LREQ : FRAME_REQ, F.scratch + (s->lock ? 0 : 8),
                       s->lock ? need : need - 8) != 0) {
        pend_release(idx);
        kv_reply_errorf(part_buf(s, part), "internal error: cannot reach shard %d", peer);
        part_done(s);
    }
}

/* ---- receiving ---------------------------------------------------------------- */

/* AOF group commit (DESIGN invariant 4, persist/aof.h): while this loop
 * turn's AOF bytes are not yet written (+fsynced), REP frames wait here as
 * records (u32 peer | u32 len | token + reply) and leave from
 * kv_fwd_release_held(), which the AOF calls right after its commit. */
static struct { char *p; size_t len, cap; } held_reps;

static void hold_rep(uint32_t peer, uint64_t token, kv_reply_buf *out)
{
    size_t n = kv_reply_buf_len(out), need = held_reps.len + 16 + n;
    grow(&held_reps.p, &held_reps.cap, need, 65536);
    char *p = held_reps.p + held_reps.len;
    uint32_t len32 = (uint32_t) (8 + n);
    memcpy(p, &peer, 4), memcpy(p + 4, &len32, 4), memcpy(p + 8, &token, 8);
    p += 16;
    struct iovec iov[64];
    size_t off = 0;
    while (off < n) {                   /* moves the reply out of *out */
        int k = kv_reply_buf_iov(out, iov, 64);
        size_t got = 0;
        for (int i = 0; i < k; i++) {
            memcpy(p + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len, got += iov[i].iov_len;
        }
        kv_reply_buf_consume(out, got);
    }
    held_reps.len = need;
}

void kv_fwd_release_held(void)
{
    if (!held_reps.len || !F.io) return;
    for (size_t i = 0; i < held_reps.len;) {
        uint32_t peer, len32;
        memcpy(&peer, held_reps.p + i, 4), memcpy(&len32, held_reps.p + i + 4, 4);
        kv_ringio_send(F.io, peer, FRAME_REP, held_reps.p + i + 8, len32);
        i += 8 + len32;
    }
    held_reps.len = 0;
    kv_ringio_flush(F.io);
}

/* Send `token | out's bytes` to `to` (out is emptied), or hold it for the
 * AOF commit. */
static void send_rep(uint32_t to, uint64_t token, kv_reply_buf *out)
{
    if (kv_aof_hold_replies()) {        /* AOF group commit: see hold_rep */
        hold_rep(to, token, out);
        kv_reply_buf_reset(out);
        return;
    }
    struct iovec iov[65];
    iov[0].iov_base = &token;
    iov[0].iov_len = 8;
    int n = kv_reply_buf_iov(out, iov + 1, 64);
    if (n == 64 && kv_reply_buf_len(out) > 0) {
        /* A reply spread over more blocks than we gather: flatten it. */
        size_t total;
        char *flat = kv_gather_flatten(out, &total);
        iov[1].iov_base = flat, iov[1].iov_len = total;
        kv_ringio_sendv(F.io, to, FRAME_REP, iov, 2);
        free(flat);
    } else {
        kv_ringio_sendv(F.io, to, FRAME_REP, iov, n + 1);
    }
    kv_reply_buf_reset(out);
}

/* A request from a peer. may_block: a plain REQ (not part of a locked
 * operation), whose blocking command may wait here. */
static void on_req(uint32_t from, const char *p, size_t len, int may_block)
{
    uint64_t token;
    uint32_t argc;
    if (len < 12) return;
    memcpy(&token, p, 8);
    memcpy(&argc, p + 8, 4);
    const char *end = p + len;
    p += 12;
    if ((int) argc > F.rargc_cap) {
        int cap = (int) argc;
        kv_resp_arg *a = realloc(F.rargv, (size_t) cap * sizeof(*a));
        if (!a) abort();
        F.rargv = a, F.rargc_cap = cap;
    }
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t n;
        if (end - p < 4) return;
        memcpy(&n, p, 4);
        p += 4;
        if ((size_t) (end - p) < n) return;
        F.rargv[i].ptr = p;
        F.rargv[i].len = n;
        p += n;
    }
    kv_client_t *c = &F.remote;
    const kv_cmd_t *cmd = argc ? kv_cmd_lookup_any(F.rargv[0].ptr, F.rargv[0].len) : NULL;
    if (!cmd) kv_reply_error_cstr(&c->out, "internal error: unknown forwarded command");
    else {
        c->argc = (int) argc, c->argv = F.rargv;
        F.block_ok = may_block && (cmd->flags & KV_CMD_BLOCKING);
        F.target = (kv_fwd_target) { (int) from, token, NULL, 0 };
        call(c, cmd);
        F.block_ok = 0;
        if (F.deferred) {               /* a blocking command waits here */
            F.deferred = 0;
            kv_reply_buf_reset(&c->out);
            return;
        }
    }
    send_rep(from, token, &c->out);
}

static void on_rep(const char *p, size_t len)
{
    uint64_t token;
    if (len < 8) return;
    memcpy(&token, p, 8);
    uint32_t idx = (uint32_t) token, serial = (uint32_t) (token >> 32);
    if (idx >= F.npend || F.pend[idx].serial != serial || !F.pend[idx].slot) return;
    kv_slot_t *s = F.pend[idx].slot;
    int part = F.pend[idx].part;
    pend_release(idx);
    kv_reply_buf_append(part_buf(s, part), p + 8, len - 8);
    part_done(s);
}

static uint64_t get_u64(const void *bytes, size_t len)
{
    uint64_t v = 0;
    if (len >= 8) memcpy(&v, bytes, 8);
    return v;
}

/* A locked operation's request: the shard is locked by its sender. */
static void on_lreq(uint32_t from, const char *p, size_t len)
{
    if (len < 20) return;
    if (kv_lock_held_by((int) from, get_u64(p, len))) {
        on_req(from, p + 8, len - 8, 0);
        return;
    }
    kv_reply_error_cstr(&F.remote.out, "internal error: shard not locked by the requester");
    send_rep(from, get_u64(p + 8, len - 8), &F.remote.out);
}

static void on_frame(kv_ringio_t *io, uint32_t from, uint16_t type, const void *bytes, size_t len, void *data)
{
    (void) io, (void) data;
    switch (type) {
    case FRAME_REQ:                     /* waits while the shard is locked */
        if (kv_lock_busy()) kv_lock_defer_frame((int) from, type, bytes, len);
        else on_req(from, bytes, len, 1);
        break;
    case FRAME_REP: on_rep(bytes, len); break;
    case FRAME_LREQ: on_lreq(from, bytes, len); break;
    case FRAME_LOCK: kv_lock_on_lock((int) from, get_u64(bytes, len)); break;
    case FRAME_LOCKED: kv_lock_on_locked((int) from, get_u64(bytes, len)); break;
    case FRAME_UNLOCK: kv_lock_on_unlock((int) from, get_u64(bytes, len)); break;
    case FRAME_BREADY: kv_bmulti_ready(get_u64(bytes, len)); break;
    case FRAME_BCANCEL: {
        uint32_t mode = 0;
        if (len >= 12) memcpy(&mode, (const char *) bytes + 8, 4);
        kv_block_cancel((int) from, get_u64(bytes, len), NULL, (int) mode);
        break;
    }
    default:
        if (type < FRAME_TYPES_MAX && frame_fns[type]) frame_fns[type]((int) from, bytes, len);
    }
}

void kv_fwd_replay_frame(int from, uint16_t type, const void *bytes, size_t len)
{
    if (type == FRAME_REQ) on_req((uint32_t) from, bytes, len, 1);
}

int kv_fwd_send_lock_frame(int peer, int which, uint64_t id)
{
    static const uint16_t types[] = { FRAME_LOCK, FRAME_LOCKED, FRAME_UNLOCK };
    return kv_fwd_send(peer, types[which], &id, 8);
}

int kv_fwd_peer_up(int peer) { return peer_up(peer); }

void kv_fwd_send_bready(int peer, uint64_t wid) { kv_fwd_send(peer, FRAME_BREADY, &wid, 8); }

/* A peer died: nothing it owed us will come; answer -LOADING instead. */
/* The end of a loop turn: holds on other shards nobody of ours wants go
 * back (lock.c); clients given replies get them written. */
static void on_turn_end(kv_ringio_t *io, void *data)
{
    (void) io, (void) data;
    kv_lock_turn_end();
    flush_queued();
}

static void on_peer_reset(kv_ringio_t *io, uint32_t peer, uint32_t old_gen, uint32_t new_gen, void *data)
{
    (void) io, (void) data;
    int failed = 0;
    for (uint32_t i = 0; i < F.npend; i++) {
        pend_t *e = &F.pend[i];
        if (!(e->serial & 1) || !e->slot || e->peer != peer) continue;
        kv_slot_t *s = e->slot;
        int part = e->part;
        pend_release(i);
        reply_loading(part_buf(s, part), (int) peer);
        part_done(s);
        failed++;
    }
    kv_block_peer_reset((int) peer);
    kv_bmulti_peer_reset((int) peer);
    kv_lock_peer_reset((int) peer);
    kv_log_verbose("shard %u restarted (generation %u -> %u); %d requests to it failed",
                   peer, old_gen, new_gen, failed);
}

/* ---- routing --------------------------------------------------------------------- */

/* A blocking command that may wait (XREAD/XREADGROUP only with BLOCK):
 * its client's next commands wait for its answer, as in Redis. */
static int may_block(const kv_client_t *c, const kv_cmd_t *cmd)
{
    if (!(cmd->flags & KV_CMD_BLOCKING) || F.cur_lock) return 0;
    if (cmd->name[0] != 'x') return 1;
    for (int i = 1; i < c->argc; i++)
        if (c->argv[i].len == 5 && !strncasecmp(c->argv[i].ptr, "block", 5)) return 1;
    return 0;
}

kv_slot_t *kv_fwd_blocking_slot(kv_client_t *c)
{
    kv_slot_t *s = slot_new(c, 1, NULL);
    s->barrier = 1;
    c->barrier = 1;
    c->bslot = s;
    return s;
}

/* This shard is held by an operation other than the one being routed. */
static int must_wait_here(const kv_lockop_t *op) { return kv_lock_busy() && !kv_lock_holds_self(op); }

/* Run cmd for the client; its reply may come later (blocking) into s. */
static void run_into_slot(kv_client_t *c, kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv)
{
    F.block_ok = c != &F.remote || (s->client && (cmd->flags & KV_CMD_BLOCKING));
    F.target = (kv_fwd_target) { F.self, 0, s, part };
    call_into(c, cmd, argc, argv, part_buf(s, part));
    F.block_ok = 0;
    if (F.deferred) F.deferred = 0;     /* answered later by kv_fwd_answer */
    else part_done(s);
}

static void run_here(kv_client_t *c, const kv_cmd_t *cmd)
{
    if (cmd->route != KV_ROUTE_LOCAL && must_wait_here(F.cur_lock)) {
        /* Locked by a cross-shard operation: wait in its FIFO; the
         * client's next commands wait too, to keep their order. */
        kv_slot_t *s = may_block(c, cmd) ? kv_fwd_blocking_slot(c) : slot_new(c, 1, NULL);
        s->barrier = 1;
        c->barrier = 1;
        kv_lock_defer_local(s, 0, cmd, c->argc, c->argv);
        return;
    }
    if (may_block(c, cmd)) {
        run_into_slot(c, kv_fwd_blocking_slot(c), 0, cmd, c->argc, c->argv);
        return;
    }
    if (!c->slots_head) {
        call(c, cmd);
        return;
    }
    kv_slot_t *s = slot_new(c, 1, NULL);
    call_into(c, cmd, c->argc, c->argv, &s->out);
    part_done(s);
}

static void run_on(kv_client_t *c, const kv_cmd_t *cmd, int owner)
{
    if (owner == F.self) {
        run_here(c, cmd);
        return;
    }
    kv_slot_t *s = may_block(c, cmd) ? kv_fwd_blocking_slot(c) : slot_new(c, 1, NULL);
    send_req(s, 0, owner, c->argc, c->argv);
}

void kv_fwd_run_waiting(kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv)
{
    run_into_slot(&F.remote, s, part, cmd, argc, argv);
}

/* Run a per-shard sub-request: here, or on the peer. */
void kv_fwd_part(kv_slot_t *s, int part, int shard, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv)
{
    if (shard == F.self) {
        if (must_wait_here(s->lock)) {
            kv_lock_defer_local(s, part, cmd, argc, argv);
            return;
        }
        /* The stand-in client: a part is a data command that needs no
         * connection, and the real client may already be gone. */
        call_into(&F.remote, cmd, argc, argv, part_buf(s, part));
        part_done(s);
    } else {
        send_req(s, part, shard, argc, argv);
    }
}

void kv_fwd_part_done(kv_slot_t *s) { part_done(s); }

kv_slot_t *kv_fwd_detached(int nparts, kv_gather_fn *combine)
{
    kv_slot_t *s = calloc(1, sizeof(*s) + (size_t) nparts * sizeof(kv_reply_buf));
    if (!s) abort();
    s->nparts = s->outstanding = nparts;
    s->combine = combine;
    kv_reply_buf_init(&s->out);
    for (int i = 0; i < nparts; i++) kv_reply_buf_init(&s->parts[i]);
    s->lock = F.cur_lock;               /* part of a locked operation */
    return s;                           /* no client: freed when answered */
}

void kv_fwd_keep_lock(kv_slot_t *s)
{
    if (!s->lock || s->lock_ref) return;
    kv_lock_ref(s->lock);
    s->lock_ref = 1;
}

kv_slot_t *kv_fwd_slot(kv_client_t *c, int nparts, kv_gather_fn *combine)
{
    return slot_new(c, nparts, combine);
}

int kv_fwd_self(void) { return F.self; }

kv_server_t *kv_fwd_server(void) { return F.srv; }

/* Keys on several shards: a chain (several rounds), a split, or a run on
 * copies of the keys. */
static void route_multi(kv_client_t *c, const kv_cmd_t *cmd, int split)
{
    int how = kv_chain_route(c, cmd);
    if (how == KV_CHAIN_ERROR) run_here(c, cmd);
    else if (how == KV_CHAIN_NO) {
        if (split) kv_gather_split(c, cmd);
        else kv_chain_scatter(c, cmd);
    }
}

/* ---- commands over several shards, under their locks ---------------------------- */

typedef struct {
    const kv_cmd_t *cmd;
    int             split, argc;
    kv_resp_arg    *argv;           /* argument bytes follow the array */
} locked_cmd_t;

void kv_fwd_reply_raw(kv_client_t *c, const char *msg, size_t len)
{
    kv_slot_t *s = slot_new(c, 1, NULL);
    kv_reply_raw(&s->out, msg, len);
    part_done(s);
}

static void locked_cmd_run(kv_lockop_t *op, int failed, void *data)
{
    locked_cmd_t *lc = data;
    kv_client_t *c = kv_lock_client(op);
    if (c && failed >= 0) {
        char msg[96];
        kv_fwd_reply_raw(c, msg, kv_fwd_loading_msg(msg, sizeof(msg), failed));
        kv_client_resume(c);
    } else if (c) {
        c->argc = lc->argc, c->argv = lc->argv;
        c->barrier = 0;
        F.cur_lock = op;                /* its slots take a reference */
        route_multi(c, lc->cmd, lc->split);
        F.cur_lock = NULL;
        if (!c->barrier) kv_client_resume(c);   /* else a chain resumes it */
    }
    free(lc);
    kv_lock_unref(op);
}

/* The shards of the command's keys; 0 when the arguments are malformed
 * (the handler will say so) or name no key. */
static int key_shards(kv_client_t *c, const kv_cmd_t *cmd, int *shards)
{
    int idx[c->argc + 1], n = kv_gather_keys(c, cmd, idx);
    for (int i = 0; i < n; i++) shards[i] = kv_route_shard(c->argv[idx[i]].ptr, c->argv[idx[i]].len);
    return n > 0 ? n : 0;
}

static void route_locked(kv_client_t *c, const kv_cmd_t *cmd, int split)
{
    int shards[c->argc + 1], n;
    if (F.cur_lock || (n = key_shards(c, cmd, shards)) == 0) {
        route_multi(c, cmd, split);     /* already locked, or malformed */
        return;
    }
    locked_cmd_t *lc = malloc(sizeof(*lc) + kv_resp_argv_size(c->argc, c->argv));
    if (!lc) abort();
    lc->cmd = cmd, lc->split = split, lc->argc = c->argc;
    lc->argv = kv_resp_argv_copy(lc + 1, c->argc, c->argv);
    c->barrier = 1;                     /* its next commands wait for it */
    kv_lock_acquire(shards, n, c, locked_cmd_run, lc);
}

kv_lockop_t *kv_fwd_under_lock(kv_lockop_t *op)
{
    kv_lockop_t *prev = F.cur_lock;
    F.cur_lock = op;
    return prev;
}

void kv_fwd_dispatch(kv_client_t *c, const kv_cmd_t *cmd)
{
    int n = kv_route_nshards();
    if (n == 1 || cmd->route == KV_ROUTE_LOCAL) {
        run_here(c, cmd);
        return;
    }
    switch (cmd->route) {
    case KV_ROUTE_KEY:
        if (!(cmd->flags & KV_CMD_MOVABLE)) {
            run_on(c, cmd, kv_route_shard(c->argv[cmd->first_key].ptr, c->argv[cmd->first_key].len));
            return;
        }
        __attribute__((fallthrough));   /* its keys are more than first_key */
    case KV_ROUTE_KEYS: {
        int owner = kv_gather_single_owner(c, cmd);
        if (owner >= 0) run_on(c, cmd, owner);
        else if (may_block(c, cmd)) kv_bmulti_start(c, cmd);
        else route_locked(c, cmd, 1);
        return;
    }
    case KV_ROUTE_ALL:
        kv_gather_all(c, cmd);
        return;
    default: {
        int owner = cmd->first_key > 0 ? kv_gather_single_owner(c, cmd) : -1;
        if (owner >= 0) run_on(c, cmd, owner);
        else if (may_block(c, cmd)) kv_bmulti_start(c, cmd);
        else if (cmd->first_key > 0) route_locked(c, cmd, 0);
        else route_multi(c, cmd, 0);    /* SCAN: shard by shard, no lock */
        return;
    }
    }
}

/* ---- answering later (blocking commands) ------------------------------------------ */

int kv_fwd_can_block(void) { return F.block_ok && F.depth == 1; }

void kv_fwd_defer_reply(kv_fwd_target *t)
{
    *t = F.target;
    F.deferred = 1;
}

void kv_fwd_answer(const kv_fwd_target *t, kv_reply_buf *b)
{
    if (t->peer != F.self) {
        send_rep((uint32_t) t->peer, t->token, b);
        return;
    }
    buf_move(part_buf(t->slot, t->part), b);
    part_done(t->slot);
}

void kv_fwd_run_local(const kv_cmd_t *cmd, int argc, kv_resp_arg *argv, kv_reply_buf *out)
{
    int saved = F.block_ok;
    F.block_ok = 0;
    call_into(&F.remote, cmd, argc, argv, out);
    F.block_ok = saved;
}

int kv_fwd_locked(void) { return kv_lock_busy(); }

void kv_fwd_unlocked(void)
{
    if (kv_block_nwaiting() && F.depth == 0) kv_block_serve();
}

int kv_fwd_unblock(kv_client_t *c, int mode)
{
    kv_slot_t *s = c->bslot;
    if (!s) return 0;
    if (kv_bmulti_cancel(s, mode)) return 1;
    for (uint32_t i = 0; i < F.npend; i++) {
        pend_t *e = &F.pend[i];
        if (!(e->serial & 1) || e->slot != s) continue;
        char msg[12];
        uint64_t token = ((uint64_t) e->serial << 32) | i;
        uint32_t m = (uint32_t) mode;
        memcpy(msg, &token, 8), memcpy(msg + 8, &m, 4);
        kv_fwd_send((int) e->peer, FRAME_BCANCEL, msg, sizeof(msg));
        return 1;
    }
    kv_block_cancel(F.self, 0, s, mode);
    return 1;
}

kv_slot_t *kv_fwd_hold(kv_client_t *c)
{
    if (!c->slots_head) return NULL;
    kv_slot_t *s = slot_new(c, 1, NULL);
    kv_reply_buf tmp = c->out;          /* swap: c->out becomes the slot's */
    c->out = s->out;
    s->out = tmp;
    return s;
}

void kv_fwd_release(kv_client_t *c, kv_slot_t *s)
{
    if (!s) return;
    kv_reply_buf tmp = c->out;
    c->out = s->out;
    s->out = tmp;
    part_done(s);
}

void kv_fwd_client_gone(kv_client_t *c)
{
    if (c->bslot) kv_fwd_unblock(c, KV_UNBLOCK_GONE);
    c->bslot = NULL;
    kv_lock_client_gone(c);
    kv_slot_t *s = c->slots_head, *next;
    for (; s; s = next) {
        next = s->next;
        s->client = NULL;
        s->next = NULL;
        if (s->outstanding == 0) slot_free(s);
    }
    c->slots_head = c->slots_tail = NULL;
    unqueue_flush(c);
}

int kv_fwd_start(kv_server_t *srv, uv_loop_t *loop, kv_segment_t *seg, int self, uint32_t spin_us)
{
    memset(&F, 0, sizeof(F));
    F.srv = srv, F.seg = seg, F.self = self;
    F.free_head = NO_PEND;
    F.remote.srv = srv;
    F.remote.db = srv->db;
    kv_reply_buf_init(&F.remote.out);
    kv_ringio_conf_t conf = { .on_frame = on_frame, .on_peer_reset = on_peer_reset, .spin_us = spin_us,
                              .on_turn_end = on_turn_end };
    F.io = kv_ringio_start(loop, seg, (uint32_t) self, &conf, NULL);
    if (!F.io) {
        kv_log_warning("cannot attach to the rings: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void kv_fwd_stop(void)
{
    if (F.io) kv_ringio_stop(F.io);
    F.io = NULL;
}
