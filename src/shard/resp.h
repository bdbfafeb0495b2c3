/* RESP2 request parser: incremental, zero-copy, byte-compatible with the
 * request side of Redis 7.0 (processMultibulkBuffer / processInlineBuffer).
 *
 * The parser never owns the query buffer. The connection keeps one growable
 * buffer `buf[0..len)` and calls kv_resp_parse() after each read; positions
 * are kept as offsets, so the caller may realloc or compact the buffer
 * between calls (see kv_resp_consumed / kv_resp_discard).
 *
 *   kv_resp_parser p;  kv_resp_init(&p);
 *   on read:
 *     while ((rc = kv_resp_parse(&p, buf, len)) == KV_RESP_OK)
 *         execute(p.argc, p.argv);           // slices point into buf
 *     if (rc == KV_RESP_ERR) { reply "-ERR " p.err; close after flush; }
 *     n = kv_resp_consumed(&p);              // fully parsed bytes
 *     memmove(buf, buf + n, len - n); len -= n; kv_resp_discard(&p, n);
 *     want = kv_resp_want(&p);               // size the next read
 *
 * Compatibility notes (verified against redis-server 7.0.15 on a socket):
 *  - A request starting with '*' is multibulk, anything else is inline.
 *  - "*0", "*-N" (any negative that parses), empty or blank inline lines
 *    are ignored silently; the next request follows.
 *  - Like Redis, the two bytes after a bulk payload and after the '\r' of a
 *    count line are skipped unchecked ("$4\r\nPINGxx" is PING).
 *  - Like Redis (which uses strchr), a NUL byte stops the search for a
 *    line terminator: such a request waits for more input until the
 *    64 KiB "too big" limit fires.
 *  - Inline lines end at '\n'; one '\r' before it is dropped. Arguments
 *    are split as sdssplitargs does (quotes, \xHH escapes, ...). Unquoting
 *    rewrites the line in place inside buf (never longer than the source),
 *    so the buffer must be writable and inline argv still needs no copy.
 */
#ifndef KV_SHARD_RESP_H
#define KV_SHARD_RESP_H

#include <stddef.h>
#include <stdint.h>

#define KV_RESP_OK 0         /* a command is in argc/argv */
#define KV_RESP_NEED_MORE 1  /* buffer holds no complete command */
#define KV_RESP_ERR 2        /* protocol error: p->err; close the client */

/* Redis's PROTO_INLINE_MAX_SIZE: the longest unterminated inline request or
 * count line (`*N` / `$N`) kept waiting before it is a protocol error. */
#define KV_RESP_INLINE_MAX (64 * 1024)
#define KV_RESP_DEFAULT_MAX_BULK (512LL * 1024 * 1024)
/* Redis's limits while authentication is required but not yet done. */
#define KV_RESP_UNAUTH_MAX_ARGC 10
#define KV_RESP_UNAUTH_MAX_BULK 16384

typedef struct kv_resp_arg {
    const char *ptr; /* into the caller's buffer; not NUL-terminated */
    size_t len;
} kv_resp_arg;

typedef struct kv_resp_parser {
    /* Limits; set any time, checked when the next count line is read. */
    long long max_bulk_len; /* proto_max_bulk_len; default 512 MB */
    int unauth;             /* 1: apply Redis's unauthenticated limits */

    /* Result, valid after KV_RESP_OK until the next parse/discard call or
     * until the buffer is modified. argv is owned by the parser. */
    int argc;
    kv_resp_arg *argv;
    const char *err; /* after KV_RESP_ERR: text without "-ERR " / CRLF */

    /* Private state. */
    size_t cmd_start; /* offset of the request being parsed */
    size_t pos;       /* parse position */
    size_t scan;      /* terminator search resumes here */
    long long bulklen;/* -1: waiting for a `$N` line */
    long long mbleft; /* bulks still expected in this multibulk */
    size_t *off;      /* per-arg offset from cmd_start while incomplete */
    int cap;          /* capacity of argv/off */
    uint8_t mode;     /* 0 idle, 1 multibulk, 2 pending (returned), 3 error */
    char errbuf[48];
} kv_resp_parser;

/* Zero the parser and set defaults. Allocates nothing until needed. */
void kv_resp_init(kv_resp_parser *p);
/* Free the argv arrays. The parser may be re-initialised afterwards. */
void kv_resp_free(kv_resp_parser *p);
/* Forget any partial request (e.g. the buffer was dropped); keeps limits
 * and allocations. */
void kv_resp_reset(kv_resp_parser *p);

/* Parse the next request from buf[0..len). buf must start with the bytes
 * previously passed (minus any discarded prefix); new bytes may be
 * appended between calls. Each call first releases the previously
 * returned command. Returns KV_RESP_OK / NEED_MORE / ERR; once ERR is
 * returned it keeps returning ERR until kv_resp_reset(). */
int kv_resp_parse(kv_resp_parser *p, char *buf, size_t len);

/* Bytes at the front of the buffer that belong to requests already
 * returned (including the last one) or ignored: they may be dropped. */
size_t kv_resp_consumed(const kv_resp_parser *p);

/* Keeping a command past its buffer: kv_resp_argv_size() bytes hold its
 * argv array then its argument bytes; kv_resp_argv_copy() writes them at
 * mem and returns the array (pointing into mem). */
size_t       kv_resp_argv_size(int argc, const kv_resp_arg *argv);
kv_resp_arg *kv_resp_argv_copy(void *mem, int argc, const kv_resp_arg *argv);

/* The caller removed n <= kv_resp_consumed() bytes from the front of the
 * buffer. Invalidates argv of a returned command. */
void kv_resp_discard(kv_resp_parser *p, size_t n);

/* Bytes still missing past the end of the buffer for the bulk argument
 * being read (payload + CRLF), or 0 when unknown. A connection uses it to
 * grow its buffer once to the exact size for big arguments instead of
 * doubling repeatedly (Redis's PROTO_MBULK_BIG_ARG handling). Needs the
 * current buffer length. */
size_t kv_resp_want(const kv_resp_parser *p, size_t len);

#endif
