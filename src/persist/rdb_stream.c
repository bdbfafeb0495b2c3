/* RDB codec of streams, as Redis 7.0 writes and loads them:
 *
 *   RDB_TYPE_STREAM_LISTPACKS_2 (19): nodes (16-byte big-endian master ID
 *   string + listpack string), length, last ID, first ID, max deleted
 *   ID, entries added, then the groups: name, last ID, entries read,
 *   PEL (raw ID + delivery ms + count), consumers (name, seen ms, PEL IDs).
 *   RDB_TYPE_STREAM_LISTPACKS (15, Redis 5/6) is loaded too, without the
 *   7.0 counters (computed as Redis does).
 *
 * Our nodes are Redis's listpacks byte for byte, so DUMP matches. Input is
 * validated in depth (every node's entries, counts and lp-counts, every
 * NACK owned by exactly one consumer) before it is used: the iterators
 * trust the structure. */
#include <stdlib.h>
#include <string.h>

#include "persist/rdbobj.h"
#include "shard/stream_type.h"

static void save_u64ms(kv_rdb_buf *b, int64_t ms)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++) x[i] = (unsigned char)((uint64_t)ms >> (8 * i));
    kv_rdb_buf_append(b, x, 8);
}

static void save_pel(kv_rdb_buf *b, const kv_svec *pel, int nacks)
{
    kv_rdb_save_len(b, pel->n);
    for (size_t i = 0; i < pel->n; i++) {
        const kv_snack *nk = kv_spel_at(pel, i);
        unsigned char k[16];
        kv_sid_encode(k, &nk->id);
        kv_rdb_buf_append(b, k, 16);
        if (nacks) {
            save_u64ms(b, nk->delivery_time);
            kv_rdb_save_len(b, nk->delivery_count);
        }
    }
}

static int save(kv_rdb_buf *b, const kv_obj *o)
{
    const kv_stream *s = kv_db_ptr(o);
    unsigned char t = KV_RDB_TYPE_STREAM_LISTPACKS_2;
    kv_rdb_buf_append(b, &t, 1);
    kv_rdb_save_len(b, s->nodes.n);
    for (size_t i = 0; i < s->nodes.n; i++) {
        const kv_snode *nd = kv_svec_at(&s->nodes, i);
        unsigned char k[16];
        kv_sid_encode(k, &nd->master);
        kv_rdb_save_string(b, k, 16);
        kv_rdb_save_string(b, nd->lp, kv_lp_bytes(nd->lp));
    }
    kv_rdb_save_len(b, s->length);
    kv_rdb_save_len(b, s->last_id.ms);
    kv_rdb_save_len(b, s->last_id.seq);
    kv_rdb_save_len(b, s->first_id.ms);
    kv_rdb_save_len(b, s->first_id.seq);
    kv_rdb_save_len(b, s->max_deleted.ms);
    kv_rdb_save_len(b, s->max_deleted.seq);
    kv_rdb_save_len(b, s->entries_added);
    kv_rdb_save_len(b, s->groups.n);
    for (size_t i = 0; i < s->groups.n; i++) {
        const kv_sgroup *g = kv_stream_group_at(s, i);
        kv_rdb_save_string(b, g->name, g->nlen);
        kv_rdb_save_len(b, g->last_id.ms);
        kv_rdb_save_len(b, g->last_id.seq);
        kv_rdb_save_len(b, (uint64_t)g->entries_read);
        save_pel(b, &g->pel, 1);
        kv_rdb_save_len(b, g->cons.n);
        for (size_t j = 0; j < g->cons.n; j++) {
            const kv_sconsumer *c = kv_sgroup_consumer_at(g, j);
            kv_rdb_save_string(b, c->name, c->nlen);
            save_u64ms(b, c->seen_time);
            save_pel(b, &c->pel, 0);
        }
    }
    return b->oom ? KV_RDB_ENOMEM : KV_RDB_OK;
}

/* ---- loading ------------------------------------------------------------ */

static int int_at(const unsigned char *p, int64_t *v)
{
    kv_lp_val x;
    if (!p) return 0;
    kv_lp_get(p, &x);
    if (x.s) return 0;
    *v = x.ll;
    return 1;
}

/* Check one node's structure (streamValidateListpackIntegrity, deep);
 * *live gets the count of live entries. */
static int node_valid(const unsigned char *lp, const kv_sid *master, uint64_t *live)
{
    int64_t count, deleted, mnf, v;
    const unsigned char *p = kv_lp_first(lp);
    if (!int_at(p, &count) || !int_at(p = kv_lp_next(lp, p), &deleted)) return 0;
    if (!int_at(p = kv_lp_next(lp, p), &mnf) || mnf < 0) return 0;
    for (int64_t i = 0; i < mnf; i++)
        if (!(p = kv_lp_next(lp, p))) return 0;
    if (!int_at(p = kv_lp_next(lp, p), &v) || v != 0) return 0;
    int64_t seen_live = 0, seen_del = 0;
    kv_sid prev = { 0, 0 };
    int first = 1;
    while ((p = kv_lp_next(lp, p))) {
        int64_t flags, dms, dseq, nf, lpc, elems = 3;
        if (!int_at(p, &flags) || !int_at(p = kv_lp_next(lp, p), &dms) ||
            !int_at(p = kv_lp_next(lp, p), &dseq))
            return 0;
        kv_sid id = { master->ms + (uint64_t)dms, master->seq + (uint64_t)dseq };
        if (kv_sid_cmp(&id, master) < 0 || (!first && kv_sid_cmp(&id, &prev) <= 0)) return 0;
        prev = id, first = 0;
        if (flags & KV_SFLAG_SAMEFIELDS) {
            nf = mnf;
        } else {
            if (!int_at(p = kv_lp_next(lp, p), &nf) || nf < 0) return 0;
            elems++;
            nf *= 2;
        }
        for (int64_t i = 0; i < nf; i++, elems++)
            if (!(p = kv_lp_next(lp, p))) return 0;
        if (!int_at(p = kv_lp_next(lp, p), &lpc) || lpc != elems) return 0;
        if (flags & KV_SFLAG_DELETED) seen_del++;
        else seen_live++;
    }
    if (seen_live != count || seen_del != deleted) return 0;
    *live = (uint64_t)count;
    return 1;
}

static int load_ms(kv_rdb_reader *r, int64_t *ms)
{
    if (r->len - r->pos < 8) return KV_RDB_EBADFMT;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | r->p[r->pos + (size_t)i];
    r->pos += 8;
    *ms = (int64_t)v;
    return KV_RDB_OK;
}

static int load_u(kv_rdb_reader *r, uint64_t *v)
{
    int enc, rc = kv_rdb_load_len(r, v, &enc);
    return rc ? rc : enc ? KV_RDB_EBADFMT : KV_RDB_OK;
}

static int load_raw_id(kv_rdb_reader *r, kv_sid *id)
{
    if (r->len - r->pos < 16) return KV_RDB_EBADFMT;
    kv_sid_decode(r->p + r->pos, id);
    r->pos += 16;
    return KV_RDB_OK;
}

static int load_groups(kv_rdb_reader *r, kv_stream *s, int v2)
{
    uint64_t ng;
    int rc;
    if ((rc = load_u(r, &ng))) return rc;
    while (ng--) {
        kv_rdb_str name;
        kv_sid last;
        uint64_t er = (uint64_t)KV_SCG_INVALID_ENTRIES_READ, npel, ncons;
        if ((rc = kv_rdb_load_string(r, &name))) return rc;
        if ((rc = load_u(r, &last.ms)) || (rc = load_u(r, &last.seq)) ||
            (v2 && (rc = load_u(r, &er)))) {
            kv_rdb_str_free(&name);
            return rc;
        }
        if (!v2) er = (uint64_t)kv_stream_estimate_distance(s, &last);
        kv_sgroup *g = kv_stream_group_create(s, name.p, name.len, &last, (long long)er);
        kv_rdb_str_free(&name);
        if (!g) return KV_RDB_EBADFMT; /* a duplicate (or OOM) */
        if ((rc = load_u(r, &npel))) return rc;
        if (npel > (r->len - r->pos) / 17) return KV_RDB_EBADFMT;
        for (uint64_t i = 0; i < npel; i++) {
            kv_snack *nk = calloc(1, sizeof *nk);
            if (!nk) return KV_RDB_ENOMEM;
            if ((rc = load_raw_id(r, &nk->id)) || (rc = load_ms(r, &nk->delivery_time)) ||
                (rc = load_u(r, &nk->delivery_count)) ||
                (g->pel.n && kv_sid_cmp(&kv_spel_at(&g->pel, g->pel.n - 1)->id, &nk->id) >= 0 &&
                 (rc = KV_RDB_EBADFMT)) ||
                (kv_svec_insert(&g->pel, g->pel.n, &nk) < 0 && (rc = KV_RDB_ENOMEM))) {
                free(nk);
                return rc;
            }
            s->bytes += sizeof *nk + 16;
        }
        if ((rc = load_u(r, &ncons))) return rc;
        if (ncons > r->len - r->pos) return KV_RDB_EBADFMT;
        while (ncons--) {
            int64_t seen;
            uint64_t n;
            if ((rc = kv_rdb_load_string(r, &name))) return rc;
            if ((rc = load_ms(r, &seen))) {
                kv_rdb_str_free(&name);
                return rc;
            }
            kv_sconsumer *c = kv_sgroup_consumer_create(s, g, name.p, name.len, seen);
            kv_rdb_str_free(&name);
            if (!c) return KV_RDB_EBADFMT;
            if ((rc = load_u(r, &n))) return rc;
            if (n > (r->len - r->pos) / 16) return KV_RDB_EBADFMT;
            while (n--) {
                kv_sid id;
                if ((rc = load_raw_id(r, &id))) return rc;
                kv_snack *nk = kv_spel_find(&g->pel, &id);
                if (!nk || nk->consumer) return KV_RDB_EBADFMT;
                nk->consumer = c;
                if (c->pel.n && kv_sid_cmp(&kv_spel_at(&c->pel, c->pel.n - 1)->id, &id) >= 0)
                    return KV_RDB_EBADFMT;
                if (kv_svec_insert(&c->pel, c->pel.n, &nk) < 0) return KV_RDB_ENOMEM;
            }
        }
        for (size_t i = 0; i < g->pel.n; i++)
            if (!kv_spel_at(&g->pel, i)->consumer) return KV_RDB_EBADFMT;
    }
    return KV_RDB_OK;
}

static int load(kv_rdb_reader *r, int rdbtype, uint8_t *enc, void **ptr)
{
    int v2 = rdbtype == KV_RDB_TYPE_STREAM_LISTPACKS_2, rc;
    if (!v2 && rdbtype != KV_RDB_TYPE_STREAM_LISTPACKS) return KV_RDB_ENOTSUP;
    uint64_t nn, live = 0;
    if ((rc = load_u(r, &nn))) return rc;
    if (nn > (r->len - r->pos) / 2) return KV_RDB_EBADFMT;
    kv_stream *s = kv_stream_new();
    if (!s) return KV_RDB_ENOMEM;
    rc = KV_RDB_OK;
    for (uint64_t i = 0; i < nn && rc == KV_RDB_OK; i++) {
        kv_rdb_str k, l;
        if ((rc = kv_rdb_load_string(r, &k))) break;
        if (k.len != 16) {
            kv_rdb_str_free(&k);
            rc = KV_RDB_EBADFMT;
            break;
        }
        kv_snode nd;
        kv_sid_decode((const unsigned char *)k.p, &nd.master);
        kv_rdb_str_free(&k);
        if ((rc = kv_rdb_load_string(r, &l))) break;
        uint64_t n;
        size_t cnt;
        if (!kv_lp_validate((const unsigned char *)l.p, l.len, &cnt) || cnt == 0 ||
            !node_valid((const unsigned char *)l.p, &nd.master, &n) ||
            (s->nodes.n && kv_sid_cmp(&((kv_snode *)kv_svec_at(&s->nodes, s->nodes.n - 1))->master,
                                      &nd.master) >= 0)) {
            kv_rdb_str_free(&l);
            rc = KV_RDB_EBADFMT;
            break;
        }
        nd.lp = malloc(l.len);
        if (nd.lp) memcpy(nd.lp, l.p, l.len);
        kv_rdb_str_free(&l);
        if (!nd.lp || kv_svec_insert(&s->nodes, s->nodes.n, &nd) < 0) {
            free(nd.lp);
            rc = KV_RDB_ENOMEM;
            break;
        }
        s->bytes += kv_lp_bytes(nd.lp);
        live += n;
    }
    if (rc == KV_RDB_OK && !(rc = load_u(r, &s->length)) && !(rc = load_u(r, &s->last_id.ms)))
        rc = load_u(r, &s->last_id.seq);
    if (rc == KV_RDB_OK && s->length != live) rc = KV_RDB_EBADFMT;
    if (rc == KV_RDB_OK && v2) {
        if (!(rc = load_u(r, &s->first_id.ms)) && !(rc = load_u(r, &s->first_id.seq)) &&
            !(rc = load_u(r, &s->max_deleted.ms)) && !(rc = load_u(r, &s->max_deleted.seq)))
            rc = load_u(r, &s->entries_added);
    } else if (rc == KV_RDB_OK) {
        s->entries_added = s->length;
        if (s->length) kv_stream_first_valid_id(s, &s->first_id);
    }
    if (rc == KV_RDB_OK && s->length) { /* entries past last_id would break XADD */
        kv_sid maxid;
        kv_stream_last_valid_id(s, &maxid);
        if (kv_sid_cmp(&maxid, &s->last_id) > 0) rc = KV_RDB_EBADFMT;
    }
    if (rc == KV_RDB_OK) rc = load_groups(r, s, v2);
    if (rc) {
        kv_stream_free(s, KV_ENC_STREAM);
        return rc;
    }
    *enc = KV_ENC_STREAM;
    *ptr = s;
    return KV_RDB_OK;
}

static const kv_rdbobj_ops ops = { save, load, kv_stream_free };

/* Runs at startup (constructor); callable again (idempotent) by tests. */
void kv_rdb_stream_register(void);
__attribute__((constructor)) void kv_rdb_stream_register(void)
{
    static const uint8_t types[] = { KV_RDB_TYPE_STREAM_LISTPACKS, KV_RDB_TYPE_STREAM_LISTPACKS_2 };
    kv_rdbobj_register(KV_TYPE_STREAM, types, sizeof types, &ops);
}
