/* The shared segment: layout in segment.h, ring/doorbell protocols in
 * ring.h and doorbell.h. */
#include "event/segment.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "core/time.h"
#include "event/doorbell.h"
#include "event/ring.h"

#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))

static uint64_t ctl_end(uint32_t nshards)
{
    return sizeof(kv_segment_t) + (uint64_t)nshards * sizeof(kv_shard_ctl_t);
}

static uint64_t bells_off(uint32_t nshards)
{
    return ALIGN_UP(ctl_end(nshards), 64);
}

static uint64_t rings_off(uint32_t nshards)
{
    return ALIGN_UP(bells_off(nshards) + (uint64_t)nshards * sizeof(kv_doorbell_t), 4096);
}

static uint64_t ring_stride(uint64_t ring_size)
{
    /* the data area starts on a 64-byte line after the 3-line header */
    return ALIGN_UP(KV_RING_HDR_BYTES + ring_size, 64);
}

uint64_t kv_segment_bytes(uint32_t nshards, uint64_t ring_size)
{
    uint64_t nrings = (uint64_t)nshards * (nshards ? nshards - 1 : 0);
    return ALIGN_UP(rings_off(nshards) + nrings * ring_stride(ring_size), 4096);
}

kv_segment_t *kv_segment_create(uint32_t nshards, uint64_t ring_size)
{
    if (nshards == 0 || nshards > KV_SHARDS_MAX || ring_size < KV_RING_SIZE_MIN ||
        ring_size > KV_RING_SIZE_MAX || (ring_size & (ring_size - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    uint64_t size = kv_segment_bytes(nshards, ring_size);
    /* NORESERVE: with many shards the ring area is large but mostly
     * untouched; shmem pages are allocated on first write */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;

    kv_segment_t *seg = p;        /* anonymous memory is already zero */
    seg->magic = KV_SEGMENT_MAGIC;
    seg->nshards = nshards;
    seg->size = size;
    seg->ring_size = ring_size;
    seg->rings_off = rings_off(nshards);
    seg->ring_stride = ring_stride(ring_size);
    seg->bells_off = bells_off(nshards);
    atomic_init(&seg->master_start_ms, kv_time_mono_ms());
    atomic_init(&seg->stopping, 0);
    for (uint32_t i = 0; i < nshards; i++) {
        kv_shard_ctl_t *c = &seg->shard[i];
        atomic_init(&c->state, KV_SHARD_DOWN);
        atomic_init(&c->generation, 0);
        atomic_init(&c->pid, 0);
        atomic_init(&c->cpu, -1);
        kv_doorbell_init(kv_segment_bell(seg, i));
    }
    for (uint32_t i = 0; i < nshards; i++)
        for (uint32_t j = 0; j < nshards; j++)
            if (i != j)
                kv_ring_init(kv_segment_ring(seg, i, j), ring_size, i, j);
    return seg;
}

void kv_segment_destroy(kv_segment_t *seg)
{
    if (seg != NULL)
        munmap(seg, seg->size);
}

void kv_segment_shard_reset(kv_segment_t *seg, uint32_t shard)
{
    if (shard >= seg->nshards)
        return;
    kv_shard_ctl_t *ctl = &seg->shard[shard];
    /* the new generation first: every later frame a peer stamps for the
     * old incarnation is then recognisably stale */
    atomic_fetch_add_explicit(&ctl->generation, 1, memory_order_seq_cst);
    atomic_store_explicit(&ctl->ring_backlog, 0, memory_order_relaxed);

    for (uint32_t j = 0; j < seg->nshards; j++) {
        if (j == shard)
            continue;
        /* towards the dead shard: we own its consumer side now */
        kv_ring_reset_consumer(kv_segment_ring(seg, j, shard));
        /* from the dead shard: unpublished bytes past tail are invisible;
         * published ones are dropped by the consumer by generation */
        kv_ring_t *out = kv_segment_ring(seg, shard, j);
        atomic_store_explicit(&out->want_space, 0, memory_order_relaxed);
    }

    kv_doorbell_t *b = kv_segment_bell(seg, shard);
    for (int w = 0; w < KV_BELL_WORDS; w++) {
        atomic_store_explicit(&b->dirty[w], 0, memory_order_relaxed);
        atomic_store_explicit(&b->reset[w], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&b->parked, 0, memory_order_seq_cst);

    for (uint32_t j = 0; j < seg->nshards; j++)
        if (j != shard)
            kv_doorbell_ring_reset(kv_segment_bell(seg, j), shard);
}
