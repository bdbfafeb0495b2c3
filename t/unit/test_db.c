/* Unit tests for the keyspace (shard/db): string encodings and storage
 * kinds, TTL bookkeeping under random operations against a model, lazy
 * and active expiry, rename/copy, memory accounting, number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shard/db.h"

#include "testutil.h"



static kv_obj *get(kv_db_t *db, const char *k)
{
    kv_dict_entry *e = kv_db_find(db, k, strlen(k), 0);
    return e ? kv_db_obj(e) : NULL;
}

static void assert_str(const kv_obj *o, const char *v, size_t n)
{
    char buf[KV_DB_INTBUF];
    size_t len;
    const char *p = kv_db_str(o, buf, &len);
    assert_int_equal(len, n);
    assert_memory_equal(p, v, n);
    assert_int_equal(kv_db_strlen(o), n);
}

/* every TTL array slot points at an entry carrying that slot */
static void check_ttl_index(kv_db_t *db)
{
    size_t with_ttl = 0;
    for (size_t i = 0; i < db->nttl; i++) {
        kv_obj *o = kv_db_obj(db->ttl[i]);
        assert_true(o->flags & KV_OBJ_TTL);
        assert_int_equal(kv_db_ttl(o)->slot, i);
    }
    kv_dict_iter it;
    kv_dict_iter_init(&it, db->dict);
    for (kv_dict_entry *e; (e = kv_dict_iter_next(&it));)
        with_ttl += (kv_db_obj(e)->flags & KV_OBJ_TTL) != 0;
    kv_dict_iter_done(&it);
    assert_int_equal(with_ttl, db->nttl);
}

static void test_encodings(void **state)
{
    (void)state;
    kv_db_t *db = kv_db_new();
    struct { const char *v; int enc; } cases[] = {
        { "123", KV_ENC_INT },  { "-9223372036854775808", KV_ENC_INT },
        { "0", KV_ENC_INT },    { "9223372036854775808", KV_ENC_EMBSTR },
        { "012", KV_ENC_EMBSTR }, { "-0", KV_ENC_EMBSTR },
        { "+1", KV_ENC_EMBSTR }, { "", KV_ENC_EMBSTR },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", KV_ENC_EMBSTR },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", KV_ENC_RAW },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kv_db_set_str(db, "k", 1, cases[i].v, strlen(cases[i].v), 0);
        kv_obj *o = get(db, "k");
        assert_int_equal(o->enc, cases[i].enc);
        assert_int_equal(o->type, KV_TYPE_STRING);
        assert_str(o, cases[i].v, strlen(cases[i].v));
    }
    kv_db_set_str(db, "k", 1, "5", 1, KV_SET_EMBSTR);
    assert_int_equal(get(db, "k")->enc, KV_ENC_EMBSTR);
    assert_int_equal(kv_db_refcount(db, get(db, "k")), 1);
    kv_db_set_ll(db, "k", 1, 5, 0);
    assert_int_equal(kv_db_refcount(db, get(db, "k")), KV_SHARED_REFCOUNT);
    kv_db_set_ll(db, "k", 1, 10000, 0);
    assert_int_equal(kv_db_refcount(db, get(db, "k")), 1);
    /* a long value goes out of line and comes back in */
    char big[1000];
    memset(big, 'x', sizeof big);
    kv_db_set_str(db, "k", 1, big, sizeof big, 0);
    assert_int_equal(get(db, "k")->flags & KV_OBJ_STORE_MASK, KV_STORE_PTR);
    assert_str(get(db, "k"), big, sizeof big);
    kv_db_set_str(db, "k", 1, big, 200, 0);
    assert_int_equal(get(db, "k")->flags & KV_OBJ_STORE_MASK, KV_STORE_INLINE);
    assert_int_equal(get(db, "k")->enc, KV_ENC_RAW);
    assert_str(get(db, "k"), big, 200);
    assert_int_equal(kv_db_size(db), 1);
    assert_string_equal(kv_db_type_name(KV_TYPE_ZSET), "zset");
    assert_string_equal(kv_db_enc_name(KV_ENC_LISTPACK), "listpack");
    kv_db_free(db);
}

static void test_resize(void **state)
{
    (void)state;
    kv_db_t *db = kv_db_new();
    kv_dict_entry *e = kv_db_set_ll(db, "n", 1, -42, 0);
    e = kv_db_expire_set(db, e, kv_db_now_ms() + 100000);
    char *p = kv_db_str_resize(db, &e, 5); /* "-42" + 2 zero bytes */
    assert_memory_equal(p, "-42\0\0", 5);
    assert_int_equal(kv_db_obj(e)->enc, KV_ENC_RAW);
    assert_true(kv_db_expire_get(kv_db_obj(e)) > 0);
    p = kv_db_str_resize(db, &e, 300); /* inline -> heap */
    memset(p + 5, 'y', 295);
    assert_int_equal(kv_db_obj(e)->flags & KV_OBJ_STORE_MASK, KV_STORE_PTR);
    p = kv_db_str_resize(db, &e, 5000);
    assert_memory_equal(p, "-42\0\0y", 6);
    assert_int_equal(p[299], 'y');
    assert_int_equal(p[300], 0);
    assert_int_equal(kv_db_strlen(kv_db_obj(e)), 5000);
    check_ttl_index(db);
    kv_db_free(db);
}

/* Random operations on 64 keys against a model of values and TTLs. */
#define NK 64
typedef struct { int live; char v[700]; size_t n; int64_t when; int type; } model_t;

static void fake_free(void *p, uint8_t enc) { (void)p, (void)enc; }
static void *fake_dup(const void *p, uint8_t enc) { (void)enc; return (void *)(uintptr_t)p; }
static const kv_db_type_ops fake_ops = { fake_free, fake_dup, NULL };

static void test_model(void **state)
{
    (void)state;
    kv_db_register_type(KV_TYPE_HASH, &fake_ops);
    kv_db_t *db = kv_db_new();
    static model_t m[NK];
    memset(m, 0, sizeof m);
    int64_t far = kv_db_now_ms() + 10000000;
    long iters = quick() ? 20000 : 300000;
    char key[16], key2[16];
    for (long it = 0; it < iters; it++) {
        int i = (int)(rnd() % NK), j = (int)(rnd() % NK);
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(key2, sizeof key2, "key:%d", j);
        size_t kl = strlen(key), kl2 = strlen(key2);
        switch (rnd() % 10) {
        case 0: case 1: { /* set a string, maybe keeping the TTL */
            size_t n = rnd() % 4 == 0 ? rnd() % 700 : rnd() % 30;
            for (size_t x = 0; x < n; x++) m[i].v[x] = (char)('a' + rnd() % 26);
            int keep = rnd() % 2;
            if (rnd() % 4 == 0) { /* SET ... EX in one step */
                int64_t when = far + (int64_t)(rnd() % 1000);
                kv_db_set_str_ttl(db, key, kl, m[i].v, n, keep ? KV_SET_KEEPTTL : 0, when);
                m[i].when = when;
            } else {
                kv_db_set_str(db, key, kl, m[i].v, n, keep ? KV_SET_KEEPTTL : 0);
                if (!m[i].live || !keep) m[i].when = -1;
            }
            m[i].live = 1, m[i].n = n, m[i].type = KV_TYPE_STRING;
            break;
        }
        case 2: { /* an integer */
            long long v = (long long)(rnd() % 2000000) - 1000000;
            kv_db_set_ll(db, key, kl, v, 0);
            m[i].n = (size_t)snprintf(m[i].v, sizeof m[i].v, "%lld", v);
            m[i].live = 1, m[i].when = -1, m[i].type = KV_TYPE_STRING;
            break;
        }
        case 3: { /* expire set / clear */
            kv_dict_entry *e = kv_db_find(db, key, kl, 0);
            assert_int_equal(e != NULL, m[i].live);
            if (!e) break;
            if (rnd() % 3) {
                m[i].when = far + (int64_t)(rnd() % 1000);
                kv_db_expire_set(db, e, m[i].when);
            } else {
                kv_db_expire_clear(db, e);
                m[i].when = -1;
            }
            break;
        }
        case 4: /* delete */
            assert_int_equal(kv_db_delete(db, key, kl), m[i].live);
            m[i].live = 0;
            break;
        case 5: { /* append */
            kv_dict_entry *e = kv_db_find(db, key, kl, 0);
            if (!e || m[i].type != KV_TYPE_STRING || m[i].n > 600) break;
            size_t add = rnd() % 100;
            char *p = kv_db_str_resize(db, &e, m[i].n + add);
            for (size_t x = 0; x < add; x++) p[m[i].n + x] = m[i].v[m[i].n + x] = (char)('A' + x % 26);
            m[i].n += add;
            break;
        }
        case 6: { /* rename */
            kv_dict_entry *e = kv_db_find(db, key, kl, 0);
            if (!e || i == j) break;
            kv_db_rename(db, e, key2, kl2);
            m[j] = m[i];
            m[i].live = 0;
            break;
        }
        case 7: { /* copy */
            kv_dict_entry *e = kv_db_find(db, key, kl, 0);
            if (!e || i == j) break;
            assert_non_null(kv_db_copy(db, e, key2, kl2));
            m[j] = m[i];
            break;
        }
        case 8: { /* a collection with a pointer payload */
            if (m[i].live) kv_db_delete(db, key, kl);
            kv_db_add_ptr(db, key, kl, KV_TYPE_HASH, KV_ENC_HT, (void *)(uintptr_t)0x1000);
            m[i].live = 1, m[i].when = -1, m[i].type = KV_TYPE_HASH, m[i].n = 0;
            break;
        }
        default: { /* check one key */
            kv_dict_entry *e = kv_db_find(db, key, kl, 0);
            assert_int_equal(e != NULL, m[i].live);
            if (!e) break;
            kv_obj *o = kv_db_obj(e);
            assert_int_equal(o->type, m[i].type);
            assert_int_equal(kv_db_expire_get(o), m[i].when);
            if (o->type == KV_TYPE_STRING) assert_str(o, m[i].v, m[i].n);
            else assert_ptr_equal(kv_db_ptr(o), (void *)(uintptr_t)0x1000);
        }
        }
        if (it % 997 == 0) check_ttl_index(db);
    }
    check_ttl_index(db);
    size_t live = 0;
    for (int i = 0; i < NK; i++) live += m[i].live;
    assert_int_equal(kv_db_size(db), live);
    kv_db_flush(db);
    assert_int_equal(kv_db_size(db), 0);
    assert_int_equal(db->mem_values, 0);
    assert_int_equal(db->nttl, 0);
    kv_db_free(db);
}

static void test_mem_accounting(void **state)
{
    (void)state;
    kv_db_t *db = kv_db_new();
    char k[32], v[400];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "k%d", i);
        kv_dict_entry *e = kv_db_set_str(db, k, (size_t)n, v, (size_t)(i % 400), 0);
        if (i % 3 == 0) kv_db_expire_set(db, e, kv_db_now_ms() + 100000);
    }
    assert_true(db->mem_values > 5000 * 16);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "k%d", i);
        if (i % 2) {
            kv_dict_entry *e = kv_db_find(db, k, (size_t)n, 0);
            kv_db_str_resize(db, &e, 600);
            kv_db_expire_clear(db, e);
        }
        assert_int_equal(kv_db_delete(db, k, (size_t)n), 1);
    }
    assert_int_equal(db->mem_values, 0);
    assert_int_equal(kv_db_size(db), 0);
    kv_db_free(db);
}

static void test_expiry(void **state)
{
    (void)state;
    kv_db_t *db = kv_db_new();
    int64_t now = kv_db_now_ms();
    char k[32];
    int n_vol = quick() ? 2000 : 20000;
    for (int i = 0; i < n_vol; i++) {
        int n = snprintf(k, sizeof k, "vol:%d", i);
        kv_dict_entry *e = kv_db_set_str(db, k, (size_t)n, "x", 1, 0);
        kv_db_expire_set(db, e, i % 2 ? now - 1 : now + 1000000);
    }
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(k, sizeof k, "keep:%d", i);
        kv_db_set_ll(db, k, (size_t)n, i, 0);
    }
    /* lazy: an expired key is gone on lookup */
    assert_null(kv_db_find(db, "vol:1", 5, 0));
    assert_non_null(kv_db_find(db, "vol:0", 5, 0));
    assert_int_equal(kv_db_delete(db, "vol:3", 5), 0); /* expired: DEL says 0 */
    /* KEEPTTL on an expired key starts a fresh key */
    kv_dict_entry *e = kv_db_set_str(db, "vol:5", 5, "y", 1, KV_SET_KEEPTTL);
    assert_int_equal(kv_db_expire_get(kv_db_obj(e)), -1);
    /* active: cycles collect until under ~10% of the volatile keys are
     * stale (Redis's acceptable share); the live half stays */
    for (int r = 0; r < 1000; r++) kv_db_active_expire_cycle(db, 100000);
    assert_true(db->nttl >= (size_t)n_vol / 2);
    assert_true(db->nttl - (size_t)n_vol / 2 < (size_t)n_vol / 2 / 8);
    check_ttl_index(db);
    for (int i = 1; i < n_vol; i += 2) { /* lookups take the rest */
        int n = snprintf(k, sizeof k, "vol:%d", i);
        if (i != 5) assert_null(kv_db_find(db, k, (size_t)n, 0));
    }
    assert_int_equal(db->nttl, n_vol / 2);
    assert_int_equal(kv_db_size(db), (size_t)n_vol / 2 + 1000 + 1);
    check_ttl_index(db);
    kv_db_cron(db, 10);
    kv_db_free(db);
}

static void test_parse(void **state)
{
    (void)state;
    long long v;
    assert_true(kv_str2ll("0", 1, &v) && v == 0);
    assert_true(kv_str2ll("-9223372036854775808", 20, &v) && v == INT64_MIN);
    assert_true(kv_str2ll("9223372036854775807", 19, &v) && v == INT64_MAX);
    assert_false(kv_str2ll("9223372036854775808", 19, &v));
    assert_false(kv_str2ll("-9223372036854775809", 20, &v));
    assert_false(kv_str2ll("", 0, &v));
    assert_false(kv_str2ll("-", 1, &v));
    assert_false(kv_str2ll("-0", 2, &v));
    assert_false(kv_str2ll("01", 2, &v));
    assert_false(kv_str2ll("+1", 2, &v));
    assert_false(kv_str2ll(" 1", 2, &v));
    assert_false(kv_str2ll("1 ", 2, &v));
    assert_false(kv_str2ll("1\0", 2, &v));
    long double d;
    assert_true(kv_str2ld("1.5", 3, &d) && d == 1.5L);
    assert_true(kv_str2ld("5.0e3", 5, &d) && d == 5000.0L);
    assert_true(kv_str2ld("inf", 3, &d));
    assert_false(kv_str2ld("nan", 3, &d));
    assert_false(kv_str2ld(" 1", 2, &d));
    assert_false(kv_str2ld("1 ", 2, &d));
    assert_false(kv_str2ld("1\0" "2", 3, &d));
    assert_false(kv_str2ld("1e5000", 6, &d));
    assert_false(kv_str2ld("", 0, &d));
}

int main(void)
{
    kv_dict_set_seed(0x6b657679);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_mem_accounting),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
