/*
 * BZPOPMIN, BZPOPMAX, BZMPOP, as Redis 7.0's blockingGenericZpopCommand:
 * the non-blocking form when a key has members, else wait (shard/block.h).
 * Logged as ZPOPMIN/ZPOPMAX key [count], what Redis propagates, so that a
 * replay does not depend on which key a re-run looks at first.
 */
#include <stdio.h>

#include "shard/block.h"
#include "shard/zset_cmd.h"

/* Keys argv[first .. first+nkeys), the timeout at argv[ti]; count < 0:
 * one member, replied as [key, member, score]. */
static void bzpop(kv_client_t *c, int first, int nkeys, int max, long long count, int ti)
{
    long long timeout;
    if (!kv_block_timeout(c, ti, 1, &timeout)) return;
    int woken = kv_block_ready_key() != NULL;
    for (int j = first; j < first + nkeys; j++) {
        kv_dict_entry *e;
        if (woken) {                    /* only the key that changed, if a zset */
            if (!kv_block_is_ready_key(&c->argv[j])) continue;
            e = kv_db_find(c->db, c->argv[j].ptr, c->argv[j].len, KV_LOOKUP_WRITE);
            if (!e || kv_db_obj(e)->type != KV_TYPE_ZSET) break;
        } else {
            if (!kv_zlookup(c, j, KV_LOOKUP_WRITE, &e)) return;
            if (!e) continue;
        }
        long long len = (long long)kv_zset_len(kv_db_obj(e));
        kv_resp_arg k = c->argv[j];
        kv_zset_pop_key(c, j, e, max, count < 0 ? KV_ZPOP_KEY : KV_ZPOP_NESTED, count);
        char nbuf[24];
        int nlen = snprintf(nbuf, sizeof nbuf, "%lld", count < len ? count : len);
        kv_resp_arg av[3] = { { max ? "ZPOPMAX" : "ZPOPMIN", 7 }, k, { nbuf, (size_t)nlen } };
        kv_fwd_propagate_as(c, count < 0 ? 2 : 3, av);
        return;
    }
    if (!kv_block_wait(c->argc, c->argv, first, nkeys, timeout)) kv_reply_null_array(&c->out);
}

void kv_bzpopmin_cmd(kv_client_t *c) { bzpop(c, 1, c->argc - 2, 0, -1, c->argc - 1); }
void kv_bzpopmax_cmd(kv_client_t *c) { bzpop(c, 1, c->argc - 2, 1, -1, c->argc - 1); }

/* BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: the
 * arguments first, then the timeout, as Redis. */
void kv_bzmpop_cmd(kv_client_t *c)
{
    long long numkeys, count;
    int max;
    if (!kv_zmpop_args(c, 2, &numkeys, &max, &count)) return;
    bzpop(c, 3, (int)numkeys, max, count, 1);
}
