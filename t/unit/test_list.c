/* Unit tests for the list value (shard/quicklist) and its RDB codec
 * (persist/rdb_list): randomized runs against a plain array model with
 * every node fill and PLAIN nodes, structural invariants after every
 * step, node layouts and a DUMP captured from redis-server 7.0.15, RDB
 * round trips, and corrupt payloads that must fail cleanly (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "persist/rdbobj.h"
#include "shard/quicklist.h"

#include "testutil.h"

void kv_list_register(void);



/* ---- model --------------------------------------------------------------- */

typedef struct { char *p; size_t n; } mstr;
typedef struct { mstr *v; size_t n, cap; } model;

static void m_insert(model *m, size_t at, const char *s, size_t n)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
    }
    memmove(m->v + at + 1, m->v + at, (m->n - at) * sizeof(*m->v));
    m->v[at].p = malloc(n ? n : 1);
    memcpy(m->v[at].p, s, n);
    m->v[at].n = n;
    m->n++;
}

static void m_delete(model *m, size_t at, size_t k)
{
    for (size_t i = at; i < at + k; i++) free(m->v[i].p);
    memmove(m->v + at, m->v + at + k, (m->n - at - k) * sizeof(*m->v));
    m->n -= k;
}

static void m_free(model *m)
{
    m_delete(m, 0, m->n);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

/* A value: integers of every listpack width, short, medium, long strings. */
static size_t gen(char *buf)
{
    static const long long ints[] = { 0, 1, -1, 127, 128, -4096, 4095, 4096, 32767, -32769,
                                      8388607, 8388608, 2147483648LL, -9223372036854775807LL - 1 };
    switch (rnd() % 6) {
    case 0: return (size_t)sprintf(buf, "%lld", ints[rnd() % 14]);
    case 1: return (size_t)sprintf(buf, "%lld", (long long)(rnd() % 2000000) - 1000000);
    case 2: {
        size_t n = rnd() % 70;
        memset(buf, 'a' + (int)(rnd() % 26), n);
        return n;
    }
    case 3:
    case 4: {
        size_t n = 60 + rnd() % 400;
        memset(buf, 'a' + (int)(rnd() % 26), n);
        return n;
    }
    default: {
        size_t n = 3000 + rnd() % 3000;
        memset(buf, 'A' + (int)(rnd() % 26), n);
        return n;
    }
    }
}

static int val_eq(const kv_lp_val *v, const mstr *m)
{
    char buf[KV_LP_INTBUF];
    size_t n;
    const char *s = kv_lp_val_str(v, buf, &n);
    return n == m->n && memcmp(s, m->p, n) == 0;
}

/* Every invariant of the structure, and equality with the model. */
static void check(const kv_qlist *ql, const model *m)
{
    assert_int_equal(kv_ql_count(ql), m->n);
    uint64_t cnt = 0, bytes = 0;
    const kv_qlnode *prev = NULL;
    for (const kv_qlnode *n = ql->head; n; prev = n, n = n->next) {
        assert_ptr_equal(n->prev, prev);
        assert_true(n->count > 0);
        bytes += sizeof(*n) + n->sz + (n->sep ? sizeof(void *) : 0);
        cnt += n->count;
        if (n->plain) {
            assert_int_equal(n->count, 1);
            continue;
        }
        size_t c;
        assert_int_equal(kv_lp_bytes(kv_qlnode_lp(n)), n->sz);
        assert_true(kv_lp_validate(kv_qlnode_lp(n), n->sz, &c));
        assert_int_equal(c, n->count);
    }
    assert_ptr_equal(ql->tail, prev);
    assert_int_equal(cnt, m->n);
    assert_int_equal(bytes, ql->bytes);
    kv_ql_pos pos;
    size_t i = 0;
    if (kv_ql_index(ql, 0, &pos)) {
        do {
            kv_lp_val v;
            kv_ql_get(&pos, &v);
            assert_true(i < m->n && val_eq(&v, &m->v[i]));
            i++;
        } while (kv_ql_next(&pos));
    }
    assert_int_equal(i, m->n);
}

static void run_model(int fill, size_t threshold, int steps)
{
    static char buf[8192];
    model m = { 0 };
    kv_list_set_max_listpack_size(fill);
    kv_list_set_packed_threshold(threshold);
    kv_qlist *ql = kv_ql_new();
    for (int step = 0; step < steps; step++) {
        size_t n = gen(buf);
        kv_ql_pos pos;
        unsigned op = (unsigned)(rnd() % 10);
        if (m.n == 0 || op < 3) {
            int tail = (int)(rnd() % 2);
            kv_ql_push(ql, tail ? KV_QL_TAIL : KV_QL_HEAD, buf, n);
            m_insert(&m, tail ? m.n : 0, buf, n);
        } else if (op == 3) {
            size_t at = rnd() % m.n;
            int after = (int)(rnd() % 2);
            assert_true(kv_ql_index(ql, (long long)at, &pos));
            kv_ql_insert(ql, &pos, after, buf, n);
            m_insert(&m, at + (size_t)after, buf, n);
        } else if (op == 4) {
            size_t at = rnd() % m.n;
            assert_true(kv_ql_index(ql, -(long long)(m.n - at), &pos));
            kv_ql_replace(ql, &pos, buf, n);
            m_delete(&m, at, 1);
            m_insert(&m, at, buf, n);
        } else if (op == 5) {
            /* delete a run going forward or backward, as LREM does */
            size_t at = rnd() % m.n, k = 1 + rnd() % 4;
            int fwd = (int)(rnd() % 2);
            assert_true(kv_ql_index(ql, (long long)at, &pos));
            while (k--) {
                kv_lp_val v;
                kv_ql_get(&pos, &v);
                assert_true(val_eq(&v, &m.v[at]));
                int more = kv_ql_delete(ql, &pos, fwd);
                m_delete(&m, at, 1);
                if (!fwd) {
                    if (at == 0) break;
                    at--;
                }
                assert_int_equal(more, fwd ? at < m.n : 1);
                if (!more) break;
            }
        } else if (op == 6) {
            size_t at = rnd() % m.n, k = rnd() % 50;
            kv_ql_del_range(ql, at, k);
            m_delete(&m, at, k < m.n - at ? k : m.n - at);
        } else if (op == 7) {
            long long idx = (long long)(rnd() % (2 * m.n + 2)) - (long long)m.n - 1;
            int ok = kv_ql_index(ql, idx, &pos);
            assert_int_equal(ok, idx >= -(long long)m.n && idx < (long long)m.n);
            if (ok) {
                kv_lp_val v;
                kv_ql_get(&pos, &v);
                assert_true(val_eq(&v, &m.v[idx < 0 ? (long long)m.n + idx : idx]));
            }
        } else {
            int tail = (int)(rnd() % 2);
            assert_true(kv_ql_index(ql, tail ? -1 : 0, &pos));
            kv_ql_delete(ql, &pos, 1);
            m_delete(&m, tail ? m.n - 1 : 0, 1);
        }
        if (step % 16 == 0 || m.n < 50) check(ql, &m);
        if (step % 500 == 0) {
            kv_qlist *d = kv_ql_dup(ql);
            check(d, &m);
            kv_ql_free(d);
        }
    }
    check(ql, &m);
    kv_ql_free(ql);
    m_free(&m);
    kv_list_set_max_listpack_size(-2);
    kv_list_set_packed_threshold(0);
}

static void test_model(void **state)
{
    (void)state;
    int steps = quick() ? 3000 : 30000;
    static const int fills[] = { -2, -1, -5, -3, 5, 1, 0, 100 };
    for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++) run_model(fills[i], 0, steps);
    /* PLAIN nodes: every value of 300+ bytes gets its own node */
    run_model(-2, 300, steps);
    run_model(4, 64, steps);
}

/* ---- layouts and payloads captured from redis-server 7.0.15 --------------- */

static kv_obj *wrap(kv_qlist *ql, unsigned char *store)
{
    kv_obj *o = (kv_obj *)store;
    memset(store, 0, 16);
    o->type = KV_TYPE_LIST, o->enc = KV_ENC_QUICKLIST, o->flags = KV_STORE_PTR;
    *(void **)(store + 8) = ql;
    return o;
}

static void test_layout(void **state)
{
    (void)state;
    kv_list_register();
    /* RPUSH 2000 x 10-byte strings: nodes of 681, 681, 638 (DUMP) */
    kv_qlist *ql = kv_ql_new();
    for (int i = 0; i < 2000; i++) kv_ql_push(ql, KV_QL_TAIL, "aaaaaaaaaa", 10);
    assert_int_equal(ql->head->count, 681);
    assert_int_equal(ql->head->sz, 8179);
    assert_int_equal(ql->head->next->count, 681);
    assert_int_equal(ql->tail->count, 638);
    kv_ql_free(ql);
    /* LPUSH 200 x 100 bytes: 42, 79, 79 */
    char big[100];
    memset(big, 'a', sizeof(big));
    ql = kv_ql_new();
    for (int i = 0; i < 200; i++) kv_ql_push(ql, KV_QL_HEAD, big, sizeof(big));
    assert_int_equal(ql->head->count, 42);
    assert_int_equal(ql->head->next->count, 79);
    assert_int_equal(ql->tail->count, 79);
    kv_ql_free(ql);
    /* RPUSH l a b c 1 2 300 -5 100000; DUMP l */
    static const unsigned char want[] =
        "\x12\x01\x02\x1f\x1f\x00\x00\x00\x08\x00\x81\x61\x02\x81\x62\x02\x81\x63\x02\x01\x01\x02"
        "\x01\xc1\x2c\x02\xdf\xfb\x02\xf2\xa0\x86\x01\x04\xff\x0a\x00\xbc\xe7\x71\xf1\x57\xa7\xa3"
        "\xc2";
    static const char *el[] = { "a", "b", "c", "1", "2", "300", "-5", "100000" };
    ql = kv_ql_new();
    for (int i = 0; i < 8; i++) kv_ql_push(ql, KV_QL_TAIL, el[i], strlen(el[i]));
    unsigned char store[16];
    kv_rdb_buf b;
    kv_rdb_buf_init(&b);
    assert_int_equal(kv_rdbobj_dump(&b, wrap(ql, store)), KV_RDB_OK);
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.p, want, b.len);
    /* round trip */
    kv_rdbobj_value v;
    assert_int_equal(kv_rdbobj_verify(b.p, b.len), 0);
    assert_int_equal(kv_rdbobj_load_payload(b.p, b.len, &v), KV_RDB_OK);
    assert_int_equal(v.type, KV_TYPE_LIST);
    kv_rdb_buf b2;
    kv_rdb_buf_init(&b2);
    assert_int_equal(kv_rdbobj_dump(&b2, wrap(v.ptr, store)), KV_RDB_OK);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.p, b.p, b.len);
    kv_rdbobj_value_free(&v);
    kv_rdb_buf_free(&b2);
    kv_rdb_buf_free(&b);
    kv_ql_free(ql);
}

/* Random lists dumped and loaded back; then truncated and bit-flipped
 * payloads (CRC fixed up so the decoder sees them) must not crash. */
static void test_rdb_fuzz(void **state)
{
    (void)state;
    kv_list_register();
    static char buf[8192];
    unsigned char store[16];
    int rounds = quick() ? 40 : 300;
    for (int r = 0; r < rounds; r++) {
        kv_qlist *ql = kv_ql_new();
        int n = 1 + (int)(rnd() % 400);
        for (int i = 0; i < n; i++) {
            size_t len = gen(buf);
            kv_ql_push(ql, (int)(rnd() % 2), buf, len);
        }
        kv_rdb_buf b;
        kv_rdb_buf_init(&b);
        assert_int_equal(kv_rdbobj_dump(&b, wrap(ql, store)), KV_RDB_OK);
        kv_rdbobj_value v;
        assert_int_equal(kv_rdbobj_load_payload(b.p, b.len, &v), KV_RDB_OK);
        assert_int_equal(kv_ql_count(v.ptr), (uint64_t)n);
        kv_rdbobj_value_free(&v);
        for (int k = 0; k < 20; k++) {
            size_t len = b.len - 10;
            unsigned char *c = malloc(len + 10);
            memcpy(c, b.p, len);
            if (k % 2) len = 1 + rnd() % len;
            else for (int f = 0; f < 3; f++) c[1 + rnd() % (len - 1)] ^= (unsigned char)(1 << (rnd() % 8));
            kv_rdb_buf p;
            kv_rdb_buf_init(&p);
            kv_rdb_buf_append(&p, c, len);
            kv_rdb_payload_finish(&p, 0);
            if (kv_rdbobj_load_payload(p.p, p.len, &v) == KV_RDB_OK) {
                /* accepted: it must be a well-formed list */
                kv_ql_pos pos;
                uint64_t cnt = 0;
                if (kv_ql_index(v.ptr, 0, &pos)) do cnt++; while (kv_ql_next(&pos));
                assert_int_equal(cnt, kv_ql_count(v.ptr));
                kv_rdbobj_value_free(&v);
            }
            kv_rdb_buf_free(&p);
            free(c);
        }
        kv_rdb_buf_free(&b);
        kv_ql_free(ql);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_rdb_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
