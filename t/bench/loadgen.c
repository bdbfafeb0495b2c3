/* Load generator for what redis-benchmark cannot do (driven by
 * t/bench/tx_pubsub_vs_redis; plain POSIX sockets + epoll, one thread):
 *
 *   loadgen tx  [-h HOST] [-p PORT] [-c C] [-P P] [-n N] [-k KEY1] [-K KEY2] [-w]
 *       C connections, each pipelining P transactions
 *       MULTI; INCR KEY1; INCR KEY2; EXEC and reading every reply before
 *       its next batch, N transactions in all (after DEL KEY1 KEY2).
 *       Every reply is parsed (RESP) and checked: +OK, +QUEUED, +QUEUED,
 *       *2 :a :b with a == b (the two counters move together, so an EXEC
 *       that saw them differ was not atomic); at the end GET KEY1 and
 *       GET KEY2 must both be N.
 *
 *   loadgen pub [-h HOST] [-p PORT] [-s S] [-c C] [-P P] [-n N] [-C CHANNEL] [-W WINDOW] [-w]
 *       S subscriber connections SUBSCRIBE CHANNEL (every confirmation
 *       awaited), then C publisher connections send N PUBLISH in all, in
 *       pipelined batches of P (each reply read before the next batch).
 *       Each PUBLISH must answer :S; each subscriber must receive every
 *       message exactly once and, per publisher, in publish order
 *       (payloads carry the publisher and a sequence number). A publisher
 *       waits while the slowest subscriber is more than WINDOW messages
 *       behind (default 10000), so a client that reads slower than the
 *       server writes never pushes subscribers into the output-buffer
 *       limit. The clock stops when the last message is delivered.
 *
 *   -w: once connected (and subscribed), print "ready" and wait for a
 *       line on stdin before starting (the driver samples the server's CPU
 *       time and its per-worker client counts there).
 *
 * Prints one result line of key=value pairs, e.g.
 *   tx n=200000 c=50 P=16 seconds=1.234 tx_per_s=162074 client_cpu=0.97
 * Any error reply, protocol error, lost connection, timeout or wrong count
 * is reported on stderr and the exit status is 1: a run that measured
 * errors is no measurement. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_MIN   (64 * 1024)
#define MAX_ELEMS  4
#define STALL_SECS 20.0

/* ---- options --------------------------------------------------------------- */

static const char *host = "127.0.0.1";
static const char *port = "6379";
static long nconns = 50, pipeline = 16, nsubs = 100;
static long long total = 100000, window = 10000;
static const char *key1 = "tx:a", *key2 = "tx:b", *channel = "bench:chan";
static int wait_go;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6
         + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* ---- RESP ------------------------------------------------------------------------------ */

/* One parsed value; for an array, the first MAX_ELEMS elements (any
 * deeper nesting is parsed and skipped). Strings point into the buffer. */
typedef struct {
    char type;              /* + - : $ *  (nil bulk/array: '$'/'*' with len -1) */
    long long len;          /* bulk length, array count, -1 for nil */
    long long ival;         /* ':' */
    const char *str;        /* '+' '-' '$' */
    size_t slen;
} val_t;

typedef struct {
    val_t top;
    val_t elem[MAX_ELEMS];
} reply_t;

/* The line starting at p: its end (at '\r'), or NULL if not all there.
 * A lone '\r' or '\n' inside the line is a protocol error. */
static const char *line_end(const char *p, const char *end)
{
    const char *cr = memchr(p, '\r', (size_t) (end - p));
    if (!cr || cr + 1 >= end) return NULL;
    if (cr[1] != '\n') die("protocol error: \\r without \\n");
    return cr;
}

static long long parse_int(const char *p, const char *e)
{
    int neg = 0;
    long long v = 0;
    if (p < e && *p == '-') neg = 1, p++;
    if (p == e) die("protocol error: empty integer");
    for (; p < e; p++) {
        if (*p < '0' || *p > '9') die("protocol error: bad integer '%.*s'", (int) (e - p), p);
        v = v * 10 + (*p - '0');
    }
    return neg ? -v : v;
}

/* Parse one value at p. Returns the byte after it, or NULL when the
 * buffer does not hold all of it yet. out may be NULL (skip). */
static const char *parse_val(const char *p, const char *end, val_t *out, val_t *elems, int depth)
{
    if (depth > 8) die("protocol error: nesting too deep");
    const char *le = line_end(p, end);
    if (!le) return NULL;
    val_t v = { .type = *p, .len = 0 };
    const char *next = le + 2;
    switch (*p) {
    case '+': case '-':
        v.str = p + 1, v.slen = (size_t) (le - p - 1);
        break;
    case ':':
        v.ival = parse_int(p + 1, le);
        break;
    case '$':
        v.len = parse_int(p + 1, le);
        if (v.len >= 0) {
            if (end - next < v.len + 2) return NULL;
            if (next[v.len] != '\r' || next[v.len + 1] != '\n') die("protocol error: bulk not ended by CRLF");
            v.str = next, v.slen = (size_t) v.len;
            next += v.len + 2;
        } else if (v.len != -1) die("protocol error: bulk length %lld", v.len);
        break;
    case '*':
        v.len = parse_int(p + 1, le);
        if (v.len < -1) die("protocol error: array length %lld", v.len);
        for (long long i = 0; i < v.len; i++) {
            val_t *slot = elems && i < MAX_ELEMS ? &elems[i] : NULL;
            next = parse_val(next, end, slot, NULL, depth + 1);
            if (!next) return NULL;
        }
        break;
    default:
        die("protocol error: unexpected byte 0x%02x", (unsigned char) *p);
    }
    if (out) *out = v;
    return next;
}

static const char *parse_reply(const char *p, const char *end, reply_t *r)
{
    return parse_val(p, end, &r->top, r->elem, 0);
}

static int is_str(const val_t *v, char type, const char *s)
{
    return v->type == type && v->slen == strlen(s) && memcmp(v->str, s, v->slen) == 0;
}

static void fail_reply(const char *what, const reply_t *r)
{
    const val_t *v = &r->top;
    if (v->type == '-') die("%s: error reply: %.*s", what, (int) v->slen, v->str);
    if (v->type == ':') die("%s: unexpected integer :%lld", what, v->ival);
    if (v->type == '+') die("%s: unexpected status +%.*s", what, (int) v->slen, v->str);
    if (v->type == '$') die("%s: unexpected bulk of %lld bytes", what, v->len);
    die("%s: unexpected array of %lld", what, v->len);
}

static size_t encode(char *out, int argc, const char **argv)
{
    size_t n = (size_t) sprintf(out, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) n += (size_t) sprintf(out + n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    return n;
}

/* ---- connections ------------------------------------------------------------------------ */

typedef struct conn {
    int fd, idx, role;              /* role: 0 tx, 1 subscriber, 2 publisher */
    char *rbuf;
    size_t rcap, rlen;
    char *wbuf;
    size_t wcap, wlen, woff;
    int want_out;
    long long todo;                 /* tx/publishes this connection has left to send */
    long long expect;               /* replies owed for the batch in flight */
    long long sent;                 /* publisher: messages sent so far */
    long long got;                  /* subscriber: messages received */
    int subscribed;
} conn_t;

static int ep = -1;

static int dial(void)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) die("%s:%s: %s", host, port, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) die("connect %s:%s: %s", host, port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static conn_t *conn_new(int idx, int role)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->fd = dial();
    c->idx = idx, c->role = role;
    c->rcap = RBUF_MIN;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf) die("out of memory");
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
    return c;
}

static void queue(conn_t *c, const char *buf, size_t n)
{
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + n) cap *= 2;
        c->wbuf = realloc(c->wbuf, cap);
        if (!c->wbuf) die("out of memory");
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, buf, n);
    c->wlen += n;
}

static void set_out(conn_t *c, int on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

static void flush(conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n > 0) { c->woff += (size_t) n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { set_out(c, 1); return; }
        die("write (connection %d): %s", c->idx, n < 0 ? strerror(errno) : "closed");
    }
    set_out(c, 0);
}

/* Read once; returns the bytes read (0 if none were ready). The
 * server closing a connection is always an error here. */
static size_t fill(conn_t *c)
{
    if (c->rcap - c->rlen < RBUF_MIN / 4) {
        c->rcap *= 2;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (!c->rbuf) die("out of memory");
    }
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) { c->rlen += (size_t) n; return (size_t) n; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        die("connection %d (%s) lost: %s", c->idx, c->role == 1 ? "subscriber" : c->role == 2 ? "publisher" : "tx",
            n < 0 ? strerror(errno) : "closed by the server");
    }
}

/* Hand every complete reply in the buffer to fn, keep the rest. */
static void drain(conn_t *c, void (*fn)(conn_t *, reply_t *))
{
    const char *p = c->rbuf, *end = c->rbuf + c->rlen;
    while (p < end) {
        reply_t r;
        const char *next = parse_reply(p, end, &r);
        if (!next) break;
        fn(c, &r);
        p = next;
    }
    size_t used = (size_t) (p - c->rbuf);
    if (used) {
        memmove(c->rbuf, p, c->rlen - used);
        c->rlen -= used;
    }
}

/* A request/reply on one connection, outside the measured loop. */
static reply_t sync_reply;
static char sync_store[4096];
static void keep_reply(conn_t *c, reply_t *r)
{
    (void) c;
    /* copy strings so they outlive the buffer compaction */
    sync_reply = *r;
    size_t off = 0;
    val_t *vs[1 + MAX_ELEMS] = { &sync_reply.top };
    for (int i = 0; i < MAX_ELEMS; i++) vs[1 + i] = &sync_reply.elem[i];
    for (int i = 0; i < 1 + MAX_ELEMS; i++) {
        val_t *v = vs[i];
        if (!v->str) continue;
        size_t n = v->slen < 1000 ? v->slen : 1000;
        memcpy(sync_store + off, v->str, n);
        v->str = sync_store + off, v->slen = n;
        off += n;
    }
}

static reply_t *call(conn_t *c, int argc, const char **argv)
{
    char buf[4096];
    queue(c, buf, encode(buf, argc, argv));
    flush(c);
    sync_reply.top.type = 0;
    double t0 = now();
    while (!sync_reply.top.type) {
        if (c->woff < c->wlen) flush(c);
        struct pollfd pf = { .fd = c->fd, .events = POLLIN | (c->woff < c->wlen ? POLLOUT : 0) };
        if (poll(&pf, 1, 1000) < 0 && errno != EINTR) die("poll: %s", strerror(errno));
        if (now() - t0 > STALL_SECS) die("no reply to %s in %.0f s", argv[0], STALL_SECS);
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) fill(c);
        const char *p = c->rbuf, *end = c->rbuf + c->rlen;
        reply_t r = { .top.type = 0 };
        const char *next = parse_reply(p, end, &r);
        if (!next) continue;
        keep_reply(c, &r);
        memmove(c->rbuf, next, (size_t) (end - next));
        c->rlen -= (size_t) (next - p);
    }
    return &sync_reply;
}

static void wait_for_go(void)
{
    if (!wait_go) return;
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) die("stdin closed before go");
}

/* The event loop: handle readable/writable connections until done()
 * says so; idle() runs after each round (to start the next batches). */
static void run_loop(int (*done)(void), void (*on_reply)(conn_t *, reply_t *), void (*idle)(void),
                     long long (*progress)(void))
{
    struct epoll_event evs[256];
    long long last = progress();
    double last_t = now();
    while (!done()) {
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < k; i++) {
            conn_t *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT) flush(c);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                fill(c);
                drain(c, on_reply);
            }
        }
        idle();
        long long p = progress();
        double t = now();
        if (p != last) last = p, last_t = t;
        else if (t - last_t > STALL_SECS) die("no progress for %.0f s (%lld events done)", STALL_SECS, p);
    }
}

/* ---- tx ------------------------------------------------------------------------------- */

static char *tx_req;                /* one transaction, encoded */
static size_t tx_req_len;
static long long tx_done, tx_replies;
static conn_t **tx_conns;

static void tx_send_batch(conn_t *c)
{
    long long b = c->todo < pipeline ? c->todo : pipeline;
    if (!b) return;
    for (long long i = 0; i < b; i++) queue(c, tx_req, tx_req_len);
    c->todo -= b;
    c->expect = 4 * b;
    flush(c);
}

/* Replies of one transaction come in fours: +OK +QUEUED +QUEUED *2. */
static void tx_reply(conn_t *c, reply_t *r)
{
    if (c->expect <= 0) fail_reply("reply nobody asked for", r);
    long long pos = (4 - c->expect % 4) % 4;    /* batches hold whole transactions */
    switch (pos) {
    case 0:
        if (!is_str(&r->top, '+', "OK")) fail_reply("MULTI", r);
        break;
    case 1: case 2:
        if (!is_str(&r->top, '+', "QUEUED")) fail_reply("INCR in MULTI", r);
        break;
    case 3:
        if (r->top.type != '*' || r->top.len != 2) fail_reply("EXEC", r);
        for (int i = 0; i < 2; i++)
            if (r->elem[i].type != ':') {
                reply_t e = { .top = r->elem[i] };
                fail_reply(i ? "EXEC's second INCR" : "EXEC's first INCR", &e);
            }
        if (r->elem[0].ival != r->elem[1].ival)
            die("EXEC not atomic: INCR %s -> %lld but INCR %s -> %lld in one transaction",
                key1, r->elem[0].ival, key2, r->elem[1].ival);
        tx_done++;
        break;
    }
    tx_replies++;
    if (--c->expect == 0) tx_send_batch(c);
}

static int tx_finished(void) { return tx_done >= total; }
static void tx_idle(void) {}
static long long tx_progress(void) { return tx_replies; }

static long long get_counter(conn_t *c, const char *key)
{
    const char *argv[] = { "GET", key };
    reply_t *r = call(c, 2, argv);
    if (r->top.type != '$' || r->top.len < 0) fail_reply("GET", r);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.*s", (int) r->top.slen, r->top.str);
    return strtoll(tmp, NULL, 10);
}

static int run_tx(void)
{
    if (nconns < 1 || pipeline < 1 || total < 1) die("tx: -c, -P and -n must be positive");
    const char *multi[] = { "MULTI" }, *i1[] = { "INCR", key1 }, *i2[] = { "INCR", key2 }, *exec_[] = { "EXEC" };
    tx_req = malloc(64 + 2 * (strlen(key1) + strlen(key2)) + 64);
    tx_req_len = encode(tx_req, 1, multi);
    tx_req_len += encode(tx_req + tx_req_len, 2, i1);
    tx_req_len += encode(tx_req + tx_req_len, 2, i2);
    tx_req_len += encode(tx_req + tx_req_len, 1, exec_);

    tx_conns = calloc((size_t) nconns, sizeof *tx_conns);
    for (long i = 0; i < nconns; i++) {
        tx_conns[i] = conn_new((int) i, 0);
        tx_conns[i]->todo = total / nconns + (i < total % nconns);
    }
    const char *del[] = { "DEL", key1, key2 };
    reply_t *r = call(tx_conns[0], 3, del);
    if (r->top.type != ':') fail_reply("DEL", r);
    wait_for_go();

    double t0 = now(), c0 = cpu_seconds();
    for (long i = 0; i < nconns; i++) tx_send_batch(tx_conns[i]);
    run_loop(tx_finished, tx_reply, tx_idle, tx_progress);
    double secs = now() - t0, cpu = cpu_seconds() - c0;

    long long v1 = get_counter(tx_conns[0], key1), v2 = get_counter(tx_conns[0], key2);
    if (v1 != total || v2 != total)
        die("after %lld transactions: GET %s = %lld, GET %s = %lld", total, key1, v1, key2, v2);
    printf("tx n=%lld c=%ld P=%ld seconds=%.6f tx_per_s=%.0f client_cpu=%.3f k1=%lld k2=%lld\n",
           total, nconns, pipeline, secs, (double) total / secs, cpu / secs, v1, v2);
    return 0;
}

/* ---- pub ------------------------------------------------------------------------------- */

static conn_t **subs, **pubs;
static long long *last_seq;          /* [sub * nconns + pub] */
static long long pub_sent, pub_acked, delivered, subs_confirmed;
static char chan_msg_prefix[256];

static void sub_reply(conn_t *c, reply_t *r)
{
    const val_t *t = &r->top;
    if (t->type != '*' || t->len != 3) fail_reply("subscriber", r);
    if (!c->subscribed) {
        if (!is_str(&r->elem[0], '$', "subscribe") || !is_str(&r->elem[1], '$', channel)
            || r->elem[2].type != ':' || r->elem[2].ival != 1)
            fail_reply("SUBSCRIBE confirmation", r);
        c->subscribed = 1;
        subs_confirmed++;
        return;
    }
    if (!is_str(&r->elem[0], '$', "message") || !is_str(&r->elem[1], '$', channel) || r->elem[2].type != '$')
        fail_reply("message", r);
    /* payload: "PPPP:SSSSSSSSSSS" = publisher, sequence (from 1) */
    const val_t *pl = &r->elem[2];
    if (pl->slen < 6 || pl->str[4] != ':') die("subscriber %d: bad payload '%.*s'", c->idx, (int) pl->slen, pl->str);
    long long p = parse_int(pl->str, pl->str + 4), s = parse_int(pl->str + 5, pl->str + pl->slen);
    if (p < 0 || p >= nconns) die("subscriber %d: payload from unknown publisher %lld", c->idx, p);
    long long *ls = &last_seq[(long long) c->idx * nconns + p];
    if (s != *ls + 1)
        die("subscriber %d: publisher %lld's message %lld after %lld (lost, duplicated or out of order)",
            c->idx, p, s, *ls);
    *ls = s;
    c->got++;
    delivered++;
}

static void pub_send_batch(conn_t *c)
{
    long long b = c->todo < pipeline ? c->todo : pipeline;
    if (!b) return;
    for (long long i = 0; i < b; i++) {
        char buf[256], payload[32];
        snprintf(payload, sizeof payload, "%04d:%011lld", c->idx, ++c->sent);
        size_t n = (size_t) snprintf(buf, sizeof buf, "%s$%zu\r\n%s\r\n", chan_msg_prefix, strlen(payload), payload);
        queue(c, buf, n);
    }
    c->todo -= b;
    c->expect = b;
    pub_sent += b;
    flush(c);
}

static void pub_reply(conn_t *c, reply_t *r)
{
    if (c->expect <= 0) fail_reply("reply nobody asked for", r);
    if (r->top.type != ':') fail_reply("PUBLISH", r);
    if (r->top.ival != nsubs) die("PUBLISH answered :%lld, expected :%ld (subscribers)", r->top.ival, nsubs);
    pub_acked++;
    c->expect--;
}

static void on_reply(conn_t *c, reply_t *r) { if (c->role == 1) sub_reply(c, r); else pub_reply(c, r); }

static long long slowest_sub(void)
{
    long long m = -1;
    for (long i = 0; i < nsubs; i++)
        if (m < 0 || subs[i]->got < m) m = subs[i]->got;
    return m;
}

/* Start the next batch of every idle publisher while the slowest
 * subscriber is within the window. */
static void pub_idle(void)
{
    if (!pubs) return;
    long long slow = slowest_sub();
    for (long i = 0; i < nconns; i++) {
        conn_t *c = pubs[i];
        if (c->expect || !c->todo) continue;
        if (pub_sent - slow > window) break;
        pub_send_batch(c);
    }
}

static int pub_finished(void) { return pub_acked == total && delivered == total * nsubs; }
static int subs_ready(void) { return subs_confirmed == nsubs; }
static long long pub_progress(void) { return pub_acked + delivered + subs_confirmed; }
static void no_idle(void) {}

static int run_pub(void)
{
    if (nsubs < 1 || nconns < 1 || pipeline < 1 || total < 1) die("pub: -s, -c, -P and -n must be positive");
    if (nconns > 9999) die("pub: at most 9999 publishers");
    snprintf(chan_msg_prefix, sizeof chan_msg_prefix, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n", strlen(channel), channel);
    last_seq = calloc((size_t) (nsubs * nconns), sizeof *last_seq);
    subs = calloc((size_t) nsubs, sizeof *subs);
    if (!last_seq || !subs) die("out of memory");
    for (long i = 0; i < nsubs; i++) {
        subs[i] = conn_new((int) i, 1);
        const char *argv[] = { "SUBSCRIBE", channel };
        char buf[512];
        queue(subs[i], buf, encode(buf, 2, argv));
        flush(subs[i]);
    }
    run_loop(subs_ready, on_reply, no_idle, pub_progress);
    wait_for_go();

    double t0 = now(), c0 = cpu_seconds();
    conn_t **p = calloc((size_t) nconns, sizeof *p);
    for (long i = 0; i < nconns; i++) {
        p[i] = conn_new((int) i, 2);
        p[i]->todo = total / nconns + (i < total % nconns);
    }
    pubs = p;
    pub_idle();
    run_loop(pub_finished, on_reply, pub_idle, pub_progress);
    double secs = now() - t0, cpu = cpu_seconds() - c0;

    for (long i = 0; i < nsubs; i++)
        if (subs[i]->got != total) die("subscriber %ld received %lld of %lld messages", i, subs[i]->got, total);
    for (long i = 0; i < nconns; i++) {
        long long want = total / nconns + (i < total % nconns);
        for (long s = 0; s < nsubs; s++)
            if (last_seq[s * nconns + i] != want)
                die("subscriber %ld has %lld of publisher %ld's %lld messages", s, last_seq[s * nconns + i], i, want);
    }
    printf("pub n=%lld s=%ld c=%ld P=%ld seconds=%.6f publishes_per_s=%.0f deliveries_per_s=%.0f deliveries=%lld client_cpu=%.3f\n",
           total, nsubs, nconns, pipeline, secs, (double) total / secs, (double) delivered / secs, delivered, cpu / secs);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen tx  [-h HOST] [-p PORT] [-c CONNS] [-P PIPELINE] [-n TXS] [-k KEY1] [-K KEY2] [-w]\n"
            "       loadgen pub [-h HOST] [-p PORT] [-s SUBSCRIBERS] [-c PUBLISHERS] [-P PIPELINE] [-n PUBLISHES]\n"
            "                   [-C CHANNEL] [-W WINDOW] [-w]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *mode = argv[1];
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "h:p:c:P:n:k:K:s:C:W:w")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'c': nconns = atol(optarg); break;
        case 'P': pipeline = atol(optarg); break;
        case 'n': total = atoll(optarg); break;
        case 'k': key1 = optarg; break;
        case 'K': key2 = optarg; break;
        case 's': nsubs = atol(optarg); break;
        case 'C': channel = optarg; break;
        case 'W': window = atoll(optarg); break;
        case 'w': wait_go = 1; break;
        default: usage();
        }
    }
    if (optind != argc) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);           /* a closed connection is reported, not fatal */
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1: %s", strerror(errno));
    if (strcmp(mode, "tx") == 0) return run_tx();
    if (strcmp(mode, "pub") == 0) return run_pub();
    usage();
    return 2;
}
