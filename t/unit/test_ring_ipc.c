/* Rings across forked processes: a long checked stream, the park/wake
 * race (raw doorbell and through ringio + libuv), and kill -9 of a
 * producer mid-batch followed by kv_segment_shard_reset. Counts scale
 * down under KV_TEST_QUICK=1 (the sanitizer run). Every child is killed
 * and reaped by pid. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "core/time.h"
#include "event/doorbell.h"
#include "event/ring.h"
#include "event/ringio.h"
#include "event/segment.h"

static int quick(void)
{
    const char *q = getenv("KV_TEST_QUICK");
    return q != NULL && *q && *q != '0';
}

static void pin(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % n, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static inline void cpu_relax(void) { __builtin_ia32_pause(); }

/* Results a child reports to the parent (a small shared mapping). */
typedef struct {
    _Atomic uint64_t received, errors, first_bad, parks, lost_wakeups, max_wait_us;
    _Atomic uint64_t rung;      /* producer finished ringing for frames < rung */
    _Atomic uint32_t flag;
} result_t;

static result_t *result_new(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

/* Wait for pid up to timeout_s; kill it if it is still there. Returns the
 * exit status, or -1 if it had to be killed. */
static int reap(pid_t pid, int timeout_s)
{
    int st;
    uint64_t end = kv_time_mono_ms() + (uint64_t)timeout_s * 1000;
    while (kv_time_mono_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(2000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* The child has exited (not reaped yet): stop feeding it. */
static int gone(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static uint64_t xs64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Frame i of the stream: 16..64 bytes = seq(8) | fnv1a(rest)(4) | random. */
static size_t make_frame(uint8_t *buf, uint64_t seq, uint64_t *rng)
{
    size_t len = 16 + xs64(rng) % 49;
    memcpy(buf, &seq, 8);
    for (size_t i = 12; i < len; i += 8) {
        uint64_t r = xs64(rng);
        memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
    }
    uint32_t h = fnv1a(buf + 12, len - 12);
    memcpy(buf + 8, &h, 4);
    return len;
}

/* Consumer side of the raw-ring tests: drain, spin spin_us, then park
 * (the doorbell.h protocol) with a 1 s timeout that flags a lost wakeup. */
typedef int (*verify_fn)(const kv_frame_t *f, uint64_t n, void *ctx);

static void consume_loop(kv_segment_t *seg, uint32_t from, uint32_t self, uint64_t total,
                         uint64_t spin_us, verify_fn verify, void *ctx, result_t *res)
{
    kv_ring_cons_t c;
    kv_ring_cons_attach(&c, kv_segment_ring(seg, from, self));
    kv_doorbell_t *bell = kv_segment_bell(seg, self);
    uint64_t got = 0, idle_since = 0, m[KV_BELL_WORDS];
    while (got < total) {
        const kv_frame_t *f;
        unsigned n = 0;
        while (n < 256 && (f = kv_ring_peek(&c)) != NULL) {
            if (!verify(f, got, ctx)) {
                if (atomic_fetch_add(&res->errors, 1) == 0)
                    atomic_store(&res->first_bad, got);
            }
            kv_ring_consume(&c, f);
            n++;
            got++;
        }
        if (n) {
            kv_ring_release(&c);
            idle_since = 0;
            continue;
        }
        kv_doorbell_take(bell, bell->dirty, m);
        uint64_t now = kv_time_mono_us();
        if (idle_since == 0)
            idle_since = now;
        if (now - idle_since < spin_us) {
            cpu_relax();
            continue;
        }
        uint32_t v = kv_doorbell_park(bell);
        if (kv_doorbell_pending(bell) || kv_ring_readable(&c)) {
            kv_doorbell_unpark(bell);
            continue;
        }
        int r = kv_doorbell_wait(bell, v, 1000000);
        uint64_t rung = atomic_load(&res->rung);
        atomic_fetch_add(&res->parks, 1);
        /* lost wakeup: we slept a whole second although the producer had
         * finished publishing *and ringing* a frame we had not read (a
         * producer merely preempted between the two is not one) */
        if (r == -ETIMEDOUT && kv_ring_readable(&c) && rung > got) {
            atomic_fetch_add(&res->lost_wakeups, 1);
            break;
        }
    }
    atomic_store(&res->received, got);
}

/* ---- 1. long stream ------------------------------------------------- */

typedef struct { uint64_t rng; uint8_t buf[64]; } stream_ctx_t;

static int verify_stream(const kv_frame_t *f, uint64_t n, void *arg)
{
    stream_ctx_t *ctx = arg;
    size_t len = make_frame(ctx->buf, n, &ctx->rng);
    const uint8_t *p = kv_frame_payload(f);
    uint32_t h;
    memcpy(&h, p + 8, 4);
    return f->len == len && f->type == 1 && h == fnv1a(p + 12, len - 12) &&
           memcmp(p, ctx->buf, len) == 0;
}

static void test_stream(void **state)
{
    (void)state;
    const uint64_t N = quick() ? 1000000 : 20000000;
    kv_segment_t *seg = kv_segment_create(2, 1 << 20);
    result_t *res = result_new();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pin(1);
        stream_ctx_t ctx = { .rng = 0x9e3779b97f4a7c15ull };
        consume_loop(seg, 0, 1, N, 50, verify_stream, &ctx, res);
        _exit(0);
    }
    pin(0);
    kv_ring_prod_t p;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    kv_doorbell_t *bell = kv_segment_bell(seg, 1);
    uint64_t rng = 0x9e3779b97f4a7c15ull, t0 = kv_time_mono_us();
    uint8_t buf[64];
    for (uint64_t seq = 0; seq < N; seq++) {
        size_t len = make_frame(buf, seq, &rng);
        uint8_t *dst;
        uint64_t spins = 0;
        while ((dst = kv_ring_reserve(&p, (uint32_t)len)) == NULL) {
            if (kv_ring_publish(&p))
                kv_doorbell_ring(bell, 0);
            cpu_relax();
            if (++spins % (1u << 20) == 0 && gone(pid))
                break;
        }
        if (dst == NULL)
            break;                     /* consumer died: its checks report */
        memcpy(dst, buf, len);
        kv_ring_commit(&p, 1, 0, (uint32_t)len);
        if ((seq & 63) == 63 && kv_ring_publish(&p)) {
            kv_doorbell_ring(bell, 0);
            atomic_store(&res->rung, seq + 1);
        }
    }
    if (kv_ring_publish(&p))
        kv_doorbell_ring(bell, 0);
    int rc = reap(pid, 120);
    double s = (double)(kv_time_mono_us() - t0) / 1e6;
    print_message("  stream: %llu frames in %.2f s (%.1f M/s), consumer parked %llu times\n",
                  (unsigned long long)N, s, (double)N / s / 1e6,
                  (unsigned long long)atomic_load(&res->parks));
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&res->errors), 0);
    assert_int_equal(atomic_load(&res->lost_wakeups), 0);
    assert_int_equal(atomic_load(&res->received), N);
    munmap(res, 4096);
    kv_segment_destroy(seg);
}

/* ---- 2. park/wake race, raw doorbell ----------------------------------- */

typedef struct { result_t *res; } park_ctx_t;

static int verify_park(const kv_frame_t *f, uint64_t n, void *arg)
{
    park_ctx_t *ctx = arg;
    uint64_t seq, ts, now = kv_time_mono_us();
    memcpy(&seq, kv_frame_payload(f), 8);
    memcpy(&ts, (const uint8_t *)kv_frame_payload(f) + 8, 8);
    uint64_t wait = now - ts;
    if (wait > atomic_load(&ctx->res->max_wait_us))
        atomic_store(&ctx->res->max_wait_us, wait);
    return seq == n && wait < 1000000;       /* watchdog: no frame waits 1 s */
}

static void test_park_wake_race(void **state)
{
    (void)state;
    const uint64_t M = quick() ? 50000 : 1100000;
    kv_segment_t *seg = kv_segment_create(2, 1 << 16);
    result_t *res = result_new();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pin(1);
        park_ctx_t ctx = { res };
        consume_loop(seg, 0, 1, M, 0, verify_park, &ctx, res);   /* park at once */
        _exit(0);
    }
    pin(0);
    kv_ring_prod_t p;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    kv_doorbell_t *bell = kv_segment_bell(seg, 1);
    uint64_t rng = 12345, t0 = kv_time_mono_us(), wakes = 0;
    for (uint64_t seq = 0; seq < M; seq++) {
        /* random gaps: none (races the park), short, or long enough to
         * let the consumer sleep */
        uint64_t r = xs64(&rng);
        /* a time cap keeps a slow VM (wakes of 40+ us) within the test
         * budget: past it, the rest go out without gaps */
        if ((r & 15) != 0 && kv_time_mono_us() - t0 < 25000000) {
            /* 15 of 16 frames: wait (up to 200 us) until the consumer has
             * announced its park, then publish 0..3 us later -- right in
             * the window between "parked = 1" and the futex sleep */
            uint64_t until = kv_time_mono_us() + 200;
            while (!atomic_load_explicit(&bell->parked, memory_order_relaxed) &&
                   kv_time_mono_us() < until)
                cpu_relax();
            until = kv_time_mono_us() + (r >> 8) % 4;
            while (kv_time_mono_us() < until)
                cpu_relax();
        }
        uint64_t payload[2] = { seq, kv_time_mono_us() };
        uint64_t spins = 0;
        while (kv_ring_push(&p, 1, 0, payload, sizeof payload) == -ENOSPC &&
               (++spins % (1u << 20) != 0 || !gone(pid)))
            cpu_relax();
        if (spins && gone(pid))
            break;
        kv_ring_publish(&p);
        wakes += kv_doorbell_ring(bell, 0);
        atomic_store(&res->rung, seq + 1);
    }
    int rc = reap(pid, 120);
    double s = (double)(kv_time_mono_us() - t0) / 1e6;
    print_message("  park/wake: %llu frames in %.2f s, %llu parks, %llu FUTEX_WAKEs, "
                  "max wait %llu us\n", (unsigned long long)M, s,
                  (unsigned long long)atomic_load(&res->parks), (unsigned long long)wakes,
                  (unsigned long long)atomic_load(&res->max_wait_us));
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&res->lost_wakeups), 0);
    assert_int_equal(atomic_load(&res->errors), 0);
    assert_int_equal(atomic_load(&res->received), M);
    /* It really parked and was woken. These count exercise, not
     * correctness (lost wakeups and the 1 s watchdog above are that): on a
     * busy 2-CPU machine the 25 s cap allows some 300k-400k park/wake
     * cycles, so ask for a tenth of the frames. */
    assert_true(atomic_load(&res->parks) > M / 10);
    assert_true(wakes > M / 10);
    munmap(res, 4096);
    kv_segment_destroy(seg);
}

/* ---- 3. park/wake through ringio + libuv (ping-pong) -------------------- */

typedef struct {
    kv_ringio_t *io;
    uv_loop_t *loop;
    uint64_t rounds, got, bad, last_us, stalled;
    uint32_t peer;
    int echo;
    uv_timer_t watchdog;
} pp_t;

static void pp_frame(kv_ringio_t *io, uint32_t from, uint16_t type, const void *bytes,
                     size_t len, void *data)
{
    pp_t *pp = data;
    uint64_t seq;
    if (len != 8 || from != pp->peer || type != 3) {
        pp->bad++;
        return;
    }
    memcpy(&seq, bytes, 8);
    if (pp->echo) {
        kv_ringio_send(io, from, 3, &seq, 8);
        if (seq + 1 == pp->rounds)
            uv_stop(pp->loop);
        return;
    }
    if (seq != pp->got)
        pp->bad++;
    pp->got++;
    pp->last_us = kv_time_mono_us();
    if (pp->got == pp->rounds) {
        uv_stop(pp->loop);
        return;
    }
    seq = pp->got;
    kv_ringio_send(io, from, 3, &seq, 8);
}

static void pp_watchdog(uv_timer_t *t)
{
    pp_t *pp = t->data;
    if (kv_time_mono_us() - pp->last_us > 1000000) {   /* a frame waited 1 s */
        pp->stalled++;
        uv_stop(pp->loop);
    }
}

static void pp_run(kv_segment_t *seg, uint32_t self, uint64_t rounds, int echo, pp_t *pp)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    memset(pp, 0, sizeof *pp);
    pp->loop = &loop;
    pp->rounds = rounds;
    pp->peer = 1 - self;
    pp->echo = echo;
    pp->last_us = kv_time_mono_us();
    kv_ringio_conf_t conf = { pp_frame, NULL, 0, 0 };     /* spin 0: park at once */
    pp->io = kv_ringio_start(&loop, seg, self, &conf, pp);
    assert_non_null(pp->io);
    uv_timer_init(&loop, &pp->watchdog);
    pp->watchdog.data = pp;
    if (!echo) {
        uv_timer_start(&pp->watchdog, pp_watchdog, 100, 100);
        uint64_t seq = 0;
        kv_ringio_send(pp->io, pp->peer, 3, &seq, 8);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    kv_ringio_flush(pp->io);
    kv_ringio_stats_t st;
    kv_ringio_stats(pp->io, &st);
    pp->got = echo ? st.frames_in : pp->got;
    pp->stalled += 0;
    pp->rounds = st.parks;                   /* reuse: report parks */
    uv_close((uv_handle_t *)&pp->watchdog, NULL);
    kv_ringio_stop(pp->io);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void test_ringio_pingpong(void **state)
{
    (void)state;
    const uint64_t R = quick() ? 5000 : 50000;
    kv_segment_t *seg = kv_segment_create(2, 1 << 16);
    result_t *res = result_new();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pin(1);
        pp_t pp;
        pp_run(seg, 1, R, 1, &pp);
        atomic_store(&res->received, pp.got);
        atomic_store(&res->parks, pp.rounds);
        _exit(pp.bad ? 1 : 0);
    }
    pin(0);
    uint64_t t0 = kv_time_mono_us();
    pp_t pp;
    pp_run(seg, 0, R, 0, &pp);
    double s = (double)(kv_time_mono_us() - t0) / 1e6;
    if (pp.stalled)
        kill(pid, SIGKILL);
    int rc = reap(pid, 30);
    print_message("  ringio ping-pong: %llu round trips in %.2f s (%.1f us each), parks %llu + %llu\n",
                  (unsigned long long)pp.got, s, s * 1e6 / (double)(pp.got ? pp.got : 1),
                  (unsigned long long)pp.rounds,
                  (unsigned long long)atomic_load(&res->parks));
    assert_int_equal(pp.stalled, 0);
    assert_int_equal(pp.bad, 0);
    assert_int_equal(pp.got, R);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&res->received), R);
    assert_true(pp.rounds > R / 4);          /* the loop really parked */
    munmap(res, 4096);
    kv_segment_destroy(seg);
}

/* ---- 4. kill -9 of a producer mid-batch -------------------------------- */

#define CRASH_K      20000u     /* frames the first incarnation gets through */
#define CRASH_EXTRA  50u        /* published, still unread at the kill      */
#define CRASH_UNPUB  100u       /* written, never published                 */

/* Send n frames {inc, seq}, publishing as we go; returns once all are
 * published (the parent consumes meanwhile). */
static void send_n(kv_ringio_t *io, uint64_t inc, uint64_t *seq, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t f[2] = { inc, (*seq)++ };
        kv_ringio_send(io, 0, 4, f, sizeof f);
        while (kv_ringio_backlog(io) > 256) {
            kv_ringio_flush(io);
            kv_ringio_poll(io);
            usleep(50);
        }
    }
    while (kv_ringio_flush(io), kv_ringio_backlog(io) > 0) {
        kv_ringio_poll(io);
        usleep(50);
    }
}

static void producer_child(kv_segment_t *seg, uint32_t inc, result_t *res)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    kv_ringio_conf_t conf = { pp_frame, NULL, 50, 0 };
    kv_ringio_t *io = kv_ringio_start(&loop, seg, 1, &conf, NULL);
    uint64_t seq = 0;
    if (inc == 1) {
        send_n(io, inc, &seq, CRASH_K);
        while (atomic_load(&res->flag) != 1)       /* parent has read them */
            usleep(100);
        send_n(io, inc, &seq, CRASH_EXTRA);        /* published, unread */
        for (unsigned i = 0; i < CRASH_UNPUB; i++) {   /* the torn batch */
            uint64_t f[2] = { inc, seq++ };
            kv_ringio_send(io, 0, 4, f, sizeof f);
        }
        atomic_store(&res->flag, 2);
        for (;;)
            pause();                               /* killed here */
    }
    for (;;) {
        for (int i = 0; i < 64 && kv_ringio_backlog(io) < 256; i++) {
            uint64_t f[2] = { inc, seq++ };
            kv_ringio_send(io, 0, 4, f, sizeof f);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
}

typedef struct {
    uv_loop_t *loop;
    uint64_t next[3], bad, after_reset_old, resets;
    uint64_t stop_at, timed_out;
} crash_sink_t;

static void crash_watchdog(uv_timer_t *t)
{
    crash_sink_t *s = t->data;
    s->timed_out++;
    uv_stop(s->loop);
}

static void crash_frame(kv_ringio_t *io, uint32_t from, uint16_t type, const void *bytes,
                        size_t len, void *data)
{
    (void)io;
    crash_sink_t *s = data;
    uint64_t f[2];
    if (from != 1 || type != 4 || len != sizeof f) {
        s->bad++;
        return;
    }
    memcpy(f, bytes, sizeof f);
    if (f[0] < 1 || f[0] > 2 || f[1] != s->next[f[0]]) {
        s->bad++;
        return;
    }
    if (s->resets && f[0] == 1)
        s->after_reset_old++;
    s->next[f[0]]++;
    if (f[0] == 1 && s->next[1] == CRASH_K)
        uv_stop(s->loop);
    if (f[0] == 2 && s->next[2] == s->stop_at)
        uv_stop(s->loop);
}

static void crash_reset(kv_ringio_t *io, uint32_t peer, uint32_t old_gen, uint32_t new_gen,
                        void *data)
{
    (void)io;
    (void)old_gen;
    (void)new_gen;
    crash_sink_t *s = data;
    if (peer == 1)
        s->resets++;
}

static void test_crash_mid_batch(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 1 << 16);
    result_t *res = result_new();
    pid_t p1 = fork();
    assert_true(p1 >= 0);
    if (p1 == 0)
        producer_child(seg, 1, res);

    uv_loop_t loop;
    uv_loop_init(&loop);
    crash_sink_t s = { .loop = &loop, .stop_at = 30000 };
    kv_ringio_conf_t conf = { crash_frame, crash_reset, 50, 64 };
    kv_ringio_t *io = kv_ringio_start(&loop, seg, 0, &conf, &s);
    assert_non_null(io);
    uv_timer_t wd;                                  /* a stuck ring fails, not hangs */
    uv_timer_init(&loop, &wd);
    wd.data = &s;
    uv_timer_start(&wd, crash_watchdog, 20000, 0);
    uv_unref((uv_handle_t *)&wd);
    uv_run(&loop, UV_RUN_DEFAULT);                  /* until CRASH_K arrived */
    if (s.next[1] != CRASH_K)
        kill(p1, SIGKILL), waitpid(p1, NULL, 0);
    assert_int_equal(s.timed_out, 0);
    assert_int_equal(s.next[1], CRASH_K);

    /* let it publish EXTRA more (we do not read them) and start a batch it
     * never publishes; then kill it */
    atomic_store(&res->flag, 1);
    uint64_t end = kv_time_mono_ms() + 10000;
    while (atomic_load(&res->flag) != 2 && kv_time_mono_ms() < end)
        usleep(100);
    if (atomic_load(&res->flag) != 2)
        kill(p1, SIGKILL);
    assert_int_equal(atomic_load(&res->flag), 2);
    kill(p1, SIGKILL);
    int st;
    assert_int_equal(waitpid(p1, &st, 0), p1);
    kv_segment_shard_reset(seg, 1);                 /* what the master does */

    pid_t p2 = fork();
    assert_true(p2 >= 0);
    if (p2 == 0)
        producer_child(seg, 2, res);
    uv_timer_start(&wd, crash_watchdog, 20000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);                  /* until stop_at from #2 */
    kv_ringio_stats_t stats;
    kv_ringio_stats(io, &stats);
    kill(p2, SIGKILL);
    waitpid(p2, &st, 0);
    print_message("  crash: %llu old frames before the kill, %llu stale dropped, "
                  "%llu from the new producer\n", (unsigned long long)s.next[1],
                  (unsigned long long)stats.stale_dropped, (unsigned long long)s.next[2]);
    assert_int_equal(s.timed_out, 0);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.resets, 1);
    assert_int_equal(s.after_reset_old, 0);         /* nothing of the dead one */
    assert_int_equal(s.next[1], CRASH_K);
    assert_true(s.next[2] >= s.stop_at);           /* new one: all, in order */
    assert_int_equal(stats.stale_dropped, CRASH_EXTRA);  /* unpublished: never seen */
    assert_int_equal(kv_ringio_peer_gen(io, 1), 1);
    uv_close((uv_handle_t *)&wd, NULL);
    kv_ringio_stop(io);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    munmap(res, 4096);
    kv_segment_destroy(seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_park_wake_race),
        cmocka_unit_test(test_ringio_pingpong),
        cmocka_unit_test(test_crash_mid_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
