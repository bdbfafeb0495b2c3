/*
 * Bit commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
 * BITFIELD, BITFIELD_RO. The algorithms live in bitmap.c; this file is
 * argument parsing, key access and replies, in Redis 7.0's order of checks
 * (so the same bad command gets the same error: e.g. BITCOUNT and BITPOS
 * look the key up before parsing the range, as 7.0 does).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shard/bitmap.h"
#include "shard/bitops.h"
#include "shard/cmd.h"
#include "shard/db.h"
#include "shard/t_util.h"
#include "shard/notify.h"

static const char err_offset[] = "bit offset is not an integer or out of range";
static const char err_bit[] = "bit is not an integer or out of range";

int kv_bits_parse_ll(kv_client_t *c, const kv_resp_arg *a, long long *v)
{
    if (kv_str2ll(a->ptr, a->len, v)) return 0;
    kv_reply_error_cstr(&c->out, "value is not an integer or out of range");
    return -1;
}

void kv_bits_from_entry(kv_dict_entry *e, kv_bits_str *s)
{
    s->p = (const unsigned char *) "", s->len = 0, s->exists = 0;
    if (!e) return;
    s->exists = 1;
    s->p = (const unsigned char *) kv_db_str(kv_db_obj(e), s->ibuf, &s->len);
}

int kv_bits_lookup_read(kv_client_t *c, const kv_resp_arg *key, kv_bits_str *s)
{
    kv_dict_entry *e = kv_db_find(c->db, key->ptr, key->len, 0);
    if (e && kv_db_obj(e)->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return -1;
    }
    kv_bits_from_entry(e, s);
    return 0;
}

/* getBitOffsetFromArgument: "#N" (BITFIELD only) means N * bits. The
 * product wraps as in Redis (where it is a plain long long multiply) and
 * the range check catches what wrapped negative. The limit is 512 MB of
 * string, Redis's default proto-max-bulk-len. */
int kv_bits_parse_offset(kv_client_t *c, const kv_resp_arg *a, int hash, int bits, uint64_t *off)
{
    long long v;
    int usehash = hash && bits > 0 && a->len > 0 && a->ptr[0] == '#';
    if (!kv_str2ll(a->ptr + usehash, a->len - (size_t) usehash, &v)) goto err;
    if (usehash) v = (long long) ((uint64_t) v * (uint64_t) bits);
    if (v < 0 || (v >> 3) >= KV_STRING_MAX) goto err;
    *off = (uint64_t) v;
    return 0;
err:
    kv_reply_error_cstr(&c->out, err_offset);
    return -1;
}

unsigned char *kv_bits_string_for_write(kv_client_t *c, uint64_t maxbit, size_t *len)
{
    const kv_resp_arg *k = &c->argv[1];
    size_t need = (size_t) (maxbit >> 3) + 1;
    kv_dict_entry *e = kv_db_find(c->db, k->ptr, k->len, KV_LOOKUP_WRITE);
    if (e && kv_db_obj(e)->type != KV_TYPE_STRING) {
        kv_reply_wrongtype(c);
        return NULL;
    }
    if (!e) e = kv_db_set_str(c->db, k->ptr, k->len, "", 0, KV_SET_RAW);
    size_t cur = kv_db_strlen(kv_db_obj(e));
    *len = cur > need ? cur : need;
    /* Resizing (even to the same length) is Redis's dbUnshareStringValue:
     * the value becomes a writable "raw" string. */
    return (unsigned char *) kv_db_str_resize(c->db, &e, *len);
}

static void setbit_cmd(kv_client_t *c)
{
    uint64_t off;
    long long on;
    size_t len;
    if (kv_bits_parse_offset(c, &c->argv[2], 0, 0, &off)) return;
    if (!kv_str2ll(c->argv[3].ptr, c->argv[3].len, &on) || (on & ~1LL)) {
        kv_reply_error_cstr(&c->out, err_bit);
        return;
    }
    unsigned char *p = kv_bits_string_for_write(c, off, &len);
    if (!p) return;
    unsigned char *b = p + (off >> 3), mask = (unsigned char) (1u << (7 - (off & 7)));
    int old = (*b & mask) != 0;
    *b = on ? (unsigned char) (*b | mask) : (unsigned char) (*b & ~mask);
    /* Redis 7.0 counts every SETBIT as a change. */
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "setbit", c->argv[1].ptr, c->argv[1].len);
    kv_reply_int(&c->out, old);
}

static void getbit_cmd(kv_client_t *c)
{
    uint64_t off;
    kv_bits_str s;
    if (kv_bits_parse_offset(c, &c->argv[2], 0, 0, &off)) return;
    if (kv_bits_lookup_read(c, &c->argv[1], &s)) return;
    int bit = (off >> 3) < s.len ? (s.p[off >> 3] >> (7 - (off & 7))) & 1 : 0;
    kv_reply_int(&c->out, bit);
}

/* Resolve a [start, end] range as BITCOUNT/BITPOS do: negative indexes
 * from the end, clamped to the string; BIT ranges count bits. */
static void clamp_range(long long totlen, long long *start, long long *end)
{
    if (*start < 0) *start = totlen + *start;
    if (*end < 0) *end = totlen + *end;
    if (*start < 0) *start = 0;
    if (*end < 0) *end = 0;
    if (*end >= totlen) *end = totlen - 1;
}

static int parse_unit(kv_client_t *c, const kv_resp_arg *a, int *isbit)
{
    if (kv_arg_is(a, "bit")) *isbit = 1;
    else if (kv_arg_is(a, "byte")) *isbit = 0;
    else {
        kv_reply_syntax(c);
        return -1;
    }
    return 0;
}

static void bitcount_cmd(kv_client_t *c)
{
    kv_bits_str s;
    long long start, end;
    int isbit = 0;
    if (kv_bits_lookup_read(c, &c->argv[1], &s)) return;
    if (!s.exists) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (c->argc == 4 || c->argc == 5) {
        if (kv_bits_parse_ll(c, &c->argv[2], &start) || kv_bits_parse_ll(c, &c->argv[3], &end))
            return;
        if (start < 0 && end < 0 && start > end) {
            kv_reply_int(&c->out, 0);
            return;
        }
        if (c->argc == 5 && parse_unit(c, &c->argv[4], &isbit)) return;
        clamp_range(isbit ? (long long) s.len * 8 : (long long) s.len, &start, &end);
    } else if (c->argc == 2) {
        start = 0, end = (long long) s.len - 1;
    } else {
        kv_reply_syntax(c);
        return;
    }
    if (start > end) {
        kv_reply_int(&c->out, 0);
        return;
    }
    uint64_t n;
    if (isbit) {
        /* Whole bytes by popcount, the partial edge bytes masked. */
        uint64_t fb = (uint64_t) start >> 3, lb = (uint64_t) end >> 3;
        const unsigned char *p = s.p;
        unsigned head = 0xFFu >> (start & 7), tail = (0xFF00u >> ((end & 7) + 1)) & 0xFF;
        if (fb == lb) {
            n = (uint64_t) __builtin_popcount(p[fb] & head & tail);
        } else {
            n = (uint64_t) __builtin_popcount(p[fb] & head) +
                (uint64_t) __builtin_popcount(p[lb] & tail);
            n += kv_bitmap_popcount(p + fb + 1, (size_t) (lb - fb - 1));
        }
    } else {
        n = kv_bitmap_popcount(s.p + start, (size_t) (end - start + 1));
    }
    kv_reply_int(&c->out, (long long) n);
}

static void bitpos_cmd(kv_client_t *c)
{
    kv_bits_str s;
    long long bit, start, end;
    int isbit = 0, end_given = 0;
    if (kv_bits_parse_ll(c, &c->argv[2], &bit)) return;
    if (bit != 0 && bit != 1) {
        kv_reply_error_cstr(&c->out, "The bit argument must be 1 or 0.");
        return;
    }
    if (kv_bits_lookup_read(c, &c->argv[1], &s)) return;
    /* A missing key is an endless run of zero bits. */
    if (!s.exists) {
        kv_reply_int(&c->out, bit ? -1 : 0);
        return;
    }
    long long totlen = (long long) s.len;
    if (c->argc >= 4 && c->argc <= 6) {
        if (kv_bits_parse_ll(c, &c->argv[3], &start)) return;
        if (c->argc == 6 && parse_unit(c, &c->argv[5], &isbit)) return;
        if (c->argc >= 5) {
            if (kv_bits_parse_ll(c, &c->argv[4], &end)) return;
            end_given = 1;
        } else {
            end = isbit ? totlen * 8 + 7 : totlen - 1;
        }
        clamp_range(isbit ? totlen * 8 : totlen, &start, &end);
    } else if (c->argc == 3) {
        start = 0, end = totlen - 1;
    } else {
        kv_reply_syntax(c);
        return;
    }
    if (start > end) {
        kv_reply_int(&c->out, -1);
        return;
    }
    uint64_t first = isbit ? (uint64_t) start : (uint64_t) start * 8;
    uint64_t last = isbit ? (uint64_t) end : (uint64_t) end * 8 + 7;
    int64_t pos = kv_bitmap_pos(s.p, first, last, (int) bit);
    /* No clear bit in range: without an explicit end the string counts as
     * zero-padded on the right, so the answer is the first bit past the
     * range's last byte. */
    if (pos < 0 && bit == 0 && !end_given) pos = (int64_t) ((last >> 3) + 1) * 8;
    kv_reply_int(&c->out, pos);
}

static void bitop_cmd(kv_client_t *c)
{
    const kv_resp_arg *opa = &c->argv[1];
    kv_bitop_e op;
    if (kv_arg_is(opa, "and")) op = KV_BITOP_AND;
    else if (kv_arg_is(opa, "or")) op = KV_BITOP_OR;
    else if (kv_arg_is(opa, "xor")) op = KV_BITOP_XOR;
    else if (kv_arg_is(opa, "not")) op = KV_BITOP_NOT;
    else {
        kv_reply_syntax(c);
        return;
    }
    if (op == KV_BITOP_NOT && c->argc != 4) {
        kv_reply_error_cstr(&c->out, "BITOP NOT must be called with a single source key.");
        return;
    }
    size_t n = (size_t) c->argc - 3, maxlen = 0;
    kv_bits_str *s = malloc(n * sizeof(*s));
    const unsigned char **src = malloc(n * sizeof(*src));
    size_t *len = malloc(n * sizeof(*len));
    unsigned char *res = NULL;
    if (!s || !src || !len) goto oom;
    for (size_t i = 0; i < n; i++) {
        if (kv_bits_lookup_read(c, &c->argv[3 + i], &s[i])) goto done;
        src[i] = s[i].p, len[i] = s[i].len;
        if (len[i] > maxlen) maxlen = len[i];
    }
    const kv_resp_arg *dst = &c->argv[2];
    if (maxlen) {
        if (!(res = malloc(maxlen))) goto oom;
        kv_bitmap_op(op, res, maxlen, src, len, n);
        /* Redis stores the result as a fresh "raw" string without TTL. */
        kv_db_set_str(c->db, dst->ptr, dst->len, (const char *) res, maxlen, KV_SET_RAW);
        kv_db_changed(c->db, dst->ptr, dst->len, 1);
        kv_notify(c->db, KV_NOTIFY_STRING, "set", dst->ptr, dst->len);
    } else if (kv_db_delete(c->db, dst->ptr, dst->len)) {
        kv_db_changed(c->db, dst->ptr, dst->len, 1);
        kv_notify(c->db, KV_NOTIFY_GENERIC, "del", dst->ptr, dst->len);
    }
    kv_reply_int(&c->out, (long long) maxlen);
    goto done;
oom:
    kv_reply_error_cstr(&c->out, KV_ERR_OOM);
done:
    free(res);
    free(len);
    free(src);
    free(s);
}

#define BIT_W (KV_CMD_WRITE | KV_CMD_DENYOOM)
#define BIT_R (KV_CMD_READONLY)

const kv_cmd_t kv_bitops_cmds[] = {
    { "bitcount", -2, BIT_R, 1, 1, 1, KV_ROUTE_KEY, bitcount_cmd, "bitmap", "2.6.0",
      "Counts the number of set bits (population counting) in a string." },
    { "bitfield", -2, BIT_W, 1, 1, 1, KV_ROUTE_KEY, kv_bitfield_cmd, "bitmap", "3.2.0",
      "Performs arbitrary bitfield integer operations on strings." },
    { "bitfield_ro", -2, BIT_R | KV_CMD_FAST, 1, 1, 1, KV_ROUTE_KEY, kv_bitfield_ro_cmd, "bitmap",
      "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings." },
    { "bitop", -4, BIT_W, 2, -1, 1, KV_ROUTE_KEYS, bitop_cmd, "bitmap", "2.6.0",
      "Performs bitwise operations on multiple strings, and stores the result." },
    { "bitpos", -3, BIT_R, 1, 1, 1, KV_ROUTE_KEY, bitpos_cmd, "bitmap", "2.8.7",
      "Finds the first set (1) or clear (0) bit in a string." },
    { "getbit", 3, BIT_R | KV_CMD_FAST, 1, 1, 1, KV_ROUTE_KEY, getbit_cmd, "bitmap", "2.2.0",
      "Returns a bit value by offset." },
    { "lcs", -3, BIT_R, 1, 2, 1, KV_ROUTE_KEYS, kv_lcs_cmd, "string", "7.0.0",
      "Finds the longest common substring." },
    { "setbit", 4, BIT_W, 1, 1, 1, KV_ROUTE_KEY, setbit_cmd, "bitmap", "2.2.0",
      "Sets or clears the bit at offset of the string value. Creates the key if it doesn't "
      "exist." },
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
