/*
 * The command table and dispatch. Handlers live with their data type
 * (t_string.c, ...); the connection commands are here until they grow.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shard/cmd.h"

static void ping_cmd(kv_client_t *c)
{
    if (c->argc > 2) {
        kv_reply_errorf(&c->out, "wrong number of arguments for 'ping' command");
        return;
    }
    if (c->argc == 2) kv_reply_bulk(&c->out, c->argv[1].ptr, c->argv[1].len);
    else kv_reply_status(&c->out, "PONG");
}

static void echo_cmd(kv_client_t *c) { kv_reply_bulk(&c->out, c->argv[1].ptr, c->argv[1].len); }

static void quit_cmd(kv_client_t *c)
{
    kv_reply_ok(&c->out);
    kv_client_close_after_reply(c);
}

/* Sorted by name: lookup is a binary search. */
static const kv_cmd_t table[] = {
    { "echo", 2,  KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, echo_cmd },
    { "ping", -1, KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, ping_cmd },
    { "quit", -1, KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE | KV_CMD_NOAUTH, 0, 0, 0, quit_cmd },
};

#define NCMDS (sizeof(table) / sizeof(table[0]))

const kv_cmd_t *kv_cmd_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = NCMDS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *n = table[mid].name;
        size_t nl = strlen(n);
        int r = strncasecmp(name, n, len < nl ? len : nl);
        if (r == 0) r = len < nl ? -1 : len > nl;
        if (r == 0) return &table[mid];
        if (r < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* Redis prints C strings here: stop at a NUL as %s would. */
static int cstr_len(const kv_resp_arg *a, int max)
{
    const char *nul = memchr(a->ptr, '\0', a->len);
    size_t n = nul ? (size_t) (nul - a->ptr) : a->len;
    return (int) (n < (size_t) max ? n : (size_t) max);
}

static void reply_unknown(kv_client_t *c)
{
    char args[256];
    size_t used = 0;
    args[0] = '\0';
    for (int i = 1; i < c->argc && used < 128; i++) {
        int n = cstr_len(&c->argv[i], 128 - (int) used);
        used += (size_t) snprintf(args + used, sizeof(args) - used, "'%.*s' ", n, c->argv[i].ptr);
    }
    kv_reply_errorf(&c->out, "unknown command '%.*s', with args beginning with: %s",
                    cstr_len(&c->argv[0], 128), c->argv[0].ptr, args);
}

void kv_cmd_dispatch(kv_client_t *c)
{
    const kv_cmd_t *cmd = kv_cmd_lookup(c->argv[0].ptr, c->argv[0].len);
    if (!cmd) {
        reply_unknown(c);
        return;
    }
    if ((cmd->arity > 0 && c->argc != cmd->arity) || (cmd->arity < 0 && c->argc < -cmd->arity)) {
        kv_reply_errorf(&c->out, "wrong number of arguments for '%s' command", cmd->name);
        return;
    }
    c->srv->commands++;
    cmd->proc(c);
}
