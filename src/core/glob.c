/* Redis's stringmatchlen, adapted to slices that are not NUL-terminated:
 * every place where Redis reads the terminator of its sds pattern checks
 * the remaining length instead, which gives the same result. Chars stay
 * `char` (signed on x86) because Redis compares ranges that way. */
#include "core/glob.h"

#include <ctype.h>

static int match_impl(const char *pattern, long plen, const char *string, long slen, int nocase,
                      int *skip_longer, int nesting)
{
    if (nesting > 1000) return 0; /* abusive pattern */
    while (plen && slen) {
        switch (pattern[0]) {
        case '*':
            while (plen > 1 && pattern[1] == '*') pattern++, plen--;
            if (plen == 1) return 1;
            while (slen) {
                if (match_impl(pattern + 1, plen - 1, string, slen, nocase, skip_longer,
                               nesting + 1))
                    return 1;
                if (*skip_longer) return 0;
                string++, slen--;
            }
            /* The rest of the pattern matches nowhere in the rest of the
             * string: an earlier '*' taking more cannot help either. */
            *skip_longer = 1;
            return 0;
        case '?':
            string++, slen--;
            break;
        case '[': {
            int not, match = 0;
            pattern++, plen--;
            not = plen > 0 && pattern[0] == '^';
            if (not) pattern++, plen--;
            for (;;) {
                if (plen >= 2 && pattern[0] == '\\') {
                    pattern++, plen--;
                    if (pattern[0] == string[0]) match = 1;
                } else if (plen == 0) {
                    /* unterminated class: stay on the last char */
                    pattern--, plen++;
                    break;
                } else if (pattern[0] == ']') {
                    break;
                } else if (plen >= 3 && pattern[1] == '-') {
                    int start = pattern[0], end = pattern[2], c = string[0];
                    if (start > end) {
                        int t = start;
                        start = end, end = t;
                    }
                    if (nocase) start = tolower(start), end = tolower(end), c = tolower(c);
                    pattern += 2, plen -= 2;
                    if (c >= start && c <= end) match = 1;
                } else if (!nocase) {
                    if (pattern[0] == string[0]) match = 1;
                } else if (tolower((int)pattern[0]) == tolower((int)string[0])) {
                    match = 1;
                }
                pattern++, plen--;
            }
            if (not) match = !match;
            if (!match) return 0;
            string++, slen--;
            break;
        }
        case '\\':
            if (plen >= 2) pattern++, plen--;
            /* fall through */
        default:
            if (!nocase) {
                if (pattern[0] != string[0]) return 0;
            } else if (tolower((int)pattern[0]) != tolower((int)string[0])) {
                return 0;
            }
            string++, slen--;
            break;
        }
        pattern++, plen--;
        if (slen == 0) {
            while (plen > 0 && *pattern == '*') pattern++, plen--;
            break;
        }
    }
    return plen == 0 && slen == 0;
}

int kv_glob_match(const char *pattern, size_t plen, const char *str, size_t slen, int nocase)
{
    int skip = 0;
    return match_impl(pattern, (long)plen, str, (long)slen, nocase, &skip, 0);
}
