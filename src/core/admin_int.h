/*
 * Internal to the admin endpoint: the state admin.c (connections) and
 * admin_pages.c (the three pages) share.
 */
#ifndef KV_CORE_ADMIN_INT_H
#define KV_CORE_ADMIN_INT_H

#include <stdint.h>
#include <uv.h>

#include "core/admin.h"
#include "core/http.h"

typedef struct kv_admin_conn_s kv_admin_conn_t;

typedef struct {
    uint32_t state, generation, restarts;
    int32_t pid, cpu;
    uint64_t started_ms, clients, commands, backlog, age_ms;
    int has_hb, healthy;
} shard_snap_t;

struct kv_admin_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    kv_segment_t *seg;
    uint32_t nshards;          /* clamped to KV_SHARDS_MAX                */
    uint64_t hb_timeout_ms;
    uint64_t io_timeout_ms;
    int port;
    int stopping;
    unsigned live;             /* open connections (the limit's count)    */
    unsigned handles;          /* handles whose close callback is pending */
    kv_admin_conn_t *conns;    /* every conn not yet freed                */
    char *version, *conf_path;
    char (*reason)[KV_ADMIN_REASON_MAX];
    shard_snap_t snap[KV_SHARDS_MAX]; /* scratch for one request          */
};

/* The pages: body into b; healthz also sets the content type and
 * returns the status code. */
int kv_admin_render_healthz(kv_admin_t *a, kv_http_buf_t *b, const char **ctype);
int kv_admin_render_metrics(kv_admin_t *a, kv_http_buf_t *b);
int kv_admin_render_status(kv_admin_t *a, kv_http_buf_t *b);

#endif
