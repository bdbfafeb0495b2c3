/* The stream value: IDs, the node array, appending, deleting, trimming
 * and iterating entries, as Redis 7.0's t_stream.c (same listpack bytes).
 * Consumer groups are in stream_cg.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "shard/stream_type.h"

size_t kv_stream_node_max_bytes = 4096;
long long kv_stream_node_max_entries = 100;
void kv_stream_set_node_max_bytes(size_t n) { kv_stream_node_max_bytes = n; }
void kv_stream_set_node_max_entries(long long n) { kv_stream_node_max_entries = n; }

/* ---- IDs -------------------------------------------------------------- */

int kv_sid_incr(kv_sid *id)
{
    if (id->seq == UINT64_MAX) {
        if (id->ms == UINT64_MAX) {
            id->ms = id->seq = 0; /* as Redis: overflow wraps and fails */
            return -1;
        }
        id->ms++, id->seq = 0;
    } else {
        id->seq++;
    }
    return 0;
}

int kv_sid_decr(kv_sid *id)
{
    if (id->seq == 0) {
        if (id->ms == 0) {
            id->ms = id->seq = UINT64_MAX;
            return -1;
        }
        id->ms--, id->seq = UINT64_MAX;
    } else {
        id->seq--;
    }
    return 0;
}

int kv_sid_fmt(char *buf, const kv_sid *id)
{
    return snprintf(buf, 44, "%llu-%llu", (unsigned long long)id->ms, (unsigned long long)id->seq);
}

void kv_sid_encode(unsigned char *buf, const kv_sid *id)
{
    for (int i = 0; i < 8; i++) {
        buf[i] = (unsigned char)(id->ms >> (56 - 8 * i));
        buf[8 + i] = (unsigned char)(id->seq >> (56 - 8 * i));
    }
}

void kv_sid_decode(const unsigned char *buf, kv_sid *id)
{
    id->ms = id->seq = 0;
    for (int i = 0; i < 8; i++) {
        id->ms = id->ms << 8 | buf[i];
        id->seq = id->seq << 8 | buf[8 + i];
    }
}

/* ---- kv_svec ------------------------------------------------------------ */

int kv_svec_insert(kv_svec *v, size_t i, const void *elem)
{
    size_t esz = v->esz;
    if (v->head + v->n == v->cap) {
        if (v->head > v->n) { /* plenty of room in front: recentre */
            memmove(v->buf, kv_svec_at(v, 0), (size_t)v->n * esz);
            v->head = 0;
        } else {
            uint32_t ncap = v->cap ? v->cap * 2 : 4;
            char *nb = realloc(v->buf, (size_t)ncap * esz);
            if (!nb) return -1;
            v->buf = nb, v->cap = ncap;
        }
    }
    if (i < v->n / 2 && v->head > 0) { /* shift the front part left */
        v->head--;
        memmove(kv_svec_at(v, 0), kv_svec_at(v, 1), i * esz);
    } else {
        memmove(kv_svec_at(v, i + 1), kv_svec_at(v, i), (v->n - i) * esz);
    }
    memcpy(kv_svec_at(v, i), elem, esz);
    v->n++;
    return 0;
}

void kv_svec_remove(kv_svec *v, size_t i)
{
    if (i < v->n / 2) {
        memmove(kv_svec_at(v, 1), kv_svec_at(v, 0), i * v->esz);
        v->head++;
    } else {
        memmove(kv_svec_at(v, i), kv_svec_at(v, i + 1), (v->n - i - 1) * (size_t)v->esz);
    }
    if (--v->n == 0) v->head = 0;
}

void kv_svec_free(kv_svec *v)
{
    free(v->buf);
    v->buf = NULL;
    v->head = v->n = v->cap = 0;
}

/* ---- the value ------------------------------------------------------------ */

kv_stream *kv_stream_new(void)
{
    kv_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->nodes.esz = sizeof(kv_snode);
    s->groups.esz = sizeof(kv_sgroup *);
    s->bytes = sizeof *s;
    return s;
}

static inline kv_snode *node_at(const kv_stream *s, size_t i) { return kv_svec_at(&s->nodes, i); }

static inline int64_t lp_int(const unsigned char *p)
{
    kv_lp_val v;
    kv_lp_get(p, &v);
    return v.s ? 0 : v.ll;
}

/* Replace node i's listpack pointer, keeping the byte count right. */
static void node_set(kv_stream *s, size_t i, unsigned char *lp, size_t old_bytes)
{
    kv_snode *nd = node_at(s, i);
    s->bytes += kv_lp_bytes(lp) - old_bytes;
    nd->lp = lp;
}

static void node_remove(kv_stream *s, size_t i)
{
    kv_snode *nd = node_at(s, i);
    s->bytes -= kv_lp_bytes(nd->lp);
    free(nd->lp);
    kv_svec_remove(&s->nodes, i);
}

/* The last node whose master ID is <= id, or SIZE_MAX. */
static size_t node_find(const kv_stream *s, const kv_sid *id)
{
    size_t lo = 0, hi = s->nodes.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kv_sid_cmp(&node_at(s, mid)->master, id) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo ? lo - 1 : SIZE_MAX;
}

int kv_stream_append(kv_stream *s, const kv_sarg *av, long nf, kv_sid *added,
                     const kv_sid *use_id, int seq_given)
{
    kv_sid id;
    if (use_id) {
        if (seq_given) {
            id = *use_id;
        } else if (s->last_id.ms == use_id->ms) {
            if (s->last_id.seq == UINT64_MAX) {
                errno = EDOM;
                return -1;
            }
            id = s->last_id;
            id.seq++;
        } else {
            id = *use_id;
        }
    } else {
        uint64_t ms = kv_time_unix_ms();
        if (ms > s->last_id.ms) id.ms = ms, id.seq = 0;
        else id = s->last_id, kv_sid_incr(&id);
    }
    if (kv_sid_cmp(&id, &s->last_id) <= 0) {
        errno = EDOM;
        return -1;
    }
    size_t totelelen = 0;
    for (long i = 0; i < nf * 2; i++) totelelen += av[i].len;
    if (totelelen > KV_STREAM_LP_MAX_SIZE) {
        errno = ERANGE;
        return -1;
    }
    unsigned char *lp = NULL;
    size_t ni = s->nodes.n ? s->nodes.n - 1 : 0, old = 0;
    if (s->nodes.n) {
        lp = node_at(s, ni)->lp;
        size_t maxb = kv_stream_node_max_bytes;
        if (maxb == 0 || maxb > KV_STREAM_LP_MAX_SIZE) maxb = KV_STREAM_LP_MAX_SIZE;
        if (kv_lp_bytes(lp) + totelelen >= maxb) {
            lp = NULL;
        } else if (kv_stream_node_max_entries) {
            unsigned char *p = kv_lp_first(lp);
            if (lp_int(p) + lp_int(kv_lp_next(lp, p)) >= kv_stream_node_max_entries) lp = NULL;
        }
    }
    int flags = 0;
    kv_sid master;
    errno = ENOMEM;
    if (!lp) {
        master = id;
        if (!(lp = kv_lp_new())) return -1;
        lp = kv_lp_append_int(lp, 1);
        lp = lp ? kv_lp_append_int(lp, 0) : NULL;
        lp = lp ? kv_lp_append_int(lp, nf) : NULL;
        for (long i = 0; lp && i < nf; i++) lp = kv_lp_append(lp, av[2 * i].p, av[2 * i].len);
        lp = lp ? kv_lp_append_int(lp, 0) : NULL;
        if (!lp) return -1;
        kv_snode nd = { id, lp };
        if (kv_svec_insert(&s->nodes, s->nodes.n, &nd) < 0) {
            free(lp);
            return -1;
        }
        ni = s->nodes.n - 1;
        s->bytes += kv_lp_bytes(lp);
        old = kv_lp_bytes(lp);
        flags |= KV_SFLAG_SAMEFIELDS;
    } else {
        master = node_at(s, ni)->master;
        old = kv_lp_bytes(lp);
        unsigned char *p = kv_lp_first(lp);
        int64_t count = lp_int(p);
        unsigned char *nlp = kv_lp_replace_int(lp, &p, count + 1);
        if (!nlp) return -1;
        lp = nlp;
        p = kv_lp_next(lp, kv_lp_next(lp, p));
        int64_t mnf = lp_int(p);
        p = kv_lp_next(lp, p);
        if (mnf == nf) {
            long i;
            for (i = 0; i < mnf; i++, p = kv_lp_next(lp, p))
                if (!kv_lp_eq(p, av[2 * i].p, av[2 * i].len)) break;
            if (i == mnf) flags |= KV_SFLAG_SAMEFIELDS;
        }
    }
    unsigned char *nlp = kv_lp_append_int(lp, flags);
    nlp = nlp ? kv_lp_append_int(nlp, (long long)(id.ms - master.ms)) : NULL;
    nlp = nlp ? kv_lp_append_int(nlp, (long long)(id.seq - master.seq)) : NULL;
    if (nlp && !(flags & KV_SFLAG_SAMEFIELDS)) nlp = kv_lp_append_int(nlp, nf);
    for (long i = 0; nlp && i < nf; i++) {
        if (!(flags & KV_SFLAG_SAMEFIELDS)) nlp = kv_lp_append(nlp, av[2 * i].p, av[2 * i].len);
        if (nlp) nlp = kv_lp_append(nlp, av[2 * i + 1].p, av[2 * i + 1].len);
    }
    long long lp_count = nf + 3;
    if (!(flags & KV_SFLAG_SAMEFIELDS)) lp_count += nf + 1;
    if (nlp) nlp = kv_lp_append_int(nlp, lp_count);
    if (!nlp) abort(); /* half-written node: cannot be rolled back */
    node_set(s, ni, nlp, old);
    s->length++;
    s->entries_added++;
    s->last_id = id;
    if (s->length == 1) s->first_id = id;
    if (added) *added = id;
    return 0;
}

/* ---- iterating -------------------------------------------------------------- */

static int siter_load(kv_siter *it)
{
    kv_snode *nd = node_at(it->s, it->node);
    it->lp = nd->lp;
    it->master = nd->master;
    unsigned char *p = kv_lp_next(it->lp, kv_lp_next(it->lp, kv_lp_first(it->lp)));
    it->master_nf = lp_int(p);
    p = kv_lp_next(it->lp, p);
    it->mfields = p;
    for (int64_t i = 0; i < it->master_nf; i++) p = kv_lp_next(it->lp, p);
    /* p: the master terminator */
    it->next = it->rev ? kv_lp_last(it->lp) : kv_lp_next(it->lp, p);
    return 1;
}

void kv_siter_start(kv_siter *it, kv_stream *s, const kv_sid *start, const kv_sid *end,
                    int rev)
{
    it->s = s;
    it->rev = rev;
    it->start = start ? *start : (kv_sid){ 0, 0 };
    it->end = end ? *end : (kv_sid){ UINT64_MAX, UINT64_MAX };
    it->lp = NULL;
    if (!s->nodes.n) {
        it->node = SIZE_MAX;
        return;
    }
    size_t i = node_find(s, rev ? &it->end : &it->start);
    if (i == SIZE_MAX) i = rev ? SIZE_MAX : 0;
    it->node = i;
}

/* Decode the entry whose flags element is at p; returns the element after
 * its lp-count. */
static unsigned char *parse_entry(kv_siter *it, unsigned char *p, kv_sid *id, int *flags)
{
    unsigned char *lp = it->lp;
    it->flagp = p;
    *flags = (int)lp_int(p);
    p = kv_lp_next(lp, p);
    id->ms = it->master.ms + (uint64_t)lp_int(p);
    p = kv_lp_next(lp, p);
    id->seq = it->master.seq + (uint64_t)lp_int(p);
    p = kv_lp_next(lp, p);
    int64_t skip;
    if (*flags & KV_SFLAG_SAMEFIELDS) {
        it->samefields = 1;
        it->nf = it->master_nf;
        it->fp = it->mfields;
        it->vp = p;
        skip = it->nf;
    } else {
        it->samefields = 0;
        it->nf = lp_int(p);
        p = kv_lp_next(lp, p);
        it->fp = p;
        skip = it->nf * 2;
    }
    while (skip--) p = kv_lp_next(lp, p);
    return kv_lp_next(lp, p); /* past lp-count */
}

int kv_siter_next(kv_siter *it, kv_sid *id, int64_t *nf)
{
    int flags;
    while (it->node != SIZE_MAX) {
        if (!it->lp) siter_load(it);
        if (!it->rev) {
            if (!it->next) {
                it->lp = NULL;
                if (++it->node >= it->s->nodes.n) it->node = SIZE_MAX;
                continue;
            }
            it->next = parse_entry(it, it->next, id, &flags);
            if (flags & KV_SFLAG_DELETED) continue;
            if (kv_sid_cmp(id, &it->start) < 0) continue;
            if (kv_sid_cmp(id, &it->end) > 0) {
                it->node = SIZE_MAX;
                return 0;
            }
        } else {
            int64_t cnt = it->next ? lp_int(it->next) : 0;
            if (cnt == 0) { /* the master entry's terminator */
                it->lp = NULL;
                it->node = it->node == 0 ? SIZE_MAX : it->node - 1;
                continue;
            }
            unsigned char *p = it->next;
            while (cnt--) p = kv_lp_prev(it->lp, p);
            parse_entry(it, p, id, &flags);
            it->next = kv_lp_prev(it->lp, p);
            if (flags & KV_SFLAG_DELETED) continue;
            if (kv_sid_cmp(id, &it->end) > 0) continue;
            if (kv_sid_cmp(id, &it->start) < 0) {
                it->node = SIZE_MAX;
                return 0;
            }
        }
        *nf = it->nf;
        return 1;
    }
    return 0;
}

void kv_siter_field(kv_siter *it, kv_lp_val *f, kv_lp_val *v)
{
    kv_lp_get(it->fp, f);
    it->fp = kv_lp_next(it->lp, it->fp);
    if (it->samefields) {
        kv_lp_get(it->vp, v);
        it->vp = kv_lp_next(it->lp, it->vp);
    } else {
        kv_lp_get(it->fp, v);
        it->fp = kv_lp_next(it->lp, it->fp);
    }
}

void kv_siter_remove(kv_siter *it)
{
    kv_stream *s = it->s;
    unsigned char *lp = it->lp, *p = it->flagp;
    size_t old = kv_lp_bytes(lp);
    int64_t flags = lp_int(p);
    lp = kv_lp_replace_int(lp, &p, flags | KV_SFLAG_DELETED); /* same size: no OOM */
    p = kv_lp_first(lp);
    int64_t count = lp_int(p);
    if (count == 1) {
        node_at(s, it->node)->lp = lp;
        node_remove(s, it->node);
    } else {
        unsigned char *nlp = kv_lp_replace_int(lp, &p, count - 1);
        if (nlp) {
            lp = nlp;
            p = kv_lp_next(lp, p);
            nlp = kv_lp_replace_int(lp, &p, lp_int(p) + 1);
        }
        if (!nlp) abort();
        node_at(s, it->node)->lp = nlp;
        s->bytes += kv_lp_bytes(nlp) - old;
    }
    s->length--;
    it->node = SIZE_MAX;
    it->lp = NULL;
}

int kv_stream_delete(kv_stream *s, const kv_sid *id)
{
    kv_siter it;
    kv_sid got;
    int64_t nf;
    kv_siter_start(&it, s, id, id, 0);
    if (!kv_siter_next(&it, &got, &nf)) return 0;
    kv_siter_remove(&it);
    return 1;
}

int kv_stream_has(kv_stream *s, const kv_sid *id)
{
    kv_siter it;
    kv_sid got;
    int64_t nf;
    kv_siter_start(&it, s, id, id, 0);
    return kv_siter_next(&it, &got, &nf);
}

void kv_stream_last_valid_id(kv_stream *s, kv_sid *id)
{
    kv_siter it;
    int64_t nf;
    kv_siter_start(&it, s, NULL, NULL, 1);
    if (!kv_siter_next(&it, id, &nf)) id->ms = id->seq = 0;
}

void kv_stream_first_valid_id(kv_stream *s, kv_sid *id)
{
    kv_siter it;
    int64_t nf;
    kv_siter_start(&it, s, NULL, NULL, 0);
    if (!kv_siter_next(&it, id, &nf)) id->ms = id->seq = UINT64_MAX;
}

/* ---- trimming ----------------------------------------------------------------- */

/* The ID of the last entry (deleted or not) of a node (lpGetEdgeStreamID). */
static void node_last_id(const kv_snode *nd, kv_sid *id)
{
    unsigned char *lp = nd->lp, *p = kv_lp_last(lp);
    int64_t cnt = lp_int(p);
    while (cnt--) p = kv_lp_prev(lp, p);
    p = kv_lp_next(lp, p);
    id->ms = nd->master.ms + (uint64_t)lp_int(p);
    id->seq = nd->master.seq + (uint64_t)lp_int(kv_lp_next(lp, p));
}

long long kv_stream_trim(kv_stream *s, const kv_strim *t)
{
    if (t->strategy == KV_TRIM_NONE) return 0;
    long long deleted = 0;
    while (s->nodes.n) {
        if (t->strategy == KV_TRIM_MAXLEN && s->length <= (uint64_t)t->maxlen) break;
        kv_snode *nd = node_at(s, 0);
        unsigned char *lp = nd->lp, *p = kv_lp_first(lp);
        int64_t entries = lp_int(p);
        if (t->limit && deleted + entries > t->limit) break;
        int remove;
        if (t->strategy == KV_TRIM_MAXLEN) {
            remove = s->length - (uint64_t)entries >= (uint64_t)t->maxlen;
        } else {
            kv_sid last;
            node_last_id(nd, &last);
            remove = kv_sid_cmp(&last, &t->minid) < 0;
        }
        if (remove) {
            node_remove(s, 0);
            s->length -= (uint64_t)entries;
            deleted += entries;
            continue;
        }
        if (t->approx) break;
        size_t old = kv_lp_bytes(lp);
        int64_t from_lp = 0;
        p = kv_lp_next(lp, kv_lp_next(lp, p));
        int64_t mnf = lp_int(p);
        p = kv_lp_next(lp, p);
        for (int64_t j = 0; j < mnf; j++) p = kv_lp_next(lp, p);
        p = kv_lp_next(lp, p);
        while (p) {
            unsigned char *pf = p;
            int64_t flags = lp_int(p);
            p = kv_lp_next(lp, p);
            kv_sid cur = { nd->master.ms + (uint64_t)lp_int(p), 0 };
            p = kv_lp_next(lp, p);
            cur.seq = nd->master.seq + (uint64_t)lp_int(p);
            p = kv_lp_next(lp, p);
            int stop = t->strategy == KV_TRIM_MAXLEN ? s->length <= (uint64_t)t->maxlen
                                                     : kv_sid_cmp(&cur, &t->minid) >= 0;
            if (stop) break;
            int64_t skip;
            if (flags & KV_SFLAG_SAMEFIELDS) {
                skip = mnf;
            } else {
                skip = lp_int(p) * 2;
                p = kv_lp_next(lp, p);
            }
            while (skip--) p = kv_lp_next(lp, p);
            p = kv_lp_next(lp, p);
            if (!(flags & KV_SFLAG_DELETED)) {
                ptrdiff_t off = p ? p - lp : 0;
                lp = kv_lp_replace_int(lp, &pf, flags | KV_SFLAG_DELETED); /* same size */
                if (p) p = lp + off;
                from_lp++;
                s->length--;
            }
        }
        deleted += from_lp;
        p = kv_lp_first(lp);
        unsigned char *nlp = kv_lp_replace_int(lp, &p, entries - from_lp);
        if (nlp) {
            lp = nlp;
            p = kv_lp_next(lp, p);
            nlp = kv_lp_replace_int(lp, &p, lp_int(p) + from_lp);
        }
        if (!nlp) abort();
        nd->lp = nlp;
        s->bytes += kv_lp_bytes(nlp) - old;
        break;
    }
    if (s->length == 0) s->first_id.ms = s->first_id.seq = 0;
    else kv_stream_first_valid_id(s, &s->first_id);
    return deleted;
}

/* ---- consumer-group counters (Redis 7.0) ------------------------------------ */

int kv_stream_range_has_tombstones(const kv_stream *s, const kv_sid *start, const kv_sid *end)
{
    if (!s->length || kv_sid_zero(&s->max_deleted)) return 0;
    if (kv_sid_cmp(&s->first_id, &s->max_deleted) > 0) return 0;
    kv_sid a = start ? *start : (kv_sid){ 0, 0 };
    kv_sid b = end ? *end : (kv_sid){ UINT64_MAX, UINT64_MAX };
    return kv_sid_cmp(&a, &s->max_deleted) <= 0 && kv_sid_cmp(&s->max_deleted, &b) <= 0;
}

long long kv_stream_estimate_distance(const kv_stream *s, const kv_sid *id)
{
    if (!s->entries_added) return 0;
    if (!s->length && kv_sid_cmp(id, &s->last_id) < 1) return (long long)s->entries_added;
    int cmp_last = kv_sid_cmp(id, &s->last_id);
    if (cmp_last == 0) return (long long)s->entries_added;
    if (cmp_last > 0) return KV_SCG_INVALID_ENTRIES_READ;
    int cmp_first = kv_sid_cmp(id, &s->first_id);
    if (kv_sid_zero(&s->max_deleted) || kv_sid_cmp(&s->max_deleted, &s->first_id) < 0) {
        if (cmp_first < 0) return (long long)(s->entries_added - s->length);
        if (cmp_first == 0) return (long long)(s->entries_added - s->length + 1);
    }
    return KV_SCG_INVALID_ENTRIES_READ;
}
