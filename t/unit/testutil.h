/* Shared by the unit tests: quick mode and a small deterministic PRNG. */
#ifndef KV_T_TESTUTIL_H
#define KV_T_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>

/* KV_TEST_QUICK=1 (the sanitizer run): scale randomized runs down. */
static inline int quick(void) { return getenv("KV_TEST_QUICK") != NULL; }

/* xorshift64: reproducible runs; reseed with rs = ... */
static uint64_t rs = 0x9E3779B97F4A7C15ULL;
static inline uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

#endif
