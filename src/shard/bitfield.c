/*
 * BITFIELD and BITFIELD_RO: GET / SET / INCRBY on i1..i64 and u1..u63
 * fields at bit offsets (or "#N" = N field widths), OVERFLOW WRAP | SAT |
 * FAIL applying to the operations after it.
 *
 * As in Redis, every argument is parsed and checked before the key is
 * touched, so a bad operation anywhere leaves the value unchanged; the
 * string then grows once to the farthest bit any write reaches.
 */
#include <stdlib.h>
#include <string.h>

#include "shard/bitmap.h"
#include "shard/bitops.h"
#include "shard/cmd.h"
#include "shard/db.h"
#include "shard/t_util.h"
#include "shard/notify.h"

enum { BF_GET, BF_SET, BF_INCRBY };

typedef struct {
    uint64_t offset;
    int64_t i64; /* SET value or INCRBY increment */
    int opcode;
    kv_bf_overflow_e ow;
    int bits;
    int sign;
} bf_op;

/* getBitfieldTypeFromArgument: i1..i64 or u1..u63 (a u64 could not be
 * replied as a RESP integer). */
static int parse_type(kv_client_t *c, const kv_resp_arg *a, int *sign, int *bits)
{
    long long n;
    if (a->len > 0 && (a->ptr[0] == 'i' || a->ptr[0] == 'u')) {
        *sign = a->ptr[0] == 'i';
        if (kv_str2ll(a->ptr + 1, a->len - 1, &n) && n >= 1 && n <= (*sign ? 64 : 63)) {
            *bits = (int) n;
            return 0;
        }
    }
    kv_reply_error_cstr(&c->out, "Invalid bitfield type. Use something like i16 u8. Note that u64 "
                                 "is not supported but i64 is.");
    return -1;
}

/* Run one SET/INCRBY on p; replies the result (or null on FAIL). */
static void run_write(kv_client_t *c, unsigned char *p, size_t len, const bf_op *op)
{
    if (op->sign) {
        int64_t oldv = kv_bitfield_get_i(p, len, op->offset, op->bits), newv, wrapped = 0, ret;
        int of;
        if (op->opcode == BF_INCRBY) {
            of = kv_bitfield_check_i(oldv, op->i64, op->bits, op->ow, &wrapped);
            newv = of ? wrapped : (int64_t) ((uint64_t) oldv + (uint64_t) op->i64);
            ret = newv;
        } else {
            newv = op->i64;
            of = kv_bitfield_check_i(newv, 0, op->bits, op->ow, &wrapped);
            if (of) newv = wrapped;
            ret = oldv;
        }
        if (of && op->ow == KV_BF_FAIL) {
            kv_reply_null(&c->out);
            return;
        }
        kv_reply_int(&c->out, ret);
        kv_bitfield_set(p, op->offset, op->bits, (uint64_t) newv);
    } else {
        uint64_t oldv = kv_bitfield_get_u(p, len, op->offset, op->bits), newv, wrapped = 0, ret;
        int of;
        if (op->opcode == BF_INCRBY) {
            of = kv_bitfield_check_u(oldv, op->i64, op->bits, op->ow, &wrapped);
            newv = of ? wrapped : oldv + (uint64_t) op->i64;
            ret = newv;
        } else {
            newv = (uint64_t) op->i64;
            of = kv_bitfield_check_u(newv, 0, op->bits, op->ow, &wrapped);
            if (of) newv = wrapped;
            ret = oldv;
        }
        if (of && op->ow == KV_BF_FAIL) {
            kv_reply_null(&c->out);
            return;
        }
        kv_reply_int(&c->out, (long long) ret);
        kv_bitfield_set(p, op->offset, op->bits, newv);
    }
}

static void bitfield_generic(kv_client_t *c, int ro)
{
    bf_op *ops = NULL;
    int nops = 0, cap = 0, readonly = 1;
    kv_bf_overflow_e ow = KV_BF_WRAP;
    uint64_t highest = 0;

    for (int j = 2; j < c->argc; j++) {
        int rem = c->argc - j - 1;
        const kv_resp_arg *sub = &c->argv[j];
        bf_op op = {0};
        if (kv_arg_is(sub, "get") && rem >= 2) {
            op.opcode = BF_GET;
        } else if (kv_arg_is(sub, "set") && rem >= 3) {
            op.opcode = BF_SET;
        } else if (kv_arg_is(sub, "incrby") && rem >= 3) {
            op.opcode = BF_INCRBY;
        } else if (kv_arg_is(sub, "overflow") && rem >= 1) {
            const kv_resp_arg *t = &c->argv[++j];
            if (kv_arg_is(t, "wrap")) ow = KV_BF_WRAP;
            else if (kv_arg_is(t, "sat")) ow = KV_BF_SAT;
            else if (kv_arg_is(t, "fail")) ow = KV_BF_FAIL;
            else {
                kv_reply_error_cstr(&c->out, "Invalid OVERFLOW type specified");
                goto done;
            }
            continue;
        } else {
            kv_reply_syntax(c);
            goto done;
        }
        if (parse_type(c, &c->argv[j + 1], &op.sign, &op.bits)) goto done;
        if (kv_bits_parse_offset(c, &c->argv[j + 2], 1, op.bits, &op.offset)) goto done;
        if (op.opcode != BF_GET) {
            long long v;
            readonly = 0;
            uint64_t last = op.offset + (uint64_t) op.bits - 1;
            if (highest < last) highest = last;
            if (kv_bits_parse_ll(c, &c->argv[j + 3], &v)) goto done;
            op.i64 = v;
        }
        op.ow = ow;
        if (nops == cap) {
            cap = cap ? cap * 2 : 4;
            bf_op *n = realloc(ops, sizeof(*ops) * (size_t) cap);
            if (!n) {
                kv_reply_error_cstr(&c->out, KV_ERR_OOM);
                goto done;
            }
            ops = n;
        }
        ops[nops++] = op;
        j += op.opcode == BF_GET ? 2 : 3;
    }

    if (readonly) {
        kv_bits_str s;
        if (kv_bits_lookup_read(c, &c->argv[1], &s)) goto done;
        kv_reply_array(&c->out, nops);
        for (int i = 0; i < nops; i++) {
            if (ops[i].sign)
                kv_reply_int(&c->out, kv_bitfield_get_i(s.p, s.len, ops[i].offset, ops[i].bits));
            else
                kv_reply_int(&c->out,
                             (long long) kv_bitfield_get_u(s.p, s.len, ops[i].offset, ops[i].bits));
        }
        goto done;
    }
    if (ro) {
        kv_reply_error_cstr(&c->out, "BITFIELD_RO only supports the GET subcommand");
        goto done;
    }
    size_t len;
    unsigned char *p = kv_bits_string_for_write(c, highest, &len);
    if (!p) goto done;
    kv_reply_array(&c->out, nops);
    for (int i = 0; i < nops; i++) {
        if (ops[i].opcode == BF_GET) {
            if (ops[i].sign)
                kv_reply_int(&c->out, kv_bitfield_get_i(p, len, ops[i].offset, ops[i].bits));
            else
                kv_reply_int(&c->out,
                             (long long) kv_bitfield_get_u(p, len, ops[i].offset, ops[i].bits));
        } else {
            run_write(c, p, len, &ops[i]);
        }
    }
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_notify(c->db, KV_NOTIFY_STRING, "setbit", c->argv[1].ptr, c->argv[1].len);
done:
    free(ops);
}

void kv_bitfield_cmd(kv_client_t *c) { bitfield_generic(c, 0); }

void kv_bitfield_ro_cmd(kv_client_t *c) { bitfield_generic(c, 1); }
