/*
 * The append-only file of one shard: dir/shard-<k>.aof, RESP multibulk
 * commands starting with SELECT 0 (a single-file AOF as Redis < 7 writes
 * with aof-use-rdb-preamble no; `redis-check-aof FILE` reads it).
 *
 * Feed: forward.c calls our propagate hook after every write command that
 * changed this shard's db, with the arguments as executed; kv_aof_translate
 * turns the non-deterministic ones into commands that replay to the same
 * state (relative expiries -> PEXPIREAT / SET ... PXAT, INCRBYFLOAT -> SET
 * ... KEEPTTL, ...). Keys removed by expiry are logged as DEL (db hook).
 *
 * Group commit (DESIGN.md invariant 4): commands are appended to an
 * in-memory buffer. Once per loop turn (a uv_check, i.e. right after the
 * poll phase that read every client of the turn) the buffer is written
 * with one pwrite and, with `fsync: always`, made durable with one
 * fdatasync. Until then no reply leaves this worker: conn.c's
 * flush_output parks the client (kv_aof_hold_output) and forward.c parks
 * REP frames; both are released right after the write (+fsync). While
 * anything is parked a uv_idle keeps the poll phase from blocking, so the
 * commit happens in the same loop turn. `everysec`: the write is per turn
 * (replies wait for it, so a crash of the process loses nothing), fdatasync
 * runs in a background thread once a second; `no`: write only.
 *
 * Errors (disk full, EIO): the file is truncated back to the last good
 * offset (no partial command stays), the bytes stay in the buffer, the
 * replies of the failed turn stay parked, write commands (and PING, as in
 * Redis) get "-MISCONF Errors writing to the AOF file: <strerror>", reads
 * go on; the write is retried every 100 ms and everything resumes once it
 * succeeds.
 *
 * Authority: when the AOF exists it is the whole truth (as Redis with
 * appendonly yes): kv_aof_load empties the db (whatever a snapshot loaded)
 * and replays the file. When it does not exist yet, kv_aof_start writes
 * the current keyspace (loaded from the snapshot) as its first commands.
 *
 * Not thread-safe except where noted: the loop thread only.
 */
#ifndef KV_PERSIST_AOF_H
#define KV_PERSIST_AOF_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/conf.h"
#include "shard/cmd.h"
#include "shard/conn.h"
#include "shard/db.h"
#include "shard/resp.h"

/* Replay dir/shard-<shard>.aof into db (emptied first when the file has
 * anything). Call after the snapshot load, before kv_aof_start. A torn
 * last command is cut off (file truncated, warning naming the file and
 * offset); anything else malformed returns -1 with err naming file and
 * offset. 0 when the AOF is disabled, absent or loaded. Runs once per
 * process: a second call returns the first result. */
int kv_aof_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen);

/* Open the AOF for appending and hook into the worker (propagation, expiry,
 * group commit, cron, fsync thread). Calls kv_aof_load first if nobody
 * did. No-op (0) when persistence.aof.enabled is false. -1 on error. */
int kv_aof_start(kv_server_t *srv, uv_loop_t *loop, int shard);
/* Final write + fsync (any policy), stop the child and the thread. After
 * the loop has ended. */
void kv_aof_stop(void);

/* A BGREWRITEAOF child is running (snapshot.c schedules BGSAVE after it). */
int kv_aof_child_active(void);

/* ---- hooks for conn.c / forward.c ---------------------------------------- */

/* Write (+fsync) the buffer now and release the parked replies. */
void kv_aof_flush_before_reply(void);
/* flush_output: 1 when c's output must wait for the group commit (c is
 * parked and flushed again by the commit). */
int kv_aof_hold_output(kv_client_t *c);
/* A REP frame must wait (forward.c parks it until kv_fwd_release_held). */
int kv_aof_hold_replies(void);
/* The client is closing: forget it. */
void kv_aof_client_gone(kv_client_t *c);

/* Set while the AOF cannot be written: call() asks kv_aof_refuse. */
extern int kv_aof_write_error;
int kv_aof_refuse_slow(kv_client_t *c, const kv_cmd_t *cmd);
/* 1 (and the -MISCONF error replied) when cmd must not run now. */
static inline int kv_aof_refuse(kv_client_t *c, const kv_cmd_t *cmd)
{
    return kv_aof_write_error && kv_aof_refuse_slow(c, cmd);
}

/* ---- pieces, exposed for the unit tests ------------------------------------ */

/* The command(s) to log for argv as just executed on db: calls emit once
 * per command (usually argv itself). */
typedef void kv_aof_emit_fn(void *ud, int argc, const kv_resp_arg *argv);
void kv_aof_translate(kv_db_t *db, int argc, const kv_resp_arg *argv, kv_aof_emit_fn *emit, void *ud);

/* Append argv as a RESP multibulk to *buf (malloc'd, grown as needed). */
typedef struct {
    char  *p;
    size_t len, cap;
} kv_aof_buf;
void kv_aof_buf_cmd(kv_aof_buf *b, int argc, const kv_resp_arg *argv);
void kv_aof_buf_free(kv_aof_buf *b);

/* The keyspace as commands (SELECT 0, SET/RESTORE with absolute TTLs)
 * written to fd. 0, or -1 with errno (ENOTSUP: a type DUMP cannot encode). */
int kv_aof_write_keyspace(kv_db_t *db, int fd);

/* Replay a file into db without the once-per-process guard or the
 * authority flush (the unit tests). */
int kv_aof_replay_file(kv_db_t *db, const char *path, int fix_tail, char *err, size_t errlen);

/* INFO persistence: part 0 = aof_enabled .. aof_last_cow_size, part 1 =
 * aof_current_size .. (only when enabled). b is a kv_sbuf_t. */
void kv_aof_info(void *sbuf, int part);

#endif
