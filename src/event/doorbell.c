/* Futex doorbell; the protocol and its argument are in doorbell.h. */
#include "event/doorbell.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int kv_futex_wait(_Atomic uint32_t *word, uint32_t v, uint64_t timeout_us, bool shared)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_us) {
        ts.tv_sec = (time_t)(timeout_us / 1000000u);
        ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
        tsp = &ts;
    }
    int op = shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE;
    if (syscall(SYS_futex, (uint32_t *)word, op, v, tsp, NULL, 0) == 0)
        return 0;
    if (errno == EAGAIN)          /* the word already moved: a wake */
        return 0;
    return -errno;
}

int kv_futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    int op = shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE;
    long r = syscall(SYS_futex, (uint32_t *)word, op, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

void kv_doorbell_init(kv_doorbell_t *b)
{
    atomic_init(&b->seq, 0);
    atomic_init(&b->parked, 0);
    for (int i = 0; i < KV_BELL_WORDS; i++) {
        atomic_init(&b->dirty[i], 0);
        atomic_init(&b->reset[i], 0);
    }
    atomic_init(&b->wakes, 0);
}

bool kv_doorbell_wake(kv_doorbell_t *b)
{
    if (atomic_load_explicit(&b->parked, memory_order_seq_cst) == 0)
        return false;
    if (atomic_exchange_explicit(&b->parked, 0, memory_order_seq_cst) == 0)
        return false;                     /* another producer got it */
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&b->wakes, 1, memory_order_relaxed);
    kv_futex_wake(&b->seq, INT_MAX, true);
    return true;
}

static bool set_bit_and_wake(kv_doorbell_t *b, _Atomic uint64_t *mask, uint32_t bit)
{
    /* always the locked RMW: it orders our publish before the load of
     * `parked` (the Dekker pair of doorbell.h), and a "bit already set,
     * skip" shortcut would let the consumer clear it before our tail is
     * visible */
    atomic_fetch_or_explicit(&mask[bit >> 6], 1ull << (bit & 63), memory_order_seq_cst);
    return kv_doorbell_wake(b);
}

bool kv_doorbell_ring(kv_doorbell_t *b, uint32_t from)
{
    return set_bit_and_wake(b, b->dirty, from);
}

bool kv_doorbell_ring_reset(kv_doorbell_t *b, uint32_t peer)
{
    return set_bit_and_wake(b, b->reset, peer);
}

bool kv_doorbell_take(kv_doorbell_t *b, _Atomic uint64_t *mask, uint64_t out[KV_BELL_WORDS])
{
    bool any = false;
    (void)b;
    for (int i = 0; i < KV_BELL_WORDS; i++) {
        out[i] = 0;
        if (atomic_load_explicit(&mask[i], memory_order_relaxed) == 0)
            continue;
        out[i] = atomic_exchange_explicit(&mask[i], 0, memory_order_seq_cst);
        any |= out[i] != 0;
    }
    return any;
}

uint32_t kv_doorbell_park(kv_doorbell_t *b)
{
    uint32_t v = atomic_load_explicit(&b->seq, memory_order_seq_cst);
    atomic_store_explicit(&b->parked, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    return v;
}

bool kv_doorbell_pending(kv_doorbell_t *b)
{
    for (int i = 0; i < KV_BELL_WORDS; i++)
        if (atomic_load_explicit(&b->dirty[i], memory_order_seq_cst) |
            atomic_load_explicit(&b->reset[i], memory_order_seq_cst))
            return true;
    return false;
}

void kv_doorbell_unpark(kv_doorbell_t *b)
{
    atomic_store_explicit(&b->parked, 0, memory_order_relaxed);
}

int kv_doorbell_wait(kv_doorbell_t *b, uint32_t v, uint64_t timeout_us)
{
    int r = kv_futex_wait(&b->seq, v, timeout_us, true);
    atomic_store_explicit(&b->parked, 0, memory_order_relaxed);
    return r;
}
