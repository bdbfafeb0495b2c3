/* SPSC frame ring; layout and ordering rules are in ring.h. */
#include "event/ring.h"

#include <errno.h>
#include <string.h>

static inline uint8_t *ring_data(kv_ring_t *r)
{
    return (uint8_t *)r + KV_RING_HDR_BYTES;
}

void kv_ring_init(kv_ring_t *r, uint64_t size, uint32_t from, uint32_t to)
{
    atomic_init(&r->tail, 0);
    atomic_init(&r->want_space, 0);
    atomic_init(&r->head, 0);
    r->size = size;
    r->from = from;
    r->to = to;
}

void kv_ring_reset_consumer(kv_ring_t *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    /* seq_cst pairs with kv_ring_want_space, as in kv_ring_release */
    atomic_store_explicit(&r->head, t, memory_order_seq_cst);
}

void kv_ring_prod_attach(kv_ring_prod_t *p, kv_ring_t *r)
{
    memset(p, 0, sizeof(*p));
    p->r = r;
    p->data = ring_data(r);
    p->size = r->size;
    p->mask = r->size - 1;
    p->tail = p->published = atomic_load_explicit(&r->tail, memory_order_acquire);
    p->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
    /* a predecessor may have died waiting for space; we start fresh */
    atomic_store_explicit(&r->want_space, 0, memory_order_relaxed);
}

void kv_ring_cons_attach(kv_ring_cons_t *c, kv_ring_t *r)
{
    memset(c, 0, sizeof(*c));
    c->r = r;
    c->data = ring_data(r);
    c->size = r->size;
    c->mask = r->size - 1;
    c->head = c->released = atomic_load_explicit(&r->head, memory_order_acquire);
    c->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* Bytes a frame of `len` needs at the current tail, including the PAD
 * that fills the end of the data area when it does not fit there. */
static inline uint64_t need_bytes(const kv_ring_prod_t *p, uint64_t len)
{
    uint64_t need = kv_ring_frame_bytes(len);
    uint64_t contig = p->size - (p->tail & p->mask);
    return contig < need ? need + contig : need;
}

static inline bool fits(const kv_ring_prod_t *p, uint64_t bytes)
{
    return p->tail + bytes - p->head_cache <= p->size;
}

void *kv_ring_reserve(kv_ring_prod_t *p, uint32_t len)
{
    if (len > kv_ring_frame_max(p->size)) {
        errno = EMSGSIZE;
        return NULL;
    }
    uint64_t need = kv_ring_frame_bytes(len);
    uint64_t bytes = need_bytes(p, len);
    if (!fits(p, bytes)) {
        /* only touch the consumer's line when the cached view is short */
        p->head_cache = atomic_load_explicit(&p->r->head, memory_order_acquire);
        if (!fits(p, bytes)) {
            errno = ENOSPC;
            return NULL;
        }
    }
    if (bytes != need) {
        kv_frame_t *pad = (kv_frame_t *)(p->data + (p->tail & p->mask));
        pad->len = (uint32_t)(bytes - need - sizeof(kv_frame_t));
        pad->type = KV_FRAME_PAD;
        pad->flags = 0;
        pad->src_gen = p->src_gen;
        pad->dst_gen = p->dst_gen;
        p->tail += bytes - need;
    }
    return p->data + (p->tail & p->mask) + sizeof(kv_frame_t);
}

void kv_ring_commit(kv_ring_prod_t *p, uint16_t type, uint16_t flags, uint32_t len)
{
    kv_frame_t *f = (kv_frame_t *)(p->data + (p->tail & p->mask));
    f->len = len;
    f->type = type;
    f->flags = flags;
    f->src_gen = p->src_gen;
    f->dst_gen = p->dst_gen;
    p->tail += kv_ring_frame_bytes(len);
}

int kv_ring_push(kv_ring_prod_t *p, uint16_t type, uint16_t flags,
                 const void *bytes, uint32_t len)
{
    uint8_t *dst = kv_ring_reserve(p, len);
    if (dst == NULL)
        return -errno;
    if (len)
        memcpy(dst, bytes, len);
    kv_ring_commit(p, type, flags, len);
    return 0;
}

int kv_ring_pushv(kv_ring_prod_t *p, uint16_t type, uint16_t flags,
                  const struct iovec *iov, int iovcnt)
{
    uint64_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (len > kv_ring_frame_max(p->size))
        return -EMSGSIZE;
    uint8_t *dst = kv_ring_reserve(p, (uint32_t)len);
    if (dst == NULL)
        return -errno;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    kv_ring_commit(p, type, flags, (uint32_t)len);
    return 0;
}

bool kv_ring_publish(kv_ring_prod_t *p)
{
    if (p->tail == p->published)
        return false;
    atomic_store_explicit(&p->r->tail, p->tail, memory_order_release);
    p->published = p->tail;
    return true;
}

uint64_t kv_ring_free(kv_ring_prod_t *p)
{
    p->head_cache = atomic_load_explicit(&p->r->head, memory_order_acquire);
    return p->size - (p->tail - p->head_cache);
}

bool kv_ring_want_space(kv_ring_prod_t *p, uint64_t len)
{
    /* Store-then-load against the consumer's store-head-then-load-flag in
     * kv_ring_release: with both seq_cst, one of the two sees the other,
     * so either we see the space or the consumer sees the flag. */
    atomic_store_explicit(&p->r->want_space, 1, memory_order_seq_cst);
    p->head_cache = atomic_load_explicit(&p->r->head, memory_order_seq_cst);
    return fits(p, need_bytes(p, len));
}

const kv_frame_t *kv_ring_peek(kv_ring_cons_t *c)
{
    for (;;) {
        if (c->head == c->tail_cache) {
            c->tail_cache = atomic_load_explicit(&c->r->tail, memory_order_acquire);
            if (c->head == c->tail_cache)
                return NULL;
        }
        uint64_t off = c->head & c->mask;
        const kv_frame_t *f = (const kv_frame_t *)(c->data + off);
        uint64_t bytes = kv_ring_frame_bytes(f->len);
        /* Frames come from our own peers, but a wild write must not make
         * us read outside the ring: drop what is left and count it. */
        if (f->len > c->size || bytes > c->tail_cache - c->head || off + bytes > c->size) {
            c->corrupt++;
            c->head = c->tail_cache;
            return NULL;
        }
        if (f->type != KV_FRAME_PAD)
            return f;
        c->head += bytes;
    }
}

bool kv_ring_release(kv_ring_cons_t *c)
{
    if (c->head == c->released)
        return false;
    /* seq_cst store + seq_cst load: see kv_ring_want_space */
    atomic_store_explicit(&c->r->head, c->head, memory_order_seq_cst);
    c->released = c->head;
    if (atomic_load_explicit(&c->r->want_space, memory_order_seq_cst) == 0)
        return false;
    return atomic_exchange_explicit(&c->r->want_space, 0, memory_order_relaxed) != 0;
}

void kv_ring_skip_all(kv_ring_cons_t *c)
{
    c->tail_cache = atomic_load_explicit(&c->r->tail, memory_order_acquire);
    c->head = c->tail_cache;
}
