/* Helpers shared by the sorted-set command files (t_zset.c,
 * zset_range.c, zset_setops.c): argument parsing with Redis 7.0's exact
 * rules and errors, key lookup, and storing a computed result. */
#ifndef KV_SHARD_ZSET_CMD_H
#define KV_SHARD_ZSET_CMD_H

#include "shard/t_util.h"
#include "shard/zset_type.h"

#define KV_ERR_ZRANGE "min or max is not a float"
#define KV_ERR_ZLEX "min or max not valid string range item"

/* Redis's getDoubleFromObject (strtod on the whole argument; no leading
 * space, no overflow, not NaN): 1 on success. */
int kv_zarg_double(const kv_resp_arg *a, double *d);
/* zslParseRange / zslParseLexRange: 1 on success. */
int kv_zarg_range(const kv_resp_arg *min, const kv_resp_arg *max, kv_zrange *r);
int kv_zarg_lex(const kv_resp_arg *min, const kv_resp_arg *max, kv_zlex *r);

/* Look up argv[i]: 1 with *e (NULL when missing), or 0 after replying
 * WRONGTYPE. */
int kv_zlookup(kv_client_t *c, int i, int flags, kv_dict_entry **e);

/* After a write that may have emptied key's zset: delete the key. */
void kv_zset_drop_if_empty(kv_db_t *db, kv_dict_entry *e);

/* Replace key with the finished value v (the db takes it), as Redis's
 * setKey after zsetConvertToListpackIfNeeded: any old value and TTL go; a
 * value with no element deletes the key instead. Returns its length. */
size_t kv_zset_store(kv_db_t *db, const kv_resp_arg *key, kv_zval *v);

/* Reply elements of ranks [from, from+n) (rev: [from, from-n) going down)
 * as RESP2 does: member[, score]. */
void kv_zreply_ranks(kv_client_t *c, const kv_obj *o, size_t from, size_t n, int rev, int scores);

/* Pop up to count (< 0: one) elements from the min or max end of the
 * zset at argv[ki] (entry e), replied as ZPOPMIN's [m, s, ...] (FLAT),
 * ZMPOP's [key, [[m, s] ...]] (NESTED) or BZPOPMIN's [key, m, s] (KEY). */
enum { KV_ZPOP_FLAT, KV_ZPOP_NESTED, KV_ZPOP_KEY };
void kv_zset_pop_key(kv_client_t *c, int ki, kv_dict_entry *e, int max, int emit, long long count);
/* [B]ZMPOP's arguments from numkeys at argv[ni]: 0 after replying the
 * error (count is 1 when not given). */
int kv_zmpop_args(kv_client_t *c, int ni, long long *numkeys, int *max, long long *count);

/* Handlers of the other command files, listed in t_zset.c's table. */
void kv_zrange_cmd(kv_client_t *c);
void kv_zrevrange_cmd(kv_client_t *c);
void kv_zrangebyscore_cmd(kv_client_t *c);
void kv_zrevrangebyscore_cmd(kv_client_t *c);
void kv_zrangebylex_cmd(kv_client_t *c);
void kv_zrevrangebylex_cmd(kv_client_t *c);
void kv_zrangestore_cmd(kv_client_t *c);
void kv_zremrangebyrank_cmd(kv_client_t *c);
void kv_zremrangebyscore_cmd(kv_client_t *c);
void kv_zremrangebylex_cmd(kv_client_t *c);
void kv_zunion_cmd(kv_client_t *c);
void kv_zinter_cmd(kv_client_t *c);
void kv_zdiff_cmd(kv_client_t *c);
void kv_zunionstore_cmd(kv_client_t *c);
void kv_zinterstore_cmd(kv_client_t *c);
void kv_zdiffstore_cmd(kv_client_t *c);
void kv_zintercard_cmd(kv_client_t *c);
void kv_bzpopmin_cmd(kv_client_t *c);
void kv_bzpopmax_cmd(kv_client_t *c);
void kv_bzmpop_cmd(kv_client_t *c);

#endif
