/* Unit tests for whole RDB files (persist/rdb_file): round trip of every
 * type in small and large encodings with TTLs, the file's layout and CRC,
 * every opcode Redis 7.0 writes, and torn / corrupted files: every prefix
 * and thousands of random corruptions must fail cleanly with an offset,
 * never crash (make test runs this under ASan + UBSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/crc64.h"
#include "persist/rdb_file.h"
#include "shard/hash_type.h"
#include "shard/set_type.h"
#include "shard/zset_type.h"

void kv_rdb_hash_register(void);
void kv_rdb_set_register(void);
void kv_rdb_zset_register(void);
void kv_list_register(void);

#include "testutil.h"

static void setup_types(void)
{
    /* Pull the type modules (and their constructors) out of the archive. */
    static void *volatile keep[3];
    keep[0] = (void *) kv_hash_free;
    keep[1] = (void *) kv_set_free;
    keep[2] = (void *) kv_zsm_new;
    kv_rdb_hash_register();
    kv_rdb_set_register();
    kv_rdb_zset_register();
    kv_list_register();
    assert_non_null(keep[0]);
}

/* ---- building values from plain RDB encodings ------------------------- */

static void put_str(kv_rdb_buf *b, const char *s) { kv_rdb_save_string(b, s, strlen(s)); }

static void finish_import(kv_db_t *db, const char *key, kv_rdb_buf *b, int64_t ttl)
{
    kv_rdb_payload_finish(b, 0);
    assert_int_equal(kv_rdbobj_import(db, key, strlen(key), b->p, b->len, ttl), KV_RDB_OK);
    kv_rdb_buf_free(b);
}

/* type 1 (list), 2 (set), 4 (hash), 5 (zset2) with n generated members */
static void make(kv_db_t *db, const char *key, int type, int n, int ints, int64_t ttl)
{
    kv_rdb_buf b;
    char m[64], v[64];
    unsigned char t = (unsigned char) type;
    kv_rdb_buf_init(&b);
    kv_rdb_buf_append(&b, &t, 1);
    kv_rdb_save_len(&b, (uint64_t) n);
    for (int i = 0; i < n; i++) {
        if (ints) snprintf(m, sizeof(m), "%d", i * 7 - 3);
        else snprintf(m, sizeof(m), "member-%d-%.*s", i, i % 20, "xxxxxxxxxxxxxxxxxxxxxxxx");
        put_str(&b, m);
        if (type == 4) {
            snprintf(v, sizeof(v), "value%d", i);
            put_str(&b, v);
        } else if (type == 5) {
            double d = i * 1.25 - 10;
            kv_rdb_buf_append(&b, &d, 8);
        }
    }
    finish_import(db, key, &b, ttl);
}

static void make_str(kv_db_t *db, const char *key, const char *val, size_t len, int64_t ttl)
{
    kv_rdb_buf b;
    unsigned char t = 0;
    kv_rdb_buf_init(&b);
    kv_rdb_buf_append(&b, &t, 1);
    kv_rdb_save_string(&b, val, len);
    finish_import(db, key, &b, ttl);
}

static const char *const keys[] = {
    "s_int", "s_short", "s_lzf", "s_bin", "s_ttl", "l_small", "l_big", "set_int", "set_str", "set_big",
    "z_small", "z_big", "h_small", "h_big", "h_ttl", "",
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static kv_db_t *sample_db(int64_t future)
{
    kv_db_t *db = kv_db_new();
    char big[300], bin[256];
    memset(big, 'a', sizeof(big));
    for (int i = 0; i < 256; i++) bin[i] = (char) i;
    make_str(db, "s_int", "12345", 5, -1);
    make_str(db, "s_short", "hello world", 11, -1);
    make_str(db, "s_lzf", big, sizeof(big), -1);
    make_str(db, "s_bin", bin, sizeof(bin), -1);
    make_str(db, "s_ttl", "v", 1, future);
    make_str(db, "", "empty key", 9, -1);
    make(db, "l_small", 1, 5, 0, -1);
    make(db, "l_big", 1, 600, 0, future + 1);
    make(db, "set_int", 2, 10, 1, -1);
    make(db, "set_str", 2, 10, 0, -1);
    make(db, "set_big", 2, 520, 1, -1);
    make(db, "z_small", 5, 10, 0, -1);
    make(db, "z_big", 5, 200, 0, -1);
    make(db, "h_small", 4, 10, 0, -1);
    make(db, "h_big", 4, 520, 0, -1);
    make(db, "h_ttl", 4, 3, 0, future + 2);
    return db;
}

/* Same type, encoding, TTL, length of serialization; the same bytes for
 * every encoding whose order does not depend on a hash table. */
static void assert_same_key(kv_db_t *a, kv_db_t *b, const char *key)
{
    kv_dict_entry *ea = kv_db_find(a, key, strlen(key), KV_LOOKUP_NOTOUCH);
    kv_dict_entry *eb = kv_db_find(b, key, strlen(key), KV_LOOKUP_NOTOUCH);
    assert_non_null(ea);
    assert_non_null(eb);
    kv_obj *oa = kv_db_obj(ea), *ob = kv_db_obj(eb);
    assert_int_equal(oa->type, ob->type);
    assert_int_equal(oa->enc, ob->enc);
    assert_true(kv_db_expire_get(oa) == kv_db_expire_get(ob));
    kv_rdb_buf da, dbb;
    kv_rdb_buf_init(&da);
    kv_rdb_buf_init(&dbb);
    assert_int_equal(kv_rdbobj_dump(&da, oa), KV_RDB_OK);
    assert_int_equal(kv_rdbobj_dump(&dbb, ob), KV_RDB_OK);
    assert_int_equal(da.len, dbb.len);
    if (oa->enc != KV_ENC_HT && oa->enc != KV_ENC_SKIPLIST) assert_memory_equal(da.p, dbb.p, da.len);
    kv_rdb_buf_free(&da);
    kv_rdb_buf_free(&dbb);
}

static char tmpdir[64];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t) sz + 1);
    assert_int_equal(fread(p, 1, (size_t) sz, f), (size_t) sz);
    fclose(f);
    *n = (size_t) sz;
    return p;
}

static void save_sample(const char *name, char *path, size_t n)
{
    char tmp[300], err[512];
    kv_db_t *db = sample_db(kv_db_now_ms() + 3600 * 1000);
    path_of(path, n, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(kv_rdb_save_file(db, path, tmp, err, sizeof(err)), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    kv_db_free(db);
}

/* ---- tests ------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    (void) state;
    char path[256], tmp[300], err[512];
    int64_t future = kv_db_now_ms() + 3600 * 1000;
    kv_db_t *a = sample_db(future);
    path_of(path, sizeof(path), "rt.rdb");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(kv_rdb_save_file(a, path, tmp, err, sizeof(err)), 0);

    kv_db_t *b = kv_db_new();
    kv_rdb_load_stats st;
    int rc = kv_rdb_load_db(b, path, &st, err, sizeof(err));
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(st.version, 10);
    assert_int_equal(st.keys_loaded, NKEYS);
    assert_int_equal(kv_db_size(b), NKEYS);
    assert_int_equal(kv_db_volatile(b), 3);
    assert_int_equal(b->dirty, 0);
    for (size_t i = 0; i < NKEYS; i++) assert_same_key(a, b, keys[i]);

    /* A second generation (compact encodings read back) is identical. */
    assert_int_equal(kv_rdb_save_file(b, path, tmp, err, sizeof(err)), 0);
    kv_db_t *c = kv_db_new();
    assert_int_equal(kv_rdb_load_db(c, path, &st, err, sizeof(err)), 0);
    for (size_t i = 0; i < NKEYS; i++) assert_same_key(a, c, keys[i]);
    kv_db_free(a);
    kv_db_free(b);
    kv_db_free(c);
}

static void test_layout(void **state)
{
    (void) state;
    char path[256];
    size_t n;
    save_sample("layout.rdb", path, sizeof(path));
    unsigned char *p = slurp(path, &n);
    assert_memory_equal(p, "REDIS0010", 9);
    assert_int_equal(p[9], KV_RDB_OPCODE_AUX);
    assert_non_null(memmem(p, n, "redis-ver", 9));
    assert_non_null(memmem(p, n, "7.0.15", 6));
    assert_non_null(memmem(p, n, "aof-base", 8));
    assert_int_equal(p[n - 9], KV_RDB_OPCODE_EOF);
    uint64_t crc = 0;
    for (int i = 7; i >= 0; i--) crc = (crc << 8) | p[n - 8 + (size_t) i];
    assert_true(crc == kv_crc64(0, p, n - 8));
    free(p);

    /* An empty db is a valid file too. */
    char tmp[300], err[256];
    kv_db_t *db = kv_db_new();
    path_of(path, sizeof(path), "empty.rdb");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(kv_rdb_save_file(db, path, tmp, err, sizeof(err)), 0);
    assert_int_equal(kv_rdb_load_db(db, path, NULL, err, sizeof(err)), 0);
    assert_int_equal(kv_db_size(db), 0);
    kv_db_free(db);
}

static int drop_key(void *ud, const char *key, size_t klen, kv_rdbobj_value *v, int64_t expire_ms, char *err,
                    size_t errlen)
{
    (void) ud, (void) key, (void) klen, (void) expire_ms, (void) err, (void) errlen;
    kv_rdbobj_value_free(v);
    return 0;
}

/* Load into a fresh db (exercising the store paths) or just decode. */
static int try_load(const unsigned char *p, size_t n, char *err, size_t errlen, kv_rdb_load_stats *st)
{
    static int flip;
    if (++flip & 1) return kv_rdb_load_mem(p, n, "fuzz.rdb", drop_key, NULL, NULL, st, err, errlen);
    kv_db_t *db = kv_db_new();
    int rc = kv_rdb_load_db_mem(db, p, n, "fuzz.rdb", st, err, errlen);
    kv_db_free(db);
    return rc;
}

static void test_truncated(void **state)
{
    (void) state;
    char path[256], err[1024];
    size_t n;
    kv_rdb_load_stats st;
    save_sample("torn.rdb", path, sizeof(path));
    unsigned char *p = slurp(path, &n);
    /* Every cut in the first and last 600 bytes (header, AUX fields, the
     * last key, EOF and checksum), a spread of cuts in between. */
    size_t step = n / (quick() ? 150 : 1500) + 1;
    for (size_t cut = 0; cut < n; cut += (cut < 600 || cut + 600 > n) ? 1 : step) {
        unsigned char *q = malloc(cut + 1); /* exact size: ASan sees overreads */
        memcpy(q, p, cut);
        err[0] = '\0';
        assert_int_equal(try_load(q, cut, err, sizeof(err), &st), -1);
        assert_non_null(strstr(err, "fuzz.rdb: corrupt at offset "));
        assert_true(st.bad_offset <= cut);
        free(q);
    }
    free(p);
}

static void test_corrupt(void **state)
{
    (void) state;
    char path[256], err[1024];
    size_t n;
    kv_rdb_load_stats st;
    save_sample("flip.rdb", path, sizeof(path));
    unsigned char *p = slurp(path, &n);
    unsigned char *q = malloc(n);
    int rounds = quick() ? 200 : 2000;
    for (int r = 0; r < rounds; r++) {
        memcpy(q, p, n);
        int flips = 1 + (int) (rnd() % 4);
        for (int f = 0; f < flips; f++) q[9 + rnd() % (n - 9)] ^= (unsigned char) (1 + rnd() % 255);
        /* With the CRC intact any change is caught by it at the latest. */
        if (memcmp(q, p, n) != 0) {
            assert_int_equal(try_load(q, n, err, sizeof(err), &st), -1);
            assert_non_null(strstr(err, "corrupt at offset"));
        }
        /* With the checksum zeroed (Redis: not checked) the parser alone
         * must cope: any result, no crash, no leak. */
        memset(q + n - 8, 0, 8);
        if (try_load(q, n, err, sizeof(err), &st) != 0) assert_non_null(strstr(err, "corrupt at offset"));
    }
    /* Pure noise after a valid header. */
    for (int r = 0; r < rounds; r++) {
        size_t len = 9 + rnd() % 200;
        memcpy(q, "REDIS0010", 9);
        for (size_t i = 9; i < len; i++) q[i] = (unsigned char) rnd();
        if (try_load(q, len, err, sizeof(err), &st) != 0) assert_non_null(strstr(err, "corrupt at offset"));
    }
    free(q);
    free(p);
}

/* Hand-made files with the opcodes Redis writes and some it refuses. */
typedef struct {
    kv_rdb_buf b;
} img_t;

static void img_start(img_t *m, const char *ver)
{
    kv_rdb_buf_init(&m->b);
    kv_rdb_buf_append(&m->b, ver, 9);
}
static void img_byte(img_t *m, unsigned c)
{
    unsigned char x = (unsigned char) c;
    kv_rdb_buf_append(&m->b, &x, 1);
}
static void img_end(img_t *m, int with_crc)
{
    img_byte(m, KV_RDB_OPCODE_EOF);
    uint64_t crc = with_crc ? kv_crc64(0, m->b.p, m->b.len) : 0;
    unsigned char c[8];
    for (int i = 0; i < 8; i++) c[i] = (unsigned char) (crc >> (8 * i));
    kv_rdb_buf_append(&m->b, c, 8);
}
static void img_kv(img_t *m, const char *k, const char *v)
{
    img_byte(m, 0);
    put_str(&m->b, k);
    put_str(&m->b, v);
}

static int load_img(img_t *m, kv_db_t *db, char *err, size_t errlen, kv_rdb_load_stats *st)
{
    int rc = kv_rdb_load_db_mem(db, m->b.p, m->b.len, "img.rdb", st, err, errlen);
    kv_rdb_buf_free(&m->b);
    return rc;
}

static void test_opcodes(void **state)
{
    (void) state;
    char err[1024];
    kv_rdb_load_stats st;
    img_t m;
    kv_db_t *db = kv_db_new();

    /* Everything Redis 7.0 writes, plus IDLE/FREQ/EXPIRETIME(s), FUNCTION2. */
    img_start(&m, "REDIS0010");
    img_byte(&m, KV_RDB_OPCODE_AUX), put_str(&m.b, "redis-ver"), put_str(&m.b, "7.0.15");
    img_byte(&m, KV_RDB_OPCODE_AUX), put_str(&m.b, "ctime"), put_str(&m.b, "1700000000");
    img_byte(&m, KV_RDB_OPCODE_FUNCTION2), put_str(&m.b, "#!lua name=lib\nredis.register_function('f', function() return 1 end)");
    img_byte(&m, KV_RDB_OPCODE_SELECTDB), kv_rdb_save_len(&m.b, 0);
    img_byte(&m, KV_RDB_OPCODE_RESIZEDB), kv_rdb_save_len(&m.b, 1000000000), kv_rdb_save_len(&m.b, 2);
    img_kv(&m, "plain", "1");
    img_byte(&m, KV_RDB_OPCODE_IDLE), kv_rdb_save_len(&m.b, 77);
    img_kv(&m, "idle", "x");
    img_byte(&m, KV_RDB_OPCODE_FREQ), img_byte(&m, 5);
    img_kv(&m, "freq", "x");
    int64_t when = kv_db_now_ms() + 100000;
    img_byte(&m, KV_RDB_OPCODE_EXPIRETIME_MS), kv_rdb_buf_append(&m.b, &when, 8);
    img_kv(&m, "ttl_ms", "x");
    uint32_t secs = (uint32_t) (kv_db_now_ms() / 1000 + 1000);
    img_byte(&m, KV_RDB_OPCODE_EXPIRETIME), kv_rdb_buf_append(&m.b, &secs, 4);
    img_kv(&m, "ttl_s", "x");
    int64_t past = 1000;
    img_byte(&m, KV_RDB_OPCODE_EXPIRETIME_MS), kv_rdb_buf_append(&m.b, &past, 8);
    img_kv(&m, "gone", "x");
    img_end(&m, 1);
    int rc = load_img(&m, db, err, sizeof(err), &st);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(st.keys_loaded, 5);
    assert_int_equal(st.keys_expired, 1);
    assert_int_equal(st.functions_skipped, 1);
    kv_dict_entry *e = kv_db_find(db, "ttl_s", 5, 0);
    assert_non_null(e);
    assert_true(kv_db_expire_get(kv_db_obj(e)) == (int64_t) secs * 1000);
    e = kv_db_find(db, "ttl_ms", 6, 0);
    assert_true(kv_db_expire_get(kv_db_obj(e)) == when);
    assert_null(kv_db_find(db, "gone", 4, 0));

    /* Older versions load (no checksum before 5); a zero checksum is not
     * checked, as in Redis. */
    kv_db_flush(db);
    img_start(&m, "REDIS0006");
    img_kv(&m, "a", "b");
    img_end(&m, 0);
    assert_int_equal(load_img(&m, db, err, sizeof(err), &st), 0);

    static const struct {
        const char *ver;
        unsigned op;
        const char *want;
    } bad[] = {
        { "REDIS0011", 0, "RDB version 11 is not supported" },
        { "REDIS00x0", 0, "bad RDB version" },
        { "RDB000010", 0, "not an RDB file" },
        { "REDIS0010", KV_RDB_OPCODE_MODULE_AUX, "offset 9: module auxiliary data" },
        { "REDIS0010", KV_RDB_OPCODE_FUNCTION_PRE_GA, "offset 9: pre-release function" },
        { "REDIS0010", 8, "offset 9: unknown RDB object type 8" },
        { "REDIS0010", 100, "offset 9: unknown RDB object type 100" },
        { "REDIS0010", KV_RDB_TYPE_MODULE_2, "offset 9: a Redis module's value" },
        { "REDIS0010", KV_RDB_OPCODE_SELECTDB, "offset 9: keys in database 3" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        img_start(&m, bad[i].ver);
        if (bad[i].op) {
            img_byte(&m, bad[i].op);
            if (bad[i].op == KV_RDB_OPCODE_SELECTDB) kv_rdb_save_len(&m.b, 3);
            else put_str(&m.b, "key"), put_str(&m.b, "val");
        }
        img_end(&m, 1);
        assert_int_equal(load_img(&m, db, err, sizeof(err), &st), -1);
        if (!strstr(err, bad[i].want)) fprintf(stderr, "got: %s\nwant: %s\n", err, bad[i].want);
        assert_non_null(strstr(err, bad[i].want));
    }

    /* A key twice; a bad checksum. */
    kv_db_flush(db);
    img_start(&m, "REDIS0010");
    img_kv(&m, "dup", "1");
    size_t second = m.b.len;
    img_kv(&m, "dup", "2");
    img_end(&m, 1);
    assert_int_equal(load_img(&m, db, err, sizeof(err), &st), -1);
    char want[64];
    snprintf(want, sizeof(want), "offset %zu: key 'dup': duplicate key", second);
    assert_non_null(strstr(err, want));

    kv_db_flush(db);
    img_start(&m, "REDIS0010");
    img_kv(&m, "k", "v");
    img_end(&m, 1);
    m.b.p[m.b.len - 1] ^= 1;
    assert_int_equal(load_img(&m, db, err, sizeof(err), &st), -1);
    assert_non_null(strstr(err, "CRC64 checksum mismatch"));
    kv_db_free(db);
}

static void test_missing_file(void **state)
{
    (void) state;
    char path[256], err[512];
    kv_db_t *db = kv_db_new();
    path_of(path, sizeof(path), "nope.rdb");
    assert_int_equal(kv_rdb_load_db(db, path, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope.rdb"));
    /* Saving into a directory that does not exist fails cleanly. */
    path_of(path, sizeof(path), "no/such/dir.rdb");
    assert_int_equal(kv_rdb_save_file(db, path, path, err, sizeof(err)), -1);
    kv_db_free(db);
}

int main(void)
{
    rs = 0x9E3779B97F4A7C15ULL;   /* this file's seed, as before testutil.h */
    setup_types();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kv-test-rdb-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_layout),  cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),   cmocka_unit_test(test_opcodes), cmocka_unit_test(test_missing_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
