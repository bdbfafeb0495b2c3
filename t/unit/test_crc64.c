/* CRC-64/Jones as Redis computes it: known vectors (Redis's own test,
 * checksums cut from real redis-server DUMP replies), and the sliced
 * implementation against a bit-at-a-time reference for every length and
 * split point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/crc64.h"

static uint64_t crc_ref(uint64_t crc, const unsigned char *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ ((crc & 1) ? 0x95ac9329ac4bc9b5ULL : 0);
    }
    return crc;
}

static void test_vectors(void **state)
{
    (void)state;
    assert_int_equal(kv_crc64(0, "123456789", 9), 0xe9c6d914c4b8d9caULL);
    assert_int_equal(kv_crc64(0, "", 0), 0);
    /* Redis's crc64 self-test string */
    const char *li = "This is a test of the emergency broadcast system.";
    assert_int_equal(kv_crc64(0, li, strlen(li)), crc_ref(0, (const unsigned char *)li, strlen(li)));
    /* redis-server 7.0 DUMP of "foo": body, then the CRC little-endian */
    const unsigned char foo[] = "\x00\x03" "foo" "\x0a\x00";
    const unsigned char foo_crc[] = "sI9\xdbM\xc1\xba\x97";
    uint64_t c = kv_crc64(0, foo, 7);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(c >> (8 * i));
    assert_memory_equal(le, foo_crc, 8);
}

static void test_against_reference(void **state)
{
    (void)state;
    unsigned char buf[300];
    uint64_t s = 1;
    for (size_t i = 0; i < sizeof(buf); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (unsigned char)(s >> 56);
    }
    for (size_t n = 0; n <= 100; n++) {
        for (size_t off = 0; off < 8; off++) {
            uint64_t want = crc_ref(0, buf + off, n);
            assert_int_equal(kv_crc64(0, buf + off, n), want);
            size_t cut = n / 3;
            assert_int_equal(kv_crc64(kv_crc64(0, buf + off, cut), buf + off + cut, n - cut), want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
