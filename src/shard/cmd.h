/*
 * The command table: the single source of truth for every command's name,
 * arity, flags, key positions, routing class and handler (as Redis's).
 * COMMAND, routing and AOF logging derive from it.
 *
 * Each data-type file (t_string.c, t_keys.c, ...) defines its own part as
 * `const kv_cmd_t kv_<module>_cmds[]`, terminated by an entry whose name
 * is NULL, and cmd.c lists those parts once; kv_cmd_init() merges them
 * into one sorted table.
 *
 * Handlers run on the shard that owns the command's keys: the router
 * (route.c, forward.c) has already split or forwarded the command, so a
 * handler only touches c->db and sees only keys its shard owns. A handler
 * may use c->argc, c->argv, c->out (its reply) and c->db; c may be a
 * remote request's stand-in client rather than a socket, so handlers never
 * touch the connection itself.
 */
#ifndef KV_SHARD_CMD_H
#define KV_SHARD_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "shard/conn.h"

typedef void kv_cmd_proc(kv_client_t *c);

/* Combine the per-shard replies of a command that ran on several shards
 * (KV_ROUTE_ALL, or a split KV_ROUTE_KEYS) into the client's one reply,
 * written to out. flat[i] is
 * shard part i's whole RESP reply (NUL-terminated), len[i] its length;
 * when a part is an error the router replies it without calling this. */
typedef void kv_cmd_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len);

enum {
    KV_CMD_WRITE    = 1 << 0,
    KV_CMD_READONLY = 1 << 1,
    KV_CMD_FAST     = 1 << 2,
    KV_CMD_ADMIN    = 1 << 3,
    KV_CMD_LOADING  = 1 << 4,   /* allowed while the shard loads          */
    KV_CMD_STALE    = 1 << 5,
    KV_CMD_NOAUTH   = 1 << 6,   /* allowed before AUTH (AUTH, HELLO, QUIT) */
    KV_CMD_DENYOOM  = 1 << 7,   /* may grow memory: refused at maxmemory  */
    KV_CMD_PUBSUB   = 1 << 8,
    KV_CMD_NOSCRIPT = 1 << 9,
    KV_CMD_BLOCKING = 1 << 10,
    KV_CMD_RANDOM   = 1 << 11,  /* non-deterministic output               */
    KV_CMD_MOVABLE  = 1 << 12,  /* keys found by numkeys/STREAMS/STORE (set
                                   by kv_cmd_init, see gather.c)          */
};

/* How the router treats a command (route.c). */
typedef enum {
    KV_ROUTE_LOCAL = 0,  /* no keys: runs on the worker holding the client */
    KV_ROUTE_KEY,        /* one key (first_key): runs on its owner         */
    KV_ROUTE_KEYS,       /* keys first..last by step: one owner runs it
                            whole; spanning shards, the router splits it   */
    KV_ROUTE_ALL,        /* runs on every shard; the router combines       */
    KV_ROUTE_CUSTOM,     /* the handler routes itself (RENAME, SCAN, ...)   */
} kv_route_e;

typedef struct {
    const char  *name;          /* lower case                            */
    int          arity;         /* N exactly, or -N: at least N          */
    uint32_t     flags;
    int          first_key;     /* Redis's key spec: 0 when no keys      */
    int          last_key;      /* -1: the last argument, -2: one before  */
    int          key_step;
    kv_route_e   route;
    kv_cmd_proc *proc;
    const char  *group;         /* "string", "generic", "connection", ... */
    const char  *since;         /* Redis version that added it           */
    const char  *summary;       /* COMMAND DOCS                           */
    kv_cmd_combine *combine;    /* for ALL/split commands; NULL: default  */
} kv_cmd_t;

/* Build the merged table; call once per process before dispatching. */
void kv_cmd_init(void);

/* Case-insensitive lookup; NULL when unknown. */
const kv_cmd_t *kv_cmd_lookup(const char *name, size_t len);
/* The same, including the internal shard-to-shard commands. */
const kv_cmd_t *kv_cmd_lookup_any(const char *name, size_t len);

/* Number of commands, and the i-th in name order (COMMAND, COMMAND LIST). */
size_t kv_cmd_count(void);
const kv_cmd_t *kv_cmd_at(size_t i);

/* Look up argv[0], check arity, run it; replies Redis's errors for an
 * unknown command or a wrong number of arguments. */
void kv_cmd_dispatch(kv_client_t *c);

/* Check arity only: 1 when argc fits cmd. */
int kv_cmd_arity_ok(const kv_cmd_t *cmd, int argc);

/* INFO commandstats / errorstats, counted where commands run. */
typedef struct {
    uint64_t calls, usec, rejected, failed;
} kv_cmd_stats_t;
/* The counters of a table command (NULL for internal ones). */
kv_cmd_stats_t *kv_cmd_stats(const kv_cmd_t *cmd);
/* An error reply "-CODE ..." left: count it under CODE. */
void kv_cmd_count_error(const char *reply, size_t len);
/* Each error code seen (at most 128, as Redis), and the total. */
typedef void kv_cmd_error_fn(const char *code, uint64_t count, void *data);
uint64_t kv_cmd_errors_each(kv_cmd_error_fn *fn, void *data);
void kv_cmd_stats_reset(void);

/* Redis's error for a wrong number of arguments. */
void kv_cmd_reply_arity(kv_client_t *c, const kv_cmd_t *cmd);

#endif
