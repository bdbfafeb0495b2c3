/* Unit tests for the RESP2 parser (shard/resp) and the reply writer
 * (shard/reply). Expected protocol error texts, ignored requests, inline
 * quoting and number formats were recorded from redis-server 7.0.15 on a
 * raw socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shard/reply.h"
#include "shard/resp.h"

#include "testutil.h"


/* ---- transcript helpers ---------------------------------------------- */

typedef struct { char *s; size_t len, cap; } sbuf;

static void sb_put(sbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_arg(sbuf *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '|' && c != '\\') sb_put(b, (char *)&c, 1);
        else {
            char t[8];
            snprintf(t, sizeof t, "\\x%02x", c);
            sb_str(b, t);
        }
    }
}

static void sb_cmd(sbuf *b, const kv_resp_parser *p)
{
    sb_str(b, "[");
    for (int i = 0; i < p->argc; i++) {
        if (i) sb_str(b, "|");
        if (p->argv[i].len > 64) {
            char t[64];
            snprintf(t, sizeof t, "<%zu bytes, first %02x>", p->argv[i].len,
                     (unsigned char)p->argv[i].ptr[0]);
            sb_str(b, t);
        } else {
            sb_arg(b, p->argv[i].ptr, p->argv[i].len);
        }
    }
    sb_str(b, "]");
}

/* Parse all of in (copied: inline unquoting rewrites the buffer); the
 * transcript lists each command then NEED or ERR:<text>. */
static char *run_whole(const char *in, size_t n, kv_resp_parser *cfg)
{
    kv_resp_parser p;
    kv_resp_init(&p);
    if (cfg) {
        p.max_bulk_len = cfg->max_bulk_len;
        p.unauth = cfg->unauth;
    }
    char *buf = malloc(n + 1);
    memcpy(buf, in, n);
    sbuf t = {0};
    sb_str(&t, "");
    int rc;
    while ((rc = kv_resp_parse(&p, buf, n)) == KV_RESP_OK) sb_cmd(&t, &p);
    if (rc == KV_RESP_ERR) {
        sb_str(&t, "ERR:");
        sb_str(&t, p.err);
    } else {
        sb_str(&t, "NEED");
    }
    kv_resp_free(&p);
    free(buf);
    return t.s;
}

/* Feed in chunks given by cuts[], compacting the buffer after each read
 * (and moving it to a fresh allocation, so stale pointers would show). */
static char *run_chunked(const char *in, size_t n, const size_t *cuts, int ncuts)
{
    kv_resp_parser p;
    kv_resp_init(&p);
    sbuf t = {0};
    sb_str(&t, "");
    char *buf = NULL;
    size_t len = 0, fed = 0;
    int rc = KV_RESP_NEED_MORE;
    for (int c = 0; c <= ncuts; c++) {
        size_t upto = c < ncuts ? cuts[c] : n;
        if (upto < fed) continue;
        char *nb = malloc(len + (upto - fed) + 1);
        if (len) memcpy(nb, buf, len);
        memcpy(nb + len, in + fed, upto - fed);
        free(buf);
        buf = nb;
        len += upto - fed;
        fed = upto;
        while ((rc = kv_resp_parse(&p, buf, len)) == KV_RESP_OK) sb_cmd(&t, &p);
        if (rc == KV_RESP_ERR) break;
        size_t k = kv_resp_consumed(&p);
        memmove(buf, buf + k, len - k);
        len -= k;
        kv_resp_discard(&p, k);
    }
    if (rc == KV_RESP_ERR) {
        sb_str(&t, "ERR:");
        sb_str(&t, p.err);
    } else {
        sb_str(&t, "NEED");
    }
    kv_resp_free(&p);
    free(buf);
    return t.s;
}

#define S(lit) lit, sizeof(lit) - 1

typedef struct { const char *in; size_t n; const char *want; } pcase;

/* Every row was sent to redis-server 7.0.15; "ERR:" rows got
 * "-ERR <text>\r\n" and a closed connection, "NEED" rows kept the
 * connection open waiting, commands before were executed. */
static const pcase cases[] = {
    {S("*abc\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*2147483648\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*9223372036854775807\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*-9223372036854775809\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*1 \r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*+1\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*01\r\n$4\r\nPING\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("* 1\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*-0\r\n"), "ERR:Protocol error: invalid multibulk length"},
    {S("*1\r\nx\r\n"), "ERR:Protocol error: expected '$', got 'x'"},
    {S("*1\r\n\n\r\n"), "ERR:Protocol error: expected '$', got ' '"},
    {S("*1\r\n\r\r\n"), "ERR:Protocol error: expected '$', got ' '"},
    {S("*1\r\n\xff\r\n"), "ERR:Protocol error: expected '$', got '\xff'"},
    {S("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"), "ERR:Protocol error: expected '$', got 'f'"},
    {S("*1\r\n$abc\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$-1\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$-0\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$536870913\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$9223372036854775808\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$+4\r\nPING\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$04\r\nPING\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$ 4\r\nPING\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$4 \r\nPING\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$\r\n$4\r\nPING\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$4\nPING\r\n"), "ERR:Protocol error: invalid bulk length"},
    {S("*1\r\n$4\r\nPING\r\n*1\r\n$abc\r\n"), "[PING]ERR:Protocol error: invalid bulk length"},
    {S("PING \"abc\r\n"), "ERR:Protocol error: unbalanced quotes in request"},
    {S("PING 'abc\r\n"), "ERR:Protocol error: unbalanced quotes in request"},
    {S("PING \"abc\"x\r\n"), "ERR:Protocol error: unbalanced quotes in request"},
    {S("ECHO \"a\"\"b\"\r\n"), "ERR:Protocol error: unbalanced quotes in request"},
    {S("ECHO \"\\\r\n"), "ERR:Protocol error: unbalanced quotes in request"},
    /* accepted / ignored / waiting */
    {S("*-5\r\n"), "NEED"},
    {S("*-9223372036854775808\r\n"), "NEED"},
    {S("*2147483647\r\n"), "NEED"},
    {S("*536870912\r\n"), "NEED"},
    {S("*1\r\n$536870912\r\n"), "NEED"},
    {S("*0\r\n"), "NEED"},
    {S("*0\r\nPING\r\n"), "[PING]NEED"},
    {S("*-1\r\nPING\r\n"), "[PING]NEED"},
    {S("\r\nPING\r\n"), "[PING]NEED"},
    {S("\nPING\n"), "[PING]NEED"},
    {S("   \r\nPING\r\n"), "[PING]NEED"},
    {S("PING\r\r\n"), "[PING]NEED"},
    {S("*1\r\n$4\r\nPINGxx"), "[PING]NEED"},
    {S("*1\rX$4\r\nPING\r\n"), "[PING]NEED"},
    {S("*1\r\n$4\r\nPING\r\n\r\n"), "[PING]NEED"},
    {S("*3\r\n$3\r\nSET\r\n"), "NEED"},
    {S("*1\r\n$4\r\nPING"), "NEED"},
    {S("*1\r"), "NEED"},
    {S("*1\r\n$4\r"), "NEED"},
    {S("*1\r\n\n"), "NEED"},
    {S("*1\r\n\x00\r\n"), "NEED"},
    {S("PING\x00\n"), "NEED"},
    {S("*1\r\n$0\r\n\r\n"), "[]NEED"},
    {S("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), "[ECHO|]NEED"},
    /* inline quoting (sdssplitargs) */
    {S("ECHO \"a\\x41\\n\"\r\n"), "[ECHO|aA\\x0a]NEED"},
    {S("ECHO 'a\\'b'\r\n"), "[ECHO|a'b]NEED"},
    {S("ECHO \"\\xZZ\"\r\n"), "[ECHO|xZZ]NEED"},
    {S("ECHO \"\\xff\"\r\n"), "[ECHO|\\xff]NEED"},
    {S("ECHO \"\\xAg\"\r\n"), "[ECHO|xAg]NEED"},
    {S("ECHO \"\\x4\"\r\n"), "[ECHO|x4]NEED"},
    {S("ECHO a\tb\r\n"), "[ECHO|a|b]NEED"},
    {S("ECHO \"\"\r\n"), "[ECHO|]NEED"},
    {S("ECHO ''\r\n"), "[ECHO|]NEED"},
    {S("ECHO \"a\" b\r\n"), "[ECHO|a|b]NEED"},
    {S("ECHO a\"b c\"\r\n"), "[ECHO|ab c]NEED"},
    {S("ECHO \vx\r\n"), "[ECHO|x]NEED"},
    {S("ECHO x\vy\r\n"), "[ECHO|x\\x0by]NEED"},
    {S("ECHO \"x\"\v\r\n"), "[ECHO|x]NEED"},
    {S("ECHO \"a\\\"b\"\r\n"), "[ECHO|a\"b]NEED"},
    {S("ECHO 'a\\nb'\r\n"), "[ECHO|a\\x5cnb]NEED"},
    {S("ECHO 'a'\f\r\n"), "[ECHO|a]NEED"},
    {S("ECHO \"\\t\\r\\b\\a\\q\"\r\n"), "[ECHO|\\x09\\x0d\\x08\\x07q]NEED"},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = run_whole(cases[i].in, cases[i].n, NULL);
        if (strcmp(got, cases[i].want) != 0) {
            print_error("case %zu: got %s want %s\n", i, got, cases[i].want);
            fail();
        }
        /* byte by byte must agree */
        size_t cuts[256];
        int nc = 0;
        for (size_t k = 1; k < cases[i].n && nc < 256; k++) cuts[nc++] = k;
        char *got2 = run_chunked(cases[i].in, cases[i].n, cuts, nc);
        if (strcmp(got2, cases[i].want) != 0) {
            print_error("case %zu bytewise: got %s want %s\n", i, got2, cases[i].want);
            fail();
        }
        free(got);
        free(got2);
    }
}

static void test_too_big(void **state)
{
    (void)state;
    size_t n = 70000;
    char *b = malloc(n + 16);
    /* inline: >64 KiB without '\n' */
    memset(b, 'x', n);
    char *g = run_whole(b, 65536, NULL);
    assert_string_equal(g, "NEED");
    free(g);
    g = run_whole(b, 65537, NULL);
    assert_string_equal(g, "ERR:Protocol error: too big inline request");
    free(g);
    /* a long inline line that arrived with its '\n' is fine */
    memcpy(b, "ECHO ", 5);
    b[n] = '\n';
    g = run_whole(b, n + 1, NULL);
    assert_true(strncmp(g, "[ECHO|<69995 bytes", 18) == 0);
    free(g);
    /* multibulk count line */
    memset(b, '1', n);
    b[0] = '*';
    g = run_whole(b, n, NULL);
    assert_string_equal(g, "ERR:Protocol error: too big mbulk count string");
    free(g);
    /* bulk count line */
    memcpy(b, "*1\r\n$", 5);
    g = run_whole(b, n, NULL);
    assert_string_equal(g, "ERR:Protocol error: too big bulk count string");
    free(g);
    memcpy(b, "*1\r\nx", 5);
    g = run_whole(b, n, NULL);
    assert_string_equal(g, "ERR:Protocol error: too big bulk count string");
    free(g);
    /* inline with a NUL waits, then fails once too big (Redis strchr) */
    memset(b, 'x', n);
    b[3] = 0;
    b[10] = '\n';
    g = run_whole(b, n, NULL);
    assert_string_equal(g, "ERR:Protocol error: too big inline request");
    free(g);
    free(b);
}

static void test_limits(void **state)
{
    (void)state;
    kv_resp_parser cfg;
    kv_resp_init(&cfg);
    cfg.unauth = 1;
    char *g = run_whole(S("*11\r\n"), &cfg);
    assert_string_equal(g, "ERR:Protocol error: unauthenticated multibulk length");
    free(g);
    g = run_whole(S("*10\r\n"), &cfg);
    assert_string_equal(g, "NEED");
    free(g);
    g = run_whole(S("*1\r\n$16385\r\n"), &cfg);
    assert_string_equal(g, "ERR:Protocol error: unauthenticated bulk length");
    free(g);
    g = run_whole(S("*1\r\n$16384\r\n"), &cfg);
    assert_string_equal(g, "NEED");
    free(g);
    /* the generic checks come first, as in Redis */
    g = run_whole(S("*1\r\n$536870913\r\n"), &cfg);
    assert_string_equal(g, "ERR:Protocol error: invalid bulk length");
    free(g);
    g = run_whole(S("*2147483648\r\n"), &cfg);
    assert_string_equal(g, "ERR:Protocol error: invalid multibulk length");
    free(g);
    /* configurable proto_max_bulk_len */
    kv_resp_init(&cfg);
    cfg.max_bulk_len = 10;
    g = run_whole(S("*1\r\n$10\r\n0123456789\r\n"), &cfg);
    assert_string_equal(g, "[0123456789]NEED");
    free(g);
    g = run_whole(S("*1\r\n$11\r\n"), &cfg);
    assert_string_equal(g, "ERR:Protocol error: invalid bulk length");
    free(g);
    /* errors are sticky until reset */
    kv_resp_parser p;
    kv_resp_init(&p);
    char bad[] = "*x\r\n*1\r\n$4\r\nPING\r\n";
    assert_int_equal(kv_resp_parse(&p, bad, sizeof bad - 1), KV_RESP_ERR);
    assert_int_equal(kv_resp_parse(&p, bad, sizeof bad - 1), KV_RESP_ERR);
    kv_resp_reset(&p);
    char ok[] = "PING\r\n";
    assert_int_equal(kv_resp_parse(&p, ok, 6), KV_RESP_OK);
    assert_int_equal(p.argc, 1);
    kv_resp_free(&p);
}

/* A pipeline mixing every request shape; every split position and random
 * chunkings must give the same transcript as one whole feed. */
static size_t build_pipeline(char *o)
{
    size_t n = 0;
#define PUT(s) (memcpy(o + n, s, sizeof(s) - 1), n += sizeof(s) - 1)
    PUT("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n");
    PUT("PING\r\n");
    PUT("\r\n");
    PUT("*0\r\n");
    PUT("SET k \"a b\\x41\" 'c\\'d'\n");
    PUT("*-1\r\n");
    PUT("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
    PUT("   \t \r\n");
    PUT("*1\r\n$4\r\nPINGzz");
    PUT("*2\r\n$4\r\nECHO\r\n$300\r\n");
    for (int i = 0; i < 300; i++) o[n++] = (char)('a' + i % 26);
    PUT("\r\n");
    PUT("*2\r\n$3\r\nGET\r\n$3\r\n\x00\x01\x02\r\n");
    PUT("MGET a b c\r\n");
    PUT("*1\r\n$4\r\nQUIT\r\n");
#undef PUT
    return n;
}

static void test_split_every_position(void **state)
{
    (void)state;
    char in[2048];
    size_t n = build_pipeline(in);
    char *whole = run_whole(in, n, NULL);
    assert_non_null(strstr(whole, "[SET|k|a bA|c'd]"));
    assert_non_null(strstr(whole, "[QUIT]NEED"));
    for (size_t k = 0; k <= n; k++) {
        size_t cut = k;
        char *g = run_chunked(in, n, &cut, 1);
        if (strcmp(g, whole)) {
            print_error("split at %zu:\n%s\nvs\n%s\n", k, g, whole);
            fail();
        }
        free(g);
    }
    for (size_t a = 0; a <= n; a += quick() ? 37 : 7)
        for (size_t b = a; b <= n; b += quick() ? 41 : 11) {
            size_t cuts[2] = {a, b};
            char *g = run_chunked(in, n, cuts, 2);
            if (strcmp(g, whole)) {
                print_error("split at %zu,%zu\n", a, b);
                fail();
            }
            free(g);
        }
    srand(7);
    int rounds = quick() ? 100 : 2000;
    size_t cuts[64];
    for (int r = 0; r < rounds; r++) {
        int nc = rand() % 64;
        for (int i = 0; i < nc; i++) cuts[i] = (size_t)rand() % (n + 1);
        for (int i = 1; i < nc; i++) /* insertion sort */
            for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        char *g = run_chunked(in, n, cuts, nc);
        assert_string_equal(g, whole);
        free(g);
    }
    free(whole);
}

static void test_large_bulk(void **state)
{
    (void)state;
    size_t big = quick() ? (1u << 20) : (16u << 20);
    const char hdr[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n";
    char lenline[32];
    int ll = snprintf(lenline, sizeof lenline, "$%zu\r\n", big);
    size_t total = sizeof hdr - 1 + (size_t)ll + big + 2 + 6;
    char *src = malloc(total);
    size_t n = 0;
    memcpy(src + n, hdr, sizeof hdr - 1), n += sizeof hdr - 1;
    memcpy(src + n, lenline, (size_t)ll), n += (size_t)ll;
    for (size_t i = 0; i < big; i++) src[n + i] = (char)(i * 31);
    n += big;
    memcpy(src + n, "\r\nPING\r\n", 8), n += 8;
    assert_int_equal(n, total);

    kv_resp_parser p;
    kv_resp_init(&p);
    char *buf = malloc(total);
    size_t len = 0, chunk = 4096;
    int cmds = 0, wants_ok = 0;
    while (len < total) {
        size_t c = total - len < chunk ? total - len : chunk;
        memcpy(buf + len, src + len, c);
        len += c;
        int rc;
        while ((rc = kv_resp_parse(&p, buf, len)) == KV_RESP_OK) {
            cmds++;
            if (cmds == 1) {
                assert_int_equal(p.argc, 3);
                assert_int_equal(p.argv[2].len, big);
                assert_memory_equal(p.argv[2].ptr, src + sizeof hdr - 1 + ll, big);
            } else {
                assert_int_equal(p.argc, 1);
                assert_memory_equal(p.argv[0].ptr, "PING", 4);
            }
        }
        assert_int_equal(rc, KV_RESP_NEED_MORE);
        size_t w = kv_resp_want(&p, len);
        if (cmds == 0 && len > sizeof hdr - 1 + (size_t)ll) {
            /* want = payload + CRLF still missing, exactly */
            assert_int_equal(w, sizeof hdr - 1 + (size_t)ll + big + 2 - len);
            wants_ok++;
        }
    }
    assert_int_equal(cmds, 2);
    assert_true(wants_ok > 0);
    assert_int_equal(kv_resp_consumed(&p), total);
    kv_resp_free(&p);
    free(buf);
    free(src);
}

/* ---- reply writer ---------------------------------------------------- */

static char *drain(kv_reply_buf *b, size_t *n)
{
    struct iovec iov[64];
    size_t total = kv_reply_buf_len(b);
    char *o = malloc(total + 1);
    size_t at = 0;
    while (kv_reply_buf_len(b)) {
        int c = kv_reply_buf_iov(b, iov, 64);
        assert_true(c > 0);
        /* take a partial first iovec sometimes, like a short writev */
        size_t take = iov[0].iov_len > 3 ? iov[0].iov_len - 3 : iov[0].iov_len;
        memcpy(o + at, iov[0].iov_base, take);
        at += take;
        kv_reply_buf_consume(b, take);
    }
    assert_int_equal(at, total);
    o[at] = 0;
    *n = at;
    return o;
}

static void expect(kv_reply_buf *b, const char *want, size_t wn)
{
    size_t n;
    char *got = drain(b, &n);
    if (n != wn || memcmp(got, want, wn)) {
        print_error("got [%s] want [%s]\n", got, want);
        fail();
    }
    free(got);
    assert_int_equal(kv_reply_buf_mem(b), 0); /* idle buffer holds nothing */
}
#define EXPECT(b, lit) expect(b, lit, sizeof(lit) - 1)

static void test_reply_basic(void **state)
{
    (void)state;
    kv_reply_buf b;
    kv_reply_buf_init(&b);
    kv_reply_ok(&b);
    kv_reply_status(&b, "PONG");
    kv_reply_error_cstr(&b, "unknown command");
    kv_reply_error_cstr(&b, "-WRONGTYPE Operation against a key holding the wrong kind of value");
    kv_reply_int(&b, 0);
    kv_reply_int(&b, -1);
    kv_reply_int(&b, 9223372036854775807LL);
    kv_reply_int(&b, (-9223372036854775807LL - 1));
    kv_reply_bulk(&b, "", 0);
    kv_reply_bulk(&b, "a\r\nb", 4);
    kv_reply_bulk_ll(&b, -42);
    kv_reply_null(&b);
    kv_reply_null_array(&b);
    kv_reply_array(&b, 0);
    kv_reply_array(&b, 3);
    kv_reply_raw(&b, "+RAW\r\n", 6);
    kv_reply_errorf(&b, "\r\nexpected '%c' got\n%s\r\n", '$', "x\ry");
    static const char want[] = "+OK\r\n+PONG\r\n-ERR unknown command\r\n"
                               "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
                               ":0\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n"
                               "$0\r\n\r\n$4\r\na\r\nb\r\n$3\r\n-42\r\n$-1\r\n*-1\r\n*0\r\n*3\r\n+RAW\r\n"
                               "-ERR expected '$' got x y\r\n";
    assert_int_equal(kv_reply_buf_len(&b), sizeof want - 1);
    EXPECT(&b, want);
    kv_reply_buf_free(&b);
}

static void test_reply_doubles(void **state)
{
    (void)state;
    /* ZADD (skiplist encoding) then ZSCORE on redis-server 7.0.15 */
    static const char *const zs[][2] = {
        {"1", "1"}, {"0.1", "0.10000000000000001"}, {"1e300", "1.0000000000000001e+300"},
        {"-0.0", "-0"}, {"0", "0"}, {"3.0", "3"}, {"1.5e-7", "1.4999999999999999e-07"},
        {"123456789012345678", "1.2345678901234568e+17"}, {"-1e-300", "-1e-300"},
        {"2.5", "2.5"}, {"1e17", "1e+17"}, {"1e16", "10000000000000000"},
        {"0.3", "0.29999999999999999"}, {"1e-5", "1.0000000000000001e-05"},
        {"-1.7976931348623157e308", "-1.7976931348623157e+308"},
        {"4.9e-324", "4.9406564584124654e-324"}, {"inf", "inf"}, {"-inf", "-inf"},
    };
    char buf[KV_REPLY_DBL_MAX];
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        int n = kv_reply_fmt_double(buf, strtod(zs[i][0], NULL));
        assert_int_equal(n, strlen(zs[i][1]));
        assert_string_equal(buf, zs[i][1]);
    }
    /* INCRBYFLOAT on a missing key on redis-server 7.0.15 */
    static const char *const ib[][2] = {
        {"1", "1"},
        {"1e300", "1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144"},
        {"-1e300", "-1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144"},
        {"1.5e-7", "0.00000015"}, {"0.1", "0.1"}, {"3.0", "3"}, {"1e-20", "0"},
        {"123456789012345678", "123456789012345678"}, {"-0.0", "0"}, {"-1e-300", "0"},
        {"0.3", "0.3"}, {"1.1", "1.1"}, {"-2.5", "-2.5"}, {"1e17", "100000000000000000"},
        {"5e-18", "0"}, {"0.00001", "0.00001"}, {"inf", "inf"}, {"-inf", "-inf"},
    };
    char lb[KV_REPLY_LD_MAX];
    for (size_t i = 0; i < sizeof ib / sizeof ib[0]; i++) {
        int n = kv_reply_fmt_ld_human(lb, sizeof lb, strtold(ib[i][0], NULL));
        assert_int_equal(n, strlen(ib[i][1]));
        assert_string_equal(lb, ib[i][1]);
    }
    assert_int_equal(kv_reply_fmt_ld_human(lb, 8, 12345678.0L), 0); /* no room */

    kv_reply_buf b;
    kv_reply_buf_init(&b);
    kv_reply_double(&b, 0.1);
    kv_reply_double(&b, -1.0 / 0.0);
    kv_reply_ld_human(&b, 10.5L);
    EXPECT(&b, "$19\r\n0.10000000000000001\r\n$4\r\n-inf\r\n$4\r\n10.5\r\n");
    char ll[KV_REPLY_LL_MAX];
    assert_int_equal(kv_reply_fmt_ll(ll, -9223372036854775807LL - 1), 20);
    assert_string_equal(ll, "-9223372036854775808");
    kv_reply_buf_free(&b);
}

static void test_reply_blocks(void **state)
{
    (void)state;
    kv_reply_buf b;
    kv_reply_buf_init(&b);
    /* many small replies cross block boundaries without splitting */
    sbuf want = {0};
    sb_str(&want, "");
    for (int i = 0; i < 5000; i++) {
        char t[64];
        kv_reply_int(&b, i * 7919LL);
        snprintf(t, sizeof t, ":%lld\r\n", i * 7919LL);
        sb_str(&want, t);
        kv_reply_bulk(&b, "hello", 5);
        sb_str(&want, "$5\r\nhello\r\n");
    }
    /* a bulk larger than a block, and one far larger */
    size_t sizes[2] = {KV_REPLY_BLOCK_BYTES + 123, 3u << 20};
    for (int k = 0; k < 2; k++) {
        char *v = malloc(sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++) v[i] = (char)(i * 13 + k);
        kv_reply_bulk(&b, v, sizes[k]);
        char t[32];
        snprintf(t, sizeof t, "$%zu\r\n", sizes[k]);
        sb_str(&want, t);
        sb_put(&want, v, sizes[k]);
        sb_str(&want, "\r\n");
        free(v);
    }
    assert_int_equal(kv_reply_buf_len(&b), want.len);
    assert_true(kv_reply_buf_mem(&b) >= want.len);
    /* iov view covers all bytes in order */
    struct iovec iov[1024];
    int c = kv_reply_buf_iov(&b, iov, 1024);
    size_t tot = 0;
    for (int i = 0; i < c; i++) {
        assert_memory_equal(iov[i].iov_base, want.s + tot, iov[i].iov_len);
        tot += iov[i].iov_len;
    }
    assert_int_equal(tot, want.len);
    expect(&b, want.s, want.len);
    /* reset drops everything */
    kv_reply_bulk(&b, "x", 1);
    kv_reply_buf_reset(&b);
    assert_int_equal(kv_reply_buf_len(&b), 0);
    assert_int_equal(kv_reply_buf_mem(&b), 0);
    assert_int_equal(kv_reply_buf_iov(&b, iov, 4), 0);
    free(want.s);
    kv_reply_buf_free(&b);
    kv_reply_cache_trim();
}

/* An empty buffer's first block is small when the reply is (reply.c); what
 * does not fit goes on in standard blocks, in order, and every block goes
 * back once sent. */
static void test_reply_small_first_block(void **state)
{
    (void)state;
    kv_reply_buf b;
    kv_reply_buf_init(&b);
    kv_reply_int(&b, 42);
    size_t small = kv_reply_buf_mem(&b);
    assert_true(small > 0 && small < KV_REPLY_BLOCK_BYTES);
    EXPECT(&b, ":42\r\n");

    sbuf want = {0};
    sb_str(&want, "");
    for (int i = 0; i < 300; i++) {     /* ~3 KiB: spills past the small block */
        kv_reply_bulk(&b, "abcdef", 6);
        sb_str(&want, "$6\r\nabcdef\r\n");
    }
    assert_int_equal(kv_reply_buf_mem(&b), small + KV_REPLY_BLOCK_BYTES);
    struct iovec iov[8];
    assert_int_equal(kv_reply_buf_iov(&b, iov, 8), 2);
    expect(&b, want.s, want.len);

    /* a first reply larger than the small block: a standard one at once */
    char *big = kv_reply_buf_reserve(&b, 4000);
    memset(big, 'z', 4000);
    kv_reply_buf_commit(&b, 4000);
    assert_int_equal(kv_reply_buf_mem(&b), KV_REPLY_BLOCK_BYTES);
    assert_int_equal(kv_reply_buf_iov(&b, iov, 8), 1);
    kv_reply_buf_reset(&b);
    assert_int_equal(kv_reply_buf_mem(&b), 0);
    free(want.s);
    kv_reply_cache_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_split_every_position),
        cmocka_unit_test(test_large_bulk),
        cmocka_unit_test(test_reply_basic),
        cmocka_unit_test(test_reply_doubles),
        cmocka_unit_test(test_reply_blocks),
        cmocka_unit_test(test_reply_small_first_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
