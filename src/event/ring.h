/*
 * Single-producer single-consumer ring of variable-length frames, living
 * in the shared segment (one per ordered pair of workers, see segment.h).
 *
 * The shared part (kv_ring_t) holds only two monotonically increasing
 * byte counters and a flag: `tail` (bytes published, written only by the
 * producer) and `head` (bytes consumed, written only by the consumer),
 * each on its own cache line. Everything else -- where the producer is
 * writing, what the consumer last saw -- lives in process-local handles
 * (kv_ring_prod_t, kv_ring_cons_t), so a crashed process leaves nothing
 * half-updated in shared memory but unpublished bytes past `tail`.
 *
 * Frame: a 16-byte header (kv_frame_t) followed by `len` payload bytes,
 * padded to 16. A frame never straddles the end of the data area: when it
 * does not fit contiguously the producer writes a PAD frame to the end and
 * starts again at offset 0. Hence the largest frame is half the ring
 * (KV_RING_FRAME_MAX); larger pushes fail with -EMSGSIZE (ringio splits
 * larger messages into fragments, see ringio.h).
 *
 * Memory ordering: the producer writes frames, then publishes a whole
 * batch with one release store of `tail`; the consumer acquire-loads
 * `tail`, reads frames in place, then returns the space with one release
 * store of `head`.
 */
#ifndef KV_EVENT_RING_H
#define KV_EVENT_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define KV_RING_ALIGN      16u
#define KV_RING_HDR_BYTES  192u          /* kv_ring_t: three cache lines  */
#define KV_RING_SIZE_MIN   4096u
#define KV_RING_SIZE_MAX   (1ull << 31)  /* frame len is 32-bit          */

#define KV_FRAME_PAD       0xffffu       /* internal: skip to the ring end */
#define KV_FRAME_MORE      0x0001u       /* flags: another fragment follows */

typedef struct {
    uint32_t len;       /* payload bytes, header excluded              */
    uint16_t type;      /* caller's message type; KV_FRAME_PAD reserved */
    uint16_t flags;     /* KV_FRAME_MORE                                */
    uint32_t src_gen;   /* producer's generation when it wrote the frame */
    uint32_t dst_gen;   /* consumer's generation as the producer knew it */
} kv_frame_t;

_Static_assert(sizeof(kv_frame_t) == KV_RING_ALIGN, "frame header is 16 bytes");

typedef struct {
    /* producer's line */
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint32_t want_space;   /* producer has a backlog: consumer, ring me */
    /* consumer's line */
    _Alignas(64) _Atomic uint64_t head;
    /* read-only after init */
    _Alignas(64) uint64_t size;
    uint32_t from, to;
    /* data area (size bytes) follows at KV_RING_HDR_BYTES */
} kv_ring_t;

_Static_assert(sizeof(kv_ring_t) == KV_RING_HDR_BYTES, "ring header layout");

typedef struct {
    kv_ring_t *r;
    uint8_t   *data;
    uint64_t   size, mask;
    uint64_t   tail;        /* local write position (>= published tail)  */
    uint64_t   published;   /* last value stored to r->tail              */
    uint64_t   head_cache;  /* last head seen; refreshed only when short */
    uint32_t   src_gen, dst_gen;   /* stamped into every frame            */
} kv_ring_prod_t;

typedef struct {
    kv_ring_t *r;
    uint8_t   *data;
    uint64_t   size, mask;
    uint64_t   head;        /* local read position (>= released head)    */
    uint64_t   released;    /* last value stored to r->head              */
    uint64_t   tail_cache;  /* last tail seen                            */
    uint64_t   corrupt;     /* frames found malformed (ring skipped)     */
} kv_ring_cons_t;

/* Largest payload one frame can carry in a ring of `size` bytes. */
static inline uint64_t kv_ring_frame_max(uint64_t size)
{
    return size / 2 - sizeof(kv_frame_t);
}

static inline uint64_t kv_ring_frame_bytes(uint64_t len)
{
    return (sizeof(kv_frame_t) + len + KV_RING_ALIGN - 1) & ~(uint64_t)(KV_RING_ALIGN - 1);
}

/* Set up an empty ring in place (master, before fork). */
void kv_ring_init(kv_ring_t *r, uint64_t size, uint32_t from, uint32_t to);

/* Master, with the consumer dead: drop every published frame. */
void kv_ring_reset_consumer(kv_ring_t *r);

/* Attach process-local handles; they pick up the shared positions, so a
 * respawned process continues where its predecessor stopped publishing. */
void kv_ring_prod_attach(kv_ring_prod_t *p, kv_ring_t *r);
void kv_ring_cons_attach(kv_ring_cons_t *c, kv_ring_t *r);

/* Append one frame locally (invisible until kv_ring_publish).
 * 0, -ENOSPC (ring full now; retry later), -EMSGSIZE (never fits). */
int kv_ring_push(kv_ring_prod_t *p, uint16_t type, uint16_t flags,
                 const void *bytes, uint32_t len);
int kv_ring_pushv(kv_ring_prod_t *p, uint16_t type, uint16_t flags,
                  const struct iovec *iov, int iovcnt);

/* Zero-copy: reserve room for a payload of len bytes; returns where to
 * write it or NULL (errno ENOSPC/EMSGSIZE). kv_ring_commit finishes it. */
void *kv_ring_reserve(kv_ring_prod_t *p, uint32_t len);
void kv_ring_commit(kv_ring_prod_t *p, uint16_t type, uint16_t flags, uint32_t len);

/* Publish everything pushed so far with one release store.
 * Returns true when something new became visible. */
bool kv_ring_publish(kv_ring_prod_t *p);

/* Bytes of frames pushed but not yet published. */
static inline uint64_t kv_ring_unpublished(const kv_ring_prod_t *p)
{
    return p->tail - p->published;
}

/* Free bytes as of the last head observation (refreshes it). */
uint64_t kv_ring_free(kv_ring_prod_t *p);

/* Producer with a backlog: announce it wants space, then re-check.
 * Returns true if space appeared meanwhile (retry now). */
bool kv_ring_want_space(kv_ring_prod_t *p, uint64_t bytes);

/* Next published frame, or NULL when the ring is empty. The frame stays
 * valid until kv_ring_release(). PAD frames are skipped here. */
const kv_frame_t *kv_ring_peek(kv_ring_cons_t *c);

/* Step over the frame returned by kv_ring_peek (local only). */
static inline void kv_ring_consume(kv_ring_cons_t *c, const kv_frame_t *f)
{
    c->head += kv_ring_frame_bytes(f->len);
}

/* Give the consumed space back with one release store. Returns true if
 * the producer asked to be told (want_space): ring its doorbell. */
bool kv_ring_release(kv_ring_cons_t *c);

/* Consumer: is anything published beyond what we have read? */
static inline bool kv_ring_readable(kv_ring_cons_t *c)
{
    if (c->head != c->tail_cache)
        return true;
    c->tail_cache = atomic_load_explicit(&c->r->tail, memory_order_acquire);
    return c->head != c->tail_cache;
}

/* Drop everything published so far (consumer side). */
void kv_ring_skip_all(kv_ring_cons_t *c);

static inline const void *kv_frame_payload(const kv_frame_t *f)
{
    return (const void *)(f + 1);
}

#endif
