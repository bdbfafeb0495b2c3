/*
 * Quicklist nodes (see quicklist.h): the listpack edits done in place in a
 * node's own allocation, and Redis 7.0's rules for inserting in the
 * middle of a list (_quicklistInsert, its splits and merges) and for
 * replacing an element (quicklistReplaceEntry).
 *
 * The element encoder repeats shard/listpack.c's on purpose: that module
 * keeps a listpack in a blob of its own, and here the listpack lives
 * behind the node header so a node costs one allocation, not two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/db.h"
#include "shard/quicklist.h"

int kv_list_max_listpack_size = -2;
int kv_list_compress_depth = 0;
size_t kv_list_packed_threshold = (size_t)1 << 30;

void kv_list_set_max_listpack_size(long long v)
{
    /* quicklistSetFill: clamped to -5 .. 2^15-1 */
    kv_list_max_listpack_size = v < -5 ? -5 : v > 32767 ? 32767 : (int)v;
}

void kv_list_set_compress_depth(long long v)
{
    kv_list_compress_depth = v < 0 ? 0 : v > 65535 ? 65535 : (int)v;
}

int kv_list_set_packed_threshold(unsigned long long v)
{
    if (v > (1ULL << 32) - (1ULL << 20)) return 0;
    kv_list_packed_threshold = v ? (size_t)v : (size_t)1 << 30;
    return 1;
}

/* ---- limits (Redis 7.0's quicklist.c) ----------------------------------- */

static const size_t optimization_level[] = { 4096, 8192, 16384, 32768, 65536 };
#define SIZE_SAFETY_LIMIT 8192
#define SIZE_ESTIMATE_OVERHEAD 8

static int size_meets_optimization(size_t sz, int fill)
{
    if (fill >= 0) return 0;
    size_t offset = (size_t)(-fill) - 1;
    return offset < 5 && sz <= optimization_level[offset];
}

int kv_ql_allow_insert(const kv_qlnode *n, int fill, size_t sz)
{
    if (!n || n->plain || sz >= kv_list_packed_threshold) return 0;
    size_t new_sz = n->sz + sz + SIZE_ESTIMATE_OVERHEAD;
    if (size_meets_optimization(new_sz, fill)) return 1;
    if (new_sz > SIZE_SAFETY_LIMIT) return 0;
    return (int)n->count < fill;
}

static int allow_merge(const kv_qlnode *a, const kv_qlnode *b, int fill)
{
    if (!a || !b || a->plain || b->plain) return 0;
    /* 7.0 still subtracts a ziplist's 11 header/end bytes here */
    unsigned merge_sz = a->sz + b->sz - 11;
    if (size_meets_optimization(merge_sz, fill)) return 1;
    if (merge_sz > SIZE_SAFETY_LIMIT) return 0;
    return (int)(a->count + b->count) <= fill;
}

/* ---- element encoding (lpEncodeGetType, lpEncodeBacklen) ---------------- */

static inline size_t backlen_size(uint64_t l)
{
    return l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
}

static void encode_int(kv_ql_enc *e, long long v)
{
    unsigned long long u = (unsigned long long)v;
    e->s = NULL, e->slen = 0;
    if (v >= 0 && v <= 127) {
        e->hdr[0] = (unsigned char)v, e->hlen = 1;
    } else if (v >= -4096 && v <= 4095) {
        if (v < 0) u = (1ULL << 13) + (unsigned long long)v;
        e->hdr[0] = (unsigned char)((u >> 8) | 0xC0), e->hdr[1] = (unsigned char)u;
        e->hlen = 2;
    } else {
        int nb;
        if (v >= -32768 && v <= 32767) nb = 2, e->hdr[0] = 0xF1;
        else if (v >= -8388608 && v <= 8388607) nb = 3, e->hdr[0] = 0xF2;
        else if (v >= -2147483648LL && v <= 2147483647LL) nb = 4, e->hdr[0] = 0xF3;
        else nb = 8, e->hdr[0] = 0xF4;
        for (int i = 0; i < nb; i++) e->hdr[1 + i] = (unsigned char)(u >> (8 * i));
        e->hlen = 1 + (size_t)nb;
    }
}

void kv_ql_encode(kv_ql_enc *e, const char *s, size_t n)
{
    long long v;
    if (n <= 20 && kv_str2ll(s, n, &v)) {
        encode_int(e, v);
        return;
    }
    e->s = s, e->slen = n;
    if (n < 64) {
        e->hdr[0] = (unsigned char)(0x80 | n), e->hlen = 1;
    } else if (n < 4096) {
        e->hdr[0] = (unsigned char)(0xE0 | (n >> 8)), e->hdr[1] = (unsigned char)n, e->hlen = 2;
    } else {
        e->hdr[0] = 0xF0;
        for (int i = 0; i < 4; i++) e->hdr[1 + i] = (unsigned char)(n >> (8 * i));
        e->hlen = 5;
    }
}

size_t kv_ql_enc_total(const kv_ql_enc *e)
{
    size_t l = e->hlen + e->slen;
    return l + backlen_size(l);
}

void kv_ql_enc_write(unsigned char *dst, const kv_ql_enc *e)
{
    size_t l = e->hlen + e->slen, n = backlen_size(l);
    memcpy(dst, e->hdr, e->hlen);
    if (e->slen) memcpy(dst + e->hlen, e->s, e->slen);
    dst += l;
    for (size_t i = 0; i < n; i++) {
        unsigned char v = (unsigned char)((l >> (7 * (n - 1 - i))) & 127);
        dst[i] = i ? (unsigned char)(v | 128) : v;
    }
}

size_t kv_ql_entry_bytes(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t l;
    if (c < 0x80) l = 1;
    else if (c < 0xC0) l = 1 + (c & 0x3F);
    else if (c < 0xE0) l = 2;
    else if (c < 0xF0) l = 2 + ((size_t)(c & 0x0F) << 8 | p[1]);
    else if (c == 0xF0)
        l = 5 + ((size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24);
    else l = c == 0xF1 ? 3 : c == 0xF2 ? 4 : c == 0xF3 ? 5 : 9;
    return l + backlen_size(l);
}

/* ---- node memory --------------------------------------------------------- */

#define EMBED_MAX 4072  /* bytes above which a node's bytes move out */
#define EMBED_BACK 2048 /* and below which they come back (hysteresis) */

static void *xrealloc(void *p, size_t n)
{
    void *r = realloc(p, n);
    if (!r) {
        fputs("kevy: out of memory in list\n", stderr);
        abort();
    }
    return r;
}

/* Bytes a node holds in the allocator (header, bytes, pointer). */
static inline size_t node_cost(const kv_qlnode *n)
{
    return sizeof(*n) + n->sz + (n->sep ? sizeof(void *) : 0);
}

static inline void set_sep_ptr(kv_qlnode *n, unsigned char *p) { memcpy(n->data, &p, sizeof(p)); }

kv_qlnode *kv_ql_node_alloc(kv_qlist *ql, size_t sz)
{
    kv_qlnode *n;
    if (sz > EMBED_MAX) {
        n = xrealloc(NULL, sizeof(*n) + sizeof(void *));
        set_sep_ptr(n, xrealloc(NULL, sz));
        n->sep = 1;
    } else {
        n = xrealloc(NULL, sizeof(*n) + sz);
        n->sep = 0;
    }
    n->prev = n->next = NULL;
    n->count = 0, n->plain = 0;
    n->sz = (uint32_t)sz;
    ql->bytes += node_cost(n);
    return n;
}

void kv_ql_node_free(kv_qlist *ql, kv_qlnode *n)
{
    if (ql) ql->bytes -= node_cost(n);
    if (n->sep) free(kv_qlnode_lp(n));
    free(n);
}

/* A node moved: repoint its neighbours and the list ends. */
static void relink(kv_qlist *ql, kv_qlnode *n)
{
    if (n->prev) n->prev->next = n;
    else ql->head = n;
    if (n->next) n->next->prev = n;
    else ql->tail = n;
}

/* Resize n's bytes to sz, keeping the first min(old, sz); may move n. */
static kv_qlnode *node_resize(kv_qlist *ql, kv_qlnode *n, size_t sz, int linked)
{
    size_t keep = n->sz < sz ? n->sz : sz, before = node_cost(n);
    kv_qlnode *m = n;
    if (n->sep && sz >= EMBED_BACK) {
        set_sep_ptr(n, xrealloc(kv_qlnode_lp(n), sz));
    } else if (!n->sep && sz <= EMBED_MAX) {
        m = xrealloc(n, sizeof(*n) + sz);
    } else if (!n->sep) {
        unsigned char *b = xrealloc(NULL, sz);
        memcpy(b, n->data, keep);
        m = xrealloc(n, sizeof(*n) + sizeof(void *));
        set_sep_ptr(m, b);
        m->sep = 1;
    } else {
        unsigned char *b = kv_qlnode_lp(n);
        m = xrealloc(n, sizeof(*n) + (sz > sizeof(void *) ? sz : sizeof(void *)));
        memcpy(m->data, b, keep);
        free(b);
        m->sep = 0;
    }
    m->sz = (uint32_t)sz;
    ql->bytes += node_cost(m) - before; /* modular: a shrink subtracts */
    if (linked && m != n) relink(ql, m);
    return m;
}

static void lp_set_header(kv_qlnode *n)
{
    unsigned char *lp = kv_qlnode_lp(n);
    uint32_t b = n->sz;
    unsigned c = n->count >= KV_LP_COUNT_UNKNOWN ? KV_LP_COUNT_UNKNOWN : n->count;
    lp[0] = (unsigned char)b, lp[1] = (unsigned char)(b >> 8);
    lp[2] = (unsigned char)(b >> 16), lp[3] = (unsigned char)(b >> 24);
    lp[4] = (unsigned char)c, lp[5] = (unsigned char)(c >> 8);
}

kv_qlnode *kv_ql_node_splice(kv_qlist *ql, kv_qlnode *n, size_t off, size_t oldlen,
                             const kv_ql_enc *e, int dcount, int linked)
{
    size_t total = n->sz, newlen = e ? kv_ql_enc_total(e) : 0;
    size_t ntotal = total - oldlen + newlen;
    if (newlen > oldlen) n = node_resize(ql, n, ntotal, linked);
    unsigned char *lp = kv_qlnode_lp(n);
    memmove(lp + off + newlen, lp + off + oldlen, total - off - oldlen);
    if (e) kv_ql_enc_write(lp + off, e);
    if (newlen < oldlen) n = node_resize(ql, n, ntotal, linked);
    n->count = (uint32_t)((int64_t)n->count + dcount);
    lp_set_header(n);
    return n;
}

kv_qlnode *kv_ql_node_new(kv_qlist *ql, const char *s, size_t len, int plain)
{
    kv_qlnode *n;
    if (plain) {
        n = kv_ql_node_alloc(ql, len);
        memcpy(kv_qlnode_lp(n), s, len);
        n->plain = 1;
    } else {
        kv_ql_enc e;
        kv_ql_encode(&e, s, len);
        size_t t = kv_ql_enc_total(&e);
        n = kv_ql_node_alloc(ql, KV_LP_HDR_SIZE + t + 1);
        unsigned char *lp = kv_qlnode_lp(n);
        kv_ql_enc_write(lp + KV_LP_HDR_SIZE, &e);
        lp[KV_LP_HDR_SIZE + t] = KV_LP_EOF;
    }
    n->count = 1;
    if (!plain) lp_set_header(n);
    return n;
}

/* __quicklistInsertNode */
void kv_ql_link(kv_qlist *ql, kv_qlnode *old, kv_qlnode *n, int after)
{
    if (!old) {
        n->prev = n->next = NULL;
        ql->head = ql->tail = n;
        return;
    }
    if (after) {
        n->prev = old, n->next = old->next;
        if (old->next) old->next->prev = n;
        old->next = n;
        if (ql->tail == old) ql->tail = n;
    } else {
        n->next = old, n->prev = old->prev;
        if (old->prev) old->prev->next = n;
        old->prev = n;
        if (ql->head == old) ql->head = n;
    }
}

void kv_ql_unlink_free(kv_qlist *ql, kv_qlnode *n)
{
    if (n->next) n->next->prev = n->prev;
    else ql->tail = n->prev;
    if (n->prev) n->prev->next = n->next;
    else ql->head = n->next;
    ql->count -= n->count;
    kv_ql_node_free(ql, n);
}

/* ---- split and merge ------------------------------------------------------ */

/* Byte offset (in lp) of element idx of a packed node; idx == count gives
 * the end marker. */
static size_t elem_off(const kv_qlnode *n, uint32_t idx)
{
    size_t off = KV_LP_HDR_SIZE;
    const unsigned char *lp = kv_qlnode_lp(n);
    for (uint32_t i = 0; i < idx; i++) off += kv_ql_entry_bytes(lp + off);
    return off;
}

/* _quicklistSplitNode: after = 1: *np keeps [0, offset], the returned
 * node gets [offset+1, end]; after = 0: *np keeps [offset, end], the
 * returned node gets [0, offset-1]. The new node is not linked. */
static kv_qlnode *split_node(kv_qlist *ql, kv_qlnode **np, uint32_t offset, int after)
{
    kv_qlnode *n = *np;
    uint32_t cut = after ? offset + 1 : offset;
    size_t coff = elem_off(n, cut), end = n->sz - 1;
    size_t from = after ? coff : KV_LP_HDR_SIZE, len = after ? end - coff : coff - KV_LP_HDR_SIZE;
    uint32_t k = after ? n->count - cut : cut;
    kv_qlnode *m = kv_ql_node_alloc(ql, KV_LP_HDR_SIZE + len + 1);
    unsigned char *mlp = kv_qlnode_lp(m);
    memcpy(mlp + KV_LP_HDR_SIZE, kv_qlnode_lp(n) + from, len);
    mlp[KV_LP_HDR_SIZE + len] = KV_LP_EOF;
    m->count = k;
    lp_set_header(m);
    *np = kv_ql_node_splice(ql, n, from, len, NULL, -(int)k, 1);
    return m;
}

/* _quicklistListpackMerge: b's elements appended to a (a left of b). */
static kv_qlnode *merge(kv_qlist *ql, kv_qlnode *a, kv_qlnode *b)
{
    size_t add = b->sz - KV_LP_HDR_SIZE - 1, asz = a->sz;
    uint32_t bc = b->count;
    a = node_resize(ql, a, asz + add, 1);
    unsigned char *lp = kv_qlnode_lp(a);
    memcpy(lp + asz - 1, kv_qlnode_lp(b) + KV_LP_HDR_SIZE, add);
    lp[asz - 1 + add] = KV_LP_EOF;
    a->count += bc;
    lp_set_header(a);
    b->count = 0;
    kv_ql_unlink_free(ql, b);
    return a;
}

/* _quicklistMergeNodes: try (prev_prev, prev), (next, next_next),
 * (prev, center), (center, next), in Redis's order. */
static void merge_around(kv_qlist *ql, kv_qlnode *center)
{
    int fill = kv_ql_fill(ql);
    kv_qlnode *prev = center->prev, *next = center->next;
    kv_qlnode *pp = prev ? prev->prev : NULL, *nn = next ? next->next : NULL;
    if (allow_merge(prev, pp, fill)) merge(ql, pp, prev);
    if (allow_merge(next, nn, fill)) merge(ql, next, nn);
    kv_qlnode *target = center;
    if (allow_merge(center, center->prev, fill)) target = merge(ql, center->prev, center);
    if (allow_merge(target, target->next, fill)) merge(ql, target, target->next);
}

/* ---- insert in the middle (_quicklistInsert) ----------------------------- */

/* Returns the (possibly moved) node that held the reference element when
 * it still exists unmerged; the large-element replace relies on it. */
static kv_qlnode *insert_at(kv_qlist *ql, kv_ql_pos *pos, int after, const char *s, size_t len)
{
    int fill = kv_ql_fill(ql);
    kv_qlnode *node = pos->node, *nn;
    int large = len >= kv_list_packed_threshold;
    int full = !kv_ql_allow_insert(node, fill, len);
    int at_tail = after && pos->off + 1 == (uint32_t)node->count;
    int at_head = !after && pos->off == 0;
    int avail_next = at_tail && kv_ql_allow_insert(node->next, fill, len);
    int avail_prev = at_head && kv_ql_allow_insert(node->prev, fill, len);
    kv_ql_enc e;
    ql->count++;
    if (large) {
        if (node->plain || at_tail || at_head) {
            kv_ql_link(ql, node, kv_ql_node_new(ql, s, len, 1), after);
        } else {
            nn = split_node(ql, &node, pos->off, after);
            kv_qlnode *pn = kv_ql_node_new(ql, s, len, 1);
            kv_ql_link(ql, node, pn, after);
            kv_ql_link(ql, pn, nn, after);
        }
        return node;
    }
    kv_ql_encode(&e, s, len);
    if (!full) {
        size_t off = (size_t)(pos->p - kv_qlnode_lp(node));
        if (after) off += kv_ql_entry_bytes(pos->p);
        node = kv_ql_node_splice(ql, node, off, 0, &e, 1, 1);
    } else if (at_tail && avail_next) {
        kv_ql_node_splice(ql, node->next, KV_LP_HDR_SIZE, 0, &e, 1, 1);
    } else if (at_head && avail_prev) {
        kv_ql_node_splice(ql, node->prev, node->prev->sz - 1, 0, &e, 1, 1);
    } else if (at_tail || at_head) {
        kv_ql_link(ql, node, kv_ql_node_new(ql, s, len, 0), after);
    } else {
        nn = split_node(ql, &node, pos->off, after);
        nn = kv_ql_node_splice(ql, nn, after ? KV_LP_HDR_SIZE : nn->sz - 1, 0, &e, 1, 0);
        kv_ql_link(ql, node, nn, after);
        merge_around(ql, node);
        return NULL;
    }
    return node;
}

void kv_ql_insert(kv_qlist *ql, kv_ql_pos *pos, int after, const char *s, size_t n)
{
    insert_at(ql, pos, after, s, n);
    pos->node = NULL;
}

/* quicklistReplaceEntry */
void kv_ql_replace(kv_qlist *ql, kv_ql_pos *pos, const char *s, size_t len)
{
    kv_qlnode *node = pos->node;
    int large = len >= kv_list_packed_threshold;
    if (!node->plain && !large) {
        kv_ql_enc e;
        kv_ql_encode(&e, s, len);
        size_t off = (size_t)(pos->p - kv_qlnode_lp(node));
        kv_ql_node_splice(ql, node, off, kv_ql_entry_bytes(pos->p), &e, 0, 1);
    } else if (node->plain && large) {
        node = node_resize(ql, node, len, 1);
        memcpy(kv_qlnode_lp(node), s, len);
    } else if (node->plain) {
        /* a small value replacing a plain node: insert, drop the node */
        insert_at(ql, pos, 1, s, len);
        kv_ql_unlink_free(ql, node);
    } else {
        /* a large value inside a packed node: after the insert the old
         * element is the last of its (possibly split) node */
        node = insert_at(ql, pos, 1, s, len);
        if (node->count == 1) {
            kv_ql_unlink_free(ql, node);
        } else {
            size_t off = elem_off(node, node->count - 1);
            kv_ql_node_splice(ql, node, off, node->sz - 1 - off, NULL, -1, 1);
            ql->count--;
        }
    }
    pos->node = NULL;
}
