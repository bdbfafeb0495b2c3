/* Internal to the set command files (t_set.c, set_ops.c, set_rand.c):
 * shared lookups, reply helpers and the handlers t_set.c's table names. */
#ifndef KV_SHARD_SET_CMD_H
#define KV_SHARD_SET_CMD_H

#include "shard/set_type.h"
#include "shard/t_util.h"

/* Keep the db's byte counter in step with a change of o's value. */
#define KV_SET_MEM_BEFORE(o) size_t set_mem_before_ = kv_set_mem(kv_db_ptr(o), (o)->enc)
#define KV_SET_MEM_AFTER(c, o)                                                                 \
    ((c)->db->mem_values += kv_set_mem(kv_db_ptr(o), (o)->enc) - set_mem_before_)

/* The set at key k, or NULL when missing (nothing replied) or of another
 * type (*wrong set, WRONGTYPE replied). */
kv_dict_entry *kv_set_lookup(kv_client_t *c, const kv_resp_arg *k, int flags, int *wrong);
void kv_set_reply_val(kv_client_t *c, const kv_lp_val *v);

void kv_sinter_cmd(kv_client_t *c);
void kv_sintercard_cmd(kv_client_t *c);
void kv_sinterstore_cmd(kv_client_t *c);
void kv_sunion_cmd(kv_client_t *c);
void kv_sunionstore_cmd(kv_client_t *c);
void kv_sdiff_cmd(kv_client_t *c);
void kv_sdiffstore_cmd(kv_client_t *c);
void kv_spop_cmd(kv_client_t *c);
void kv_srandmember_cmd(kv_client_t *c);

#endif
