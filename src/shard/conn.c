/*
 * Client connections: read into the query buffer, parse every complete
 * request (pipelining), run each, then write all replies of the batch with
 * one writev (uv_try_write first, uv_write for the rest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/log.h"
#include "core/time.h"
#include "shard/cmd.h"
#include "shard/conn.h"
#include "shard/forward.h"
#include "shard/multi.h"
#include "persist/aof.h"
#include "shard/pubsub.h"

#define QBUF_MIN        (16 * 1024)
/* Stop reading a client whose unsent replies exceed this; resume once the
 * socket drained them. Keeps a pipelining client from growing memory
 * without bound when it does not read. */
#define OUT_PAUSE_BYTES (1024 * 1024)
#define WRITE_IOV_MAX   64
/* How often idle clients are looked for (limits.timeout is in seconds, as
 * Redis's, whose clientsCron also visits every client about once a second). */
#define SWEEP_MS        1000

static void process_input(kv_client_t *c);
static void flush_output(kv_client_t *c);
static void client_close(kv_client_t *c);

/* limits.timeout: close clients idle for longer (Redis's
 * clientsCronHandleTimeout). A client waiting for a reply it is owed (a
 * forwarded or blocked command) is not idle. */
static void sweep_cb(uv_timer_t *t)
{
    kv_server_t *s = t->data;
    uint64_t limit = s->conf->timeout_s * 1000, now = uv_now(s->loop);
    s->ops_sec = s->commands - s->ops_prev;     /* INFO instantaneous_ops_per_sec */
    s->ops_prev = s->commands;
    if (limit == 0) return;
    for (kv_client_t *c = s->clients; c; c = c->next) {
        if (c->closing || c->slots_head || now - c->last_ms <= limit) continue;
        kv_log_verbose("Closing idle client id=%llu", (unsigned long long) c->id);
        client_close(c);
    }
}

void kv_server_init(kv_server_t *s, uv_loop_t *loop, kv_shard_ctl_t *ctl, kv_conf_t *conf)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop, s->ctl = ctl, s->conf = conf;
    s->next_id = 1;
    s->start_unix_ms = kv_time_unix_ms();
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *) &s->sweep);    /* never keeps the loop alive */
}

void kv_server_publish_stats(kv_server_t *s)
{
    atomic_store_explicit(&s->ctl->commands, s->commands, memory_order_relaxed);
    atomic_store_explicit(&s->ctl->clients, s->nconns, memory_order_relaxed);
}

/* ---- lifecycle ------------------------------------------------------------ */

/* The handle is closed: nothing refers to the client any more. */
static void client_free_cb(uv_handle_t *h)
{
    kv_client_t *c = h->data;
    kv_server_t *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    kv_resp_free(&c->parser);
    kv_reply_buf_free(&c->out);
    free(c->qbuf);
    free(c->name);
    free(c);
    kv_server_publish_stats(s);
    if (s->shutting_down && s->nconns == 0 && s->on_drained) s->on_drained(s);
}

static void client_teardown(kv_client_t *c)
{
    kv_fwd_client_gone(c);
    kv_multi_client_gone(c);
    kv_aof_client_gone(c);
    if (c->ps) kv_pubsub_client_gone(c);    /* pub/sub: no more pushes */
    uv_close(&c->h.handle, client_free_cb);
}

static void client_close(kv_client_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    /* A cross-shard EXEC that began to run its commands goes on to its
     * end (atomicity); kv_client_resume tears the client down then. */
    if (kv_multi_running(c)) {
        uv_read_stop(&c->h.stream);
        c->close_waits = 1;
        return;
    }
    client_teardown(c);
}

void kv_client_close_after_reply(kv_client_t *c)
{
    c->close_after_reply = 1;
    uv_read_stop(&c->h.stream);
}

void kv_client_kill(kv_client_t *c, kv_client_t *self)
{
    if (c == self) kv_client_close_after_reply(c);
    else client_close(c);
}

static void fmt_addr(const struct sockaddr_storage *ss, int ok, int unix_sock, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (unix_sock) {
        const struct sockaddr_un *un = (const struct sockaddr_un *) ss;
        snprintf(out, cap, "%s:0", ok && un->sun_family == AF_UNIX ? un->sun_path : "");
        return;
    }
    if (!ok) { snprintf(out, cap, "?:0"); return; }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) ss;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, cap, "%s:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *) ss;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, cap, "%s:%d", ip, ntohs(a->sin_port));
    }
}

/* Both addresses at once, on first use: CLIENT LIST/KILL only, so the
 * accept path makes no extra syscall. */
static void cache_addrs(kv_client_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss), is_unix = c->h.handle.type == UV_NAMED_PIPE;
    if (c->addr[0] || !kv_client_is_conn(c)) return;
    if (is_unix) {
        /* Redis prints the listening socket's path for both. */
        size_t n = sizeof(ss);
        int ok = uv_pipe_getsockname(&c->h.pipe, (char *) &ss, &n) == 0;
        snprintf(c->laddr, sizeof(c->laddr), "%.*s:0", ok ? (int) n : 0, (char *) &ss);
        snprintf(c->addr, sizeof(c->addr), "%s", c->laddr);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    fmt_addr(&ss, uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *) &ss, &len) == 0, 0, c->addr, sizeof(c->addr));
    len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    fmt_addr(&ss, uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *) &ss, &len) == 0, 0, c->laddr, sizeof(c->laddr));
}

const char *kv_client_addr(kv_client_t *c) { cache_addrs(c); return c->addr; }
const char *kv_client_laddr(kv_client_t *c) { cache_addrs(c); return c->laddr; }

/* ---- reading ------------------------------------------------------------------ */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kv_client_t *c = h->data;
    size_t want = kv_resp_want(&c->parser, c->qlen);
    size_t need = want > QBUF_MIN ? want : QBUF_MIN;
    (void) hint;
    if (c->qcap - c->qlen < need) {
        size_t cap = c->qcap ? c->qcap : QBUF_MIN;
        while (cap - c->qlen < need) cap *= 2;
        char *nb = realloc(c->qbuf, cap);
        if (!nb) { *buf = uv_buf_init(NULL, 0); return; }
        c->qbuf = nb, c->qcap = cap;
    }
    *buf = uv_buf_init(c->qbuf + c->qlen, (unsigned) (c->qcap - c->qlen));
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    kv_client_t *c = st->data;
    (void) buf;
    if (nread < 0) {
        client_close(c);          /* EOF or error: nothing more to answer */
        return;
    }
    if (nread == 0) return;
    c->qlen += (size_t) nread;
    c->srv->stat_net_in += (uint64_t) nread;
    c->last_ms = uv_now(c->srv->loop);
    process_input(c);
    /* What is left is one incomplete request: Redis's
     * client-query-buffer-limit closes a client whose request outgrows it. */
    if (c->qlen > c->srv->conf->client_query_buffer_limit && !c->closing) {
        kv_log_warning("Closing client that reached max query buffer length: id=%llu qbuf=%zu",
                       (unsigned long long) c->id, c->qlen);
        client_close(c);
        return;
    }
    kv_fwd_flush_later(c);              /* with this turn's forwarded replies */
}

/* requirepass is set and c has not authenticated: only KV_CMD_NOAUTH
 * commands run (after the unknown-command and arity checks, as Redis). */
static int refuse_unauthenticated(kv_client_t *c)
{
    const kv_cmd_t *cmd = kv_cmd_lookup(c->argv[0].ptr, c->argv[0].len);
    if (!cmd || !kv_cmd_arity_ok(cmd, c->argc) || (cmd->flags & KV_CMD_NOAUTH)) return 0;
    kv_slot_t *held = kv_fwd_hold(c);
    kv_reply_error_cstr(&c->out, "-NOAUTH Authentication required.");
    kv_fwd_release(c, held);
    return 1;
}

static void process_input(kv_client_t *c)
{
    int rc = KV_RESP_NEED_MORE;
    const kv_conf_t *conf = c->srv->conf;
    c->in_input = 1;
    /* Limits may change at any time (CONFIG SET, reload): two stores here
     * keep every client current without a walk over all of them. */
    c->parser.max_bulk_len = (long long) conf->proto_max_bulk_len;
    c->parser.unauth = kv_client_auth_needed(c);
    while (!c->close_after_reply && !c->barrier
           && (rc = kv_resp_parse(&c->parser, c->qbuf, c->qlen)) == KV_RESP_OK) {
        c->argc = c->parser.argc;
        c->argv = c->parser.argv;
        size_t n = c->argv[0].len < sizeof(c->lastcmd) ? c->argv[0].len : sizeof(c->lastcmd);
        memcpy(c->lastcmd, c->argv[0].ptr, n);
        c->lastcmd_len = (uint8_t) n;
        if (c->parser.unauth && refuse_unauthenticated(c)) continue;
        kv_cmd_dispatch(c);
        c->parser.unauth = kv_client_auth_needed(c);   /* AUTH, RESET */
    }
    c->in_input = 0;
    if (!c->close_after_reply && rc == KV_RESP_ERR) {
        kv_slot_t *held = kv_fwd_hold(c);
        kv_reply_errorf(&c->out, "%s", c->parser.err);
        kv_fwd_release(c, held);
        kv_log_verbose("protocol error from client id=%llu: %s", (unsigned long long) c->id,
                       c->parser.err);
        kv_client_close_after_reply(c);
        return;
    }
    size_t n = kv_resp_consumed(&c->parser);
    if (n > 0) {
        memmove(c->qbuf, c->qbuf + n, c->qlen - n);
        c->qlen -= n;
        kv_resp_discard(&c->parser, n);
    }
    /* An idle connection should not keep a large buffer. */
    if (c->qlen == 0 && c->qcap > 4 * QBUF_MIN) {
        free(c->qbuf);
        c->qbuf = NULL, c->qcap = 0;
    }
}

/* ---- writing ------------------------------------------------------------------- */

static void write_cb(uv_write_t *req, int status)
{
    kv_client_t *c = req->data;
    c->writing = 0;
    if (status < 0) {
        client_close(c);
        return;
    }
    kv_reply_buf_consume(&c->out, c->inflight);
    c->srv->stat_net_out += c->inflight;
    c->last_ms = uv_now(c->srv->loop);
    c->inflight = 0;
    flush_output(c);
}

static void flush_output(kv_client_t *c)
{
    if (c->closing) return;
    uint64_t limit = c->srv->conf->output_buffer_limit;
    if (limit && kv_reply_buf_len(&c->out) > limit) {
        /* Redis's client-output-buffer-limit (hard) for normal clients. */
        kv_log_warning("Client id=%llu closed for overcoming of output buffer limits (%zu bytes)",
                       (unsigned long long) c->id, kv_reply_buf_len(&c->out));
        client_close(c);
        return;
    }
    if (c->writing) return;
    /* AOF group commit (DESIGN invariant 4, persist/aof.h): while this
     * loop turn's commands are not yet written (+fsynced), replies wait;
     * the commit (one per loop turn, for all clients) flushes them. */
    if (kv_aof_hold_output(c)) return;
    struct iovec iov[WRITE_IOV_MAX];
    int n = kv_reply_buf_iov(&c->out, iov, WRITE_IOV_MAX);
    if (n > 0) {
        /* uv_buf_t and struct iovec share a layout on Unix. */
        int w = uv_try_write(&c->h.stream, (uv_buf_t *) iov, (unsigned) n);
        if (w > 0) kv_reply_buf_consume(&c->out, (size_t) w), c->srv->stat_net_out += (uint64_t) w;
        else if (w < 0 && w != UV_EAGAIN) { client_close(c); return; }
        n = kv_reply_buf_iov(&c->out, iov, WRITE_IOV_MAX);
    }
    if (n > 0) {
        size_t bytes = 0;
        for (int i = 0; i < n; i++) bytes += iov[i].iov_len;
        c->inflight = bytes;
        c->writing = 1;
        c->wreq.data = c;
        if (uv_write(&c->wreq, &c->h.stream, (uv_buf_t *) iov, (unsigned) n, write_cb) != 0) {
            c->writing = 0;
            client_close(c);
            return;
        }
    }
    size_t queued = kv_reply_buf_len(&c->out);
    if (queued == 0 && c->close_after_reply && !c->slots_head) {
        client_close(c);
        return;
    }
    if (!c->close_after_reply && !c->srv->shutting_down) {
        if (queued > OUT_PAUSE_BYTES && !c->paused) {
            c->paused = 1;
            uv_read_stop(&c->h.stream);
        } else if (queued <= OUT_PAUSE_BYTES && c->paused) {
            c->paused = 0;
            uv_read_start(&c->h.stream, alloc_cb, read_cb);
            if (c->qlen) {            /* requests read before the pause */
                process_input(c);
                flush_output(c);
            }
        }
    }
}

void kv_client_flush(kv_client_t *c) { flush_output(c); }

void kv_client_resume(kv_client_t *c)
{
    c->barrier = 0;
    if (c->multi && kv_multi_resume(c)) return;     /* a cross-shard EXEC goes on */
    if (c->closing) {
        if (c->close_waits) {           /* it waited for that EXEC to end */
            c->close_waits = 0;
            client_teardown(c);
        }
        return;
    }
    /* Inside process_input (the chain finished at once) its loop goes on. */
    if (c->in_input || c->paused) return;
    process_input(c);
    kv_fwd_flush_later(c);              /* with the replies still to come this turn */
}

/* ---- accept / shutdown ----------------------------------------------------------- */

/* Clients of every worker: each publishes its count at every accept and
 * close (kv_server_publish_stats), so the sum is current. Two workers
 * accepting at the same instant may both pass: maxclients can be exceeded
 * by at most shards - 1, never by more. */
static uint64_t clients_everywhere(kv_server_t *s)
{
    const kv_shard_ctl_t *all = s->ctl - s->shard;     /* seg->shard[0] */
    uint64_t n = 0;
    int shards = s->nshards > 0 ? s->nshards : 1;
    for (int i = 0; i < shards; i++) n += atomic_load_explicit(&all[i].clients, memory_order_relaxed);
    return n;
}

/* maxclients reached: Redis writes the error on the fresh socket, best
 * effort, and closes it. */
static void reject(kv_client_t *c)
{
    static char msg[] = "-ERR max number of clients reached\r\n";
    uv_buf_t b = uv_buf_init(msg, sizeof(msg) - 1);
    uv_try_write(&c->h.stream, &b, 1);
    c->srv->stat_rejected++;
    client_close(c);
}

void kv_conn_accept(kv_server_t *s, uv_stream_t *listener)
{
    int full = clients_everywhere(s) >= s->conf->maxclients;
    kv_client_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    if (listener->type == UV_NAMED_PIPE) uv_pipe_init(s->loop, &c->h.pipe, 0);
    else uv_tcp_init(s->loop, &c->h.tcp);
    c->h.handle.data = c;
    c->srv = s;
    c->db = s->db;
    c->id = s->next_id++ * (uint64_t) (s->nshards > 0 ? s->nshards : 1) + (uint64_t) s->shard;
    c->ctime_ms = c->last_ms = uv_now(s->loop);
    /* Redis: a client starts authenticated when the default user needs no
     * password; CONFIG SET requirepass later does not log it out. */
    c->authed = s->conf->requirepass[0] == '\0';
    kv_resp_init(&c->parser);
    kv_reply_buf_init(&c->out);
    c->next = s->clients;
    if (s->clients) s->clients->prev = c;
    s->clients = c;
    s->nconns++;
    if (uv_accept(listener, &c->h.stream) != 0) {
        client_close(c);
        return;
    }
    if (full) {
        reject(c);
        return;
    }
    s->stat_conns++;
    if (listener->type == UV_TCP) uv_tcp_nodelay(&c->h.tcp, 1);
    uv_read_start(&c->h.stream, alloc_cb, read_cb);
    kv_server_publish_stats(s);
}

void kv_server_shutdown(kv_server_t *s)
{
    if (!s->shutting_down && !uv_is_closing((uv_handle_t *) &s->sweep))
        uv_close((uv_handle_t *) &s->sweep, NULL);
    s->shutting_down = 1;
    if (s->nconns == 0) {
        if (s->on_drained) s->on_drained(s);
        return;
    }
    for (kv_client_t *c = s->clients, *next; c; c = next) {
        next = c->next;
        uv_read_stop(&c->h.stream);
        c->close_after_reply = 1;
        /* A blocked client would keep the worker up until it is killed
         * (timeout 0): it is closed, as Redis closes it at shutdown. */
        if (c->bslot || (!c->writing && kv_reply_buf_len(&c->out) == 0 && !c->slots_head)) client_close(c);
    }
}
