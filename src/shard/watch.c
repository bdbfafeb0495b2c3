/*
 * WATCH, on the shard that owns the watched keys: key -> the clients
 * watching it, each with a "touched" mark set by any change of the key
 * (kv_db_changed), its expiry or deletion by expiry, and FLUSHDB/FLUSHALL.
 * EXEC (kevy.exec, multi.c) checks and clears the marks of its client.
 *
 * Clients are named by their id, unique across workers (conn.c), since a
 * watcher usually lives on another worker than the key.
 */
#include <stdlib.h>
#include <string.h>

#include "shard/db.h"
#include "shard/dict.h"
#include "shard/watch.h"

typedef struct {
    uint64_t id;
    uint8_t  touched;
} watcher_t;

typedef struct {
    uint32_t   n, cap;
    watcher_t *w;
} watchers_t;

static kv_dict *watched;         /* key -> watchers_t (extra bytes) */

static watchers_t *get(const char *key, size_t klen, int create)
{
    if (!watched) {
        if (!create) return NULL;
        watched = kv_dict_new();
    }
    kv_dict_entry *e = kv_dict_find(watched, key, klen);
    if (!e && create) {
        e = kv_dict_insert(watched, key, klen, sizeof(watchers_t));
        if (!e) abort();
        memset(kv_dict_entry_extra(e), 0, sizeof(watchers_t));
    }
    return e ? kv_dict_entry_extra(e) : NULL;
}

void kv_watch_add(kv_db_t *db, const char *key, size_t klen, uint64_t id)
{
    watchers_t *ws = get(key, klen, 1);
    for (uint32_t i = 0; i < ws->n; i++)
        if (ws->w[i].id == id) return;          /* WATCH twice: one mark */
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? ws->cap * 2 : 2;
        ws->w = realloc(ws->w, ws->cap * sizeof(watcher_t));
        if (!ws->w) abort();
    }
    ws->w[ws->n++] = (watcher_t) { id, 0 };
    db->nwatched++;
}

/* Forget id's watch of key; returns 1 when it had been touched. */
int kv_watch_remove(kv_db_t *db, const char *key, size_t klen, uint64_t id)
{
    watchers_t *ws = get(key, klen, 0);
    if (!ws) return 0;
    int touched = 0;
    for (uint32_t i = 0; i < ws->n; i++) {
        if (ws->w[i].id != id) continue;
        touched = ws->w[i].touched;
        ws->w[i] = ws->w[--ws->n];
        db->nwatched--;
        break;
    }
    if (ws->n == 0) {
        free(ws->w);
        kv_dict_entry *e = kv_dict_unlink(watched, key, klen);
        if (e) kv_dict_entry_free(e);
    }
    return touched;
}

void kv_watch_touch(kv_db_t *db, const char *key, size_t klen)
{
    (void) db;
    watchers_t *ws = get(key, klen, 0);
    if (ws)
        for (uint32_t i = 0; i < ws->n; i++) ws->w[i].touched = 1;
}

void kv_watch_touch_all(kv_db_t *db)
{
    (void) db;
    if (!watched) return;
    kv_dict_iter it;
    kv_dict_entry *e;
    kv_dict_iter_init(&it, watched);
    while ((e = kv_dict_iter_next(&it))) {
        watchers_t *ws = kv_dict_entry_extra(e);
        for (uint32_t i = 0; i < ws->n; i++) ws->w[i].touched = 1;
    }
    kv_dict_iter_done(&it);
}
