/* Rings in one process: layout, wrap-around, every frame size, full ring,
 * backlog, split messages, generations (ringio with two workers on one
 * loop). Cross-process tests are in test_ring_ipc.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/resource.h>
#include <uv.h>

#include "event/doorbell.h"
#include "event/ring.h"
#include "event/ringio.h"
#include "event/segment.h"

static uint8_t pattern(uint64_t seq, uint64_t i) { return (uint8_t)(seq * 131 + i * 7 + 1); }

static void fill(uint8_t *p, uint64_t seq, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pattern(seq, i);
}

static int check(const uint8_t *p, uint64_t seq, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern(seq, i))
            return 0;
    return 1;
}

static void test_segment_layout(void **state)
{
    (void)state;
    assert_null(kv_segment_create(0, 4096));
    assert_null(kv_segment_create(2, 5000));            /* not a power of 2 */
    assert_null(kv_segment_create(KV_SHARDS_MAX + 1, 4096));
    kv_segment_t *seg = kv_segment_create(4, 8192);
    assert_non_null(seg);
    assert_int_equal(seg->magic, KV_SEGMENT_MAGIC);
    assert_int_equal(seg->ring_size, 8192);
    char *lo = (char *)seg, *hi = lo + seg->size;
    for (uint32_t i = 0; i < 4; i++) {
        kv_doorbell_t *b = kv_segment_bell(seg, i);
        assert_true((char *)b >= lo + sizeof(kv_segment_t) + 4 * sizeof(kv_shard_ctl_t));
        assert_int_equal((uintptr_t)b % 64, 0);
        for (uint32_t j = 0; j < 4; j++) {
            if (i == j)
                continue;
            kv_ring_t *r = kv_segment_ring(seg, i, j);
            assert_int_equal(r->from, i);
            assert_int_equal(r->to, j);
            assert_int_equal(r->size, 8192);
            assert_true((char *)r + KV_RING_HDR_BYTES + 8192 <= hi);
            assert_int_equal((uintptr_t)r % 64, 0);
            assert_true((char *)r >= (char *)kv_segment_bell(seg, 3) + 64);
        }
    }
    kv_segment_destroy(seg);
}

/* Many laps around a small ring with sizes that never line up with its
 * end, so PAD frames and every wrap offset occur. */
static void test_wrap_around(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 4096);
    kv_ring_prod_t p;
    kv_ring_cons_t c;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    kv_ring_cons_attach(&c, kv_segment_ring(seg, 0, 1));
    uint8_t buf[2048];
    uint64_t sent = 0, got = 0;
    for (int round = 0; round < 20000; round++) {
        int k = 1 + round % 5;
        for (int i = 0; i < k; i++) {
            size_t len = (sent * 37) % 700;
            fill(buf, sent, len);
            int r = kv_ring_push(&p, (uint16_t)(sent & 0x7fff), 0, buf, (uint32_t)len);
            if (r == -ENOSPC)
                break;
            assert_int_equal(r, 0);
            sent++;
        }
        assert_true(kv_ring_publish(&p) || sent == got);
        const kv_frame_t *f;
        while ((f = kv_ring_peek(&c)) != NULL) {
            assert_int_equal(f->len, (got * 37) % 700);
            assert_int_equal(f->type, got & 0x7fff);
            assert_true(check(kv_frame_payload(f), got, f->len));
            assert_int_equal(((uintptr_t)f - (uintptr_t)c.data) % KV_RING_ALIGN, 0);
            kv_ring_consume(&c, f);
            got++;
        }
        kv_ring_release(&c);
    }
    assert_int_equal(sent, got);
    assert_true(p.tail > 1000 * 4096ull);       /* really lapped the ring */
    assert_int_equal(c.corrupt, 0);
    kv_segment_destroy(seg);
}

static void test_frame_sizes(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 4096);
    kv_ring_prod_t p;
    kv_ring_cons_t c;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 1, 0));
    kv_ring_cons_attach(&c, kv_segment_ring(seg, 1, 0));
    uint64_t max = kv_ring_frame_max(4096);
    assert_int_equal(max, 2048 - 16);
    static uint8_t buf[8192];
    /* each size at two different offsets, one of which forces a PAD */
    for (uint64_t rep = 0; rep < 2; rep++) {
        for (uint64_t len = 0; len <= max; len++) {
            fill(buf, len + rep, len);
            assert_int_equal(kv_ring_push(&p, 7, 0, buf, (uint32_t)len), 0);
            kv_ring_publish(&p);
            const kv_frame_t *f = kv_ring_peek(&c);
            assert_non_null(f);
            assert_int_equal(f->len, len);
            assert_int_equal(f->type, 7);
            assert_true(check(kv_frame_payload(f), len + rep, len));
            kv_ring_consume(&c, f);
            assert_null(kv_ring_peek(&c));
            kv_ring_release(&c);
        }
        /* shift the start so the second pass meets the end differently */
        assert_int_equal(kv_ring_push(&p, 1, 0, buf, 100), 0);
        kv_ring_publish(&p);
        kv_ring_consume(&c, kv_ring_peek(&c));
        kv_ring_release(&c);
    }
    /* larger than a frame can be: rejected, ring untouched */
    uint64_t tail = p.tail;
    assert_int_equal(kv_ring_push(&p, 1, 0, buf, (uint32_t)max + 1), -EMSGSIZE);
    assert_int_equal(kv_ring_push(&p, 1, 0, buf, 8000), -EMSGSIZE);
    assert_int_equal(p.tail, tail);
    kv_segment_destroy(seg);
}

static void test_full_ring(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 4096);
    kv_ring_prod_t p;
    kv_ring_cons_t c;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    kv_ring_cons_attach(&c, kv_segment_ring(seg, 0, 1));
    uint8_t buf[48] = { 0 };
    int n = 0;
    while (kv_ring_push(&p, 1, 0, buf, sizeof buf) == 0)
        n++;
    assert_int_equal(n, 4096 / 64);                     /* 16 + 48 bytes each */
    assert_int_equal(kv_ring_push(&p, 1, 0, buf, 0), -ENOSPC);
    kv_ring_publish(&p);
    /* unconsumed bytes never get overwritten; ask to be told */
    assert_false(kv_ring_want_space(&p, sizeof buf));
    const kv_frame_t *f = kv_ring_peek(&c);
    assert_non_null(f);
    kv_ring_consume(&c, f);
    assert_true(kv_ring_release(&c));                   /* producer asked */
    assert_false(kv_ring_release(&c));                  /* nothing new */
    assert_int_equal(kv_ring_push(&p, 1, 0, buf, sizeof buf), 0);
    assert_int_equal(kv_ring_push(&p, 1, 0, buf, sizeof buf), -ENOSPC);
    kv_segment_destroy(seg);
}

/* ---- ringio, two workers on one loop ---------------------------------- */

typedef struct {
    uint64_t got, bad, big, resets;
    uint64_t next[2];
    uint32_t reset_peer, reset_old, reset_new;
    size_t big_len;
} sink_t;

static void on_frame(kv_ringio_t *io, uint32_t from, uint16_t type,
                     const void *bytes, size_t len, void *data)
{
    (void)io;
    sink_t *s = data;
    if (type == 2) {                          /* the split message */
        s->big++;
        s->big_len = len;
        for (size_t i = 0; i < len; i++)
            if (((const uint8_t *)bytes)[i] != (uint8_t)(i * 13))
                s->bad++;
        return;
    }
    uint64_t seq;
    assert_true(len >= 8);
    memcpy(&seq, bytes, 8);
    if (seq != s->next[from] || !check((const uint8_t *)bytes + 8, seq, len - 8))
        s->bad++;
    s->next[from] = seq + 1;
    s->got++;
}

static void on_reset(kv_ringio_t *io, uint32_t peer, uint32_t old_gen,
                     uint32_t new_gen, void *data)
{
    (void)io;
    sink_t *s = data;
    s->resets++;
    s->reset_peer = peer;
    s->reset_old = old_gen;
    s->reset_new = new_gen;
}

static int send_seq(kv_ringio_t *io, uint32_t to, uint64_t seq, size_t len)
{
    uint8_t buf[600];
    memcpy(buf, &seq, 8);
    fill(buf + 8, seq, len - 8);
    return kv_ringio_send(io, to, 1, buf, len);
}

static void run_until(uv_loop_t *loop, uint64_t *counter, uint64_t want)
{
    for (int i = 0; i < 1000000 && *counter < want; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static void test_ringio_backlog_split_reset(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 4096);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sink_t s0 = { 0 }, s1 = { 0 };
    kv_ringio_conf_t c0 = { on_frame, on_reset, 50, 0 }, c1 = c0;
    kv_ringio_t *a = kv_ringio_start(&loop, seg, 0, &c0, &s0);
    kv_ringio_t *b = kv_ringio_start(&loop, seg, 1, &c1, &s1);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(kv_ringio_send(a, 0, 1, "x", 1), -EINVAL);   /* to self */
    assert_int_equal(kv_ringio_send(a, 2, 1, "x", 1), -EINVAL);
    assert_int_equal(kv_ringio_send(a, 1, KV_FRAME_PAD, "x", 1), -EINVAL);

    /* 2000 frames into a 4 KiB ring without turning the loop: most of them
     * wait in the backlog, in order, and the shard's counter shows it */
    const uint64_t N = 2000;
    for (uint64_t i = 0; i < N; i++)
        assert_int_equal(send_seq(a, 1, i, 8 + (i * 29) % 500), 0);
    kv_ringio_flush(a);
    assert_true(kv_ringio_backlog(a) > N / 2);
    assert_int_equal(atomic_load(&seg->shard[0].ring_backlog), kv_ringio_backlog(a));
    /* a message 5x the ring goes through as fragments, after the backlog */
    size_t big = 5 * 4096 + 123;
    uint8_t *bb = malloc(big);
    for (size_t i = 0; i < big; i++)
        bb[i] = (uint8_t)(i * 13);
    assert_int_equal(kv_ringio_send(a, 1, 2, bb, big), 0);
    assert_int_equal(send_seq(a, 1, N, 64), 0);
    run_until(&loop, &s1.got, N + 1);
    assert_int_equal(s1.got, N + 1);
    assert_int_equal(s1.bad, 0);
    assert_int_equal(s1.big, 1);
    assert_int_equal(s1.big_len, big);
    assert_int_equal(kv_ringio_backlog(a), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(atomic_load(&seg->shard[0].ring_backlog), 0);

    /* worker 1 "dies" with a backlog queued towards it */
    kv_ringio_stop(b);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (uint64_t i = 0; i < 200; i++)
        assert_int_equal(send_seq(a, 1, 1000000 + i, 300), 0);
    kv_ringio_flush(a);
    assert_true(kv_ringio_backlog(a) > 0);
    uint32_t g1 = atomic_load(&seg->shard[1].generation);
    kv_segment_shard_reset(seg, 1);
    assert_int_equal(atomic_load(&seg->shard[1].generation), g1 + 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(s0.resets, 1);
    assert_int_equal(s0.reset_peer, 1);
    assert_int_equal(s0.reset_old, g1);
    assert_int_equal(s0.reset_new, g1 + 1);
    assert_int_equal(kv_ringio_backlog(a), 0);             /* dropped */
    assert_int_equal(kv_ringio_peer_gen(a, 1), g1 + 1);

    /* the new incarnation sees none of it, only what follows */
    sink_t s1b = { 0 };
    s1b.next[0] = 5000;
    b = kv_ringio_start(&loop, seg, 1, &c1, &s1b);
    assert_non_null(b);
    assert_int_equal(kv_ringio_peer_gen(b, 1), g1 + 1);
    for (uint64_t i = 0; i < 10; i++)
        assert_int_equal(send_seq(a, 1, 5000 + i, 100), 0);
    run_until(&loop, &s1b.got, 10);
    assert_int_equal(s1b.got, 10);
    assert_int_equal(s1b.bad, 0);
    kv_ringio_stats_t st;
    kv_ringio_stats(b, &st);
    assert_int_equal(st.stale_dropped, 0);

    kv_ringio_stop(a);
    kv_ringio_stop(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(bb);
    kv_segment_destroy(seg);
}

/* A frame published for the previous incarnation after the reset (the
 * sender had not noticed yet) must not reach the new one. */
static void test_stale_frame_after_reset(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 4096);
    kv_ring_prod_t p;
    kv_ring_prod_attach(&p, kv_segment_ring(seg, 0, 1));
    p.src_gen = 0;
    p.dst_gen = 0;
    assert_int_equal(kv_ring_push(&p, 1, 0, "old!!!!!", 8), 0);
    kv_ring_publish(&p);
    kv_segment_shard_reset(seg, 1);            /* drops the published one */
    assert_int_equal(kv_ring_push(&p, 1, 0, "late!!!!", 8), 0);
    kv_ring_publish(&p);                        /* stamped for gen 0 */

    uv_loop_t loop;
    uv_loop_init(&loop);
    sink_t s = { 0 };
    kv_ringio_conf_t c = { on_frame, on_reset, 0, 0 };
    kv_ringio_t *b = kv_ringio_start(&loop, seg, 1, &c, &s);
    for (int i = 0; i < 100; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    kv_ringio_stats_t st;
    kv_ringio_stats(b, &st);
    assert_int_equal(s.got, 0);
    assert_int_equal(st.stale_dropped, 1);
    kv_ringio_stop(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    kv_segment_destroy(seg);
}

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);      /* all threads: loop + doorbell thread */
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* An idle worker parks: half a second of wall time costs ~no CPU. */
static void test_idle_parks(void **state)
{
    (void)state;
    kv_segment_t *seg = kv_segment_create(2, 4096);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sink_t s = { 0 };
    kv_ringio_conf_t c = { on_frame, on_reset, 50, 0 };
    kv_ringio_t *io = kv_ringio_start(&loop, seg, 0, &c, &s);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, 500, 0);
    double c0 = cpu_seconds();
    uv_run(&loop, UV_RUN_DEFAULT);
    double used = cpu_seconds() - c0;
    kv_ringio_stats_t st;
    kv_ringio_stats(io, &st);
    print_message("  idle 0.5 s: %.4f s CPU, %llu park(s)\n", used, (unsigned long long)st.parks);
    assert_true(used < 0.05);
    assert_true(st.parks >= 1);
    uv_close((uv_handle_t *)&t, NULL);
    kv_ringio_stop(io);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    kv_segment_destroy(seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_layout),
        cmocka_unit_test(test_wrap_around),
        cmocka_unit_test(test_frame_sizes),
        cmocka_unit_test(test_full_ring),
        cmocka_unit_test(test_ringio_backlog_split_reset),
        cmocka_unit_test(test_stale_frame_after_reset),
        cmocka_unit_test(test_idle_parks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
