/* The connection group: PING, ECHO, QUIT, AUTH, HELLO, RESET, SELECT and
 * CLIENT (cmd_client.c). All run on the worker holding the client. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard/cmd_server.h"
#include "shard/multi.h"
#include "shard/pubsub.h"

static void ping_cmd(kv_client_t *c)
{
    if (c->argc > 2) {
        kv_cmd_reply_arity(c, kv_cmd_lookup("ping", 4));
        return;
    }
    if (kv_pubsub_active(c)) {             /* subscribed mode: *2 pong <arg> */
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, "pong", 4);
        kv_reply_bulk(&c->out, c->argc == 2 ? c->argv[1].ptr : "", c->argc == 2 ? c->argv[1].len : 0);
    } else if (c->argc == 2) kv_reply_bulk(&c->out, c->argv[1].ptr, c->argv[1].len);
    else kv_reply_status(&c->out, "PONG");
}

static void echo_cmd(kv_client_t *c) { kv_reply_bulk(&c->out, c->argv[1].ptr, c->argv[1].len); }

static void quit_cmd(kv_client_t *c)
{
    kv_reply_ok(&c->out);
    kv_client_close_after_reply(c);
}

/* Time-independent comparison, so a wrong password's timing tells nothing
 * about how much of it was right (Redis compares SHA-256 digests). */
static int secret_eq(const kv_resp_arg *a, const char *secret)
{
    size_t n = strlen(secret);
    unsigned char diff = (unsigned char) (a->len != n);
    for (size_t i = 0; i < a->len; i++) diff |= (unsigned char) (a->ptr[i] ^ secret[n ? i % n : 0]);
    return diff == 0;
}

/* Redis has one user, "default", whose password is requirepass (none:
 * any password is accepted, as for Redis's "nopass" default user). */
static int check_user(kv_client_t *c, const kv_resp_arg *user, const kv_resp_arg *pass)
{
    const char *req = c->srv->conf->requirepass;
    int ok = user->len == 7 && memcmp(user->ptr, "default", 7) == 0 && (!req[0] || secret_eq(pass, req));
    if (!ok) {
        kv_reply_error_cstr(&c->out, "-WRONGPASS invalid username-password pair or user is disabled.");
        return 0;
    }
    c->authed = 1;
    return 1;
}

static void auth_cmd(kv_client_t *c)
{
    static const kv_resp_arg def = { "default", 7 };
    if (c->argc > 3) {
        kv_reply_syntax(c);
        return;
    }
    if (c->argc == 2 && !c->srv->conf->requirepass[0]) {
        kv_reply_error_cstr(&c->out, "AUTH <password> called without any password configured for "
                                     "the default user. Are you sure your configuration is correct?");
        return;
    }
    if (c->argc == 2 ? check_user(c, &def, &c->argv[1]) : check_user(c, &c->argv[1], &c->argv[2]))
        kv_reply_ok(&c->out);
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]. kevy speaks RESP2
 * only: protocol 3 gets -NOPROTO, which clients take as "use RESP2". */
static void hello_cmd(kv_client_t *c)
{
    const kv_resp_arg *user = NULL, *pass = NULL;
    if (c->argc >= 2) {
        long long ver;
        if (!kv_str2ll(c->argv[1].ptr, c->argv[1].len, &ver)) {
            kv_reply_error_cstr(&c->out, "Protocol version is not an integer or out of range");
            return;
        }
        if (ver != 2) {
            kv_reply_error_cstr(&c->out, "-NOPROTO unsupported protocol version");
            return;
        }
    }
    for (int j = 2; j < c->argc; j++) {
        int more = c->argc - 1 - j;
        if (kv_arg_is(&c->argv[j], "auth") && more >= 2) {
            user = &c->argv[j + 1], pass = &c->argv[j + 2];
            j += 2;
        } else if (kv_arg_is(&c->argv[j], "setname") && more) {
            /* Redis 7.0 names the client as it parses: a later syntax
             * error or failed AUTH leaves the name set. */
            if (kv_client_setname(c, &c->argv[++j]) != 0) return;
        } else {
            kv_reply_errorf(&c->out, "Syntax error in HELLO option '%.*s'", kv_arg_cstrlen(&c->argv[j]),
                            c->argv[j].ptr);
            return;
        }
    }
    if (kv_client_auth_needed(c) && !user) {
        kv_reply_error_cstr(&c->out, "-NOAUTH HELLO must be called with the client already authenticated, "
                            "otherwise the HELLO AUTH <user> <pass> option can be used to "
                            "authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if (user && !check_user(c, user, pass)) return;
    kv_reply_array(&c->out, 14);
    kv_reply_bulk_cstr(&c->out, "server");
    kv_reply_bulk_cstr(&c->out, KV_COMPAT_SERVER);
    kv_reply_bulk_cstr(&c->out, "version");
    kv_reply_bulk_cstr(&c->out, KV_COMPAT_VERSION);
    kv_reply_bulk_cstr(&c->out, "proto");
    kv_reply_int(&c->out, 2);
    kv_reply_bulk_cstr(&c->out, "id");
    kv_reply_int(&c->out, (long long) c->id);
    kv_reply_bulk_cstr(&c->out, "mode");
    kv_reply_bulk_cstr(&c->out, "standalone");
    kv_reply_bulk_cstr(&c->out, "role");
    kv_reply_bulk_cstr(&c->out, "master");
    kv_reply_bulk_cstr(&c->out, "modules");
    kv_reply_array(&c->out, 0);
}

/* RESET: back to a fresh connection's state (Redis's
 * clearClientConnectionState): no name, database 0, RESP2, no-evict off,
 * and logged out when a password is required. */
static void reset_cmd(kv_client_t *c)
{
    free(c->name);
    c->name = NULL;
    c->dbnum = 0;
    c->no_evict = 0;
    kv_pubsub_reset(c);                     /* leaves subscribed mode */
    kv_multi_reset(c);                      /* leaves MULTI, unwatches */
    c->authed = c->srv->conf->requirepass[0] == '\0';
    kv_reply_status(&c->out, "RESET");
}

/* One database: index 0 only (Redis's cluster mode makes the same choice;
 * the error is the one Redis gives for an index past `databases`). */
static void select_cmd(kv_client_t *c)
{
    long long id;
    if (!kv_str2ll(c->argv[1].ptr, c->argv[1].len, &id)) {
        kv_reply_error_cstr(&c->out, KV_ERR_NOT_INT);
        return;
    }
    if (id < INT32_MIN || id > INT32_MAX) {
        kv_reply_error_cstr(&c->out, "value is out of range, value must between -2147483648 and 2147483647");
        return;
    }
    if (id != 0) {
        kv_reply_error_cstr(&c->out, "DB index is out of range");
        return;
    }
    c->dbnum = 0;
    kv_reply_ok(&c->out);
}

#define CONN_FLAGS (KV_CMD_FAST | KV_CMD_LOADING | KV_CMD_STALE)
#define NOAUTH_FLAGS (CONN_FLAGS | KV_CMD_NOSCRIPT | KV_CMD_NOAUTH)

const kv_cmd_t kv_connection_cmds[] = {
    { "auth", -2, NOAUTH_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, auth_cmd, "connection", "1.0.0",
      "Authenticate to the server" },
    { "client", -2, KV_CMD_LOADING | KV_CMD_STALE | KV_CMD_NOSCRIPT, 0, 0, 0, KV_ROUTE_LOCAL, kv_client_cmd,
      "connection", "2.4.0", "A container for client connection commands" },
    { "echo", 2, KV_CMD_FAST, 0, 0, 0, KV_ROUTE_LOCAL, echo_cmd, "connection", "1.0.0",
      "Echo the given string" },
    { "hello", -1, NOAUTH_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, hello_cmd, "connection", "6.0.0",
      "Handshake with Redis" },
    { "ping", -1, KV_CMD_FAST, 0, 0, 0, KV_ROUTE_LOCAL, ping_cmd, "connection", "1.0.0",
      "Ping the server" },
    { "quit", -1, NOAUTH_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, quit_cmd, "connection", "1.0.0",
      "Close the connection" },
    { "reset", 1, NOAUTH_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, reset_cmd, "connection", "6.2.0",
      "Reset the connection" },
    { "select", 2, CONN_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, select_cmd, "connection", "1.0.0",
      "Change the selected database for the current connection" },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
