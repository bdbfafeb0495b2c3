/* Ring benchmark: two processes pinned to CPU 0 and CPU 1.
 *   1. throughput of 64-byte frames: ring vs pipe vs unix socketpair
 *      (one write() per frame, the naive transport) vs batched pipe;
 *   2. ping-pong round trip p50/p99: ring spinning, ring parked (futex),
 *      pipe;
 *   3. the libuv bridge: ringio ping-pong (parked and spinning) and the
 *      one-way latency of a frame to a parked loop (futex -> doorbell
 *      thread -> uv_async -> on_frame) beside a raw futex waiter.
 * usage: ring_bench [scale]   (scale 0.1 for a quick run) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "core/time.h"
#include "event/doorbell.h"
#include "event/ring.h"
#include "event/ringio.h"
#include "event/segment.h"

static double scale = 1.0;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % sysconf(_SC_NPROCESSORS_ONLN), &set);
    sched_setaffinity(0, sizeof set, &set);
}

static uint64_t scaled(uint64_t n) { uint64_t v = (uint64_t)((double)n * scale); return v ? v : 1; }
static inline void relax(void) { __builtin_ia32_pause(); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pct(uint64_t *v, uint64_t n, double *p50, double *p99)
{
    qsort(v, n, sizeof *v, cmp_u64);
    *p50 = (double)v[n / 2] / 1000.0;
    *p99 = (double)v[n * 99 / 100] / 1000.0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void wait_child(pid_t pid) { int st; waitpid(pid, &st, 0); }

/* ---- 1. throughput ---------------------------------------------------- */

static void consumer_park(kv_doorbell_t *bell, kv_ring_cons_t *c, uint64_t *idle, uint64_t spin_ns)
{
    uint64_t m[KV_BELL_WORDS], t = now_ns();
    if (*idle == 0)
        *idle = t;
    if (t - *idle < spin_ns) {
        relax();
        return;
    }
    kv_doorbell_take(bell, bell->dirty, m);
    uint32_t v = kv_doorbell_park(bell);
    if (kv_doorbell_pending(bell) || kv_ring_readable(c)) {
        kv_doorbell_unpark(bell);
        return;
    }
    kv_doorbell_wait(bell, v, 0);
}

static double ring_throughput(uint64_t n)
{
    kv_segment_t *seg = kv_segment_create(2, 1 << 20);
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        kv_ring_cons_t c;
        kv_ring_cons_attach(&c, kv_segment_ring(seg, 0, 1));
        uint64_t got = 0, idle = 0, sum = 0;
        while (got < n) {
            const kv_frame_t *f;
            unsigned k = 0;
            while (k < 256 && (f = kv_ring_peek(&c)) != NULL) {
                sum += *(const uint64_t *)kv_frame_payload(f);
                kv_ring_consume(&c, f);
                k++;
            }
            if (k) {
                kv_ring_release(&c);
                got += k;
                idle = 0;
            } else {
                consumer_park(kv_segment_bell(seg, 1), &c, &idle, 50000);
            }
        }
        _exit(sum == n * (n - 1) / 2 ? 0 : 1);
    }
    pin(0);
    kv_ring_prod_t p;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    kv_doorbell_t *bell = kv_segment_bell(seg, 1);
    uint8_t payload[64] = { 0 };
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *d;
        while ((d = kv_ring_reserve(&p, 64)) == NULL) {
            if (kv_ring_publish(&p))
                kv_doorbell_ring(bell, 0);
            relax();
        }
        memcpy(payload, &i, 8);
        memcpy(d, payload, 64);
        kv_ring_commit(&p, 1, 0, 64);
        if ((i & 63) == 63 && kv_ring_publish(&p))
            kv_doorbell_ring(bell, 0);
    }
    if (kv_ring_publish(&p))
        kv_doorbell_ring(bell, 0);
    int st;
    waitpid(pid, &st, 0);
    double s = (double)(now_ns() - t0) / 1e9;
    kv_segment_destroy(seg);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "ring throughput: checksum mismatch\n");
    return (double)n / s;
}

/* per: frames per write() (1 = naive) */
static double fd_throughput(int sock, uint64_t n, unsigned per)
{
    int fds[2];
    if (sock ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds))
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        close(fds[1]);
        static uint8_t buf[65536];
        uint64_t want = n * 64, got = 0;
        while (got < want) {
            ssize_t r = read(fds[0], buf, sizeof buf);
            if (r <= 0)
                _exit(1);
            got += (uint64_t)r;
        }
        _exit(0);
    }
    pin(0);
    close(fds[0]);
    static uint8_t out[64 * 64];
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i += per) {
        size_t len = 64 * (size_t)(n - i < per ? n - i : per);
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fds[1], out + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    wait_child(pid);
    double s = (double)(now_ns() - t0) / 1e9;
    close(fds[1]);
    return (double)n / s;
}

/* ---- 2. ping-pong ------------------------------------------------------ */

/* mode 0: both sides spin; 1: both park at once when empty */
static void ring_pingpong(uint64_t rounds, int park, double *p50, double *p99)
{
    kv_segment_t *seg = kv_segment_create(2, 1 << 16);
    pid_t pid = fork();
    int self = pid == 0 ? 1 : 0, peer = 1 - self;
    pin(self);
    kv_ring_prod_t p;
    kv_ring_cons_t c;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, (uint32_t)self, (uint32_t)peer));
    kv_ring_cons_attach(&c, kv_segment_ring(seg, (uint32_t)peer, (uint32_t)self));
    kv_doorbell_t *mine = kv_segment_bell(seg, (uint32_t)self), *theirs = kv_segment_bell(seg, (uint32_t)peer);
    uint64_t *lat = self == 0 ? malloc(rounds * sizeof *lat) : NULL;
    uint8_t msg[64] = { 0 };
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t t0 = now_ns();
        if (self == 0) {
            kv_ring_push(&p, 1, 0, msg, 64);
            kv_ring_publish(&p);
            kv_doorbell_ring(theirs, (uint32_t)self);
        }
        const kv_frame_t *f;
        uint64_t idle = 0;
        while ((f = kv_ring_peek(&c)) == NULL) {
            if (park)
                consumer_park(mine, &c, &idle, 0);
            else
                relax();
        }
        kv_ring_consume(&c, f);
        kv_ring_release(&c);
        if (self == 1) {
            kv_ring_push(&p, 1, 0, msg, 64);
            kv_ring_publish(&p);
            kv_doorbell_ring(theirs, (uint32_t)self);
        } else {
            lat[i] = now_ns() - t0;
        }
    }
    if (self == 1)
        _exit(0);
    wait_child(pid);
    pct(lat, rounds, p50, p99);
    free(lat);
    kv_segment_destroy(seg);
}

static void pipe_pingpong(uint64_t rounds, double *p50, double *p99)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b))
        return;
    pid_t pid = fork();
    uint8_t msg[64] = { 0 };
    if (pid == 0) {
        pin(1);
        for (uint64_t i = 0; i < rounds; i++) {
            if (read(a[0], msg, 64) != 64 || write(b[1], msg, 64) != 64)
                _exit(1);
        }
        _exit(0);
    }
    pin(0);
    uint64_t *lat = malloc(rounds * sizeof *lat);
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t t0 = now_ns();
        if (write(a[1], msg, 64) != 64 || read(b[0], msg, 64) != 64)
            break;
        lat[i] = now_ns() - t0;
    }
    wait_child(pid);
    pct(lat, rounds, p50, p99);
    free(lat);
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

/* ---- 3. the libuv bridge ------------------------------------------------ */

typedef struct {
    uv_loop_t *loop;
    kv_ringio_t *io;
    int echo, oneway;
    uint64_t rounds, n, t0, *lat;
    uv_timer_t timer;
} uvb_t;

static void uvb_send(uvb_t *b)
{
    uint64_t ts = now_ns();
    b->t0 = ts;
    kv_ringio_send(b->io, 1, 5, &ts, 8);
}

static void uvb_timer(uv_timer_t *t)
{
    uvb_send(t->data);       /* one-way: one frame per timer tick */
}

static void uvb_frame(kv_ringio_t *io, uint32_t from, uint16_t type, const void *bytes,
                      size_t len, void *data)
{
    uvb_t *b = data;
    (void)type;
    uint64_t ts, now = now_ns();
    memcpy(&ts, bytes, 8);
    if (b->echo) {                       /* worker 1 */
        if (b->oneway)
            b->lat[b->n] = now - ts;
        else
            kv_ringio_send(io, from, 5, bytes, len);
        if (++b->n == b->rounds)
            uv_stop(b->loop);
        return;
    }
    b->lat[b->n++] = now - b->t0;        /* worker 0: round trip */
    if (b->n == b->rounds)
        uv_stop(b->loop);
    else
        uvb_send(b);
}

/* Runs worker `self` of a ringio pair; returns latencies in b->lat. */
static void uvb_run(kv_segment_t *seg, uint32_t self, uint32_t spin_us, int oneway, uvb_t *b)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    b->loop = &loop;
    b->echo = self == 1;
    b->oneway = oneway;
    kv_ringio_conf_t conf = { uvb_frame, NULL, spin_us, 0 };
    b->io = kv_ringio_start(&loop, seg, self, &conf, b);
    uv_timer_init(&loop, &b->timer);
    b->timer.data = b;
    if (self == 0) {
        if (oneway) {
            uv_timer_start(&b->timer, uvb_timer, 1, 1);   /* receiver parks between */
            uv_unref((uv_handle_t *)&b->timer);
        } else {
            uvb_send(b);
        }
    }
    if (self == 0 && oneway) {
        /* run until the receiver has them all (it exits) */
        while (kill(getppid(), 0) == 0 && b->n < b->rounds) {
            uv_run(&loop, UV_RUN_ONCE);
            if (b->n == UINT64_MAX)
                break;
        }
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&b->timer, NULL);
    kv_ringio_stop(b->io);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

/* Ping-pong (oneway 0, worker 0 measures) or one-way to a parked loop
 * (oneway 1, worker 1 measures; the parent is worker 1 then). */
static void ringio_bench(uint64_t rounds, uint32_t spin_us, int oneway, double *p50, double *p99)
{
    kv_segment_t *seg = kv_segment_create(2, 1 << 16);
    uint64_t *lat = malloc(rounds * sizeof *lat);
    uint32_t parent_self = oneway ? 1 : 0;
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        uvb_t b = { .rounds = oneway ? UINT64_MAX - 1 : rounds, .lat = NULL };
        uvb_run(seg, 1 - parent_self, spin_us, oneway, &b);
        _exit(0);
    }
    pin(0);
    uvb_t b = { .rounds = rounds, .lat = lat };
    uvb_run(seg, parent_self, spin_us, oneway, &b);
    kill(pid, SIGKILL);
    wait_child(pid);
    pct(lat, b.n ? b.n : 1, p50, p99);
    free(lat);
    kv_segment_destroy(seg);
}

/* One-way latency to a consumer blocked in FUTEX_WAIT (no libuv). */
static void futex_oneway(uint64_t rounds, double *p50, double *p99)
{
    kv_segment_t *seg = kv_segment_create(2, 1 << 16);
    uint64_t *lat = mmap(NULL, rounds * 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        kv_ring_cons_t c;
        kv_ring_cons_attach(&c, kv_segment_ring(seg, 0, 1));
        for (uint64_t i = 0; i < rounds; i++) {
            const kv_frame_t *f;
            uint64_t idle = 0;
            while ((f = kv_ring_peek(&c)) == NULL)
                consumer_park(kv_segment_bell(seg, 1), &c, &idle, 0);
            uint64_t ts;
            memcpy(&ts, kv_frame_payload(f), 8);
            lat[i] = now_ns() - ts;
            kv_ring_consume(&c, f);
            kv_ring_release(&c);
        }
        _exit(0);
    }
    pin(0);
    kv_ring_prod_t p;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    for (uint64_t i = 0; i < rounds; i++) {
        usleep(200);                        /* let it park */
        uint64_t ts = now_ns();
        kv_ring_push(&p, 1, 0, &ts, 8);
        kv_ring_publish(&p);
        kv_doorbell_ring(kv_segment_bell(seg, 1), 0);
    }
    wait_child(pid);
    pct(lat, rounds, p50, p99);
    munmap(lat, rounds * 8);
    kv_segment_destroy(seg);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atof(argv[1]);
    if (scale <= 0)
        scale = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ring_bench (2 processes pinned to CPU 0 and 1, 64-byte frames, scale %.2f)\n\n", scale);

    uint64_t nr = scaled(20000000), nf = scaled(1000000);
    double ring = ring_throughput(nr);
    double pipe1 = fd_throughput(0, nf, 1);
    double sock1 = fd_throughput(1, nf, 1);
    double pipe64 = fd_throughput(0, scaled(10000000), 64);
    printf("%-44s %14s %10s\n", "throughput", "frames/s", "vs pipe");
    printf("%-44s %14.0f %9.1fx\n", "ring (batch publish, 64 frames)", ring, ring / pipe1);
    printf("%-44s %14.0f %9.1fx\n", "pipe, one write() per frame", pipe1, 1.0);
    printf("%-44s %14.0f %9.1fx\n", "unix socketpair, one write() per frame", sock1, sock1 / pipe1);
    printf("%-44s %14.0f %9.1fx\n", "pipe, 64 frames per write()", pipe64, pipe64 / pipe1);

    double a50, a99;
    printf("\n%-44s %10s %10s\n", "round trip (64 B ping-pong)", "p50 us", "p99 us");
    ring_pingpong(scaled(200000), 0, &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "ring, both sides spinning", a50, a99);
    ring_pingpong(scaled(50000), 1, &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "ring, both sides parked (futex)", a50, a99);
    pipe_pingpong(scaled(50000), &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "pipe", a50, a99);
    ringio_bench(scaled(50000), 0, 0, &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "ringio + libuv, parked (spin_us 0)", a50, a99);
    ringio_bench(scaled(50000), 50, 0, &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "ringio + libuv, spin_us 50", a50, a99);

    printf("\n%-44s %10s %10s\n", "one-way wake of a parked consumer", "p50 us", "p99 us");
    futex_oneway(scaled(5000), &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "raw FUTEX_WAIT consumer", a50, a99);
    ringio_bench(scaled(5000), 0, 1, &a50, &a99);
    printf("%-44s %10.2f %10.2f\n", "doorbell thread -> uv_async -> on_frame", a50, a99);
    return 0;
}
