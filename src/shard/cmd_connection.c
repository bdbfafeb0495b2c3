/* The connection group: PING, ECHO, QUIT (more with AUTH/HELLO/RESET). */
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

#define CONN_FLAGS (KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE)

const kv_cmd_t kv_connection_cmds[] = {
    { "echo", 2,  CONN_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, echo_cmd, "connection", "1.0.0",
      "Returns the given string." },
    { "ping", -1, CONN_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, ping_cmd, "connection", "1.0.0",
      "Returns the server's liveliness response." },
    { "quit", -1, CONN_FLAGS | KV_CMD_NOAUTH, 0, 0, 0, KV_ROUTE_LOCAL, quit_cmd, "connection", "1.0.0",
      "Closes the connection." },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
