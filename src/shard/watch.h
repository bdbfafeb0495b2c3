/*
 * The shard side of WATCH (watch.c): which clients watch which of this
 * shard's keys, and whether each key changed since. db.c marks changes
 * through kv_watch_touch when db->nwatched is not 0.
 */
#ifndef KV_SHARD_WATCH_H
#define KV_SHARD_WATCH_H

#include <stddef.h>
#include <stdint.h>

struct kv_db_s;

/* The caller has looked the key up first, so a key already expired is
 * gone, not "changed later". */
void kv_watch_add(struct kv_db_s *db, const char *key, size_t klen, uint64_t id);
/* Forget id's watch of key; 1 when the key was touched meanwhile. */
int  kv_watch_remove(struct kv_db_s *db, const char *key, size_t klen, uint64_t id);
void kv_watch_touch(struct kv_db_s *db, const char *key, size_t klen);
void kv_watch_touch_all(struct kv_db_s *db);

#endif
