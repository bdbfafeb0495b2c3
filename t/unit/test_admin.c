/*
 * The admin HTTP endpoint, end to end: a libuv loop runs the admin in a
 * background thread over a fake segment, and the tests talk to it with
 * real blocking sockets. Also the request parser and body builder in
 * core/http.c directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "core/admin.h"
#include "core/http.h"
#include "core/time.h"

#define NSHARDS 3

typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thr;
    int running;
    kv_segment_t *seg;
    kv_admin_t *admin;
    int port;
} fix_t;

/* ---- fixture ------------------------------------------------------------ */

static kv_segment_t *fake_segment(uint32_t n)
{
    size_t sz = sizeof(kv_segment_t) + n * sizeof(kv_shard_ctl_t);
    sz = (sz + 63) & ~(size_t)63;
    kv_segment_t *seg = aligned_alloc(64, sz); /* the control blocks are 64-aligned */
    assert_non_null(seg);
    memset(seg, 0, sz);
    uint64_t now = kv_time_mono_ms();
    seg->nshards = n;
    atomic_store(&seg->master_start_ms, now - 5000);
    for (uint32_t i = 0; i < n; i++) {
        kv_shard_ctl_t *c = &seg->shard[i];
        atomic_store(&c->state, KV_SHARD_UP);
        atomic_store(&c->generation, 7 + i);
        atomic_store(&c->pid, (int32_t)(1000 + i));
        atomic_store(&c->cpu, (int32_t)i);
        atomic_store(&c->heartbeat_ms, now);
        atomic_store(&c->started_ms, now - 1000);
        atomic_store(&c->restarts, 2 * i);
        atomic_store(&c->clients, 10 + i);
        atomic_store(&c->commands, 123456789012ULL + i);
        atomic_store(&c->ring_backlog, 3 * i);
    }
    return seg;
}

static void on_stop(uv_async_t *h)
{
    fix_t *f = h->data;
    kv_admin_stop(f->admin);
    uv_close((uv_handle_t *)&f->stop, NULL);
}

static void *loop_main(void *arg)
{
    fix_t *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    char err[256] = "";
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->stop, on_stop), 0);
    f->stop.data = f;
    f->seg = fake_segment(NSHARDS);
    f->admin = kv_admin_start(&f->loop, "127.0.0.1:0", f->seg, 2000, err, sizeof(err));
    if (f->admin == NULL)
        fail_msg("kv_admin_start: %s", err);
    f->port = kv_admin_port(f->admin);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

/* Tests configure the admin first, then start the loop thread, so nothing
 * touches the admin from two threads. */
static void run(fix_t *f)
{
    assert_int_equal(pthread_create(&f->thr, NULL, loop_main, f), 0);
    f->running = 1;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    if (f->running) {
        uv_async_send(&f->stop);
        pthread_join(f->thr, NULL);
    } else {
        on_stop(&f->stop);
        uv_run(&f->loop, UV_RUN_DEFAULT);
    }
    /* every handle (listener, timer, connections) must be closed */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f->seg);
    free(f);
    return 0;
}

/* ---- a blocking HTTP client ---------------------------------------------- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

/* Read to EOF; fails the test on a receive timeout (the server must close). */
static char *read_all(int fd, size_t *outlen)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r == 0)
            break;
        if (r < 0 && errno == ECONNRESET)
            break;
        if (r < 0)
            fail_msg("recv: %s (server did not close)", strerror(errno));
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (outlen)
        *outlen = len;
    return buf;
}

static char *request(fix_t *f, const char *raw)
{
    int fd = dial(f->port);
    send_all(fd, raw, strlen(raw));
    char *resp = read_all(fd, NULL);
    close(fd);
    return resp;
}

static char *get(fix_t *f, const char *path)
{
    char raw[512];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n", path);
    return request(f, raw);
}

static int status_of(const char *resp)
{
    int code = 0;
    if (sscanf(resp, "HTTP/1.1 %d ", &code) != 1)
        return -1;
    return code;
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    assert_non_null(p);
    return p + 4;
}

/* Every response: Content-Length matches the body, Connection: close. */
static void check_framing(const char *resp, int head_only)
{
    const char *cl = strstr(resp, "\r\nContent-Length: ");
    assert_non_null(cl);
    assert_true(cl < body_of(resp));
    long n = strtol(cl + 18, NULL, 10);
    assert_int_equal(strlen(body_of(resp)), head_only ? 0 : (size_t)n);
    assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
}

/* ---- a strict JSON validator (RFC 8259 grammar, no UTF-8 check) ----------- */

static int js_value(const char **p, int depth);

static void js_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static int js_string(const char **p)
{
    if (**p != '"')
        return 0;
    (*p)++;
    while (**p != '"') {
        unsigned char c = (unsigned char)**p;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            (*p)++;
            if (**p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", (*p)[i]) || !(*p)[i])
                        return 0;
                *p += 4;
            } else if (!**p || !strchr("\"\\/bfnrt", **p)) {
                return 0;
            }
        }
        (*p)++;
    }
    (*p)++;
    return 1;
}

static int js_digits(const char **p)
{
    const char *s = *p;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return *p > s;
}

static int js_number(const char **p)
{
    if (**p == '-')
        (*p)++;
    if (**p == '0')
        (*p)++;
    else if (!js_digits(p))
        return 0;
    if (**p == '.' && ((*p)++, !js_digits(p)))
        return 0;
    if (**p == 'e' || **p == 'E') {
        (*p)++;
        if (**p == '+' || **p == '-')
            (*p)++;
        if (!js_digits(p))
            return 0;
    }
    return 1;
}

static int js_lit(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

static int js_value(const char **p, int depth)
{
    int ok;
    if (depth > 32)
        return 0;
    js_ws(p);
    if (**p == '{' || **p == '[') {
        char close = **p == '{' ? '}' : ']';
        int obj = close == '}';
        (*p)++;
        js_ws(p);
        if (**p == close) {
            (*p)++;
        } else {
            for (;;) {
                if (obj) {
                    js_ws(p);
                    if (!js_string(p))
                        return 0;
                    js_ws(p);
                    if (*(*p)++ != ':')
                        return 0;
                }
                if (!js_value(p, depth + 1))
                    return 0;
                if (**p == close) {
                    (*p)++;
                    break;
                }
                if (*(*p)++ != ',')
                    return 0;
            }
        }
        ok = 1;
    } else if (**p == '"') {
        ok = js_string(p);
    } else if (**p == 't' || **p == 'f' || **p == 'n') {
        ok = js_lit(p, "true") || js_lit(p, "false") || js_lit(p, "null");
    } else {
        ok = js_number(p);
    }
    js_ws(p);
    return ok;
}

static int json_valid(const char *s)
{
    return js_value(&s, 0) && *s == '\0';
}

static void test_json_validator_itself(void **state)
{
    (void)state;
    assert_true(json_valid("{\"a\":[1,-2.5e3,true,null,\"x\\u00e9\"]}\n"));
    assert_false(json_valid("{\"a\":1,}"));
    assert_false(json_valid("{\"a\":\"\x01\"}"));
    assert_false(json_valid("[01]"));
    assert_false(json_valid("{\"a\":1} x"));
}

/* ---- /healthz ------------------------------------------------------------ */

static void test_healthz_all_up(void **state)
{
    fix_t *f = *state;
    run(f);
    char *r = get(f, "/healthz");
    assert_int_equal(status_of(r), 200);
    check_framing(r, 0);
    assert_string_equal(body_of(r), "ok\n");
    free(r);

    r = get(f, "/healthz?verbose=1#frag"); /* query strings are ignored */
    assert_int_equal(status_of(r), 200);
    free(r);
}

static void test_healthz_starting_shard(void **state)
{
    fix_t *f = *state;
    atomic_store(&f->seg->shard[1].state, KV_SHARD_STARTING);
    atomic_store(&f->seg->shard[1].heartbeat_ms, kv_time_mono_ms() - 4200);
    run(f);
    char *r = get(f, "/healthz");
    assert_int_equal(status_of(r), 503);
    check_framing(r, 0);
    assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
    const char *b = body_of(r);
    assert_true(json_valid(b));
    assert_non_null(strstr(b, "\"status\":\"down\""));
    assert_non_null(strstr(b, "{\"shard\":1,\"state\":\"starting\",\"heartbeat_age_ms\":"));
    long age = strtol(strstr(b, "heartbeat_age_ms\":") + 18, NULL, 10);
    assert_true(age >= 4200 && age < 8000);
    assert_null(strstr(b, "\"shard\":0")); /* healthy shards are not named */
    assert_null(strstr(b, "\"shard\":2"));
    free(r);
}

static void test_healthz_stale_heartbeat(void **state)
{
    fix_t *f = *state;
    atomic_store(&f->seg->shard[2].heartbeat_ms, kv_time_mono_ms() - 10000);
    run(f);
    char *r = get(f, "/healthz");
    assert_int_equal(status_of(r), 503);
    const char *b = body_of(r);
    assert_true(json_valid(b));
    const char *e = strstr(b, "{\"shard\":2,\"state\":\"up\",\"heartbeat_age_ms\":");
    assert_non_null(e);
    long age = strtol(strstr(e, "heartbeat_age_ms\":") + 18, NULL, 10);
    assert_true(age >= 10000 && age < 15000);
    assert_null(strstr(b, "\"shard\":1"));
    free(r);

    /* a fresh beat makes it healthy again */
    atomic_store(&f->seg->shard[2].heartbeat_ms, kv_time_mono_ms());
    r = get(f, "/healthz");
    assert_int_equal(status_of(r), 200);
    free(r);
}

static void test_healthz_failed_with_reason_and_no_heartbeat(void **state)
{
    fix_t *f = *state;
    atomic_store(&f->seg->shard[0].state, KV_SHARD_FAILED);
    atomic_store(&f->seg->shard[0].heartbeat_ms, 0);
    kv_admin_set_shard_reason(f->admin, 0, "bad \"snapshot\"\n\\ \xff");
    kv_admin_set_shard_reason(f->admin, 99, "ignored: out of range");
    run(f);
    char *r = get(f, "/healthz");
    assert_int_equal(status_of(r), 503);
    const char *b = body_of(r);
    assert_true(json_valid(b));
    assert_non_null(strstr(b, "{\"shard\":0,\"state\":\"failed\",\"heartbeat_age_ms\":null,"
                              "\"reason\":\"bad \\\"snapshot\\\"\\u000a\\\\ \\ufffd\"}"));
    free(r);
}

static void test_healthz_stopping(void **state)
{
    fix_t *f = *state;
    atomic_store(&f->seg->stopping, 1);
    run(f);
    char *r = get(f, "/healthz");
    assert_int_equal(status_of(r), 503);
    assert_true(json_valid(body_of(r)));
    assert_string_equal(body_of(r), "{\"status\":\"stopping\",\"down\":[]}\n");
    free(r);
}

/* ---- /metrics ------------------------------------------------------------- */

/* Exposition format 0.0.4, strictly: each sample's family has a TYPE line
 * before it, a family's samples are contiguous, values parse as numbers. */
static void check_exposition(const char *body)
{
    char typed[64][64];
    int ntyped = 0;
    char cur[64] = "";
    const char *line = body;
    assert_true(strlen(body) > 0 && body[strlen(body) - 1] == '\n');
    while (*line) {
        const char *nl = strchr(line, '\n');
        char l[512];
        size_t n = (size_t)(nl - line);
        assert_true(n < sizeof(l));
        memcpy(l, line, n);
        l[n] = '\0';
        line = nl + 1;
        char name[64], type[32];
        if (strncmp(l, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(l, "# HELP %63s %*s", name), 1);
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(l, "# TYPE %63s %31s", name, type), 2);
            assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0);
            for (int i = 0; i < ntyped; i++)
                assert_string_not_equal(typed[i], name); /* declared once */
            assert_true(ntyped < 64);
            strcpy(typed[ntyped++], name);
            strcpy(cur, name);
            continue;
        }
        size_t nm = strspn(l, "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:");
        assert_true(nm > 0 && nm < sizeof(name));
        memcpy(name, l, nm);
        name[nm] = '\0';
        assert_string_equal(name, cur); /* sample belongs to the current family */
        const char *v = l + nm;
        if (*v == '{') {
            v = strchr(v, '}');
            assert_non_null(v);
            v++;
        }
        assert_true(*v == ' ');
        char *end;
        strtod(v + 1, &end);
        assert_true(end > v + 1 && *end == '\0');
    }
}

/* The value of the sample whose line starts with `prefix ` as a string. */
static const char *sample(const char *body, const char *prefix, char *out, size_t outlen)
{
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", prefix);
    const char *p = strstr(body, key);
    if (p == NULL)
        return NULL;
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    snprintf(out, outlen, "%.*s", (int)n, p);
    return out;
}

static void test_metrics(void **state)
{
    fix_t *f = *state;
    atomic_store(&f->seg->shard[1].state, KV_SHARD_LOADING);
    atomic_store(&f->seg->shard[2].heartbeat_ms, 0); /* never beat */
    atomic_store(&f->seg->shard[2].cpu, -1);
    kv_admin_set_info(f->admin, "1.2.3 \"rc\"\\", "/etc/kevy.yaml");
    run(f);
    char *r = get(f, "/metrics");
    assert_int_equal(status_of(r), 200);
    check_framing(r, 0);
    assert_non_null(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4"));
    const char *b = body_of(r);
    check_exposition(b);
    char v[64];

    assert_non_null(strstr(b, "# HELP kevy_shard_up "));
    assert_non_null(strstr(b, "# TYPE kevy_shard_up gauge\n"));
    assert_non_null(strstr(b, "# TYPE kevy_shard_restarts_total counter\n"));
    assert_non_null(strstr(b, "# TYPE kevy_shard_commands_processed_total counter\n"));
    assert_string_equal(sample(b, "kevy_shards", v, sizeof(v)), "3");
    double up = strtod(sample(b, "kevy_master_uptime_seconds", v, sizeof(v)), NULL);
    assert_true(up >= 5.0 && up < 10.0);
    assert_string_equal(sample(b, "kevy_build_info{version=\"1.2.3 \\\"rc\\\"\\\\\"}", v, sizeof(v)), "1");

    assert_string_equal(sample(b, "kevy_shard_up{shard=\"0\"}", v, sizeof(v)), "1");
    assert_string_equal(sample(b, "kevy_shard_up{shard=\"1\"}", v, sizeof(v)), "0"); /* loading */
    assert_string_equal(sample(b, "kevy_shard_up{shard=\"2\"}", v, sizeof(v)), "0"); /* no beat */
    assert_string_equal(sample(b, "kevy_shard_restarts_total{shard=\"2\"}", v, sizeof(v)), "4");
    assert_string_equal(sample(b, "kevy_shard_pid{shard=\"1\"}", v, sizeof(v)), "1001");
    assert_string_equal(sample(b, "kevy_shard_cpu{shard=\"2\"}", v, sizeof(v)), "-1");
    assert_string_equal(sample(b, "kevy_shard_connected_clients{shard=\"1\"}", v, sizeof(v)), "11");
    assert_string_equal(sample(b, "kevy_shard_commands_processed_total{shard=\"2\"}", v, sizeof(v)),
                        "123456789014");
    assert_string_equal(sample(b, "kevy_shard_ring_backlog_frames{shard=\"2\"}", v, sizeof(v)), "6");
    assert_string_equal(sample(b, "kevy_shard_generation{shard=\"0\"}", v, sizeof(v)), "7");
    double age = strtod(sample(b, "kevy_shard_heartbeat_age_seconds{shard=\"0\"}", v, sizeof(v)), NULL);
    assert_true(age >= 0.0 && age < 2.0);
    assert_null(sample(b, "kevy_shard_heartbeat_age_seconds{shard=\"2\"}", v, sizeof(v)));
    free(r);
}

/* ---- /status --------------------------------------------------------------- */

static void test_status_json(void **state)
{
    fix_t *f = *state;
    atomic_store(&f->seg->shard[1].state, KV_SHARD_DOWN);
    atomic_store(&f->seg->shard[1].pid, 0);
    kv_admin_set_info(f->admin, "0.9.0", "/etc/k\xe9vy \"conf\".yaml"); /* Latin-1 byte */
    kv_admin_set_shard_reason(f->admin, 1, "exited with status 3");
    run(f);
    char *r = get(f, "/status");
    assert_int_equal(status_of(r), 200);
    check_framing(r, 0);
    assert_non_null(strstr(r, "\r\nContent-Type: application/json\r\n"));
    const char *b = body_of(r);
    assert_true(json_valid(b));
    char pid[64];
    snprintf(pid, sizeof(pid), "\"pid\":%ld,", (long)getpid());
    assert_non_null(strstr(b, pid));
    assert_non_null(strstr(b, "{\"status\":\"down\","));
    assert_non_null(strstr(b, "\"version\":\"0.9.0\""));
    assert_non_null(strstr(b, "\"conf_file\":\"/etc/k\\ufffdvy \\\"conf\\\".yaml\""));
    assert_non_null(strstr(b, "\"nshards\":3"));
    assert_non_null(strstr(b, "\"uptime_seconds\":5."));
    assert_non_null(strstr(b, "{\"shard\":0,\"state\":\"up\",\"healthy\":true,\"pid\":1000,\"cpu\":0,"
                              "\"generation\":7,\"restarts\":0,\"heartbeat_age_ms\":"));
    assert_non_null(strstr(b, "{\"shard\":1,\"state\":\"down\",\"healthy\":false,\"pid\":0,"));
    assert_non_null(strstr(b, "\"clients\":12,\"commands\":123456789014,\"ring_backlog\":6,"
                              "\"reason\":null}"));
    assert_non_null(strstr(b, "\"reason\":\"exited with status 3\"}"));
    /* three shard objects */
    int n = 0;
    for (const char *p = b; (p = strstr(p, "{\"shard\":")) != NULL; p++)
        n++;
    assert_int_equal(n, 3);
    free(r);
}

static void test_status_without_info_is_valid(void **state)
{
    fix_t *f = *state;
    run(f);
    char *r = get(f, "/status");
    assert_int_equal(status_of(r), 200);
    assert_true(json_valid(body_of(r)));
    assert_non_null(strstr(body_of(r), "\"status\":\"ok\""));
    assert_non_null(strstr(body_of(r), "\"version\":null,\"conf_file\":null"));
    free(r);
}

/* ---- methods, paths, framing ---------------------------------------------- */

static void test_not_found(void **state)
{
    fix_t *f = *state;
    run(f);
    const char *paths[] = {"/", "/nope", "/healthz/", "/healthzz", "/Metrics", "/status.json"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
        char *r = get(f, paths[i]);
        assert_int_equal(status_of(r), 404);
        check_framing(r, 0);
        free(r);
    }
}

static void test_method_not_allowed(void **state)
{
    fix_t *f = *state;
    run(f);
    const char *reqs[] = {
        "POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "DELETE /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "get /status HTTP/1.1\r\nHost: x\r\n\r\n", /* methods are case-sensitive */
        "OPTIONS /status HTTP/1.0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(*reqs); i++) {
        char *r = request(f, reqs[i]);
        assert_int_equal(status_of(r), 405);
        assert_non_null(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
        check_framing(r, 0);
        free(r);
    }
}

static void test_head(void **state)
{
    fix_t *f = *state;
    run(f);
    char *r = request(f, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(r), 200);
    check_framing(r, 1);
    assert_true(strtol(strstr(r, "Content-Length: ") + 16, NULL, 10) > 500);
    free(r);
}

static void test_http10_and_lf_only(void **state)
{
    fix_t *f = *state;
    run(f);
    char *r = request(f, "GET /healthz HTTP/1.0\r\n\r\n"); /* no Host needed */
    assert_int_equal(status_of(r), 200);
    free(r);
    r = request(f, "GET /healthz HTTP/1.1\nHost: x\n\n");
    assert_int_equal(status_of(r), 200);
    free(r);
    r = request(f, "GET /healthz HTTP/1.1\r\nhost:x\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(status_of(r), 200); /* answered, then closed anyway */
    check_framing(r, 0);
    free(r);
}

static void test_bad_requests(void **state)
{
    fix_t *f = *state;
    run(f);
    const char *reqs[] = {
        "hello\r\n\r\n",
        "GET\r\n\r\n",
        "GET /healthz\r\n\r\n",
        "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1 \r\nHost: x\r\n\r\n",
        "GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\n\r\n",                          /* no Host */
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    /* two Hosts */
        "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",                /* no colon */
        "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",              /* space before colon */
        "GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",    /* obs-fold */
        "GET /healthz HTTP/1.1\r\nHost: x\x01y\r\n\r\n",          /* control byte */
        "GET /healthz HTTP/1.1\r\nHost: x\ry\r\n\r\n",            /* stray CR */
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03\n\n", /* TLS-hello-like bytes */
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(*reqs); i++) {
        char *r = request(f, reqs[i]);
        if (status_of(r) != 400)
            fail_msg("request %zu: expected 400, got: %s", i, r);
        check_framing(r, 0);
        assert_non_null(strstr(body_of(r), "bad request: "));
        free(r);
    }
    /* a NUL inside the request line */
    int fd = dial(f->port);
    send_all(fd, "GET /he\0lthz HTTP/1.1\r\nHost: x\r\n\r\n", 35);
    char *r = read_all(fd, NULL);
    close(fd);
    assert_int_equal(status_of(r), 400);
    free(r);
}

static void test_oversize_head(void **state)
{
    fix_t *f = *state;
    run(f);
    /* headers that never end */
    size_t n = 16 * 1024;
    char *big = malloc(n + 1);
    int off = snprintf(big, n, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + off, 'a', n - (size_t)off);
    big[n] = '\0';
    char *r = request(f, big);
    assert_int_equal(status_of(r), 400);
    assert_non_null(strstr(body_of(r), "too large"));
    check_framing(r, 0);
    free(r);
    /* a request line that never ends */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', n - 5);
    r = request(f, big);
    assert_int_equal(status_of(r), 400);
    free(r);
    /* just under the limit is fine */
    const char *pre = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    off = (int)strlen(pre);
    memcpy(big, pre, (size_t)off);
    memset(big + off, 'a', KV_HTTP_HEAD_MAX - (size_t)off - 4);
    memcpy(big + KV_HTTP_HEAD_MAX - 4, "\r\n\r\n", 5);
    assert_int_equal(strlen(big), KV_HTTP_HEAD_MAX);
    r = request(f, big);
    assert_int_equal(status_of(r), 200);
    free(r);
    free(big);
}

static void test_split_and_pipelined(void **state)
{
    fix_t *f = *state;
    run(f);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = dial(f->port);
    for (const char *p = req; *p; p++) {
        send_all(fd, p, 1);
        usleep(2000);
    }
    char *r = read_all(fd, NULL);
    close(fd);
    assert_int_equal(status_of(r), 200);
    free(r);

    /* two requests at once: one response, then close */
    r = request(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(r), 200);
    assert_null(strstr(r, "404"));
    free(r);
}

static void test_half_close_after_request(void **state)
{
    fix_t *f = *state;
    run(f);
    int fd = dial(f->port);
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    send_all(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    char *r = read_all(fd, NULL);
    close(fd);
    assert_int_equal(status_of(r), 200);
    check_framing(r, 0);
    free(r);
}

/* ---- timeouts and limits ---------------------------------------------------- */

static void test_slow_client_timed_out(void **state)
{
    fix_t *f = *state;
    kv_admin_set_io_timeout_ms(f->admin, 200);
    run(f);
    int idle = dial(f->port); /* sends nothing at all */
    int fd = dial(f->port);
    send_all(fd, "GET /heal", 9);
    uint64_t t0 = kv_time_mono_ms();
    size_t len;
    char *r = read_all(fd, &len);
    uint64_t took = kv_time_mono_ms() - t0;
    assert_int_equal(len, 0); /* closed without a response */
    assert_true(took >= 150 && took < 2000);
    free(r);
    r = read_all(idle, &len);
    assert_int_equal(len, 0);
    free(r);
    close(fd);
    close(idle);

    /* a client that keeps trickling bytes is still cut off at the deadline */
    fd = dial(f->port);
    t0 = kv_time_mono_ms();
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int closed = 0;
    for (const char *p = req; *p && !closed; p++) {
        if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
            closed = 1;
        usleep(20000);
    }
    r = read_all(fd, &len);
    assert_int_equal(len, 0);
    assert_true(kv_time_mono_ms() - t0 < 2000);
    free(r);
    close(fd);
}

static void test_connection_limit(void **state)
{
    fix_t *f = *state;
    run(f);
    int fds[KV_ADMIN_MAX_CONNS];
    for (int i = 0; i < KV_ADMIN_MAX_CONNS; i++)
        fds[i] = dial(f->port);
    /* the 65th is accepted after the first 64 and closed at once */
    int extra = dial(f->port);
    (void)send(extra, "GET /healthz HTTP/1.0\r\n\r\n", 25, MSG_NOSIGNAL); /* may race the close */
    uint64_t t0 = kv_time_mono_ms();
    size_t len;
    char *r = read_all(extra, &len);
    assert_int_equal(len, 0);
    assert_true(kv_time_mono_ms() - t0 < 1000); /* not the 5 s timeout */
    free(r);
    close(extra);

    /* the held connections still work */
    send_all(fds[0], "GET /healthz HTTP/1.0\r\n\r\n", 25);
    r = read_all(fds[0], NULL);
    assert_int_equal(status_of(r), 200);
    free(r);

    /* once they go away, new connections are served again */
    for (int i = 0; i < KV_ADMIN_MAX_CONNS; i++)
        close(fds[i]);
    int code = 0;
    for (int tries = 0; tries < 100 && code != 200; tries++) {
        r = get(f, "/healthz");
        code = status_of(r);
        free(r);
        if (code != 200)
            usleep(10000);
    }
    assert_int_equal(code, 200);
}

static void test_stop_with_open_connections(void **state)
{
    fix_t *f = *state;
    run(f);
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = dial(f->port);
    send_all(fds[0], "GET /sta", 8);
    usleep(50000);
    /* teardown (stop + loop exit + uv_loop_close == 0) with these open */
    uv_async_send(&f->stop);
    pthread_join(f->thr, NULL);
    f->running = 0;
    for (int i = 0; i < 5; i++) {
        size_t len;
        char *r = read_all(fds[i], &len);
        assert_int_equal(len, 0);
        free(r);
        close(fds[i]);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f->seg);
    free(f);
    *state = NULL;
}

static int teardown_maybe(void **state)
{
    return *state ? teardown(state) : 0;
}

/* ---- start errors ------------------------------------------------------------ */

static void test_start_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    char err[256];
    kv_segment_t *seg = fake_segment(1);
    assert_int_equal(uv_loop_init(&loop), 0);

    const char *bad[] = {"", "9121", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                         "127.0.0.1:12a", "::1:9121", "[::1]9121", "[::1", "host.example:80",
                         "1.2.3:80", ":9121"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        err[0] = '\0';
        assert_null(kv_admin_start(&loop, bad[i], seg, 1000, err, sizeof(err)));
        assert_non_null(strstr(err, "admin.listen "));
        assert_non_null(strstr(err, bad[i]));
    }

    kv_admin_t *a = kv_admin_start(&loop, "localhost:0", seg, 1000, err, sizeof(err));
    assert_non_null(a);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", kv_admin_port(a));
    assert_null(kv_admin_start(&loop, addr, seg, 1000, err, sizeof(err)));
    char want[128];
    snprintf(want, sizeof(want), "admin.listen %s: address already in use", addr);
    assert_string_equal(err, want);

    /* a non-local address cannot be bound */
    assert_null(kv_admin_start(&loop, "192.0.2.1:9121", seg, 1000, err, sizeof(err)));
    assert_non_null(strstr(err, "admin.listen 192.0.2.1:9121: "));

    kv_admin_stop(a);
    kv_admin_stop(NULL);
    /* the failed starts' listeners and the stopped admin are freed here */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(seg);
}

static void test_ipv6(void **state)
{
    (void)state;
    uv_loop_t loop;
    char err[256];
    kv_segment_t *seg = fake_segment(1);
    assert_int_equal(uv_loop_init(&loop), 0);
    kv_admin_t *a = kv_admin_start(&loop, "[::1]:0", seg, 1000, err, sizeof(err));
    if (a == NULL) {
        /* no IPv6 loopback in this sandbox: the error must still be clear */
        assert_non_null(strstr(err, "admin.listen [::1]:0: "));
    } else {
        assert_true(kv_admin_port(a) > 0);
        kv_admin_stop(a);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(seg);
}

/* ---- core/http.c directly ------------------------------------------------------ */

static void test_http_parse(void **state)
{
    (void)state;
    kv_http_req_t q;
#define PARSE(s) kv_http_parse((s), strlen(s), &q)
    const char *req = "GET /status?x=1 HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\nrest";
    for (size_t n = 0; n < strlen(req) - 4; n++)
        assert_int_equal(kv_http_parse(req, n, &q), KV_HTTP_NEED_MORE);
    assert_int_equal(kv_http_parse(req, strlen(req), &q), KV_HTTP_DONE);
    assert_int_equal(q.method_len, 3);
    assert_memory_equal(q.method, "GET", 3);
    assert_int_equal(q.path_len, 7);
    assert_memory_equal(q.path, "/status", 7);
    assert_int_equal(q.minor, 1);
    assert_int_equal(q.keep_alive, 0);
    assert_int_equal(q.head_len, strlen(req) - 4);

    assert_int_equal(PARSE("\r\nHEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                     KV_HTTP_DONE);
    assert_int_equal(q.minor, 0);
    assert_int_equal(q.keep_alive, 1);
    assert_int_equal(q.path_len, 1);

    /* garbage is rejected on its first line, before the head is complete */
    assert_int_equal(PARSE("BLAH\r\n"), KV_HTTP_BAD);
    assert_non_null(q.why);
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nContent-Length: 10\r\n"), KV_HTTP_BAD);
    assert_string_equal(q.why, "request body not accepted");
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nContent-Length: 00\r\nHost: x\r\n\r\n"),
                     KV_HTTP_DONE);
    assert_int_equal(PARSE("\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n"), KV_HTTP_BAD);
    assert_int_equal(PARSE("GET / HTTP/1.1\r\n\r\n"), KV_HTTP_BAD);
    assert_string_equal(q.why, "missing Host header");
    assert_int_equal(PARSE("GETTTTTTTTTTTTTTTTTTT / HTTP/1.0\r\n\r\n"), KV_HTTP_BAD);
#undef PARSE
}

static void test_http_buf(void **state)
{
    (void)state;
    kv_http_buf_t b = {0};
    kv_http_buf_json_str(&b, "a\"b\\c\t\x01 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc3 \xed\xa0\x80 \xff");
    kv_http_buf_puts(&b, " ");
    kv_http_buf_json_str(&b, NULL);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\u0009\\u0001 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                             "\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\" null");
    free(b.p);

    memset(&b, 0, sizeof(b));
    kv_http_buf_label(&b, "v\"1\\\n\x02\xc3\xa9\xfe");
    assert_string_equal(b.p, "v\\\"1\\\\\\n\xc3\xa9?");
    free(b.p);

    memset(&b, 0, sizeof(b));
    kv_http_buf_secs(&b, 0);
    kv_http_buf_puts(&b, " ");
    kv_http_buf_secs(&b, 12034);
    kv_http_buf_printf(&b, " %d", 42);
    assert_string_equal(b.p, "0.000 12.034 42");
    assert_int_equal(b.len, strlen(b.p));
    free(b.p);

    /* the cap: appends past KV_HTTP_BODY_MAX set oom and stop */
    memset(&b, 0, sizeof(b));
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 100 && !b.oom; i++)
        kv_http_buf_put(&b, chunk, sizeof(chunk));
    assert_true(b.oom);
    assert_true(b.len < KV_HTTP_BODY_MAX);
    size_t len = b.len;
    kv_http_buf_puts(&b, "more");
    assert_int_equal(b.len, len);
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_validator_itself),
        cmocka_unit_test(test_http_parse),
        cmocka_unit_test(test_http_buf),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test_setup_teardown(test_healthz_all_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_starting_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_stale_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_failed_with_reason_and_no_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_without_info_is_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10_and_lf_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_and_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close_after_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_timed_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_open_connections, setup, teardown_maybe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
