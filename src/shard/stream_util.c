/* Stream command helpers: ID parsing, lookups and range replies, as
 * Redis 7.0's t_stream.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "shard/stream_cmd.h"

/* Redis's string2ull: string2ll, else strtoull (which takes "+5", " 5"). */
static int str2ull(const char *s, unsigned long long *v)
{
    long long ll;
    if (kv_str2ll(s, strlen(s), &ll)) {
        if (ll < 0) return 0;
        *v = (unsigned long long)ll;
        return 1;
    }
    errno = 0;
    char *end = NULL;
    *v = strtoull(s, &end, 10);
    if (errno == EINVAL || errno == ERANGE || !(*s != '\0' && *end == '\0')) return 0;
    return 1;
}

int kv_sid_parse(kv_client_t *c, const kv_resp_arg *a, kv_sid *id, uint64_t missing_seq,
                 int strict, int *seq_given)
{
    char buf[128];
    unsigned long long ms, seq;
    if (a->len > sizeof buf - 1) goto invalid;
    memcpy(buf, a->ptr, a->len);
    buf[a->len] = '\0'; /* C string semantics, as Redis: stops at a NUL */
    if (strict && (buf[0] == '-' || buf[0] == '+') && buf[1] == '\0') goto invalid;
    if (seq_given) *seq_given = 1;
    if (buf[0] == '-' && buf[1] == '\0') {
        id->ms = id->seq = 0;
        return 0;
    }
    if (buf[0] == '+' && buf[1] == '\0') {
        id->ms = id->seq = UINT64_MAX;
        return 0;
    }
    char *dot = strchr(buf, '-');
    if (dot) *dot = '\0';
    if (!str2ull(buf, &ms)) goto invalid;
    if (dot) {
        if (seq_given && strlen(dot + 1) == 1 && dot[1] == '*') {
            seq = 0;
            *seq_given = 0;
        } else if (!str2ull(dot + 1, &seq)) {
            goto invalid;
        }
    } else {
        seq = missing_seq;
    }
    id->ms = ms, id->seq = seq;
    return 0;
invalid:
    if (c) kv_reply_error_cstr(&c->out, KV_SERR_ID);
    return -1;
}

int kv_sid_parse_interval(kv_client_t *c, const kv_resp_arg *a, kv_sid *id, int *exclude,
                          uint64_t missing_seq)
{
    *exclude = a->len > 1 && a->ptr[0] == '(';
    if (*exclude) {
        kv_resp_arg t = *a;
        t.ptr++, t.len--;
        return kv_sid_parse(c, &t, id, missing_seq, 1, NULL);
    }
    return kv_sid_parse(c, a, id, missing_seq, 0, NULL);
}

kv_dict_entry *kv_stream_lookup(kv_client_t *c, int i, int write, int *wrong)
{
    kv_dict_entry *e =
        kv_db_find(c->db, c->argv[i].ptr, c->argv[i].len, write ? KV_LOOKUP_WRITE : 0);
    *wrong = 0;
    if (e && kv_db_obj(e)->type != KV_TYPE_STREAM) {
        kv_reply_wrongtype(c);
        *wrong = 1;
        return NULL;
    }
    return e;
}

void kv_sreply_id(kv_reply_buf *out, const kv_sid *id)
{
    char buf[48];
    int n = kv_sid_fmt(buf, id);
    kv_reply_bulk(out, buf, (size_t)n);
}

void kv_sdefer_begin(kv_client_t *c, kv_sdefer *d)
{
    d->saved = c->out;
    kv_reply_buf_init(&c->out);
}

void kv_sbuf_move(kv_reply_buf *dst, kv_reply_buf *src)
{
    struct iovec iov[32];
    int k;
    while ((k = kv_reply_buf_iov(src, iov, 32)) > 0) {
        size_t got = 0;
        for (int i = 0; i < k; i++) {
            kv_reply_buf_append(dst, iov[i].iov_base, iov[i].iov_len);
            got += iov[i].iov_len;
        }
        kv_reply_buf_consume(src, got);
    }
    kv_reply_buf_free(src);
}

void kv_sdefer_end(kv_client_t *c, kv_sdefer *d, long long n)
{
    kv_reply_buf tmp = c->out;
    c->out = d->saved;
    kv_reply_array(&c->out, n);
    kv_sbuf_move(&c->out, &tmp);
}

static void reply_lpval(kv_reply_buf *out, const kv_lp_val *v)
{
    if (v->s) kv_reply_bulk(out, v->s, v->len);
    else kv_reply_bulk_ll(out, v->ll);
}

void kv_sreply_entry(kv_reply_buf *out, kv_siter *it, const kv_sid *id, int64_t nf)
{
    kv_reply_array(out, 2);
    kv_sreply_id(out, id);
    kv_reply_array(out, nf * 2);
    while (nf--) {
        kv_lp_val f, v;
        kv_siter_field(it, &f, &v);
        reply_lpval(out, &f);
        reply_lpval(out, &v);
    }
}

/* streamReplyWithRangeFromConsumerPEL */
static size_t reply_consumer_pel(kv_client_t *c, kv_stream *s, const kv_sid *start,
                                 const kv_sid *end, size_t count, kv_sconsumer *cons)
{
    kv_sdefer d;
    size_t n = 0;
    int64_t now = (int64_t)kv_time_unix_ms();
    kv_sdefer_begin(c, &d);
    for (size_t i = kv_spel_lower(&cons->pel, start); i < cons->pel.n && (!count || n < count);
         i++) {
        kv_snack *nk = kv_spel_at(&cons->pel, i);
        if (end && kv_sid_cmp(&nk->id, end) > 0) break;
        if (kv_sreply_range(c, s, &nk->id, &nk->id, 1, 0, NULL, NULL, KV_RWR_RAWENTRIES) == 0) {
            kv_reply_array(&c->out, 2);
            kv_sreply_id(&c->out, &nk->id);
            kv_reply_null_array(&c->out);
        } else {
            nk->delivery_time = now;
            nk->delivery_count++;
        }
        n++;
    }
    kv_sdefer_end(c, &d, (long long)n);
    return n;
}

size_t kv_sreply_range(kv_client_t *c, kv_stream *s, const kv_sid *start, const kv_sid *end,
                       size_t count, int rev, kv_sgroup *g, kv_sconsumer *cons, int flags)
{
    if (g && (flags & KV_RWR_HISTORY)) return reply_consumer_pel(c, s, start, end, count, cons);
    kv_sdefer d;
    size_t n = 0;
    int raw = flags & KV_RWR_RAWENTRIES;
    int64_t now = g ? (int64_t)kv_time_unix_ms() : 0;
    if (!raw) kv_sdefer_begin(c, &d);
    kv_siter it;
    kv_sid id;
    int64_t nf;
    kv_siter_start(&it, s, start, end, rev);
    while (kv_siter_next(&it, &id, &nf)) {
        if (g && kv_sid_cmp(&id, &g->last_id) > 0) {
            if (g->entries_read != KV_SCG_INVALID_ENTRIES_READ &&
                !kv_stream_range_has_tombstones(s, &id, NULL))
                g->entries_read++;
            else if (s->entries_added)
                g->entries_read = kv_stream_estimate_distance(s, &id);
            g->last_id = id;
        }
        kv_sreply_entry(&c->out, &it, &id, nf);
        if (g && !(flags & KV_RWR_NOACK)) {
            kv_snack *nk = kv_spel_find(&g->pel, &id);
            if (nk) { /* already pending (XGROUP SETID moved back): reassign */
                kv_sgroup_nack_move(nk, cons);
                nk->delivery_time = now;
                nk->delivery_count = 1;
            } else {
                kv_sgroup_nack_add(s, g, cons, &id, now);
            }
        }
        n++;
        if (count && count == n) break;
    }
    if (!raw) kv_sdefer_end(c, &d, (long long)n);
    return n;
}
