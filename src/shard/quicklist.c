/* The list value: lifecycle, push, positions, deletes (see quicklist.h;
 * node edits, mid-list inserts and replaces are in quicklist_node.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/quicklist.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("kevy: out of memory in list\n", stderr);
        abort();
    }
    return p;
}

kv_qlist *kv_ql_new(void)
{
    kv_qlist *ql = xmalloc(sizeof(*ql));
    ql->head = ql->tail = NULL;
    ql->count = 0;
    ql->bytes = 0;
    ql->fill_bits = (uint16_t)(int16_t)kv_list_max_listpack_size;
    return ql;
}

void kv_ql_free(kv_qlist *ql)
{
    if (!ql) return;
    for (kv_qlnode *n = ql->head, *next; n; n = next) {
        next = n->next;
        kv_ql_node_free(NULL, n);
    }
    free(ql);
}

kv_qlist *kv_ql_dup(const kv_qlist *src)
{
    kv_qlist *ql = xmalloc(sizeof(*ql));
    *ql = *src;
    ql->head = ql->tail = NULL;
    ql->bytes = 0;
    for (const kv_qlnode *n = src->head; n; n = n->next) {
        kv_qlnode *m = kv_ql_node_alloc(ql, n->sz);
        memcpy(kv_qlnode_lp(m), kv_qlnode_lp(n), n->sz);
        m->count = n->count, m->plain = n->plain;
        m->prev = ql->tail, m->next = NULL;
        if (ql->tail) ql->tail->next = m;
        else ql->head = m;
        ql->tail = m;
    }
    return ql;
}

/* quicklistPushHead / quicklistPushTail */
void kv_ql_push(kv_qlist *ql, int where, const char *s, size_t n)
{
    int fill = kv_ql_fill(ql), tail = where == KV_QL_TAIL;
    kv_qlnode *end = tail ? ql->tail : ql->head;
    if (n >= kv_list_packed_threshold) {
        kv_ql_link(ql, end, kv_ql_node_new(ql, s, n, 1), tail);
    } else if (kv_ql_allow_insert(end, fill, n)) {
        kv_ql_enc e;
        kv_ql_encode(&e, s, n);
        kv_ql_node_splice(ql, end, tail ? end->sz - 1 : KV_LP_HDR_SIZE, 0, &e, 1, 1);
    } else {
        kv_ql_link(ql, end, kv_ql_node_new(ql, s, n, 0), tail);
    }
    ql->count++;
}

/* ---- positions ------------------------------------------------------------ */

static void pos_first(kv_ql_pos *pos, kv_qlnode *n)
{
    pos->node = n, pos->off = 0;
    pos->p = kv_qlnode_lp(n) + (n->plain ? 0 : KV_LP_HDR_SIZE);
}

static void pos_last(kv_ql_pos *pos, kv_qlnode *n)
{
    pos->node = n, pos->off = n->count - 1;
    pos->p = n->plain ? kv_qlnode_lp(n) : kv_lp_last(kv_qlnode_lp(n));
}

int kv_ql_index(const kv_qlist *ql, long long idx, kv_ql_pos *pos)
{
    uint64_t cnt = ql->count, i;
    if (idx < 0) {
        uint64_t back = (uint64_t)(-(idx + 1)); /* no overflow at LLONG_MIN */
        if (back >= cnt) return 0;
        i = cnt - 1 - back;
    } else {
        if ((uint64_t)idx >= cnt) return 0;
        i = (uint64_t)idx;
    }
    kv_qlnode *n;
    if (i < cnt / 2) {
        for (n = ql->head; i >= n->count; n = n->next) i -= n->count;
    } else {
        uint64_t j = cnt - 1 - i;
        for (n = ql->tail; j >= n->count; n = n->prev) j -= n->count;
        i = n->count - 1 - j;
    }
    pos->node = n, pos->off = (uint32_t)i;
    pos->p = n->plain ? kv_qlnode_lp(n) : kv_lp_seek(kv_qlnode_lp(n), (long)i);
    return 1;
}

int kv_ql_next(kv_ql_pos *pos)
{
    kv_qlnode *n = pos->node;
    if (!n->plain) {
        unsigned char *q = kv_lp_next(kv_qlnode_lp(n), pos->p);
        if (q) {
            pos->p = q, pos->off++;
            return 1;
        }
    }
    if (!n->next) return 0;
    pos_first(pos, n->next);
    return 1;
}

int kv_ql_prev(kv_ql_pos *pos)
{
    kv_qlnode *n = pos->node;
    if (!n->plain) {
        unsigned char *q = kv_lp_prev(kv_qlnode_lp(n), pos->p);
        if (q) {
            pos->p = q, pos->off--;
            return 1;
        }
    }
    if (!n->prev) return 0;
    pos_last(pos, n->prev);
    return 1;
}

void kv_ql_get(const kv_ql_pos *pos, kv_lp_val *v)
{
    if (pos->node->plain) {
        v->s = kv_qlnode_lp(pos->node), v->len = pos->node->sz, v->ll = 0;
        return;
    }
    kv_lp_get(pos->p, v);
}

int kv_ql_eq(const kv_ql_pos *pos, const char *s, size_t n)
{
    if (pos->node->plain) return pos->node->sz == n && memcmp(kv_qlnode_lp(pos->node), s, n) == 0;
    return kv_lp_eq(pos->p, s, n);
}

/* ---- deleting ------------------------------------------------------------- */

int kv_ql_delete(kv_qlist *ql, kv_ql_pos *pos, int forward)
{
    kv_qlnode *n = pos->node;
    if (n->plain || n->count == 1) {
        kv_qlnode *nb = forward ? n->next : n->prev;
        kv_ql_unlink_free(ql, n);
        if (!nb) return 0;
        if (forward) pos_first(pos, nb);
        else pos_last(pos, nb);
        return 1;
    }
    size_t off = (size_t)(pos->p - kv_qlnode_lp(n));
    n = kv_ql_node_splice(ql, n, off, kv_ql_entry_bytes(pos->p), NULL, -1, 1);
    ql->count--;
    pos->node = n;
    unsigned char *lp = kv_qlnode_lp(n);
    if (forward) {
        if (pos->off < n->count) {
            pos->p = lp + off;
            return 1;
        }
        if (!n->next) return 0;
        pos_first(pos, n->next);
        return 1;
    }
    if (pos->off > 0) {
        pos->off--;
        pos->p = kv_lp_prev(lp, lp + off);
        return 1;
    }
    if (!n->prev) return 0;
    pos_last(pos, n->prev);
    return 1;
}

void kv_ql_del_range(kv_qlist *ql, uint64_t start, uint64_t count)
{
    if (count == 0 || start >= ql->count) return;
    if (count > ql->count - start) count = ql->count - start;
    kv_ql_pos pos;
    kv_ql_index(ql, (long long)start, &pos);
    kv_qlnode *n = pos.node;
    uint32_t off = pos.off;
    size_t boff = (size_t)(pos.p - kv_qlnode_lp(n));
    while (count) {
        kv_qlnode *next = n->next;
        uint64_t avail = n->count - off, del = count < avail ? count : avail;
        if (off == 0 && del == n->count) {
            kv_ql_unlink_free(ql, n);
        } else {
            size_t len = 0;
            const unsigned char *lp = kv_qlnode_lp(n);
            for (uint64_t k = 0; k < del; k++) len += kv_ql_entry_bytes(lp + boff + len);
            kv_ql_node_splice(ql, n, boff, len, NULL, -(int)del, 1);
            ql->count -= del;
        }
        count -= del;
        n = next, off = 0, boff = KV_LP_HDR_SIZE;
    }
}

/* ---- loading ---------------------------------------------------------------- */

static void append_node(kv_qlist *ql, kv_qlnode *m)
{
    ql->count += m->count;
    kv_ql_link(ql, ql->tail, m, 1);
}

void kv_ql_append_lp(kv_qlist *ql, const unsigned char *lp, size_t n)
{
    kv_qlnode *m = kv_ql_node_alloc(ql, n);
    unsigned char *d = kv_qlnode_lp(m);
    memcpy(d, lp, n);
    m->count = (uint32_t)kv_lp_count(lp);
    /* as lpLength() does, an "unknown" count that fits is written back */
    if (m->count < KV_LP_COUNT_UNKNOWN) d[4] = (unsigned char)m->count, d[5] = (unsigned char)(m->count >> 8);
    append_node(ql, m);
}

void kv_ql_append_plain(kv_qlist *ql, const char *s, size_t n)
{
    kv_qlnode *m = kv_ql_node_alloc(ql, n);
    memcpy(kv_qlnode_lp(m), s, n);
    m->count = 1;
    m->plain = 1;
    append_node(ql, m);
}
