/* The skiplist encoding of sorted sets: Redis's t_zset.c skiplist with
 * spans, with nodes embedded in the member dict's entries (zskiplist.h). */
#include <stdlib.h>
#include <string.h>

#include "shard/zskiplist.h"

#define ZSL_P 0.25

static uint64_t zsl_rng = 0x9E3779B97F4A7C15ull;

void kv_zsl_seed(uint64_t seed) { zsl_rng = seed ? seed : 1; }

/* Level 1..MAXLEVEL with P(level > k) = 1/4^k, as zslRandomLevel. */
static int random_level(void)
{
    int level = 1;
    for (;;) {
        zsl_rng ^= zsl_rng << 13, zsl_rng ^= zsl_rng >> 7, zsl_rng ^= zsl_rng << 17;
        uint64_t r = zsl_rng;
        /* 32 draws of 2 bits from one number: each is < 1/4 with P=1/4 */
        for (int k = 0; k < 32; k++, r >>= 2) {
            if ((r & 3) != 0) return level;
            if (++level == KV_ZSL_MAXLEVEL) return level;
        }
    }
}

static inline size_t node_extra(int level)
{
    return sizeof(kv_zsl_node) + (size_t)(level - 1) * sizeof(((kv_zsl_node *)0)->lv[0]);
}
static inline unsigned long span(const kv_dict_entry *e, int i)
{
    return i ? kv_zsl_n(e)->lv[i - 1].span : 1;
}
static inline void set_span(kv_dict_entry *e, int i, unsigned long s)
{
    if (i) kv_zsl_n(e)->lv[i - 1].span = s;
}
static inline void set_fwd(kv_dict_entry *e, int i, kv_dict_entry *f)
{
    kv_zsl_node *n = kv_zsl_n(e);
    if (i) n->lv[i - 1].fwd = f;
    else n->fwd0 = f;
}

/* (score, member) order, as Redis: score, then memcmp-then-length. */
static inline int before(const kv_dict_entry *f, double score, const char *m, size_t mlen)
{
    double s = kv_zsl_score(f);
    if (s != score) return s < score;
    size_t fl = kv_dict_entry_klen(f);
    int c = memcmp(kv_dict_entry_key(f), m, fl < mlen ? fl : mlen);
    return c ? c < 0 : fl < mlen;
}

kv_zsl *kv_zsl_new(size_t hint)
{
    kv_zsl *z = malloc(sizeof *z);
    size_t hsz = kv_dict_extra_offset(0) + node_extra(KV_ZSL_MAXLEVEL);
    kv_dict_entry *h = calloc(1, hsz);
    if (!z || !h) abort();
    h->hdr[0] = 0; /* a member-less entry: kv_dict_entry_extra works on it */
    z->dict = kv_dict_new();
    if (hint > 0) kv_dict_expand(z->dict, hint);
    z->header = h, z->tail = NULL, z->length = 0, z->level = 1, z->mem = 0;
    return z;
}

void kv_zsl_free(kv_zsl *z)
{
    if (!z) return;
    kv_dict_free(z->dict, NULL, NULL); /* nodes are the dict's entries */
    free(z->header);
    free(z);
}

size_t kv_zsl_mem(const kv_zsl *z)
{
    return sizeof *z + kv_dict_extra_offset(0) + node_extra(KV_ZSL_MAXLEVEL) + kv_dict_mem(z->dict) +
           z->mem;
}

/* Link the allocated node x of `level` levels at its place for `score`. */
static void link_node(kv_zsl *z, kv_dict_entry *x, int level, double score)
{
    kv_dict_entry *update[KV_ZSL_MAXLEVEL], *p = z->header, *f;
    unsigned long rank[KV_ZSL_MAXLEVEL];
    const char *m = kv_dict_entry_key(x);
    size_t mlen = kv_dict_entry_klen(x);
    int i;
    for (i = z->level - 1; i >= 0; i--) {
        rank[i] = i == z->level - 1 ? 0 : rank[i + 1];
        while ((f = kv_zsl_fwd(p, i)) && before(f, score, m, mlen)) {
            rank[i] += span(p, i);
            p = f;
        }
        update[i] = p;
    }
    if (level > z->level) {
        for (i = z->level; i < level; i++) {
            rank[i] = 0;
            update[i] = z->header;
            set_span(z->header, i, z->length);
        }
        z->level = level;
    }
    kv_zsl_n(x)->score = score;
    for (i = 0; i < level; i++) {
        set_fwd(x, i, kv_zsl_fwd(update[i], i));
        set_fwd(update[i], i, x);
        set_span(x, i, span(update[i], i) - (rank[0] - rank[i]));
        set_span(update[i], i, rank[0] - rank[i] + 1);
    }
    for (i = level; i < z->level; i++) set_span(update[i], i, span(update[i], i) + 1);
    kv_zsl_n(x)->backward = update[0] == z->header ? NULL : update[0];
    if ((f = kv_zsl_n(x)->fwd0)) kv_zsl_n(f)->backward = x;
    else z->tail = x;
    z->length++;
}

/* update[i]: the last node before x at each level. */
static void find_update(const kv_zsl *z, const kv_dict_entry *x, kv_dict_entry **update)
{
    kv_dict_entry *p = z->header, *f;
    double score = kv_zsl_score(x);
    const char *m = kv_dict_entry_key(x);
    size_t mlen = kv_dict_entry_klen(x);
    for (int i = z->level - 1; i >= 0; i--) {
        while ((f = kv_zsl_fwd(p, i)) && f != x && before(f, score, m, mlen)) p = f;
        update[i] = p;
    }
}

/* Unlink x; returns its level (the links that pointed to it). */
static int unlink_node(kv_zsl *z, kv_dict_entry *x, kv_dict_entry **update)
{
    int level = 0;
    for (int i = 0; i < z->level; i++) {
        if (kv_zsl_fwd(update[i], i) == x) {
            set_span(update[i], i, span(update[i], i) + span(x, i) - 1);
            set_fwd(update[i], i, kv_zsl_fwd(x, i));
            level++;
        } else {
            set_span(update[i], i, span(update[i], i) - 1);
        }
    }
    kv_dict_entry *f = kv_zsl_n(x)->fwd0;
    if (f) kv_zsl_n(f)->backward = kv_zsl_n(x)->backward;
    else z->tail = kv_zsl_n(x)->backward;
    while (z->level > 1 && !kv_zsl_fwd(z->header, z->level - 1)) z->level--;
    z->length--;
    return level;
}

kv_dict_entry *kv_zsl_insert(kv_zsl *z, const char *m, size_t mlen, double score)
{
    int level = random_level();
    kv_dict_entry *x = kv_dict_insert(z->dict, m, mlen, node_extra(level));
    if (!x) return NULL;
    z->mem += kv_dict_entry_alloc_size(mlen, node_extra(level));
    link_node(z, x, level, score);
    return x;
}

kv_dict_entry *kv_zsl_append(kv_zsl *z, const char *m, size_t mlen, double score)
{
    return kv_zsl_insert(z, m, mlen, score);
}

void kv_zsl_update(kv_zsl *z, kv_dict_entry *x, double newscore)
{
    kv_zsl_node *n = kv_zsl_n(x);
    /* Still between its neighbours: only the score changes (Redis's
     * zslUpdateScore fast path, same strict comparisons). */
    if ((!n->backward || kv_zsl_score(n->backward) < newscore) &&
        (!n->fwd0 || kv_zsl_score(n->fwd0) > newscore)) {
        n->score = newscore;
        return;
    }
    kv_dict_entry *update[KV_ZSL_MAXLEVEL];
    find_update(z, x, update);
    int level = unlink_node(z, x, update);
    link_node(z, x, level, newscore); /* the same entry, the same level */
}

static void free_node(kv_zsl *z, kv_dict_entry *x, int level)
{
    size_t klen = kv_dict_entry_klen(x);
    kv_dict_unlink_entry(z->dict, x);
    z->mem -= kv_dict_entry_alloc_size(klen, node_extra(level));
    kv_dict_entry_free(x);
}

void kv_zsl_delete(kv_zsl *z, kv_dict_entry *x)
{
    kv_dict_entry *update[KV_ZSL_MAXLEVEL];
    find_update(z, x, update);
    free_node(z, x, unlink_node(z, x, update));
}

size_t kv_zsl_delete_ranks(kv_zsl *z, unsigned long start, unsigned long end)
{
    kv_dict_entry *update[KV_ZSL_MAXLEVEL], *p = z->header, *f;
    unsigned long traversed = 0;
    size_t removed = 0;
    for (int i = z->level - 1; i >= 0; i--) {
        while ((f = kv_zsl_fwd(p, i)) && traversed + span(p, i) < start) {
            traversed += span(p, i);
            p = f;
        }
        update[i] = p;
    }
    traversed++;
    p = kv_zsl_n(p)->fwd0;
    while (p && traversed <= end) {
        kv_dict_entry *next = kv_zsl_n(p)->fwd0;
        free_node(z, p, unlink_node(z, p, update));
        removed++, traversed++;
        p = next;
    }
    return removed;
}

unsigned long kv_zsl_rank(const kv_zsl *z, const kv_dict_entry *x)
{
    kv_dict_entry *p = z->header, *f;
    unsigned long rank = 0;
    double score = kv_zsl_score(x);
    const char *m = kv_dict_entry_key(x);
    size_t mlen = kv_dict_entry_klen(x);
    for (int i = z->level - 1; i >= 0; i--) {
        while ((f = kv_zsl_fwd(p, i)) && (f == x || before(f, score, m, mlen))) {
            rank += span(p, i);
            p = f;
            if (p == x) return rank;
        }
    }
    return 0;
}

kv_dict_entry *kv_zsl_at_rank(const kv_zsl *z, unsigned long r)
{
    kv_dict_entry *p = z->header, *f;
    unsigned long traversed = 0;
    for (int i = z->level - 1; i >= 0; i--) {
        while ((f = kv_zsl_fwd(p, i)) && traversed + span(p, i) <= r) {
            traversed += span(p, i);
            p = f;
        }
        if (traversed == r) return p;
    }
    return NULL;
}

kv_dict_entry *kv_zsl_seek(const kv_zsl *z, kv_zsl_pred *pred, const void *ud,
                           unsigned long *rank)
{
    kv_dict_entry *p = z->header, *f;
    unsigned long r = 0;
    for (int i = z->level - 1; i >= 0; i--) {
        while ((f = kv_zsl_fwd(p, i)) && pred(ud, f)) {
            r += span(p, i);
            p = f;
        }
    }
    *rank = r;
    return p;
}
