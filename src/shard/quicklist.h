/*
 * The list value: Redis 7.0's quicklist, a doubly linked chain of
 * listpack nodes, with the same rules for when a node takes another
 * element, splits or merges. Those rules decide how elements fall into
 * nodes, and the nodes are what DUMP writes (RDB_TYPE_LIST_QUICKLIST_2),
 * so following them exactly is what makes kevy's DUMP of a list
 * byte-identical to redis-server's after the same commands.
 *
 * Leaner than Redis's: a small node is ONE allocation, a 24-byte header
 * with the listpack right behind it (Redis: a 32-byte quicklistNode plus
 * a separately allocated listpack), and the list header is 32 bytes
 * (Redis: a 16-byte robj plus a 40-byte quicklist). Big nodes keep their
 * listpack apart, as Redis does (see kv_qlnode_lp). The listpack bytes
 * themselves are Redis's format (shard/listpack.h reads them).
 *
 * Nodes are PACKED (a listpack) or PLAIN (one element of at least
 * list's packed threshold, 1 GB by default, stored raw), as in Redis.
 * Redis's LZF compression of inner nodes (list-compress-depth) is not
 * done: it changes neither replies nor DUMP bytes (a compressed node is
 * saved as the same LZF blob rdbSaveRawString would produce), only memory.
 *
 * Single-threaded; out of memory aborts, as everywhere in the keyspace.
 */
#ifndef KV_SHARD_QUICKLIST_H
#define KV_SHARD_QUICKLIST_H

#include <stddef.h>
#include <stdint.h>

#include "shard/listpack.h"

/* ---- configuration (Redis's config parameters; CONFIG SET wires here) --- */

/* list-max-listpack-size (alias list-max-ziplist-size): negative -1..-5
 * is a node size limit of 4/8/16/32/64 KB, positive an element count
 * (with an 8 KB safety limit). Default -2. Like Redis, a list keeps the
 * value it was created with. */
extern int kv_list_max_listpack_size;
/* list-compress-depth: accepted and reported, no effect (see above). */
extern int kv_list_compress_depth;
/* Elements of at least this many bytes get a PLAIN node of their own
 * (Redis's quicklist packed_threshold, 1 GB). */
extern size_t kv_list_packed_threshold;

void kv_list_set_max_listpack_size(long long v);
void kv_list_set_compress_depth(long long v);
/* 0 restores the default; returns 0 when v is too large (Redis: 4 GB -
 * 1 MB), as quicklistisSetPackedThreshold. */
int kv_list_set_packed_threshold(unsigned long long v);

/* ---- structure --------------------------------------------------------- */

typedef struct kv_qlnode {
    struct kv_qlnode *prev, *next;
    uint32_t count : 30; /* elements (1 for PLAIN) */
    uint32_t plain : 1;
    uint32_t sep : 1;    /* bytes in their own allocation (see below) */
    uint32_t sz;         /* bytes: the listpack, or the raw element */
    unsigned char data[]; /* the bytes, or (sep) a pointer to them */
} kv_qlnode;

/* The node's bytes. Small nodes keep them inline (one allocation); past
 * ~4 KB they move to their own allocation, because a 24-byte header on
 * top of an 8 KB listpack would tip it into jemalloc's next size class
 * (10 KB) and waste a fifth of every full node. */
static inline unsigned char *kv_qlnode_lp(const kv_qlnode *n)
{
    return n->sep ? *(unsigned char *const *)(const void *)n->data : (unsigned char *)n->data;
}

typedef struct kv_qlist {
    kv_qlnode *head, *tail;
    uint64_t count;          /* elements */
    uint64_t bytes : 48;     /* allocated bytes of the nodes (accounting) */
    uint64_t fill_bits : 16; /* int16 fill, fixed at creation as in Redis */
} kv_qlist;

enum { KV_QL_HEAD = 0, KV_QL_TAIL = 1 };

/* A position: an element of a node (p points into its bytes; for a
 * PLAIN node p is the start of them). Valid until the list changes, except where a
 * function says it updates it. */
typedef struct kv_ql_pos {
    kv_qlnode *node;
    unsigned char *p;
    uint32_t off; /* index of the element in its node */
} kv_ql_pos;

kv_qlist *kv_ql_new(void);
void kv_ql_free(kv_qlist *ql);
kv_qlist *kv_ql_dup(const kv_qlist *ql);
/* Bytes held (header + node allocations), O(1). */
static inline size_t kv_ql_mem(const kv_qlist *ql) { return sizeof(*ql) + ql->bytes; }
static inline uint64_t kv_ql_count(const kv_qlist *ql) { return ql->count; }
static inline int kv_ql_fill(const kv_qlist *ql) { return (int16_t)(uint16_t)ql->fill_bits; }

/* LPUSH / RPUSH of one element. */
void kv_ql_push(kv_qlist *ql, int where, const char *s, size_t n);

/* Position of element idx (negative: from the tail); 0 if out of range.
 * Walks from whichever end is nearer. */
int kv_ql_index(const kv_qlist *ql, long long idx, kv_ql_pos *pos);
/* Step to the next / previous element; 0 past the end. */
int kv_ql_next(kv_ql_pos *pos);
int kv_ql_prev(kv_ql_pos *pos);
/* The element at pos (points into the list). */
void kv_ql_get(const kv_ql_pos *pos, kv_lp_val *v);
/* Does the element at pos equal s[0..n)? (Integers by canonical form.) */
int kv_ql_eq(const kv_ql_pos *pos, const char *s, size_t n);

/* Delete the element at pos (Redis's quicklistDelEntry); pos then holds
 * the element that followed it in direction `forward` (1: towards the
 * tail). Returns 0 when there is none. */
int kv_ql_delete(kv_qlist *ql, kv_ql_pos *pos, int forward);
/* Delete `count` elements from index start (0-based, >= 0, clipped at
 * the end), as quicklistDelRange. */
void kv_ql_del_range(kv_qlist *ql, uint64_t start, uint64_t count);
/* Replace the element at pos (LSET; quicklistReplaceEntry). pos dies. */
void kv_ql_replace(kv_qlist *ql, kv_ql_pos *pos, const char *s, size_t n);
/* Insert before (after = 0) or after the element at pos (LINSERT;
 * _quicklistInsert, splits and merges included). pos dies. */
void kv_ql_insert(kv_qlist *ql, kv_ql_pos *pos, int after, const char *s, size_t n);

/* Loading: append a validated listpack (n bytes, >= 1 element) or a raw
 * element as a new tail node, as quicklistAppendListpack/PlainNode. */
void kv_ql_append_lp(kv_qlist *ql, const unsigned char *lp, size_t n);
void kv_ql_append_plain(kv_qlist *ql, const char *s, size_t n);

/* ---- internal, shared by quicklist.c and quicklist_node.c ------------- */

typedef struct kv_ql_enc {
    unsigned char hdr[9];
    size_t hlen;   /* bytes in hdr */
    const char *s; /* string data after hdr, or NULL */
    size_t slen;
} kv_ql_enc;

void kv_ql_encode(kv_ql_enc *e, const char *s, size_t n);
size_t kv_ql_enc_total(const kv_ql_enc *e);
/* Write the entry (encoding, data, backlen): kv_ql_enc_total bytes. */
void kv_ql_enc_write(unsigned char *dst, const kv_ql_enc *e);
/* Replace `oldlen` bytes at lp offset `off` of n with e (NULL: nothing),
 * element count changing by dcount; may move n. `linked`: n is in ql's
 * chain (its neighbours and ql->head/tail are repointed). */
kv_qlnode *kv_ql_node_splice(kv_qlist *ql, kv_qlnode *n, size_t off, size_t oldlen,
                             const kv_ql_enc *e, int dcount, int linked);
kv_qlnode *kv_ql_node_new(kv_qlist *ql, const char *s, size_t n, int plain);
/* A node with room for sz bytes (not linked, count 0), accounted in ql. */
kv_qlnode *kv_ql_node_alloc(kv_qlist *ql, size_t sz);
/* Free a node that is not linked (its bytes too). */
void kv_ql_node_free(kv_qlist *ql, kv_qlnode *n);
void kv_ql_link(kv_qlist *ql, kv_qlnode *old, kv_qlnode *n, int after);
void kv_ql_unlink_free(kv_qlist *ql, kv_qlnode *n);
int kv_ql_allow_insert(const kv_qlnode *n, int fill, size_t sz);
/* Bytes of the entry at p and of entries [p, p+k). */
size_t kv_ql_entry_bytes(const unsigned char *p);

#endif
