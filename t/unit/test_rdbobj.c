/* Unit tests for the RDB object codec (persist/rdbobj): DUMP payloads
 * byte-identical to redis-server 7.0's (vectors captured from it: integer
 * encodings, short, LZF-compressed and incompressible strings, every
 * length-prefix size), round trips, payload verification, and a fuzz
 * pass: random, truncated and bit-flipped input must fail cleanly (run
 * under ASan by make test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/crc64.h"
#include "persist/rdbobj.h"

#include "testutil.h"

/* Captured with: SET k v; DUMP k (redis-server 7.0.15). */
static const struct { const char *v; size_t vlen; const char *dump; size_t dlen; } small_vec[] = {
    { "", 0, "\x00\x00\x0a\x00\x5d\x9b\x5c\x40\x0f\x7f\xa2\xda", 12 },
    { "\x30", 1, "\x00\xc0\x00\x0a\x00\x98\x40\xa7\x78\xf8\x50\x03\x08", 13 },
    { "\x2d\x31", 2, "\x00\xc0\xff\x0a\x00\x0c\x93\x7e\x24\x85\x08\x9d\xc5", 13 },
    { "\x31\x32\x37", 3, "\x00\xc0\x7f\x0a\x00\x0d\xb5\xeb\x31\x52\x54\xc5\x14", 13 },
    { "\x31\x32\x38", 3, "\x00\xc1\x80\x00\x0a\x00\xeb\x7a\xb3\xb5\x10\xcf\x4b\x65", 14 },
    { "\x2d\x31\x32\x38", 4, "\x00\xc0\x80\x0a\x00\x99\x66\x32\x6d\x2f\x0c\x5b\xd9", 13 },
    { "\x2d\x31\x32\x39", 4, "\x00\xc1\x7f\xff\x0a\x00\x17\x60\x82\x28\x54\x80\x84\x80", 14 },
    { "\x33\x32\x37\x36\x37", 5, "\x00\xc1\xff\x7f\x0a\x00\x49\x5a\x37\xda\x17\xf4\xd5\x2b", 14 },
    { "\x33\x32\x37\x36\x38", 5, "\x00\xc2\x00\x80\x00\x00\x0a\x00\x45\xd8\x2e\xed\xd5\xbd\xa9\x10", 16 },
    { "\x2d\x33\x32\x37\x36\x38", 6, "\x00\xc1\x00\x80\x0a\x00\xb5\x40\x06\x47\x53\xbb\x1a\xce", 14 },
    { "\x2d\x33\x32\x37\x36\x39", 6, "\x00\xc2\xff\x7f\xff\xff\x0a\x00\xae\xe3\x4c\x4d\x06\xc6\x85\x36", 16 },
    { "\x32\x31\x34\x37\x34\x38\x33\x36\x34\x37", 10, "\x00\xc2\xff\xff\xff\x7f\x0a\x00\x2c\x74\xe5\x9e\xe0\x2e\xad\xa1", 16 },
    { "\x32\x31\x34\x37\x34\x38\x33\x36\x34\x38", 10, "\x00\x0a\x32\x31\x34\x37\x34\x38\x33\x36\x34\x38\x0a\x00\xe7\xb1\x29\xa3\x4c\x1d\x76\xee", 22 },
    { "\x2d\x32\x31\x34\x37\x34\x38\x33\x36\x34\x38", 11, "\x00\xc2\x00\x00\x00\x80\x0a\x00\xc7\x4f\x87\x3e\x33\x55\x81\x87", 16 },
    { "\x2d\x32\x31\x34\x37\x34\x38\x33\x36\x34\x39", 11, "\x00\x0b\x2d\x32\x31\x34\x37\x34\x38\x33\x36\x34\x39\x0a\x00\xc2\x61\x37\x79\x08\xf2\x02\x8c", 23 },
    { "\x30\x31", 2, "\x00\x02\x30\x31\x0a\x00\x6c\xdd\xc4\x41\x14\x4c\x7d\xa4", 14 },
    { "\x2d\x30", 2, "\x00\x02\x2d\x30\x0a\x00\xd5\x41\x1f\xd9\xd6\xd0\x50\xcc", 14 },
    { "\x20\x31", 2, "\x00\x02\x20\x31\x0a\x00\x3f\xe5\x79\x1a\xe5\xde\xfb\x1b", 14 },
    { "\x2b\x31", 2, "\x00\x02\x2b\x31\x0a\x00\xc2\x86\xf0\xd7\x43\x9a\xee\x6f", 14 },
    { "\x31\x32\x33\x34\x35\x36\x37\x38\x39\x30\x31", 11, "\x00\x0b\x31\x32\x33\x34\x35\x36\x37\x38\x39\x30\x31\x0a\x00\x30\x4e\x52\xd7\x27\x17\x65\x10", 23 },
    { "\x31\x65\x33", 3, "\x00\x03\x31\x65\x33\x0a\x00\x28\xe4\x29\xb8\x4c\xb2\xe4\xbf", 15 },
    { "\x66\x6f\x6f", 3, "\x00\x03\x66\x6f\x6f\x0a\x00\x73\x49\x39\xdb\x4d\xc1\xba\x97", 15 },
    { "\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61", 20, "\x00\x14\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x0a\x00\x83\xb4\x6b\x5e\x1b\x11\xac\xf1", 32 },
    { "\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61\x61", 21, "\x00\xc3\x06\x15\x01\x61\x61\xe0\x0a\x00\x0a\x00\xfd\x0c\xb3\x68\x07\x41\x3f\x68", 20 },
    { "\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62\x61\x62", 24, "\x00\xc3\x0a\x18\x02\x61\x62\x61\xe0\x0a\x01\x01\x61\x62\x0a\x00\x35\x0b\x7c\x61\xd2\x8f\xf7\x3c", 24 },
    { "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18", 25, "\x00\x19\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x0a\x00\xde\x7b\xe7\x6f\x4d\x63\xa2\x32", 37 },
    { "\x00\xff\x0d\x0a", 4, "\x00\x04\x00\xff\x0d\x0a\x0a\x00\x8d\x10\xd1\x9e\x42\x16\xec\x65", 16 },
    { "\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64\x20\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64\x20\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64", 35, "\x00\xc3\x14\x23\x0c\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64\x20\x68\xe0\x0b\x0b\x01\x6c\x64\x0a\x00\x77\x83\x90\x69\x69\x34\xac\xb7", 34 },
};
static const struct { char kind; size_t n; size_t dlen; const char *tail; } big_vec[] = {
    { 'a', 100, 24, "\x61\x61\x0a\x00\xe8\xa3\xb5\x07\xb0\x6d\xf2\x71" },
    { 'a', 1000, 33, "\x61\x61\x0a\x00\x86\xc2\x12\xdb\x54\x81\x9e\x3c" },
    { 'a', 20000, 253, "\x61\x61\x0a\x00\x57\x45\x80\x59\xdf\x72\x00\x70" },
    { 't', 64, 57, "\x77\x64\x0a\x00\x6b\xb7\x90\x4b\xb8\x0f\xc4\x85" },
    { 't', 5000, 254, "\x6b\x72\x0a\x00\xec\x66\xb3\x1f\x3f\xb2\xda\x0c" },
    { 't', 70000, 2235, "\x73\x7a\x0a\x00\x7d\x0f\x72\xb0\xfa\xd2\x04\xd6" },
    { 'r', 21, 33, "\x10\xff\x0a\x00\xf9\x9b\xd5\x75\x91\x9f\xfe\xda" },
    { 'r', 30, 42, "\x1d\x02\x0a\x00\x30\xcf\x9c\x82\x3e\x5c\x9f\x5d" },
    { 'r', 100, 113, "\xc9\xea\x0a\x00\xfe\x5d\x7d\xcf\xa2\xf3\x2a\xaf" },
    { 'r', 16383, 16396, "\xff\x4c\x0a\x00\xa7\x6c\x69\x7c\x4f\x21\x64\x3a" },
    { 'r', 16384, 16400, "\x4c\x2d\x0a\x00\x05\x2e\xc2\x71\x02\x41\x06\x4f" },
    { 'r', 70000, 70016, "\x57\xb9\x0a\x00\xa1\x42\x59\xad\x1d\x9b\x32\xed" },
};

/* The same generators as the capture script. */
static unsigned char *gen(char kind, size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    uint32_t x = 12345;
    for (size_t k = 0; k < n; k++) {
        if (kind == 'a') p[k] = 'a';
        else if (kind == 't') p[k] = (unsigned char)((k * 7 + k / 13) % 26 + 97);
        else {
            x = (x * 1103515245u + 12345u) & 0x7fffffffu;
            p[k] = (unsigned char)((x >> 16) & 0xff);
        }
    }
    return p;
}

/* DUMP payload of a string value, as kv_rdbobj_dump writes it. */
static void dump_string(kv_rdb_buf *b, const void *v, size_t n)
{
    unsigned char t = KV_RDB_TYPE_STRING;
    kv_rdb_buf_append(b, &t, 1);
    kv_rdb_save_string(b, v, n);
    kv_rdb_payload_finish(b, 0);
}

static void check_roundtrip(const kv_rdb_buf *b, const void *v, size_t n)
{
    kv_rdbobj_value val;
    assert_int_equal(kv_rdbobj_verify(b->p, b->len), 0);
    assert_int_equal(kv_rdbobj_load_payload(b->p, b->len, &val), KV_RDB_OK);
    assert_int_equal(val.type, KV_TYPE_STRING);
    assert_int_equal(val.str.len, n);
    if (n) assert_memory_equal(val.str.p, v, n);
    kv_rdbobj_value_free(&val);
}

static void test_small_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(small_vec) / sizeof(small_vec[0]); i++) {
        kv_rdb_buf b;
        kv_rdb_buf_init(&b);
        dump_string(&b, small_vec[i].v, small_vec[i].vlen);
        assert_int_equal(b.len, small_vec[i].dlen);
        assert_memory_equal(b.p, small_vec[i].dump, b.len);
        check_roundtrip(&b, small_vec[i].v, small_vec[i].vlen);
        kv_rdb_buf_free(&b);
    }
}

static void test_big_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(big_vec) / sizeof(big_vec[0]); i++) {
        kv_rdb_buf b;
        unsigned char *v = gen(big_vec[i].kind, big_vec[i].n);
        kv_rdb_buf_init(&b);
        dump_string(&b, v, big_vec[i].n);
        assert_int_equal(b.len, big_vec[i].dlen);
        /* the CRC covers every byte before it: equal tails, equal dumps */
        assert_memory_equal(b.p + b.len - 12, big_vec[i].tail, 12);
        check_roundtrip(&b, v, big_vec[i].n);
        kv_rdb_buf_free(&b);
        free(v);
    }
}

static void test_lengths(void **state)
{
    (void)state;
    const uint64_t lens[] = {0, 1, 63, 64, 16383, 16384, 0xFFFFFFFFull, 0x100000000ull, UINT64_MAX};
    const size_t sizes[] = {1, 1, 1, 2, 2, 5, 5, 9, 9};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        kv_rdb_buf b;
        kv_rdb_reader r;
        uint64_t got;
        int enc;
        kv_rdb_buf_init(&b);
        kv_rdb_save_len(&b, lens[i]);
        assert_int_equal(b.len, sizes[i]);
        kv_rdb_reader_init(&r, b.p, b.len);
        assert_int_equal(kv_rdb_load_len(&r, &got, &enc), KV_RDB_OK);
        assert_int_equal(got, lens[i]);
        assert_int_equal(enc, 0);
        assert_int_equal(r.pos, b.len);
        /* every truncation fails */
        for (size_t cut = 0; cut < b.len; cut++) {
            kv_rdb_reader_init(&r, b.p, cut);
            assert_int_equal(kv_rdb_load_len(&r, &got, &enc), KV_RDB_EBADFMT);
        }
        kv_rdb_buf_free(&b);
    }
}

static void test_verify(void **state)
{
    (void)state;
    kv_rdb_buf b;
    kv_rdb_buf_init(&b);
    dump_string(&b, "foo", 3);
    assert_int_equal(kv_rdbobj_verify(b.p, b.len), 0);
    for (size_t n = 0; n < b.len; n++) assert_int_not_equal(kv_rdbobj_verify(b.p, n), 0);
    for (size_t i = 0; i < b.len * 8; i++) { /* any single bit flip */
        b.p[i / 8] ^= (unsigned char)(1u << (i % 8));
        assert_int_not_equal(kv_rdbobj_verify(b.p, b.len), 0);
        b.p[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    kv_rdb_buf_free(&b);

    /* an older RDB version is accepted, a newer one is not */
    unsigned char obj[] = {0, 3, 'f', 'o', 'o'};
    for (unsigned ver = 9; ver <= 11; ver++) {
        kv_rdb_buf_init(&b);
        kv_rdb_buf_append(&b, obj, sizeof(obj));
        unsigned char v2[2] = {(unsigned char)ver, 0};
        kv_rdb_buf_append(&b, v2, 2);
        uint64_t crc = 0;
        crc = kv_crc64(0, b.p, b.len);
        for (int i = 0; i < 8; i++) {
            unsigned char c = (unsigned char)(crc >> (8 * i));
            kv_rdb_buf_append(&b, &c, 1);
        }
        assert_int_equal(kv_rdbobj_verify(b.p, b.len) == 0, ver <= KV_RDB_VERSION);
        kv_rdb_buf_free(&b);
    }
}

static void test_types(void **state)
{
    (void)state;
    /* valid types kevy cannot store yet, and invalid type bytes */
    for (int t = 0; t < 256; t++) {
        unsigned char p[16] = {(unsigned char)t, 1, 'x'};
        kv_rdbobj_value v;
        int rc = kv_rdbobj_load_payload(p, sizeof(p), &v);
        if (t == 0) {
            assert_int_equal(rc, KV_RDB_OK);
            kv_rdbobj_value_free(&v);
        } else if ((t <= 7) || (t >= 9 && t <= 19)) {
            assert_int_equal(rc, KV_RDB_ENOTSUP);
        } else {
            assert_int_equal(rc, KV_RDB_EBADFMT);
        }
    }
}

static void test_lzf_claims(void **state)
{
    (void)state;
    /* LZF header claiming a huge or impossible original length */
    const unsigned char huge[] = {0, 0xC3, 0x02, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0x00, 'a'};
    const unsigned char zero[] = {0, 0xC3, 0x01, 0x00, 'a'};
    const unsigned char bad[] = {0, 0xC3, 0x02, 0x05, 0xFF, 0xFF};
    kv_rdbobj_value v;
    assert_int_equal(kv_rdbobj_load_payload(huge, sizeof(huge), &v), KV_RDB_EBADFMT);
    assert_int_equal(kv_rdbobj_load_payload(zero, sizeof(zero), &v), KV_RDB_OK);
    assert_int_equal(v.str.len, 0);
    kv_rdbobj_value_free(&v);
    assert_int_equal(kv_rdbobj_load_payload(bad, sizeof(bad), &v), KV_RDB_EBADFMT);
}

static void test_random_roundtrip(void **state)
{
    (void)state;
    int iters = quick() ? 300 : 3000;
    for (int it = 0; it < iters; it++) {
        size_t n = rnd() % 4 == 0 ? rnd() % 20000 : rnd() % 100;
        unsigned char *v = malloc(n + 1);
        int mode = (int)(rnd() % 3);
        for (size_t k = 0; k < n; k++)
            v[k] = mode == 0 ? (unsigned char)rnd() : mode == 1 ? (unsigned char)('a' + rnd() % 3)
                                                                : (unsigned char)('0' + rnd() % 10);
        if (mode == 2 && n && rnd() % 2) v[0] = '-';
        kv_rdb_buf b;
        kv_rdb_buf_init(&b);
        dump_string(&b, v, n);
        check_roundtrip(&b, v, n);
        kv_rdb_buf_free(&b);
        free(v);
    }
}

/* Load must never crash nor read out of bounds, whatever the input. */
static void fuzz_one(const unsigned char *p, size_t n)
{
    kv_rdbobj_value v;
    unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees overreads */
    memcpy(copy, p, n);
    if (kv_rdbobj_load_payload(copy, n, &v) == KV_RDB_OK) kv_rdbobj_value_free(&v);
    (void)kv_rdbobj_verify(copy, n);
    free(copy);
}

static void test_fuzz(void **state)
{
    (void)state;
    int iters = quick() ? 3000 : 30000;
    unsigned char buf[512];
    for (int it = 0; it < iters; it++) {
        size_t n = rnd() % sizeof(buf);
        for (size_t k = 0; k < n; k++) buf[k] = (unsigned char)rnd();
        if (n && rnd() % 2) buf[0] = 0;                     /* string type */
        if (n > 1 && rnd() % 2) buf[1] = (unsigned char)(0xC0 | (rnd() % 5)); /* encodings */
        fuzz_one(buf, n);
    }
    /* truncations and bit flips of valid payloads */
    for (size_t i = 0; i < sizeof(big_vec) / sizeof(big_vec[0]); i++) {
        size_t vn = big_vec[i].n > 3000 ? 3000 : big_vec[i].n;
        unsigned char *v = gen(big_vec[i].kind, vn);
        kv_rdb_buf b;
        kv_rdb_buf_init(&b);
        dump_string(&b, v, vn);
        size_t step = quick() ? 1 + b.len / 50 : 1;
        for (size_t cut = 0; cut < b.len; cut += step) fuzz_one(b.p, cut);
        for (int f = 0; f < (quick() ? 50 : 500); f++) {
            size_t at = rnd() % b.len;
            unsigned char save = b.p[at];
            b.p[at] ^= (unsigned char)(1u << (rnd() % 8));
            fuzz_one(b.p, b.len);
            b.p[at] = save;
        }
        kv_rdb_buf_free(&b);
        free(v);
    }
}

/* Through the keyspace: DUMP of stored values (int, embstr, raw, with a
 * TTL) and moving them to another db, as the router does between shards. */
static void test_db_export_import(void **state)
{
    (void)state;
    kv_db_t *a = kv_db_new(), *b = kv_db_new();
    unsigned char *big = gen('t', 5000);
    kv_db_set_str(a, "s", 1, "foo", 3, 0);
    kv_db_set_ll(a, "i", 1, 12, 0);
    kv_db_set_str(a, "n", 1, "-129", 4, 0);
    kv_db_set_str(a, "big", 3, (const char *)big, 5000, 0);
    kv_dict_entry *e = kv_db_set_str(a, "t", 1, "with ttl", 8, 0);
    int64_t when = kv_db_now_ms() + 100000;
    kv_db_expire_set(a, e, when);
    const char *keys[] = {"s", "i", "n", "big", "t"};
    for (size_t k = 0; k < 5; k++) {
        size_t kl = strlen(keys[k]);
        kv_dict_entry *src = kv_db_find(a, keys[k], kl, 0);
        kv_rdb_buf buf;
        int64_t ttl;
        assert_non_null(src);
        kv_rdb_buf_init(&buf);
        assert_int_equal(kv_rdbobj_export(src, &buf, &ttl), KV_RDB_OK);
        assert_int_equal(ttl, k == 4 ? when : -1);
        if (k == 0) { /* redis-server's DUMP of "foo" */
            assert_memory_equal(small_vec[21].v, "foo", 3);
            assert_int_equal(buf.len, small_vec[21].dlen);
            assert_memory_equal(buf.p, small_vec[21].dump, buf.len);
        }
        kv_db_set_str(b, keys[k], kl, "old", 3, 0); /* import replaces */
        assert_int_equal(kv_rdbobj_import(b, keys[k], kl, buf.p, buf.len, ttl), KV_RDB_OK);
        kv_dict_entry *dst = kv_db_find(b, keys[k], kl, 0);
        assert_non_null(dst);
        char b1[KV_DB_INTBUF], b2[KV_DB_INTBUF];
        size_t l1, l2;
        src = kv_db_find(a, keys[k], kl, 0);
        const char *p1 = kv_db_str(kv_db_obj(src), b1, &l1), *p2 = kv_db_str(kv_db_obj(dst), b2, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(p1, p2, l1);
        assert_int_equal(kv_db_obj(src)->enc, kv_db_obj(dst)->enc);
        assert_int_equal(kv_db_expire_get(kv_db_obj(dst)), ttl);
        /* a corrupt payload changes nothing */
        buf.p[buf.len - 1] ^= 1;
        assert_int_not_equal(kv_rdbobj_import(b, keys[k], kl, buf.p, buf.len, -1), KV_RDB_OK);
        assert_non_null(kv_db_find(b, keys[k], kl, 0));
        kv_rdb_buf_free(&buf);
    }
    free(big);
    kv_db_free(a);
    kv_db_free(b);
}

int main(void)
{
    rs = 0x2545F4914F6CDD1DULL;   /* this file's seed, as before testutil.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_vectors),  cmocka_unit_test(test_big_vectors),
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_types),          cmocka_unit_test(test_lzf_claims),
        cmocka_unit_test(test_random_roundtrip), cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_db_export_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
