/*
 * The master process cycle.
 *
 *   RUNNING --SIGHUP--> (re-read, validate, apply or keep) --> RUNNING
 *   RUNNING --SIGCHLD--> reset the dead shard, respawn with backoff
 *   RUNNING --SIGTERM/SIGINT--> STOPPING (workers get SIGTERM)
 *   RUNNING --SIGQUIT--> STOPPING (workers get SIGQUIT: clients finish first)
 *   STOPPING --last worker gone--> cleanup, exit 0
 *   STOPPING --deadline--> SIGKILL the rest, then as above
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "core/admin.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/master.h"
#include "core/process.h"
#include "core/time.h"
#include "core/version.h"
#include "event/segment.h"
#include "persist/layout.h"
#include "shard/worker.h"

#define QUICK_EXIT_MS       1000   /* a worker dying sooner is crash-looping */
#define BACKOFF_FIRST_MS    100
#define BACKOFF_MAX_MS      10000
#define HEARTBEAT_STALE_MS  3000
#define KILL_GRACE_MS       2000   /* after shutdown_timeout, before SIGKILL */

typedef enum { M_RUNNING, M_STOPPING } master_state_e;

typedef struct {
    pid_t      pid;             /* 0 when not running                     */
    int        quick_exits;     /* consecutive exits soon after start     */
    uint64_t   started_ms;
    uv_timer_t respawn;         /* closed at exit; lives in the master    */
} worker_slot_t;

typedef struct {
    master_state_e      state;
    kv_conf_t          *conf;
    const char         *path;
    const kv_conf_override_t *ov;
    int                 nov;
    uv_loop_t           loop;
    kv_segment_t       *seg;
    kv_listeners_t      listeners;
    kv_admin_t         *admin;
    int                 pid_fd;
    int                 exit_status;
    uv_signal_t         signals[6];
    uv_timer_t          stop_timer;
    worker_slot_t       w[KV_SHARDS_MAX];
} master_t;

static master_t M;

static int spawn_worker(master_t *m, int k);

/* ---- workers ---------------------------------------------------------- */

static void close_cb_noop(uv_handle_t *h) { (void) h; }

static void walk_close(uv_handle_t *h, void *arg)
{
    (void) arg;
    if (!uv_is_closing(h)) uv_close(h, close_cb_noop);
}

static int spawn_worker(master_t *m, int k)
{
    int cpu = kv_conf_worker_cpu(m->conf, k);
    kv_shard_ctl_t *ctl = &m->seg->shard[k];
    pid_t master_pid = getpid();

    atomic_store(&ctl->state, KV_SHARD_STARTING);
    atomic_store(&ctl->cpu, cpu);
    atomic_store(&ctl->started_ms, kv_time_mono_ms());
    atomic_store(&ctl->heartbeat_ms, 0);

    pid_t pid = fork();
    if (pid < 0) {
        kv_log_warning("fork() for worker %d failed: %s", k, strerror(errno));
        atomic_store(&ctl->state, KV_SHARD_DOWN);
        return -1;
    }
    if (pid == 0) {
        /* A worker never outlives its master. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master_pid) _exit(1);
        uv_loop_fork(&m->loop);
        uv_walk(&m->loop, walk_close, NULL);
        uv_run(&m->loop, UV_RUN_NOWAIT);
        uv_loop_close(&m->loop);
        if (m->pid_fd >= 0) close(m->pid_fd);
        kv_listen_keep_only(&m->listeners, k);
        kv_worker_args_t args = {
            .id = k, .cpu = cpu, .conf = m->conf, .conf_path = m->path,
            .ov = m->ov, .nov = m->nov, .seg = m->seg, .listeners = &m->listeners,
        };
        _exit(kv_worker_main(&args));
    }
    m->w[k].pid = pid;
    m->w[k].started_ms = kv_time_mono_ms();
    atomic_store(&ctl->pid, pid);
    kv_log_verbose("worker %d started, pid %d, cpu %d", k, (int) pid, cpu);
    return 0;
}

static void respawn_cb(uv_timer_t *t)
{
    master_t *m = t->data;
    int k = (int) (((worker_slot_t *) ((char *) t - offsetof(worker_slot_t, respawn))) - m->w);
    if (m->state != M_RUNNING || m->w[k].pid != 0) return;
    char err[512];
    if (kv_listen_resume(&m->listeners, k, err, sizeof(err)) != 0)
        kv_log_warning("worker %d: cannot reopen its socket: %s", k, err);
    atomic_fetch_add(&m->seg->shard[k].restarts, 1);
    if (spawn_worker(m, k) != 0) uv_timer_start(t, respawn_cb, BACKOFF_MAX_MS, 0);
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

static int live_workers(master_t *m)
{
    int n = 0;
    for (uint32_t k = 0; k < m->seg->nshards; k++) n += m->w[k].pid != 0;
    return n;
}

static void finish(master_t *m);

static void on_worker_exit(master_t *m, int k, int status)
{
    worker_slot_t *w = &m->w[k];
    char how[96];
    uint64_t lived = kv_time_mono_ms() - w->started_ms;
    int pid = (int) w->pid;

    describe_exit(status, how, sizeof(how));
    w->pid = 0;
    atomic_store(&m->seg->shard[k].pid, 0);
    atomic_store(&m->seg->shard[k].clients, 0);
    if (atomic_load(&m->seg->shard[k].state) != KV_SHARD_FAILED)
        atomic_store(&m->seg->shard[k].state, KV_SHARD_DOWN);

    if (m->state == M_STOPPING) {
        kv_log_verbose("worker %d (pid %d) %s", k, pid, how);
        if (live_workers(m) == 0) finish(m);
        return;
    }

    /* Peers must stop talking to the dead incarnation before a new one. */
    kv_segment_shard_reset(m->seg, (uint32_t) k);

    w->quick_exits = lived < QUICK_EXIT_MS ? w->quick_exits + 1 : 0;
    uint64_t delay = 0;
    if (w->quick_exits > 0 || (WIFEXITED(status) && WEXITSTATUS(status) == KV_WORKER_EXIT_FATAL)) {
        int n = w->quick_exits > 0 ? w->quick_exits : 1;
        delay = BACKOFF_FIRST_MS << (n - 1 > 7 ? 7 : n - 1);
        if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
    }
    if (w->quick_exits >= 3)
        kv_log_warning("worker %d %s; it is crash-looping (%d exits within %dms of start), "
                       "next respawn in %llums", k, how, w->quick_exits, QUICK_EXIT_MS,
                       (unsigned long long) delay);
    else
        kv_log_warning("worker %d (pid %d) %s; respawning%s", k, pid, how, delay ? " after a backoff" : "");
    /* Down for a while: its clients should reach the other workers. */
    if (delay >= 1000 || atomic_load(&m->seg->shard[k].state) == KV_SHARD_FAILED)
        kv_listen_suspend(&m->listeners, k);
    uv_timer_start(&w->respawn, respawn_cb, delay, 0);
}

static void reap_children(master_t *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (uint32_t k = 0; k < m->seg->nshards; k++) {
            if (m->w[k].pid == pid) { on_worker_exit(m, (int) k, status); break; }
        }
    }
}

static void signal_workers(master_t *m, int sig)
{
    for (uint32_t k = 0; k < m->seg->nshards; k++)
        if (m->w[k].pid > 0) kill(m->w[k].pid, sig);
}

/* ---- stopping ----------------------------------------------------------- */

static void stop_deadline_cb(uv_timer_t *t)
{
    master_t *m = t->data;
    if (live_workers(m) == 0) return;
    kv_log_warning("workers did not stop within shutdown_timeout; killing them");
    signal_workers(m, SIGKILL);
}

static void begin_stop(master_t *m, int graceful)
{
    if (m->state == M_STOPPING) return;
    m->state = M_STOPPING;
    atomic_store(&m->seg->stopping, 1);
    kv_log_notice("%s: stopping %d workers", graceful ? "graceful shutdown (SIGQUIT)" : "shutdown",
                  live_workers(m));
    for (uint32_t k = 0; k < m->seg->nshards; k++) uv_timer_stop(&m->w[k].respawn);
    signal_workers(m, graceful ? SIGQUIT : SIGTERM);
    /* The kernel keeps accepting into a socket any process still holds:
     * drop the master's copies so that, once the workers close theirs,
     * new clients are refused. */
    kv_listen_close(&m->listeners, 1);
    uint64_t deadline = m->conf->shutdown_timeout_ms + (graceful ? KILL_GRACE_MS : 0);
    uv_timer_start(&m->stop_timer, stop_deadline_cb, deadline, 0);
    if (live_workers(m) == 0) finish(m);
}

static void finish(master_t *m)
{
    kv_listen_close(&m->listeners, 1);
    if (m->pid_fd >= 0) {
        unlink(m->conf->pid_file);
        close(m->pid_fd);
        m->pid_fd = -1;
    }
    if (m->admin) { kv_admin_stop(m->admin); m->admin = NULL; }
    uv_walk(&m->loop, walk_close, NULL);
    kv_log_notice("kevy is now ready to exit, bye bye...");
}

/* ---- reload --------------------------------------------------------------- */

typedef struct { int restart_needed; } reload_ctx_t;

static void report_change(const char *key, int reloadable, void *data)
{
    reload_ctx_t *r = data;
    if (reloadable) {
        kv_log_notice("reload: %s changed", key);
    } else {
        kv_log_warning("reload: %s changed; it takes effect after a restart", key);
        r->restart_needed = 1;
    }
}

static void reload(master_t *m)
{
    char err[1024];
    kv_conf_t *fresh = malloc(sizeof(*fresh));
    if (!fresh) return;
    if (kv_conf_load(fresh, m->path, m->ov, m->nov, err, sizeof(err)) != 0) {
        kv_log_warning("reload failed, keeping the running configuration: %s", err);
        free(fresh);
        return;
    }
    reload_ctx_t r = { 0 };
    kv_conf_diff(m->conf, fresh, report_change, &r);

    if (strcmp(fresh->log_file, m->conf->log_file) != 0 &&
        kv_log_open(fresh->log_file, fresh->log_level, err, sizeof(err)) != 0) {
        kv_log_warning("reload: %s; keeping the old log file", err);
        strcpy(fresh->log_file, m->conf->log_file);
    }
    kv_log_set_level(fresh->log_level);
    kv_conf_apply_reloadable(m->conf, fresh);   /* what a respawned worker starts from */

    if (memcmp(&fresh->admin_listen, &m->conf->admin_listen, sizeof(kv_addr_t)) != 0) {
        kv_admin_t *a = NULL;
        if (fresh->admin_listen.text[0]) {
            if (m->admin) { kv_admin_stop(m->admin); m->admin = NULL; }
            a = kv_admin_start(&m->loop, fresh->admin_listen.text, m->seg, HEARTBEAT_STALE_MS,
                               err, sizeof(err));
            if (!a) kv_log_warning("reload: %s; the admin endpoint is off", err);
        } else if (m->admin) {
            kv_admin_stop(m->admin);
        }
        m->admin = a;
        if (a) kv_admin_set_info(a, KV_VERSION, m->conf->file);
        m->conf->admin_listen = fresh->admin_listen;
    }
    free(fresh);
    /* Workers re-read the reloadable settings they use themselves; a
     * CONFIG SET of one of them made before now is not replayed at a
     * respawn (shard/cmd_config.c). */
    atomic_fetch_add(&m->seg->reloads, 1);
    signal_workers(m, SIGHUP);
    kv_log_notice("configuration reloaded from %s%s", m->path,
                  r.restart_needed ? " (some changes need a restart)" : "");
}

/* ---- signals -------------------------------------------------------------- */

static void signal_cb(uv_signal_t *h, int sig)
{
    master_t *m = h->data;
    switch (sig) {
    case SIGCHLD: reap_children(m); break;
    case SIGTERM:
    case SIGINT:  begin_stop(m, 0); break;
    case SIGQUIT: begin_stop(m, 1); break;
    case SIGHUP:
        if (m->state == M_RUNNING) {
            kv_log_notice("SIGHUP received: reloading %s", m->path);
            reload(m);
        }
        break;
    case SIGUSR1:
        kv_log_reopen();
        signal_workers(m, SIGUSR1);
        kv_log_notice("log file reopened");
        break;
    }
}

static int start_signals(master_t *m)
{
    static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 };
    for (int i = 0; i < 6; i++) {
        uv_signal_init(&m->loop, &m->signals[i]);
        m->signals[i].data = m;
        if (uv_signal_start(&m->signals[i], signal_cb, sigs[i]) != 0) return -1;
    }
    return 0;
}

/* ---- start ------------------------------------------------------------------ */

static int make_dir(const char *dir)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int kv_master_run(kv_conf_t *conf, const char *path, const kv_conf_override_t *ov, int nov)
{
    master_t *m = &M;
    char err[1024];

    memset(m, 0, sizeof(*m));
    m->conf = conf, m->path = path, m->ov = ov, m->nov = nov;
    m->pid_fd = -1;
    signal(SIGPIPE, SIG_IGN);

    if (make_dir(conf->dir) != 0) {
        fprintf(stderr, "kevy: cannot create dir %s: %s\n", conf->dir, strerror(errno));
        return 1;
    }
    if (conf->daemonize && kv_daemonize(err, sizeof(err)) != 0) {
        fprintf(stderr, "kevy: %s\n", err);
        return 1;
    }
    m->pid_fd = kv_pidfile_create(conf->pid_file, err, sizeof(err));
    if (m->pid_fd < 0) {
        fprintf(stderr, "kevy: %s\n", err);
        return 1;
    }
    if (kv_log_open(conf->log_file, conf->log_level, err, sizeof(err)) != 0) {
        fprintf(stderr, "kevy: %s\n", err);
        goto fail_pid;
    }
    kv_log_set_role("M");
    /* The files in dir must match shards and routing before a worker
     * loads them: reshard (crash-safely) if the config changed. */
    if (kv_layout_reconcile(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "kevy: %s\n", err);
        kv_log_warning("%s", err);
        goto fail_pid;
    }
    if (kv_listen_open(&m->listeners, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "kevy: %s\n", err);
        goto fail_pid;
    }
    m->seg = kv_segment_create((uint32_t) conf->shards, conf->ring_size);
    if (!m->seg) {
        fprintf(stderr, "kevy: cannot create the shared segment: %s\n", strerror(errno));
        goto fail_listen;
    }
    atomic_store(&m->seg->master_start_ms, kv_time_mono_ms());

    uv_loop_init(&m->loop);
    if (start_signals(m) != 0) {
        fprintf(stderr, "kevy: cannot install signal handlers\n");
        goto fail_seg;
    }
    if (conf->admin_listen.text[0]) {
        m->admin = kv_admin_start(&m->loop, conf->admin_listen.text, m->seg, HEARTBEAT_STALE_MS,
                                  err, sizeof(err));
        if (!m->admin) {
            fprintf(stderr, "kevy: %s\n", err);
            goto fail_seg;
        }
        kv_admin_set_info(m->admin, KV_VERSION, conf->file);
    }
    uv_timer_init(&m->loop, &m->stop_timer);
    m->stop_timer.data = m;
    for (int k = 0; k < conf->shards; k++) {
        uv_timer_init(&m->loop, &m->w[k].respawn);
        m->w[k].respawn.data = m;
    }

    kv_proctitle_set("kevy: master");
    kv_log_notice("kevy %s starting: %d shards, config %s, pid %d", KV_VERSION, conf->shards,
                  conf->file, (int) getpid());
    for (int i = 0; i < m->listeners.n; i++)
        kv_log_notice("listening on %s", m->listeners.l[i].addr.text);

    m->state = M_RUNNING;
    for (int k = 0; k < conf->shards; k++) {
        if (spawn_worker(m, k) != 0) uv_timer_start(&m->w[k].respawn, respawn_cb, BACKOFF_MAX_MS, 0);
    }

    uv_run(&m->loop, UV_RUN_DEFAULT);
    uv_loop_close(&m->loop);
    kv_segment_destroy(m->seg);
    kv_log_close();
    return m->exit_status;

fail_seg:
    if (m->admin) kv_admin_stop(m->admin);
    uv_walk(&m->loop, walk_close, NULL);
    uv_run(&m->loop, UV_RUN_DEFAULT);
    uv_loop_close(&m->loop);
    kv_segment_destroy(m->seg);
fail_listen:
    kv_listen_close(&m->listeners, 1);
fail_pid:
    unlink(conf->pid_file);
    close(m->pid_fd);
    return 1;
}
