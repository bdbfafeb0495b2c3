/* Glob-style pattern matching, byte for byte Redis's stringmatchlen
 * (util.c, 7.0): '*', '?', '[...]' with '^' negation, 'a-z' ranges and
 * '\\' escapes. KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET use it. Binary
 * safe: neither pattern nor string needs a NUL terminator. */
#ifndef KV_CORE_GLOB_H
#define KV_CORE_GLOB_H

#include <stddef.h>

/* 1 when str matches pattern; nocase folds ASCII case. Patterns nesting
 * more than 1000 '*' levels never match (Redis's guard against abusive
 * patterns). */
int kv_glob_match(const char *pattern, size_t plen, const char *str, size_t slen, int nocase);

#endif
