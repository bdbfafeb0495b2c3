/*
 * LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest
 * common subsequence of two strings, as Redis 7.0 computes and replies it.
 *
 * The classic dynamic-programming table of (alen+1)*(blen+1) uint32_t;
 * the walk back from its corner yields the LCS string and, for IDX, the
 * matched ranges from the end of the strings towards their start (Redis's
 * order). Like Redis, the table may not exceed proto-max-bulk-len (512 MB
 * by default) so one command cannot take the shard's memory. LEN alone
 * needs no walk, so it keeps only two rows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard/bitops.h"
#include "shard/cmd.h"
#include "shard/db.h"
#include "shard/t_util.h"

typedef struct {
    uint32_t a0, a1, b0, b1;
} lcs_range;

/* Length of the LCS with two rows: O(blen) memory. */
static uint32_t lcs_len(const unsigned char *a, uint32_t alen, const unsigned char *b,
                        uint32_t blen, uint32_t *row)
{
    uint32_t *prev = row, *cur = row + blen + 1;
    memset(prev, 0, sizeof(uint32_t) * (blen + 1));
    cur[0] = 0;
    for (uint32_t i = 1; i <= alen; i++) {
        for (uint32_t j = 1; j <= blen; j++) {
            if (a[i - 1] == b[j - 1]) cur[j] = prev[j - 1] + 1;
            else cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
        uint32_t *t = prev;
        prev = cur, cur = t;
    }
    return prev[blen];
}

static void oom(kv_client_t *c)
{
    kv_reply_error_cstr(&c->out, "Insufficient memory, failed allocating transient memory for LCS");
}

void kv_lcs_cmd(kv_client_t *c)
{
    kv_bits_str sa, sb;
    long long minmatchlen = 0;
    int getlen = 0, getidx = 0, withmatchlen = 0;

    /* Both keys first: a wrong type wins over any option error. */
    kv_dict_entry *ea = kv_db_find(c->db, c->argv[1].ptr, c->argv[1].len, 0);
    kv_dict_entry *eb = kv_db_find(c->db, c->argv[2].ptr, c->argv[2].len, 0);
    if ((ea && kv_db_obj(ea)->type != KV_TYPE_STRING) ||
        (eb && kv_db_obj(eb)->type != KV_TYPE_STRING)) {
        kv_reply_error_cstr(&c->out, "The specified keys must contain string values");
        return;
    }
    kv_bits_from_entry(ea, &sa);
    kv_bits_from_entry(eb, &sb);

    for (int j = 3; j < c->argc; j++) {
        const kv_resp_arg *o = &c->argv[j];
        int more = c->argc - 1 - j;
        if (kv_arg_is(o, "idx")) getidx = 1;
        else if (kv_arg_is(o, "len")) getlen = 1;
        else if (kv_arg_is(o, "withmatchlen")) withmatchlen = 1;
        else if (kv_arg_is(o, "minmatchlen") && more) {
            if (kv_bits_parse_ll(c, &c->argv[j + 1], &minmatchlen)) return;
            if (minmatchlen < 0) minmatchlen = 0;
            j++;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    if (getidx && getlen) {
        kv_reply_error_cstr(&c->out,
                            "If you want both the length and indexes, please just use IDX.");
        return;
    }
    if (sa.len >= UINT32_MAX - 1 || sb.len >= UINT32_MAX - 1) {
        kv_reply_error_cstr(&c->out, "String too long for LCS");
        return;
    }
    uint32_t alen = (uint32_t) sa.len, blen = (uint32_t) sb.len;
    const unsigned char *a = sa.p, *b = sb.p;
    uint64_t cells = (uint64_t) (alen + 1) * (blen + 1);
    if (cells * sizeof(uint32_t) > (uint64_t) KV_STRING_MAX) {
        kv_reply_error_cstr(&c->out, "Insufficient memory, transient memory for LCS exceeds "
                                     "proto-max-bulk-len");
        return;
    }
    if (getlen) {
        uint32_t *rows = malloc(sizeof(uint32_t) * 2 * ((size_t) blen + 1));
        if (!rows) {
            oom(c);
            return;
        }
        kv_reply_int(&c->out, lcs_len(a, alen, b, blen, rows));
        free(rows);
        return;
    }

    uint32_t *t = malloc(sizeof(uint32_t) * (size_t) cells);
    if (!t) {
        oom(c);
        return;
    }
#define LCS(i, j) t[(size_t) (j) + (size_t) (i) * ((size_t) blen + 1)]
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0) LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1]) LCS(i, j) = LCS(i - 1, j - 1) + 1;
            else LCS(i, j) = LCS(i - 1, j) > LCS(i, j - 1) ? LCS(i - 1, j) : LCS(i, j - 1);
        }
    }
    uint32_t total = LCS(alen, blen), idx = total;
    char *result = malloc(total ? total : 1);
    lcs_range *ranges = NULL;
    size_t nranges = 0, rcap = 0;
    if (!result) {
        free(t);
        oom(c);
        return;
    }
    /* The walk back, Redis's exactly: a range grows while matches are
     * contiguous and is emitted when a mismatch or a string's first byte
     * ends it. alen as start means "no open range". */
    uint32_t i = alen, j = blen, as = alen, ae = 0, bs = 0, be = 0;
    while (i > 0 && j > 0) {
        int emit = 0;
        if (a[i - 1] == b[j - 1]) {
            result[idx - 1] = (char) a[i - 1];
            if (as == alen) {
                as = ae = i - 1;
                bs = be = j - 1;
            } else if (as == i && bs == j) {
                as--, bs--;
            } else {
                emit = 1;
            }
            if (as == 0 || bs == 0) emit = 1;
            idx--, i--, j--;
        } else {
            if (LCS(i - 1, j) > LCS(i, j - 1)) i--;
            else j--;
            if (as != alen) emit = 1;
        }
        if (emit) {
            uint32_t mlen = ae - as + 1;
            if (getidx && (minmatchlen == 0 || mlen >= minmatchlen)) {
                if (nranges == rcap) {
                    rcap = rcap ? rcap * 2 : 16;
                    lcs_range *n = realloc(ranges, rcap * sizeof(*ranges));
                    if (!n) {
                        free(ranges), free(result), free(t);
                        oom(c);
                        return;
                    }
                    ranges = n;
                }
                ranges[nranges++] = (lcs_range){as, ae, bs, be};
            }
            as = alen;
        }
    }
#undef LCS
    if (getidx) {
        /* RESP2 map {matches: [...], len: n} as a flat array. */
        kv_reply_array(&c->out, 4);
        kv_reply_bulk_cstr(&c->out, "matches");
        kv_reply_array(&c->out, (long long) nranges);
        for (size_t k = 0; k < nranges; k++) {
            kv_reply_array(&c->out, 2 + withmatchlen);
            kv_reply_array(&c->out, 2);
            kv_reply_int(&c->out, ranges[k].a0);
            kv_reply_int(&c->out, ranges[k].a1);
            kv_reply_array(&c->out, 2);
            kv_reply_int(&c->out, ranges[k].b0);
            kv_reply_int(&c->out, ranges[k].b1);
            if (withmatchlen) kv_reply_int(&c->out, (long long) (ranges[k].a1 - ranges[k].a0 + 1));
        }
        kv_reply_bulk_cstr(&c->out, "len");
        kv_reply_int(&c->out, total);
    } else {
        kv_reply_bulk(&c->out, result, total);
    }
    free(ranges);
    free(result);
    free(t);
}
