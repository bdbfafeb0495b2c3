/*
 * Shared by the connection and server command files (cmd_connection.c,
 * cmd_client.c, cmd_server.c, cmd_config.c, info.c).
 *
 * Commands that must act on every worker (CLIENT LIST/KILL, CONFIG SET,
 * CONFIG RESETSTAT) are LOCAL in the table, so their other subcommands act
 * on the real client; the handler fans the every-worker ones out itself
 * with kv_srv_fanout(), which runs a private table entry (same name, route
 * ALL, its own combiner) on every shard. A peer receives the request by
 * name, finds the public entry and runs it with a stand-in client: the
 * handlers recognise that (kv_client_is_conn() is 0) and then do their
 * shard's part instead of fanning out again.
 */
#ifndef KV_SHARD_CMD_SERVER_H
#define KV_SHARD_CMD_SERVER_H

#include "shard/cmd.h"
#include "shard/t_util.h"

/* What HELLO and INFO report: clients check the server name and version
 * to decide which commands they may use, so kevy answers as the Redis
 * release it is compatible with (README "Redis compatibility"). */
#define KV_COMPAT_SERVER  "redis"
#define KV_COMPAT_VERSION "7.0.15"

/* A growing string for long texts (CLIENT LIST, INFO; not hot paths). */
typedef struct {
    char  *p;
    size_t len, cap;
} kv_sbuf_t;
void kv_sbuf_printf(kv_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kv_sbuf_cat(kv_sbuf_t *b, const char *p, size_t n);

/* Run `part` (a private entry) on every shard, combined by its combiner. */
void kv_srv_fanout(kv_client_t *c, const kv_cmd_t *part);

/* Redis's addReplyHelp: the header line, lines, then HELP. */
void kv_srv_reply_help(kv_client_t *c, const char *cmd, const char *const *lines);
/* "unknown subcommand 'x'. Try CMD HELP." */
void kv_srv_reply_unknown_sub(kv_client_t *c, const char *cmd);
/* "wrong number of arguments for 'cmd|sub' command" */
void kv_srv_reply_sub_arity(kv_client_t *c, const char *cmd, const char *sub);

/* Subcommand tables: name, arity as Redis's subcommand entries. */
typedef struct {
    const char *name;
    int         arity;
} kv_subcmd_t;
/* The subcommand of argv[1] in subs (NULL after replying the unknown or
 * arity error). */
const kv_subcmd_t *kv_srv_subcmd(kv_client_t *c, const char *cmd, const kv_subcmd_t *subs);

/* CLIENT (cmd_client.c), CONFIG (cmd_config.c), INFO (info.c). */
void kv_client_cmd(kv_client_t *c);
int  kv_client_name_ok(const kv_resp_arg *a);
/* Set c's name from a (empty: none); 0, or -1 after replying the error. */
int  kv_client_setname(kv_client_t *c, const kv_resp_arg *a);
void kv_config_cmd(kv_client_t *c);
/* A worker starting: replay the CONFIG SETs its shard's previous worker
 * applied (the journal in the shared segment). */
void kv_config_restore(kv_server_t *srv);
void kv_info_cmd(kv_client_t *c);
void kv_info_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len);
/* CONFIG RESETSTAT's part for the statistics INFO reports. */
void kv_info_resetstat(kv_server_t *s);

#endif
