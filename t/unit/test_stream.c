/* Unit tests for the stream value (shard/stream_type, stream_cg) and its
 * RDB codec: randomized appends (explicit IDs, varying field sets), XDEL,
 * exact and approximate trims against a sorted-array model, forward and
 * reverse iteration over ranges, small node limits so many nodes exist,
 * PEL operations, and RDB round trips plus corrupt input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "persist/rdbobj.h"
#include "shard/stream_type.h"

#include "testutil.h"

#define MAXE 4000
typedef struct {
    kv_sid id[MAXE];
    int nf[MAXE];
    int val[MAXE];
    size_t n;
} model_t;

static void entry_args(int nf, int val, kv_sarg *av, char bufs[][24])
{
    for (int i = 0; i < nf; i++) {
        /* the field set varies with nf only, so most entries share fields */
        snprintf(bufs[2 * i], 24, "f%d", i);
        snprintf(bufs[2 * i + 1], 24, i % 2 ? "v%d" : "%d", val + i);
        av[2 * i].p = bufs[2 * i], av[2 * i].len = strlen(bufs[2 * i]);
        av[2 * i + 1].p = bufs[2 * i + 1], av[2 * i + 1].len = strlen(bufs[2 * i + 1]);
    }
}

static void check_entry(kv_siter *it, int64_t nf, int mnf, int val)
{
    assert_int_equal(nf, mnf);
    for (int i = 0; i < mnf; i++) {
        kv_lp_val f, v;
        char b1[KV_LP_INTBUF], b2[KV_LP_INTBUF], e1[24], e2[24];
        size_t l1, l2;
        kv_siter_field(it, &f, &v);
        const char *fs = kv_lp_val_str(&f, b1, &l1), *vs = kv_lp_val_str(&v, b2, &l2);
        snprintf(e1, 24, "f%d", i);
        snprintf(e2, 24, i % 2 ? "v%d" : "%d", val + i);
        assert_int_equal(l1, strlen(e1));
        assert_memory_equal(fs, e1, l1);
        assert_int_equal(l2, strlen(e2));
        assert_memory_equal(vs, e2, l2);
    }
}

static void check_range(kv_stream *s, model_t *m, kv_sid *a, kv_sid *b, int rev)
{
    kv_siter it;
    kv_sid id;
    int64_t nf;
    size_t lo = 0, hi = m->n; /* model indexes within [a, b] */
    while (lo < m->n && a && kv_sid_cmp(&m->id[lo], a) < 0) lo++;
    while (hi > lo && b && kv_sid_cmp(&m->id[hi - 1], b) > 0) hi--;
    kv_siter_start(&it, s, a, b, rev);
    for (size_t k = 0; k < hi - lo; k++) {
        size_t i = rev ? hi - 1 - k : lo + k;
        assert_true(kv_siter_next(&it, &id, &nf));
        assert_int_equal(kv_sid_cmp(&id, &m->id[i]), 0);
        check_entry(&it, nf, m->nf[i], m->val[i]);
    }
    assert_false(kv_siter_next(&it, &id, &nf));
}

static void check_all(kv_stream *s, model_t *m)
{
    assert_int_equal(s->length, m->n);
    check_range(s, m, NULL, NULL, 0);
    check_range(s, m, NULL, NULL, 1);
    if (m->n) {
        kv_sid a = m->id[rnd() % m->n], b = m->id[rnd() % m->n];
        if (kv_sid_cmp(&a, &b) > 0) {
            kv_sid t = a;
            a = b, b = t;
        }
        check_range(s, m, &a, &b, 0);
        check_range(s, m, &a, &b, 1);
        assert_int_equal(kv_sid_cmp(&s->first_id, &m->id[0]), 0);
    }
}

static kv_stream *roundtrip(kv_stream *s)
{
    struct {
        kv_obj o;
        void *p;
    } box = { { KV_TYPE_STREAM, KV_ENC_STREAM, KV_STORE_PTR, 0, 0 }, s };
    kv_rdb_buf b;
    kv_rdb_buf_init(&b);
    assert_int_equal(kv_rdbobj_save(&b, &box.o), KV_RDB_OK);
    kv_rdb_reader r;
    kv_rdbobj_value v;
    kv_rdb_reader_init(&r, b.p, b.len);
    assert_int_equal(kv_rdbobj_load(&r, &v), KV_RDB_OK);
    assert_int_equal(v.type, KV_TYPE_STREAM);
    for (size_t cut = 0; cut < b.len; cut += 1 + b.len / 40) {
        kv_rdbobj_value w;
        kv_rdb_reader_init(&r, b.p, cut);
        if (kv_rdbobj_load(&r, &w) == KV_RDB_OK) kv_rdbobj_value_free(&w);
    }
    for (int i = 0; i < 20; i++) {
        kv_rdbobj_value w;
        size_t at = rnd() % b.len;
        unsigned char old = b.p[at];
        b.p[at] ^= (unsigned char)(1u << (rnd() % 8));
        kv_rdb_reader_init(&r, b.p, b.len);
        if (kv_rdbobj_load(&r, &w) == KV_RDB_OK) {
            kv_siter it; /* whatever loaded must iterate safely */
            kv_sid id;
            int64_t nf;
            kv_siter_start(&it, w.ptr, NULL, NULL, (int)(rnd() % 2));
            while (kv_siter_next(&it, &id, &nf))
                for (int64_t k = 0; k < nf; k++) {
                    kv_lp_val f, x;
                    kv_siter_field(&it, &f, &x);
                }
            kv_rdbobj_value_free(&w);
        }
        b.p[at] = old;
    }
    kv_rdb_buf_free(&b);
    return v.ptr;
}

static void test_random(void **state)
{
    (void)state;
    void kv_rdb_stream_register(void);
    kv_rdb_stream_register();
    static model_t m;
    int rounds = quick() ? 6000 : 60000;
    for (int cfg = 0; cfg < 3; cfg++) {
        kv_stream_set_node_max_entries(cfg == 0 ? 100 : cfg == 1 ? 5 : 0);
        kv_stream_set_node_max_bytes(cfg == 2 ? 200 : 4096);
        memset(&m, 0, sizeof m);
        kv_stream *s = kv_stream_new();
        uint64_t ms = 1;
        for (int op = 0; op < rounds; op++) {
            unsigned r = (unsigned)(rnd() % 100);
            if (r < 60 && m.n < MAXE) {
                int nf = 1 + (int)(rnd() % 3), val = (int)(rnd() % 100000);
                kv_sarg av[6];
                char bufs[6][24];
                entry_args(nf, val, av, bufs);
                kv_sid id = { ms, rnd() % 3 }, got;
                if (rnd() % 4 == 0) ms++;
                int seq_given = (int)(rnd() % 2);
                int rc = kv_stream_append(s, av, nf, &got, &id, seq_given);
                if (rc == 0) {
                    assert_true(kv_sid_cmp(&got, m.n ? &m.id[m.n - 1] : &got) >= 0);
                    m.id[m.n] = got, m.nf[m.n] = nf, m.val[m.n] = val, m.n++;
                } else {
                    assert_true(seq_given ? kv_sid_cmp(&id, &s->last_id) <= 0 : id.ms < s->last_id.ms);
                }
            } else if (r < 85 && m.n) {
                size_t i = rnd() % m.n;
                kv_sid id = m.id[i];
                assert_int_equal(kv_stream_delete(s, &id), 1);
                assert_int_equal(kv_stream_delete(s, &id), 0);
                memmove(&m.id[i], &m.id[i + 1], (m.n - i - 1) * sizeof m.id[0]);
                memmove(&m.nf[i], &m.nf[i + 1], (m.n - i - 1) * sizeof m.nf[0]);
                memmove(&m.val[i], &m.val[i + 1], (m.n - i - 1) * sizeof m.val[0]);
                m.n--;
                if (m.n == 0) s->first_id.ms = s->first_id.seq = 0;
                else kv_stream_first_valid_id(s, &s->first_id);
            } else if (r < 90) {
                kv_strim t = { KV_TRIM_MAXLEN, 0, (long long)(m.n * 3 / 4), 0, { 0, 0 } };
                if (rnd() % 2) {
                    t.strategy = KV_TRIM_MINID;
                    t.minid = m.n ? m.id[rnd() % m.n] : (kv_sid){ 0, 0 };
                }
                t.approx = (int)(rnd() % 2);
                size_t before = m.n;
                long long del = kv_stream_trim(s, &t);
                size_t drop = (size_t)del;
                assert_true(drop <= before);
                if (!t.approx) { /* exact: the model says how many go */
                    size_t want = 0;
                    if (t.strategy == KV_TRIM_MAXLEN)
                        want = before > (size_t)t.maxlen ? before - (size_t)t.maxlen : 0;
                    else
                        while (want < before && kv_sid_cmp(&m.id[want], &t.minid) < 0) want++;
                    assert_int_equal(drop, want);
                }
                memmove(m.id, m.id + drop, (m.n - drop) * sizeof m.id[0]);
                memmove(m.nf, m.nf + drop, (m.n - drop) * sizeof m.nf[0]);
                memmove(m.val, m.val + drop, (m.n - drop) * sizeof m.val[0]);
                m.n -= drop;
            }
            if (op % 499 == 0) check_all(s, &m);
            if (op % 2999 == 0) {
                kv_stream *c = roundtrip(s);
                check_all(c, &m);
                kv_stream_free(s, KV_ENC_STREAM);
                s = c;
                kv_stream *d = kv_stream_dup(s, KV_ENC_STREAM);
                check_all(d, &m);
                kv_stream_free(d, KV_ENC_STREAM);
            }
        }
        check_all(s, &m);
        kv_stream_free(s, KV_ENC_STREAM);
    }
    kv_stream_set_node_max_entries(100);
    kv_stream_set_node_max_bytes(4096);
}

/* Groups, consumers and PELs: random adds/moves/acks against counts. */
static void test_groups(void **state)
{
    (void)state;
    kv_stream *s = kv_stream_new();
    kv_sid z = { 0, 0 };
    assert_non_null(kv_stream_group_create(s, "g2", 2, &z, -1));
    assert_non_null(kv_stream_group_create(s, "g", 1, &z, -1));
    assert_null(kv_stream_group_create(s, "g", 1, &z, -1));
    assert_string_equal(kv_stream_group_at(s, 0)->name, "g"); /* a prefix first */
    kv_sgroup *g = kv_stream_group(s, "g", 1);
    kv_sconsumer *c[3];
    c[0] = kv_sgroup_consumer_create(s, g, "bob", 3, 0);
    c[1] = kv_sgroup_consumer_create(s, g, "al", 2, 0);
    c[2] = kv_sgroup_consumer_create(s, g, "alice", 5, 0);
    assert_null(kv_sgroup_consumer_create(s, g, "al", 2, 0));
    assert_ptr_equal(kv_sgroup_consumer_at(g, 0), c[1]);
    int n = quick() ? 3000 : 20000;
    static unsigned char owner[20000];
    memset(owner, 0, sizeof owner);
    for (int op = 0; op < n * 3; op++) {
        kv_sid id = { (uint64_t)(rnd() % (uint64_t)n), 0 };
        kv_snack *nk = kv_spel_find(&g->pel, &id);
        int who = (int)(rnd() % 3);
        if (!nk) {
            assert_int_equal(owner[id.ms], 0);
            assert_non_null(kv_sgroup_nack_add(s, g, c[who], &id, 1));
            owner[id.ms] = (unsigned char)(who + 1);
        } else if (rnd() % 2) {
            kv_sgroup_nack_move(nk, c[who]);
            owner[id.ms] = (unsigned char)(who + 1);
        } else {
            kv_sgroup_nack_del(s, g, nk);
            owner[id.ms] = 0;
        }
    }
    size_t tot = 0, per[3] = { 0, 0, 0 };
    for (int i = 0; i < n; i++)
        if (owner[i]) tot++, per[owner[i] - 1]++;
    assert_int_equal(g->pel.n, tot);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(c[k]->pel.n, per[k]);
        for (size_t i = 1; i < c[k]->pel.n; i++)
            assert_true(kv_sid_cmp(&kv_spel_at(&c[k]->pel, i - 1)->id,
                                   &kv_spel_at(&c[k]->pel, i)->id) < 0);
    }
    kv_stream *r = roundtrip(s);
    kv_sgroup *rg = kv_stream_group(r, "g", 1);
    assert_int_equal(rg->pel.n, tot);
    assert_int_equal(kv_sgroup_consumer(rg, "bob", 3)->pel.n, per[0]);
    kv_stream_free(r, KV_ENC_STREAM);
    assert_int_equal(kv_sgroup_consumer_delete(s, g, c[0]), per[0]);
    assert_int_equal(g->pel.n, tot - per[0]);
    assert_int_equal(kv_stream_group_destroy(s, "g", 1), 1);
    assert_int_equal(kv_stream_group_destroy(s, "g", 1), 0);
    kv_stream_free(s, KV_ENC_STREAM);
}

int main(void)
{
    rs = 0x9E3779B97F4A7C15ULL;   /* this file's seed, as before testutil.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
