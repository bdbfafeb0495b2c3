/*
 * A strict, bounded parser for the head of an HTTP/1.x request, just enough
 * for the admin endpoint. It never allocates and never reads past `len`; the
 * caller owns the buffer and caps its size (KV_HTTP_HEAD_MAX), so a client
 * can make it do at most O(cap) work per call.
 *
 * Accepted: request-line `METHOD SP /target SP HTTP/1.0|HTTP/1.1`, header
 * fields `name: value`, CRLF (or a bare LF, RFC 9112 §2.2) line ends, blank
 * lines before the request-line (ignored, RFC 9112 §2.2). Rejected as
 * malformed: anything else, including obs-fold, whitespace before the colon,
 * control bytes, a missing or repeated Host on HTTP/1.1, and any request
 * that announces a body (Content-Length > 0, Transfer-Encoding) — the admin
 * endpoint has no use for a body and refusing it keeps framing trivial.
 */
#ifndef KV_CORE_HTTP_H
#define KV_CORE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define KV_HTTP_HEAD_MAX 8192

enum {
    KV_HTTP_BAD = -1,      /* malformed; req->why says why               */
    KV_HTTP_NEED_MORE = 0, /* no blank line yet: read more (or give up)  */
    KV_HTTP_DONE = 1       /* a complete, valid head                     */
};

typedef struct {
    const char *method;    /* points into the caller's buffer           */
    size_t method_len;
    const char *path;      /* target without its ?query or #fragment     */
    size_t path_len;
    int minor;             /* HTTP/1.<minor>: 0 or 1                     */
    int keep_alive;        /* what the client asked for (version + Connection) */
    size_t head_len;       /* bytes up to and including the blank line   */
    const char *why;       /* static text when KV_HTTP_BAD               */
} kv_http_req_t;

/* Parse buf[0..len). Re-parses from the start on each call: with an 8 KiB
 * cap that is cheaper than keeping parser state across reads. */
int kv_http_parse(const char *buf, size_t len, kv_http_req_t *req);

/* The reason phrase for the status codes the admin endpoint sends. */
const char *kv_http_status_text(int code);

/* ---- response body builder ------------------------------------------- */

/* A growable string capped at KV_HTTP_BODY_MAX. Zero-initialise it; after
 * a failed allocation (or hitting the cap) `oom` is set and further appends
 * are ignored, so callers check once at the end. The caller free()s p. */
#define KV_HTTP_BODY_MAX (4u << 20)

typedef struct {
    char *p;        /* NUL-terminated when non-NULL */
    size_t len, cap;
    int oom;
} kv_http_buf_t;

void kv_http_buf_put(kv_http_buf_t *b, const char *s, size_t n);
void kv_http_buf_puts(kv_http_buf_t *b, const char *s);
__attribute__((format(printf, 2, 3)))
void kv_http_buf_printf(kv_http_buf_t *b, const char *fmt, ...);
/* Milliseconds as seconds with three decimals ("12.034"), computed in
 * integers so neither rounding nor the locale's decimal point interferes. */
void kv_http_buf_secs(kv_http_buf_t *b, uint64_t ms);
/* A JSON string literal, or null for NULL. Control bytes are \u-escaped
 * and invalid UTF-8 becomes U+FFFD, so the output is always valid JSON. */
void kv_http_buf_json_str(kv_http_buf_t *b, const char *s);
/* A Prometheus label value (without the quotes): \ " and newline escaped,
 * other control bytes dropped, invalid UTF-8 replaced by '?'. */
void kv_http_buf_label(kv_http_buf_t *b, const char *s);

#endif
