/*
 * Pub/Sub subscriptions of this worker and delivery (see pubsub.h).
 *
 * Three tables map a channel, a pattern or a shard channel to the local
 * clients subscribed to it; each client holds the same three as sets (its
 * own subscriptions). A push goes into the subscriber's output buffer;
 * the subscribers that received something are flushed once per loop turn
 * (a check handle), where the pubsub output buffer limits are enforced: a
 * subscriber that does not read never blocks the worker or a publisher, it
 * is closed once it holds more than the hard limit (or the soft limit for
 * longer than its seconds), as Redis's client-output-buffer-limit pubsub.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "core/glob.h"
#include "core/log.h"
#include "shard/forward.h"
#include "shard/gather.h"
#include "shard/pubsub.h"

typedef struct ent_s {
    struct ent_s *next;
    uint64_t      h;
    kv_client_t **subs;             /* global tables: the subscribers     */
    uint32_t      nsubs, cap;
    size_t        len;
    char          key[];
} ent_t;

typedef struct {
    ent_t **b;
    size_t  nb, n;
} tab_t;

struct kv_pubsub_client {
    tab_t    t[3];                  /* channels, patterns, shard channels */
    int      active;                /* subscribed mode                    */
    int      pending;               /* in the flush list                  */
    uint64_t soft_since;            /* over the soft limit since (ms)     */
};
typedef struct kv_pubsub_client ps_t;

static tab_t G[3];                  /* this worker's subscriptions        */

/* Redis's default: client-output-buffer-limit pubsub 32mb 8mb 60 */
static uint64_t lim_hard = 32u << 20, lim_soft = 8u << 20, lim_secs = 60;

static kv_client_t **pend;          /* subscribers to flush this turn     */
static size_t        npend, pend_cap;
static uv_check_t    flusher;
static int           flusher_init;

/* ---- tables ------------------------------------------------------------ */

static uint64_t hash(const char *k, size_t len) { return XXH3_64bits(k, len); }

static ent_t *tab_find(const tab_t *t, const char *k, size_t len, uint64_t h)
{
    if (!t->nb) return NULL;
    for (ent_t *e = t->b[h & (t->nb - 1)]; e; e = e->next)
        if (e->h == h && e->len == len && memcmp(e->key, k, len) == 0) return e;
    return NULL;
}

static void tab_grow(tab_t *t)
{
    size_t nb = t->nb ? t->nb * 2 : 8;
    ent_t **b = calloc(nb, sizeof(*b));
    if (!b) abort();
    for (size_t i = 0; i < t->nb; i++) {
        for (ent_t *e = t->b[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
        }
    }
    free(t->b);
    t->b = b, t->nb = nb;
}

static ent_t *tab_add(tab_t *t, const char *k, size_t len, uint64_t h)
{
    if (t->n >= t->nb) tab_grow(t);
    ent_t *e = calloc(1, sizeof(*e) + len + 1);
    if (!e) abort();
    e->h = h, e->len = len;
    memcpy(e->key, k, len);
    e->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = e;
    t->n++;
    return e;
}

static void tab_del(tab_t *t, ent_t *e)
{
    ent_t **pp = &t->b[e->h & (t->nb - 1)];
    while (*pp != e) pp = &(*pp)->next;
    *pp = e->next;
    t->n--;
    free(e->subs);
    free(e);
    if (t->n == 0) {                /* an idle worker holds nothing */
        free(t->b);
        t->b = NULL, t->nb = 0;
    }
}

/* ---- subscriptions -------------------------------------------------------- */

static ps_t *ps_of(kv_client_t *c)
{
    if (!c->ps) {
        c->ps = calloc(1, sizeof(ps_t));
        if (!c->ps) abort();
    }
    return c->ps;
}

static int count_of(const ps_t *ps, int kind)
{
    if (!ps) return 0;
    return kind == 2 ? (int) ps->t[2].n : (int) (ps->t[0].n + ps->t[1].n);
}

/* Add c to the global entry of (kind, name). */
static void global_add(int kind, const char *k, size_t len, uint64_t h, kv_client_t *c)
{
    ent_t *g = tab_find(&G[kind], k, len, h);
    if (!g) g = tab_add(&G[kind], k, len, h);
    if (g->nsubs == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 4;
        kv_client_t **s = realloc(g->subs, g->cap * sizeof(*s));
        if (!s) abort();
        g->subs = s;
    }
    g->subs[g->nsubs++] = c;
}

/* Remove c from the global entry of (kind, name), keeping the others'
 * order (they receive in subscription order, as in Redis). */
static void global_del(int kind, const char *k, size_t len, uint64_t h, kv_client_t *c)
{
    ent_t *g = tab_find(&G[kind], k, len, h);
    if (!g) return;
    for (uint32_t i = 0; i < g->nsubs; i++) {
        if (g->subs[i] != c) continue;
        memmove(&g->subs[i], &g->subs[i + 1], (g->nsubs - i - 1) * sizeof(*g->subs));
        g->nsubs--;
        break;
    }
    if (g->nsubs == 0) tab_del(&G[kind], g);
}

static const char *const sub_names[3] = { "subscribe", "psubscribe", "ssubscribe" };
static const char *const unsub_names[3] = { "unsubscribe", "punsubscribe", "sunsubscribe" };

static void reply_confirm(kv_client_t *c, const char *what, const char *name, size_t len, int count)
{
    kv_reply_array(&c->out, 3);
    kv_reply_bulk_cstr(&c->out, what);
    if (name) kv_reply_bulk(&c->out, name, len);
    else kv_reply_null(&c->out);
    kv_reply_int(&c->out, count);
}

void kv_pubsub_subscribe(kv_client_t *c, int kind)
{
    ps_t *ps = ps_of(c);
    for (int j = 1; j < c->argc; j++) {
        const char *k = c->argv[j].ptr;
        size_t len = c->argv[j].len;
        uint64_t h = hash(k, len);
        if (!tab_find(&ps->t[kind], k, len, h)) {
            tab_add(&ps->t[kind], k, len, h);
            global_add(kind, k, len, h, c);
        }
        reply_confirm(c, sub_names[kind], k, len, count_of(ps, kind));
    }
    ps->active = 1;
}

static void leave_if_idle(kv_client_t *c)
{
    ps_t *ps = c->ps;
    if (ps && ps->t[0].n + ps->t[1].n + ps->t[2].n == 0) ps->active = 0;
}

/* Drop every subscription of one kind; notify: reply one confirmation per
 * subscription (or one with a nil name when there is none). */
static void unsubscribe_all(kv_client_t *c, int kind, int notify)
{
    ps_t *ps = c->ps;
    if (!ps || ps->t[kind].n == 0) {
        if (notify) reply_confirm(c, unsub_names[kind], NULL, 0, count_of(ps, kind));
        return;
    }
    tab_t *t = &ps->t[kind];
    while (t->n) {
        for (size_t i = 0; t->nb && i < t->nb; i++) {
            for (ent_t *e = t->b[i], *next; e; e = next) {
                next = e->next;
                global_del(kind, e->key, e->len, e->h, c);
                if (notify) {
                    kv_reply_array(&c->out, 3);
                    kv_reply_bulk_cstr(&c->out, unsub_names[kind]);
                    kv_reply_bulk(&c->out, e->key, e->len);
                    kv_reply_int(&c->out, count_of(ps, kind) - 1);
                }
                int last = t->n == 1;
                tab_del(t, e);
                if (last) break;    /* the table's buckets are freed */
            }
            if (!t->nb) break;
        }
    }
}

void kv_pubsub_unsubscribe(kv_client_t *c, int kind)
{
    if (c->argc == 1) {
        unsubscribe_all(c, kind, 1);
    } else {
        ps_t *ps = ps_of(c);
        for (int j = 1; j < c->argc; j++) {
            const char *k = c->argv[j].ptr;
            size_t len = c->argv[j].len;
            uint64_t h = hash(k, len);
            ent_t *e = tab_find(&ps->t[kind], k, len, h);
            if (e) {
                global_del(kind, k, len, h, c);
                tab_del(&ps->t[kind], e);
            }
            reply_confirm(c, unsub_names[kind], k, len, count_of(ps, kind));
        }
    }
    leave_if_idle(c);
}

void kv_pubsub_reset(kv_client_t *c)
{
    if (!c->ps) return;
    for (int kind = 0; kind < 3; kind++) unsubscribe_all(c, kind, 0);
    c->ps->active = 0;
}

void kv_pubsub_client_gone(kv_client_t *c)
{
    ps_t *ps = c->ps;
    if (!ps) return;
    for (int kind = 0; kind < 3; kind++) unsubscribe_all(c, kind, 0);
    if (ps->pending)
        for (size_t i = 0; i < npend; i++) if (pend[i] == c) pend[i] = NULL;
    free(ps);
    c->ps = NULL;
}

void kv_pubsub_counts(const kv_client_t *c, int *sub, int *psub, int *ssub)
{
    const ps_t *ps = c->ps;
    *sub = ps ? (int) ps->t[0].n : 0;
    *psub = ps ? (int) ps->t[1].n : 0;
    *ssub = ps ? (int) ps->t[2].n : 0;
}

int kv_pubsub_active(const kv_client_t *c) { return c->ps && c->ps->active; }

/* ---- subscribed mode ----------------------------------------------------------- */

/* Redis 7.0's containers and their subcommands: the refusal names the
 * subcommand ("client|list"); an unknown subcommand is not refused here,
 * its handler replies Redis's unknown-subcommand error first. */
static const char *const containers[] = {
    "acl cat deluser dryrun genpass getuser help list load log save setuser users whoami",
    "client caching getname getredir help id info kill list no-evict pause reply setname tracking "
    "trackinginfo unblock unpause",
    "command count docs getkeys getkeysandflags help info list",
    "config get help resetstat rewrite set",
    "function delete dump flush help kill list load restore stats",
    "latency doctor graph help histogram history latest reset",
    "memory doctor help malloc-stats purge stats usage",
    "module help list load loadex unload",
    "object encoding freq help idletime refcount",
    "pubsub channels help numpat numsub shardchannels shardnumsub",
    "script debug exists flush help kill load",
    "slowlog get help len reset",
    "xgroup create createconsumer delconsumer destroy help setid",
    "xinfo consumers groups help stream",
    NULL,
};

/* 1: a container (sub: its subcommand or NULL when unknown); 0: not one. */
static int container_sub(const char *name, const kv_resp_arg *arg, const char **sub, size_t *sublen)
{
    size_t nl = strlen(name);
    for (int i = 0; containers[i]; i++) {
        const char *p = containers[i];
        if (strncmp(p, name, nl) || p[nl] != ' ') continue;
        *sub = NULL;
        for (p += nl + 1; *p;) {
            const char *end = strchr(p, ' ');
            size_t len = end ? (size_t) (end - p) : strlen(p);
            if (arg && arg->len == len && !strncasecmp(arg->ptr, p, len)) {
                *sub = p, *sublen = len;
                break;
            }
            p += len + (end != NULL);
        }
        return 1;
    }
    return 0;
}

int kv_pubsub_refuse(kv_client_t *c, const kv_cmd_t *cmd)
{
    static const char *const allowed[] = {
        "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
        "ping", "quit", "reset", NULL,
    };
    if (!c->ps || !c->ps->active) return 0;
    for (int i = 0; allowed[i]; i++) if (!strcmp(cmd->name, allowed[i])) return 0;
    char full[96];
    const char *sub;
    size_t sublen;
    if (container_sub(cmd->name, c->argc >= 2 ? &c->argv[1] : NULL, &sub, &sublen)) {
        if (!sub) return 0;                 /* the handler's unknown-subcommand error */
        snprintf(full, sizeof(full), "%s|%.*s", cmd->name, (int) sublen, sub);
    } else {
        snprintf(full, sizeof(full), "%s", cmd->name);
    }
    kv_slot_t *held = kv_fwd_hold(c);
    kv_reply_errorf(&c->out, "Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                             "are allowed in this context", full);
    kv_fwd_release(c, held);
    return 1;
}

/* ---- delivery -------------------------------------------------------------------- */

void kv_pubsub_set_limits(uint64_t hard, uint64_t soft, uint64_t soft_secs)
{
    lim_hard = hard, lim_soft = soft, lim_secs = soft_secs;
}

void kv_pubsub_get_limits(uint64_t *hard, uint64_t *soft, uint64_t *soft_secs)
{
    *hard = lim_hard, *soft = lim_soft, *soft_secs = lim_secs;
}

/* Over its limits (Redis's checkClientOutputBufferLimits, pubsub class). */
static int over_limits(kv_client_t *c, ps_t *ps)
{
    size_t used = kv_reply_buf_len(&c->out);
    if (lim_hard && used >= lim_hard) return 1;
    if (!lim_soft || used < lim_soft) {
        ps->soft_since = 0;
        return 0;
    }
    uint64_t now = uv_now(c->srv->loop);
    if (!ps->soft_since) {
        ps->soft_since = now ? now : 1;
        return 0;
    }
    return now - ps->soft_since > lim_secs * 1000;
}

/* Once per loop turn: write what the subscribers received, close those
 * over their limits. */
static void flush_cb(uv_check_t *h)
{
    (void) h;
    for (size_t i = 0; i < npend; i++) {
        kv_client_t *c = pend[i];
        if (!c) continue;
        pend[i] = NULL;
        ps_t *ps = c->ps;
        if (ps) ps->pending = 0;
        if (c->closing) continue;
        if (ps && over_limits(c, ps)) {
            kv_log_warning("Client id=%llu addr=%s closed for overcoming of output buffer limits "
                           "(pubsub, %zu bytes queued)", (unsigned long long) c->id, kv_client_addr(c),
                           kv_reply_buf_len(&c->out));
            kv_client_kill(c, NULL);
            continue;
        }
        kv_client_flush(c);
    }
    npend = 0;
    uv_check_stop(&flusher);
}

static void mark_pending(kv_client_t *c)
{
    ps_t *ps = c->ps;
    if (ps->pending) return;
    if (!flusher_init) {
        uv_check_init(c->srv->loop, &flusher);
        uv_unref((uv_handle_t *) &flusher);
        flusher_init = 1;
    }
    if (npend == pend_cap) {
        pend_cap = pend_cap ? pend_cap * 2 : 64;
        kv_client_t **p = realloc(pend, pend_cap * sizeof(*p));
        if (!p) abort();
        pend = p;
    }
    pend[npend++] = c;
    ps->pending = 1;
    if (npend == 1) uv_check_start(&flusher, flush_cb);
}

static void push(kv_client_t *c, const char *type, size_t tlen, const char *pat, size_t plen, const char *ch,
                 size_t chlen, const char *msg, size_t mlen)
{
    if (c->closing) return;
    /* Replies the client is still owed come first. */
    kv_slot_t *held = c->slots_head ? kv_fwd_hold(c) : NULL;
    kv_reply_array(&c->out, pat ? 4 : 3);
    kv_reply_bulk(&c->out, type, tlen);
    if (pat) kv_reply_bulk(&c->out, pat, plen);
    kv_reply_bulk(&c->out, ch, chlen);
    kv_reply_bulk(&c->out, msg, mlen);
    kv_fwd_release(c, held);
    mark_pending(c);
}

long long kv_pubsub_deliver(const char *ch, size_t chlen, const char *msg, size_t mlen, int shard)
{
    long long n = 0;
    if (shard) {
        ent_t *e = tab_find(&G[2], ch, chlen, hash(ch, chlen));
        for (uint32_t i = 0; e && i < e->nsubs; i++, n++) push(e->subs[i], "smessage", 8, NULL, 0, ch, chlen, msg, mlen);
        return n;
    }
    ent_t *e = G[0].n ? tab_find(&G[0], ch, chlen, hash(ch, chlen)) : NULL;
    for (uint32_t i = 0; e && i < e->nsubs; i++, n++) push(e->subs[i], "message", 7, NULL, 0, ch, chlen, msg, mlen);
    for (size_t b = 0; b < G[1].nb; b++) {
        for (ent_t *p = G[1].b[b]; p; p = p->next) {
            if (!kv_glob_match(p->key, p->len, ch, chlen, 0)) continue;
            for (uint32_t i = 0; i < p->nsubs; i++, n++)
                push(p->subs[i], "pmessage", 8, p->key, p->len, ch, chlen, msg, mlen);
        }
    }
    return n;
}

/* ---- PUBSUB's views ------------------------------------------------------------- */

void kv_pubsub_each(int kind, kv_pubsub_each_fn *fn, void *ud)
{
    for (size_t b = 0; b < G[kind].nb; b++)
        for (ent_t *e = G[kind].b[b]; e; e = e->next) fn(ud, e->key, e->len, e->nsubs);
}

size_t kv_pubsub_numsub(int kind, const char *name, size_t len)
{
    ent_t *e = tab_find(&G[kind], name, len, hash(name, len));
    return e ? e->nsubs : 0;
}

size_t kv_pubsub_npatterns(void) { return G[1].n; }
