/* Output buffer and RESP2 reply encoders. See reply.h. */
#include "shard/reply.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STD_CAP ((uint32_t)(KV_REPLY_BLOCK_BYTES - sizeof(kv_reply_block)))
#define BIG_MAX ((size_t)1 << 30) /* largest single block for huge payloads */
#define CACHE_MAX 64              /* spare standard blocks kept per thread */

/* The first block of an empty buffer, for a small reply, is small: most
 * buffers never hold more than one short reply (a request forwarded to
 * another worker has a buffer of its own until its reply is moved to the
 * client's), and a thousand of those in flight cost 16 KiB each in
 * standard blocks -- more than the cache keeps, so each was a malloc and
 * a page fault. */
#define SMALL_BYTES 512
#define SMALL_CAP ((uint32_t)(SMALL_BYTES - sizeof(kv_reply_block)))
#define SMALL_CACHE_MAX 1024      /* 512 KiB per thread at most */

/* Spare blocks of one size, per thread. */
typedef struct {
    kv_reply_block *head;
    int n, max;
    uint32_t cap;
    size_t bytes;
} block_cache;

static __thread block_cache small_cache = {NULL, 0, SMALL_CACHE_MAX, SMALL_CAP, SMALL_BYTES};
static __thread block_cache std_cache = {NULL, 0, CACHE_MAX, STD_CAP, KV_REPLY_BLOCK_BYTES};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("kevy: out of memory in reply buffer\n", stderr);
        abort();
    }
    return p;
}

static kv_reply_block *cache_take(block_cache *c)
{
    kv_reply_block *k = c->head;
    if (k) c->head = k->next, c->n--;
    else k = xmalloc(c->bytes);
    k->cap = c->cap;
    return k;
}

/* 1 if the cache kept k. */
static int cache_give(block_cache *c, kv_reply_block *k)
{
    if (c->n >= c->max) return 0;
    k->next = c->head;
    c->head = k;
    c->n++;
    return 1;
}

static void cache_free(block_cache *c)
{
    while (c->head) {
        kv_reply_block *k = c->head;
        c->head = k->next;
        free(k);
    }
    c->n = 0;
}

static kv_reply_block *block_new(kv_reply_buf *b, size_t need)
{
    kv_reply_block *k;
    size_t bytes;
    if (!b->head && need <= SMALL_CAP) {
        k = cache_take(&small_cache);
        bytes = SMALL_BYTES;
    } else if (need <= STD_CAP) {
        k = cache_take(&std_cache);
        bytes = KV_REPLY_BLOCK_BYTES;
    } else {
        if (need > BIG_MAX) need = BIG_MAX;
        bytes = sizeof(kv_reply_block) + need;
        k = xmalloc(bytes);
        k->cap = (uint32_t)need;
    }
    k->next = NULL;
    k->used = 0;
    if (b->tail) b->tail->next = k;
    else b->head = k;
    b->tail = k;
    b->mem += bytes;
    return k;
}

static void block_release(kv_reply_buf *b, kv_reply_block *k)
{
    block_cache *c = k->cap == SMALL_CAP ? &small_cache : k->cap == STD_CAP ? &std_cache : NULL;
    b->mem -= c ? c->bytes : sizeof(kv_reply_block) + k->cap;
    if (!c || !cache_give(c, k)) free(k);
}

void kv_reply_cache_trim(void)
{
    cache_free(&std_cache);
    cache_free(&small_cache);
}

void kv_reply_buf_init(kv_reply_buf *b) { memset(b, 0, sizeof *b); }

void kv_reply_buf_free(kv_reply_buf *b)
{
    kv_reply_block *k = b->head;
    while (k) {
        kv_reply_block *n = k->next;
        block_release(b, k);
        k = n;
    }
    b->head = b->tail = NULL;
    b->sent = b->bytes = 0;
}

int kv_reply_buf_iov(const kv_reply_buf *b, struct iovec *iov, int max)
{
    int n = 0;
    size_t skip = b->sent;
    for (kv_reply_block *k = b->head; k && n < max; k = k->next) {
        if (k->used > skip) {
            iov[n].iov_base = k->data + skip;
            iov[n].iov_len = k->used - skip;
            n++;
        }
        skip = 0;
    }
    return n;
}

void kv_reply_buf_consume(kv_reply_buf *b, size_t n)
{
    assert(n <= b->bytes);
    b->bytes -= n;
    while (b->head) {
        kv_reply_block *k = b->head;
        size_t left = k->used - b->sent;
        if (n < left) {
            b->sent += n;
            return;
        }
        n -= left;
        if (k == b->tail && n == 0) {
            /* All sent: give the block back so idle connections hold no
             * memory; the next reply takes one from the cache. */
            b->head = b->tail = NULL;
            b->sent = 0;
            block_release(b, k);
            return;
        }
        b->head = k->next;
        if (!b->head) b->tail = NULL;
        b->sent = 0;
        block_release(b, k);
    }
}

char *kv_reply_buf_reserve_slow(kv_reply_buf *b, size_t n)
{
    assert(n <= KV_REPLY_RESERVE_MAX);
    /* The tail's few unused bytes are wasted; replies this small never
     * straddle blocks, which keeps every encoder a single store sequence. */
    return block_new(b, n)->data;
}

void kv_reply_buf_append(kv_reply_buf *b, const void *p, size_t n)
{
    const char *s = p;
    kv_reply_block *t = b->tail;
    b->bytes += n;
    if (t && t->cap > t->used) {
        size_t room = t->cap - t->used;
        size_t c = n < room ? n : room;
        memcpy(t->data + t->used, s, c);
        t->used += (uint32_t)c;
        s += c;
        n -= c;
    }
    while (n) {
        t = block_new(b, n);
        size_t c = n < t->cap ? n : t->cap;
        memcpy(t->data, s, c);
        t->used = (uint32_t)c;
        s += c;
        n -= c;
    }
}

/* ---- formatting ------------------------------------------------------ */

static const char digits2[201] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static int fmt_ull(char *dst, unsigned long long v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = digits2[i + 1];
        *--p = digits2[i];
    }
    if (v >= 10) {
        unsigned i = (unsigned)v * 2;
        *--p = digits2[i + 1];
        *--p = digits2[i];
    } else {
        *--p = (char)('0' + v);
    }
    int n = (int)(tmp + sizeof tmp - p);
    memcpy(dst, p, (size_t)n);
    return n;
}

static int fmt_ll_nonul(char *dst, long long v)
{
    if (v < 0) {
        *dst = '-';
        return 1 + fmt_ull(dst + 1, 0ULL - (unsigned long long)v);
    }
    return fmt_ull(dst, (unsigned long long)v);
}

int kv_reply_fmt_ll(char *buf, long long v)
{
    int n = fmt_ll_nonul(buf, v);
    buf[n] = '\0';
    return n;
}

int kv_reply_fmt_double(char *buf, double d)
{
    if (isinf(d)) {
        memcpy(buf, d > 0 ? "inf" : "-inf", d > 0 ? 4 : 5);
        return d > 0 ? 3 : 4;
    }
    return snprintf(buf, KV_REPLY_DBL_MAX, "%.17g", d);
}

int kv_reply_fmt_ld_human(char *buf, size_t cap, long double v)
{
    if (cap < 5) return 0;
    if (isinf(v)) {
        memcpy(buf, v > 0 ? "inf" : "-inf", v > 0 ? 4 : 5);
        return v > 0 ? 3 : 4;
    }
    int l = snprintf(buf, cap, "%.17Lf", v);
    if (l < 0 || (size_t)l + 1 > cap) return 0;
    /* %.17Lf always prints a '.', but keep Redis's guard for nan */
    if (memchr(buf, '.', (size_t)l)) {
        while (buf[l - 1] == '0') l--;
        if (buf[l - 1] == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}

/* ---- writers --------------------------------------------------------- */

void kv_reply_raw(kv_reply_buf *b, const void *p, size_t n) { kv_reply_buf_append(b, p, n); }

/* Small prefix + payload + CRLF in one reservation when it fits. */
static void emit3(kv_reply_buf *b, char type, const char *s, size_t n)
{
    if (n <= KV_REPLY_RESERVE_MAX - 3) {
        char *w = kv_reply_buf_reserve(b, n + 3);
        w[0] = type;
        memcpy(w + 1, s, n);
        w[n + 1] = '\r';
        w[n + 2] = '\n';
        kv_reply_buf_commit(b, n + 3);
        return;
    }
    kv_reply_buf_append(b, &type, 1);
    kv_reply_buf_append(b, s, n);
    kv_reply_buf_append(b, "\r\n", 2);
}

void kv_reply_simple(kv_reply_buf *b, const char *s, size_t n) { emit3(b, '+', s, n); }
void kv_reply_status(kv_reply_buf *b, const char *s) { emit3(b, '+', s, strlen(s)); }
void kv_reply_ok(kv_reply_buf *b) { kv_reply_buf_append(b, "+OK\r\n", 5); }

void kv_reply_error(kv_reply_buf *b, const char *msg, size_t n)
{
    if (n && msg[0] == '-') {
        kv_reply_buf_append(b, msg, n);
        kv_reply_buf_append(b, "\r\n", 2);
        return;
    }
    kv_reply_buf_append(b, "-ERR ", 5);
    kv_reply_buf_append(b, msg, n);
    kv_reply_buf_append(b, "\r\n", 2);
}

void kv_reply_error_cstr(kv_reply_buf *b, const char *msg) { kv_reply_error(b, msg, strlen(msg)); }

void kv_reply_errorf(kv_reply_buf *b, const char *fmt, ...)
{
    char stack[512], *s = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof stack) {
        s = xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    size_t lo = 0, hi = (size_t)n;
    while (lo < hi && (s[lo] == '\r' || s[lo] == '\n')) lo++;
    while (hi > lo && (s[hi - 1] == '\r' || s[hi - 1] == '\n')) hi--;
    for (size_t i = lo; i < hi; i++)
        if (s[i] == '\r' || s[i] == '\n') s[i] = ' ';
    kv_reply_error(b, s + lo, hi - lo);
    if (s != stack) free(s);
}

static void emit_num(kv_reply_buf *b, char type, long long v)
{
    char *w = kv_reply_buf_reserve(b, 24);
    w[0] = type;
    int n = 1 + fmt_ll_nonul(w + 1, v);
    w[n] = '\r';
    w[n + 1] = '\n';
    kv_reply_buf_commit(b, (size_t)n + 2);
}

void kv_reply_int(kv_reply_buf *b, long long v) { emit_num(b, ':', v); }
void kv_reply_array(kv_reply_buf *b, long long n) { emit_num(b, '*', n); }
void kv_reply_null(kv_reply_buf *b) { kv_reply_buf_append(b, "$-1\r\n", 5); }
void kv_reply_null_array(kv_reply_buf *b) { kv_reply_buf_append(b, "*-1\r\n", 5); }

void kv_reply_bulk(kv_reply_buf *b, const void *p, size_t n)
{
    if (n <= KV_REPLY_RESERVE_MAX - 26) { /* "$" + 21 digits + 2 CRLF */
        char *w = kv_reply_buf_reserve(b, n + 26);
        w[0] = '$';
        size_t h = 1 + (size_t)fmt_ull(w + 1, n);
        w[h] = '\r';
        w[h + 1] = '\n';
        memcpy(w + h + 2, p, n);
        w[h + 2 + n] = '\r';
        w[h + 3 + n] = '\n';
        kv_reply_buf_commit(b, h + 4 + n);
        return;
    }
    emit_num(b, '$', (long long)n);
    kv_reply_buf_append(b, p, n);
    kv_reply_buf_append(b, "\r\n", 2);
}

void kv_reply_bulk_cstr(kv_reply_buf *b, const char *s) { kv_reply_bulk(b, s, strlen(s)); }

void kv_reply_bulk_ll(kv_reply_buf *b, long long v)
{
    char tmp[KV_REPLY_LL_MAX];
    kv_reply_bulk(b, tmp, (size_t)fmt_ll_nonul(tmp, v));
}

void kv_reply_double(kv_reply_buf *b, double d)
{
    char tmp[KV_REPLY_DBL_MAX];
    kv_reply_bulk(b, tmp, (size_t)kv_reply_fmt_double(tmp, d));
}

void kv_reply_ld_human(kv_reply_buf *b, long double v)
{
    char tmp[KV_REPLY_LD_MAX];
    int n = kv_reply_fmt_ld_human(tmp, sizeof tmp, v);
    /* n == 0 cannot happen for a finite long double (at most ~4950
     * chars); Redis would then reply an empty bulk, and so do we */
    kv_reply_bulk(b, tmp, (size_t)n);
}
