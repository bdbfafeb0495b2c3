/* Consumer groups, consumers and pending-entries lists of a stream, and
 * the value's kv_db_type_ops (free, dup, memory). */
#include <stdlib.h>
#include <string.h>

#include "shard/stream_type.h"

/* Redis's rax order: bytes, and a prefix before its extensions. */
static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r) return r;
    return an < bn ? -1 : an > bn;
}

/* Index of the first element of v (pointers to structs that start with a
 * name of nlen bytes at `off`) not below name; *found when equal. */
#define NAME_LOWER(v, T, nm, nml, found)                                                  \
    ({                                                                                    \
        size_t lo_ = 0, hi_ = (v)->n;                                                     \
        *(found) = 0;                                                                     \
        while (lo_ < hi_) {                                                               \
            size_t mid_ = (lo_ + hi_) / 2;                                                \
            T *x_ = *(T **)kv_svec_at((v), mid_);                                         \
            int c_ = name_cmp(x_->name, x_->nlen, (nm), (nml));                           \
            if (c_ < 0) lo_ = mid_ + 1;                                                   \
            else { if (!c_) *(found) = 1; hi_ = mid_; }                                   \
        }                                                                                 \
        lo_;                                                                              \
    })

kv_sgroup *kv_stream_group(const kv_stream *s, const char *name, size_t n)
{
    int found;
    size_t i = NAME_LOWER(&s->groups, kv_sgroup, name, n, &found);
    return found ? kv_stream_group_at(s, i) : NULL;
}

kv_sgroup *kv_stream_group_create(kv_stream *s, const char *name, size_t n, const kv_sid *id,
                                  long long entries_read)
{
    int found;
    size_t i = NAME_LOWER(&s->groups, kv_sgroup, name, n, &found);
    if (found) return NULL;
    kv_sgroup *g = calloc(1, sizeof *g + n);
    if (!g) return NULL;
    memcpy(g->name, name, n);
    g->nlen = (uint32_t)n;
    g->last_id = *id;
    g->entries_read = entries_read;
    g->pel.esz = sizeof(kv_snack *);
    g->cons.esz = sizeof(kv_sconsumer *);
    if (kv_svec_insert(&s->groups, i, &g) < 0) {
        free(g);
        return NULL;
    }
    s->bytes += sizeof *g + n + sizeof g;
    return g;
}

static void consumer_free(kv_sconsumer *c)
{
    kv_svec_free(&c->pel);
    free(c);
}

static void group_free(kv_sgroup *g)
{
    for (size_t i = 0; i < g->pel.n; i++) free(kv_spel_at(&g->pel, i));
    for (size_t i = 0; i < g->cons.n; i++) consumer_free(kv_sgroup_consumer_at(g, i));
    kv_svec_free(&g->pel);
    kv_svec_free(&g->cons);
    free(g);
}

static size_t group_bytes(const kv_sgroup *g)
{
    size_t b = sizeof *g + g->nlen + sizeof g + g->pel.n * (sizeof(kv_snack) + 8);
    for (size_t i = 0; i < g->cons.n; i++) {
        const kv_sconsumer *c = kv_sgroup_consumer_at(g, i);
        b += sizeof *c + c->nlen + 8 + c->pel.n * 8;
    }
    return b;
}

int kv_stream_group_destroy(kv_stream *s, const char *name, size_t n)
{
    int found;
    size_t i = NAME_LOWER(&s->groups, kv_sgroup, name, n, &found);
    if (!found) return 0;
    kv_sgroup *g = kv_stream_group_at(s, i);
    s->bytes -= group_bytes(g);
    group_free(g);
    kv_svec_remove(&s->groups, i);
    return 1;
}

kv_sconsumer *kv_sgroup_consumer(const kv_sgroup *g, const char *name, size_t n)
{
    int found;
    size_t i = NAME_LOWER(&g->cons, kv_sconsumer, name, n, &found);
    return found ? kv_sgroup_consumer_at(g, i) : NULL;
}

kv_sconsumer *kv_sgroup_consumer_create(kv_stream *s, kv_sgroup *g, const char *name, size_t n,
                                        int64_t now)
{
    int found;
    size_t i = NAME_LOWER(&g->cons, kv_sconsumer, name, n, &found);
    if (found) return NULL;
    kv_sconsumer *c = calloc(1, sizeof *c + n);
    if (!c) return NULL;
    memcpy(c->name, name, n);
    c->nlen = (uint32_t)n;
    c->seen_time = now;
    c->pel.esz = sizeof(kv_snack *);
    if (kv_svec_insert(&g->cons, i, &c) < 0) {
        free(c);
        return NULL;
    }
    s->bytes += sizeof *c + n + 8;
    return c;
}

size_t kv_spel_lower(const kv_svec *pel, const kv_sid *id)
{
    size_t lo = 0, hi = pel->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kv_sid_cmp(&kv_spel_at(pel, mid)->id, id) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

kv_snack *kv_spel_find(const kv_svec *pel, const kv_sid *id)
{
    size_t i = kv_spel_lower(pel, id);
    if (i < pel->n && !kv_sid_cmp(&kv_spel_at(pel, i)->id, id)) return kv_spel_at(pel, i);
    return NULL;
}

static void pel_del(kv_svec *pel, const kv_sid *id)
{
    size_t i = kv_spel_lower(pel, id);
    if (i < pel->n && !kv_sid_cmp(&kv_spel_at(pel, i)->id, id)) kv_svec_remove(pel, i);
}

static int pel_add(kv_svec *pel, kv_snack *nk)
{
    size_t i = pel->n && kv_sid_cmp(&kv_spel_at(pel, pel->n - 1)->id, &nk->id) < 0
                   ? pel->n /* the common case: a new, higher ID */
                   : kv_spel_lower(pel, &nk->id);
    return kv_svec_insert(pel, i, &nk);
}

size_t kv_sgroup_consumer_delete(kv_stream *s, kv_sgroup *g, kv_sconsumer *c)
{
    size_t n = c->pel.n;
    for (size_t i = 0; i < c->pel.n; i++) {
        kv_snack *nk = kv_spel_at(&c->pel, i);
        pel_del(&g->pel, &nk->id);
        free(nk);
    }
    s->bytes -= n * (sizeof(kv_snack) + 16) + sizeof *c + c->nlen + 8;
    int found;
    size_t i = NAME_LOWER(&g->cons, kv_sconsumer, c->name, c->nlen, &found);
    kv_svec_remove(&g->cons, i);
    consumer_free(c);
    return n;
}

kv_snack *kv_sgroup_nack_add(kv_stream *s, kv_sgroup *g, kv_sconsumer *c, const kv_sid *id,
                             int64_t now)
{
    kv_snack *nk = malloc(sizeof *nk);
    if (!nk) return NULL;
    nk->id = *id;
    nk->delivery_time = now;
    nk->delivery_count = 1;
    nk->consumer = c;
    if (pel_add(&g->pel, nk) < 0) {
        free(nk);
        return NULL;
    }
    if (pel_add(&c->pel, nk) < 0) {
        pel_del(&g->pel, id);
        free(nk);
        return NULL;
    }
    s->bytes += sizeof *nk + 16;
    return nk;
}

void kv_sgroup_nack_move(kv_snack *nk, kv_sconsumer *to)
{
    if (nk->consumer == to) return;
    if (pel_add(&to->pel, nk) < 0) return; /* OOM: leave it where it was */
    pel_del(&nk->consumer->pel, &nk->id);
    nk->consumer = to;
}

void kv_sgroup_nack_del(kv_stream *s, kv_sgroup *g, kv_snack *nk)
{
    pel_del(&nk->consumer->pel, &nk->id);
    pel_del(&g->pel, &nk->id);
    s->bytes -= sizeof *nk + 16;
    free(nk);
}

/* ---- kv_db_type_ops ------------------------------------------------------- */

void kv_stream_free(void *ptr, uint8_t enc)
{
    (void)enc;
    kv_stream *s = ptr;
    if (!s) return;
    for (size_t i = 0; i < s->nodes.n; i++) free(((kv_snode *)kv_svec_at(&s->nodes, i))->lp);
    for (size_t i = 0; i < s->groups.n; i++) group_free(kv_stream_group_at(s, i));
    kv_svec_free(&s->nodes);
    kv_svec_free(&s->groups);
    free(s);
}

void *kv_stream_dup(const void *ptr, uint8_t enc)
{
    (void)enc;
    const kv_stream *s = ptr;
    kv_stream *d = kv_stream_new();
    if (!d) return NULL;
    d->length = s->length;
    d->last_id = s->last_id, d->first_id = s->first_id, d->max_deleted = s->max_deleted;
    d->entries_added = s->entries_added;
    for (size_t i = 0; i < s->nodes.n; i++) {
        const kv_snode *nd = kv_svec_at(&s->nodes, i);
        kv_snode c = { nd->master, kv_lp_dup(nd->lp) };
        if (!c.lp || kv_svec_insert(&d->nodes, i, &c) < 0) {
            free(c.lp);
            goto oom;
        }
        d->bytes += kv_lp_bytes(c.lp);
    }
    for (size_t i = 0; i < s->groups.n; i++) {
        const kv_sgroup *g = kv_stream_group_at(s, i);
        kv_sgroup *dg = kv_stream_group_create(d, g->name, g->nlen, &g->last_id, g->entries_read);
        if (!dg) goto oom;
        for (size_t j = 0; j < g->cons.n; j++) {
            const kv_sconsumer *c = kv_sgroup_consumer_at(g, j);
            kv_sconsumer *dc = kv_sgroup_consumer_create(d, dg, c->name, c->nlen, c->seen_time);
            if (!dc) goto oom;
            for (size_t k = 0; k < c->pel.n; k++) {
                const kv_snack *nk = kv_spel_at(&c->pel, k);
                kv_snack *dn = kv_sgroup_nack_add(d, dg, dc, &nk->id, nk->delivery_time);
                if (!dn) goto oom;
                dn->delivery_count = nk->delivery_count;
            }
        }
    }
    return d;
oom:
    kv_stream_free(d, enc);
    return NULL;
}

size_t kv_stream_mem(const void *ptr, uint8_t enc)
{
    (void)enc;
    const kv_stream *s = ptr;
    return s->bytes + (size_t)s->nodes.cap * sizeof(kv_snode);
}

static const kv_db_type_ops stream_ops = { kv_stream_free, kv_stream_dup, kv_stream_mem };

__attribute__((constructor)) static void stream_register(void)
{
    kv_db_register_type(KV_TYPE_STREAM, &stream_ops);
}
