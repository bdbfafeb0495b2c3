/*
 * Keyspace notifications (Redis 7.0's notify.c): the handlers call
 * kv_notify() where Redis calls notifyKeyspaceEvent(); when the event's
 * class is enabled by notify-keyspace-events, "__keyspace@0__:<key>" gets
 * the event name and "__keyevent@0__:<event>" gets the key.
 *
 * Events happen on the shard owning the key; subscribers may be on any
 * worker: the event is delivered to this worker's subscribers and sent
 * (one frame) to every other worker, which delivers to its own. Frames of
 * one sender reach a worker in order, so a subscriber sees one shard's
 * events in the order they happened.
 */
#ifndef KV_SHARD_NOTIFY_H
#define KV_SHARD_NOTIFY_H

#include <stddef.h>

#include "shard/db.h"
#include "shard/resp.h"

#define KV_NOTIFY_KEYSPACE (1 << 0)    /* K */
#define KV_NOTIFY_KEYEVENT (1 << 1)    /* E */
#define KV_NOTIFY_GENERIC  (1 << 2)    /* g */
#define KV_NOTIFY_STRING   (1 << 3)    /* $ */
#define KV_NOTIFY_LIST     (1 << 4)    /* l */
#define KV_NOTIFY_SET      (1 << 5)    /* s */
#define KV_NOTIFY_HASH     (1 << 6)    /* h */
#define KV_NOTIFY_ZSET     (1 << 7)    /* z */
#define KV_NOTIFY_EXPIRED  (1 << 8)    /* x */
#define KV_NOTIFY_EVICTED  (1 << 9)    /* e */
#define KV_NOTIFY_STREAM   (1 << 10)   /* t */
#define KV_NOTIFY_KEY_MISS (1 << 11)   /* m (not part of A) */
#define KV_NOTIFY_MODULE   (1 << 13)   /* d */
#define KV_NOTIFY_NEW      (1 << 14)   /* n */
#define KV_NOTIFY_ALL (KV_NOTIFY_GENERIC | KV_NOTIFY_STRING | KV_NOTIFY_LIST | KV_NOTIFY_SET | KV_NOTIFY_HASH \
                       | KV_NOTIFY_ZSET | KV_NOTIFY_EXPIRED | KV_NOTIFY_EVICTED | KV_NOTIFY_STREAM           \
                       | KV_NOTIFY_MODULE)

struct kv_db_s;

/* notify-keyspace-events of this worker (CONFIG SET sets it on all). */
extern int kv_notify_flags;

/* The flags of a notify-keyspace-events string, or -1 for a bad one. */
int kv_notify_parse(const char *s);
/* The string CONFIG GET shows (buf >= 32 bytes). */
void kv_notify_format(int flags, char *buf);

/* Register the frame handler (once per worker, after the rings). */
void kv_notify_init(void);

void kv_notify_emit(int type, const char *event, const char *key, size_t klen);

/* One event of `type` on key (db 0). Nothing is done, not even a call,
 * unless the class is enabled. */
static inline void kv_notify(struct kv_db_s *db, int type, const char *event, const char *key, size_t klen)
{
    (void) db;
    if (kv_notify_flags & type) kv_notify_emit(type, event, key, klen);
}

/* The event named as the command that runs (argv0, lower-cased):
 * ZREMRANGEBYSCORE, SINTERSTORE, ZUNIONSTORE ... */
void kv_notify_cmd_emit(int type, const kv_resp_arg *argv0, const char *key, size_t klen);
static inline void kv_notify_cmd(struct kv_db_s *db, int type, const kv_resp_arg *argv0, const char *key, size_t klen)
{
    (void) db;
    if (kv_notify_flags & type) kv_notify_cmd_emit(type, argv0, key, klen);
}
/* The same when key exists (a *STORE stored a non-empty result). */
static inline void kv_notify_stored(struct kv_db_s *db, int type, const kv_resp_arg *argv0, const char *key,
                                    size_t klen)
{
    if ((kv_notify_flags & type) && kv_db_find(db, key, klen, KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH))
        kv_notify_cmd_emit(type, argv0, key, klen);
}

/* "del" when key is gone (a container emptied by the command). */
static inline void kv_notify_if_deleted(struct kv_db_s *db, const char *key, size_t klen)
{
    if ((kv_notify_flags & KV_NOTIFY_GENERIC) && !kv_db_find(db, key, klen, KV_LOOKUP_WRITE | KV_LOOKUP_NOTOUCH))
        kv_notify_emit(KV_NOTIFY_GENERIC, "del", key, klen);
}

#endif
