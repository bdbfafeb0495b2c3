/*
 * SCAN across shards (see chain.c for the chain machinery).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "persist/rdbobj.h"
#include "shard/chain_int.h"
#include "shard/db.h"
#include "shard/route.h"

/*
 *
 * The client's cursor carries the shard in its top 16 bits and that
 * shard's own cursor in the low 48, so shard 0's cursors look like Redis's.
 * When a shard's iteration ends and fewer than COUNT keys were found, the
 * same call goes on with the next shard; a small keyspace is returned
 * whole with cursor 0, as Redis does. Each shard keeps Redis's guarantee
 * (every key present throughout is returned), so the whole scan does.
 */
#define SCAN_LOCAL_BITS 48
#define SCAN_LOCAL_MASK ((1ULL << SCAN_LOCAL_BITS) - 1)

static int scan_round(kv_slot_t *s, chain_t *ch, unsigned long long local)
{
    char cur[24];
    snprintf(cur, sizeof(cur), "%llu", local);
    kv_resp_arg *argv = malloc(sizeof(*argv) * (size_t) ch->argc);
    if (!argv) abort();
    memcpy(argv, ch->argv, sizeof(*argv) * (size_t) ch->argc);
    argv[1] = arg(cur);
    round_begin(s, 1);
    kv_fwd_part(s, 0, ch->shard, cmd_named("scan"), ch->argc, argv);
    free(argv);
    return 1;
}

int kv_chain_scan_step(kv_slot_t *s, chain_t *ch, char **flat, size_t *len)
{
    if (ch->step++ == 0) return scan_round(s, ch, strtoull(ch->argv[1].ptr, NULL, 10) & SCAN_LOCAL_MASK);
    const char *r = flat[0], *end = flat[0] + len[0];
    if (!len[0] || r[0] != '*') {       /* an error (syntax, ...) */
        kv_reply_raw(&s->out, r, len[0]);
        return 0;
    }
    /* "*2\r\n$N\r\n<cursor>\r\n*M\r\n<M bulks>" */
    const char *p = strchr(r, '\n') + 1;               /* $N      */
    p = strchr(p, '\n') + 1;                           /* cursor  */
    unsigned long long next = strtoull(p, NULL, 10);
    p = strchr(p, '\n') + 1;                           /* *M      */
    ch->nkeys += strtoll(p + 1, NULL, 10);
    p = strchr(p, '\n') + 1;
    kv_reply_raw(&ch->keys, p, (size_t) (end - p));
    int n = kv_route_nshards();
    if (next == 0 && ch->shard + 1 < n && ch->nkeys < ch->count) {
        ch->shard++;
        return scan_round(s, ch, 0);
    }
    unsigned long long cursor;
    if (next != 0) cursor = ((unsigned long long) ch->shard << SCAN_LOCAL_BITS) | next;
    else cursor = ch->shard + 1 < n ? (unsigned long long) (ch->shard + 1) << SCAN_LOCAL_BITS : 0;
    char buf[24];
    int bl = snprintf(buf, sizeof(buf), "%llu", cursor);
    kv_reply_array(&s->out, 2);
    kv_reply_bulk(&s->out, buf, (size_t) bl);
    kv_reply_array(&s->out, ch->nkeys);
    struct iovec iov[64];
    int k;
    while ((k = kv_reply_buf_iov(&ch->keys, iov, 64)) > 0) {
        size_t got = 0;
        for (int i = 0; i < k; i++) kv_reply_raw(&s->out, iov[i].iov_base, iov[i].iov_len), got += iov[i].iov_len;
        kv_reply_buf_consume(&ch->keys, got);
    }
    return 0;
}

/* SCAN's cursor as Redis reads it (strtoul): an optional sign, digits,
 * no blanks, no overflow; "-1" is 2^64-1. */
static int parse_cursor(const kv_resp_arg *a, unsigned long long *out)
{
    size_t i = 0;
    int neg = 0;
    if (a->len > 0 && (a->ptr[0] == '-' || a->ptr[0] == '+')) neg = a->ptr[0] == '-', i = 1;
    if (a->len == i || a->len - i > 20) return -1;
    unsigned long long v = 0;
    for (; i < a->len; i++) {
        if (a->ptr[i] < '0' || a->ptr[i] > '9') return -1;
        unsigned d = (unsigned) (a->ptr[i] - '0');
        if (v > (~0ULL - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = neg ? (unsigned long long) -v : v;
    return 0;
}

int kv_chain_scan_route(kv_client_t *c)
{
    unsigned long long cur;
    if (parse_cursor(&c->argv[1], &cur) != 0) {
        kv_reply_error_cstr(&c->out, "invalid cursor");
        return KV_CHAIN_TAKEN;
    }
    if ((cur >> SCAN_LOCAL_BITS) >= (unsigned long long) kv_route_nshards()) {
        /* Past the last shard: nothing left, as a cursor past Redis's table. */
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, "0", 1);
        kv_reply_array(&c->out, 0);
        return KV_CHAIN_TAKEN;
    }
    long long count = 10;
    for (int i = 2; i + 1 < c->argc; i++) {
        if (c->argv[i].len == 5 && !strncasecmp(c->argv[i].ptr, "count", 5)) {
            count = strtoll(c->argv[i + 1].ptr, NULL, 10);      /* the shard validates it */
            if (count < 1) count = 1;
            i++;
        }
    }
    chain_t *ch = chain_new(c, CH_SCAN, -1, -1, 0);
    ch->shard = (int) (cur >> SCAN_LOCAL_BITS);
    ch->count = count;
    chain_run(c, ch, 1);
    return KV_CHAIN_TAKEN;
}

