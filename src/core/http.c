/*
 * Strict HTTP/1.x request-head parser, and the bounded string builder the
 * admin endpoint renders its bodies with; see http.h. Lines are checked as
 * soon as they are complete, so garbage is rejected on the first line
 * instead of after the client has filled the buffer.
 */
#include "core/http.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 9110 §5.6.2 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value bytes: VCHAR, SP, HTAB, obs-text. No CTLs, no DEL. */
static int is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int ieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

static int bad(kv_http_req_t *req, const char *why)
{
    req->why = why;
    return KV_HTTP_BAD;
}

static int parse_request_line(const char *s, size_t n, kv_http_req_t *req)
{
    size_t i = 0;

    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i > 16 || i >= n || s[i] != ' ')
        return bad(req, "malformed request line");
    req->method = s;
    req->method_len = i++;

    size_t t0 = i;
    while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        i++;
    if (i == t0 || i >= n || s[i] != ' ')
        return bad(req, "malformed request line");
    if (s[t0] != '/')
        return bad(req, "request target must be a path");
    req->path = s + t0;
    req->path_len = i - t0;
    for (size_t k = 0; k < req->path_len; k++) {
        if (req->path[k] == '?' || req->path[k] == '#') {
            req->path_len = k;
            break;
        }
    }
    i++;

    if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 || (s[i + 7] != '0' && s[i + 7] != '1'))
        return bad(req, "unsupported HTTP version");
    req->minor = s[i + 7] - '0';
    req->keep_alive = req->minor == 1;
    return KV_HTTP_DONE;
}

/* Connection: a comma-separated token list; only close / keep-alive matter. */
static void parse_connection(const char *v, size_t n, kv_http_req_t *req)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t t0 = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (ieq(v + t0, i - t0, "close"))
            req->keep_alive = 0;
        else if (ieq(v + t0, i - t0, "keep-alive"))
            req->keep_alive = 1;
    }
}

/* Content-Length: 1*DIGIT. Anything but zero means a body we refuse. */
static int parse_content_length(const char *v, size_t n, kv_http_req_t *req)
{
    if (n == 0)
        return bad(req, "malformed Content-Length");
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return bad(req, "malformed Content-Length");
        if (v[i] != '0')
            return bad(req, "request body not accepted");
    }
    return KV_HTTP_DONE;
}

static int parse_header(const char *s, size_t n, kv_http_req_t *req, int *hosts)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= n || s[i] != ':')
        return bad(req, s[0] == ' ' || s[0] == '\t' ? "obsolete line folding"
                                                    : "malformed header field");
    size_t name_len = i++;

    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t v0 = i, vend = n;
    while (vend > v0 && (s[vend - 1] == ' ' || s[vend - 1] == '\t'))
        vend--;
    for (size_t k = v0; k < vend; k++)
        if (!is_field_byte((unsigned char)s[k]))
            return bad(req, "control byte in header field");

    const char *v = s + v0;
    size_t vlen = vend - v0;
    if (ieq(s, name_len, "host")) {
        if (++*hosts > 1)
            return bad(req, "repeated Host header");
    } else if (ieq(s, name_len, "content-length")) {
        return parse_content_length(v, vlen, req);
    } else if (ieq(s, name_len, "transfer-encoding")) {
        return bad(req, "request body not accepted");
    } else if (ieq(s, name_len, "connection")) {
        parse_connection(v, vlen, req);
    }
    return KV_HTTP_DONE;
}

int kv_http_parse(const char *buf, size_t len, kv_http_req_t *req)
{
    size_t pos = 0;
    int seen_request_line = 0, hosts = 0;

    memset(req, 0, sizeof(*req));
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (nl == NULL)
            return KV_HTTP_NEED_MORE;
        size_t end = (size_t)(nl - buf), next = end + 1;
        if (end > pos && buf[end - 1] == '\r')
            end--;
        const char *line = buf + pos;
        size_t n = end - pos;
        if (memchr(line, '\r', n) != NULL || memchr(line, '\0', n) != NULL)
            return bad(req, "stray CR or NUL");
        pos = next;

        if (!seen_request_line) {
            if (n == 0) {
                /* tolerate a few blank lines before the request line */
                if (pos > 4)
                    return bad(req, "malformed request line");
                continue;
            }
            if (parse_request_line(line, n, req) != KV_HTTP_DONE)
                return KV_HTTP_BAD;
            seen_request_line = 1;
            continue;
        }
        if (n == 0)
            break;
        if (parse_header(line, n, req, &hosts) != KV_HTTP_DONE)
            return KV_HTTP_BAD;
    }

    if (req->minor == 1 && hosts == 0)
        return bad(req, "missing Host header");
    req->head_len = pos;
    return KV_HTTP_DONE;
}

const char *kv_http_status_text(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default:  return "Unknown";
    }
}

/* ---- response body builder ------------------------------------------- */

static int buf_reserve(kv_http_buf_t *b, size_t more)
{
    if (b->oom)
        return -1;
    if (more >= KV_HTTP_BODY_MAX - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = cap <= KV_HTTP_BODY_MAX ? realloc(b->p, cap) : NULL;
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void kv_http_buf_put(kv_http_buf_t *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

void kv_http_buf_puts(kv_http_buf_t *b, const char *s) { kv_http_buf_put(b, s, strlen(s)); }

void kv_http_buf_printf(kv_http_buf_t *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0 && buf_reserve(b, (size_t)n) == 0) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

/* Milliseconds as seconds with 3 decimals, without floating point or the
 * locale's decimal separator. */
void kv_http_buf_secs(kv_http_buf_t *b, uint64_t ms)
{
    kv_http_buf_printf(b, "%" PRIu64 ".%03u", ms / 1000, (unsigned)(ms % 1000));
}

/* Length of the valid UTF-8 sequence at p, 0 if invalid. p is NUL-ended. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c >= 0xc2 && c <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A JSON string (or null). Invalid UTF-8 becomes U+FFFD so the document
 * is valid whatever bytes the master handed us. */
void kv_http_buf_json_str(kv_http_buf_t *b, const char *s)
{
    if (s == NULL) {
        kv_http_buf_puts(b, "null");
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    kv_http_buf_put(b, "\"", 1);
    while (*p) {
        size_t n;
        if (*p == '"' || *p == '\\') {
            kv_http_buf_put(b, "\\", 1);
            kv_http_buf_put(b, (const char *)p++, 1);
        } else if (*p < 0x20) {
            kv_http_buf_printf(b, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            kv_http_buf_put(b, (const char *)p++, 1);
        } else if ((n = utf8_len(p)) != 0) {
            kv_http_buf_put(b, (const char *)p, n);
            p += n;
        } else {
            kv_http_buf_puts(b, "\\ufffd");
            p++;
        }
    }
    kv_http_buf_put(b, "\"", 1);
}

/* A Prometheus label value: escape \ " and newline; drop other control
 * bytes; invalid UTF-8 becomes '?'. */
void kv_http_buf_label(kv_http_buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n;
        if (*p == '\\' || *p == '"') {
            kv_http_buf_put(b, "\\", 1);
            kv_http_buf_put(b, (const char *)p++, 1);
        } else if (*p == '\n') {
            kv_http_buf_puts(b, "\\n");
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            p++;
        } else if (*p < 0x80) {
            kv_http_buf_put(b, (const char *)p++, 1);
        } else if ((n = utf8_len(p)) != 0) {
            kv_http_buf_put(b, (const char *)p, n);
            p += n;
        } else {
            kv_http_buf_put(b, "?", 1);
            p++;
        }
    }
}
