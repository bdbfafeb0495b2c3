/*
 * Per-worker doorbell in the shared segment: a 32-bit futex word plus
 * bitmasks of the peers that published (`dirty`) or whose slot the master
 * reset (`reset`).
 *
 * Park protocol (an eventcount; why no wakeup is lost):
 *
 *   producer                          consumer
 *   publish tail (release)            v = seq
 *   fetch_or dirty bit (seq_cst)      parked = 1 (seq_cst)
 *   if parked (seq_cst load):         re-check dirty / every ring (seq_cst)
 *     if xchg(parked, 0):             if nothing: futex_wait(&seq, v)
 *       seq++; FUTEX_WAKE(&seq)
 *
 * The producer's dirty-bit RMW and the consumer's parked store are both
 * seq_cst and each side then loads the other's variable, so at least one
 * side sees the other: either the consumer's re-check finds the work, or
 * the producer sees `parked` and bumps `seq` -- and then futex_wait(&seq, v)
 * either finds seq != v and returns at once, or is woken. The xchg makes
 * at most one producer pay for the FUTEX_WAKE syscall per park.
 *
 * The futex word is in a MAP_SHARED mapping, so the non-private futex ops
 * are used; they work across the forked processes.
 */
#ifndef KV_EVENT_DOORBELL_H
#define KV_EVENT_DOORBELL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "event/segment.h"

#define KV_BELL_WORDS ((KV_SHARDS_MAX + 63) / 64)

struct kv_doorbell_s {
    _Alignas(64) _Atomic uint32_t seq;       /* futex word: bumped per wake */
    _Atomic uint32_t parked;                 /* 1: consumer is going to sleep */
    _Atomic uint64_t dirty[KV_BELL_WORDS];   /* bit p: peer p published     */
    _Atomic uint64_t reset[KV_BELL_WORDS];   /* bit p: master reset slot p  */
    _Atomic uint64_t wakes;                  /* FUTEX_WAKE calls (stats)    */
};

_Static_assert(sizeof(kv_doorbell_t) == 64, "one cache line per doorbell");

void kv_doorbell_init(kv_doorbell_t *b);

/* Producer side, after kv_ring_publish: mark `from` dirty, wake the
 * consumer if it parked. Returns true if it made the wake syscall. */
bool kv_doorbell_ring(kv_doorbell_t *b, uint32_t from);

/* Master side: tell the owner of `b` that slot `peer` was reset. */
bool kv_doorbell_ring_reset(kv_doorbell_t *b, uint32_t peer);

/* Wake the owner if parked, without marking anything (after a caller
 * has already set a bit with the right ordering). */
bool kv_doorbell_wake(kv_doorbell_t *b);

/* Consumer side. Take (and clear) the dirty / reset masks. Cheap when
 * nothing is set: one plain load per word. Returns true if any bit. */
bool kv_doorbell_take(kv_doorbell_t *b, _Atomic uint64_t *mask, uint64_t out[KV_BELL_WORDS]);

/* Announce the park; returns the seq value to pass to kv_doorbell_wait.
 * After this the caller must re-check its rings (kv_doorbell_pending
 * plus its own ring scan) before sleeping. */
uint32_t kv_doorbell_park(kv_doorbell_t *b);

/* Any dirty or reset bit set (a full fence is implied by park). */
bool kv_doorbell_pending(kv_doorbell_t *b);

/* Cancel a park that found work. */
void kv_doorbell_unpark(kv_doorbell_t *b);

/* Sleep until seq != v or a wake, at most timeout_us (0 = no limit).
 * Returns 0 when woken or seq already moved, -ETIMEDOUT, -EINTR. */
int kv_doorbell_wait(kv_doorbell_t *b, uint32_t v, uint64_t timeout_us);

/* Raw futex helpers (also used for process-local words). */
int kv_futex_wait(_Atomic uint32_t *word, uint32_t v, uint64_t timeout_us, bool shared);
int kv_futex_wake(_Atomic uint32_t *word, int n, bool shared);

#endif
