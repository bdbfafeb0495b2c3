/* RESP2 reply writer and a connection's output buffer.
 *
 * kv_reply_buf is a FIFO chain of blocks (16 KiB each; a single larger
 * block only for a payload that would not fit otherwise). Writers append
 * encoded replies at the tail; the connection hands the queued bytes to
 * writev() via kv_reply_buf_iov() and drops what the kernel took with
 * kv_reply_buf_consume(). kv_reply_buf_len() (queued, unsent bytes) is O(1)
 * so the output-buffer limit can be checked after every reply.
 *
 * Emptied standard blocks go to a small per-thread cache instead of
 * free(), so a request/response loop allocates nothing in steady state and
 * an idle connection holds no block at all.
 *
 * Encodings match Redis 7.0 byte for byte (RESP2):
 *   simple "+s\r\n"   error "-ERR msg\r\n" (or "-CODE msg" when msg starts
 *   with '-')   integer ":n\r\n"   bulk "$len\r\n...\r\n"   null "$-1\r\n"
 *   array "*n\r\n"   null array "*-1\r\n"
 *   double: bulk of "%.17g" (addReplyDouble), "inf"/"-inf"
 *   long double: bulk of ld2string(LD_STR_HUMAN) as INCRBYFLOAT replies.
 * Not thread-safe: one buffer belongs to one thread (its worker loop).
 */
#ifndef KV_SHARD_REPLY_H
#define KV_SHARD_REPLY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define KV_REPLY_BLOCK_BYTES 16384 /* allocation size of a standard block */

typedef struct kv_reply_block {
    struct kv_reply_block *next;
    uint32_t cap;  /* bytes of data[] */
    uint32_t used; /* bytes written to data[] */
    char data[];
} kv_reply_block;

typedef struct kv_reply_buf {
    kv_reply_block *head, *tail;
    size_t sent;  /* bytes of head already handed to the socket */
    size_t bytes; /* queued, unsent bytes over all blocks */
    size_t mem;   /* bytes of blocks currently held (for limits, INFO) */
} kv_reply_buf;

/* Largest n kv_reply_buf_reserve() accepts. */
#define KV_REPLY_RESERVE_MAX (KV_REPLY_BLOCK_BYTES - sizeof(kv_reply_block))

/* ---- buffer ---------------------------------------------------------- */

/* Initialise an empty buffer (allocates nothing). */
void kv_reply_buf_init(kv_reply_buf *b);
/* Release every block (to the cache). The buffer is empty and reusable. */
void kv_reply_buf_free(kv_reply_buf *b);
/* Drop all queued bytes, e.g. on client kill or RESET; same as free. */
static inline void kv_reply_buf_reset(kv_reply_buf *b) { kv_reply_buf_free(b); }
/* Queued, unsent bytes. O(1). */
static inline size_t kv_reply_buf_len(const kv_reply_buf *b) { return b->bytes; }
/* Bytes of blocks held by the buffer (>= len). O(1). */
static inline size_t kv_reply_buf_mem(const kv_reply_buf *b) { return b->mem; }

/* Fill at most max iovecs with the queued bytes, oldest first; returns the
 * count (0 when empty). The iovecs stay valid until the next append or
 * consume. */
int kv_reply_buf_iov(const kv_reply_buf *b, struct iovec *iov, int max);
/* The socket took n bytes (n <= len): drop them. */
void kv_reply_buf_consume(kv_reply_buf *b, size_t n);

/* Contiguous room for n <= KV_REPLY_RESERVE_MAX bytes at the tail; write
 * up to n bytes there and then kv_reply_buf_commit() how many were used. */
char *kv_reply_buf_reserve_slow(kv_reply_buf *b, size_t n);
static inline char *kv_reply_buf_reserve(kv_reply_buf *b, size_t n)
{
    kv_reply_block *t = b->tail;
    if (t && t->cap - t->used >= n) return t->data + t->used;
    return kv_reply_buf_reserve_slow(b, n);
}
static inline void kv_reply_buf_commit(kv_reply_buf *b, size_t n)
{
    b->tail->used += (uint32_t)n;
    b->bytes += n;
}

/* Append n raw bytes (any size). */
void kv_reply_buf_append(kv_reply_buf *b, const void *p, size_t n);

/* Free the calling thread's cache of spare blocks (at shutdown or when
 * memory is tight). */
void kv_reply_cache_trim(void);

/* ---- formatting helpers (no buffer) --------------------------------- */

#define KV_REPLY_LL_MAX 21   /* "-9223372036854775808" + NUL */
#define KV_REPLY_DBL_MAX 32  /* "%.17g" of any double + NUL */
#define KV_REPLY_LD_MAX (5 * 1024) /* Redis MAX_LONG_DOUBLE_CHARS */

/* Decimal of v into buf (>= KV_REPLY_LL_MAX bytes), NUL-terminated;
 * returns the length. */
int kv_reply_fmt_ll(char *buf, long long v);
/* Redis's RESP2 double text: "inf", "-inf", else "%.17g" ("-0" for -0.0,
 * "0.10000000000000001" for 0.1). buf >= KV_REPLY_DBL_MAX. NaN is the
 * caller's bug (Redis never replies one) and prints "nan". */
int kv_reply_fmt_double(char *buf, double d);
/* Redis's ld2string(LD_STR_HUMAN), used by INCRBYFLOAT/HINCRBYFLOAT both
 * for the reply and for the stored value: "%.17Lf" with trailing zeros
 * (and a bare '.') removed, "-0" turned into "0", inf as "inf"/"-inf".
 * Returns the length, or 0 when it does not fit in cap (Redis then fails
 * the command). */
int kv_reply_fmt_ld_human(char *buf, size_t cap, long double v);

/* ---- reply writers --------------------------------------------------- */

void kv_reply_raw(kv_reply_buf *b, const void *p, size_t n); /* verbatim */
void kv_reply_simple(kv_reply_buf *b, const char *s, size_t n); /* +s */
void kv_reply_status(kv_reply_buf *b, const char *cstr);        /* +cstr */
void kv_reply_ok(kv_reply_buf *b);                              /* +OK */
/* Error reply. As Redis's addReplyErrorLength: "-ERR " is prepended
 * unless msg already starts with '-' (then it carries its own code, e.g.
 * "-WRONGTYPE Operation against ..."). msg must hold no CR/LF. */
void kv_reply_error(kv_reply_buf *b, const char *msg, size_t n);
void kv_reply_error_cstr(kv_reply_buf *b, const char *msg);
/* printf-style error; like addReplyErrorFormat, CR/LF at either end are
 * trimmed and inner ones become spaces, so user data cannot break the
 * protocol. */
void kv_reply_errorf(kv_reply_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kv_reply_int(kv_reply_buf *b, long long v);               /* :v */
void kv_reply_bulk(kv_reply_buf *b, const void *p, size_t n);  /* $n */
void kv_reply_bulk_cstr(kv_reply_buf *b, const char *s);
void kv_reply_bulk_ll(kv_reply_buf *b, long long v); /* bulk "123" */
void kv_reply_null(kv_reply_buf *b);                 /* $-1 */
void kv_reply_null_array(kv_reply_buf *b);           /* *-1 */
void kv_reply_array(kv_reply_buf *b, long long n);   /* *n (n >= 0) */
void kv_reply_double(kv_reply_buf *b, double d);     /* bulk, see fmt */
void kv_reply_ld_human(kv_reply_buf *b, long double v);

#endif
