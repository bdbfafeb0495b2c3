/*
 * The master's HTTP admin endpoint; see admin.h for what it serves.
 *
 * Handle ownership (all on the master's loop, single-threaded):
 *   - kv_admin_t owns the listener and a sweep timer; both are closed by
 *     kv_admin_stop (or by a failed start), and admin_handle_closed frees
 *     `a` once every handle it counts — listener, sweep, connections — has
 *     run its close callback (a->handles == 0).
 *   - each connection is one heap kv_admin_conn_t holding its uv_tcp_t,
 *     write and shutdown requests, head buffer and response body;
 *     conn_closed_cb unlinks and frees all of it. Nothing else frees a conn.
 *     Pending write/shutdown requests are cancelled by uv_close and their
 *     callbacks run before conn_closed_cb, so they may look at the conn.
 *   - timeouts use one sweep timer over the (at most 64 + closing)
 *     connections instead of a timer per connection, so a conn has exactly
 *     one handle and one close callback.
 *
 * Connection life: READ the head into a fixed 8 KiB buffer -> build the
 * whole response -> write it -> shutdown(SHUT_WR) -> discard whatever the
 * client still sends until it closes or the linger deadline passes -> close.
 * The lingering read avoids a TCP RST (from closing with unread bytes)
 * destroying the response before the client has read it, e.g. after a 400
 * for an oversize head.
 */
#include "core/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/admin_int.h"
#include "core/http.h"
#include "core/time.h"

struct kv_admin_conn_s {
    uv_tcp_t tcp;              /* tcp.data = this conn                    */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    kv_admin_t *a;
    kv_admin_conn_t *prev, *next;
    uint64_t deadline;         /* uv_now() ms; the sweep closes it after  */
    size_t len;                /* head bytes in buf                       */
    unsigned counted : 1;      /* counts against KV_ADMIN_MAX_CONNS       */
    unsigned closing : 1;      /* uv_close called                         */
    unsigned responded : 1;    /* response queued: now only draining      */
    unsigned written : 1;      /* write callback ran                      */
    unsigned peer_eof : 1;     /* client half-closed while we still wrote */
    char *body;                /* owned response body, or NULL            */
    char hdr[320];
    char buf[KV_HTTP_HEAD_MAX];
};

/* ---- connections ------------------------------------------------------ */

static void maybe_free_admin(kv_admin_t *a)
{
    if (!a->stopping || a->handles != 0)
        return;
    free(a->version);
    free(a->conf_path);
    free(a->reason);
    free(a);
}

static void admin_handle_closed(uv_handle_t *h)
{
    kv_admin_t *a = h->data;
    a->handles--;
    maybe_free_admin(a);
}

/* The only place a conn is freed. */
static void conn_closed_cb(uv_handle_t *h)
{
    kv_admin_conn_t *c = h->data;
    kv_admin_t *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->body);
    free(c);
    a->handles--;
    maybe_free_admin(a);
}

static void conn_close(kv_admin_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->counted) {
        c->counted = 0;
        c->a->live--;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    kv_admin_conn_t *c = req->data;
    if (status < 0)
        conn_close(c); /* no-op when cancelled by a close */
}

static void on_write(uv_write_t *req, int status)
{
    kv_admin_conn_t *c = req->data;
    c->written = 1;
    if (c->closing)
        return;
    if (status < 0 || c->peer_eof) {
        conn_close(c);
        return;
    }
    /* Send our FIN, then keep draining until the client closes. */
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Queue the response and switch the conn to draining. Takes the body. */
static void respond(kv_admin_conn_t *c, int code, const char *ctype, kv_http_buf_t *body, int head_only)
{
    static const char oom_body[] = "out of memory\n";
    const char *bp = body->p ? body->p : "";
    size_t blen = body->len;

    if (body->oom) {
        code = 500;
        ctype = "text/plain; charset=utf-8";
        bp = oom_body;
        blen = sizeof(oom_body) - 1;
    }
    c->body = body->p; /* freed with the conn, whatever is sent */
    int n = snprintf(c->hdr, sizeof(c->hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     code, kv_http_status_text(code), ctype, blen,
                     code == 405 ? "Allow: GET, HEAD\r\n" : "");
    uv_buf_t bufs[2] = {uv_buf_init(c->hdr, (unsigned)n), uv_buf_init((char *)bp, (unsigned)blen)};

    c->responded = 1;
    c->deadline = uv_now(c->a->loop) + c->a->io_timeout_ms;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, head_only || blen == 0 ? 1 : 2,
                 on_write) != 0)
        conn_close(c);
}

static void respond_text(kv_admin_conn_t *c, int code, const char *text)
{
    kv_http_buf_t b = {0};
    kv_http_buf_puts(&b, text);
    respond(c, code, "text/plain; charset=utf-8", &b, 0);
}

static int path_is(const kv_http_req_t *r, const char *p)
{
    return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

static int method_is(const kv_http_req_t *r, const char *m)
{
    return r->method_len == strlen(m) && memcmp(r->method, m, r->method_len) == 0;
}

static void handle_request(kv_admin_conn_t *c, const kv_http_req_t *req)
{
    kv_admin_t *a = c->a;
    int head = method_is(req, "HEAD");
    int page = path_is(req, "/healthz") ? 1 : path_is(req, "/metrics") ? 2
             : path_is(req, "/status") ? 3 : 0;

    if (page == 0) {
        respond_text(c, 404, "not found\n");
        return;
    }
    if (!head && !method_is(req, "GET")) {
        respond_text(c, 405, "method not allowed\n");
        return;
    }
    kv_http_buf_t b = {0};
    const char *ctype = "text/plain; charset=utf-8";
    int code;
    if (page == 1) {
        code = kv_admin_render_healthz(a, &b, &ctype);
    } else if (page == 2) {
        code = kv_admin_render_metrics(a, &b);
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        code = kv_admin_render_status(a, &b);
        ctype = "application/json";
    }
    respond(c, code, ctype, &b, head);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    kv_admin_conn_t *c = h->data;
    (void)suggested;
    /* Draining reuses the whole head buffer: its content is no longer
     * needed once the response is built. */
    if (c->responded)
        *buf = uv_buf_init(c->buf, sizeof(c->buf));
    else
        *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    kv_admin_conn_t *c = s->data;
    (void)buf;
    if (c->closing)
        return;
    if (nread < 0) {
        /* A client that half-closes right after its request must still get
         * the response: wait for the write before closing. */
        if (nread == UV_EOF && c->responded && !c->written) {
            c->peer_eof = 1;
            uv_read_stop(s);
        } else {
            conn_close(c);
        }
        return;
    }
    if (nread == 0 || c->responded)
        return; /* EAGAIN, or bytes after the response: discarded */

    c->len += (size_t)nread;
    kv_http_req_t req;
    int r = kv_http_parse(c->buf, c->len, &req);
    if (r == KV_HTTP_DONE) {
        handle_request(c, &req);
    } else if (r == KV_HTTP_BAD) {
        char msg[96];
        snprintf(msg, sizeof(msg), "bad request: %s\n", req.why);
        respond_text(c, 400, msg);
    } else if (c->len == sizeof(c->buf)) {
        respond_text(c, 400, "bad request: request head too large\n");
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    kv_admin_t *a = server->data;
    if (status < 0 || a->stopping)
        return;
    /* On allocation failure the pending connection stays unaccepted and
     * libuv pauses the listener; the master is out of memory anyway. */
    kv_admin_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(a->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->a = a;
    c->tcp.data = c;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->handles++;

    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || a->live >= KV_ADMIN_MAX_CONNS) {
        conn_close(c); /* over the limit: closed at once, never read */
        return;
    }
    c->counted = 1;
    a->live++;
    c->deadline = uv_now(a->loop) + a->io_timeout_ms;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_sweep(uv_timer_t *t)
{
    kv_admin_t *a = t->data;
    uint64_t now = uv_now(a->loop);
    /* conn_close only marks; unlinking happens in the close callback, so
     * the list stays walkable here. */
    for (kv_admin_conn_t *c = a->conns; c; c = c->next)
        if (!c->closing && now >= c->deadline)
            conn_close(c);
}

static uint64_t sweep_interval(uint64_t timeout)
{
    uint64_t iv = timeout / 5;
    return iv < 10 ? 10 : iv > 1000 ? 1000 : iv;
}

/* ---- public API ------------------------------------------------------- */

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[64];
    const char *hs, *ps;
    size_t hlen;
    int v6 = addr[0] == '[';

    if (v6) {
        const char *rb = strchr(addr, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        hs = addr + 1;
        hlen = (size_t)(rb - hs);
        ps = rb + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
            return -1; /* an IPv6 address must be bracketed */
        hs = addr;
        hlen = (size_t)(colon - addr);
        ps = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    size_t plen = strlen(ps);
    if (plen == 0 || plen > 5 || strspn(ps, "0123456789") != plen)
        return -1;
    long port = strtol(ps, NULL, 10);
    if (port > 65535)
        return -1;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';
    if (!v6 && strcmp(host, "localhost") == 0) /* conf allows it; no resolver */
        strcpy(host, "127.0.0.1");
    if (v6)
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

kv_admin_t *kv_admin_start(uv_loop_t *loop, const char *addr, kv_segment_t *seg,
                           uint64_t heartbeat_timeout_ms, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (addr == NULL || parse_addr(addr, &ss) != 0) {
        snprintf(err, errlen, "admin.listen %s: expected IPv4:port, localhost:port or [IPv6]:port",
                 addr ? addr : "(null)");
        return NULL;
    }
    kv_admin_t *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "admin.listen %s: out of memory", addr);
        return NULL;
    }
    a->loop = loop;
    a->seg = seg;
    a->nshards = seg->nshards > KV_SHARDS_MAX ? KV_SHARDS_MAX : seg->nshards;
    a->hb_timeout_ms = heartbeat_timeout_ms;
    a->io_timeout_ms = KV_ADMIN_IO_TIMEOUT_MS;

    int rc = uv_tcp_init(loop, &a->listener);
    if (rc != 0) {
        snprintf(err, errlen, "admin.listen %s: %s", addr, uv_strerror(rc));
        free(a);
        return NULL;
    }
    a->listener.data = a;
    a->handles = 1;
    rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->listener, 128, on_connection);
    if (rc == 0) {
        struct sockaddr_storage bound;
        int blen = sizeof(bound);
        rc = uv_tcp_getsockname(&a->listener, (struct sockaddr *)&bound, &blen);
        if (rc == 0)
            a->port = ntohs(bound.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                : ((struct sockaddr_in *)&bound)->sin_port);
    }
    if (rc != 0) {
        snprintf(err, errlen, "admin.listen %s: %s", addr, uv_strerror(rc));
        a->stopping = 1; /* freed by admin_handle_closed */
        uv_close((uv_handle_t *)&a->listener, admin_handle_closed);
        return NULL;
    }

    uv_timer_init(loop, &a->sweep);
    a->sweep.data = a;
    a->handles++;
    uint64_t iv = sweep_interval(a->io_timeout_ms);
    uv_timer_start(&a->sweep, on_sweep, iv, iv);
    uv_unref((uv_handle_t *)&a->sweep); /* the listener keeps the loop alive */
    return a;
}

void kv_admin_stop(kv_admin_t *a)
{
    if (a == NULL || a->stopping)
        return;
    a->stopping = 1;
    for (kv_admin_conn_t *c = a->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&a->listener, admin_handle_closed);
    uv_timer_stop(&a->sweep);
    uv_close((uv_handle_t *)&a->sweep, admin_handle_closed);
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL; /* on failure the field shows as null */
}

void kv_admin_set_info(kv_admin_t *a, const char *version, const char *conf_path)
{
    set_str(&a->version, version);
    set_str(&a->conf_path, conf_path);
}

void kv_admin_set_shard_reason(kv_admin_t *a, uint32_t shard, const char *reason)
{
    if (shard >= a->nshards)
        return;
    if (a->reason == NULL) {
        if (reason == NULL || reason[0] == '\0')
            return;
        a->reason = calloc(a->nshards, sizeof(*a->reason));
        if (a->reason == NULL)
            return;
    }
    snprintf(a->reason[shard], KV_ADMIN_REASON_MAX, "%s", reason ? reason : "");
}

int kv_admin_port(const kv_admin_t *a) { return a->port; }

void kv_admin_set_io_timeout_ms(kv_admin_t *a, uint64_t ms)
{
    a->io_timeout_ms = ms ? ms : 1;
    uint64_t iv = sweep_interval(a->io_timeout_ms);
    uv_timer_start(&a->sweep, on_sweep, iv, iv);
}
