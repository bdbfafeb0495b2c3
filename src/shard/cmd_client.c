/*
 * CLIENT ID|SETNAME|GETNAME|INFO|LIST|KILL|UNBLOCK|NO-EVICT|GETREDIR|
 * UNPAUSE|HELP.
 *
 * Each worker knows only its own connections, so LIST, KILL and UNBLOCK
 * run on every worker (kv_srv_fanout) and the origin combines: LIST
 * concatenates the lines in id order (Redis lists oldest first, and ids
 * grow with age), KILL and UNBLOCK add up the counts. Ids are unique
 * across workers (conn.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/cmd_server.h"
#include "shard/forward.h"
#include "shard/pubsub.h"

/* The client running CLIENT LIST/KILL while its own worker's part runs:
 * the router runs every part, the local one too, with a stand-in client,
 * so the parts learn here which connection is "me" (cmd=client|list,
 * SKIPME). Parts run synchronously inside kv_srv_fanout(); on a peer this
 * is NULL. */
static kv_client_t *origin;

/* ---- names ------------------------------------------------------------------ */

int kv_client_name_ok(const kv_resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~') return 0;
    return 1;
}

int kv_client_setname(kv_client_t *c, const kv_resp_arg *a)
{
    if (!kv_client_name_ok(a)) {
        kv_reply_error_cstr(&c->out, "Client names cannot contain spaces, newlines or special characters.");
        return -1;
    }
    free(c->name);
    c->name = NULL;
    if (a->len) {
        c->name = malloc(a->len + 1);
        if (!c->name) abort();
        memcpy(c->name, a->ptr, a->len);
        c->name[a->len] = '\0';
    }
    return 0;
}

/* ---- one CLIENT LIST line -------------------------------------------------------- */

/* The last command's name as Redis prints it (lower case; "NULL" before
 * any, or after an unknown one). The running command shows its
 * subcommand, as Redis's "client|list". */
static void last_cmd(kv_client_t *cl, kv_client_t *self, char *out, size_t cap)
{
    if (cl == self && self->argc >= 2) {
        int n = kv_arg_cstrlen(&self->argv[1]);
        snprintf(out, cap, "client|%.*s", n > 32 ? 32 : n, self->argv[1].ptr);
        for (char *p = out; *p; p++) if (*p >= 'A' && *p <= 'Z') *p += 'a' - 'A';
        return;
    }
    const kv_cmd_t *cmd = cl->lastcmd_len ? kv_cmd_lookup(cl->lastcmd, cl->lastcmd_len) : NULL;
    snprintf(out, cap, "%s", cmd ? cmd->name : "NULL");
}

static void client_line(kv_sbuf_t *b, kv_client_t *cl, kv_client_t *self)
{
    uint64_t now = uv_now(cl->srv->loop);
    char flags[8], *f = flags, cmd[48], events[3], *e = events;
    uv_os_fd_t fd = -1;
    size_t argv_mem = 0;
    if (kv_pubsub_active(cl)) *f++ = 'P';
    if (cl->bslot) *f++ = 'b';          /* a blocking command waits (forward.c) */
    if (cl->close_after_reply) *f++ = 'c';
    if (cl->closing) *f++ = 'A';
    if (cl->h.handle.type == UV_NAMED_PIPE) *f++ = 'U';
    if (cl->no_evict) *f++ = 'e';
    if (f == flags) *f++ = 'N';
    *f = '\0';
    if (!cl->close_after_reply && !cl->paused && !cl->closing) *e++ = 'r';
    if (cl->writing) *e++ = 'w';
    *e = '\0';
    if (uv_fileno(&cl->h.handle, &fd) != 0) fd = -1;
    if (cl == self)
        for (int i = 0; i < self->argc; i++) argv_mem += self->argv[i].len;
    last_cmd(cl, self, cmd, sizeof(cmd));
    size_t name_len = cl->name ? strlen(cl->name) : 0;
    size_t omem = kv_reply_buf_mem(&cl->out);
    int sub, psub, ssub;
    kv_pubsub_counts(cl, &sub, &psub, &ssub);
    kv_sbuf_printf(b,
              "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=%s db=%d sub=%d psub=%d "
              "ssub=%d multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=%zu multi-mem=0 rbs=%d rbp=0 obl=%zu oll=0 "
              "omem=%zu tot-mem=%zu events=%s cmd=%s user=default redir=-1 resp=2\n",
              (unsigned long long) cl->id, kv_client_addr(cl), kv_client_laddr(cl), (int) fd,
              cl->name ? cl->name : "", (unsigned long long) ((now - cl->ctime_ms) / 1000),
              (unsigned long long) (cl == self ? 0 : (now - cl->last_ms) / 1000), flags, cl->dbnum, sub, psub, ssub,
              cl->qlen, cl->qcap - cl->qlen, argv_mem, KV_REPLY_BLOCK_BYTES, kv_reply_buf_len(&cl->out),
              omem, sizeof(*cl) + cl->qcap + omem + name_len + argv_mem, events, cmd);
}

/* ---- LIST -------------------------------------------------------------------------- */

/* Redis's getClientTypeByName: 0 normal, 1 replica, 2 pubsub, 3 master,
 * -1 unknown. kevy's clients are all "normal" as far as this file knows. */
static int client_type(const kv_resp_arg *a)
{
    if (kv_arg_is(a, "normal")) return 0;
    if (kv_arg_is(a, "slave") || kv_arg_is(a, "replica")) return 1;
    if (kv_arg_is(a, "pubsub")) return 2;
    if (kv_arg_is(a, "master")) return 3;
    return -1;
}

static int reply_bad_type(kv_client_t *c, const kv_resp_arg *a)
{
    kv_reply_errorf(&c->out, "Unknown client type '%.*s'", kv_arg_cstrlen(a), a->ptr);
    return -1;
}

/* This worker's part of CLIENT LIST [TYPE t | ID id ...]: one bulk. */
static void list_part(kv_client_t *c)
{
    kv_server_t *s = c->srv;
    kv_client_t *self = origin;
    kv_sbuf_t b = { 0 };
    int type = -1;
    if (c->argc == 4 && kv_arg_is(&c->argv[2], "type")) {
        if ((type = client_type(&c->argv[3])) < 0) {
            reply_bad_type(c, &c->argv[3]);
            return;
        }
    } else if (c->argc > 3 && kv_arg_is(&c->argv[2], "id")) {
        long long ids[c->argc];
        for (int j = 3; j < c->argc; j++) {
            if (!kv_str2ll(c->argv[j].ptr, c->argv[j].len, &ids[j])) {
                kv_reply_error_cstr(&c->out, "Invalid client ID");
                return;
            }
        }
        for (int j = 3; j < c->argc; j++)
            for (kv_client_t *cl = s->clients; cl; cl = cl->next)
                if ((long long) cl->id == ids[j]) client_line(&b, cl, self);
        kv_reply_bulk(&c->out, b.p ? b.p : "", b.len);
        free(b.p);
        return;
    } else if (c->argc != 2) {
        kv_reply_syntax(c);
        return;
    }
    /* s->clients is newest first; walk it backwards for oldest first. */
    kv_client_t *cl = s->clients;
    while (cl && cl->next) cl = cl->next;
    for (; cl; cl = cl->prev)
        if (type == -1 || type == (kv_pubsub_active(cl) ? 2 : 0)) client_line(&b, cl, self);
    kv_reply_bulk(&c->out, b.p ? b.p : "", b.len);
    free(b.p);
}

typedef struct {
    unsigned long long id;
    const char *p;
    size_t len;
} line_t;

static int by_id(const void *a, const void *b)
{
    const line_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void list_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    size_t nlines = 0, cap = 64, total = 0;
    line_t *lines = malloc(cap * sizeof(*lines));
    if (!lines) abort();
    for (int i = 0; i < nparts; i++) {
        const char *body = memchr(flat[i], '\n', len[i]), *end;
        if (flat[i][0] != '$' || !body) continue;
        body++;
        end = body + strtoll(flat[i] + 1, NULL, 10);
        while (body < end) {
            const char *nl = memchr(body, '\n', (size_t) (end - body));
            nl = nl ? nl + 1 : end;
            if (nlines == cap) {
                line_t *nb = realloc(lines, (cap *= 2) * sizeof(*lines));
                if (!nb) abort();
                lines = nb;
            }
            lines[nlines++] = (line_t) { strtoull(body + 3, NULL, 10), body, (size_t) (nl - body) };
            total += (size_t) (nl - body);
            body = nl;
        }
    }
    qsort(lines, nlines, sizeof(*lines), by_id);
    char hdr[32];
    kv_reply_raw(out, hdr, (size_t) snprintf(hdr, sizeof(hdr), "$%zu\r\n", total));
    for (size_t i = 0; i < nlines; i++) kv_reply_raw(out, lines[i].p, lines[i].len);
    kv_reply_raw(out, "\r\n", 2);
    free(lines);
}

/* ---- KILL ----------------------------------------------------------------------------- */

/* This worker's part of CLIENT KILL: the number killed, in both forms;
 * the origin's combiner turns it into the old form's +OK / error. */
static void kill_part(kv_client_t *c)
{
    const kv_resp_arg *addr = NULL, *laddr = NULL;
    int type = -1, skipme = 1;
    long long id = 0, killed = 0;
    kv_client_t *self = origin;
    if (c->argc == 3) {
        addr = &c->argv[2];
        skipme = 0;                     /* the old form may kill itself */
    } else if (c->argc > 3) {
        for (int i = 2; i < c->argc; i += 2) {
            const kv_resp_arg *opt = &c->argv[i], *val = &c->argv[i + 1];
            if (i + 1 >= c->argc) {
                kv_reply_syntax(c);
                return;
            }
            if (kv_arg_is(opt, "id")) {
                if (!kv_str2ll(val->ptr, val->len, &id) || id < 1) {
                    kv_reply_error_cstr(&c->out, "client-id should be greater than 0");
                    return;
                }
            } else if (kv_arg_is(opt, "type")) {
                if ((type = client_type(val)) < 0) {
                    reply_bad_type(c, val);
                    return;
                }
            } else if (kv_arg_is(opt, "addr")) {
                addr = val;
            } else if (kv_arg_is(opt, "laddr")) {
                laddr = val;
            } else if (kv_arg_is(opt, "user")) {
                if (!(val->len == 7 && !memcmp(val->ptr, "default", 7))) {
                    kv_reply_errorf(&c->out, "No such user '%.*s'", kv_arg_cstrlen(val), val->ptr);
                    return;
                }
            } else if (kv_arg_is(opt, "skipme")) {
                if (kv_arg_is(val, "yes")) skipme = 1;
                else if (kv_arg_is(val, "no")) skipme = 0;
                else {
                    kv_reply_syntax(c);
                    return;
                }
            } else {
                kv_reply_syntax(c);
                return;
            }
        }
    }
    for (kv_client_t *cl = c->srv->clients; cl; cl = cl->next) {
        if (cl->closing) continue;
        if (addr && (strlen(kv_client_addr(cl)) != addr->len || memcmp(cl->addr, addr->ptr, addr->len))) continue;
        if (laddr && (strlen(kv_client_laddr(cl)) != laddr->len || memcmp(cl->laddr, laddr->ptr, laddr->len)))
            continue;
        if (type >= 0 && type != (kv_pubsub_active(cl) ? 2 : 0)) continue;   /* normal or pubsub here */
        if (id && (long long) cl->id != id) continue;
        if (cl == self && skipme) continue;
        kv_client_kill(cl, self);
        killed++;
    }
    kv_reply_int(&c->out, killed);
}

static long long sum_ints(int nparts, char **flat, size_t *len)
{
    long long n = 0;
    for (int i = 0; i < nparts; i++) if (len[i] && flat[i][0] == ':') n += strtoll(flat[i] + 1, NULL, 10);
    return n;
}

static void kill_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    kv_reply_int(out, sum_ints(nparts, flat, len));
}

static void kill_old_combine(kv_reply_buf *out, int nparts, char **flat, size_t *len)
{
    if (sum_ints(nparts, flat, len) > 0) kv_reply_ok(out);
    else kv_reply_error_cstr(out, "No such client");
}

/* ---- UNBLOCK ---------------------------------------------------------------------------- */

/* CLIENT UNBLOCK id [TIMEOUT|ERROR]: the reason first, then the id, as
 * Redis; 0 after replying the error. */
static int unblock_args(kv_client_t *c, long long *id, int *mode)
{
    *mode = KV_UNBLOCK_TIMEOUT;
    if (c->argc == 4) {
        if (kv_arg_is(&c->argv[3], "timeout")) *mode = KV_UNBLOCK_TIMEOUT;
        else if (kv_arg_is(&c->argv[3], "error")) *mode = KV_UNBLOCK_ERROR;
        else {
            kv_reply_error_cstr(&c->out, "CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return 0;
        }
    }
    return kv_arg_ll(c, 2, id);
}

/* This worker's part: 1 when the client with that id is here and was
 * blocked (its command is cancelled where it waits, forward.c). */
static void unblock_part(kv_client_t *c)
{
    long long id;
    int mode, n = 0;
    if (!unblock_args(c, &id, &mode)) return;
    for (kv_client_t *cl = c->srv->clients; cl; cl = cl->next)
        if ((long long) cl->id == id && !cl->closing) n = kv_fwd_unblock(cl, mode);
    kv_reply_int(&c->out, n);
}

#define PART(proc, combine) \
    { "client", -2, KV_CMD_ADMIN, 0, 0, 0, KV_ROUTE_ALL, proc, "connection", "2.4.0", NULL, combine }
static const kv_cmd_t list_all = PART(list_part, list_combine);
static const kv_cmd_t kill_all = PART(kill_part, kill_combine);
static const kv_cmd_t kill_old_all = PART(kill_part, kill_old_combine);
static const kv_cmd_t unblock_all = PART(unblock_part, kill_combine);

/* ---- the command -------------------------------------------------------------------- */

static const kv_subcmd_t subs[] = {
    { "getname", 2 }, { "getredir", 2 }, { "help", 2 }, { "id", 2 }, { "info", 2 }, { "kill", -3 },
    { "list", -2 }, { "no-evict", 3 }, { "setname", 3 }, { "unblock", -3 }, { "unpause", 2 }, { NULL, 0 },
};

static const char *const help[] = {
    "GETNAME",
    "    Return the name of the current connection.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    NULL,
};

void kv_client_cmd(kv_client_t *c)
{
    const kv_subcmd_t *sub = kv_srv_subcmd(c, "client", subs);
    if (!sub) return;
    const char *n = sub->name;
    int standin = !kv_client_is_conn(c);
    if (!strcmp(n, "list") || !strcmp(n, "kill")) {
        if (standin) {
            if (n[0] == 'l') list_part(c);
            else kill_part(c);
            return;
        }
        origin = c;
        kv_srv_fanout(c, n[0] == 'l' ? &list_all : c->argc == 3 ? &kill_old_all : &kill_all);
        origin = NULL;
    } else if (!strcmp(n, "unblock")) {
        long long id;
        int mode;
        int sl = kv_arg_cstrlen(&c->argv[1]);
        if (c->argc > 4) {
            kv_reply_errorf(&c->out, "unknown subcommand or wrong number of arguments for '%.*s'. "
                            "Try CLIENT HELP.", sl > 128 ? 128 : sl, c->argv[1].ptr);
        } else if (standin) {
            unblock_part(c);
        } else if (unblock_args(c, &id, &mode)) {
            kv_srv_fanout(c, &unblock_all);
        }
    } else if (!strcmp(n, "id")) {
        kv_reply_int(&c->out, (long long) c->id);
    } else if (!strcmp(n, "info")) {
        kv_sbuf_t b = { 0 };
        client_line(&b, c, c);
        kv_reply_bulk(&c->out, b.p, b.len);
        free(b.p);
    } else if (!strcmp(n, "getname")) {
        if (c->name) kv_reply_bulk_cstr(&c->out, c->name);
        else kv_reply_null(&c->out);
    } else if (!strcmp(n, "setname")) {
        if (kv_client_setname(c, &c->argv[2]) == 0) kv_reply_ok(&c->out);
    } else if (!strcmp(n, "no-evict")) {
        if (kv_arg_is(&c->argv[2], "on")) c->no_evict = 1, kv_reply_ok(&c->out);
        else if (kv_arg_is(&c->argv[2], "off")) c->no_evict = 0, kv_reply_ok(&c->out);
        else kv_reply_syntax(c);
    } else if (!strcmp(n, "getredir")) {
        kv_reply_int(&c->out, -1);      /* no client-side caching */
    } else if (!strcmp(n, "unpause")) {
        kv_reply_ok(&c->out);           /* CLIENT PAUSE is not supported */
    } else {
        kv_srv_reply_help(c, "CLIENT", help);
    }
}
