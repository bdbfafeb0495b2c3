/* Per-shard snapshots: SAVE, BGSAVE, save points, load (snapshot.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/process.h"
#include "core/time.h"
#include "persist/rdb_file.h"
#include "persist/layout.h"
#include "persist/snapshot.h"
#include "shard/cmd.h"
#include "shard/conn.h"
#include "shard/reply.h"
#include "shard/route.h"

#define CRON_MS 100
#define REAP_MS 20
#define BGSAVE_RETRY_S 5 /* Redis's CONFIG_BGSAVE_RETRY_DELAY */

/* The AOF engineer's side, when linked in: a running AOF rewrite child
 * (then BGSAVE SCHEDULE waits for it), and whether the AOF replays on
 * start (then the shutdown save is not needed). */
int kv_aof_child_active(void) __attribute__((weak));
int kv_aof_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen) __attribute__((weak));

static struct {
    uv_loop_t *loop;
    kv_db_t *db;
    const kv_conf_t *conf;
    int shard;
    int started;
    uv_timer_t cron, reap;
    pid_t child;
    int child_killed;
    int64_t child_start_ms;
    uint64_t dirty_at_fork;
    int scheduled;
    int64_t lastsave;        /* unix s */
    int64_t last_try;        /* unix s of the last BGSAVE attempt */
    int last_ok;
    int64_t last_bgsave_time_sec;
    uint64_t saves;
    uint64_t loaded, expired;
} S = { .shard = -1, .last_ok = 1, .last_bgsave_time_sec = -1 };

int kv_snapshot_failed;             /* !S.last_ok, for the inline check */

static void set_last_ok(int ok)
{
    S.last_ok = ok;
    kv_snapshot_failed = !ok;
}

static int64_t now_ms(void) { return kv_db_now_ms(); }

int kv_snapshot_path(const kv_conf_t *conf, int shard, int tmp, char *out, size_t n)
{
    int w = snprintf(out, n, "%s/shard-%d.rdb%s", conf->dir, shard, tmp ? ".tmp" : "");
    return w < 0 || (size_t) w >= n ? -1 : 0;
}

/* ---- load ------------------------------------------------------------- */

int kv_snapshot_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    kv_rdb_load_stats st;
    if (kv_snapshot_path(conf, shard, 0, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "snapshot path too long");
        return -1;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    int64_t t0 = now_ms();
    if (kv_rdb_load_db(db, path, &st, err, errlen) != 0) return -1;
    S.loaded = st.keys_loaded;
    S.expired = st.keys_expired;
    if (st.functions_skipped)
        kv_log_warning("%s: %llu function libraries skipped (kevy has no functions)", path,
                       (unsigned long long) st.functions_skipped);
    kv_log_notice("DB loaded from disk: %s, %llu keys (%llu expired, skipped) in %.3f seconds", path,
                  (unsigned long long) st.keys_loaded, (unsigned long long) st.keys_expired,
                  (double) (now_ms() - t0) / 1000.0);
    return 0;
}

/* ---- saving ----------------------------------------------------------- */

static void saved(uint64_t dirty_before)
{
    S.db->dirty = S.db->dirty >= dirty_before ? S.db->dirty - dirty_before : 0;
    S.lastsave = now_ms() / 1000;
    set_last_ok(1);
    S.saves++;
}

/* Not started, or a child already saving: the error, and 1. */
static int cannot_save(char *err, size_t errlen)
{
    if (!S.db) snprintf(err, errlen, "persistence is not started");
    else if (S.child > 0) snprintf(err, errlen, "Background save already in progress");
    else return 0;
    return 1;
}

int kv_snapshot_save(char *err, size_t errlen)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    if (cannot_save(err, errlen)) return -1;
    if (kv_snapshot_path(S.conf, S.shard, 0, path, sizeof(path)) || kv_snapshot_path(S.conf, S.shard, 1, tmp, sizeof(tmp))) {
        snprintf(err, errlen, "snapshot path too long");
        return -1;
    }
    uint64_t dirty = S.db->dirty;
    if (kv_rdb_save_file(S.db, path, tmp, err, errlen) != 0) {
        set_last_ok(0);
        kv_log_warning("shard %d: save failed: %s", S.shard, err);
        return -1;
    }
    saved(dirty);
    kv_log_notice("DB saved on disk: %s", path);
    return 0;
}

static void reap_cb(uv_timer_t *t);

static void child_main(void)
{
    static const int sigs[] = { SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGINT, SIGCHLD, SIGPIPE };
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32], err[1024], title[48];
    pid_t parent = getppid();
    /* The loop's signal handlers would write into the parent's libuv
     * pipe: this process has no loop. Die with the worker. */
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) signal(sigs[i], SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    snprintf(title, sizeof(title), "kevy: worker %d bgsave", S.shard);
    kv_proctitle_set(title);
    kv_snapshot_path(S.conf, S.shard, 0, path, sizeof(path));
    kv_snapshot_path(S.conf, S.shard, 1, tmp, sizeof(tmp));
    if (kv_rdb_save_file(S.db, path, tmp, err, sizeof(err)) != 0) {
        kv_log_warning("shard %d: background save failed: %s", S.shard, err);
        _exit(1);
    }
    kv_log_notice("DB saved on disk: %s", path);
    _exit(0);
}

int kv_snapshot_child_active(void) { return S.child > 0; }

int kv_snapshot_bgsave(int schedule, char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    if (cannot_save(err, errlen)) return -1;
    if (kv_aof_child_active && kv_aof_child_active()) {
        if (schedule) {
            S.scheduled = 1;
            return 1;
        }
        snprintf(err, errlen, "Another child process is active (AOF?): can't BGSAVE right now. "
                              "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.");
        return -1;
    }
    if (kv_snapshot_path(S.conf, S.shard, 1, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "snapshot path too long");
        return -1;
    }
    S.last_try = now_ms() / 1000;
    S.scheduled = 0;
    pid_t pid = fork();
    if (pid < 0) {
        set_last_ok(0);
        snprintf(err, errlen, "fork: %s", strerror(errno));
        kv_log_warning("shard %d: can't save in background: %s", S.shard, err);
        return -1;
    }
    if (pid == 0) child_main();
    S.child = pid;
    S.child_killed = 0;
    S.child_start_ms = now_ms();
    S.dirty_at_fork = S.db->dirty;
    /* Resizing would copy the bucket arrays the child shares. */
    kv_dict_set_resize(S.db->dict, KV_DICT_RESIZE_AVOID);
    kv_log_notice("Background saving started by pid %d", (int) pid);
    uv_timer_start(&S.reap, reap_cb, REAP_MS, REAP_MS);
    return 0;
}

static void child_done(int status)
{
    char tmp[PATH_MAX + 32];
    S.last_bgsave_time_sec = (now_ms() - S.child_start_ms) / 1000;
    S.child = 0;
    uv_timer_stop(&S.reap);
    kv_dict_set_resize(S.db->dict, KV_DICT_RESIZE_ENABLE);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        saved(S.dirty_at_fork);
        kv_log_notice("Background saving terminated with success");
        return;
    }
    if (kv_snapshot_path(S.conf, S.shard, 1, tmp, sizeof(tmp)) == 0) unlink(tmp);
    if (S.child_killed) return;
    set_last_ok(0);
    if (WIFSIGNALED(status))
        kv_log_warning("Background saving terminated by signal %d", WTERMSIG(status));
    else
        kv_log_warning("Background saving error");
}

static void reap_cb(uv_timer_t *t)
{
    int status;
    (void) t;
    if (S.child <= 0) {
        uv_timer_stop(&S.reap);
        return;
    }
    pid_t r = waitpid(S.child, &status, WNOHANG);
    if (r == S.child) child_done(status);
    else if (r < 0 && errno == ECHILD) child_done(1 << 8);
}

static void cron_cb(uv_timer_t *t)
{
    (void) t;
    if (S.child > 0) return;
    int64_t now = now_ms() / 1000;
    char err[256];
    if (S.scheduled && !(kv_aof_child_active && kv_aof_child_active())) {
        kv_snapshot_bgsave(1, err, sizeof(err));
        return;
    }
    for (int i = 0; i < S.conf->nsave && i < KV_SAVE_POINTS_MAX; i++) {
        const kv_save_point_t *sp = &S.conf->save[i];
        if (S.db->dirty >= sp->changes && now - S.lastsave > (int64_t) sp->seconds &&
            (S.last_ok || now - S.last_try > BGSAVE_RETRY_S)) {
            kv_log_notice("%llu changes in %llu seconds. Saving...", (unsigned long long) sp->changes,
                          (unsigned long long) sp->seconds);
            kv_snapshot_bgsave(0, err, sizeof(err));
            break;
        }
    }
}

void kv_snapshot_start(uv_loop_t *loop, kv_db_t *db, const kv_conf_t *conf, int shard,
                       int64_t start_unix_ms)
{
    S.loop = loop;
    S.db = db;
    S.conf = conf;
    S.shard = shard;
    S.lastsave = start_unix_ms / 1000;
    uv_timer_init(loop, &S.cron);
    uv_timer_init(loop, &S.reap);
    uv_timer_start(&S.cron, cron_cb, CRON_MS, CRON_MS);
    uv_unref((uv_handle_t *) &S.cron);
    uv_unref((uv_handle_t *) &S.reap);
    S.started = 1;
}

void kv_snapshot_shutdown(int save)
{
    char err[1024], path[PATH_MAX + 32];
    if (!S.started) return;
    uv_timer_stop(&S.cron);
    uv_timer_stop(&S.reap);
    if (S.child > 0) {
        int status;
        S.child_killed = 1;
        kill(S.child, SIGKILL);
        while (waitpid(S.child, &status, 0) < 0 && errno == EINTR) {}
        child_done(status);
        kv_log_notice("There is a child saving an .rdb. Killing it!");
    }
    if (save == KV_SHUTDOWN_SAVE_NONE) return;
    if (kv_snapshot_path(S.conf, S.shard, 0, path, sizeof(path)) != 0) return;
    if (save != KV_SHUTDOWN_SAVE_FORCED) {
        if (S.conf->nsave <= 0) return;
        if (S.conf->aof_enabled && kv_aof_load) return;
        if (S.db->dirty == 0 && access(path, F_OK) == 0) return;
    }
    kv_log_notice("Saving the final RDB snapshot before exiting.");
    if (kv_snapshot_save(err, sizeof(err)) != 0)
        kv_log_warning("Error trying to save the DB, can't exit: %s (exiting anyway)", err);
}

/* ---- INFO, LASTSAVE --------------------------------------------------- */

void kv_snapshot_get_info(kv_snapshot_info_t *o)
{
    memset(o, 0, sizeof(*o));
    o->bgsave_in_progress = S.child > 0;
    o->last_bgsave_ok = S.last_ok;
    o->lastsave_unix = S.lastsave;
    o->last_bgsave_time_sec = S.last_bgsave_time_sec;
    o->current_bgsave_time_sec = S.child > 0 ? (now_ms() - S.child_start_ms) / 1000 : -1;
    o->saves = S.saves;
    o->changes = S.db ? S.db->dirty : 0;
    o->load_keys_loaded = S.loaded;
    o->load_keys_expired = S.expired;
}

long long kv_snapshot_lastsave(void) { return (long long) S.lastsave; }

void kv_snapshot_lastsave_cmd(kv_client_t *c) { kv_reply_int(&c->out, kv_snapshot_lastsave()); }

void kv_snapshot_lastsave_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    long long best = 0;
    int have = 0;
    for (int i = 0; i < nparts; i++) {
        if (len[i] < 4 || flat[i][0] != ':') continue;
        long long v = strtoll(flat[i] + 1, NULL, 10);
        if (!have || v < best) best = v, have = 1;
    }
    kv_reply_int(out, best);
}

/* ---- commands --------------------------------------------------------- */

static void save_cmd(kv_client_t *c)
{
    char err[1024];
    if (kv_snapshot_save(err, sizeof(err)) == 0) kv_reply_ok(&c->out);
    else kv_reply_errorf(&c->out, "%s", err);
}

static void bgsave_cmd(kv_client_t *c)
{
    char err[1024];
    int schedule = 0;
    if (c->argc > 1) {
        if (c->argc == 2 && c->argv[1].len == 8 && !strncasecmp(c->argv[1].ptr, "schedule", 8)) {
            schedule = 1;
        } else {
            kv_reply_error_cstr(&c->out, "syntax error");
            return;
        }
    }
    int rc = kv_snapshot_bgsave(schedule, err, sizeof(err));
    if (rc == 0) kv_reply_status(&c->out, "Background saving started");
    else if (rc == 1) kv_reply_status(&c->out, "Background saving scheduled");
    else kv_reply_errorf(&c->out, "%s", err);
}

/* Every shard said the same (errors never reach a combiner): one reply;
 * a shard that only scheduled its save makes it "scheduled". */
static void one_of(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    int pick = 0;
    for (int i = 0; i < nparts; i++)
        if (len[i] > 20 && memmem(flat[i], len[i], "scheduled", 9)) pick = i;
    if (nparts > 0) kv_reply_raw(out, flat[pick], len[pick]);
    else kv_reply_ok(out);
}

const kv_cmd_t kv_persist_cmds[] = {
    { "save", 1, KV_CMD_ADMIN | KV_CMD_NOSCRIPT, 0, 0, 0, KV_ROUTE_ALL, save_cmd, "server", "1.0.0",
      "Synchronously save the dataset to disk", one_of },
    { "bgsave", -1, KV_CMD_ADMIN | KV_CMD_NOSCRIPT, 0, 0, 0, KV_ROUTE_ALL, bgsave_cmd, "server", "1.0.0",
      "Asynchronously save the dataset to disk", one_of },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};

/* ---- kevy --import-rdb ------------------------------------------------ */

typedef struct {
    kv_db_t **dbs;
} import_t;

static int import_key(void *ud, const char *key, size_t klen, kv_rdbobj_value *v, int64_t expire_ms,
                      char *err, size_t errlen)
{
    import_t *im = ud;
    return kv_rdb_store_key(im->dbs[kv_route_shard(key, klen)], key, klen, v, expire_ms, err, errlen);
}

int kv_snapshot_import(const kv_conf_t *conf, const char *file, int force, char *err, size_t errlen)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32], why[1024];
    kv_rdb_load_stats st;
    int rc = -1, n = conf->shards;

    pid_t pid = kv_pidfile_read(conf->pid_file, why, sizeof(why));
    if (pid > 0 && kill(pid, 0) == 0) {
        snprintf(err, errlen, "kevy is running (pid %d, %s): stop it before importing", (int) pid, conf->pid_file);
        return -1;
    }
    if (mkdir(conf->dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create dir %s: %s", conf->dir, strerror(errno));
        return -1;
    }
    for (int k = 0; k < n && !force; k++) {
        static const char *const ext[] = { "rdb", "aof" };
        for (int x = 0; x < 2; x++) {
            snprintf(path, sizeof(path), "%s/shard-%d.%s", conf->dir, k, ext[x]);
            if (access(path, F_OK) == 0) {
                snprintf(err, errlen, "%s already exists: use --force to replace the data in %s", path, conf->dir);
                return -1;
            }
        }
    }
    kv_route_init(n, conf->routing);
    import_t im = { calloc((size_t) n, sizeof(kv_db_t *)) };
    if (!im.dbs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0; k < n; k++)
        if (!(im.dbs[k] = kv_db_new())) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    int64_t t0 = now_ms();
    if (kv_rdb_load_file(file, import_key, NULL, &im, &st, err, errlen) != 0) goto out;
    for (int k = 0; k < n; k++) {
        if (kv_snapshot_path(conf, k, 0, path, sizeof(path)) || kv_snapshot_path(conf, k, 1, tmp, sizeof(tmp))) {
            snprintf(err, errlen, "snapshot path too long");
            goto out;
        }
        if (kv_rdb_save_file(im.dbs[k], path, tmp, err, errlen) != 0) goto out;
        /* An AOF is the whole truth when it exists: an old one would
         * replace what was just imported. */
        snprintf(path, sizeof(path), "%s/shard-%d.aof", conf->dir, k);
        if (unlink(path) == 0) printf("kevy: removed %s (it held the replaced data)\n", path);
    }
    /* The files are in the configured layout: say so, or a shards.meta
     * from older data would make the next start reshard them wrongly. */
    if (kv_layout_write_meta(conf, err, errlen) != 0) goto out;
    if (st.functions_skipped)
        printf("kevy: %llu function libraries skipped (kevy has no functions)\n",
               (unsigned long long) st.functions_skipped);
    printf("kevy: imported %llu keys (%llu already expired, skipped) from %s into %d shard%s in %s "
           "in %.3f seconds\n",
           (unsigned long long) st.keys_loaded, (unsigned long long) st.keys_expired, file, n, n == 1 ? "" : "s",
           conf->dir, (double) (now_ms() - t0) / 1000.0);
    rc = 0;
out:
    for (int k = 0; k < n; k++)
        if (im.dbs[k]) kv_db_free(im.dbs[k]);
    free(im.dbs);
    return rc;
}

/* stop-writes-on-bgsave-error (Redis's default yes): with save points set
 * and the last background save failed, writes and PING are refused until
 * a save succeeds (the cron retries). 1 when c got the -MISCONF reply. */
int kv_snapshot_refuse_slow(kv_client_t *c, const kv_cmd_t *cmd)
{
    if (S.last_ok || !S.conf || S.conf->nsave == 0) return 0;
    if (!(cmd->flags & KV_CMD_WRITE) && strcmp(cmd->name, "ping") != 0) return 0;
    kv_reply_error_cstr(&c->out, "-MISCONF Redis is configured to save RDB snapshots, but it's currently "
                        "unable to persist to disk. Commands that may modify the data set are disabled, "
                        "because this instance is configured to report errors during writes if RDB "
                        "snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis "
                        "logs for details about the RDB error.");
    return 1;
}
