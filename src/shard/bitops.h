/*
 * Shared by the bit and LCS command files (bitops.c, bitfield.c,
 * t_lcs.c): reading a string value, argument helpers with Redis's error
 * texts, and the handlers the command table in bitops.c lists.
 */
#ifndef KV_SHARD_BITOPS_H
#define KV_SHARD_BITOPS_H

#include <stddef.h>
#include <stdint.h>

#include "shard/conn.h"
#include "shard/db.h"

/* Reply to an allocation that failed (Redis would have refused the
 * command at maxmemory instead). */
#ifndef KV_ERR_OOM
#define KV_ERR_OOM "-OOM command not allowed when used memory > 'maxmemory'."
#endif

/* A string value for reading: p/len stay valid until the keyspace
 * changes; an "int" value is formatted into ibuf (so a kv_bits_str must
 * not be copied while p is in use). exists = 0: no such key (p = "",
 * len = 0). */
typedef struct kv_bits_str {
    const unsigned char *p;
    size_t len;
    int exists;
    char ibuf[KV_DB_INTBUF];
} kv_bits_str;

/* Look key up for reading; replies WRONGTYPE and returns -1 when it
 * holds another type. */
int kv_bits_lookup_read(kv_client_t *c, const kv_resp_arg *key, kv_bits_str *s);
/* Fill s from a string entry (or e = NULL: missing key). */
void kv_bits_from_entry(kv_dict_entry *e, kv_bits_str *s);
/* Redis's getLongLongFromObjectOrReply: strict decimal, else "value is
 * not an integer or out of range". */
int kv_bits_parse_ll(kv_client_t *c, const kv_resp_arg *a, long long *v);
/* getBitOffsetFromArgument; hash: accept "#N" as N * bits (BITFIELD). */
int kv_bits_parse_offset(kv_client_t *c, const kv_resp_arg *a, int hash, int bits, uint64_t *off);
/* The string at argv[1] for writing, zero-grown to hold bit maxbit
 * (created if missing, encoding left "raw" as Redis does). NULL after
 * replying WRONGTYPE. */
unsigned char *kv_bits_string_for_write(kv_client_t *c, uint64_t maxbit, size_t *len);

void kv_bitfield_cmd(kv_client_t *c);
void kv_bitfield_ro_cmd(kv_client_t *c);
void kv_lcs_cmd(kv_client_t *c);

#endif
