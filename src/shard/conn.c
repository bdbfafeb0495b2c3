/*
 * Client connections: read into the query buffer, parse every complete
 * request (pipelining), run each, then write all replies of the batch with
 * one writev (uv_try_write first, uv_write for the rest).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "shard/cmd.h"
#include "shard/conn.h"
#include "shard/forward.h"

#define QBUF_MIN        (16 * 1024)
/* Stop reading a client whose unsent replies exceed this; resume once the
 * socket drained them. Keeps a pipelining client from growing memory
 * without bound when it does not read. */
#define OUT_PAUSE_BYTES (1024 * 1024)
#define WRITE_IOV_MAX   64

static void process_input(kv_client_t *c);
static void flush_output(kv_client_t *c);

void kv_server_init(kv_server_t *s, uv_loop_t *loop, kv_shard_ctl_t *ctl, kv_conf_t *conf)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop, s->ctl = ctl, s->conf = conf;
    s->next_id = 1;
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
    free(c);
    kv_server_publish_stats(s);
    if (s->shutting_down && s->nconns == 0 && s->on_drained) s->on_drained(s);
}

static void client_close(kv_client_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    kv_fwd_client_gone(c);
    uv_close(&c->h.handle, client_free_cb);
}

void kv_client_close_after_reply(kv_client_t *c)
{
    c->close_after_reply = 1;
    uv_read_stop(&c->h.stream);
}

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
    process_input(c);
    flush_output(c);
}

static void process_input(kv_client_t *c)
{
    int rc;
    while (!c->close_after_reply && (rc = kv_resp_parse(&c->parser, c->qbuf, c->qlen)) == KV_RESP_OK) {
        c->argc = c->parser.argc;
        c->argv = c->parser.argv;
        kv_cmd_dispatch(c);
    }
    if (!c->close_after_reply && rc == KV_RESP_ERR) {
        kv_reply_errorf(&c->out, "%s", c->parser.err);
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
    c->inflight = 0;
    flush_output(c);
}

static void flush_output(kv_client_t *c)
{
    if (c->closing || c->writing) return;
    struct iovec iov[WRITE_IOV_MAX];
    int n = kv_reply_buf_iov(&c->out, iov, WRITE_IOV_MAX);
    if (n > 0) {
        /* uv_buf_t and struct iovec share a layout on Unix. */
        int w = uv_try_write(&c->h.stream, (uv_buf_t *) iov, (unsigned) n);
        if (w > 0) kv_reply_buf_consume(&c->out, (size_t) w);
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

/* ---- accept / shutdown ----------------------------------------------------------- */

void kv_conn_accept(kv_server_t *s, uv_stream_t *listener)
{
    kv_client_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    if (listener->type == UV_NAMED_PIPE) uv_pipe_init(s->loop, &c->h.pipe, 0);
    else uv_tcp_init(s->loop, &c->h.tcp);
    c->h.handle.data = c;
    c->srv = s;
    c->db = s->db;
    c->id = s->next_id++;
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
    if (listener->type == UV_TCP) uv_tcp_nodelay(&c->h.tcp, 1);
    uv_read_start(&c->h.stream, alloc_cb, read_cb);
    kv_server_publish_stats(s);
}

void kv_server_shutdown(kv_server_t *s)
{
    s->shutting_down = 1;
    if (s->nconns == 0) {
        if (s->on_drained) s->on_drained(s);
        return;
    }
    for (kv_client_t *c = s->clients, *next; c; c = next) {
        next = c->next;
        uv_read_stop(&c->h.stream);
        c->close_after_reply = 1;
        if (!c->writing && kv_reply_buf_len(&c->out) == 0 && !c->slots_head) client_close(c);
    }
}
