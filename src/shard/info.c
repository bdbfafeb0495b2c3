/*
 * INFO [section ...]: Redis 7.0's sections and field names, plus kevy's
 * "# Shards" (one line per shard).
 *
 * INFO runs on every shard (route ALL); each writes its own numbers, and
 * kv_info_combine() merges the texts: the fields in `summed` add up
 * (counters, clients, memory, keys), `maxed` take the largest, *_human,
 * *_perc and *_ratio are recomputed from the merged numbers, keyspace
 * lines add keys and expires, and every other field is shard 0's (they
 * are the same everywhere: version, config, ports ...). Lines only some
 * shards have (shardN, a db0 line, an errorstat) are kept. With one shard
 * there is nothing to combine: the shard's text is the reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kv_auto_config.h"
#include "core/conf.h"
#include "core/version.h"
#include "shard/block.h"
#include "shard/block_multi.h"
#include "shard/cmd.h"
#include "shard/cmd_server.h"
#include "persist/snapshot.h"
#include "persist/aof.h"
#include "shard/db.h"

#ifdef KV_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

enum {
    S_SERVER = 1 << 0, S_CLIENTS = 1 << 1, S_MEMORY = 1 << 2, S_PERSISTENCE = 1 << 3, S_STATS = 1 << 4,
    S_REPLICATION = 1 << 5, S_CPU = 1 << 6, S_MODULES = 1 << 7, S_COMMANDSTATS = 1 << 8,
    S_ERRORSTATS = 1 << 9, S_LATENCYSTATS = 1 << 10, S_CLUSTER = 1 << 11, S_KEYSPACE = 1 << 12,
    S_SHARDS = 1 << 13,
};
#define S_DEFAULT (S_SERVER | S_CLIENTS | S_MEMORY | S_PERSISTENCE | S_STATS | S_REPLICATION | S_CPU | \
                   S_MODULES | S_ERRORSTATS | S_CLUSTER | S_KEYSPACE | S_SHARDS)
#define S_ALL (S_DEFAULT | S_COMMANDSTATS | S_LATENCYSTATS)

static const struct { const char *name; unsigned bits; } section_names[] = {
    { "server", S_SERVER }, { "clients", S_CLIENTS }, { "memory", S_MEMORY }, { "persistence", S_PERSISTENCE },
    { "stats", S_STATS }, { "replication", S_REPLICATION }, { "cpu", S_CPU }, { "modules", S_MODULES },
    { "commandstats", S_COMMANDSTATS }, { "errorstats", S_ERRORSTATS }, { "latencystats", S_LATENCYSTATS },
    { "cluster", S_CLUSTER }, { "keyspace", S_KEYSPACE }, { "shards", S_SHARDS }, { "default", S_DEFAULT },
    { "all", S_ALL }, { "everything", S_ALL },
};

/* ---- numbers ------------------------------------------------------------- */

/* Redis's bytesToHuman. */
static void human(char *out, size_t cap, double n)
{
    if (n < 1024) snprintf(out, cap, "%lluB", (unsigned long long) n);
    else if (n < 1024.0 * 1024) snprintf(out, cap, "%.2fK", n / 1024);
    else if (n < 1024.0 * 1024 * 1024) snprintf(out, cap, "%.2fM", n / (1024.0 * 1024));
    else if (n < 1024.0 * 1024 * 1024 * 1024) snprintf(out, cap, "%.2fG", n / (1024.0 * 1024 * 1024));
    else if (n < 1024.0 * 1024 * 1024 * 1024 * 1024) snprintf(out, cap, "%.2fT", n / (1024.0 * 1024 * 1024 * 1024));
    else snprintf(out, cap, "%.2fP", n / (1024.0 * 1024 * 1024 * 1024 * 1024));
}

typedef struct {
    size_t allocated, active, resident, rss;
} mem_t;

static void mem_stats(mem_t *m)
{
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    memset(m, 0, sizeof(*m));
    if (f) {
        long total;
        if (fscanf(f, "%ld %ld", &total, &pages) != 2) pages = 0;
        fclose(f);
    }
    m->rss = (size_t) pages * (size_t) page;
#ifdef KV_HAVE_JEMALLOC
    uint64_t epoch = 1;
    size_t sz = sizeof(epoch);
    mallctl("epoch", &epoch, &sz, &epoch, sz);     /* refresh the stats */
    sz = sizeof(size_t);
    mallctl("stats.allocated", &m->allocated, &sz, NULL, 0);
    mallctl("stats.active", &m->active, &sz, NULL, 0);
    mallctl("stats.resident", &m->resident, &sz, NULL, 0);
#endif
    if (!m->allocated) m->allocated = m->active = m->resident = m->rss;
}

static const char *allocator_name(void)
{
#ifdef KV_HAVE_JEMALLOC
    static char name[64];
    const char *v = NULL;
    size_t sz = sizeof(v);
    if (!name[0]) snprintf(name, sizeof(name), "jemalloc-%s", mallctl("version", &v, &sz, NULL, 0) == 0 && v ? v : "?");
    return name;
#else
    return "libc";
#endif
}

/* ---- one shard's text ------------------------------------------------------ */

#define F(...) kv_sbuf_printf(b, __VA_ARGS__)

static void section(kv_sbuf_t *b, const char *title)
{
    if (b->len) F("\r\n");
    F("# %s\r\n", title);
}

static void server_section(kv_sbuf_t *b, kv_server_t *s, uint64_t now_ms)
{
    static char exe[512];
    struct utsname u;
    const kv_conf_t *conf = s->conf;
    int port = 0;
    uint64_t up = (now_ms - s->start_unix_ms) / 1000;
    if (!exe[0] && readlink("/proc/self/exe", exe, sizeof(exe) - 1) < 0) exe[0] = '\0';
    if (uname(&u) != 0) memset(&u, 0, sizeof(u));
    for (int i = 0; i < conf->nlisten; i++)
        if (conf->listen[i].kind == KV_ADDR_TCP) { port = conf->listen[i].port; break; }
    section(b, "Server");
    F("redis_version:%s\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\n"
      "redis_mode:standalone\r\nkevy_version:%s\r\nos:%s %s %s\r\narch_bits:%d\r\n"
      "monotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\n",
      KV_COMPAT_VERSION, KV_VERSION, u.sysname, u.release, u.machine, (int) (sizeof(void *) * 8));
#ifdef __GNUC__
    F("gcc_version:%d.%d.%d\r\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    F("gcc_version:0.0.0\r\n");
#endif
    /* The server's pid is the master's; the workers' are in # Shards. */
    F("process_id:%d\r\nprocess_supervised:no\r\nrun_id:%08x%032x\r\ntcp_port:%d\r\nserver_time_usec:%llu\r\n"
      "uptime_in_seconds:%llu\r\nuptime_in_days:%llu\r\nhz:%llu\r\nconfigured_hz:%llu\r\nlru_clock:%llu\r\n"
      "executable:%s\r\nconfig_file:%s\r\nio_threads_active:0\r\n",
      (int) getppid(), (unsigned) getppid(), (unsigned) (s->start_unix_ms / 1000), port,
      (unsigned long long) now_ms * 1000, (unsigned long long) up, (unsigned long long) up / 86400,
      (unsigned long long) conf->hz, (unsigned long long) conf->hz,
      (unsigned long long) ((now_ms / 1000) & ((1 << 24) - 1)), exe, conf->file);
}

static void clients_section(kv_sbuf_t *b, kv_server_t *s)
{
    size_t max_in = 0, max_out = 0;
    for (kv_client_t *c = s->clients; c; c = c->next) {
        if (c->qcap > max_in) max_in = c->qcap;
        if (kv_reply_buf_mem(&c->out) > max_out) max_out = kv_reply_buf_mem(&c->out);
    }
    section(b, "Clients");
    F("connected_clients:%llu\r\ncluster_connections:0\r\nmaxclients:%llu\r\n"
      "client_recent_max_input_buffer:%zu\r\nclient_recent_max_output_buffer:%zu\r\nblocked_clients:%d\r\n"
      "tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
      (unsigned long long) s->nconns, (unsigned long long) s->conf->maxclients, max_in, max_out,
      kv_block_nwaiting() + kv_bmulti_nwaits());
}

static void memory_fields(kv_sbuf_t *b, const char *name, double v)
{
    char h[32];
    human(h, sizeof(h), v);
    F("%s:%.0f\r\n%s_human:%s\r\n", name, v, name, h);
}

static void memory_section(kv_sbuf_t *b, kv_server_t *s)
{
    mem_t m;
    size_t dataset = s->db ? kv_db_mem(s->db) : 0, clients = 0;
    long phys = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    char h[32];
    mem_stats(&m);
    if (m.allocated > s->mem_peak) s->mem_peak = m.allocated;
    for (kv_client_t *c = s->clients; c; c = c->next) clients += sizeof(*c) + c->qcap + kv_reply_buf_mem(&c->out);
    size_t overhead = m.allocated > dataset ? m.allocated - dataset : 0;
    section(b, "Memory");
    memory_fields(b, "used_memory", (double) m.allocated);
    memory_fields(b, "used_memory_rss", (double) m.rss);
    memory_fields(b, "used_memory_peak", (double) s->mem_peak);
    F("used_memory_peak_perc:%.2f%%\r\nused_memory_overhead:%zu\r\nused_memory_startup:0\r\n"
      "used_memory_dataset:%zu\r\nused_memory_dataset_perc:%.2f%%\r\n",
      s->mem_peak ? 100.0 * (double) m.allocated / (double) s->mem_peak : 0, overhead, dataset,
      m.allocated ? 100.0 * (double) dataset / (double) m.allocated : 0);
    F("allocator_allocated:%zu\r\nallocator_active:%zu\r\nallocator_resident:%zu\r\n", m.allocated, m.active,
      m.resident);
    human(h, sizeof(h), (double) phys * (double) page);
    F("total_system_memory:%.0f\r\ntotal_system_memory_human:%s\r\n", (double) phys * (double) page, h);
    F("used_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_lua_human:0B\r\nused_memory_scripts_eval:0\r\n"
      "number_of_cached_scripts:0\r\nnumber_of_functions:0\r\nnumber_of_libraries:0\r\n"
      "used_memory_vm_functions:0\r\nused_memory_vm_total:0\r\nused_memory_vm_total_human:0B\r\n"
      "used_memory_functions:0\r\nused_memory_scripts:0\r\nused_memory_scripts_human:0B\r\n"
      "maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n");
    F("allocator_frag_ratio:%.2f\r\nallocator_frag_bytes:%zd\r\nallocator_rss_ratio:%.2f\r\n"
      "allocator_rss_bytes:%zd\r\nrss_overhead_ratio:%.2f\r\nrss_overhead_bytes:%zd\r\n"
      "mem_fragmentation_ratio:%.2f\r\nmem_fragmentation_bytes:%zd\r\n",
      m.allocated ? (double) m.active / (double) m.allocated : 0, (ssize_t) (m.active - m.allocated),
      m.active ? (double) m.resident / (double) m.active : 0, (ssize_t) (m.resident - m.active),
      m.resident ? (double) m.rss / (double) m.resident : 0, (ssize_t) (m.rss - m.resident),
      m.allocated ? (double) m.rss / (double) m.allocated : 0, (ssize_t) (m.rss - m.allocated));
    F("mem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\n"
      "mem_clients_slaves:0\r\nmem_clients_normal:%zu\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\n"
      "mem_allocator:%s\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
      clients, allocator_name());
}

/* Snapshot fields from persist/snapshot.c, AOF fields from persist/aof.c
 * (this shard). Combined over shards: changes and saves add up,
 * rdb_bgsave_in_progress is the largest, the rest is shard 0's. */
static void persistence_section(kv_sbuf_t *b, kv_server_t *s)
{
    kv_snapshot_info_t si;
    kv_snapshot_get_info(&si);
    if (si.lastsave_unix == 0) si.lastsave_unix = (int64_t) (s->start_unix_ms / 1000);
    section(b, "Persistence");
    F("loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\n"
      "current_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n"
      "rdb_changes_since_last_save:%llu\r\nrdb_bgsave_in_progress:%d\r\nrdb_last_save_time:%lld\r\n"
      "rdb_last_bgsave_status:%s\r\nrdb_last_bgsave_time_sec:%lld\r\nrdb_current_bgsave_time_sec:%lld\r\n"
      "rdb_saves:%llu\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:%llu\r\nrdb_last_load_keys_loaded:%llu\r\n",
      (unsigned long long) (s->db ? s->db->dirty : 0), si.bgsave_in_progress, (long long) si.lastsave_unix,
      si.last_bgsave_ok ? "ok" : "err", (long long) si.last_bgsave_time_sec,
      (long long) si.current_bgsave_time_sec, (unsigned long long) si.saves,
      (unsigned long long) si.load_keys_expired, (unsigned long long) si.load_keys_loaded);
    kv_aof_info(b, 0);                  /* aof_* fields: persist/aof.c */
    F("module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n");
    kv_aof_info(b, 1);
}

static void stats_section(kv_sbuf_t *b, kv_server_t *s)
{
    const kv_db_t *db = s->db;
    section(b, "Stats");
    F("total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\ninstantaneous_ops_per_sec:%llu\r\n"
      "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\ntotal_net_repl_input_bytes:0\r\n"
      "total_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\n"
      "instantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:%llu\r\n"
      "sync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:%llu\r\nexpired_stale_perc:%.2f\r\n"
      "expired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:0\r\n"
      "evicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\n"
      "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\npubsub_channels:0\r\npubsub_patterns:0\r\n"
      "pubsubshard_channels:0\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\n"
      "slave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\n"
      "active_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\n"
      "current_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\n"
      "tracking_total_prefixes:0\r\nunexpected_error_replies:0\r\ntotal_error_replies:%llu\r\n"
      "dump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\n"
      "io_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\n"
      "reply_buffer_expands:0\r\n",
      (unsigned long long) s->stat_conns, (unsigned long long) s->commands, (unsigned long long) s->ops_sec,
      (unsigned long long) s->stat_net_in, (unsigned long long) s->stat_net_out,
      (unsigned long long) s->stat_rejected, (unsigned long long) (db ? db->stat_expired : 0),
      db ? db->stat_expired_stale_perc * 100 : 0.0, (unsigned long long) (db ? db->stat_hits : 0),
      (unsigned long long) (db ? db->stat_misses : 0), (unsigned long long) kv_cmd_errors_each(NULL, NULL));
}

static void errorstat_line(const char *code, uint64_t count, void *data)
{
    kv_sbuf_printf(data, "errorstat_%s:count=%llu\r\n", code, (unsigned long long) count);
}

/* Per command, as Redis 7.0 (container commands are not split into their
 * subcommands: cmdstat_client, not cmdstat_client|id). */
static void commandstats_section(kv_sbuf_t *b)
{
    section(b, "Commandstats");
    for (size_t i = 0; i < kv_cmd_count(); i++) {
        const kv_cmd_t *cmd = kv_cmd_at(i);
        const kv_cmd_stats_t *st = kv_cmd_stats(cmd);
        if (!st->calls && !st->rejected && !st->failed) continue;
        kv_sbuf_printf(b, "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,failed_calls=%llu\r\n",
                       cmd->name, (unsigned long long) st->calls, (unsigned long long) st->usec,
                       st->calls ? (double) st->usec / (double) st->calls : 0.0,
                       (unsigned long long) st->rejected, (unsigned long long) st->failed);
    }
}

static void cpu_section(kv_sbuf_t *b)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    section(b, "CPU");
    F("used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\nused_cpu_sys_children:%ld.%06ld\r\n"
      "used_cpu_user_children:%ld.%06ld\r\nused_cpu_sys_main_thread:%ld.%06ld\r\n"
      "used_cpu_user_main_thread:%ld.%06ld\r\n",
      (long) self.ru_stime.tv_sec, (long) self.ru_stime.tv_usec, (long) self.ru_utime.tv_sec,
      (long) self.ru_utime.tv_usec, (long) kids.ru_stime.tv_sec, (long) kids.ru_stime.tv_usec,
      (long) kids.ru_utime.tv_sec, (long) kids.ru_utime.tv_usec, (long) self.ru_stime.tv_sec,
      (long) self.ru_stime.tv_usec, (long) self.ru_utime.tv_sec, (long) self.ru_utime.tv_usec);
}

static void info_text(kv_sbuf_t *b, kv_server_t *s, unsigned want)
{
    uint64_t now = (uint64_t) time(NULL) * 1000;
    size_t keys = s->db ? kv_db_size(s->db) : 0, expires = s->db ? kv_db_volatile(s->db) : 0;
    if (want & S_SERVER) server_section(b, s, now);
    if (want & S_CLIENTS) clients_section(b, s);
    if (want & S_MEMORY) memory_section(b, s);
    if (want & S_PERSISTENCE) persistence_section(b, s);
    if (want & S_STATS) stats_section(b, s);
    if (want & S_REPLICATION) {
        section(b, "Replication");
        F("role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n"
          "master_replid:%08x%032x\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n"
          "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n"
          "repl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
          (unsigned) getppid(), 0u);
    }
    if (want & S_CPU) cpu_section(b);
    if (want & S_MODULES) section(b, "Modules");
    if (want & S_COMMANDSTATS) commandstats_section(b);
    if (want & S_ERRORSTATS) {
        section(b, "Errorstats");
        kv_cmd_errors_each(errorstat_line, b);
    }
    if (want & S_LATENCYSTATS) section(b, "Latencystats");
    if (want & S_CLUSTER) {
        section(b, "Cluster");
        F("cluster_enabled:0\r\n");
    }
    if (want & S_KEYSPACE) {
        section(b, "Keyspace");
        if (keys) F("db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", keys, expires);
    }
    if (want & S_SHARDS) {
        section(b, "Shards");
        F("shard%d:pid=%d,clients=%llu,commands=%llu,keys=%zu,expires=%zu\r\n", s->shard, (int) getpid(),
          (unsigned long long) s->nconns, (unsigned long long) s->commands, keys, expires);
    }
}

void kv_info_cmd(kv_client_t *c)
{
    unsigned want = c->argc == 1 ? S_DEFAULT : 0;
    for (int i = 1; i < c->argc; i++)
        for (size_t k = 0; k < sizeof(section_names) / sizeof(section_names[0]); k++)
            if (kv_arg_is(&c->argv[i], section_names[k].name)) want |= section_names[k].bits;
    kv_sbuf_t b = { 0 };
    info_text(&b, c->srv, want);
    kv_reply_bulk(&c->out, b.p ? b.p : "", b.len);
    free(b.p);
}

void kv_info_resetstat(kv_server_t *s)
{
    s->stat_conns = s->stat_rejected = s->stat_net_in = s->stat_net_out = 0;
    s->commands = s->ops_prev = s->ops_sec = 0;
    s->mem_peak = 0;
    if (s->db) s->db->stat_expired = s->db->stat_hits = s->db->stat_misses = 0;
    kv_cmd_stats_reset();
}

/* ---- combining the shards' texts ------------------------------------------------ */

typedef struct {
    const char *k, *v;
    int klen, vlen, sec;
} field_t;

static const char *const summed[] = {
    "connected_clients", "blocked_clients", "tracking_clients", "clients_in_timeout_table", "used_memory",
    "used_memory_rss", "used_memory_peak", "used_memory_overhead", "used_memory_startup", "used_memory_dataset",
    "allocator_allocated", "allocator_active", "allocator_resident", "allocator_frag_bytes", "allocator_rss_bytes",
    "rss_overhead_bytes", "mem_fragmentation_bytes", "mem_clients_normal", "rdb_changes_since_last_save",
    "rdb_saves", "rdb_last_load_keys_expired", "rdb_last_load_keys_loaded",
    "total_connections_received", "total_commands_processed", "instantaneous_ops_per_sec",
    "total_net_input_bytes", "total_net_output_bytes", "rejected_connections", "expired_keys", "evicted_keys",
    "keyspace_hits", "keyspace_misses", "total_error_replies", "total_reads_processed", "total_writes_processed",
    "used_cpu_sys", "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children",
    "used_cpu_sys_main_thread", "used_cpu_user_main_thread", NULL,
};
static const char *const maxed[] = {
    "client_recent_max_input_buffer", "client_recent_max_output_buffer", "uptime_in_seconds", "uptime_in_days",
    "rdb_bgsave_in_progress", NULL,
};

static int in_list(const char *const *list, const field_t *f)
{
    for (int i = 0; list[i]; i++)
        if ((int) strlen(list[i]) == f->klen && !memcmp(list[i], f->k, (size_t) f->klen)) return 1;
    return 0;
}


/* Split a part's bulk into fields; sections are interned in secs. */
static int parse_part(const char *flat, size_t len, field_t **out, const char **secs, int *secl, int *nsecs)
{
    const char *p = memchr(flat, '\n', len), *end;
    int n = 0, cap = 256, sec = -1;
    field_t *f = malloc(sizeof(*f) * (size_t) cap);
    if (!f) abort();
    if (flat[0] != '$' || !p) { *out = f; return 0; }
    p++;
    end = p + strtoll(flat + 1, NULL, 10);
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t) (end - p));
        if (!eol) eol = end;
        int l = (int) (eol - p);
        if (l >= 2 && p[0] == '#' && p[1] == ' ') {
            sec = -1;
            for (int i = 0; i < *nsecs; i++) if (secl[i] == l - 2 && !memcmp(secs[i], p + 2, (size_t) l - 2)) sec = i;
            if (sec < 0 && *nsecs < 32) secs[*nsecs] = p + 2, secl[*nsecs] = l - 2, sec = (*nsecs)++;
        } else if (l > 0) {
            const char *colon = memchr(p, ':', (size_t) l);
            if (colon) {
                if (n == cap && !(f = realloc(f, sizeof(*f) * (size_t) (cap *= 2)))) abort();
                f[n++] = (field_t) { p, colon + 1, (int) (colon - p), (int) (eol - colon - 1), sec };
            }
        }
        p = eol + 2;
    }
    *out = f;
    return n;
}

static double num(const field_t *f) { return f ? strtod(f->v, NULL) : 0; }

static const field_t *find(field_t *fs, int n, const field_t *like)
{
    for (int i = 0; i < n; i++)
        if (fs[i].klen == like->klen && fs[i].sec == like->sec && !memcmp(fs[i].k, like->k, (size_t) like->klen))
            return &fs[i];
    return NULL;
}

/* "a=1,b=2" sub-values of one field over all parts, summed per name
 * (keyspace keys/expires, errorstat count); avg_ttl is 0 everywhere. */
static void merge_subvalues(kv_sbuf_t *b, const field_t *const *same, int nsame)
{
    const char *p = same[0]->v, *end = p + same[0]->vlen;
    int first = 1;
    long long calls = 0, usec = 0;
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t) (end - p)), *comma;
        if (!eq) break;
        comma = memchr(eq, ',', (size_t) (end - eq));
        if (!comma) comma = end;
        long long total = 0;
        for (int i = 0; i < nsame; i++) {
            const char *q = same[i]->v, *qe = q + same[i]->vlen;
            size_t nl = (size_t) (eq - p);
            while (q < qe) {
                if ((size_t) (qe - q) > nl && !memcmp(q, p, nl) && q[nl] == '=') { total += strtoll(q + nl + 1, NULL, 10); break; }
                const char *c2 = memchr(q, ',', (size_t) (qe - q));
                q = c2 ? c2 + 1 : qe;
            }
        }
        if ((size_t) (eq - p) == 13 && !memcmp(p, "usec_per_call", 13))  /* a ratio, not a sum */
            kv_sbuf_printf(b, ",usec_per_call=%.2f", calls ? (double) usec / (double) calls : 0.0);
        else
            kv_sbuf_printf(b, "%s%.*s=%lld", first ? "" : ",", (int) (eq - p), p, total);
        if ((size_t) (eq - p) == 5 && !memcmp(p, "calls", 5)) calls = total;
        if ((size_t) (eq - p) == 4 && !memcmp(p, "usec", 4)) usec = total;
        first = 0;
        p = comma + 1;
    }
}

/* A merged number by name from the "key:value\n" list. */
static int merged_val(const char *list, const char *name, double *out)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        if (!strncmp(p, name, n) && p[n] == ':') {
            *out = strtod(p + n + 1, NULL);
            return 1;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return 0;
}

void kv_info_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    field_t *fs[nparts];
    int nf[nparts], nsecs = 0, secl[32];
    const char *secs[32];
    kv_sbuf_t b = { 0 }, merged = { 0 };
    for (int i = 0; i < nparts; i++) nf[i] = parse_part(flat[i], len[i], &fs[i], secs, secl, &nsecs);
    /* First pass: merge every numeric field into `merged` as "key:value"
     * so the recomputed ones can read the merged numbers. */
    for (int s = 0; s < nsecs; s++) {
        if (b.len) kv_sbuf_cat(&b, "\r\n", 2);
        kv_sbuf_printf(&b, "# %.*s\r\n", secl[s], secs[s]);
        for (int p = 0; p < nparts; p++) {
            for (int i = 0; i < nf[p]; i++) {
                field_t *f = &fs[p][i];
                if (f->sec != s) continue;
                int dup = 0;
                for (int q = 0; q < p && !dup; q++) dup = find(fs[q], nf[q], f) != NULL;
                if (dup) continue;
                const field_t *same[nparts];
                int nsame = 0;
                for (int q = p; q < nparts; q++) {
                    const field_t *g = find(fs[q], nf[q], f);
                    if (g) same[nsame++] = g;
                }
                kv_sbuf_printf(&b, "%.*s:", f->klen, f->k);
                if (in_list(summed, f) || in_list(maxed, f)) {
                    double v = 0;
                    int is_max = in_list(maxed, f), frac = memchr(f->v, '.', (size_t) f->vlen) != NULL;
                    for (int q = 0; q < nsame; q++) v = is_max ? (num(same[q]) > v ? num(same[q]) : v) : v + num(same[q]);
                    if (frac) kv_sbuf_printf(&b, "%.6f", v);
                    else kv_sbuf_printf(&b, "%.0f", v);
                    kv_sbuf_printf(&merged, "%.*s:%.0f\n", f->klen, f->k, v);
                } else if ((f->klen > 2 && !memcmp(f->k, "db", 2)) || (f->klen > 10 && !memcmp(f->k, "errorstat_", 10))
                           || (f->klen > 8 && !memcmp(f->k, "cmdstat_", 8))) {
                    merge_subvalues(&b, same, nsame);
                } else {
                    kv_sbuf_printf(&b, "%.*s", f->vlen, f->v);
                }
                kv_sbuf_cat(&b, "\r\n", 2);
            }
        }
    }
    /* Second pass: recompute *_human, *_perc and ratios from the sums. */
    kv_sbuf_t final = { 0 };
    const char *p = b.p, *end = b.p + b.len;
    while (p && p < end) {
        const char *eol = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', (size_t) (eol - p));
        char key[64], v[64];
        double x, y;
        snprintf(key, sizeof(key), "%.*s", colon ? (int) (colon - p) : 0, p);
        size_t klen = strlen(key);
        v[0] = '\0';
        if (klen > 6 && !strcmp(key + klen - 6, "_human")) {
            key[klen - 6] = '\0';
            if (merged_val(merged.p, key, &x)) human(v, sizeof(v), x);
            key[klen - 6] = '_';
        } else if (!strcmp(key, "used_memory_peak_perc")) {
            if (merged_val(merged.p, "used_memory", &x) && merged_val(merged.p, "used_memory_peak", &y) && y > 0)
                snprintf(v, sizeof(v), "%.2f%%", 100 * x / y);
        } else if (!strcmp(key, "used_memory_dataset_perc")) {
            if (merged_val(merged.p, "used_memory_dataset", &x) && merged_val(merged.p, "used_memory", &y) && y > 0)
                snprintf(v, sizeof(v), "%.2f%%", 100 * x / y);
        } else {
            static const char *const ratios[][3] = {
                { "allocator_frag_ratio", "allocator_active", "allocator_allocated" },
                { "allocator_rss_ratio", "allocator_resident", "allocator_active" },
                { "rss_overhead_ratio", "used_memory_rss", "allocator_resident" },
                { "mem_fragmentation_ratio", "used_memory_rss", "used_memory" },
            };
            for (size_t r = 0; r < sizeof(ratios) / sizeof(ratios[0]); r++)
                if (!strcmp(key, ratios[r][0]) && merged_val(merged.p, ratios[r][1], &x)
                    && merged_val(merged.p, ratios[r][2], &y) && y > 0)
                    snprintf(v, sizeof(v), "%.2f", x / y);
        }
        if (v[0]) kv_sbuf_printf(&final, "%s:%s\r\n", key, v);
        else kv_sbuf_cat(&final, p, (size_t) (eol + 2 - p));
        p = eol + 2;
    }
    kv_reply_bulk(out, final.p ? final.p : "", final.len);
    for (int i = 0; i < nparts; i++) free(fs[i]);
    free(b.p), free(merged.p), free(final.p);
}
