/*
 * Routing and forwarding (see forward.h for the model and the frames).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/time.h"
#include "event/ringio.h"
#include "shard/chain.h"
#include "shard/db.h"
#include "shard/forward.h"
#include "shard/gather.h"
#include "shard/route.h"
#include "persist/aof.h"
#include "persist/snapshot.h"

#define FRAME_REQ 1
#define FRAME_REP 2

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
    if (moved) kv_client_flush(c);
}

static void part_done(kv_slot_t *s)
{
    if (--s->outstanding > 0) return;
    if (s->combine) s->combine(s);
    if (s->outstanding > 0) return;     /* a chain sent its next round */
    kv_client_t *c = s->client;
    int barrier = s->barrier;
    if (!c) {                           /* its client left meanwhile */
        slot_free(s);
        return;
    }
    if (c->slots_head == s) drain(c);   /* may free s */
    if (barrier) kv_client_resume(c);
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

static void call(kv_client_t *c, const kv_cmd_t *cmd)
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

static void call_counted(kv_client_t *c, const kv_cmd_t *cmd)
{
    c->srv->commands++;
    if (kv_aof_refuse(c, cmd)) return;  /* AOF write error: -MISCONF (persist/aof.h) */
    if (kv_snapshot_refuse(c, cmd)) return;     /* a failed BGSAVE: -MISCONF */
    if (!propagate_fn || !(cmd->flags & KV_CMD_WRITE) || !c->db) {
        cmd->proc(c);
        return;
    }
    uint64_t dirty = c->db->dirty;
    propagate_replaced = 0;
    cmd->proc(c);
    if (c->db->dirty != dirty && !propagate_replaced) propagate_fn(c->db, c->argc, c->argv);
    propagate_replaced = 0;
}

void kv_fwd_call(kv_client_t *c, const kv_cmd_t *cmd) { call(c, cmd); }

void kv_fwd_propagate_as(kv_client_t *c, int argc, const kv_resp_arg *argv)
{
    propagate_replaced = 1;
    if (propagate_fn && c->db) propagate_fn(c->db, argc, argv);
}

void kv_fwd_set_propagate(kv_fwd_propagate_fn *fn) { propagate_fn = fn; }

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

static void reply_loading(kv_reply_buf *b, int peer)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "-LOADING kevy shard %d is restarting\r\n", peer);
    kv_reply_raw(b, msg, (size_t) n);
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
    size_t need = 12;
    for (int i = 0; i < argc; i++) need += 4 + argv[i].len;
    if (need > F.scratch_cap) {
        size_t cap = F.scratch_cap ? F.scratch_cap : 4096;
        while (cap < need) cap *= 2;
        char *nb = realloc(F.scratch, cap);
        if (!nb) abort();
        F.scratch = nb, F.scratch_cap = cap;
    }
    uint32_t idx = pend_alloc();
    F.pend[idx].peer = (uint32_t) peer;
    F.pend[idx].slot = s;
    F.pend[idx].part = part;
    uint64_t token = ((uint64_t) F.pend[idx].serial << 32) | idx;
    char *p = F.scratch;
    uint32_t n32 = (uint32_t) argc;
    memcpy(p, &token, 8), p += 8;
    memcpy(p, &n32, 4), p += 4;
    for (int i = 0; i < argc; i++) {
        n32 = (uint32_t) argv[i].len;
        memcpy(p, &n32, 4), p += 4;
        memcpy(p, argv[i].ptr, argv[i].len), p += argv[i].len;
    }
    if (kv_ringio_send(F.io, (uint32_t) peer, FRAME_REQ, F.scratch, need) != 0) {
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
    if (need > held_reps.cap) {
        size_t cap = held_reps.cap ? held_reps.cap : 65536;
        while (cap < need) cap *= 2;
        char *nb = realloc(held_reps.p, cap);
        if (!nb) abort();
        held_reps.p = nb, held_reps.cap = cap;
    }
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

static void on_req(uint32_t from, const char *p, size_t len)
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
        call(c, cmd);
    }

    if (kv_aof_hold_replies()) {        /* AOF group commit: see hold_rep */
        hold_rep(from, token, &c->out);
        kv_reply_buf_reset(&c->out);
        return;
    }
    struct iovec iov[65];
    iov[0].iov_base = &token;
    iov[0].iov_len = 8;
    int n = kv_reply_buf_iov(&c->out, iov + 1, 64);
    if (n == 64 && kv_reply_buf_len(&c->out) > 0) {
        /* A reply spread over more blocks than we gather: flatten it. */
        size_t total = kv_reply_buf_len(&c->out);
        char *flat = malloc(8 + total);
        if (!flat) abort();
        memcpy(flat, &token, 8);
        size_t off = 8;
        while ((n = kv_reply_buf_iov(&c->out, iov, 64)) > 0) {
            size_t got = 0;
            for (int i = 0; i < n; i++) {
                memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
                off += iov[i].iov_len, got += iov[i].iov_len;
            }
            kv_reply_buf_consume(&c->out, got);
        }
        kv_ringio_send(F.io, from, FRAME_REP, flat, off);
        free(flat);
    } else {
        kv_ringio_sendv(F.io, from, FRAME_REP, iov, n + 1);
    }
    kv_reply_buf_reset(&c->out);
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

static void on_frame(kv_ringio_t *io, uint32_t from, uint16_t type, const void *bytes, size_t len, void *data)
{
    (void) io, (void) data;
    if (type == FRAME_REQ) on_req(from, bytes, len);
    else if (type == FRAME_REP) on_rep(bytes, len);
    else if (type < FRAME_TYPES_MAX && frame_fns[type]) frame_fns[type]((int) from, bytes, len);
}

/* A peer died: nothing it owed us will come; answer -LOADING instead. */
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
    kv_log_verbose("shard %u restarted (generation %u -> %u); %d requests to it failed",
                   peer, old_gen, new_gen, failed);
}

/* ---- routing --------------------------------------------------------------------- */

static void run_here(kv_client_t *c, const kv_cmd_t *cmd)
{
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
    kv_slot_t *s = slot_new(c, 1, NULL);
    send_req(s, 0, owner, c->argc, c->argv);
}

/* Run a per-shard sub-request: here, or on the peer. */
void kv_fwd_part(kv_slot_t *s, int part, int shard, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv)
{
    if (shard == F.self) {
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
    return s;                           /* no client: freed when answered */
}

kv_slot_t *kv_fwd_slot(kv_client_t *c, int nparts, kv_gather_fn *combine)
{
    return slot_new(c, nparts, combine);
}

int kv_fwd_self(void) { return F.self; }

kv_server_t *kv_fwd_server(void) { return F.srv; }

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
        int owner = kv_gather_single_owner(c, cmd), how;
        if (owner >= 0) run_on(c, cmd, owner);
        else if ((how = kv_chain_route(c, cmd)) == KV_CHAIN_ERROR) run_here(c, cmd);
        else if (how == KV_CHAIN_NO) kv_gather_split(c, cmd);
        return;
    }
    case KV_ROUTE_ALL:
        kv_gather_all(c, cmd);
        return;
    default: {
        int owner = cmd->first_key > 0 ? kv_gather_single_owner(c, cmd) : -1, how;
        if (owner >= 0) run_on(c, cmd, owner);
        else if ((how = kv_chain_route(c, cmd)) == KV_CHAIN_ERROR) run_here(c, cmd);
        else if (how == KV_CHAIN_NO) kv_chain_scatter(c, cmd);
        return;
    }
    }
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
    kv_slot_t *s = c->slots_head, *next;
    for (; s; s = next) {
        next = s->next;
        s->client = NULL;
        s->next = NULL;
        if (s->outstanding == 0) slot_free(s);
    }
    c->slots_head = c->slots_tail = NULL;
}

int kv_fwd_start(kv_server_t *srv, uv_loop_t *loop, kv_segment_t *seg, int self, uint32_t spin_us)
{
    memset(&F, 0, sizeof(F));
    F.srv = srv, F.seg = seg, F.self = self;
    F.free_head = NO_PEND;
    F.remote.srv = srv;
    F.remote.db = srv->db;
    kv_reply_buf_init(&F.remote.out);
    kv_ringio_conf_t conf = { .on_frame = on_frame, .on_peer_reset = on_peer_reset, .spin_us = spin_us };
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
