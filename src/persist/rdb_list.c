/*
 * Lists as RDB objects, as Redis 7.0 writes and reads them.
 *
 * Save: RDB_TYPE_LIST_QUICKLIST_2: node count, then per node its
 * container (1 PLAIN, 2 PACKED) and its bytes as an RDB string (LZF when
 * that saves 4+ bytes, like rdbSaveRawString). kevy's nodes are Redis's
 * nodes (shard/quicklist.h), so the payload is byte-identical.
 *
 * Load: also RDB_TYPE_LIST (plain strings, pushed at the tail),
 * RDB_TYPE_LIST_ZIPLIST (one ziplist, pushed at the tail element by
 * element) and RDB_TYPE_LIST_QUICKLIST (ziplist nodes, each becoming one
 * listpack node), exactly as rdbLoadObject does. Everything read is
 * validated entry by entry (Redis's deep sanitization) since RESTORE
 * payloads come from clients; an empty list is an error, as in Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/rdbobj.h"
#include "persist/ziplist.h"
#include "shard/quicklist.h"

#define CONTAINER_PLAIN 1
#define CONTAINER_PACKED 2

static int list_save(kv_rdb_buf *b, const kv_obj *o)
{
    const kv_qlist *ql = kv_db_ptr(o);
    unsigned char t = KV_RDB_TYPE_LIST_QUICKLIST_2;
    uint64_t nodes = 0;
    for (const kv_qlnode *n = ql->head; n; n = n->next) nodes++;
    kv_rdb_buf_append(b, &t, 1);
    kv_rdb_save_len(b, nodes);
    for (const kv_qlnode *n = ql->head; n; n = n->next) {
        kv_rdb_save_len(b, n->plain ? CONTAINER_PLAIN : CONTAINER_PACKED);
        kv_rdb_save_string(b, kv_qlnode_lp(n), n->sz);
    }
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

static void list_free(void *ptr, uint8_t enc)
{
    (void)enc;
    kv_ql_free(ptr);
}

/* Room for a formatted 64-bit integer. */
#define INTBUF 24

/* lpEncodeBacklen */
static size_t backlen(unsigned char *b, uint64_t l)
{
    size_t n = l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
    for (size_t i = 0; i < n; i++) {
        unsigned char v = (unsigned char)((l >> (7 * (n - 1 - i))) & 127);
        b[i] = i ? (unsigned char)(v | 128) : v;
    }
    return n;
}

/* One ziplist converted to a listpack node (7.0's ziplist -> listpack
 * conversion of quicklist nodes): entries re-encoded, order kept. */
static int zl_to_node(kv_qlist *ql, const unsigned char *zl, size_t size)
{
    size_t count;
    if (!kv_zl_validate(zl, size, &count)) return KV_RDB_EBADFMT;
    if (count == 0) return KV_RDB_OK; /* Redis skips empty nodes */
    kv_rdb_buf lp;
    kv_rdb_buf_init(&lp);
    unsigned char hdr[KV_LP_HDR_SIZE] = { 0 };
    kv_rdb_buf_append(&lp, hdr, sizeof(hdr));
    for (const unsigned char *p = kv_zl_first(zl); p; p = kv_zl_next(p)) {
        kv_zl_val v;
        char ibuf[INTBUF];
        kv_zl_get(p, &v);
        const char *s = (const char *)v.s;
        size_t n = v.len;
        if (!s) n = (size_t)snprintf(ibuf, sizeof(ibuf), "%lld", v.ll), s = ibuf;
        kv_ql_enc e;
        unsigned char bl[5];
        kv_ql_encode(&e, s, n);
        kv_rdb_buf_append(&lp, e.hdr, e.hlen);
        kv_rdb_buf_append(&lp, e.s, e.slen);
        kv_rdb_buf_append(&lp, bl, backlen(bl, e.hlen + e.slen));
    }
    unsigned char eof = KV_LP_EOF;
    kv_rdb_buf_append(&lp, &eof, 1);
    if (lp.oom || lp.len > UINT32_MAX) {
        kv_rdb_buf_free(&lp);
        return KV_RDB_ENOMEM;
    }
    size_t c = count >= KV_LP_COUNT_UNKNOWN ? KV_LP_COUNT_UNKNOWN : count;
    for (int i = 0; i < 4; i++) lp.p[i] = (unsigned char)(lp.len >> (8 * i));
    lp.p[4] = (unsigned char)c, lp.p[5] = (unsigned char)(c >> 8);
    kv_ql_append_lp(ql, lp.p, lp.len);
    kv_rdb_buf_free(&lp);
    return KV_RDB_OK;
}

static int load_node_2(kv_rdb_reader *r, kv_qlist *ql)
{
    uint64_t container;
    kv_rdb_str s;
    if (kv_rdb_load_len(r, &container, NULL)) return KV_RDB_EBADFMT;
    if (container != CONTAINER_PLAIN && container != CONTAINER_PACKED) return KV_RDB_EBADFMT;
    int rc = kv_rdb_load_string(r, &s);
    if (rc) return rc;
    if (s.len == 0 || s.len > UINT32_MAX) rc = KV_RDB_EBADFMT;
    else if (container == CONTAINER_PLAIN) kv_ql_append_plain(ql, s.p, s.len);
    else {
        size_t count;
        const unsigned char *lp = (const unsigned char *)s.p;
        /* a node counts its elements in 30 bits */
        if (!kv_lp_validate(lp, s.len, &count) || count >= (1u << 30)) rc = KV_RDB_EBADFMT;
        else if (count) kv_ql_append_lp(ql, lp, s.len);
    }
    kv_rdb_str_free(&s);
    return rc;
}

static int list_load(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    uint64_t len = 1;
    int rc = KV_RDB_OK;
    if (rdbtype != KV_RDB_TYPE_LIST_ZIPLIST && kv_rdb_load_len(r, &len, NULL)) return KV_RDB_EBADFMT;
    /* every element or node takes at least one byte: a larger claim is
     * corrupt, and is refused before any work */
    if (len == 0 || len > r->len - r->pos) return KV_RDB_EBADFMT;
    kv_qlist *ql = kv_ql_new();
    for (uint64_t i = 0; i < len && rc == KV_RDB_OK; i++) {
        kv_rdb_str s;
        switch (rdbtype) {
        case KV_RDB_TYPE_LIST_QUICKLIST_2: rc = load_node_2(r, ql); break;
        case KV_RDB_TYPE_LIST:
            if ((rc = kv_rdb_load_string(r, &s))) break;
            kv_ql_push(ql, KV_QL_TAIL, s.p, s.len);
            kv_rdb_str_free(&s);
            break;
        case KV_RDB_TYPE_LIST_ZIPLIST:
            if ((rc = kv_rdb_load_string(r, &s))) break;
            if (!kv_zl_validate((const unsigned char *)s.p, s.len, NULL)) {
                rc = KV_RDB_EBADFMT;
            } else {
                for (const unsigned char *p = kv_zl_first((const unsigned char *)s.p); p;
                     p = kv_zl_next(p)) {
                    kv_zl_val v;
                    char ibuf[INTBUF];
                    kv_zl_get(p, &v);
                    if (v.s) kv_ql_push(ql, KV_QL_TAIL, (const char *)v.s, v.len);
                    else kv_ql_push(ql, KV_QL_TAIL, ibuf, (size_t)snprintf(ibuf, sizeof(ibuf), "%lld", v.ll));
                }
            }
            kv_rdb_str_free(&s);
            break;
        case KV_RDB_TYPE_LIST_QUICKLIST:
            if ((rc = kv_rdb_load_string(r, &s))) break;
            if (s.len == 0) rc = KV_RDB_EBADFMT;
            else rc = zl_to_node(ql, (const unsigned char *)s.p, s.len);
            kv_rdb_str_free(&s);
            break;
        default: rc = KV_RDB_EBADFMT;
        }
    }
    if (rc == KV_RDB_OK && kv_ql_count(ql) == 0) rc = KV_RDB_EBADFMT;
    if (rc) {
        kv_ql_free(ql);
        return rc;
    }
    *enc = KV_ENC_QUICKLIST;
    *ptr = ql;
    return KV_RDB_OK;
}

static const kv_rdbobj_ops list_rdb_ops = { list_save, list_load, list_free };

void kv_list_rdb_register(void)
{
    static const uint8_t types[] = { KV_RDB_TYPE_LIST, KV_RDB_TYPE_LIST_ZIPLIST,
                                     KV_RDB_TYPE_LIST_QUICKLIST, KV_RDB_TYPE_LIST_QUICKLIST_2 };
    kv_rdbobj_register(KV_TYPE_LIST, types, sizeof(types), &list_rdb_ops);
}
