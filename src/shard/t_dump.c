/*
 * DUMP and RESTORE, with Redis's payload (persist/rdbobj.h) so payloads
 * move both ways between kevy and redis-server.
 *
 * RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] checks
 * in Redis 7.0's order: options, then BUSYKEY, then the TTL, then the
 * payload's version and CRC, then its content; a payload kevy cannot
 * store (a type it does not have yet, or anything malformed) is "Bad data
 * format" and changes nothing.
 */
#include <string.h>

#include "core/time.h"
#include "persist/rdbobj.h"
#include "shard/cmd.h"
#include "shard/db.h"
#include "shard/t_util.h"
#include "shard/notify.h"

#ifndef KV_ERR_OOM
#define KV_ERR_OOM "-OOM command not allowed when used memory > 'maxmemory'."
#endif
#define KV_LRU_CLOCK_MAX ((1u << 24) - 1) /* db.c's 24-bit LRU clock, in s */

static void dump_cmd(kv_client_t *c)
{
    kv_dict_entry *e = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    if (!e) {
        kv_reply_null(&c->out);
        return;
    }
    kv_rdb_buf b;
    kv_rdb_buf_init(&b);
    int rc = kv_rdbobj_dump(&b, kv_db_obj(e));
    if (rc == KV_RDB_OK) kv_reply_bulk(&c->out, b.p, b.len);
    else if (rc == KV_RDB_ENOMEM) kv_reply_error_cstr(&c->out, KV_ERR_OOM);
    else kv_reply_error_cstr(&c->out, "DUMP is not supported for this type yet");
    kv_rdb_buf_free(&b);
}

/* objectSetLRUOrLFU: IDLETIME applies under an LRU policy, FREQ under an
 * LFU one; the other is silently ignored, as in Redis. */
static void set_lru_lfu(kv_db_t *db, kv_obj *o, long long freq, long long idle, uint32_t clock)
{
    if (freq >= 0) {
        uint32_t minutes = (uint32_t) (kv_time_unix_ms() / 60000) & 65535;
        if (db->lfu) o->lru = (minutes << 8) | (uint32_t) freq;
    } else if (idle >= 0 && !db->lfu) {
        long long abs = (long long) clock - idle;
        if (abs < 0) abs = (long long) ((clock + KV_LRU_CLOCK_MAX / 2) % KV_LRU_CLOCK_MAX);
        o->lru = (uint32_t) abs;
    }
}

static void restore_cmd(kv_client_t *c)
{
    long long ttl, freq = -1, idle = -1;
    uint32_t clock = 0;
    int replace = 0, absttl = 0;
    const kv_resp_arg *key = &c->argv[1], *payload = &c->argv[3];

    for (int j = 4; j < c->argc; j++) {
        int more = c->argc - j - 1;
        if (kv_arg_is(&c->argv[j], "replace")) {
            replace = 1;
        } else if (kv_arg_is(&c->argv[j], "absttl")) {
            absttl = 1;
        } else if (kv_arg_is(&c->argv[j], "idletime") && more >= 1 && freq == -1) {
            if (!kv_arg_ll(c, j + 1, &idle)) return;
            if (idle < 0) {
                kv_reply_error_cstr(&c->out, "Invalid IDLETIME value, must be >= 0");
                return;
            }
            clock = (uint32_t) (kv_time_unix_ms() / 1000) & KV_LRU_CLOCK_MAX;
            j++;
        } else if (kv_arg_is(&c->argv[j], "freq") && more >= 1 && idle == -1) {
            if (!kv_arg_ll(c, j + 1, &freq)) return;
            if (freq < 0 || freq > 255) {
                kv_reply_error_cstr(&c->out, "Invalid FREQ value, must be >= 0 and <= 255");
                return;
            }
            j++;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    if (!replace && kv_db_find(c->db, key->ptr, key->len, KV_LOOKUP_WRITE)) {
        kv_reply_error_cstr(&c->out, "-BUSYKEY Target key name already exists.");
        return;
    }
    if (!kv_arg_ll(c, 2, &ttl)) return;
    if (ttl < 0) {
        kv_reply_error_cstr(&c->out, "Invalid TTL value, must be >= 0");
        return;
    }
    if (kv_rdbobj_verify(payload->ptr, payload->len)) {
        kv_reply_error_cstr(&c->out, "DUMP payload version or checksum are wrong");
        return;
    }
    kv_rdbobj_value v;
    if (kv_rdbobj_load_payload(payload->ptr, payload->len, &v) != KV_RDB_OK) {
        kv_reply_error_cstr(&c->out, "Bad data format");
        return;
    }
    int deleted = replace ? kv_db_delete(c->db, key->ptr, key->len) : 0;
    /* A relative TTL becomes absolute; the sum wraps as Redis's does, and
     * a time already past (wrapped ones included) means: do not create. */
    if (ttl && !absttl) ttl = (long long) ((uint64_t) ttl + (uint64_t) kv_db_now_ms());
    if (ttl && ttl <= kv_db_now_ms()) {
        kv_rdbobj_value_free(&v);
        if (deleted) kv_db_changed(c->db, key->ptr, key->len, 1);
        if (deleted) kv_notify(c->db, KV_NOTIFY_GENERIC, "del", key->ptr, key->len);
        kv_reply_ok(&c->out);
        return;
    }
    kv_dict_entry *e = kv_rdbobj_store(c->db, key->ptr, key->len, &v);
    if (!e) {
        kv_reply_error_cstr(&c->out, KV_ERR_OOM);
        return;
    }
    if (ttl) e = kv_db_expire_set(c->db, e, ttl);
    set_lru_lfu(c->db, kv_db_obj(e), freq, idle, clock);
    kv_db_changed(c->db, key->ptr, key->len, 1);
    kv_notify(c->db, KV_NOTIFY_GENERIC, "restore", key->ptr, key->len);
    kv_reply_ok(&c->out);
}

const kv_cmd_t kv_dump_cmds[] = {
    { "dump", 2, KV_CMD_READONLY, 1, 1, 1, KV_ROUTE_KEY, dump_cmd, "generic", "2.6.0",
      "Returns a serialized representation of the value stored at a key." },
    { "restore", -4, KV_CMD_WRITE | KV_CMD_DENYOOM, 1, 1, 1, KV_ROUTE_KEY, restore_cmd, "generic",
      "2.6.0", "Creates a key from the serialized representation of a value." },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
