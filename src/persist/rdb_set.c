/* RDB codec of sets, as Redis 7.0 writes and loads them:
 *
 *   intset    RDB_TYPE_SET_INTSET (11): the intset blob as a string (our
 *             in-memory intset is Redis's format, so DUMP bytes match)
 *   hashtable RDB_TYPE_SET (2): count, then the member strings
 *
 * Loading picks Redis's encoding (intset while every member is an integer
 * and there are at most set-max-intset-entries) and refuses, as "Bad data
 * format", empty sets, malformed intsets and duplicate members. */
#include <stdlib.h>
#include <string.h>

#include "persist/rdbobj.h"
#include "shard/set_type.h"

static int save(kv_rdb_buf *b, const kv_obj *o)
{
    unsigned char t;
    if (o->enc == KV_ENC_INTSET) {
        const kv_intset *is = kv_db_ptr(o);
        t = KV_RDB_TYPE_SET_INTSET;
        kv_rdb_buf_append(b, &t, 1);
        kv_rdb_save_string(b, is, kv_intset_bytes(is));
        return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
    }
    t = KV_RDB_TYPE_SET;
    kv_rdb_buf_append(b, &t, 1);
    kv_rdb_save_len(b, kv_set_size(o));
    kv_set_iter it;
    kv_lp_val v;
    kv_set_iter_init(&it, o);
    while (kv_set_iter_next(&it, &v)) kv_rdb_save_string(b, v.s, v.len);
    kv_set_iter_done(&it);
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

static int load_intset(kv_rdb_reader *r, uint8_t *enc, void **ptr)
{
    kv_rdb_str s;
    int rc = kv_rdb_load_string(r, &s);
    if (rc) return rc;
    if (!kv_intset_validate(s.p, s.len)) {
        kv_rdb_str_free(&s);
        return KV_RDB_EBADFMT;
    }
    kv_set_box box = { { KV_TYPE_SET, KV_ENC_INTSET, KV_STORE_PTR, 0, 0 }, malloc(s.len) };
    if (!box.ptr) {
        kv_rdb_str_free(&s);
        return KV_RDB_ENOMEM;
    }
    memcpy(box.ptr, s.p, s.len);
    kv_rdb_str_free(&s);
    if (kv_set_size(&box.o) > kv_set_max_intset_entries && kv_set_convert(&box.o, 0) < 0) {
        free(box.ptr);
        return KV_RDB_ENOMEM;
    }
    *enc = box.o.enc;
    *ptr = box.ptr;
    return KV_RDB_OK;
}

static int load_ht(kv_rdb_reader *r, uint8_t *enc, void **ptr)
{
    uint64_t len;
    int encoded, rc;
    if ((rc = kv_rdb_load_len(r, &len, &encoded))) return rc;
    if (encoded || len == 0) return KV_RDB_EBADFMT;
    if (len > r->len - r->pos) return KV_RDB_EBADFMT; /* >= 1 byte per member */
    kv_set_box box;
    if (kv_set_box_init(&box, len > kv_set_max_intset_entries) < 0) return KV_RDB_ENOMEM;
    for (uint64_t i = 0; i < len; i++) {
        kv_rdb_str s;
        if ((rc = kv_rdb_load_string(r, &s))) break;
        int a = kv_set_add(&box.o, s.p, s.len);
        kv_rdb_str_free(&s);
        if (a <= 0) {
            rc = a < 0 ? KV_RDB_ENOMEM : KV_RDB_EBADFMT; /* 0: a duplicate */
            break;
        }
    }
    if (rc) {
        kv_set_free(box.ptr, box.o.enc);
        return rc;
    }
    *enc = box.o.enc;
    *ptr = box.ptr;
    return KV_RDB_OK;
}

static int load(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    if (rdbtype == KV_RDB_TYPE_SET_INTSET) return load_intset(r, enc, ptr);
    if (rdbtype == KV_RDB_TYPE_SET) return load_ht(r, enc, ptr);
    return KV_RDB_ENOTSUP;
}

static const kv_rdbobj_ops ops = { save, load, kv_set_free };

/* Runs at startup (constructor); callable again (idempotent) by tests,
 * which also makes a static link pull this file in. */
void kv_rdb_set_register(void);
__attribute__((constructor)) void kv_rdb_set_register(void)
{
    static const uint8_t types[] = { KV_RDB_TYPE_SET, KV_RDB_TYPE_SET_INTSET };
    kv_rdbobj_register(KV_TYPE_SET, types, sizeof types, &ops);
}
