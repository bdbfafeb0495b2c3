/* Shared by the stream command files (t_stream.c, stream_group.c,
 * stream_info.c): ID parsing and the reply helpers of Redis's t_stream.c. */
#ifndef KV_SHARD_STREAM_CMD_H
#define KV_SHARD_STREAM_CMD_H

#include "shard/stream_type.h"
#include "shard/t_util.h"

#define KV_SERR_ID "Invalid stream ID specified as stream command argument"

/* streamGenericParseIDOrReply: "-", "+" (not when strict), "ms", "ms-seq",
 * and with seq_given non-NULL "ms-*". c NULL: no error reply. 0 / -1. */
int kv_sid_parse(kv_client_t *c, const kv_resp_arg *a, kv_sid *id, uint64_t missing_seq,
                 int strict, int *seq_given);
/* streamParseIntervalIDOrReply: a "(" prefix makes the bound exclusive. */
int kv_sid_parse_interval(kv_client_t *c, const kv_resp_arg *a, kv_sid *id, int *exclude,
                          uint64_t missing_seq);

/* The stream at argv[i]: NULL when missing (nothing replied) or of
 * another type (*wrong set, WRONGTYPE replied). */
kv_dict_entry *kv_stream_lookup(kv_client_t *c, int i, int write, int *wrong);
static inline kv_stream *kv_stream_of(kv_dict_entry *e) { return kv_db_ptr(kv_db_obj(e)); }

void kv_sreply_id(kv_reply_buf *out, const kv_sid *id);

/* Arrays whose length is known only after their elements (Redis's
 * addReplyDeferredLen): elements go to a scratch buffer in between. */
typedef struct { kv_reply_buf saved; } kv_sdefer;
void kv_sdefer_begin(kv_client_t *c, kv_sdefer *d);
void kv_sdefer_end(kv_client_t *c, kv_sdefer *d, long long n);
/* Append src's bytes to dst and empty src. */
void kv_sbuf_move(kv_reply_buf *dst, kv_reply_buf *src);

/* streamReplyWithRange flags */
#define KV_RWR_NOACK 1
#define KV_RWR_RAWENTRIES 2 /* no outer array */
#define KV_RWR_HISTORY 4    /* the consumer's own PEL */
size_t kv_sreply_range(kv_client_t *c, kv_stream *s, const kv_sid *start, const kv_sid *end,
                       size_t count, int rev, kv_sgroup *g, kv_sconsumer *cons, int flags);
/* One entry [id, [f, v, ...]] at the iterator's current position. */
void kv_sreply_entry(kv_reply_buf *out, kv_siter *it, const kv_sid *id, int64_t nf);

/* Change the db's byte count by a stream's growth. */
#define KV_SMEM_BEFORE(s) size_t smem_before_ = kv_stream_mem((s), 0)
#define KV_SMEM_AFTER(c, s) ((c)->db->mem_values += kv_stream_mem((s), 0) - smem_before_)

/* Handlers in other files (stream_group.c, stream_info.c). */
void kv_xgroup_cmd(kv_client_t *c);
void kv_xack_cmd(kv_client_t *c);
void kv_xpending_cmd(kv_client_t *c);
void kv_xclaim_cmd(kv_client_t *c);
void kv_xautoclaim_cmd(kv_client_t *c);
void kv_xsetid_cmd(kv_client_t *c);
void kv_xinfo_cmd(kv_client_t *c);

#endif
