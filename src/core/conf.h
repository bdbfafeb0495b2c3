/*
 * The configuration: one YAML file (libyaml) read into one typed struct.
 * Every key has a type, a default, a range and a reload class, all in the
 * schema table in conf.c, which is the single source of truth for loading,
 * `-o` overrides, reload diffs and the annotated conf/kevy.yaml.
 */
#ifndef KV_CORE_CONF_H
#define KV_CORE_CONF_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "event/segment.h"

#define KV_LISTEN_MAX  16
#define KV_ADDR_TEXT   280
#define KV_PASS_MAX    512            /* bytes of requirepass, with the NUL */

typedef enum { KV_ADDR_TCP = 0, KV_ADDR_UNIX } kv_addr_kind_e;

typedef struct {
    int  kind;                  /* kv_addr_kind_e                          */
    char host[64];              /* TCP: numeric IPv4/IPv6 or "localhost"   */
    int  port;                  /* TCP                                     */
    char path[108];             /* unix: sun_path                          */
    char text[KV_ADDR_TEXT];    /* as written, for messages                */
} kv_addr_t;

typedef enum { KV_CPU_AUTO = 0, KV_CPU_OFF, KV_CPU_LIST } kv_cpu_mode_e;

/* persistence.aof.fsync, Redis's appendfsync */
typedef enum { KV_FSYNC_ALWAYS = 0, KV_FSYNC_EVERYSEC, KV_FSYNC_NO } kv_fsync_e;

#define KV_SAVE_POINTS_MAX 16

/* A snapshot save point: after `seconds` if at least `changes` writes. */
typedef struct {
    uint64_t seconds;
    uint64_t changes;
} kv_save_point_t;

/* How keys map to shards (shard/route.h). */
typedef enum { KV_ROUTING_HASH = 0, KV_ROUTING_SLOTS } kv_routing_e;

/* Log levels, Redis's names and order. */
typedef enum { KV_LOG_DEBUG = 0, KV_LOG_VERBOSE, KV_LOG_NOTICE, KV_LOG_WARNING } kv_log_level_e;

typedef struct {
    char     file[PATH_MAX];            /* absolute path of the config file */
    kv_addr_t listen[KV_LISTEN_MAX];
    int      nlisten;
    int      shards;                    /* resolved; never "auto" here      */
    int      routing;                   /* kv_routing_e                     */
    int      cpu_mode;                  /* kv_cpu_mode_e                    */
    int      cpus[KV_SHARDS_MAX];       /* with KV_CPU_LIST                 */
    int      ncpus;
    char     dir[PATH_MAX];
    char     pid_file[PATH_MAX];
    int      daemonize;
    uint64_t shutdown_timeout_ms;
    char     log_file[PATH_MAX];        /* "stderr" or an absolute path     */
    int      log_level;                 /* kv_log_level_e                   */
    kv_addr_t admin_listen;             /* text "" when disabled            */
    uint64_t ring_size;
    uint64_t ring_spin_us;
    /* limits.* (Redis's maxclients, timeout, proto-max-bulk-len,
     * client-query-buffer-limit; output_buffer_limit is the hard limit of
     * Redis's client-output-buffer-limit for normal clients). */
    uint64_t maxclients;                /* over all workers together        */
    uint64_t timeout_s;                 /* idle seconds; 0 = never          */
    uint64_t proto_max_bulk_len;
    uint64_t client_query_buffer_limit;
    uint64_t output_buffer_limit;       /* bytes of unsent replies; 0 = none */
    char     requirepass[KV_PASS_MAX];  /* security.requirepass; "" = none  */
    uint64_t hz;                        /* expiry.hz, 1..500                */
    int      aof_enabled;               /* persistence.aof.enabled          */
    int      aof_fsync;                 /* kv_fsync_e                       */
    uint64_t aof_rewrite_percentage;    /* persistence.aof.auto_rewrite_percentage */
    uint64_t aof_rewrite_min_size;      /* persistence.aof.auto_rewrite_min_size */
    kv_save_point_t save[KV_SAVE_POINTS_MAX];   /* persistence.snapshot.save */
    int      nsave;
} kv_conf_t;

/* An override from the command line: `-o path.to.key=value`. */
typedef struct {
    const char *text;
} kv_conf_override_t;

/*
 * Load FILE, then apply the overrides in order, then validate. On error
 * returns -1 and writes one line "FILE:LINE:COL: what is wrong" (or
 * "-o KEY=VALUE: what is wrong") into err. Nothing is started or written.
 */
int kv_conf_load(kv_conf_t *conf, const char *file,
                 const kv_conf_override_t *ov, int nov,
                 char *err, size_t errlen);

/* Call cb for every key whose value differs between a and b; reloadable
 * tells whether SIGHUP applies it or it needs a restart. */
typedef void (*kv_conf_change_cb)(const char *key, int reloadable, void *data);
void kv_conf_diff(const kv_conf_t *a, const kv_conf_t *b,
                  kv_conf_change_cb cb, void *data);

/* Copy into dst what a reload (SIGHUP) applies from fresh: the log level
 * and file, shutdown_timeout, limits.*, security.requirepass,
 * persistence.aof.fsync and rewrite thresholds, hz. The master keeps its
 * copy current with it too, so a worker respawned later starts from the
 * reloaded values. */
void kv_conf_apply_reloadable(kv_conf_t *dst, const kv_conf_t *fresh);

/* Parse "host:port", "[v6]:port", "unix:/path". 0 or -1 with err. */
int kv_conf_parse_addr(const char *s, kv_addr_t *a, char *err, size_t errlen);

/* Parse "512mb", "1gb", "4096", "1k" (Redis's units); -1 when malformed. */
int kv_conf_parse_size(const char *s, uint64_t *out);

/* Parse "10s", "500ms", "2m", "1h", "30" (seconds); -1 when malformed. */
int kv_conf_parse_duration(const char *s, uint64_t *out_ms);

/* The CPU worker k is pinned to, or -1 when not pinned. */
int kv_conf_worker_cpu(const kv_conf_t *conf, int k);

#endif
