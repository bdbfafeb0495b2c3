/*
 * The per-shard AOF: feed, group commit, errors, rewrite, INFO (see
 * persist/aof.h for the model). Rules for what is logged: aof_rules.c;
 * replay: aof_load.c; the keyspace as commands: aof_rewrite.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/time.h"
#include "persist/aof.h"
#include "shard/cmd_server.h"
#include "shard/forward.h"

#define CRON_MS 100
#define HELD_MIN 64

/* forward.c: the REP frames parked by the group commit leave now. */
void kv_fwd_release_held(void);
/* The snapshot engineer's BGSAVE child (src/persist/snapshot.c), if any:
 * a rewrite waits for it, as Redis schedules BGREWRITEAOF after BGSAVE. */
int kv_snapshot_child_active(void) __attribute__((weak));

int kv_aof_write_error;

static struct {
    int on;
    int loaded, load_rc;
    char load_err[1024];
    kv_server_t *srv;
    kv_db_t *db;
    uv_loop_t *loop;
    int shard;
    char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
    int fd;
    uint64_t off;               /* bytes in the file, all complete commands */
    uint64_t base_size;         /* size after the last rewrite / at start   */
    kv_aof_buf buf;             /* logged, not yet written                  */
    kv_aof_buf rbuf;            /* logged since the rewrite child forked    */
    kv_client_t **held, **rel;  /* parked clients; those being released     */
    size_t nheld, held_cap, nrel;
    int err_errno;
    uv_check_t check;
    uv_idle_t idle;
    uv_timer_t cron;
    /* rewrite */
    pid_t child;
    uint64_t rw_start_ms;
    int rw_scheduled, rw_last_ok;
    long long rw_count, rw_fail_consec, rw_last_sec;
    /* everysec */
    pthread_t th;
    int th_on, th_stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t written_seq;
    uint64_t synced_seq;
    _Atomic int fsync_errno;
} A = { .fd = -1, .rw_last_ok = 1, .rw_last_sec = -1, .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER };

static int policy(void) { return A.srv ? A.srv->conf->aof_fsync : KV_FSYNC_ALWAYS; }

static void fsync_dir(void)
{
    int fd = open(A.dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- load ------------------------------------------------------------------ */

static void paths(const kv_conf_t *conf, int shard)
{
    snprintf(A.dir, sizeof A.dir, "%s", conf->dir);
    if (snprintf(A.path, sizeof A.path, "%s/shard-%d.aof", conf->dir, shard) >= (int) sizeof A.path
        || snprintf(A.tmp, sizeof A.tmp, "%s/shard-%d.aof.rewrite.tmp", conf->dir, shard) >= (int) sizeof A.tmp)
        kv_log_warning("the AOF path in %s is too long", conf->dir);
}

int kv_aof_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen)
{
    if (A.loaded) {
        if (A.load_rc) snprintf(err, errlen, "%s", A.load_err);
        return A.load_rc;
    }
    A.loaded = 1;
    if (!conf->aof_enabled) return 0;
    paths(conf, shard);
    struct stat st;
    if (stat(A.path, &st) != 0 || st.st_size == 0) return 0;
    if (kv_db_size(db) > 0) {
        kv_log_notice("the append only file %s is authoritative: dropping the %zu keys of the snapshot", A.path,
                      kv_db_size(db));
        kv_db_flush(db);
    }
    A.load_rc = kv_aof_replay_file(db, A.path, 1, A.load_err, sizeof A.load_err);
    if (A.load_rc) snprintf(err, errlen, "%s", A.load_err);
    return A.load_rc;
}

/* ---- feed ------------------------------------------------------------------- */

static void idle_cb(uv_idle_t *h) { (void) h; }   /* keeps poll from blocking */

static void emit(void *ud, int argc, const kv_resp_arg *argv)
{
    (void) ud;
    kv_aof_buf_cmd(&A.buf, argc, argv);
    if (A.child > 0) kv_aof_buf_cmd(&A.rbuf, argc, argv);
    if (!kv_aof_write_error) uv_idle_start(&A.idle, idle_cb);
}

static void propagate(kv_db_t *db, int argc, const kv_resp_arg *argv)
{
    if (db != A.db) return;     /* a scratch keyspace (gather.c) */
    kv_aof_translate(db, argc, argv, emit, NULL);
}

static void on_expired(void *ud, const char *key, size_t klen)
{
    (void) ud;
    kv_resp_arg v[2] = { { "DEL", 3 }, { key, klen } };
    emit(NULL, 2, v);
}

/* ---- group commit -------------------------------------------------------------- */

static void set_error(int e)
{
    if (!kv_aof_write_error || A.err_errno != e)
        kv_log_warning("Error writing to the AOF file %s: %s", A.path, strerror(e));
    kv_aof_write_error = 1;
    A.err_errno = e;
}

static void clear_error(void)
{
    if (!kv_aof_write_error) return;
    kv_aof_write_error = 0;
    kv_log_warning("AOF write error looks solved, Redis can write again.");
}

/* Write the buffer at the end of the file (+ fdatasync); on failure cut
 * the file back to its last complete command and keep the bytes. */
static int write_buf(int force_sync)
{
    size_t done = 0;
    int e = 0;
    while (done < A.buf.len) {
        ssize_t w = pwrite(A.fd, A.buf.p + done, A.buf.len - done, (off_t) (A.off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e = w < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t) w;
    }
    if (!e && (force_sync || policy() == KV_FSYNC_ALWAYS) && fdatasync(A.fd) != 0) e = errno;
    if (e) {
        if (ftruncate(A.fd, (off_t) A.off) != 0)
            kv_log_warning("could not remove the partial write from %s: %s", A.path, strerror(errno));
        set_error(e);
        return -1;
    }
    A.off += A.buf.len;
    A.buf.len = 0;
    if (A.buf.cap > (4u << 20)) kv_aof_buf_free(&A.buf);
    if (policy() == KV_FSYNC_EVERYSEC) atomic_fetch_add(&A.written_seq, 1);
    clear_error();
    return 0;
}

static void release_held(void)
{
    if (A.nheld) {
        kv_client_t **list = A.held;
        size_t n = A.nheld;
        A.rel = list, A.nrel = n;
        A.held = NULL, A.nheld = A.held_cap = 0;
        for (size_t i = 0; i < n; i++) {
            kv_client_t *c = list[i];
            if (!c) continue;
            list[i] = NULL;
            c->aof_held = 0;
            kv_client_flush(c);
        }
        A.rel = NULL, A.nrel = 0;
        if (!A.held) {          /* nobody was parked meanwhile: reuse */
            A.held = list;
            A.held_cap = n > HELD_MIN ? n : HELD_MIN;
        } else {
            free(list);
        }
    }
    kv_fwd_release_held();
}

void kv_aof_flush_before_reply(void)
{
    if (!A.on) return;
    if (A.buf.len && !kv_aof_write_error) write_buf(0);
    if (A.buf.len == 0) release_held();
    if (A.buf.len == 0 || kv_aof_write_error) uv_idle_stop(&A.idle);
}

static void check_cb(uv_check_t *h)
{
    (void) h;
    kv_aof_flush_before_reply();
}

int kv_aof_hold_output(kv_client_t *c)
{
    if (!A.on) return 0;
    if (c->aof_held) return 1;
    if (A.buf.len == 0 || kv_aof_write_error || kv_reply_buf_len(&c->out) == 0) return 0;
    if (A.nheld == A.held_cap) {
        size_t cap = A.held_cap ? A.held_cap * 2 : HELD_MIN;
        kv_client_t **p = realloc(A.held, cap * sizeof *p);
        if (!p) abort();
        A.held = p, A.held_cap = cap;
    }
    A.held[A.nheld++] = c;
    c->aof_held = 1;
    return 1;
}

int kv_aof_hold_replies(void) { return A.on && A.buf.len && !kv_aof_write_error; }

void kv_aof_client_gone(kv_client_t *c)
{
    if (!c->aof_held) return;
    c->aof_held = 0;
    for (size_t i = 0; i < A.nheld; i++)
        if (A.held[i] == c) A.held[i] = NULL;
    for (size_t i = 0; i < A.nrel; i++)
        if (A.rel[i] == c) A.rel[i] = NULL;
}

int kv_aof_refuse_slow(kv_client_t *c, const kv_cmd_t *cmd)
{
    if (!A.on || !((cmd->flags & KV_CMD_WRITE) || !strcmp(cmd->name, "ping"))) return 0;
    kv_reply_errorf(&c->out, "-MISCONF Errors writing to the AOF file: %s", strerror(A.err_errno));
    return 1;
}

/* ---- everysec ---------------------------------------------------------------------- */

static void *fsync_thread(void *arg)
{
    (void) arg;
    pthread_mutex_lock(&A.mu);
    while (!A.th_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&A.cv, &A.mu, &ts);
        if (A.th_stop) break;
        uint64_t w = atomic_load(&A.written_seq);
        if (w == A.synced_seq || A.fd < 0) continue;
        if (fdatasync(A.fd) != 0) atomic_store(&A.fsync_errno, errno);
        else A.synced_seq = w;
    }
    pthread_mutex_unlock(&A.mu);
    return NULL;
}

/* ---- rewrite --------------------------------------------------------------------------- */

/* snapshot.c: a BGSAVE waits while our child runs. */
int kv_aof_child_active(void) { return A.child > 0; }

static int rewrite_start(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        kv_log_warning("Can't rewrite append only file in background: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        signal(SIGTERM, SIG_DFL);
        int fd = open(A.tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || kv_aof_write_keyspace(A.db, fd) != 0 || fdatasync(fd) != 0) {
            kv_log_warning("AOF rewrite of %s failed: %s", A.tmp, strerror(errno));
            _exit(1);
        }
        close(fd);
        _exit(0);
    }
    A.child = pid;
    A.rw_scheduled = 0;
    A.rw_start_ms = kv_time_mono_ms();
    A.rbuf.len = 0;
    kv_log_notice("Background append only file rewriting started by pid %d", (int) pid);
    return 0;
}

static void rewrite_failed(const char *why)
{
    kv_log_warning("Background AOF rewrite of %s failed: %s", A.path, why);
    unlink(A.tmp);
    kv_aof_buf_free(&A.rbuf);
    A.rw_last_ok = 0;
    A.rw_fail_consec++;
}

/* The child wrote the image into tmp: append what was logged since, then
 * swap the files. Everything logged so far is in the new file, durable. */
static void rewrite_finish(void)
{
    int fd = open(A.tmp, O_WRONLY);
    off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    size_t done = 0;
    while (end >= 0 && done < A.rbuf.len) {
        ssize_t w = pwrite(fd, A.rbuf.p + done, A.rbuf.len - done, end + (off_t) done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t) w;
    }
    if (end < 0 || done < A.rbuf.len || fdatasync(fd) != 0 || rename(A.tmp, A.path) != 0) {
        char why[128];
        snprintf(why, sizeof why, "%s", strerror(errno ? errno : ENOSPC));
        if (fd >= 0) close(fd);
        rewrite_failed(why);
        return;
    }
    fsync_dir();
    pthread_mutex_lock(&A.mu);
    close(A.fd);
    A.fd = fd;
    A.synced_seq = atomic_load(&A.written_seq);
    pthread_mutex_unlock(&A.mu);
    A.off = A.base_size = (uint64_t) end + A.rbuf.len;
    A.buf.len = 0;              /* all of it is in rbuf: written */
    kv_aof_buf_free(&A.rbuf);
    clear_error();
    A.rw_last_ok = 1;
    A.rw_fail_consec = 0;
    A.rw_count++;
    A.rw_last_sec = (long long) ((kv_time_mono_ms() - A.rw_start_ms) / 1000);
    kv_log_notice("Background AOF rewrite finished successfully (%s, %llu bytes)", A.path,
                  (unsigned long long) A.off);
}

static int snapshot_busy(void) { return kv_snapshot_child_active && kv_snapshot_child_active(); }

static void cron_cb(uv_timer_t *t)
{
    (void) t;
    int e = atomic_exchange(&A.fsync_errno, 0);
    if (e) set_error(e);
    if (kv_aof_write_error) {   /* retry: the disk may have room again */
        if (A.buf.len) write_buf(0);
        else if (fdatasync(A.fd) == 0) clear_error();
        if (A.buf.len == 0) release_held();
    }
    if (A.child > 0) {
        int st;
        pid_t r = waitpid(A.child, &st, WNOHANG);
        if (r == A.child) {
            A.child = 0;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) rewrite_finish();
            else rewrite_failed(WIFSIGNALED(st) ? "the child was killed by a signal" : "the child failed");
            if (A.buf.len == 0) release_held();
        }
        return;
    }
    if (snapshot_busy()) return;
    const kv_conf_t *conf = A.srv->conf;
    uint64_t base = A.base_size ? A.base_size : 1;
    if (A.rw_scheduled ||
        (conf->aof_rewrite_percentage && A.off > conf->aof_rewrite_min_size &&
         (A.off - base) * 100 / base >= conf->aof_rewrite_percentage && A.rw_fail_consec < 3)) {
        if (!A.rw_scheduled)
            kv_log_notice("Starting automatic rewriting of AOF on %llu%% growth",
                          (unsigned long long) ((A.off - base) * 100 / base));
        if (rewrite_start() != 0) A.rw_fail_consec++;
    }
}

static void bgrewriteaof_cmd(kv_client_t *c)
{
    if (!A.on) {
        kv_reply_error_cstr(&c->out, "AOF is disabled (persistence.aof.enabled: false)");
    } else if (A.child > 0) {
        kv_reply_error_cstr(&c->out, "Background append only file rewriting already in progress");
    } else if (snapshot_busy()) {
        A.rw_scheduled = 1;
        kv_reply_status(&c->out, "Background append only file rewriting scheduled");
    } else if (rewrite_start() == 0) {
        kv_reply_status(&c->out, "Background append only file rewriting started");
    } else {
        kv_reply_error_cstr(&c->out, "Can't execute an AOF background rewriting. "
                                     "Please check the server logs for more information.");
    }
}

/* Every shard answered +...: "scheduled" if any shard only scheduled it. */
static void bgrewriteaof_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    (void) len;
    for (int i = 0; i < nparts; i++)
        if (strstr(flat[i], "scheduled")) {
            kv_reply_status(out, "Background append only file rewriting scheduled");
            return;
        }
    kv_reply_status(out, "Background append only file rewriting started");
}

const kv_cmd_t kv_aof_cmds[] = {
    { "bgrewriteaof", 1, KV_CMD_ADMIN | KV_CMD_NOSCRIPT, 0, 0, 0, KV_ROUTE_ALL, bgrewriteaof_cmd, "server",
      "1.0.0", "Asynchronously rewrite the append-only file", bgrewriteaof_combine },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};

/* ---- start / stop ---------------------------------------------------------------------------- */

int kv_aof_start(kv_server_t *srv, uv_loop_t *loop, int shard)
{
    const kv_conf_t *conf = srv->conf;
    char err[1024];
    if (!conf->aof_enabled) return 0;
    paths(conf, shard);
    if (!A.loaded && kv_aof_load(srv->db, conf, shard, err, sizeof err) != 0) {
        kv_log_warning("%s", err);
        return -1;
    }
    A.srv = srv, A.db = srv->db, A.loop = loop, A.shard = shard;
    unlink(A.tmp);              /* a rewrite of a previous incarnation */
    A.fd = open(A.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (A.fd < 0 || fstat(A.fd, &st) != 0) {
        kv_log_warning("cannot open the append only file %s: %s", A.path, strerror(errno));
        return -1;
    }
    if (st.st_size == 0) {      /* new: start from the keyspace we have */
        if (kv_aof_write_keyspace(A.db, A.fd) != 0 || fdatasync(A.fd) != 0 || fstat(A.fd, &st) != 0) {
            kv_log_warning("cannot write the append only file %s: %s", A.path, strerror(errno));
            if (ftruncate(A.fd, 0) != 0) { /* nothing more to do */ }
            return -1;
        }
        fsync_dir();
        kv_log_notice("created the append only file %s (%lld bytes)", A.path, (long long) st.st_size);
    }
    A.off = A.base_size = (uint64_t) st.st_size;
    A.on = 1;
    kv_fwd_set_propagate(propagate);
    A.db->on_expired = on_expired;
    uv_check_init(loop, &A.check);
    uv_check_start(&A.check, check_cb);
    uv_unref((uv_handle_t *) &A.check);
    uv_idle_init(loop, &A.idle);
    uv_unref((uv_handle_t *) &A.idle);
    uv_timer_init(loop, &A.cron);
    uv_timer_start(&A.cron, cron_cb, CRON_MS, CRON_MS);
    uv_unref((uv_handle_t *) &A.cron);
    A.th_stop = 0;
    A.th_on = pthread_create(&A.th, NULL, fsync_thread, NULL) == 0;
    return 0;
}

void kv_aof_stop(void)
{
    if (!A.on) return;
    if (A.child > 0) {          /* as Redis at shutdown: kill the rewrite */
        kill(A.child, SIGKILL);
        waitpid(A.child, NULL, 0);
        A.child = 0;
        unlink(A.tmp);
    }
    if (A.buf.len && write_buf(1) != 0)
        kv_log_warning("the last %zu bytes of the AOF could not be written", A.buf.len);
    else if (fdatasync(A.fd) != 0)
        kv_log_warning("fsync of the AOF %s failed: %s", A.path, strerror(errno));
    if (A.th_on) {
        pthread_mutex_lock(&A.mu);
        A.th_stop = 1;
        pthread_cond_signal(&A.cv);
        pthread_mutex_unlock(&A.mu);
        pthread_join(A.th, NULL);
        A.th_on = 0;
    }
    kv_fwd_set_propagate(NULL);
    A.on = 0;
    uv_close((uv_handle_t *) &A.check, NULL);
    uv_close((uv_handle_t *) &A.idle, NULL);
    uv_close((uv_handle_t *) &A.cron, NULL);
    uv_run(A.loop, UV_RUN_NOWAIT);
    close(A.fd);
    A.fd = -1;
}

/* ---- INFO ---------------------------------------------------------------------------------------- */

void kv_aof_info(void *sbuf, int part)
{
    kv_sbuf_t *b = sbuf;
    if (part == 0) {
        kv_sbuf_printf(b,
                       "aof_enabled:%d\r\naof_rewrite_in_progress:%d\r\naof_rewrite_scheduled:%d\r\n"
                       "aof_last_rewrite_time_sec:%lld\r\naof_current_rewrite_time_sec:%lld\r\n"
                       "aof_last_bgrewrite_status:%s\r\naof_rewrites:%lld\r\n"
                       "aof_rewrites_consecutive_failures:%lld\r\naof_last_write_status:%s\r\n"
                       "aof_last_cow_size:0\r\n",
                       A.on, A.child > 0, A.rw_scheduled, A.rw_last_sec,
                       A.child > 0 ? (long long) ((kv_time_mono_ms() - A.rw_start_ms) / 1000) : -1LL,
                       A.rw_last_ok ? "ok" : "err", A.rw_count, A.rw_fail_consec,
                       kv_aof_write_error ? "err" : "ok");
        return;
    }
    if (!A.on) return;
    kv_sbuf_printf(b,
                   "aof_current_size:%llu\r\naof_base_size:%llu\r\naof_pending_rewrite:%d\r\n"
                   "aof_buffer_length:%zu\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
                   (unsigned long long) A.off, (unsigned long long) A.base_size, A.rw_scheduled, A.buf.len);
}
