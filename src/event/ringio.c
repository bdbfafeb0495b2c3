/* ringio: rings + doorbell + libuv; the contract is in ringio.h. */
#include "event/ringio.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "event/doorbell.h"
#include "event/ring.h"

#define BATCH_DEFAULT 256u

/* Backlog entry: a frame header (len, type, flags; generations are
 * stamped when it reaches the ring) and the payload, 8-byte aligned. */
typedef struct {
    uint32_t len;
    uint16_t type, flags;
} bl_hdr_t;

typedef struct {
    kv_ring_prod_t prod;      /* self -> peer                           */
    kv_ring_cons_t cons;      /* peer -> self                           */
    uint32_t       gen;       /* peer's generation as we know it        */
    uint8_t       *bl;        /* backlog byte queue [bl_rd, bl_wr)      */
    size_t         bl_rd, bl_wr, bl_cap;
    uint64_t       bl_frames;
    uint8_t       *asm_buf;   /* reassembly of a split message          */
    size_t         asm_len, asm_cap;
    uint16_t       asm_type;
} peer_t;

struct kv_ringio_s {
    uv_loop_t       *loop;
    kv_segment_t    *seg;
    kv_doorbell_t   *bell;
    kv_shard_ctl_t  *ctl;
    uint32_t         self, n, gen;
    kv_ringio_conf_t conf;
    void            *data;
    peer_t          *peer;
    uint64_t         rx_pending[KV_BELL_WORDS];  /* rings to drain next turn */
    uint64_t         tx_pending[KV_BELL_WORDS];  /* targets to flush         */
    uint64_t         backlog;
    kv_ringio_stats_t st;

    uv_prepare_t     prepare;
    uv_idle_t        idle;
    uv_async_t       async;
    int              open_handles;
    bool             parked;
    uint64_t         last_work_us;

    /* doorbell thread: odd `armed` = loop parked, wait on the bell */
    pthread_t        thread;
    bool             thread_started;
    _Atomic uint32_t armed;
    _Atomic uint32_t park_seq;
    _Atomic uint32_t stop;
};

static inline void bit_set(uint64_t *m, uint32_t i) { m[i >> 6] |= 1ull << (i & 63); }
static inline void bit_clr(uint64_t *m, uint32_t i) { m[i >> 6] &= ~(1ull << (i & 63)); }

/* ---- backlog ---------------------------------------------------------- */

static void *bl_reserve(peer_t *p, size_t len, uint16_t type, uint16_t flags)
{
    size_t need = sizeof(bl_hdr_t) + ((len + 7) & ~(size_t)7);
    if (p->bl_cap - p->bl_wr < need) {
        if (p->bl_rd > 0) {            /* compact before growing */
            memmove(p->bl, p->bl + p->bl_rd, p->bl_wr - p->bl_rd);
            p->bl_wr -= p->bl_rd;
            p->bl_rd = 0;
        }
        if (p->bl_cap - p->bl_wr < need) {
            size_t cap = p->bl_cap ? p->bl_cap : 4096;
            while (cap - p->bl_wr < need)
                cap *= 2;
            uint8_t *nb = realloc(p->bl, cap);
            if (nb == NULL)
                return NULL;
            p->bl = nb;
            p->bl_cap = cap;
        }
    }
    bl_hdr_t *h = (bl_hdr_t *)(p->bl + p->bl_wr);
    h->len = (uint32_t)len;
    h->type = type;
    h->flags = flags;
    p->bl_wr += need;
    p->bl_frames++;
    return h + 1;
}

static void bl_drop(kv_ringio_t *io, peer_t *p)
{
    io->st.backlog_dropped += p->bl_frames;
    io->backlog -= p->bl_frames;
    p->bl_frames = 0;
    p->bl_rd = p->bl_wr = 0;
}

/* Move backlog frames into the ring while they fit. */
static void bl_drain(kv_ringio_t *io, peer_t *p)
{
    while (p->bl_frames) {
        bl_hdr_t *h = (bl_hdr_t *)(p->bl + p->bl_rd);
        int r = kv_ring_push(&p->prod, h->type, h->flags, h + 1, h->len);
        if (r == -ENOSPC) {
            /* ask the consumer to ring us when it frees space; if it
             * already did meanwhile, just try again */
            if (kv_ring_want_space(&p->prod, h->len))
                continue;
            break;
        }
        p->bl_rd += sizeof(bl_hdr_t) + ((h->len + 7) & ~(size_t)7);
        p->bl_frames--;
        io->backlog--;
    }
    if (p->bl_frames == 0)
        p->bl_rd = p->bl_wr = 0;
}

/* ---- send ------------------------------------------------------------- */

typedef struct {
    const struct iovec *iov;
    int cnt, i;
    size_t off;
} cursor_t;

static void cursor_copy(cursor_t *c, uint8_t *dst, size_t n)
{
    while (n) {
        size_t take = c->iov[c->i].iov_len - c->off;
        if (take > n)
            take = n;
        memcpy(dst, (const uint8_t *)c->iov[c->i].iov_base + c->off, take);
        dst += take;
        n -= take;
        c->off += take;
        if (c->off == c->iov[c->i].iov_len) {
            c->i++;
            c->off = 0;
        }
    }
}

int kv_ringio_sendv(kv_ringio_t *io, uint32_t to, uint16_t type,
                    const struct iovec *iov, int iovcnt)
{
    if (to >= io->n || to == io->self || type == KV_FRAME_PAD || iovcnt < 0)
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > KV_RINGIO_MSG_MAX)
        return -EMSGSIZE;

    peer_t *p = &io->peer[to];
    size_t fmax = kv_ring_frame_max(p->prod.size);
    cursor_t cur = { iov, iovcnt, 0, 0 };
    while (cur.i < iovcnt && iov[cur.i].iov_len == 0)
        cur.i++;
    size_t left = total;
    uint64_t frames = 0;
    do {
        size_t n = left > fmax ? fmax : left;
        uint16_t flags = left > fmax ? KV_FRAME_MORE : 0;
        uint8_t *dst = NULL;
        /* the ring only while nothing is queued, to keep the order */
        if (p->bl_frames == 0)
            dst = kv_ring_reserve(&p->prod, (uint32_t)n);
        if (dst != NULL) {
            cursor_copy(&cur, dst, n);
            kv_ring_commit(&p->prod, type, flags, (uint32_t)n);
        } else {
            dst = bl_reserve(p, n, type, flags);
            if (dst == NULL)
                return -ENOMEM;   /* earlier fragments went out: the
                                   * receiver sees a truncated message only
                                   * if memory runs out mid-message */
            cursor_copy(&cur, dst, n);
            io->backlog++;
        }
        left -= n;
        frames++;
    } while (left);

    bit_set(io->tx_pending, to);
    io->st.frames_out++;
    io->st.fragments_out += frames - 1;
    io->st.bytes_out += total;
    if (io->backlog > io->st.backlog_peak)
        io->st.backlog_peak = io->backlog;
    return 0;
}

int kv_ringio_send(kv_ringio_t *io, uint32_t to, uint16_t type,
                   const void *bytes, size_t len)
{
    struct iovec v = { (void *)bytes, len };
    return kv_ringio_sendv(io, to, type, &v, 1);
}

static size_t flush(kv_ringio_t *io)
{
    size_t published = 0;
    for (uint32_t w = 0; w < KV_BELL_WORDS; w++) {
        uint64_t m = io->tx_pending[w];
        while (m) {
            uint32_t to = w * 64 + (uint32_t)__builtin_ctzll(m);
            m &= m - 1;
            peer_t *p = &io->peer[to];
            if (p->bl_frames)
                bl_drain(io, p);
            if (kv_ring_publish(&p->prod)) {
                kv_doorbell_ring(kv_segment_bell(io->seg, to), io->self);
                published++;
            }
            if (p->bl_frames == 0)
                bit_clr(io->tx_pending, to);
        }
    }
    /* the admin endpoint exports it; write only on change */
    if (atomic_load_explicit(&io->ctl->ring_backlog, memory_order_relaxed) != io->backlog)
        atomic_store_explicit(&io->ctl->ring_backlog, io->backlog, memory_order_relaxed);
    return published;
}

void kv_ringio_flush(kv_ringio_t *io)
{
    flush(io);
}

/* ---- receive ---------------------------------------------------------- */

static void peer_reset(kv_ringio_t *io, uint32_t from, uint32_t new_gen)
{
    peer_t *p = &io->peer[from];
    uint32_t old = p->gen;
    p->gen = new_gen;
    p->prod.dst_gen = new_gen;
    bl_drop(io, p);
    p->asm_len = 0;
    io->st.peer_resets++;
    if (io->conf.on_peer_reset)
        io->conf.on_peer_reset(io, from, old, new_gen, io->data);
}

static void check_gen(kv_ringio_t *io, uint32_t from)
{
    uint32_t g = atomic_load_explicit(&io->seg->shard[from].generation, memory_order_acquire);
    if (g != io->peer[from].gen)
        peer_reset(io, from, g);
}

static void deliver(kv_ringio_t *io, uint32_t from, peer_t *p, const kv_frame_t *f)
{
    const void *bytes = kv_frame_payload(f);
    if (p->asm_len == 0 && !(f->flags & KV_FRAME_MORE)) {
        io->st.frames_in++;
        io->st.bytes_in += f->len;
        io->conf.on_frame(io, from, f->type, bytes, f->len, io->data);
        return;
    }
    if (p->asm_cap - p->asm_len < f->len) {
        size_t cap = p->asm_cap ? p->asm_cap : 65536;
        while (cap - p->asm_len < f->len)
            cap *= 2;
        uint8_t *nb = realloc(p->asm_buf, cap);
        if (nb == NULL) {          /* cannot hold it: drop the message */
            p->asm_len = 0;
            io->st.stale_dropped++;
            return;
        }
        p->asm_buf = nb;
        p->asm_cap = cap;
    }
    if (p->asm_len == 0)
        p->asm_type = f->type;
    memcpy(p->asm_buf + p->asm_len, bytes, f->len);
    p->asm_len += f->len;
    if (f->flags & KV_FRAME_MORE)
        return;
    size_t len = p->asm_len;
    p->asm_len = 0;
    io->st.frames_in++;
    io->st.bytes_in += len;
    io->conf.on_frame(io, from, p->asm_type, p->asm_buf, len, io->data);
}

/* Drain up to one batch from `from`; returns messages delivered, and
 * leaves the ring in rx_pending if it is not empty yet. */
static size_t drain(kv_ringio_t *io, uint32_t from)
{
    peer_t *p = &io->peer[from];
    size_t n = 0, frames = 0;
    const kv_frame_t *f;
    uint64_t before = io->st.frames_in;
    while (frames < io->conf.batch && (f = kv_ring_peek(&p->cons)) != NULL) {
        frames++;
        int32_t d = (int32_t)(f->src_gen - p->gen);
        if (f->dst_gen != io->gen || d < 0) {
            io->st.stale_dropped++;       /* for/from a dead incarnation */
        } else {
            if (d > 0)                     /* first frame of a new peer */
                check_gen(io, from);
            if (f->src_gen == p->gen)
                deliver(io, from, p, f);
            else
                io->st.stale_dropped++;
        }
        kv_ring_consume(&p->cons, f);
    }
    n = io->st.frames_in - before;
    if (kv_ring_release(&p->cons))         /* its producer waits for space */
        kv_doorbell_ring(kv_segment_bell(io->seg, from), io->self);
    if (kv_ring_readable(&p->cons))
        bit_set(io->rx_pending, from);
    else
        bit_clr(io->rx_pending, from);
    return n;
}

size_t kv_ringio_poll(kv_ringio_t *io)
{
    uint64_t m[KV_BELL_WORDS];
    size_t n = 0;
    if (kv_doorbell_take(io->bell, io->bell->reset, m)) {
        for (uint32_t w = 0; w < KV_BELL_WORDS; w++)
            for (; m[w]; m[w] &= m[w] - 1)
                check_gen(io, w * 64 + (uint32_t)__builtin_ctzll(m[w]));
    }
    if (kv_doorbell_take(io->bell, io->bell->dirty, m)) {
        for (uint32_t w = 0; w < KV_BELL_WORDS; w++) {
            io->rx_pending[w] |= m[w];
            /* a dirty bit also means "space freed in our ring to you" */
            io->tx_pending[w] |= m[w];
        }
    }
    for (uint32_t w = 0; w < KV_BELL_WORDS; w++) {
        uint64_t r = io->rx_pending[w];
        for (; r; r &= r - 1) {
            uint32_t from = w * 64 + (uint32_t)__builtin_ctzll(r);
            if (from < io->n && from != io->self)
                n += drain(io, from);
            else
                bit_clr(io->rx_pending, from);
        }
    }
    return n;
}

/* ---- park / wake ------------------------------------------------------ */

static bool anything_readable(kv_ringio_t *io)
{
    for (uint32_t w = 0; w < KV_BELL_WORDS; w++)
        if (io->rx_pending[w])
            return true;
    if (kv_doorbell_pending(io->bell))
        return true;
    for (uint32_t j = 0; j < io->n; j++)
        if (j != io->self && kv_ring_readable(&io->peer[j].cons))
            return true;
    return false;
}

static void disarm(kv_ringio_t *io)
{
    uint32_t a = atomic_load(&io->armed);
    if (a & 1)
        atomic_compare_exchange_strong(&io->armed, &a, a + 1);
}

static void idle_cb(uv_idle_t *h) { (void)h; }   /* only to keep polling */

static void unpark(kv_ringio_t *io, uint64_t now)
{
    kv_doorbell_unpark(io->bell);
    disarm(io);
    io->parked = false;
    io->last_work_us = now;
    uv_idle_start(&io->idle, idle_cb);
}

static void try_park(kv_ringio_t *io)
{
    uint32_t v = kv_doorbell_park(io->bell);
    if (anything_readable(io)) {
        kv_doorbell_unpark(io->bell);
        return;
    }
    atomic_store_explicit(&io->park_seq, v, memory_order_relaxed);
    atomic_fetch_add_explicit(&io->armed, 1, memory_order_release);   /* odd */
    kv_futex_wake(&io->armed, 1, false);
    uv_idle_stop(&io->idle);
    io->parked = true;
    io->st.parks++;
}

static void prepare_cb(uv_prepare_t *h)
{
    kv_ringio_t *io = h->data;
    /* work = frames in or out this turn; a backlog that cannot move is
     * not work (we park, and its consumer rings us when it frees space) */
    bool work = kv_ringio_poll(io) > 0;
    if (io->conf.on_turn_end)
        io->conf.on_turn_end(io, io->data);
    work |= flush(io) > 0;
    uint64_t now = kv_time_mono_us();
    if (work) {
        if (io->parked)
            unpark(io, now);
        io->last_work_us = now;
    } else if (!io->parked && now - io->last_work_us >= io->conf.spin_us) {
        try_park(io);
    }
}

static void async_cb(uv_async_t *h)
{
    kv_ringio_t *io = h->data;
    io->st.wakeups++;
    if (io->parked)
        unpark(io, kv_time_mono_us());
}

static void *bell_thread(void *arg)
{
    kv_ringio_t *io = arg;
    for (;;) {
        uint32_t a = atomic_load_explicit(&io->armed, memory_order_acquire);
        if (atomic_load(&io->stop))
            break;
        if (!(a & 1)) {
            kv_futex_wait(&io->armed, a, 0, false);
            continue;
        }
        uint32_t v = atomic_load_explicit(&io->park_seq, memory_order_relaxed);
        kv_futex_wait(&io->bell->seq, v, 0, true);
        if (atomic_load(&io->stop))
            break;
        if (atomic_load(&io->bell->seq) == v)
            continue;                      /* spurious: wait again */
        if (atomic_compare_exchange_strong(&io->armed, &a, a + 1))
            uv_async_send(&io->async);
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

kv_ringio_t *kv_ringio_start(uv_loop_t *loop, kv_segment_t *seg, uint32_t self,
                             const kv_ringio_conf_t *conf, void *data)
{
    if (seg == NULL || self >= seg->nshards || conf == NULL || conf->on_frame == NULL) {
        errno = EINVAL;
        return NULL;
    }
    kv_ringio_t *io = calloc(1, sizeof(*io));
    if (io == NULL)
        return NULL;
    io->peer = calloc(seg->nshards, sizeof(peer_t));
    if (io->peer == NULL) {
        free(io);
        return NULL;
    }
    io->loop = loop;
    io->seg = seg;
    io->self = self;
    io->n = seg->nshards;
    io->bell = kv_segment_bell(seg, self);
    io->ctl = &seg->shard[self];
    io->conf = *conf;
    if (io->conf.batch == 0)
        io->conf.batch = BATCH_DEFAULT;
    io->data = data;
    io->gen = atomic_load(&io->ctl->generation);
    for (uint32_t j = 0; j < io->n; j++) {
        if (j == self)
            continue;
        peer_t *p = &io->peer[j];
        p->gen = atomic_load(&seg->shard[j].generation);
        kv_ring_prod_attach(&p->prod, kv_segment_ring(seg, self, j));
        kv_ring_cons_attach(&p->cons, kv_segment_ring(seg, j, self));
        p->prod.src_gen = io->gen;
        p->prod.dst_gen = p->gen;
        bit_set(io->rx_pending, j);        /* look at every ring once */
    }
    atomic_store(&io->ctl->ring_backlog, 0);

    uv_prepare_init(loop, &io->prepare);
    uv_idle_init(loop, &io->idle);
    if (uv_async_init(loop, &io->async, async_cb) != 0) {
        free(io->peer);
        free(io);
        errno = ENOMEM;
        return NULL;
    }
    io->prepare.data = io->idle.data = io->async.data = io;
    io->open_handles = 3;
    uv_prepare_start(&io->prepare, prepare_cb);
    uv_idle_start(&io->idle, idle_cb);
    io->last_work_us = kv_time_mono_us();

    int rc = pthread_create(&io->thread, NULL, bell_thread, io);
    if (rc != 0) {
        kv_ringio_stop(io);   /* thread not started: stop skips the join */
        errno = rc;
        return NULL;
    }
    io->thread_started = true;
    return io;
}

static void close_cb(uv_handle_t *h)
{
    kv_ringio_t *io = h->data;
    if (--io->open_handles > 0)
        return;
    for (uint32_t j = 0; j < io->n; j++) {
        free(io->peer[j].bl);
        free(io->peer[j].asm_buf);
    }
    free(io->peer);
    free(io);
}

void kv_ringio_stop(kv_ringio_t *io)
{
    if (io == NULL)
        return;
    kv_ringio_flush(io);
    if (io->thread_started) {
        atomic_store(&io->stop, 1);
        atomic_fetch_add(&io->armed, 2);          /* parity kept, value moved */
        kv_futex_wake(&io->armed, 1, false);
        /* our own bell: only our thread waits on it; the bump looks like a
         * wake to it and costs peers nothing */
        atomic_fetch_add(&io->bell->seq, 1);
        kv_futex_wake(&io->bell->seq, 1 << 30, true);
        pthread_join(io->thread, NULL);
        io->thread_started = false;
    }
    kv_doorbell_unpark(io->bell);
    for (uint32_t j = 0; j < io->n; j++)
        if (j != io->self)
            bl_drop(io, &io->peer[j]);
    atomic_store(&io->ctl->ring_backlog, 0);
    uv_close((uv_handle_t *)&io->prepare, close_cb);
    uv_close((uv_handle_t *)&io->idle, close_cb);
    uv_close((uv_handle_t *)&io->async, close_cb);
}

uint64_t kv_ringio_backlog(const kv_ringio_t *io)
{
    return io->backlog;
}

uint32_t kv_ringio_peer_gen(const kv_ringio_t *io, uint32_t peer)
{
    if (peer == io->self)
        return io->gen;
    return peer < io->n ? io->peer[peer].gen : 0;
}

void kv_ringio_stats(const kv_ringio_t *io, kv_ringio_stats_t *out)
{
    *out = io->st;
    out->backlog = io->backlog;
}
