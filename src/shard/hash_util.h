/* Helpers shared by the collection commands (HSCAN, SSCAN; HRANDFIELD,
 * SRANDMEMBER, SPOP): the *SCAN argument parsing of Redis's
 * scanGenericCommand and a cheap per-thread random generator. ZSCAN can
 * use the same parser. Header-only. */
#ifndef KV_SHARD_HASH_UTIL_H
#define KV_SHARD_HASH_UTIL_H

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shard/t_util.h"

/* xorshift64*: random picks need speed, not cryptography. Seeded lazily
 * per thread from the clock and the address of the state. */
static inline uint64_t kv_coll_rand(void)
{
    static __thread uint64_t s;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&s;
        if (!s) s = 0x9E3779B97F4A7C15ULL;
    }
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return s * 2685821657736338717ULL;
}
/* Uniform in [0, n) (n > 0); the modulo bias is negligible for n << 2^64. */
static inline uint64_t kv_coll_rand_n(uint64_t n) { return kv_coll_rand() % n; }

/* Parsed options of HSCAN/SSCAN/ZSCAN key cursor [MATCH p] [COUNT n]. */
typedef struct kv_coll_scan {
    unsigned long cursor;
    long long count;        /* 10 unless given */
    const kv_resp_arg *pat; /* NULL: no MATCH, or MATCH "*" */
} kv_coll_scan;

/* Redis's parseScanCursorOrReply: strtoul, so "", "-1" and "+5" pass. */
static inline int kv_coll_scan_cursor(kv_client_t *c, const kv_resp_arg *a, unsigned long *cur)
{
    char buf[64], *end;
    size_t n = (size_t)kv_arg_cstrlen(a);
    if (n >= sizeof buf) {
        kv_reply_error_cstr(&c->out, "invalid cursor");
        return 0;
    }
    memcpy(buf, a->ptr, n);
    buf[n] = '\0';
    errno = 0;
    *cur = strtoul(buf, &end, 10);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || errno == ERANGE) {
        kv_reply_error_cstr(&c->out, "invalid cursor");
        return 0;
    }
    return 1;
}

/* The options from argv[first] on (scanGenericCommand). Replies the
 * error and returns 0 on a bad one. */
static inline int kv_coll_scan_opts(kv_client_t *c, int first, kv_coll_scan *s)
{
    s->count = 10;
    s->pat = NULL;
    for (int i = first; i < c->argc; i += 2) {
        int left = c->argc - i;
        if (kv_arg_is(&c->argv[i], "count") && left >= 2) {
            if (!kv_arg_ll(c, i + 1, &s->count)) return 0;
            if (s->count < 1) {
                kv_reply_syntax(c);
                return 0;
            }
        } else if (kv_arg_is(&c->argv[i], "match") && left >= 2) {
            const kv_resp_arg *p = &c->argv[i + 1];
            s->pat = (p->len == 1 && p->ptr[0] == '*') ? NULL : p;
        } else {
            kv_reply_syntax(c);
            return 0;
        }
    }
    return 1;
}

/* The reply of a scan over a missing key. */
static inline void kv_coll_scan_empty(kv_client_t *c)
{
    kv_reply_array(&c->out, 2);
    kv_reply_bulk(&c->out, "0", 1);
    kv_reply_array(&c->out, 0);
}

/* Redis's getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX): the count
 * of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER. */
static inline int kv_coll_rand_count(kv_client_t *c, int i, long long *v)
{
    if (!kv_arg_ll(c, i, v)) return 0;
    if (*v < -INT64_MAX) {
        kv_reply_error_cstr(&c->out, "value is out of range, value must between "
                                     "-9223372036854775807 and 9223372036854775807");
        return 0;
    }
    return 1;
}

#endif
