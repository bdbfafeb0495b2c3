/*
 * The stream value (Redis 7.0's t_stream.c data model), see docs/stream.md.
 *
 * Entries live in listpack "nodes" laid out byte for byte as Redis's
 * (master entry + delta-encoded entries), so DUMP writes them unchanged.
 * Instead of Redis's radix tree, the nodes sit in a sorted array keyed by
 * each node's master ID (binary search; appends at the tail and trims at
 * the head are O(1) thanks to a gap kept at the front, see kv_svec).
 * Consumer groups, consumers and PELs are sorted arrays as well: groups
 * and consumers by name in Redis's rax order (bytes, a prefix first), so
 * XINFO lists them as Redis does; PELs by ID.
 */
#ifndef KV_SHARD_STREAM_TYPE_H
#define KV_SHARD_STREAM_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "shard/db.h"
#include "shard/listpack.h"

/* stream-node-max-bytes / stream-node-max-entries (Redis's defaults). */
extern size_t kv_stream_node_max_bytes;   /* 4096 */
extern long long kv_stream_node_max_entries; /* 100 */
void kv_stream_set_node_max_bytes(size_t n);
void kv_stream_set_node_max_entries(long long n);

#define KV_STREAM_LP_MAX_SIZE (1UL << 30) /* STREAM_LISTPACK_MAX_SIZE */
#define KV_SCG_INVALID_ENTRIES_READ (-1LL)

/* entry flags (STREAM_ITEM_FLAG_*) */
#define KV_SFLAG_DELETED 1
#define KV_SFLAG_SAMEFIELDS 2

typedef struct kv_sid {
    uint64_t ms, seq;
} kv_sid;

static inline int kv_sid_cmp(const kv_sid *a, const kv_sid *b)
{
    if (a->ms != b->ms) return a->ms > b->ms ? 1 : -1;
    if (a->seq != b->seq) return a->seq > b->seq ? 1 : -1;
    return 0;
}
static inline int kv_sid_zero(const kv_sid *a) { return !a->ms && !a->seq; }
/* streamIncrID / streamDecrID: 0, or -1 on overflow. */
int kv_sid_incr(kv_sid *id);
int kv_sid_decr(kv_sid *id);
/* "ms-seq" into buf (>= 44 bytes); returns the length. */
int kv_sid_fmt(char *buf, const kv_sid *id);
/* 16 bytes big endian (the rax key / RDB form). */
void kv_sid_encode(unsigned char *buf, const kv_sid *id);
void kv_sid_decode(const unsigned char *buf, kv_sid *id);

/* A sorted vector of fixed-size elements with room at both ends, so that
 * removing at either end is O(1) and a middle insert/remove moves the
 * smaller side. */
typedef struct kv_svec {
    char *buf;
    uint32_t head, n, cap, esz;
} kv_svec;
static inline void *kv_svec_at(const kv_svec *v, size_t i)
{
    return v->buf + ((size_t)v->head + i) * v->esz;
}
int kv_svec_insert(kv_svec *v, size_t i, const void *elem); /* 0, -1 OOM */
void kv_svec_remove(kv_svec *v, size_t i);
void kv_svec_free(kv_svec *v);

typedef struct kv_snode {
    kv_sid master;      /* the node's key: ID of its master entry */
    unsigned char *lp;
} kv_snode;

struct kv_sconsumer;
typedef struct kv_snack {
    kv_sid id;
    int64_t delivery_time;
    uint64_t delivery_count;
    struct kv_sconsumer *consumer;
} kv_snack;

typedef struct kv_sconsumer {
    int64_t seen_time;
    kv_svec pel; /* kv_snack *, by id (shared with the group's PEL) */
    uint32_t nlen;
    char name[];
} kv_sconsumer;

typedef struct kv_sgroup {
    kv_sid last_id;
    long long entries_read;
    kv_svec pel;  /* kv_snack *, by id; owns the NACKs */
    kv_svec cons; /* kv_sconsumer *, by name */
    uint32_t nlen;
    char name[];
} kv_sgroup;

typedef struct kv_stream {
    kv_svec nodes;  /* kv_snode, by master ID */
    uint64_t length;
    kv_sid last_id, first_id, max_deleted;
    uint64_t entries_added;
    kv_svec groups; /* kv_sgroup *, by name */
    size_t bytes;   /* memory estimate, kept up to date */
} kv_stream;

kv_stream *kv_stream_new(void);
void kv_stream_free(void *ptr, uint8_t enc);
void *kv_stream_dup(const void *ptr, uint8_t enc);
size_t kv_stream_mem(const void *ptr, uint8_t enc);

/* Append an entry of nf field/value pairs (av[2i], av[2i+1]), as
 * streamAppendItem. use_id: explicit ID (seq_given 0: "ms-*"), or NULL for
 * an automatic one. Returns 0, or -1 with errno EDOM (ID too small) or
 * ERANGE (too large). */
typedef struct { const char *p; size_t len; } kv_sarg;
int kv_stream_append(kv_stream *s, const kv_sarg *av, long nf, kv_sid *added,
                     const kv_sid *use_id, int seq_given);
/* Delete one entry: 1 if it existed. */
int kv_stream_delete(kv_stream *s, const kv_sid *id);

/* Trimming (streamTrim). */
enum { KV_TRIM_NONE = 0, KV_TRIM_MAXLEN, KV_TRIM_MINID };
typedef struct kv_strim {
    int strategy, approx;
    long long maxlen, limit;
    kv_sid minid;
} kv_strim;
long long kv_stream_trim(kv_stream *s, const kv_strim *t);

/* Iterating entries in [start, end] (either NULL: the edge). */
typedef struct kv_siter {
    kv_stream *s;
    kv_sid start, end;
    int rev;
    size_t node;         /* index of the current node; SIZE_MAX: done */
    unsigned char *lp;   /* its listpack */
    kv_sid master;
    int64_t master_nf;
    unsigned char *mfields; /* first master field */
    unsigned char *next;    /* fwd: next entry's flags; rev: previous lp-count */
    /* current entry */
    unsigned char *flagp, *fp, *vp;
    int samefields;
    int64_t nf;
} kv_siter;
void kv_siter_start(kv_siter *it, kv_stream *s, const kv_sid *start, const kv_sid *end,
                    int rev);
/* The next live entry: 1 and its id / number of fields, or 0 at the end. */
int kv_siter_next(kv_siter *it, kv_sid *id, int64_t *nf);
/* The next field/value pair of the current entry (call nf times). */
void kv_siter_field(kv_siter *it, kv_lp_val *f, kv_lp_val *v);
/* Delete the current entry (XDEL, XAUTOCLAIM); the iterator must not
 * be used afterwards except by starting it again. */
void kv_siter_remove(kv_siter *it);

/* Redis's helpers of the same names. */
void kv_stream_last_valid_id(kv_stream *s, kv_sid *id);
void kv_stream_first_valid_id(kv_stream *s, kv_sid *id); /* none: max */
int kv_stream_range_has_tombstones(const kv_stream *s, const kv_sid *start, const kv_sid *end);
long long kv_stream_estimate_distance(const kv_stream *s, const kv_sid *id);
/* Whether the entry exists (XCLAIM, XAUTOCLAIM). */
int kv_stream_has(kv_stream *s, const kv_sid *id);

/* ---- consumer groups (stream_cg.c) ---------------------------------- */

kv_sgroup *kv_stream_group(const kv_stream *s, const char *name, size_t n);
/* NULL if it exists already (or OOM). */
kv_sgroup *kv_stream_group_create(kv_stream *s, const char *name, size_t n, const kv_sid *id,
                                  long long entries_read);
int kv_stream_group_destroy(kv_stream *s, const char *name, size_t n);
kv_sconsumer *kv_sgroup_consumer(const kv_sgroup *g, const char *name, size_t n);
/* NULL if it exists already (or OOM). */
kv_sconsumer *kv_sgroup_consumer_create(kv_stream *s, kv_sgroup *g, const char *name, size_t n,
                                        int64_t now);
/* Deletes the consumer and its pending entries; returns how many. */
size_t kv_sgroup_consumer_delete(kv_stream *s, kv_sgroup *g, kv_sconsumer *c);
/* Index of the first element >= id in a PEL vector (binary search). */
size_t kv_spel_lower(const kv_svec *pel, const kv_sid *id);
kv_snack *kv_spel_find(const kv_svec *pel, const kv_sid *id);
/* A new NACK owned by the group, listed in c's PEL too. NULL: OOM. */
kv_snack *kv_sgroup_nack_add(kv_stream *s, kv_sgroup *g, kv_sconsumer *c, const kv_sid *id,
                             int64_t now);
/* Move a NACK to another consumer's PEL. */
void kv_sgroup_nack_move(kv_snack *nk, kv_sconsumer *to);
/* Remove and free a NACK (XACK). */
void kv_sgroup_nack_del(kv_stream *s, kv_sgroup *g, kv_snack *nk);

static inline kv_sgroup *kv_stream_group_at(const kv_stream *s, size_t i)
{
    return *(kv_sgroup **)kv_svec_at(&s->groups, i);
}
static inline kv_sconsumer *kv_sgroup_consumer_at(const kv_sgroup *g, size_t i)
{
    return *(kv_sconsumer **)kv_svec_at(&g->cons, i);
}
static inline kv_snack *kv_spel_at(const kv_svec *pel, size_t i)
{
    return *(kv_snack **)kv_svec_at(pel, i);
}

#endif
