#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shard/chain.h"
#include "shard/gather.h"
#include "shard/route.h"

static int last_key(const kv_cmd_t *cmd, int argc)
{
    return cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
}

/* A numkeys argument: 1..max, or -1. */
static int numkeys_at(kv_client_t *c, int i, int max)
{
    if (i >= c->argc || c->argv[i].len == 0 || c->argv[i].len > 10) return -1;
    long long n = 0;
    for (size_t j = 0; j < c->argv[i].len; j++) {
        char ch = c->argv[i].ptr[j];
        if (ch < '0' || ch > '9') return -1;
        n = n * 10 + (ch - '0');
    }
    return n >= 1 && n <= max ? (int) n : -1;
}

static int add_range(int *idx, int n, int from, int count)
{
    for (int k = 0; k < count; k++) idx[n++] = from + k;
    return n;
}

/*
 * The argument positions of every key of the command (Redis's key specs,
 * including the "movablekeys" forms the table's first/last/step cannot
 * say: numkeys, STREAMS). idx must hold argc entries. Returns the count,
 * or -1 when the arguments are malformed (the handler will say so).
 */
int kv_gather_keys(kv_client_t *c, const kv_cmd_t *cmd, int *idx)
{
    const char *name = cmd->name;
    int argc = c->argc, n = 0, nk;
    if (!strcmp(name, "zunion") || !strcmp(name, "zinter") || !strcmp(name, "zdiff")
        || !strcmp(name, "zintercard") || !strcmp(name, "sintercard")
        || !strcmp(name, "lmpop") || !strcmp(name, "zmpop")) {
        if ((nk = numkeys_at(c, 1, argc - 2)) < 0) return -1;
        return add_range(idx, 0, 2, nk);
    }
    if (!strcmp(name, "zunionstore") || !strcmp(name, "zinterstore") || !strcmp(name, "zdiffstore")) {
        if ((nk = numkeys_at(c, 2, argc - 3)) < 0) return -1;
        idx[n++] = 1;
        return add_range(idx, n, 3, nk);
    }
    if (!strcmp(name, "blmpop") || !strcmp(name, "bzmpop")) {
        if ((nk = numkeys_at(c, 2, argc - 3)) < 0) return -1;
        return add_range(idx, 0, 3, nk);
    }
    if (!strcmp(name, "xread") || !strcmp(name, "xreadgroup")) {
        for (int i = 1; i < argc; i++) {
            if (c->argv[i].len == 7 && !strncasecmp(c->argv[i].ptr, "streams", 7)) {
                int rest = argc - i - 1;
                if (rest <= 0 || rest % 2) return -1;
                return add_range(idx, 0, i + 1, rest / 2);
            }
        }
        return -1;
    }
    if (cmd->first_key <= 0) return 0;
    int last = last_key(cmd, argc), step = cmd->key_step > 0 ? cmd->key_step : 1;
    /* Keys and values that do not pair up (MSET a b c): the handler
     * replies the error, and splitting would read past the arguments. */
    if (last >= argc || last < cmd->first_key || (step > 1 && (argc - cmd->first_key) % step != 0))
        return -1;
    for (int i = cmd->first_key; i <= last; i += step) idx[n++] = i;
    if (!strcmp(name, "sort")) {                     /* ... STORE dst */
        for (int i = 2; i + 1 < argc; i++)
            if (c->argv[i].len == 5 && !strncasecmp(c->argv[i].ptr, "store", 5)) idx[n++] = ++i;
    }
    return n;
}

int kv_gather_single_owner(kv_client_t *c, const kv_cmd_t *cmd)
{
    int owner = -1, idx[c->argc + 1];
    int n = kv_gather_keys(c, cmd, idx);
    if (n <= 0) return kv_fwd_self();   /* no keys, or the handler's error */
    for (int k = 0; k < n; k++) {
        int s = kv_route_shard(c->argv[idx[k]].ptr, c->argv[idx[k]].len);
        if (owner >= 0 && s != owner) return -1;
        owner = s;
    }
    return owner;
}

/* ---- reading the parts' replies ------------------------------------------ */

char *kv_gather_flatten(kv_reply_buf *b, size_t *len)
{
    size_t n = kv_reply_buf_len(b), off = 0;
    char *flat = malloc(n + 1);
    struct iovec iov[64];
    int k;
    if (!flat) abort();
    while ((k = kv_reply_buf_iov(b, iov, 64)) > 0) {
        size_t got = 0;
        for (int i = 0; i < k; i++) {
            memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len, got += iov[i].iov_len;
        }
        kv_reply_buf_consume(b, got);
    }
    flat[off] = '\0';
    *len = off;
    return flat;
}

/* End of the RESP element at p (replies come from our own shards: trusted
 * but still bounded by end). */
const char *kv_gather_elem_end(const char *p, const char *end)
{
    if (p >= end) return end;
    const char *crlf = memchr(p, '\r', (size_t) (end - p));
    if (!crlf || crlf + 2 > end) return end;
    long long n = (*p == '$' || *p == '*') ? strtoll(p + 1, NULL, 10) : 0;
    const char *q = crlf + 2;
    if (*p == '$') return n < 0 ? q : (q + n + 2 > end ? end : q + n + 2);
    if (*p == '*') {
        for (long long i = 0; i < n && q < end; i++) q = kv_gather_elem_end(q, end);
        return q;
    }
    return q;
}

/* The first error among the parts, copied to out; 1 if there was one. */
static int first_error(kv_slot_t *s, char **flat, size_t *len)
{
    for (int i = 0; i < s->nparts; i++) {
        if (len[i] > 0 && flat[i][0] == '-') {
            kv_reply_raw(&s->out, flat[i], len[i]);
            return 1;
        }
    }
    return 0;
}

typedef void combine_fn(kv_slot_t *s, char **flat, size_t *len);

static void combine_with(kv_slot_t *s, combine_fn *fn)
{
    char *flat[s->nparts];
    size_t len[s->nparts];
    for (int i = 0; i < s->nparts; i++) flat[i] = kv_gather_flatten(&s->parts[i], &len[i]);
    if (!first_error(s, flat, len)) {
        if (fn) fn(s, flat, len);
        else s->cmd->combine(&s->out, s->nparts, flat, len);
    }
    for (int i = 0; i < s->nparts; i++) free(flat[i]);
}

/* The command's own combiner, from the command table. */
static void combine_cmd(kv_slot_t *s) { combine_with(s, NULL); }

static void sum_fn(kv_slot_t *s, char **flat, size_t *len)
{
    long long sum = 0;
    for (int i = 0; i < s->nparts; i++) if (len[i] && flat[i][0] == ':') sum += strtoll(flat[i] + 1, NULL, 10);
    kv_reply_int(&s->out, sum);
}
static void combine_sum(kv_slot_t *s) { combine_with(s, sum_fn); }

static void ok_fn(kv_slot_t *s, char **flat, size_t *len) { (void) flat, (void) len; kv_reply_ok(&s->out); }
static void combine_ok(kv_slot_t *s) { combine_with(s, ok_fn); }

static void concat_fn(kv_slot_t *s, char **flat, size_t *len)
{
    long long total = 0;
    for (int i = 0; i < s->nparts; i++) if (len[i] && flat[i][0] == '*') total += strtoll(flat[i] + 1, NULL, 10);
    kv_reply_array(&s->out, total);
    for (int i = 0; i < s->nparts; i++) {
        const char *body = memchr(flat[i], '\n', len[i]);
        if (body) kv_reply_raw(&s->out, body + 1, len[i] - (size_t) (body + 1 - flat[i]));
    }
}
static void combine_concat(kv_slot_t *s) { combine_with(s, concat_fn); }

/* RANDOMKEY: one of the shards' non-nil answers, at random. */
static void random_fn(kv_slot_t *s, char **flat, size_t *len)
{
    int pick = -1, seen = 0;
    for (int i = 0; i < s->nparts; i++)
        if (len[i] && strncmp(flat[i], "$-1", 3) != 0 && rand() % ++seen == 0) pick = i;
    if (pick < 0) kv_reply_null(&s->out);
    else kv_reply_raw(&s->out, flat[pick], len[pick]);
}
static void combine_random(kv_slot_t *s) { combine_with(s, random_fn); }

/* MGET: cdata maps key i to (part, index in that part). */
static void mget_fn(kv_slot_t *s, char **flat, size_t *len)
{
    int *map = s->cdata, nkeys = map[0];
    const char **elems[s->nparts];
    for (int i = 0; i < s->nparts; i++) {
        const char *end = flat[i] + len[i], *p = memchr(flat[i], '\n', len[i]);
        long long n = len[i] && flat[i][0] == '*' ? strtoll(flat[i] + 1, NULL, 10) : 0;
        elems[i] = calloc((size_t) n + 1, sizeof(char *));
        if (!elems[i]) abort();
        p = p ? p + 1 : end;
        for (long long j = 0; j <= n; j++) {
            elems[i][j] = p;
            if (j < n) p = kv_gather_elem_end(p, end);
        }
    }
    kv_reply_array(&s->out, nkeys);
    for (int k = 0; k < nkeys; k++) {
        int part = map[1 + 2 * k], idx = map[2 + 2 * k];
        kv_reply_raw(&s->out, elems[part][idx], (size_t) (elems[part][idx + 1] - elems[part][idx]));
    }
    for (int i = 0; i < s->nparts; i++) free(elems[i]);
}
static void combine_mget(kv_slot_t *s) { combine_with(s, mget_fn); }

/* ---- splitting ------------------------------------------------------------------------ */

static kv_gather_fn *combiner_for(const char *name)
{
    if (!strcmp(name, "del") || !strcmp(name, "unlink") || !strcmp(name, "exists") || !strcmp(name, "touch"))
        return combine_sum;
    if (!strcmp(name, "mget")) return combine_mget;
    if (!strcmp(name, "mset")) return combine_ok;
    return NULL;
}

void kv_gather_split(kv_client_t *c, const kv_cmd_t *cmd)
{
    kv_gather_fn *fn = cmd->combine ? combine_cmd : combiner_for(cmd->name);
    int n = kv_route_nshards();
    if (!fn || cmd->first_key != 1) {
        kv_chain_scatter(c, cmd);       /* run it on copies of its keys */
        return;
    }
    int step = cmd->key_step > 0 ? cmd->key_step : 1;
    int last = last_key(cmd, c->argc), ngroups = 0;
    int part_of[KV_SHARDS_MAX], nparts = 0, shard_of_part[KV_SHARDS_MAX], count[KV_SHARDS_MAX];
    for (int i = 0; i < n; i++) part_of[i] = -1, count[i] = 0;
    int *gshard = malloc(sizeof(int) * (size_t) c->argc);
    if (!gshard) abort();
    for (int i = cmd->first_key; i <= last; i += step, ngroups++) {
        int sh = kv_route_shard(c->argv[i].ptr, c->argv[i].len);
        if (part_of[sh] < 0) shard_of_part[nparts] = sh, part_of[sh] = nparts++;
        gshard[ngroups] = sh;
        count[sh]++;
    }
    int *map = NULL;
    if (fn == combine_mget) {
        map = malloc(sizeof(int) * (size_t) (1 + 2 * ngroups));
        if (!map) abort();
        map[0] = ngroups;
    }
    kv_slot_t *s = kv_fwd_slot(c, nparts, fn);
    s->cdata = map;
    s->cmd = cmd;
    kv_resp_arg *argv = malloc(sizeof(*argv) * (size_t) (1 + ngroups * step));
    if (!argv) abort();
    for (int p = 0; p < nparts; p++) {
        int sh = shard_of_part[p], argc = 1, g = 0;
        argv[0] = c->argv[0];
        for (int i = cmd->first_key; i <= last; i += step, g++) {
            if (gshard[g] != sh) continue;
            if (map) map[1 + 2 * g] = p, map[2 + 2 * g] = argc - 1;
            for (int j = 0; j < step; j++) argv[argc++] = c->argv[i + j];
        }
        kv_fwd_part(s, p, sh, cmd, argc, argv);
    }
    free(argv);
    free(gshard);
}

void kv_gather_all(kv_client_t *c, const kv_cmd_t *cmd)
{
    const char *name = cmd->name;
    kv_gather_fn *fn = combine_ok;
    if (!strcmp(name, "dbsize")) fn = combine_sum;
    else if (!strcmp(name, "keys")) fn = combine_concat;
    else if (!strcmp(name, "randomkey")) fn = combine_random;
    if (cmd->combine) fn = combine_cmd;
    int n = kv_route_nshards();
    kv_slot_t *s = kv_fwd_slot(c, n, fn);
    s->cmd = cmd;
    for (int sh = 0; sh < n; sh++) kv_fwd_part(s, sh, sh, cmd, c->argc, c->argv);
}
