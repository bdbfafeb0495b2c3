/*
 * The "skiplist" encoding of a sorted set: Redis's skiplist with spans
 * (O(log n) rank, by-rank and by-score seeks) and a member -> node dict,
 * in ONE allocation per member: each node lives in the extra bytes of its
 * member's kv_dict entry (dict.h), right after the member itself.
 *
 *   entry:  next 8 | klen 1 | member | pad | score 8 | backward 8 | fwd0 8
 *           | (fwd 8, span 8) x (level - 1)
 *
 * Level 0 keeps no span: a level-0 link always spans exactly one node.
 * So a level-1 node with a 10-byte member is 48 bytes; Redis spends a
 * dictEntry (32), an sds (16) and a skiplist node (48..) on it. The level
 * is not stored either: unlinking counts it (the links that pointed to the
 * node), which is all a re-insert needs. See docs/zset.md.
 *
 * Nodes are kv_dict_entry pointers; the header is a member-less fake entry
 * with every level. Entries never move (the dict rehashes links only).
 */
#ifndef KV_SHARD_ZSKIPLIST_H
#define KV_SHARD_ZSKIPLIST_H

#include <stddef.h>
#include <stdint.h>

#include "shard/dict.h"

#define KV_ZSL_MAXLEVEL 32 /* as Redis: enough for 2^64 elements at P=1/4 */

typedef struct kv_zsl_node {
    double score;
    kv_dict_entry *backward;
    kv_dict_entry *fwd0;
    struct {
        kv_dict_entry *fwd;
        unsigned long span;
    } lv[]; /* levels 1 .. level-1 */
} kv_zsl_node;

typedef struct kv_zsl {
    kv_dict *dict;
    kv_dict_entry *header;
    kv_dict_entry *tail;
    unsigned long length;
    int level;
    size_t mem; /* bytes of the member entries */
} kv_zsl;

static inline kv_zsl_node *kv_zsl_n(const kv_dict_entry *e)
{
    return (kv_zsl_node *)kv_dict_entry_extra(e);
}
static inline kv_dict_entry *kv_zsl_fwd(const kv_dict_entry *e, int i)
{
    kv_zsl_node *n = kv_zsl_n(e);
    return i ? n->lv[i - 1].fwd : n->fwd0;
}
static inline double kv_zsl_score(const kv_dict_entry *e) { return kv_zsl_n(e)->score; }
static inline kv_dict_entry *kv_zsl_first(const kv_zsl *z) { return kv_zsl_n(z->header)->fwd0; }

kv_zsl *kv_zsl_new(size_t hint);
void kv_zsl_free(kv_zsl *z);
size_t kv_zsl_mem(const kv_zsl *z);

/* Insert a member known to be absent. */
kv_dict_entry *kv_zsl_insert(kv_zsl *z, const char *m, size_t mlen, double score);
/* Append a member known to be absent and to sort after the tail. */
kv_dict_entry *kv_zsl_append(kv_zsl *z, const char *m, size_t mlen, double score);
/* Change the score of node e (its member is in the zset). */
void kv_zsl_update(kv_zsl *z, kv_dict_entry *e, double newscore);
/* Delete node e (unlink, remove from the dict, free). */
void kv_zsl_delete(kv_zsl *z, kv_dict_entry *e);
/* Delete the ranks [start, end], 1-based inclusive; returns count. */
size_t kv_zsl_delete_ranks(kv_zsl *z, unsigned long start, unsigned long end);

/* 1-based rank of node e (0 never). */
unsigned long kv_zsl_rank(const kv_zsl *z, const kv_dict_entry *e);
/* Node of 1-based rank r (<= length). */
kv_dict_entry *kv_zsl_at_rank(const kv_zsl *z, unsigned long r);

/* Seeks: the last node for which before(ud, node) holds, going forward
 * from the header (the header itself if none), and its 1-based rank in
 * *rank (0: the header). before must hold for a prefix of the list. */
typedef int kv_zsl_pred(const void *ud, const kv_dict_entry *e);
kv_dict_entry *kv_zsl_seek(const kv_zsl *z, kv_zsl_pred *before, const void *ud,
                           unsigned long *rank);

void kv_zsl_seed(uint64_t seed);

#endif
