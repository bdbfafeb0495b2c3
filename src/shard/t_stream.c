/* Stream commands, reply for reply as Redis 7.0's t_stream.c: XADD,
 * XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XREAD, XREADGROUP and the table.
 * Consumer-group commands are in stream_group.c, XINFO in stream_info.c.
 * XREAD/XREADGROUP BLOCK wait through shard/block.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "shard/block.h"
#include "shard/forward.h"
#include "shard/stream_cmd.h"

#define OOM_ERR "-OOM command not allowed when used memory > 'maxmemory'."

/* streamParseAddOrTrimArgsOrReply: the index of the ID (XADD) or of the
 * last option, or -1 after replying an error. */
static int parse_add_trim(kv_client_t *c, kv_strim *t, int xadd, kv_sid *id, int *id_given,
                          int *seq_given, int *nomk)
{
    int i = 2, limit_given = 0;
    memset(t, 0, sizeof *t);
    *id_given = 0, *seq_given = 1, *nomk = 0;
    for (; i < c->argc; i++) {
        int more = c->argc - 1 - i;
        const kv_resp_arg *a = &c->argv[i];
        if (xadd && a->len >= 1 && a->ptr[0] == '*' && (a->len == 1 || a->ptr[1] == '\0')) {
            break;
        } else if ((kv_arg_is(a, "maxlen") || kv_arg_is(a, "minid")) && more) {
            int minid = kv_arg_is(a, "minid");
            if (t->strategy != KV_TRIM_NONE) {
                kv_reply_error_cstr(&c->out, "syntax error, MAXLEN and MINID options at the same "
                                             "time are not compatible");
                return -1;
            }
            t->approx = 0;
            const kv_resp_arg *nx = &c->argv[i + 1];
            int one = nx->len >= 1 && (nx->len == 1 || nx->ptr[1] == '\0');
            if (more >= 2 && one && nx->ptr[0] == '~') {
                t->approx = 1;
                i++;
            } else if (more >= 2 && one && nx->ptr[0] == '=') {
                i++;
            }
            if (minid) {
                if (kv_sid_parse(c, &c->argv[i + 1], &t->minid, 0, 1, NULL) < 0) return -1;
            } else {
                if (!kv_arg_ll(c, i + 1, &t->maxlen)) return -1;
                if (t->maxlen < 0) {
                    kv_reply_error_cstr(&c->out, "The MAXLEN argument must be >= 0.");
                    return -1;
                }
            }
            i++;
            t->strategy = minid ? KV_TRIM_MINID : KV_TRIM_MAXLEN;
        } else if (kv_arg_is(a, "limit") && more) {
            if (!kv_arg_ll(c, i + 1, &t->limit)) return -1;
            if (t->limit < 0) {
                kv_reply_error_cstr(&c->out, "The LIMIT argument must be >= 0.");
                return -1;
            }
            limit_given = 1;
            i++;
        } else if (xadd && kv_arg_is(a, "nomkstream")) {
            *nomk = 1;
        } else if (xadd) {
            if (kv_sid_parse(c, a, id, 0, 1, seq_given) < 0) return -1;
            *id_given = 1;
            break;
        } else {
            kv_reply_syntax(c);
            return -1;
        }
    }
    if (t->limit && t->strategy == KV_TRIM_NONE) {
        kv_reply_error_cstr(&c->out, "syntax error, LIMIT cannot be used without specifying a "
                                     "trimming strategy");
        return -1;
    }
    if (!xadd && t->strategy == KV_TRIM_NONE) {
        kv_reply_error_cstr(&c->out, "syntax error, XTRIM must be called with a trimming strategy");
        return -1;
    }
    if (limit_given) {
        if (!t->approx) {
            kv_reply_error_cstr(&c->out,
                                "syntax error, LIMIT cannot be used without the special ~ option");
            return -1;
        }
    } else if (t->approx) {
        t->limit = 100 * kv_stream_node_max_entries;
        if (t->limit <= 0 || t->limit > 10000) t->limit = 10000;
    } else {
        t->limit = 0;
    }
    return i;
}

/*
 * The AOF (and replicas) must replay XADD to the same stream: the ID it
 * chose is written out explicitly, and a trim (approximate or with LIMIT,
 * which depend on node layout) as the exact XTRIM MAXLEN = length it left.
 */
static void xadd_propagate(kv_client_t *c, int idpos, int nomk, const kv_sid *added, int trimmed,
                           unsigned long long length)
{
    char idbuf[48], lenbuf[24];
    int nf = c->argc - idpos - 1, n = 0;
    kv_resp_arg *av = malloc(sizeof(*av) * (size_t) (nf + 4));
    if (!av) return;
    av[n++] = c->argv[0];
    av[n++] = c->argv[1];
    if (nomk) av[n++] = (kv_resp_arg) { "NOMKSTREAM", 10 };
    av[n++] = (kv_resp_arg) { idbuf, (size_t) kv_sid_fmt(idbuf, added) };
    for (int i = 0; i < nf; i++) av[n++] = c->argv[idpos + 1 + i];
    kv_fwd_propagate_as(c, n, av);
    if (trimmed) {
        kv_resp_arg tr[5] = { { "XTRIM", 5 }, c->argv[1], { "MAXLEN", 6 }, { "=", 1 },
                              { lenbuf, (size_t) snprintf(lenbuf, sizeof(lenbuf), "%llu", length) } };
        kv_fwd_propagate_as(c, 5, tr);
    }
    free(av);
}

static void xadd_cmd(kv_client_t *c)
{
    kv_strim t;
    kv_sid id = { 0, 0 };
    int id_given, seq_given, nomk, wrong;
    int idpos = parse_add_trim(c, &t, 1, &id, &id_given, &seq_given, &nomk);
    if (idpos < 0) return;
    int fpos = idpos + 1;
    if (c->argc - fpos < 2 || (c->argc - fpos) % 2 == 1) {
        kv_reply_error_cstr(&c->out, "wrong number of arguments for 'xadd' command");
        return;
    }
    if (id_given && seq_given && id.ms == 0 && id.seq == 0) {
        kv_reply_error_cstr(&c->out, "The ID specified in XADD must be greater than 0-0");
        return;
    }
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    if (!e) {
        if (nomk) {
            kv_reply_null(&c->out);
            return;
        }
        kv_stream *ns = kv_stream_new();
        if (!ns) {
            kv_reply_error_cstr(&c->out, OOM_ERR);
            return;
        }
        e = kv_db_add_ptr(c->db, c->argv[1].ptr, c->argv[1].len, KV_TYPE_STREAM, KV_ENC_STREAM, ns);
    }
    kv_stream *s = kv_stream_of(e);
    if (s->last_id.ms == UINT64_MAX && s->last_id.seq == UINT64_MAX) {
        kv_reply_error_cstr(&c->out, "The stream has exhausted the last possible ID, unable to "
                                     "add more items");
        return;
    }
    long nf = (c->argc - fpos) / 2;
    kv_sarg sbuf[64], *av = sbuf;
    if (nf * 2 > 64 && !(av = malloc(sizeof *av * (size_t)nf * 2))) {
        kv_reply_error_cstr(&c->out, OOM_ERR);
        return;
    }
    for (long i = 0; i < nf * 2; i++) av[i].p = c->argv[fpos + i].ptr, av[i].len = c->argv[fpos + i].len;
    KV_SMEM_BEFORE(s);
    kv_sid added;
    int rc = kv_stream_append(s, av, nf, &added, id_given ? &id : NULL, seq_given);
    if (av != sbuf) free(av);
    if (rc < 0) {
        if (errno == EDOM)
            kv_reply_error_cstr(&c->out, "The ID specified in XADD is equal or smaller than the "
                                         "target stream top item");
        else
            kv_reply_error_cstr(&c->out, "Elements are too large to be stored");
        KV_SMEM_AFTER(c, s);
        return;
    }
    kv_sreply_id(&c->out, &added);
    kv_stream_trim(s, &t);
    KV_SMEM_AFTER(c, s);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    xadd_propagate(c, idpos, nomk, &added, t.strategy != KV_TRIM_NONE, s->length);
}

static void xlen_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_stream_lookup(c, 1, 0, &wrong);
    if (wrong) return;
    kv_reply_int(&c->out, e ? (long long)kv_stream_of(e)->length : 0);
}

static void xrange_generic(kv_client_t *c, int rev)
{
    kv_sid start, end;
    long long count = -1;
    int sx, ex, wrong;
    if (kv_sid_parse_interval(c, &c->argv[rev ? 3 : 2], &start, &sx, 0) < 0) return;
    if (sx && kv_sid_incr(&start) < 0) {
        kv_reply_error_cstr(&c->out, "invalid start ID for the interval");
        return;
    }
    if (kv_sid_parse_interval(c, &c->argv[rev ? 2 : 3], &end, &ex, UINT64_MAX) < 0) return;
    if (ex && kv_sid_decr(&end) < 0) {
        kv_reply_error_cstr(&c->out, "invalid end ID for the interval");
        return;
    }
    for (int j = 4; j < c->argc; j++) {
        if (kv_arg_is(&c->argv[j], "count") && c->argc - j - 1 >= 1) {
            if (!kv_arg_ll(c, j + 1, &count)) return;
            if (count < 0) count = 0;
            j++;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    kv_dict_entry *e = kv_stream_lookup(c, 1, 0, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_array(&c->out, 0);
        return;
    }
    if (count == 0) {
        kv_reply_null_array(&c->out);
        return;
    }
    if (count == -1) count = 0;
    kv_sreply_range(c, kv_stream_of(e), &start, &end, (size_t)count, rev, NULL, NULL, 0);
}

static void xrange_cmd(kv_client_t *c) { xrange_generic(c, 0); }
static void xrevrange_cmd(kv_client_t *c) { xrange_generic(c, 1); }

static void xdel_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_stream *s = kv_stream_of(e);
    kv_sid sbuf[16], *ids = sbuf;
    int n = c->argc - 2;
    if (n > 16 && !(ids = malloc(sizeof *ids * (size_t)n))) {
        kv_reply_error_cstr(&c->out, OOM_ERR);
        return;
    }
    for (int j = 0; j < n; j++)
        if (kv_sid_parse(c, &c->argv[j + 2], &ids[j], 0, 1, NULL) < 0) goto done;
    KV_SMEM_BEFORE(s);
    long long deleted = 0;
    int first = 0;
    for (int j = 0; j < n; j++) {
        if (!kv_stream_delete(s, &ids[j])) continue;
        if (!kv_sid_cmp(&ids[j], &s->first_id)) first = 1;
        if (kv_sid_cmp(&ids[j], &s->max_deleted) > 0) s->max_deleted = ids[j];
        deleted++;
    }
    if (deleted) {
        if (s->length == 0) s->first_id.ms = s->first_id.seq = 0;
        else if (first) kv_stream_first_valid_id(s, &s->first_id);
        kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, (unsigned)deleted);
    }
    KV_SMEM_AFTER(c, s);
    kv_reply_int(&c->out, deleted);
done:
    if (ids != sbuf) free(ids);
}

static void xtrim_cmd(kv_client_t *c)
{
    kv_strim t;
    kv_sid id;
    int ig, sg, nomk, wrong;
    if (parse_add_trim(c, &t, 0, &id, &ig, &sg, &nomk) < 0) return;
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_stream *s = kv_stream_of(e);
    KV_SMEM_BEFORE(s);
    long long deleted = kv_stream_trim(s, &t);
    KV_SMEM_AFTER(c, s);
    if (deleted) kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, (unsigned)deleted);
    kv_reply_int(&c->out, deleted);
}

/* ---- XREAD / XREADGROUP ----------------------------------------------------- */

/* Nothing to read: wait for the keys, to read again what comes after the
 * ids; XREAD's $ is the last id the stream had now, as in Redis. */
static int xread_wait(kv_client_t *c, int streams_arg, int nstreams, const kv_sid *ids, long long timeout)
{
    kv_resp_arg av[c->argc];
    char idbuf[nstreams][48];
    for (int i = 0; i < c->argc; i++) av[i] = c->argv[i];
    for (int k = 0; k < nstreams; k++) {
        kv_resp_arg *a = &av[streams_arg + nstreams + k];
        if (kv_arg_cstrlen(a) != 1 || a->ptr[0] != '$') continue;
        *a = (kv_resp_arg) { idbuf[k], (size_t)kv_sid_fmt(idbuf[k], &ids[k]) };
    }
    return kv_block_wait(c->argc, av, streams_arg, nstreams, timeout);
}

/*
 * A waiter woken by a change of the ready key (Redis's
 * serveClientsBlockedOnStreamKey): that stream only. A group reader is
 * told when the stream or its group is gone; otherwise it (and a plain
 * reader) goes on waiting until the stream's last id passes its own.
 */
static void xread_woken(kv_client_t *c, int streams_arg, int nstreams, const kv_resp_arg *gname,
                        const kv_resp_arg *cname, long long count, int noack)
{
    int k = 0;
    while (k < nstreams && !kv_block_is_ready_key(&c->argv[streams_arg + k])) k++;
    const kv_resp_arg *key = &c->argv[streams_arg + k];
    kv_dict_entry *e = k < nstreams ? kv_db_find(c->db, key->ptr, key->len, KV_LOOKUP_NOTOUCH) : NULL;
    if (!e || kv_db_obj(e)->type != KV_TYPE_STREAM) {
        if (gname && k < nstreams) kv_reply_error_cstr(&c->out, "-UNBLOCKED the stream key no longer exists");
        else if (!kv_block_wait(c->argc, c->argv, streams_arg, nstreams, 0)) kv_reply_null_array(&c->out);
        return;
    }
    kv_stream *s = kv_stream_of(e);
    kv_sgroup *g = NULL;
    kv_sid gt;
    if (gname) {
        if (!(g = kv_stream_group(s, gname->ptr, gname->len))) {
            kv_reply_error_cstr(&c->out, "-NOGROUP the consumer group this client was blocked on no "
                                         "longer exists");
            return;
        }
        gt = g->last_id;
    } else if (kv_sid_parse(c, &c->argv[streams_arg + nstreams + k], &gt, 0, 1, NULL) < 0) {
        return;
    }
    if (kv_sid_cmp(&s->last_id, &gt) <= 0) {
        if (!kv_block_wait(c->argc, c->argv, streams_arg, nstreams, 0)) kv_reply_null_array(&c->out);
        return;
    }
    KV_SMEM_BEFORE(s);
    kv_sconsumer *cons = NULL;
    if (g) {
        int64_t now = (int64_t)kv_time_unix_ms();
        cons = kv_sgroup_consumer(g, cname->ptr, cname->len);
        if (!cons) cons = kv_sgroup_consumer_create(s, g, cname->ptr, cname->len, now);
        if (cons) cons->seen_time = now;
    }
    kv_sid start = gt;
    kv_sid_incr(&start);
    kv_reply_array(&c->out, 1);
    kv_reply_array(&c->out, 2);
    kv_reply_bulk(&c->out, key->ptr, key->len);
    if (g && !cons) kv_reply_array(&c->out, 0);     /* out of memory */
    else kv_sreply_range(c, s, &start, NULL, (size_t)count, 0, g, cons, noack ? KV_RWR_NOACK : 0);
    KV_SMEM_AFTER(c, s);
    if (!g) return;
    kv_db_changed(c->db, key->ptr, key->len, 1);
    /* Replays as the read of this stream alone, without BLOCK. */
    char nbuf[24];
    kv_resp_arg av[10] = { { "XREADGROUP", 10 }, { "GROUP", 5 }, *gname, *cname };
    int n = 4;
    if (count) {
        av[n++] = (kv_resp_arg) { "COUNT", 5 };
        av[n++] = (kv_resp_arg) { nbuf, (size_t)snprintf(nbuf, sizeof nbuf, "%lld", count) };
    }
    if (noack) av[n++] = (kv_resp_arg) { "NOACK", 5 };
    av[n++] = (kv_resp_arg) { "STREAMS", 7 };
    av[n++] = *key;
    av[n++] = (kv_resp_arg) { ">", 1 };
    kv_fwd_propagate_as(c, n, av);
}

static void xread_cmd(kv_client_t *c)
{
    long long timeout = -1, count = 0;
    int streams_arg = 0, nstreams = 0, noack = 0, block_arg = 0;
    int group = c->argv[0].len == 10;
    const kv_resp_arg *gname = NULL, *cname = NULL;
    for (int i = 1; i < c->argc; i++) {
        int more = c->argc - i - 1;
        const kv_resp_arg *a = &c->argv[i];
        if (kv_arg_is(a, "block") && more) {
            if (!kv_block_timeout(c, ++i, 0, &timeout)) return;
            block_arg = i - 1;
        } else if (kv_arg_is(a, "count") && more) {
            i++;
            if (!kv_arg_ll(c, i, &count)) return;
            if (count < 0) count = 0;
        } else if (kv_arg_is(a, "streams") && more) {
            streams_arg = i + 1;
            nstreams = c->argc - streams_arg;
            if (nstreams % 2) {
                kv_reply_error_cstr(&c->out, "Unbalanced XREAD list of streams: for each stream "
                                             "key an ID or '$' must be specified.");
                return;
            }
            nstreams /= 2;
            break;
        } else if (kv_arg_is(a, "group") && more >= 2) {
            if (!group) {
                kv_reply_error_cstr(&c->out, "The GROUP option is only supported by XREADGROUP. "
                                             "You called XREAD instead.");
                return;
            }
            gname = &c->argv[i + 1];
            cname = &c->argv[i + 2];
            i += 2;
        } else if (kv_arg_is(a, "noack")) {
            if (!group) {
                kv_reply_error_cstr(&c->out, "The NOACK option is only supported by XREADGROUP. "
                                             "You called XREAD instead.");
                return;
            }
            noack = 1;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    if (!streams_arg) {
        kv_reply_syntax(c);
        return;
    }
    if (group && !gname) {
        kv_reply_error_cstr(&c->out, "Missing GROUP option for XREADGROUP");
        return;
    }
    if (kv_block_ready_key()) {
        xread_woken(c, streams_arg, nstreams, gname, cname, count, noack);
        return;
    }
    kv_sid ibuf[8], *ids = ibuf;
    kv_sgroup *gbuf[8], **groups = gbuf;
    if (nstreams > 8) {
        ids = malloc(sizeof *ids * (size_t)nstreams);
        groups = malloc(sizeof *groups * (size_t)nstreams);
        if (!ids || !groups) {
            kv_reply_error_cstr(&c->out, OOM_ERR);
            goto done;
        }
    }
    for (int k = 0; k < nstreams; k++) {
        int wrong;
        const kv_resp_arg *key = &c->argv[streams_arg + k], *ida = &c->argv[streams_arg + nstreams + k];
        kv_dict_entry *e = kv_stream_lookup(c, streams_arg + k, 0, &wrong);
        if (wrong) goto done;
        groups[k] = NULL;
        if (gname) {
            if (!e || !(groups[k] = kv_stream_group(kv_stream_of(e), gname->ptr, gname->len))) {
                kv_reply_errorf(&c->out,
                                "-NOGROUP No such key '%.*s' or consumer group '%.*s' in "
                                "XREADGROUP with GROUP option",
                                kv_arg_cstrlen(key), key->ptr, kv_arg_cstrlen(gname), gname->ptr);
                goto done;
            }
        }
        if (kv_arg_cstrlen(ida) == 1 && ida->ptr[0] == '$') {
            if (group) {
                kv_reply_error_cstr(&c->out,
                                    "The $ ID is meaningless in the context of XREADGROUP: you "
                                    "want to read the history of this consumer by specifying a "
                                    "proper ID, or use the > ID to get new messages. The $ ID "
                                    "would just return an empty result set.");
                goto done;
            }
            ids[k] = e ? kv_stream_of(e)->last_id : (kv_sid){ 0, 0 };
            continue;
        }
        if (kv_arg_cstrlen(ida) == 1 && ida->ptr[0] == '>') {
            if (!group) {
                kv_reply_error_cstr(&c->out, "The > ID can be specified only when calling "
                                             "XREADGROUP using the GROUP <group> <consumer> "
                                             "option.");
                goto done;
            }
            ids[k].ms = ids[k].seq = UINT64_MAX;
            continue;
        }
        if (kv_sid_parse(c, ida, &ids[k], 0, 1, NULL) < 0) goto done;
    }
    /* Which streams are served (Redis decides per stream before replying:
     * we need the count up front). serve[k]: 0 no, 1 new entries, 2 the
     * consumer's history. */
    unsigned char sbuf[8], *serve = nstreams > 8 ? malloc((size_t)nstreams) : sbuf;
    if (!serve) {
        kv_reply_error_cstr(&c->out, OOM_ERR);
        goto done;
    }
    long long nserve = 0;
    int64_t now = (int64_t)kv_time_unix_ms();
    for (int k = 0; k < nstreams; k++) {
        kv_dict_entry *e = kv_db_find(c->db, c->argv[streams_arg + k].ptr,
                                      c->argv[streams_arg + k].len, KV_LOOKUP_NOTOUCH);
        serve[k] = 0;
        if (!e) continue;
        kv_stream *s = kv_stream_of(e);
        kv_sid maxid;
        if (groups[k]) {
            if (ids[k].ms != UINT64_MAX || ids[k].seq != UINT64_MAX) {
                serve[k] = 2;
            } else if (s->length) {
                kv_stream_last_valid_id(s, &maxid);
                if (kv_sid_cmp(&maxid, &groups[k]->last_id) > 0) {
                    serve[k] = 1;
                    ids[k] = groups[k]->last_id;
                }
            }
        } else if (s->length) {
            kv_stream_last_valid_id(s, &maxid);
            if (kv_sid_cmp(&maxid, &ids[k]) > 0) serve[k] = 1;
        }
        nserve += serve[k] != 0;
    }
    if (nserve) kv_reply_array(&c->out, nserve);
    for (int k = 0; k < nstreams; k++) {
        kv_dict_entry *e = kv_db_find(c->db, c->argv[streams_arg + k].ptr,
                                      c->argv[streams_arg + k].len, KV_LOOKUP_NOTOUCH);
        /* A stream with nothing for us is left alone: no reply, and (as
         * in Redis) no consumer created or touched. */
        if (!e || !serve[k]) continue;
        kv_stream *s = kv_stream_of(e);
        kv_sconsumer *cons = NULL;
        KV_SMEM_BEFORE(s);
        if (groups[k]) {
            cons = kv_sgroup_consumer(groups[k], cname->ptr, cname->len);
            if (!cons) cons = kv_sgroup_consumer_create(s, groups[k], cname->ptr, cname->len, now);
            if (cons) cons->seen_time = now;
        }
        kv_sid start = ids[k];
        kv_sid_incr(&start);
        kv_reply_array(&c->out, 2);
        kv_reply_bulk(&c->out, c->argv[streams_arg + k].ptr, c->argv[streams_arg + k].len);
        int flags = (noack ? KV_RWR_NOACK : 0) | (serve[k] == 2 ? KV_RWR_HISTORY : 0);
        if (groups[k] && !cons) kv_reply_array(&c->out, 0); /* out of memory */
        else kv_sreply_range(c, s, &start, NULL, (size_t)count, 0, groups[k], cons, flags);
        KV_SMEM_AFTER(c, s);
        if (groups[k]) kv_db_changed(c->db, c->argv[streams_arg + k].ptr, c->argv[streams_arg + k].len, 1);
    }
    if (serve != sbuf) free(serve);
    if (group && block_arg && nserve) {     /* what changed replays without BLOCK */
        kv_resp_arg av[c->argc];
        int n = 0;
        for (int i = 0; i < c->argc; i++)
            if (i != block_arg && i != block_arg + 1) av[n++] = c->argv[i];
        kv_fwd_propagate_as(c, n, av);
    }
    if (nserve) goto done;
    if (timeout == -1 || !xread_wait(c, streams_arg, nstreams, ids, timeout)) kv_reply_null_array(&c->out);
done:
    if (ids != ibuf) free(ids);
    if (groups != gbuf) free(groups);
}

#define W KV_CMD_WRITE
#define R KV_CMD_READONLY
#define F KV_CMD_FAST
#define D KV_CMD_DENYOOM
#define STREAM(name, arity, flags, proc, since, summary)                                        \
    { name, arity, flags, 1, 1, 1, KV_ROUTE_KEY, proc, "stream", since, summary, NULL }

/* XREAD/XREADGROUP: keys after STREAMS (kv_gather_keys); XGROUP/XINFO: the
 * key at 2 except for HELP, which MOVABLE makes the router check. XGROUP
 * is a write (Redis flags its subcommands so): logged, and DESTROY wakes
 * XREADGROUP waiters with -NOGROUP. */
const kv_cmd_t kv_stream_cmds[] = {
    STREAM("xack", -4, W | F, kv_xack_cmd, "5.0.0",
           "Marks a pending message as correctly processed, effectively removing it from the "
           "pending entries list of the consumer group. Return value of the command is the "
           "number of messages successfully acknowledged, that is, the IDs we were actually able "
           "to resolve in the PEL."),
    STREAM("xadd", -5, W | D | F, xadd_cmd, "5.0.0",
           "Appends a new entry to a stream"),
    STREAM("xautoclaim", -6, W | F, kv_xautoclaim_cmd, "6.2.0",
           "Changes (or acquires) ownership of messages in a consumer group, as if the messages "
           "were delivered to the specified consumer."),
    STREAM("xclaim", -6, W | F, kv_xclaim_cmd, "5.0.0",
           "Changes (or acquires) ownership of a message in a consumer group, as if the message "
           "was delivered to the specified consumer."),
    STREAM("xdel", -3, W | F, xdel_cmd, "5.0.0",
           "Removes the specified entries from the stream. Returns the number of items actually "
           "deleted, that may be different from the number of IDs passed in case certain IDs do "
           "not exist."),
    { "xgroup", -2, W | KV_CMD_MOVABLE, 2, 2, 1, KV_ROUTE_KEY, kv_xgroup_cmd, "stream", "5.0.0",
      "A container for consumer groups commands", NULL },
    { "xinfo", -2, KV_CMD_MOVABLE, 2, 2, 1, KV_ROUTE_KEY, kv_xinfo_cmd, "stream", "5.0.0",
      "A container for stream introspection commands", NULL },
    STREAM("xlen", 2, R | F, xlen_cmd, "5.0.0", "Return the number of entries in a stream"),
    STREAM("xpending", -3, R, kv_xpending_cmd, "5.0.0",
           "Return information and entries from a stream consumer group pending entries list, "
           "that are messages fetched but never acknowledged."),
    STREAM("xrange", -4, R, xrange_cmd, "5.0.0",
           "Return a range of elements in a stream, with IDs matching the specified IDs "
           "interval"),
    { "xread", -4, R | KV_CMD_BLOCKING, 0, 0, 0, KV_ROUTE_KEYS, xread_cmd, "stream", "5.0.0",
      "Return never seen elements in multiple streams, with IDs greater than the ones reported "
      "by the caller for each stream. Can block.", NULL },
    { "xreadgroup", -7, W | KV_CMD_BLOCKING, 0, 0, 0, KV_ROUTE_KEYS, xread_cmd, "stream", "5.0.0",
      "Return new entries from a stream using a consumer group, or access the history of the "
      "pending entries for a given consumer. Can block.", NULL },
    STREAM("xrevrange", -4, R, xrevrange_cmd, "5.0.0",
           "Return a range of elements in a stream, with IDs matching the specified IDs interval, "
           "in reverse order (from greater to smaller IDs) compared to XRANGE"),
    STREAM("xsetid", -3, W | D | F, kv_xsetid_cmd, "5.0.0",
           "An internal command for replicating stream values"),
    STREAM("xtrim", -4, W, xtrim_cmd, "5.0.0",
           "Trims the stream to (approximately if '~' is passed) a certain size"),
    { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL },
};
