/*
 * The server group: COMMAND, TIME, LASTSAVE, DEBUG, SHUTDOWN, and the
 * table entries of CONFIG (cmd_config.c) and INFO (info.c); the helpers
 * the connection/server files share (cmd_server.h).
 *
 * COMMAND is derived from the merged table. Its replies have Redis 7.0's
 * shape; what kevy's table does not hold is reported empty: key specs,
 * tips (but nondeterministic_output) and subcommands in COMMAND INFO,
 * complexity and arguments in COMMAND DOCS. ACL categories are derived
 * from the flags and the group (README "Redis compatibility").
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/glob.h"
#include "core/log.h"
#include "persist/snapshot.h"
#include "shard/cmd_server.h"
#include "shard/forward.h"
#include "shard/gather.h"

/* ---- shared helpers ------------------------------------------------------ */

static void sbuf_grow(kv_sbuf_t *b, size_t n)
{
    if (b->cap - b->len > n) return;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap - b->len <= n) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) abort();
    b->p = np, b->cap = cap;
}

void kv_sbuf_cat(kv_sbuf_t *b, const char *p, size_t n)
{
    sbuf_grow(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void kv_sbuf_printf(kv_sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sbuf_grow(b, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

void kv_srv_fanout(kv_client_t *c, const kv_cmd_t *part) { kv_gather_all(c, part); }

void kv_srv_reply_help(kv_client_t *c, const char *cmd, const char *const *lines)
{
    char head[128];
    size_t n = 0;
    while (lines[n]) n++;
    kv_reply_array(&c->out, (long long) n + 3);
    snprintf(head, sizeof(head), "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", cmd);
    kv_reply_status(&c->out, head);
    for (size_t i = 0; i < n; i++) kv_reply_status(&c->out, lines[i]);
    kv_reply_status(&c->out, "HELP");
    kv_reply_status(&c->out, "    Prints this help.");
}

void kv_srv_reply_unknown_sub(kv_client_t *c, const char *cmd)
{
    int n = kv_arg_cstrlen(&c->argv[1]);
    kv_reply_errorf(&c->out, "unknown subcommand '%.*s'. Try %s HELP.", n > 128 ? 128 : n, c->argv[1].ptr, cmd);
}

void kv_srv_reply_sub_arity(kv_client_t *c, const char *cmd, const char *sub)
{
    kv_reply_errorf(&c->out, "wrong number of arguments for '%s|%s' command", cmd, sub);
}

const kv_subcmd_t *kv_srv_subcmd(kv_client_t *c, const char *cmd, const kv_subcmd_t *subs)
{
    char upper[16];
    size_t i;
    for (i = 0; cmd[i] && i < sizeof(upper) - 1; i++) upper[i] = (char) (cmd[i] - 32 * (cmd[i] >= 'a' && cmd[i] <= 'z'));
    upper[i] = '\0';
    for (const kv_subcmd_t *s = subs; s->name; s++) {
        if (c->argv[1].len != strlen(s->name) || strncasecmp(c->argv[1].ptr, s->name, c->argv[1].len)) continue;
        int ok = s->arity > 0 ? c->argc == s->arity : c->argc >= -s->arity;
        if (!ok) {
            kv_srv_reply_sub_arity(c, cmd, s->name);
            return NULL;
        }
        return s;
    }
    kv_srv_reply_unknown_sub(c, upper);
    return NULL;
}

/* ---- COMMAND --------------------------------------------------------------- */

static const struct { uint32_t flag; const char *name; } flag_names[] = {
    { KV_CMD_WRITE, "write" }, { KV_CMD_READONLY, "readonly" }, { KV_CMD_DENYOOM, "denyoom" },
    { KV_CMD_ADMIN, "admin" }, { KV_CMD_PUBSUB, "pubsub" }, { KV_CMD_NOSCRIPT, "noscript" },
    { KV_CMD_BLOCKING, "blocking" }, { KV_CMD_LOADING, "loading" }, { KV_CMD_STALE, "stale" },
    { KV_CMD_NOAUTH, "no_auth" }, { KV_CMD_FAST, "fast" },
};
#define NFLAGS (sizeof(flag_names) / sizeof(flag_names[0]))

/* Redis's ACL category of a command group. */
static const char *group_category(const char *group)
{
    static const struct { const char *group, *cat; } map[] = {
        { "generic", "@keyspace" }, { "string", "@string" }, { "list", "@list" }, { "set", "@set" },
        { "sorted-set", "@sortedset" }, { "hash", "@hash" }, { "bitmap", "@bitmap" },
        { "hyperloglog", "@hyperloglog" }, { "geo", "@geo" }, { "stream", "@stream" },
        { "pubsub", "@pubsub" }, { "transactions", "@transaction" }, { "scripting", "@scripting" },
        { "connection", "@connection" },
    };
    for (size_t i = 0; group && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i].group, group)) return map[i].cat;
    return NULL;
}

/* The categories of cmd, at most 8. */
static int categories(const kv_cmd_t *cmd, const char **out)
{
    int n = 0;
    if (cmd->flags & KV_CMD_WRITE) out[n++] = "@write";
    if (cmd->flags & KV_CMD_READONLY) out[n++] = "@read";
    if (cmd->flags & KV_CMD_ADMIN) out[n++] = "@admin", out[n++] = "@dangerous";
    if (cmd->flags & KV_CMD_BLOCKING) out[n++] = "@blocking";
    const char *g = group_category(cmd->group);
    if (g) out[n++] = g;
    out[n++] = (cmd->flags & KV_CMD_FAST) ? "@fast" : "@slow";
    return n;
}

static void reply_info(kv_client_t *c, const kv_cmd_t *cmd)
{
    const char *cats[8];
    int nflags = 0, ncats = categories(cmd, cats);
    for (size_t i = 0; i < NFLAGS; i++) nflags += !!(cmd->flags & flag_names[i].flag);
    kv_reply_array(&c->out, 10);
    kv_reply_bulk_cstr(&c->out, cmd->name);
    kv_reply_int(&c->out, cmd->arity);
    kv_reply_array(&c->out, nflags);
    for (size_t i = 0; i < NFLAGS; i++)
        if (cmd->flags & flag_names[i].flag) kv_reply_status(&c->out, flag_names[i].name);
    kv_reply_int(&c->out, cmd->first_key);
    kv_reply_int(&c->out, cmd->first_key ? cmd->last_key : 0);
    kv_reply_int(&c->out, cmd->first_key ? cmd->key_step : 0);
    kv_reply_array(&c->out, ncats);
    for (int i = 0; i < ncats; i++) kv_reply_status(&c->out, cats[i]);
    if (cmd->flags & KV_CMD_RANDOM) {
        kv_reply_array(&c->out, 1);
        kv_reply_bulk_cstr(&c->out, "nondeterministic_output");
    } else {
        kv_reply_array(&c->out, 0);
    }
    kv_reply_array(&c->out, 0);     /* key specs */
    kv_reply_array(&c->out, 0);     /* subcommands */
}

static void reply_docs(kv_client_t *c, const kv_cmd_t *cmd)
{
    kv_reply_bulk_cstr(&c->out, cmd->name);
    kv_reply_array(&c->out, 6);
    kv_reply_bulk_cstr(&c->out, "summary");
    kv_reply_bulk_cstr(&c->out, cmd->summary ? cmd->summary : "");
    kv_reply_bulk_cstr(&c->out, "since");
    kv_reply_bulk_cstr(&c->out, cmd->since ? cmd->since : "1.0.0");
    kv_reply_bulk_cstr(&c->out, "group");
    kv_reply_bulk_cstr(&c->out, cmd->group ? cmd->group : "server");
}

static int has_category(const kv_cmd_t *cmd, const kv_resp_arg *cat)
{
    const char *cats[8];
    int n = categories(cmd, cats);
    for (int i = 0; i < n; i++)
        if (strlen(cats[i] + 1) == cat->len && !strncasecmp(cats[i] + 1, cat->ptr, cat->len)) return 1;
    return 0;
}

static void command_list(kv_client_t *c)
{
    size_t n = kv_cmd_count(), count = 0;
    int by = 0;                                     /* 1 module, 2 aclcat, 3 pattern */
    if (c->argc == 5 && kv_arg_is(&c->argv[2], "filterby")) {
        if (kv_arg_is(&c->argv[3], "module")) by = 1;
        else if (kv_arg_is(&c->argv[3], "aclcat")) by = 2;
        else if (kv_arg_is(&c->argv[3], "pattern")) by = 3;
    }
    if (c->argc != 2 && by == 0) {
        kv_reply_syntax(c);
        return;
    }
    const kv_cmd_t *match[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        const kv_cmd_t *cmd = kv_cmd_at(i);
        if (by == 1) continue;                      /* no modules */
        if (by == 2 && !has_category(cmd, &c->argv[4])) continue;
        if (by == 3 && !kv_glob_match(c->argv[4].ptr, c->argv[4].len, cmd->name, strlen(cmd->name), 1)) continue;
        match[count++] = cmd;
    }
    kv_reply_array(&c->out, (long long) count);
    for (size_t i = 0; i < count; i++) kv_reply_bulk_cstr(&c->out, match[i]->name);
}

static void command_getkeys(kv_client_t *c)
{
    const kv_cmd_t *cmd = kv_cmd_lookup(c->argv[2].ptr, c->argv[2].len);
    int argc = c->argc - 2;
    if (!cmd) {
        kv_reply_error_cstr(&c->out, "Invalid command specified");
        return;
    }
    if (cmd->first_key <= 0) {
        kv_reply_error_cstr(&c->out, "The command has no key arguments");
        return;
    }
    if (!kv_cmd_arity_ok(cmd, argc)) {
        kv_reply_error_cstr(&c->out, "Invalid number of arguments specified for command");
        return;
    }
    int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key, step = cmd->key_step > 0 ? cmd->key_step : 1;
    if (last >= argc) last = argc - 1;
    long long n = 0;
    for (int i = cmd->first_key; i <= last; i += step) n++;
    kv_reply_array(&c->out, n);
    for (int i = cmd->first_key; i <= last; i += step) kv_reply_bulk(&c->out, c->argv[2 + i].ptr, c->argv[2 + i].len);
}

static const kv_subcmd_t command_subs[] = {
    { "count", 2 }, { "docs", -2 }, { "getkeys", -4 }, { "help", 2 }, { "info", -2 }, { "list", -2 }, { NULL, 0 },
};

static const char *const command_help[] = {
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    NULL,
};

static void command_cmd(kv_client_t *c)
{
    size_t n = kv_cmd_count();
    if (c->argc == 1) {
        kv_reply_array(&c->out, (long long) n);
        for (size_t i = 0; i < n; i++) reply_info(c, kv_cmd_at(i));
        return;
    }
    const kv_subcmd_t *sub = kv_srv_subcmd(c, "command", command_subs);
    if (!sub) return;
    if (!strcmp(sub->name, "count")) {
        kv_reply_int(&c->out, (long long) n);
    } else if (!strcmp(sub->name, "list")) {
        command_list(c);
    } else if (!strcmp(sub->name, "getkeys")) {
        command_getkeys(c);
    } else if (!strcmp(sub->name, "info")) {
        if (c->argc == 2) {
            kv_reply_array(&c->out, (long long) n);
            for (size_t i = 0; i < n; i++) reply_info(c, kv_cmd_at(i));
            return;
        }
        kv_reply_array(&c->out, c->argc - 2);
        for (int i = 2; i < c->argc; i++) {
            const kv_cmd_t *cmd = kv_cmd_lookup(c->argv[i].ptr, c->argv[i].len);
            if (cmd) reply_info(c, cmd);
            else kv_reply_null(&c->out);
        }
    } else if (!strcmp(sub->name, "docs")) {
        if (c->argc == 2) {
            kv_reply_array(&c->out, (long long) n * 2);
            for (size_t i = 0; i < n; i++) reply_docs(c, kv_cmd_at(i));
            return;
        }
        const kv_cmd_t *found[c->argc];
        int k = 0;
        for (int i = 2; i < c->argc; i++)
            if ((found[k] = kv_cmd_lookup(c->argv[i].ptr, c->argv[i].len))) k++;
        kv_reply_array(&c->out, k * 2);
        for (int i = 0; i < k; i++) reply_docs(c, found[i]);
    } else {
        kv_srv_reply_help(c, "COMMAND", command_help);
    }
}

/* ---- TIME, LASTSAVE ---------------------------------------------------------------- */

static void time_cmd(kv_client_t *c)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    kv_reply_array(&c->out, 2);
    kv_reply_bulk_ll(&c->out, (long long) tv.tv_sec);
    kv_reply_bulk_ll(&c->out, (long long) tv.tv_usec);
}

/* LASTSAVE runs on every shard (persist/snapshot.c): each replies its last
 * successful save (its start time before one, as Redis), the combiner the
 * oldest, so "LASTSAVE moved" means every shard saved. */

/* ---- DEBUG ---------------------------------------------------------------------------- */

static void debug_object(kv_client_t *c)
{
    kv_db_t *db = c->db;
    kv_dict_entry *e = db ? kv_db_find(db, c->argv[2].ptr, c->argv[2].len, KV_LOOKUP_NOTOUCH) : NULL;
    if (!e) {
        kv_reply_error_cstr(&c->out, "no such key");
        return;
    }
    kv_obj *o = kv_db_obj(e);
    char msg[256];
    size_t slen = o->type == KV_TYPE_STRING ? kv_db_strlen(o) : 0;
    snprintf(msg, sizeof(msg), "Value at:%p refcount:%lld encoding:%s serializedlength:%zu lru:%u lru_seconds_idle:%lld",
             (void *) o, kv_db_refcount(db, o), kv_db_enc_name(o->enc), slen ? slen : 1, o->lru & 0xffffff,
             kv_db_idle_seconds(db, o));
    kv_reply_status(&c->out, msg);
}

/* DEBUG OBJECT runs on the key's owner: the table entry is LOCAL (DEBUG
 * SLEEP blocks the worker holding the client, as Redis blocks its one
 * thread), so the handler routes OBJECT itself through this entry. */
static const kv_cmd_t debug_on_key = { "debug", -2, KV_CMD_ADMIN, 2, 2, 1, KV_ROUTE_KEY, debug_object, "server", "1.0.0",
                                       NULL, NULL };

static const char *const debug_help[] = {
    "OBJECT <key>",
    "    Show low-level info about the `key` and associated value.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    NULL,
};

static void debug_cmd(kv_client_t *c)
{
    if (kv_arg_is(&c->argv[1], "help")) {
        kv_srv_reply_help(c, "DEBUG", debug_help);
    } else if (kv_arg_is(&c->argv[1], "sleep") && c->argc == 3) {
        char buf[64];
        size_t n = c->argv[2].len < sizeof(buf) - 1 ? c->argv[2].len : sizeof(buf) - 1;
        memcpy(buf, c->argv[2].ptr, n);
        buf[n] = '\0';
        double secs = strtod(buf, NULL);
        if (secs > 0 && isfinite(secs)) {
            struct timespec ts = { (time_t) secs, (long) ((secs - floor(secs)) * 1e9) };
            while (nanosleep(&ts, &ts) != 0) { }
        }
        kv_reply_ok(&c->out);
    } else if (kv_arg_is(&c->argv[1], "object") && c->argc == 3) {
        if (kv_client_is_conn(c) && c->srv->nshards > 1) kv_fwd_dispatch(c, &debug_on_key);
        else debug_object(c);
    } else {
        int n = kv_arg_cstrlen(&c->argv[1]);
        kv_reply_errorf(&c->out, "unknown subcommand or wrong number of arguments for '%.*s'. Try DEBUG HELP.",
                        n > 128 ? 128 : n, c->argv[1].ptr);
    }
}

/* ---- SHUTDOWN ---------------------------------------------------------------------- */

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: asks the master to stop
 * (SIGTERM: every worker finishes what it read, flushes and exits). As
 * with Redis, the client gets no reply: its connection is closed. NOSAVE
 * and SAVE reach every worker through the shared segment, set before the
 * signal: each one skips, or makes, its final snapshot as it exits. */
static void shutdown_cmd(kv_client_t *c)
{
    int nosave = 0, save = 0, other = 0, abort_ = 0;
    for (int i = 1; i < c->argc; i++) {
        if (kv_arg_is(&c->argv[i], "nosave")) nosave = 1;
        else if (kv_arg_is(&c->argv[i], "save")) save = 1;
        else if (kv_arg_is(&c->argv[i], "now") || kv_arg_is(&c->argv[i], "force")) other = 1;
        else if (kv_arg_is(&c->argv[i], "abort")) abort_ = 1;
        else {
            kv_reply_syntax(c);
            return;
        }
    }
    if ((abort_ && (nosave || save || other)) || (nosave && save)) {
        kv_reply_syntax(c);
        return;
    }
    if (abort_) {
        kv_reply_error_cstr(&c->out, "No shutdown in progress.");
        return;
    }
    kv_log_warning("User requested shutdown...");
    if (c->srv->seg)
        atomic_store(&c->srv->seg->shutdown_save, nosave ? KV_SHUTDOWN_SAVE_NONE
                                            : save ? KV_SHUTDOWN_SAVE_FORCED : KV_SHUTDOWN_SAVE_AS_CONFIGURED);
    kill(getppid(), SIGTERM);
    kv_client_close_after_reply(c);
}

#define ADMIN (KV_CMD_ADMIN | KV_CMD_NOSCRIPT | KV_CMD_LOADING | KV_CMD_STALE)

const kv_cmd_t kv_server_cmds[] = {
    { "command", -1, KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, KV_ROUTE_LOCAL, command_cmd, "server", "2.8.13",
      "Get array of Redis command details" },
    { "config", -2, ADMIN, 0, 0, 0, KV_ROUTE_LOCAL, kv_config_cmd, "server", "2.0.0",
      "A container for server configuration commands" },
    { "debug", -2, ADMIN, 0, 0, 0, KV_ROUTE_LOCAL, debug_cmd, "server", "1.0.0",
      "A container for debugging commands" },
    { "info", -1, KV_CMD_LOADING | KV_CMD_STALE | KV_CMD_RANDOM, 0, 0, 0, KV_ROUTE_ALL, kv_info_cmd, "server",
      "1.0.0", "Get information and statistics about the server", kv_info_combine },
    { "lastsave", 1, KV_CMD_LOADING | KV_CMD_STALE | KV_CMD_FAST | KV_CMD_RANDOM, 0, 0, 0, KV_ROUTE_ALL,
      kv_snapshot_lastsave_cmd, "server", "1.0.0", "Get the UNIX time stamp of the last successful save to disk",
      kv_snapshot_lastsave_combine },
    { "shutdown", -1, ADMIN, 0, 0, 0, KV_ROUTE_LOCAL, shutdown_cmd, "server", "1.0.0",
      "Synchronously save the dataset to disk and then shut down the server" },
    { "time", 1, KV_CMD_LOADING | KV_CMD_STALE | KV_CMD_FAST | KV_CMD_RANDOM, 0, 0, 0, KV_ROUTE_LOCAL, time_cmd,
      "server", "2.6.0", "Return the current server time" },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
