/*
 * The pubsub group: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH,
 * PUBSUB. All are LOCAL in the table: subscriptions belong to the worker
 * holding the client (pubsub.c).
 *
 * PUBLISH, SPUBLISH and PUBSUB's counting subcommands run their part on
 * every worker with the forwarding layer's requests, gathered in one slot
 * of the client's reply FIFO (so the reply keeps its place). A peer gets
 * the request by name, finds the public entry and runs it with a stand-in
 * client (kv_client_is_conn() is 0): it then does only its own worker's
 * part, as CONFIG SET does (cmd_server.h). A part that failed (a worker
 * restarting answers -LOADING) counts as no subscriber there: a PUBLISH
 * does not fail because one worker restarts.
 *
 * Shard channels: SSUBSCRIBE/SUNSUBSCRIBE/SPUBLISH declare their channels
 * as keys (COMMAND, key specs) as Redis does; since a subscriber may sit on
 * any worker, SPUBLISH reaches every worker like PUBLISH, but only shard
 * channel subscribers ("smessage"), never pattern subscribers.
 */
#include <stdlib.h>
#include <string.h>

#include "core/glob.h"
#include "shard/cmd_server.h"
#include "shard/forward.h"
#include "shard/gather.h"
#include "shard/pubsub.h"

static void subscribe_cmd(kv_client_t *c) { kv_pubsub_subscribe(c, 0); }
static void psubscribe_cmd(kv_client_t *c) { kv_pubsub_subscribe(c, 1); }
static void ssubscribe_cmd(kv_client_t *c) { kv_pubsub_subscribe(c, 2); }
static void unsubscribe_cmd(kv_client_t *c) { kv_pubsub_unsubscribe(c, 0); }
static void punsubscribe_cmd(kv_client_t *c) { kv_pubsub_unsubscribe(c, 1); }
static void sunsubscribe_cmd(kv_client_t *c) { kv_pubsub_unsubscribe(c, 2); }

/* ---- running a part on every worker --------------------------------------- */

enum { G_SUM, G_CHANNELS, G_NUMPAT, G_NUMSUB };

typedef struct {
    int kind;
} gdata_t;

/* The parts' replies, flattened; a failed part is an empty one. */
static void parts_flat(kv_slot_t *s, char **flat, size_t *len)
{
    for (int i = 0; i < s->nparts; i++) {
        flat[i] = kv_gather_flatten(&s->parts[i], &len[i]);
        if (len[i] && flat[i][0] == '-') flat[i][0] = '\0', len[i] = 0;
    }
}

/* Walk the elements of a flat array of bulks and integers (our own
 * shards' replies: trusted, bounded by len). */
typedef struct {
    const char *p, *end;
} walk_t;

static int walk_next(walk_t *w, const char **v, long long *n)
{
    if (w->p >= w->end) return 0;
    char t = *w->p;
    const char *crlf = memchr(w->p, '\r', (size_t) (w->end - w->p));
    if (!crlf) return 0;
    long long x = strtoll(w->p + 1, NULL, 10);
    const char *q = crlf + 2;
    if (t == '$') {
        if (x < 0 || q + x + 2 > w->end) return 0;
        *v = q, *n = x;
        w->p = q + x + 2;
        return '$';
    }
    *v = NULL, *n = x;
    w->p = q;
    return t;
}

/* A set of names for the union of the parts (CHANNELS, NUMPAT). */
typedef struct {
    const char **v;
    size_t *l, n, cap;
} names_t;

static void names_add(names_t *s, const char *v, size_t l)
{
    for (size_t i = 0; i < s->n; i++) if (s->l[i] == l && memcmp(s->v[i], v, l) == 0) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        s->l = realloc(s->l, s->cap * sizeof(*s->l));
        if (!s->v || !s->l) abort();
    }
    s->v[s->n] = v, s->l[s->n++] = l;
}

static void combine(kv_slot_t *s)
{
    int n = s->nparts, kind = ((gdata_t *) s->cdata)->kind;
    char *flat[n];
    size_t len[n];
    parts_flat(s, flat, len);
    if (kind == G_SUM) {
        long long sum = 0;
        for (int i = 0; i < n; i++) if (len[i] && flat[i][0] == ':') sum += strtoll(flat[i] + 1, NULL, 10);
        kv_reply_int(&s->out, sum);
    } else if (kind == G_CHANNELS || kind == G_NUMPAT) {
        names_t u = { 0 };
        for (int i = 0; i < n; i++) {
            walk_t w = { flat[i], flat[i] + len[i] };
            const char *v;
            long long l;
            walk_next(&w, &v, &l);                  /* the array header */
            while (walk_next(&w, &v, &l) == '$') names_add(&u, v, (size_t) l);
        }
        if (kind == G_NUMPAT) {
            kv_reply_int(&s->out, (long long) u.n);
        } else {
            kv_reply_array(&s->out, (long long) u.n);
            for (size_t i = 0; i < u.n; i++) kv_reply_bulk(&s->out, u.v[i], u.l[i]);
        }
        free(u.v);
        free(u.l);
    } else {                                        /* NUMSUB: name, count pairs */
        walk_t w[n];
        long long pairs = -1, l;
        const char *v;
        for (int i = 0; i < n; i++) {
            w[i] = (walk_t) { flat[i], flat[i] + len[i] };
            if (walk_next(&w[i], &v, &l) == '*' && pairs < 0) pairs = l / 2;
        }
        if (pairs < 0) pairs = 0;
        kv_reply_array(&s->out, pairs * 2);
        for (long long k = 0; k < pairs; k++) {
            const char *name = NULL;
            long long nl = 0, sum = 0;
            for (int i = 0; i < n; i++) {
                if (walk_next(&w[i], &v, &l) == '$' && !name) name = v, nl = l;
                if (walk_next(&w[i], &v, &l) == ':') sum += l;
            }
            kv_reply_bulk(&s->out, name ? name : "", (size_t) nl);
            kv_reply_int(&s->out, sum);
        }
    }
    for (int i = 0; i < n; i++) free(flat[i]);
}

/* Run c's command on every worker (each does its part), combined as kind. */
static void fan_out(kv_client_t *c, int kind)
{
    int n = kv_fwd_nshards();
    const kv_cmd_t *cmd = kv_cmd_lookup(c->argv[0].ptr, c->argv[0].len);
    gdata_t *g = malloc(sizeof(*g));
    if (!g) abort();
    g->kind = kind;
    kv_slot_t *s = kv_fwd_slot(c, n, combine);
    s->cdata = g;
    s->cmd = cmd;
    for (int sh = 0; sh < n; sh++) kv_fwd_part(s, sh, sh, cmd, c->argc, c->argv);
}

/* A real client's command on a single worker runs as its own part. */
static int part_only(kv_client_t *c) { return !kv_client_is_conn(c) || kv_fwd_nshards() <= 1; }

/* ---- PUBLISH / SPUBLISH -------------------------------------------------------- */

static void publish_cmd(kv_client_t *c)
{
    if (part_only(c))
        kv_reply_int(&c->out, kv_pubsub_deliver(c->argv[1].ptr, c->argv[1].len, c->argv[2].ptr, c->argv[2].len, 0));
    else fan_out(c, G_SUM);
}

static void spublish_cmd(kv_client_t *c)
{
    if (part_only(c))
        kv_reply_int(&c->out, kv_pubsub_deliver(c->argv[1].ptr, c->argv[1].len, c->argv[2].ptr, c->argv[2].len, 1));
    else fan_out(c, G_SUM);
}

/* ---- PUBSUB ------------------------------------------------------------------------- */

typedef struct {
    kv_client_t      *c;
    const kv_resp_arg *pat;
    long long         n;
} list_t;

static void list_one(void *ud, const char *name, size_t len, size_t nsubs)
{
    list_t *l = ud;
    (void) nsubs;
    if (l->pat && !kv_glob_match(l->pat->ptr, l->pat->len, name, len, 0)) return;
    kv_reply_bulk(&l->c->out, name, len);
    l->n++;
}

/* This worker's names of one kind (matching pat when given), as an array. */
static void reply_names(kv_client_t *c, int kind, const kv_resp_arg *pat)
{
    list_t l = { c, pat, 0 };
    /* Count first: the array header precedes the names. */
    kv_reply_buf saved = c->out;
    kv_reply_buf_init(&c->out);
    kv_pubsub_each(kind, list_one, &l);
    kv_reply_buf names = c->out;
    c->out = saved;
    kv_reply_array(&c->out, l.n);
    struct iovec iov[64];
    int k;
    while ((k = kv_reply_buf_iov(&names, iov, 64)) > 0) {
        size_t got = 0;
        for (int i = 0; i < k; i++) kv_reply_raw(&c->out, iov[i].iov_base, iov[i].iov_len), got += iov[i].iov_len;
        kv_reply_buf_consume(&names, got);
    }
    kv_reply_buf_free(&names);
}

static void reply_numsub(kv_client_t *c, int kind)
{
    kv_reply_array(&c->out, (long long) (c->argc - 2) * 2);
    for (int j = 2; j < c->argc; j++) {
        kv_reply_bulk(&c->out, c->argv[j].ptr, c->argv[j].len);
        kv_reply_int(&c->out, (long long) kv_pubsub_numsub(kind, c->argv[j].ptr, c->argv[j].len));
    }
}

static const kv_subcmd_t subs[] = {
    { "channels", -2 }, { "help", 2 }, { "numpat", 2 }, { "numsub", -2 }, { "shardchannels", -2 },
    { "shardnumsub", -2 }, { NULL, 0 },
};

static const char *const help[] = {
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    NULL,
};

static void pubsub_cmd(kv_client_t *c)
{
    const kv_subcmd_t *sub = kv_srv_subcmd(c, "pubsub", subs);
    if (!sub) return;
    const char *n = sub->name;
    if (!strcmp(n, "help")) {
        kv_srv_reply_help(c, "PUBSUB", help);
        return;
    }
    if ((!strcmp(n, "channels") || !strcmp(n, "shardchannels")) && c->argc > 3) {
        kv_reply_errorf(&c->out, "unknown subcommand or wrong number of arguments for '%.*s'. Try PUBSUB HELP.",
                        (int) c->argv[1].len, c->argv[1].ptr);
        return;
    }
    int shard = n[0] == 's';
    if (!strcmp(n, "channels") || !strcmp(n, "shardchannels")) {
        if (part_only(c)) reply_names(c, shard ? 2 : 0, c->argc == 3 ? &c->argv[2] : NULL);
        else fan_out(c, G_CHANNELS);
    } else if (!strcmp(n, "numpat")) {
        /* Patterns with a subscriber anywhere: each worker lists its own. */
        if (!kv_client_is_conn(c)) reply_names(c, 1, NULL);
        else if (kv_fwd_nshards() <= 1) kv_reply_int(&c->out, (long long) kv_pubsub_npatterns());
        else fan_out(c, G_NUMPAT);
    } else {
        if (part_only(c)) reply_numsub(c, shard ? 2 : 0);
        else fan_out(c, G_NUMSUB);
    }
}

#define PS_FLAGS (KV_CMD_PUBSUB | KV_CMD_NOSCRIPT | KV_CMD_LOADING | KV_CMD_STALE)
#define PUB_FLAGS (KV_CMD_PUBSUB | KV_CMD_LOADING | KV_CMD_STALE | KV_CMD_FAST)

const kv_cmd_t kv_pubsub_cmds[] = {
    { "psubscribe", -2, PS_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, psubscribe_cmd, "pubsub", "2.0.0",
      "Listen for messages published to channels matching the given patterns" },
    { "publish", 3, PUB_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, publish_cmd, "pubsub", "2.0.0",
      "Post a message to a channel" },
    { "pubsub", -2, KV_CMD_PUBSUB | KV_CMD_LOADING | KV_CMD_STALE, 0, 0, 0, KV_ROUTE_LOCAL, pubsub_cmd, "pubsub",
      "2.8.0", "A container for Pub/Sub commands" },
    { "punsubscribe", -1, PS_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, punsubscribe_cmd, "pubsub", "2.0.0",
      "Stop listening for messages posted to channels matching the given patterns" },
    { "spublish", 3, PUB_FLAGS, 1, 1, 1, KV_ROUTE_LOCAL, spublish_cmd, "pubsub", "7.0.0",
      "Post a message to a shard channel" },
    { "ssubscribe", -2, PS_FLAGS, 1, -1, 1, KV_ROUTE_LOCAL, ssubscribe_cmd, "pubsub", "7.0.0",
      "Listen for messages published to the given shard channels" },
    { "subscribe", -2, PS_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, subscribe_cmd, "pubsub", "2.0.0",
      "Listen for messages published to the given channels" },
    { "sunsubscribe", -1, PS_FLAGS, 1, -1, 1, KV_ROUTE_LOCAL, sunsubscribe_cmd, "pubsub", "7.0.0",
      "Stop listening for messages posted to the given shard channels" },
    { "unsubscribe", -1, PS_FLAGS, 0, 0, 0, KV_ROUTE_LOCAL, unsubscribe_cmd, "pubsub", "2.0.0",
      "Stop listening for messages posted to the given channels" },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
