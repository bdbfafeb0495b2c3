/* The RDB object codec applied to keyspace values (see rdbobj.h): save a
 * key's value, store a decoded one, and move keys between shards. */
#include <string.h>

#include "persist/rdbobj.h"

int kv_rdbobj_save(kv_rdb_buf *b, const kv_obj *o)
{
    if (o->type == KV_TYPE_STRING) {
        char ibuf[KV_DB_INTBUF];
        size_t len;
        const char *s = kv_db_str(o, ibuf, &len);
        unsigned char t = KV_RDB_TYPE_STRING;
        kv_rdb_buf_append(b, &t, 1);
        kv_rdb_save_string(b, s, len);
    } else {
        const kv_rdbobj_ops *ops = kv_rdbobj_type_ops(o->type);
        if (!ops || !ops->save) return KV_RDB_ENOTSUP;
        int rc = ops->save(b, o);
        if (rc) return rc;
    }
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

kv_dict_entry *kv_rdbobj_store(kv_db_t *db, const char *key, size_t klen, kv_rdbobj_value *v)
{
    kv_dict_entry *e;
    if (v->type == KV_TYPE_STRING) {
        /* Redis's rdbLoadObject ends with tryObjectEncoding(): the RDB
         * integer encodings load as "int", text as int/embstr/raw by
         * content, exactly what kv_db_set_* do by default. */
        if (v->str.is_int) e = kv_db_set_ll(db, key, klen, v->str.ll, 0);
        else e = kv_db_set_str(db, key, klen, v->str.p, v->str.len, 0);
        kv_rdb_str_free(&v->str);
        return e;
    }
    e = kv_db_add_ptr(db, key, klen, v->type, v->enc, v->ptr);
    v->ptr = NULL;
    return e;
}

int kv_rdbobj_dump(kv_rdb_buf *b, const kv_obj *o)
{
    size_t start = b->len;
    int rc = kv_rdbobj_save(b, o);
    if (rc) return rc;
    kv_rdb_payload_finish(b, start);
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

int kv_rdbobj_export(const kv_dict_entry *e, kv_rdb_buf *b, int64_t *ttl_ms)
{
    const kv_obj *o = kv_db_obj(e);
    if (ttl_ms) *ttl_ms = kv_db_expire_get(o);
    return kv_rdbobj_dump(b, o);
}

int kv_rdbobj_import(kv_db_t *db, const char *key, size_t klen, const void *payload, size_t n,
                     int64_t ttl_ms)
{
    kv_rdbobj_value v;
    if (kv_rdbobj_verify(payload, n)) return KV_RDB_EBADFMT;
    int rc = kv_rdbobj_load_payload(payload, n, &v);
    if (rc) return rc;
    kv_db_delete(db, key, klen);
    /* Expired in transit: the key is simply gone, as on its old shard. */
    if (ttl_ms >= 0 && ttl_ms <= kv_db_now_ms()) {
        kv_rdbobj_value_free(&v);
        return KV_RDB_OK;
    }
    kv_dict_entry *e = kv_rdbobj_store(db, key, klen, &v);
    if (!e) return KV_RDB_ENOMEM;
    if (ttl_ms >= 0) kv_db_expire_set(db, e, ttl_ms);
    return KV_RDB_OK;
}
