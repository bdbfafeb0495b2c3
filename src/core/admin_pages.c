/*
 * The admin endpoint's pages: /healthz, /metrics (Prometheus text format)
 * and /status (JSON), rendered from one snapshot of the shared segment.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/admin_int.h"
#include "core/time.h"

/* ---- reading the segment ---------------------------------------------- */

static const char *state_name(uint32_t s)
{
    switch (s) {
    case KV_SHARD_DOWN:     return "down";
    case KV_SHARD_STARTING: return "starting";
    case KV_SHARD_LOADING:  return "loading";
    case KV_SHARD_UP:       return "up";
    case KV_SHARD_FAILED:   return "failed";
    default:                return "unknown";
    }
}

/* 0 for "never" (then == 0) and for a clock read racing a later store. */
static uint64_t age(uint64_t now, uint64_t then) { return then && now > then ? now - then : 0; }

/* Load every shard's counters once, so all sections of one response agree.
 * Returns how many shards are not healthy. */
static unsigned snapshot(kv_admin_t *a, uint64_t now)
{
    unsigned down = 0;
    for (uint32_t i = 0; i < a->nshards; i++) {
        kv_shard_ctl_t *c = &a->seg->shard[i];
        shard_snap_t *s = &a->snap[i];
        uint64_t hb = atomic_load(&c->heartbeat_ms);
        s->state = atomic_load(&c->state);
        s->generation = atomic_load(&c->generation);
        s->restarts = atomic_load(&c->restarts);
        s->pid = atomic_load(&c->pid);
        s->cpu = atomic_load(&c->cpu);
        s->started_ms = atomic_load(&c->started_ms);
        s->clients = atomic_load(&c->clients);
        s->commands = atomic_load(&c->commands);
        s->backlog = atomic_load(&c->ring_backlog);
        s->has_hb = hb != 0;
        s->age_ms = age(now, hb);
        s->healthy = s->state == KV_SHARD_UP && s->has_hb && s->age_ms <= a->hb_timeout_ms;
        down += !s->healthy;
    }
    return down;
}

static const char *reason_of(kv_admin_t *a, uint32_t i)
{
    /* The worker's own word (e.g. a corrupt snapshot) comes first. */
    static char ctl_reason[sizeof(((kv_shard_ctl_t *) 0)->reason)];
    memcpy(ctl_reason, a->seg->shard[i].reason, sizeof(ctl_reason));
    ctl_reason[sizeof(ctl_reason) - 1] = '\0';
    if (ctl_reason[0]) return ctl_reason;
    return a->reason && a->reason[i][0] ? a->reason[i] : NULL;
}

/* ---- the three pages -------------------------------------------------- */

int kv_admin_render_healthz(kv_admin_t *a, kv_http_buf_t *b, const char **ctype)
{
    unsigned down = snapshot(a, kv_time_mono_ms());
    int stopping = atomic_load(&a->seg->stopping) != 0;
    if (down == 0 && !stopping && a->nshards > 0) {
        kv_http_buf_puts(b, "ok\n");
        return 200;
    }
    *ctype = "application/json";
    kv_http_buf_printf(b, "{\"status\":\"%s\",\"down\":[", stopping ? "stopping" : "down");
    const char *sep = "";
    for (uint32_t i = 0; i < a->nshards; i++) {
        shard_snap_t *s = &a->snap[i];
        if (s->healthy)
            continue;
        kv_http_buf_printf(b, "%s{\"shard\":%" PRIu32 ",\"state\":\"%s\",\"heartbeat_age_ms\":", sep, i,
                  state_name(s->state));
        if (s->has_hb)
            kv_http_buf_printf(b, "%" PRIu64, s->age_ms);
        else
            kv_http_buf_puts(b, "null");
        if (reason_of(a, i)) {
            kv_http_buf_puts(b, ",\"reason\":");
            kv_http_buf_json_str(b, reason_of(a, i));
        }
        kv_http_buf_puts(b, "}");
        sep = ",";
    }
    kv_http_buf_puts(b, "]}\n");
    return 503;
}

static void metric_head(kv_http_buf_t *b, const char *name, const char *type, const char *help)
{
    kv_http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One family, every shard: Prometheus wants a family's samples together. */
enum { F_UP, F_RESTARTS, F_PID, F_CPU, F_HB_AGE, F_CLIENTS, F_COMMANDS, F_BACKLOG, F_GEN, F_N };

static const struct {
    const char *name, *type, *help;
} families[F_N] = {
    [F_UP] = {"kevy_shard_up", "gauge", "1 when the shard is serving and its heartbeat is fresh, else 0."},
    [F_RESTARTS] = {"kevy_shard_restarts_total", "counter", "Times the shard's worker was respawned since the master started."},
    [F_PID] = {"kevy_shard_pid", "gauge", "Process id of the shard's worker, 0 when none."},
    [F_CPU] = {"kevy_shard_cpu", "gauge", "CPU the shard's worker is pinned to, -1 when not pinned."},
    [F_HB_AGE] = {"kevy_shard_heartbeat_age_seconds", "gauge", "Seconds since the worker's last heartbeat (absent before the first)."},
    [F_CLIENTS] = {"kevy_shard_connected_clients", "gauge", "Client connections the worker holds."},
    [F_COMMANDS] = {"kevy_shard_commands_processed_total", "counter", "Commands the worker has processed."},
    [F_BACKLOG] = {"kevy_shard_ring_backlog_frames", "gauge", "Frames queued locally because a ring was full."},
    [F_GEN] = {"kevy_shard_generation", "gauge", "Incarnation of the shard, bumped on each worker death."},
};

int kv_admin_render_metrics(kv_admin_t *a, kv_http_buf_t *b)
{
    uint64_t now = kv_time_mono_ms();
    snapshot(a, now);

    metric_head(b, "kevy_shards", "gauge", "Number of shards.");
    kv_http_buf_printf(b, "kevy_shards %" PRIu32 "\n", a->nshards);
    metric_head(b, "kevy_master_uptime_seconds", "gauge", "Seconds since the master started.");
    kv_http_buf_puts(b, "kevy_master_uptime_seconds ");
    kv_http_buf_secs(b, age(now, atomic_load(&a->seg->master_start_ms)));
    kv_http_buf_puts(b, "\n");
    if (a->version) {
        metric_head(b, "kevy_build_info", "gauge", "Always 1; the version is in the label.");
        kv_http_buf_puts(b, "kevy_build_info{version=\"");
        kv_http_buf_label(b, a->version);
        kv_http_buf_puts(b, "\"} 1\n");
    }

    for (int f = 0; f < F_N; f++) {
        metric_head(b, families[f].name, families[f].type, families[f].help);
        for (uint32_t i = 0; i < a->nshards; i++) {
            shard_snap_t *s = &a->snap[i];
            if (f == F_HB_AGE && !s->has_hb)
                continue;
            kv_http_buf_printf(b, "%s{shard=\"%" PRIu32 "\"} ", families[f].name, i);
            switch (f) {
            case F_UP:       kv_http_buf_printf(b, "%d", s->healthy); break;
            case F_RESTARTS: kv_http_buf_printf(b, "%" PRIu32, s->restarts); break;
            case F_PID:      kv_http_buf_printf(b, "%" PRId32, s->pid); break;
            case F_CPU:      kv_http_buf_printf(b, "%" PRId32, s->cpu); break;
            case F_HB_AGE:   kv_http_buf_secs(b, s->age_ms); break;
            case F_CLIENTS:  kv_http_buf_printf(b, "%" PRIu64, s->clients); break;
            case F_COMMANDS: kv_http_buf_printf(b, "%" PRIu64, s->commands); break;
            case F_BACKLOG:  kv_http_buf_printf(b, "%" PRIu64, s->backlog); break;
            case F_GEN:      kv_http_buf_printf(b, "%" PRIu32, s->generation); break;
            }
            kv_http_buf_puts(b, "\n");
        }
    }
    return 200;
}

int kv_admin_render_status(kv_admin_t *a, kv_http_buf_t *b)
{
    uint64_t now = kv_time_mono_ms();
    unsigned down = snapshot(a, now);
    int stopping = atomic_load(&a->seg->stopping) != 0;

    kv_http_buf_printf(b, "{\"status\":\"%s\",\"pid\":%ld,\"uptime_seconds\":",
              stopping ? "stopping" : down || a->nshards == 0 ? "down" : "ok", (long)getpid());
    kv_http_buf_secs(b, age(now, atomic_load(&a->seg->master_start_ms)));
    kv_http_buf_puts(b, ",\"version\":");
    kv_http_buf_json_str(b, a->version);
    kv_http_buf_puts(b, ",\"conf_file\":");
    kv_http_buf_json_str(b, a->conf_path);
    kv_http_buf_printf(b, ",\"heartbeat_timeout_ms\":%" PRIu64 ",\"nshards\":%" PRIu32 ",\"shards\":[",
              a->hb_timeout_ms, a->nshards);
    for (uint32_t i = 0; i < a->nshards; i++) {
        shard_snap_t *s = &a->snap[i];
        kv_http_buf_printf(b,
                  "%s{\"shard\":%" PRIu32 ",\"state\":\"%s\",\"healthy\":%s,\"pid\":%" PRId32
                  ",\"cpu\":%" PRId32 ",\"generation\":%" PRIu32 ",\"restarts\":%" PRIu32,
                  i ? "," : "", i, state_name(s->state), s->healthy ? "true" : "false", s->pid,
                  s->cpu, s->generation, s->restarts);
        kv_http_buf_puts(b, ",\"heartbeat_age_ms\":");
        if (s->has_hb)
            kv_http_buf_printf(b, "%" PRIu64, s->age_ms);
        else
            kv_http_buf_puts(b, "null");
        kv_http_buf_puts(b, ",\"uptime_seconds\":");
        if (s->started_ms && s->pid > 0)
            kv_http_buf_secs(b, age(now, s->started_ms));
        else
            kv_http_buf_puts(b, "null");
        kv_http_buf_printf(b,
                  ",\"clients\":%" PRIu64 ",\"commands\":%" PRIu64 ",\"ring_backlog\":%" PRIu64
                  ",\"reason\":",
                  s->clients, s->commands, s->backlog);
        kv_http_buf_json_str(b, reason_of(a, i));
        kv_http_buf_puts(b, "}");
    }
    kv_http_buf_puts(b, "]}\n");
    return 200;
}

