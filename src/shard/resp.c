/* RESP2 request parser. See resp.h for the contract and the Redis 7.0
 * behaviours it reproduces (each was checked on a raw socket). */
#include "shard/resp.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_IDLE = 0, M_MULTIBULK = 1, M_PENDING = 2, M_ERROR = 3 };
#define CONTINUE (-1) /* internal: an ignored request was skipped */

/* Redis's string2ll: strict decimal, no '+', no leading zeros, no "-0",
 * at most 20 characters, exact overflow checks. The strictness matters:
 * "$04" and "*+1" are protocol errors in Redis. */
static int str2ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n >= 21) return 0;
    if (n == 1 && s[0] == '0') { *out = 0; return 1; }
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        if (++i == n) return 0;
    }
    if (s[i] < '1' || s[i] > '9') return 0;
    unsigned long long v = (unsigned long long)(s[i++] - '0');
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > ULLONG_MAX / 10) return 0;
        v *= 10;
        if (v > ULLONG_MAX - d) return 0;
        v += d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fputs("kevy: out of memory in resp parser\n", stderr);
        abort();
    }
    return q;
}

static void ensure_cap(kv_resp_parser *p, int need)
{
    if (need <= p->cap) return;
    int cap = p->cap ? p->cap : 16;
    while (cap < need) cap = cap > INT_MAX / 2 ? INT_MAX : cap * 2;
    p->argv = xrealloc(p->argv, (size_t)cap * sizeof *p->argv);
    p->off = xrealloc(p->off, (size_t)cap * sizeof *p->off);
    p->cap = cap;
}

void kv_resp_init(kv_resp_parser *p)
{
    memset(p, 0, sizeof *p);
    p->max_bulk_len = KV_RESP_DEFAULT_MAX_BULK;
    p->bulklen = -1;
}

void kv_resp_free(kv_resp_parser *p)
{
    free(p->argv);
    free(p->off);
    p->argv = NULL;
    p->off = NULL;
    p->cap = 0;
    p->argc = 0;
}

void kv_resp_reset(kv_resp_parser *p)
{
    p->argc = 0;
    p->err = NULL;
    p->cmd_start = p->pos = p->scan = 0;
    p->bulklen = -1;
    p->mbleft = 0;
    p->mode = M_IDLE;
}

static int fail(kv_resp_parser *p, const char *msg)
{
    p->mode = M_ERROR;
    p->err = msg;
    p->argc = 0;
    return KV_RESP_ERR;
}

/* Release the command returned last time: the next request starts after
 * it. A one-off huge argv is given back so a single 1M-argument command
 * does not pin memory for the life of the connection. */
static void release_pending(kv_resp_parser *p)
{
    p->cmd_start = p->scan = p->pos;
    p->argc = 0;
    p->mode = M_IDLE;
    if (p->cap > 65536) {
        free(p->argv);
        free(p->off);
        p->argv = NULL;
        p->off = NULL;
        p->cap = 0;
    }
}

/* Find the '\r' ending a count line, as strchr(buf+pos, '\r') would in
 * Redis: a NUL byte ends the search unsuccessfully. Resumes at p->scan so
 * a count line trickling in byte by byte is not rescanned. Returns the
 * offset of '\r' or (size_t)-1. */
static size_t find_cr(kv_resp_parser *p, const char *buf, size_t len)
{
    size_t i = p->scan;
    for (; i < len; i++) {
        char c = buf[i];
        if (c == '\r') { p->scan = i; return i; }
        if (c == '\0') break;
    }
    p->scan = i; /* stays on a NUL forever, as in Redis */
    return (size_t)-1;
}

static inline int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static inline int is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static inline int hex_val(int c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* sdssplitargs() semantics over buf[s..e), a line known to hold no NUL,
 * with "end of line" playing the role of sdssplitargs's terminating NUL.
 * Unescaped bytes are written in place (write index never passes the read
 * index). Returns argc, or -1 for unbalanced quotes. */
static int split_inline(kv_resp_parser *p, char *buf, size_t s, size_t e)
{
#define AT(k) ((k) < e ? (unsigned char)buf[k] : 0)
    size_t i = s;
    int argc = 0;
    for (;;) {
        while (i < e && is_space((unsigned char)buf[i])) i++;
        if (i >= e) return argc;
        size_t start = i, w = i;
        int inq = 0, insq = 0, done = 0;
        while (!done) {
            int c = AT(i);
            if (inq) {
                if (c == '\\' && AT(i + 1) == 'x' && is_hex(AT(i + 2)) && is_hex(AT(i + 3))) {
                    char byte = (char)(hex_val(AT(i + 2)) * 16 + hex_val(AT(i + 3)));
                    buf[w++] = byte;
                    i += 3;
                } else if (c == '\\' && AT(i + 1)) {
                    int n = AT(i + 1);
                    i++;
                    switch (n) {
                    case 'n': n = '\n'; break;
                    case 'r': n = '\r'; break;
                    case 't': n = '\t'; break;
                    case 'b': n = '\b'; break;
                    case 'a': n = '\a'; break;
                    default: break;
                    }
                    buf[w++] = (char)n;
                } else if (c == '"') {
                    /* a closing quote must be followed by a space or EOL */
                    if (AT(i + 1) && !is_space(AT(i + 1))) return -1;
                    done = 1;
                } else if (!c) {
                    return -1;
                } else {
                    buf[w++] = (char)c;
                }
            } else if (insq) {
                if (c == '\\' && AT(i + 1) == '\'') {
                    i++;
                    buf[w++] = '\'';
                } else if (c == '\'') {
                    if (AT(i + 1) && !is_space(AT(i + 1))) return -1;
                    done = 1;
                } else if (!c) {
                    return -1;
                } else {
                    buf[w++] = (char)c;
                }
            } else {
                switch (c) {
                /* only these end a bare token; \v and \f do not */
                case ' ': case '\n': case '\r': case '\t': case 0: done = 1; break;
                case '"': inq = 1; break;
                case '\'': insq = 1; break;
                default: buf[w++] = (char)c; break;
                }
            }
            if (i < e) i++;
        }
        ensure_cap(p, argc + 1);
        p->argv[argc].ptr = buf + start;
        p->argv[argc].len = w - start;
        argc++;
    }
#undef AT
}

static int parse_inline(kv_resp_parser *p, char *buf, size_t len)
{
    char *nl = NULL;
    if (p->scan >= len || buf[p->scan] != '\0') {
        size_t from = p->scan;
        nl = memchr(buf + from, '\n', len - from);
        size_t end = nl ? (size_t)(nl - buf) : len;
        char *z = memchr(buf + from, '\0', end - from);
        if (z) {
            nl = NULL;
            p->scan = (size_t)(z - buf);
        } else if (!nl) {
            p->scan = len;
        }
    }
    if (!nl) {
        if (len - p->pos > KV_RESP_INLINE_MAX)
            return fail(p, "Protocol error: too big inline request");
        return KV_RESP_NEED_MORE;
    }
    size_t lend = (size_t)(nl - buf), next = lend + 1;
    if (lend > p->pos && buf[lend - 1] == '\r') lend--;
    int argc = split_inline(p, buf, p->pos, lend);
    if (argc < 0) return fail(p, "Protocol error: unbalanced quotes in request");
    p->pos = p->scan = next;
    if (argc == 0) { /* empty line: ignored */
        p->cmd_start = next;
        return CONTINUE;
    }
    p->argc = argc;
    p->mode = M_PENDING;
    return KV_RESP_OK;
}

int kv_resp_parse(kv_resp_parser *p, char *buf, size_t len)
{
    if (p->mode == M_ERROR) return KV_RESP_ERR;
    if (p->mode == M_PENDING) release_pending(p);

    for (;;) {
        if (p->mode == M_IDLE) {
            if (p->pos >= len) return KV_RESP_NEED_MORE;
            if (buf[p->pos] != '*') {
                int rc = parse_inline(p, buf, len);
                if (rc == CONTINUE) continue;
                return rc;
            }
            size_t cr = find_cr(p, buf, len);
            if (cr == (size_t)-1) {
                if (len - p->pos > KV_RESP_INLINE_MAX)
                    return fail(p, "Protocol error: too big mbulk count string");
                return KV_RESP_NEED_MORE;
            }
            if (cr + 1 >= len) return KV_RESP_NEED_MORE; /* byte after '\r' */
            long long ll;
            if (!str2ll(buf + p->pos + 1, cr - p->pos - 1, &ll) || ll > INT_MAX)
                return fail(p, "Protocol error: invalid multibulk length");
            if (ll > KV_RESP_UNAUTH_MAX_ARGC && p->unauth)
                return fail(p, "Protocol error: unauthenticated multibulk length");
            p->pos = p->scan = cr + 2;
            if (ll <= 0) { /* "*0" and "*-N": ignored */
                p->cmd_start = p->pos;
                continue;
            }
            p->mbleft = ll;
            p->bulklen = -1;
            p->argc = 0;
            p->mode = M_MULTIBULK;
        }

        while (p->mbleft > 0) {
            if (p->bulklen < 0) {
                size_t cr = find_cr(p, buf, len);
                if (cr == (size_t)-1) {
                    if (len - p->pos > KV_RESP_INLINE_MAX)
                        return fail(p, "Protocol error: too big bulk count string");
                    return KV_RESP_NEED_MORE;
                }
                if (cr + 1 >= len) return KV_RESP_NEED_MORE;
                if (buf[p->pos] != '$') {
                    /* Redis formats with %c and maps CR/LF to spaces */
                    char c = buf[p->pos];
                    if (c == '\r' || c == '\n') c = ' ';
                    snprintf(p->errbuf, sizeof p->errbuf,
                             "Protocol error: expected '$', got '%c'", c);
                    return fail(p, p->errbuf);
                }
                long long ll;
                if (!str2ll(buf + p->pos + 1, cr - p->pos - 1, &ll) || ll < 0 ||
                    ll > p->max_bulk_len)
                    return fail(p, "Protocol error: invalid bulk length");
                if (ll > KV_RESP_UNAUTH_MAX_BULK && p->unauth)
                    return fail(p, "Protocol error: unauthenticated bulk length");
                p->pos = p->scan = cr + 2;
                p->bulklen = ll;
            }
            /* O(1) per call while a large payload trickles in */
            if (len - p->pos < (size_t)p->bulklen + 2) return KV_RESP_NEED_MORE;
            ensure_cap(p, p->argc + 1);
            p->off[p->argc] = p->pos - p->cmd_start;
            p->argv[p->argc].len = (size_t)p->bulklen;
            p->argc++;
            /* the 2 bytes after the payload are skipped unchecked, as Redis */
            p->pos = p->scan = p->pos + (size_t)p->bulklen + 2;
            p->bulklen = -1;
            p->mbleft--;
        }
        /* Complete: only now turn offsets into pointers, because the buffer
         * may have moved while the request was arriving. */
        for (int i = 0; i < p->argc; i++) p->argv[i].ptr = buf + p->cmd_start + p->off[i];
        p->mode = M_PENDING;
        return KV_RESP_OK;
    }
}

size_t kv_resp_consumed(const kv_resp_parser *p)
{
    return p->mode == M_PENDING ? p->pos : p->cmd_start;
}

void kv_resp_discard(kv_resp_parser *p, size_t n)
{
    if (p->mode == M_PENDING) release_pending(p);
    assert(n <= p->cmd_start); /* cutting into a request corrupts it */
    p->cmd_start -= n;
    p->pos -= n;
    p->scan -= n;
}

size_t kv_resp_want(const kv_resp_parser *p, size_t len)
{
    if (p->mode != M_MULTIBULK || p->bulklen < 0) return 0;
    size_t need = p->pos + (size_t)p->bulklen + 2;
    return need > len ? need - len : 0;
}

size_t kv_resp_argv_size(int argc, const kv_resp_arg *argv)
{
    size_t n = sizeof(kv_resp_arg) * (size_t) argc;
    for (int i = 0; i < argc; i++) n += argv[i].len;
    return n;
}

kv_resp_arg *kv_resp_argv_copy(void *mem, int argc, const kv_resp_arg *argv)
{
    kv_resp_arg *a = mem;
    char *p = (char *) (a + argc);
    for (int i = 0; i < argc; i++) {
        if (argv[i].len) memcpy(p, argv[i].ptr, argv[i].len);
        a[i] = (kv_resp_arg) { p, argv[i].len };
        p += argv[i].len;
    }
    return a;
}
