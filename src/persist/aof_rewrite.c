/*
 * The keyspace as AOF commands (BGREWRITEAOF's child, and the first
 * content of a new AOF when the snapshot loaded keys): SELECT 0, then per
 * key SET k v [PXAT ms] for strings and RESTORE k <abs ms|0> <DUMP
 * payload> [ABSTTL] REPLACE for every other type, so any type DUMP can
 * encode is covered, and the file stays plain RESP for redis-check-aof.
 * Keys already expired are left out.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "persist/aof.h"
#include "persist/rdb_file.h"
#include "persist/rdbobj.h"

#define FLUSH_AT (256u * 1024)

static kv_resp_arg A(const char *s) { return (kv_resp_arg){ s, strlen(s) }; }

int kv_aof_write_keyspace(kv_db_t *db, int fd)
{
    kv_aof_buf b = { 0 };
    kv_resp_arg sel[2] = { A("SELECT"), A("0") };
    kv_aof_buf_cmd(&b, 2, sel);
    int64_t now = kv_db_now_ms();
    int rc = 0;
    kv_dict_iter it;
    kv_dict_entry *e;
    kv_rdb_buf payload;
    kv_rdb_buf_init(&payload);
    kv_dict_iter_init(&it, db->dict);
    while ((e = kv_dict_iter_next(&it))) {
        kv_obj *o = kv_db_obj(e);
        int64_t when = kv_db_expire_get(o);
        if (when >= 0 && when <= now) continue;
        kv_resp_arg key = { kv_dict_entry_key(e), kv_dict_entry_klen(e) };
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long) (when >= 0 ? when : 0));
        if (o->type == KV_TYPE_STRING) {
            char ib[KV_DB_INTBUF];
            size_t vl;
            const char *vp = kv_db_str(o, ib, &vl);
            kv_resp_arg v[5] = { A("SET"), key, { vp, vl }, A("PXAT"), A(num) };
            kv_aof_buf_cmd(&b, when >= 0 ? 5 : 3, v);
        } else {
            payload.len = 0;
            int r = kv_rdbobj_dump(&payload, o);
            if (r != KV_RDB_OK || payload.oom) {
                errno = r == KV_RDB_ENOMEM ? ENOMEM : ENOTSUP;
                rc = -1;
                break;
            }
            kv_resp_arg v[6] = { A("RESTORE"), key, A(num), { (const char *) payload.p, payload.len }, A("REPLACE"),
                                 A("ABSTTL") };
            kv_aof_buf_cmd(&b, when >= 0 ? 6 : 5, v);
        }
        if (b.len >= FLUSH_AT) {
            if (kv_write_all(fd, b.p, b.len) != 0) {
                rc = -1;
                break;
            }
            b.len = 0;
        }
    }
    kv_dict_iter_done(&it);
    kv_rdb_buf_free(&payload);
    if (rc == 0 && b.len && kv_write_all(fd, b.p, b.len) != 0) rc = -1;
    int saved = errno;
    kv_aof_buf_free(&b);
    errno = saved;
    return rc;
}
