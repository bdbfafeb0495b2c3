/*
 * Per-shard snapshots (docs/persistence.md): worker k keeps its keyspace
 * in `dir/shard-<k>.rdb`, a Redis 7.0 RDB file (persist/rdb_file.h).
 *
 *   SAVE            synchronous, on every shard; "+OK" once all are done
 *   BGSAVE          forks the worker: the copy-on-write child writes
 *                   shard-<k>.rdb.tmp, fsyncs, renames it over
 *                   shard-<k>.rdb and fsyncs the directory; the parent
 *                   polls waitpid on a timer and records the outcome
 *   BGSAVE SCHEDULE as Redis: scheduled only when another kind of child
 *                   (an AOF rewrite) runs; an RDB child already running
 *                   is "-ERR Background save already in progress"
 *   save points     persistence.snapshot.save, checked 10 times a second
 *                   against this shard's dirty counter and last save
 *   shutdown        with save points configured and changes since the
 *                   last save, the worker saves before it exits (as Redis)
 *
 * Everything here is per worker process: one shard, one state.
 */
#ifndef KV_PERSIST_SNAPSHOT_H
#define KV_PERSIST_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/conf.h"
#include "shard/cmd.h"
#include "shard/db.h"

/* INFO persistence, this shard's view. */
typedef struct kv_snapshot_info {
    int loading;
    int bgsave_in_progress;
    int last_bgsave_ok;
    int64_t lastsave_unix;          /* s: last successful save (start time before) */
    int64_t last_bgsave_time_sec;   /* -1: none yet */
    int64_t current_bgsave_time_sec;/* -1: none running */
    uint64_t saves;                 /* successful SAVE + BGSAVE */
    uint64_t changes;               /* db->dirty */
    uint64_t load_keys_loaded, load_keys_expired;
} kv_snapshot_info_t;

/* `dir/shard-<k>.rdb` (tmp: with ".tmp"). -1 if it does not fit. */
int kv_snapshot_path(const kv_conf_t *conf, int shard, int tmp, char *out, size_t n);

/* Load this shard's snapshot, if there is one, into db (worker start and
 * respawn). 0: loaded or no file; -1: unreadable or corrupt, with err
 * ("FILE: corrupt at offset N: why"). */
int kv_snapshot_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen);

/* Start the save-point timer and child reaping on the worker's loop. The
 * handles are unreferenced: they never keep the loop alive. */
void kv_snapshot_start(uv_loop_t *loop, kv_db_t *db, const kv_conf_t *conf, int shard,
                       int64_t start_unix_ms);
/* The worker is exiting: stop a running child (its temp file removed),
 * then save once more when save points are configured and the keyspace
 * changed since the last save (not with the AOF on: it holds them);
 * SHUTDOWN SAVE saves in any case, SHUTDOWN NOSAVE never. */
void kv_snapshot_shutdown(int save);     /* kv_shutdown_save_e */

/* Redis's stop-writes-on-bgsave-error: -MISCONF for writes (and PING)
 * while the last background save failed and save points are set. */
int kv_snapshot_refuse_slow(kv_client_t *c, const kv_cmd_t *cmd);
extern int kv_snapshot_failed;
static inline int kv_snapshot_refuse(kv_client_t *c, const kv_cmd_t *cmd)
{
    return kv_snapshot_failed && kv_snapshot_refuse_slow(c, cmd);
}

/* SAVE: 0, or -1 with err (e.g. "Background save already in progress"). */
int kv_snapshot_save(char *err, size_t errlen);
/* BGSAVE: 0 started, 1 scheduled, -1 with err. */
int kv_snapshot_bgsave(int schedule, char *err, size_t errlen);

void kv_snapshot_get_info(kv_snapshot_info_t *out);
/* A BGSAVE child of this worker is running (an AOF rewrite must wait). */
int kv_snapshot_child_active(void);
/* LASTSAVE of this shard (unix s). */
long long kv_snapshot_lastsave(void);

/* For LASTSAVE run on every shard (route ALL): the handler replies this
 * shard's time, the combiner the oldest of them, so a client that waits
 * for LASTSAVE to move after BGSAVE waits for every shard. */
struct kv_client_s;
struct kv_reply_buf;
void kv_snapshot_lastsave_cmd(struct kv_client_s *c);
void kv_snapshot_lastsave_combine(struct kv_reply_buf *out, int nparts, char **flat, size_t *len);

/* kevy --import-rdb FILE: spread the keys of a Redis dump.rdb over the
 * config's shards (its routing) and write each shard's snapshot. Refuses
 * while kevy runs, and when shard files exist unless force (then old
 * AOFs are removed too: they would replace the import). Prints a summary
 * on stdout. 0, or -1 with err. */
int kv_snapshot_import(const kv_conf_t *conf, const char *file, int force, char *err, size_t errlen);

#endif
