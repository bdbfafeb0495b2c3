/* Unit tests for core/glob: Redis's stringmatchlen semantics, slices that
 * are not NUL-terminated, and the guard against abusive patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/glob.h"
#include "core/time.h"

static int m(const char *p, const char *s) { return kv_glob_match(p, strlen(p), s, strlen(s), 0); }
static int mi(const char *p, const char *s) { return kv_glob_match(p, strlen(p), s, strlen(s), 1); }

static void test_basic(void **state)
{
    (void)state;
    assert_false(m("*", "")); /* Redis: no char to match; KEYS * bypasses */
    assert_true(m("*", "anything"));
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_false(m("a", ""));
    assert_true(m("h?llo", "hello"));
    assert_false(m("h?llo", "hllo"));
    assert_true(m("h*llo", "hllo"));
    assert_true(m("h*llo", "heeeello"));
    assert_true(m("**llo", "hello"));
    assert_true(m("*l*l*", "hello"));
    assert_false(m("*x*", "hello"));
    assert_true(m("a*", "a"));
    assert_true(m("a**", "a"));
    assert_false(m("a*b", "a"));
}

static void test_classes(void **state)
{
    (void)state;
    assert_true(m("h[ae]llo", "hallo"));
    assert_false(m("h[ae]llo", "hillo"));
    assert_true(m("h[^e]llo", "hallo"));
    assert_false(m("h[^e]llo", "hello"));
    assert_true(m("h[a-b]llo", "hbllo"));
    assert_true(m("h[b-a]llo", "hbllo")); /* reversed range */
    assert_true(m("h[\\]]llo", "h]llo"));
    assert_true(m("h[-]llo", "h-llo"));
    assert_false(m("h[a-]llo", "h-llo")); /* range a-] eats the ']' */
    assert_true(m("h[a-]llo", "hl"));
    /* unterminated class: the last char stays the class's end */
    assert_true(m("h[a", "ha"));
    assert_false(m("h[a", "hb"));
    assert_false(m("h[", "h"));
    assert_false(m("h[", "hx"));
    assert_false(m("[]]", "]")); /* ']' first closes an empty class */
}

static void test_escape_and_case(void **state)
{
    (void)state;
    assert_true(m("h\\*llo", "h*llo"));
    assert_false(m("h\\*llo", "hello"));
    assert_true(m("h\\?llo", "h?llo"));
    assert_true(m("h\\", "h\\"));
    assert_false(mi("HELLO", "hellx"));
    assert_true(mi("HELLO", "hello"));
    assert_true(mi("h[A-Z]llo", "hello"));
    assert_false(m("HELLO", "hello"));
}

static void test_binary_slices(void **state)
{
    (void)state;
    /* neither side is NUL-terminated: read exactly the given lengths */
    const char pat[] = "a*cXXXX", str[] = "abbbcYYYY";
    assert_true(kv_glob_match(pat, 3, str, 5, 0));
    assert_false(kv_glob_match(pat, 3, str, 6, 0));
    const char bp[] = { 'a', 0, '*' }, bs[] = { 'a', 0, 'z', 'z' };
    assert_true(kv_glob_match(bp, 3, bs, 4, 0));
    assert_false(kv_glob_match(bp, 2, bs, 4, 0));
    const char hp[] = { '[', (char)0x80, '-', (char)0xff, ']' }, hs[] = { (char)0x90 };
    assert_true(kv_glob_match(hp, 5, hs, 1, 0));
}

static void test_abusive(void **state)
{
    (void)state;
    char pat[4000], str[400];
    size_t n = 0;
    for (int i = 0; i < 60; i++) pat[n++] = 'a', pat[n++] = '*';
    pat[n++] = 'b';
    memset(str, 'a', sizeof str);
    uint64_t t0 = kv_time_mono_us();
    assert_false(kv_glob_match(pat, n, str, sizeof str, 0));
    assert_true(kv_time_mono_us() - t0 < 1000000); /* no exponential blowup */
    /* nesting deeper than 1000 '*' levels never matches */
    n = 0;
    for (int i = 0; i < 1500; i++) pat[n++] = '*', pat[n++] = 'a';
    char s2[1600];
    memset(s2, 'a', sizeof s2);
    assert_false(kv_glob_match(pat, n, s2, 1500, 0));
    assert_true(kv_glob_match(pat, 20, s2, 10, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_escape_and_case),
        cmocka_unit_test(test_binary_slices),
        cmocka_unit_test(test_abusive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
