/*
 * ringio: one worker's end of the rings, driven by its libuv loop.
 *
 * Each loop turn (a uv_prepare callback, i.e. just before the loop would
 * block) ringio: handles peer resets, drains every ring its doorbell
 * marked dirty (at most conf.batch frames per ring per turn, the rest next
 * turn), calls on_frame for each frame, then publishes everything sent
 * during the turn with one release store per target and rings the
 * targets' doorbells.
 *
 * Idle: while ring traffic flowed in the last conf.spin_us, a uv_idle
 * handle keeps the loop polling with a zero timeout (spinning). After that
 * ringio parks (doorbell.h protocol) and hands the futex wait to a
 * doorbell thread, which calls uv_async_send when a producer rings. So an
 * idle worker sleeps in epoll with no timer and no busy loop, and a busy
 * one makes no syscall for ring traffic.
 *
 * Ownership: send/sendv copy the caller's bytes (into the ring, or into
 * the local backlog when the ring is full); the caller keeps its buffer.
 * on_frame gets a pointer into the shared ring (or into ringio's
 * reassembly buffer for split messages) valid only during the callback:
 * copy what you keep. ringio owns and frees its backlog and buffers.
 *
 * Messages larger than one frame (kv_ring_frame_max(ring.size), half the
 * ring) are split into fragments flagged KV_FRAME_MORE and reassembled by
 * the receiver before on_frame, so any size up to KV_RINGIO_MSG_MAX goes
 * through; fragments stream through the backlog as the consumer drains.
 *
 * Generations: every frame carries the sender's generation and the
 * receiver's generation as the sender knew it. When a peer's slot is
 * reset (segment.h) this worker drops its backlog to the peer, drops
 * unread frames from the dead incarnation, and calls on_peer_reset before
 * delivering anything from the new one -- the worker fails its requests
 * outstanding to that peer there. Frames stamped for a previous
 * incarnation of *this* worker are dropped on arrival.
 *
 * Not thread-safe: call everything from the loop thread.
 */
#ifndef KV_EVENT_RINGIO_H
#define KV_EVENT_RINGIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "event/segment.h"

#define KV_RINGIO_MSG_MAX ((size_t)1 << 32)   /* one message, reassembled */

typedef struct kv_ringio_s kv_ringio_t;

typedef void (*kv_ringio_frame_cb)(kv_ringio_t *io, uint32_t from, uint16_t type,
                                   const void *bytes, size_t len, void *data);
typedef void (*kv_ringio_reset_cb)(kv_ringio_t *io, uint32_t peer,
                                   uint32_t old_gen, uint32_t new_gen, void *data);

typedef struct {
    kv_ringio_frame_cb on_frame;        /* required                          */
    kv_ringio_reset_cb on_peer_reset;   /* may be NULL                       */
    uint32_t spin_us;                   /* ring.spin_us; 0 = park at once    */
    uint32_t batch;                     /* frames per ring per turn; 0 = 256 */
    /* May be NULL: called once a turn, after the frames are delivered and
     * before what was sent is published (a last chance to send). */
    void (*on_turn_end)(kv_ringio_t *io, void *data);
} kv_ringio_conf_t;

typedef struct {
    uint64_t frames_in, frames_out;     /* delivered / sent messages         */
    uint64_t bytes_in, bytes_out;
    uint64_t fragments_out;             /* extra frames from splitting       */
    uint64_t stale_dropped;             /* frames of a dead incarnation      */
    uint64_t backlog_dropped;           /* backlog dropped on a peer reset   */
    uint64_t backlog, backlog_peak;     /* frames waiting for ring space     */
    uint64_t parks, wakeups;            /* parks; async wakes from the bell  */
    uint64_t peer_resets;
} kv_ringio_stats_t;

/* Attach worker `self` to its rings and doorbell and register with loop.
 * Reads the generations from the control blocks, so call it after the
 * master has bumped ours (it does, in kv_segment_shard_reset, before it
 * forks a replacement). Starts the doorbell thread. NULL + errno on error. */
kv_ringio_t *kv_ringio_start(uv_loop_t *loop, kv_segment_t *seg, uint32_t self,
                             const kv_ringio_conf_t *conf, void *data);

/* Queue a message to worker `to`; published at the end of this loop turn
 * (or by kv_ringio_flush). Never blocks, never drops (but see resets).
 * 0, or -EINVAL (bad target/type), -EMSGSIZE (> KV_RINGIO_MSG_MAX),
 * -ENOMEM (backlog could not grow). Types 0..0xfffe. */
int kv_ringio_send(kv_ringio_t *io, uint32_t to, uint16_t type,
                   const void *bytes, size_t len);
int kv_ringio_sendv(kv_ringio_t *io, uint32_t to, uint16_t type,
                    const struct iovec *iov, int iovcnt);

/* Publish all pending frames now: backlog first, one release store per
 * target, doorbells rung. Called automatically every loop turn. */
void kv_ringio_flush(kv_ringio_t *io);

/* Drain the rings now (called automatically every loop turn). Returns the
 * number of messages delivered. */
size_t kv_ringio_poll(kv_ringio_t *io);

/* Frames waiting in the local backlog (all targets). */
uint64_t kv_ringio_backlog(const kv_ringio_t *io);

/* Generation of `peer` as this worker last saw it; our own for self. */
uint32_t kv_ringio_peer_gen(const kv_ringio_t *io, uint32_t peer);

void kv_ringio_stats(const kv_ringio_t *io, kv_ringio_stats_t *out);

/* Flush, stop the doorbell thread (joined here), close the uv handles.
 * Frames still in the backlog are dropped (to stop gracefully, flush and
 * keep the loop running until kv_ringio_backlog() is 0 first). io is freed
 * once the handles have closed, so run the loop once more afterwards. Not
 * from inside on_frame/on_peer_reset. */
void kv_ringio_stop(kv_ringio_t *io);

#endif
