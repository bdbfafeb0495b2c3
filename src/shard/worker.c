/*
 * The worker process cycle: pin, open the inherited listeners on a fresh
 * libuv loop, serve, beat the heartbeat, and stop on the master's signal.
 *
 *   SIGTERM: stop accepting, answer what was already read, flush, exit.
 *   SIGQUIT: stop accepting, let clients finish for up to
 *            shutdown_timeout, then as SIGTERM.
 *   SIGHUP:  re-read the reloadable settings (the master validated them).
 *   SIGUSR1: reopen the log file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"
#include "core/process.h"
#include "core/time.h"
#include "persist/snapshot.h"
#include "persist/aof.h"
#include "shard/cmd.h"
#include "shard/conn.h"
#include "shard/db.h"
#include "shard/forward.h"
#include "shard/route.h"
#include "shard/cmd_server.h"
#include "shard/worker.h"

#define HEARTBEAT_MS 100
#define DEFAULT_HZ   10

/* The AOF module's replay, when it is linked in (persist/aof.c). */
int kv_aof_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen) __attribute__((weak));

typedef struct {
    const kv_worker_args_t *args;
    uv_loop_t       loop;
    kv_shard_ctl_t *ctl;
    kv_server_t     server;
    uv_signal_t     sigs[4];
    uv_timer_t      heartbeat;
    uv_timer_t      cron;           /* keyspace housekeeping at hz        */
    int             hz;
    uv_timer_t      stop_timer;
    uv_stream_t    *listeners[KV_LISTEN_MAX];
    int             nlisteners;
    int             stopping;
} worker_t;

static void free_on_close(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *listener, int status)
{
    worker_t *w = listener->data;
    if (status < 0) {
        kv_log_warning("accept: %s", uv_strerror(status));
        return;
    }
    kv_conn_accept(&w->server, listener);
}

/* ring.spin_us, unless this worker shares its CPU with another one: a
 * worker spinning for a reply would then take the CPU the peer needs to
 * produce it (docs/rings.md). */
static uint32_t spin_us(const kv_worker_args_t *args)
{
    const kv_conf_t *conf = args->conf;
    int shared = 0;
    if (args->cpu >= 0) {
        for (int j = 0; j < conf->shards && !shared; j++)
            shared = j != args->id && kv_conf_worker_cpu(conf, j) == args->cpu;
    } else {
        shared = conf->shards > (int) sysconf(_SC_NPROCESSORS_ONLN);
    }
    if (shared && conf->ring_spin_us) kv_log_verbose("worker %d shares its CPU: ring.spin_us 0", args->id);
    return shared ? 0 : (uint32_t) conf->ring_spin_us;
}

static int open_listeners(worker_t *w)
{
    kv_listeners_t *ls = w->args->listeners;
    for (int i = 0; i < ls->n; i++) {
        int fd = kv_listen_fd(ls, i, w->args->id);
        uv_stream_t *s;
        int rc;
        if (ls->l[i].addr.kind == KV_ADDR_UNIX) {
            uv_pipe_t *p = malloc(sizeof(*p));
            uv_pipe_init(&w->loop, p, 0);
            rc = uv_pipe_open(p, fd);
            s = (uv_stream_t *) p;
        } else {
            uv_tcp_t *t = malloc(sizeof(*t));
            uv_tcp_init(&w->loop, t);
            rc = uv_tcp_open(t, fd);
            s = (uv_stream_t *) t;
        }
        s->data = w;
        w->listeners[w->nlisteners++] = s;
        if (rc == 0) rc = uv_listen(s, 511, on_connection);
        if (rc != 0) {
            kv_log_warning("cannot listen on %s: %s", ls->l[i].addr.text, uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void close_listeners(worker_t *w)
{
    /* The fds are the master's too; closing ours leaves its copies open. */
    for (int i = 0; i < w->nlisteners; i++) uv_close((uv_handle_t *) w->listeners[i], free_on_close);
    w->nlisteners = 0;
}

static void heartbeat_cb(uv_timer_t *t)
{
    worker_t *w = t->data;
    atomic_store(&w->ctl->heartbeat_ms, kv_time_mono_ms());
    kv_server_publish_stats(&w->server);
    if (getppid() == 1) {             /* orphaned despite PDEATHSIG */
        kv_log_warning("the master is gone; stopping");
        raise(SIGTERM);
    }
}

static void cron_cb(uv_timer_t *t)
{
    worker_t *w = t->data;
    kv_db_cron(w->server.db, w->hz);
    int hz = (int) w->args->conf->hz;       /* CONFIG SET hz, reload */
    if (hz > 0 && hz != w->hz) {
        w->hz = hz;
        uv_timer_start(&w->cron, cron_cb, 1000 / (uint64_t) hz, 1000 / (uint64_t) hz);
    }
}

static void close_all(worker_t *w)
{
    kv_fwd_stop();
    uv_close((uv_handle_t *) &w->cron, NULL);
    for (int i = 0; i < 4; i++) uv_close((uv_handle_t *) &w->sigs[i], NULL);
    uv_close((uv_handle_t *) &w->heartbeat, NULL);
    uv_close((uv_handle_t *) &w->stop_timer, NULL);
}

/* kv_server_t calls this when its last connection is gone while stopping. */
static void on_drained(kv_server_t *s)
{
    worker_t *w = s->data;
    if (w->stopping) close_all(w);
}

static void stop_now(worker_t *w)
{
    w->stopping = 2;
    uv_timer_stop(&w->stop_timer);
    kv_server_shutdown(&w->server);     /* calls on_drained when empty */
}

static void stop_timer_cb(uv_timer_t *t) { stop_now(t->data); }

static void reload_settings(worker_t *w)
{
    kv_conf_t *fresh = malloc(sizeof(*fresh));
    char err[1024];
    if (!fresh) return;
    if (kv_conf_load(fresh, w->args->conf_path, w->args->ov, w->args->nov, err, sizeof(err)) == 0) {
        if (strcmp(fresh->log_file, w->args->conf->log_file) != 0)
            kv_log_open(fresh->log_file, fresh->log_level, err, sizeof(err));
        kv_log_set_level(fresh->log_level);
        /* limits.*, security.requirepass: read by conn.c at every use, so
         * copying them applies them to new and existing clients alike
         * (clients already authenticated stay so, as with Redis's CONFIG
         * SET requirepass); persistence.aof.* except enabled: read by
         * persist/aof.c at every use. */
        kv_conf_t *conf = w->args->conf;
        int hz = (int) conf->hz;
        kv_conf_apply_reloadable(conf, fresh);
        if ((int) fresh->hz != hz) {
            w->hz = (int) fresh->hz;
            uv_timer_start(&w->cron, cron_cb, 1000 / (uint64_t) w->hz, 1000 / (uint64_t) w->hz);
        }
    }
    free(fresh);
}

static void signal_cb(uv_signal_t *h, int sig)
{
    worker_t *w = h->data;
    switch (sig) {
    case SIGTERM:
        if (w->stopping == 2) return;
        close_listeners(w);
        stop_now(w);
        break;
    case SIGQUIT:
        if (w->stopping) return;
        w->stopping = 1;
        close_listeners(w);
        uv_timer_start(&w->stop_timer, stop_timer_cb, w->args->conf->shutdown_timeout_ms, 0);
        if (w->server.nconns == 0) stop_now(w);
        break;
    case SIGHUP:
        reload_settings(w);
        break;
    case SIGUSR1:
        kv_log_reopen();
        break;
    }
}

int kv_worker_main(const kv_worker_args_t *args)
{
    static worker_t W;
    worker_t *w = &W;
    char title[32];
    static const int sigs[4] = { SIGTERM, SIGQUIT, SIGHUP, SIGUSR1 };

    memset(w, 0, sizeof(*w));
    w->args = args;
    w->ctl = &args->seg->shard[args->id];

    snprintf(title, sizeof(title), "W%d", args->id);
    kv_log_set_role(title);
    snprintf(title, sizeof(title), "kevy: worker %d", args->id);
    kv_proctitle_set(title);
    /* Ctrl-C reaches the whole process group; the master decides. */
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    if (kv_pin_cpu(args->cpu) != 0) {
        kv_log_warning("cannot pin worker %d to CPU %d; running unpinned", args->id, args->cpu);
        atomic_store(&w->ctl->cpu, -1);
    }

    uv_loop_init(&w->loop);
    for (int i = 0; i < 4; i++) {
        uv_signal_init(&w->loop, &w->sigs[i]);
        w->sigs[i].data = w;
        uv_signal_start(&w->sigs[i], signal_cb, sigs[i]);
    }
    uv_timer_init(&w->loop, &w->heartbeat);
    uv_timer_init(&w->loop, &w->stop_timer);
    w->heartbeat.data = w->stop_timer.data = w;

    kv_cmd_init();
    kv_server_init(&w->server, &w->loop, w->ctl, args->conf);
    w->server.data = w;
    w->server.shard = args->id;
    w->server.nshards = args->conf->shards;
    w->server.on_drained = on_drained;
    w->server.seg = args->seg;
    kv_config_restore(&w->server);      /* a respawn: as configured before */

    if (!w->server.db) w->server.db = kv_db_new();
    w->hz = args->conf->hz > 0 ? (int) args->conf->hz : DEFAULT_HZ;
    uv_timer_init(&w->loop, &w->cron);
    w->cron.data = w;
    uv_timer_start(&w->cron, cron_cb, 1000 / (uint64_t) w->hz, 1000 / (uint64_t) w->hz);
    kv_route_init(args->conf->shards, args->conf->routing);

    /* Load: snapshot, then the AOF (when the AOF module is linked in).
     * Peers' requests meanwhile get -LOADING (forward.c checks for UP);
     * clients queue in the listen backlog. A bad file stops this shard
     * for good (FAILED, exit FATAL: the master backs off), the reason
     * goes into the control block for /healthz; other shards serve. */
    {
        char err[1024];
        int rc;
        atomic_store(&w->ctl->state, KV_SHARD_LOADING);
        atomic_store(&w->ctl->heartbeat_ms, kv_time_mono_ms());
        rc = kv_snapshot_load(w->server.db, args->conf, args->id, err, sizeof(err));
        if (rc == 0 && kv_aof_load) rc = kv_aof_load(w->server.db, args->conf, args->id, err, sizeof(err));
        if (rc != 0) {
            const char *why = err;
            size_t dl = strlen(args->conf->dir);
            if (dl && !strncmp(why, args->conf->dir, dl) && why[dl] == '/') why += dl + 1;
            kv_log_warning("shard %d: %s", args->id, err);
            snprintf(w->ctl->reason, sizeof(w->ctl->reason), "%.*s", (int) sizeof(w->ctl->reason) - 1, why);
            atomic_store(&w->ctl->state, KV_SHARD_FAILED);
            return KV_WORKER_EXIT_FATAL;
        }
        w->ctl->reason[0] = '\0';
        kv_snapshot_start(&w->loop, w->server.db, args->conf, args->id, (int64_t) w->server.start_unix_ms);
    }

    if (kv_fwd_start(&w->server, &w->loop, args->seg, args->id, spin_us(args)) != 0)
        return KV_WORKER_EXIT_FATAL;
    /* AOF: append after the load, before serving (persist/aof.h) */
    if (kv_aof_start(&w->server, &w->loop, args->id) != 0) return KV_WORKER_EXIT_FATAL;
    if (open_listeners(w) != 0) return KV_WORKER_EXIT_FATAL;

    atomic_store(&w->ctl->heartbeat_ms, kv_time_mono_ms());
    uv_timer_start(&w->heartbeat, heartbeat_cb, HEARTBEAT_MS, HEARTBEAT_MS);
    atomic_store(&w->ctl->state, KV_SHARD_UP);
    kv_log_verbose("worker %d ready on cpu %d", args->id, args->cpu);

    uv_run(&w->loop, UV_RUN_DEFAULT);
    kv_aof_stop();                      /* final AOF write + fsync */
    kv_snapshot_shutdown((int) atomic_load(&args->seg->shutdown_save));  /* as Redis at SIGTERM */
    uv_run(&w->loop, UV_RUN_NOWAIT);

    atomic_store(&w->ctl->state, KV_SHARD_DOWN);
    uv_loop_close(&w->loop);
    kv_log_verbose("worker %d exiting", args->id);
    return KV_WORKER_EXIT_OK;
}
