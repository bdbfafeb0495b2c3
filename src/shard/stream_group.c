/* Consumer-group commands, as Redis 7.0's t_stream.c: XGROUP, XACK,
 * XPENDING, XCLAIM, XAUTOCLAIM, and XSETID. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "shard/cmd_server.h"
#include "shard/stream_cmd.h"

#define OOM_ERR "-OOM command not allowed when used memory > 'maxmemory'."

static void reply_nogroup(kv_client_t *c, const kv_resp_arg *k, const kv_resp_arg *g)
{
    kv_reply_errorf(&c->out, "-NOGROUP No such key '%.*s' or consumer group '%.*s'",
                    kv_arg_cstrlen(k), k->ptr, kv_arg_cstrlen(g), g->ptr);
}

static void reply_sub_syntax(kv_client_t *c)
{
    int n = kv_arg_cstrlen(&c->argv[1]);
    kv_reply_errorf(&c->out,
                    "unknown subcommand or wrong number of arguments for '%.*s'. Try XGROUP HELP.",
                    n > 128 ? 128 : n, c->argv[1].ptr);
}

static const char *const xgroup_help[] = {
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    NULL,
};

static int parse_entries_read(kv_client_t *c, int i, long long *er)
{
    if (!kv_arg_ll(c, i, er)) return -1;
    if (*er < 0 && *er != KV_SCG_INVALID_ENTRIES_READ) {
        kv_reply_error_cstr(&c->out, "value for ENTRIESREAD must be positive or -1");
        return -1;
    }
    return 0;
}

void kv_xgroup_cmd(kv_client_t *c)
{
    static const kv_subcmd_t subs[] = {
        { "create", -5 }, { "help", 2 }, { "setid", -5 }, { "destroy", 4 },
        { "createconsumer", 5 }, { "delconsumer", 5 }, { NULL, 0 },
    };
    const kv_subcmd_t *sub = kv_srv_subcmd(c, "xgroup", subs);
    if (!sub) return;
    const char *op = sub->name;
    int create = !strcmp(op, "create"), setid = !strcmp(op, "setid"), mkstream = 0;
    long long er = KV_SCG_INVALID_ENTRIES_READ;
    kv_dict_entry *e = NULL;
    kv_stream *s = NULL;
    kv_sgroup *g = NULL;
    if (c->argc >= 4) {
        if (create || setid) {
            for (int i = 5; i < c->argc;) {
                if (create && kv_arg_is(&c->argv[i], "mkstream")) {
                    mkstream = 1;
                    i++;
                } else if (kv_arg_is(&c->argv[i], "entriesread") && i + 1 < c->argc) {
                    if (parse_entries_read(c, i + 1, &er) < 0) return;
                    i += 2;
                } else {
                    reply_sub_syntax(c);
                    return;
                }
            }
        }
        int wrong;
        e = kv_stream_lookup(c, 2, 1, &wrong);
        if (wrong) return;
        if (e) s = kv_stream_of(e);
        if (!mkstream) {
            if (!s) {
                kv_reply_error_cstr(&c->out,
                                    "The XGROUP subcommand requires the key to exist. Note that "
                                    "for CREATE you may want to use the MKSTREAM option to create "
                                    "an empty stream automatically.");
                return;
            }
            g = kv_stream_group(s, c->argv[3].ptr, c->argv[3].len);
            if (!g && (setid || !strcmp(op, "createconsumer") || !strcmp(op, "delconsumer"))) {
                kv_reply_errorf(&c->out, "-NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                                kv_arg_cstrlen(&c->argv[3]), c->argv[3].ptr,
                                kv_arg_cstrlen(&c->argv[2]), c->argv[2].ptr);
                return;
            }
        }
    }
    const kv_resp_arg *key = &c->argv[1 + (c->argc >= 3)];
    if (!strcmp(op, "help")) {
        kv_srv_reply_help(c, "XGROUP", xgroup_help);
    } else if (create && c->argc <= 8) {
        kv_sid id;
        const kv_resp_arg *ida = &c->argv[4];
        if (kv_arg_cstrlen(ida) == 1 && ida->ptr[0] == '$') {
            id = s ? s->last_id : (kv_sid){ 0, 0 };
        } else if (kv_sid_parse(c, ida, &id, 0, 1, NULL) < 0) {
            return;
        }
        if (!s) {
            if (!(s = kv_stream_new())) {
                kv_reply_error_cstr(&c->out, OOM_ERR);
                return;
            }
            e = kv_db_add_ptr(c->db, key->ptr, key->len, KV_TYPE_STREAM, KV_ENC_STREAM, s);
            kv_db_changed(c->db, key->ptr, key->len, 0);
        }
        KV_SMEM_BEFORE(s);
        g = kv_stream_group_create(s, c->argv[3].ptr, c->argv[3].len, &id, er);
        KV_SMEM_AFTER(c, s);
        if (g) {
            kv_db_changed(c->db, key->ptr, key->len, 1);
            kv_reply_ok(&c->out);
        } else {
            kv_reply_error_cstr(&c->out, "-BUSYGROUP Consumer Group name already exists");
        }
    } else if (setid && (c->argc == 5 || c->argc == 7)) {
        kv_sid id;
        const kv_resp_arg *ida = &c->argv[4];
        if (kv_arg_cstrlen(ida) == 1 && ida->ptr[0] == '$') id = s->last_id;
        else if (kv_sid_parse(c, ida, &id, 0, 0, NULL) < 0) return;
        g->last_id = id;
        g->entries_read = er;
        kv_db_changed(c->db, key->ptr, key->len, 1);
        kv_reply_ok(&c->out);
    } else if (!strcmp(op, "destroy")) {
        if (g) {
            KV_SMEM_BEFORE(s);
            kv_stream_group_destroy(s, c->argv[3].ptr, c->argv[3].len);
            KV_SMEM_AFTER(c, s);
            kv_db_changed(c->db, key->ptr, key->len, 1);
        }
        kv_reply_int(&c->out, g ? 1 : 0);
    } else if (!strcmp(op, "createconsumer")) {
        KV_SMEM_BEFORE(s);
        kv_sconsumer *cn = kv_sgroup_consumer_create(s, g, c->argv[4].ptr, c->argv[4].len,
                                                     (int64_t)kv_time_unix_ms());
        KV_SMEM_AFTER(c, s);
        if (cn) kv_db_changed(c->db, key->ptr, key->len, 1);
        kv_reply_int(&c->out, cn ? 1 : 0);
    } else if (!strcmp(op, "delconsumer")) {
        long long pending = 0;
        kv_sconsumer *cn = kv_sgroup_consumer(g, c->argv[4].ptr, c->argv[4].len);
        if (cn) {
            KV_SMEM_BEFORE(s);
            pending = (long long)kv_sgroup_consumer_delete(s, g, cn);
            KV_SMEM_AFTER(c, s);
            kv_db_changed(c->db, key->ptr, key->len, 1);
        }
        kv_reply_int(&c->out, pending);
    } else {
        reply_sub_syntax(c);
    }
}

void kv_xack_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    kv_sgroup *g = e ? kv_stream_group(kv_stream_of(e), c->argv[2].ptr, c->argv[2].len) : NULL;
    if (!g) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_stream *s = kv_stream_of(e);
    int n = c->argc - 3;
    kv_sid sbuf[16], *ids = n > 16 ? malloc(sizeof *ids * (size_t)n) : sbuf;
    if (!ids) {
        kv_reply_error_cstr(&c->out, OOM_ERR);
        return;
    }
    for (int j = 0; j < n; j++)
        if (kv_sid_parse(c, &c->argv[j + 3], &ids[j], 0, 1, NULL) < 0) goto done;
    long long acked = 0;
    KV_SMEM_BEFORE(s);
    for (int j = 0; j < n; j++) {
        kv_snack *nk = kv_spel_find(&g->pel, &ids[j]);
        if (!nk) continue;
        kv_sgroup_nack_del(s, g, nk);
        acked++;
    }
    KV_SMEM_AFTER(c, s);
    if (acked) kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, (unsigned)acked);
    kv_reply_int(&c->out, acked);
done:
    if (ids != sbuf) free(ids);
}

void kv_xpending_cmd(kv_client_t *c)
{
    int justinfo = c->argc == 3, sx = 0, ex = 0, wrong;
    kv_sid start = { 0, 0 }, end = { 0, 0 };
    long long count = 0, minidle = 0;
    const kv_resp_arg *cname = NULL;
    if (c->argc != 3 && (c->argc < 6 || c->argc > 9)) {
        kv_reply_syntax(c);
        return;
    }
    if (c->argc >= 6) {
        int si = 3;
        if (kv_arg_is(&c->argv[3], "idle")) {
            if (!kv_arg_ll(c, 4, &minidle)) return;
            if (c->argc < 8) {
                kv_reply_syntax(c);
                return;
            }
            si += 2;
        }
        if (!kv_arg_ll(c, si + 2, &count)) return;
        if (count < 0) count = 0;
        if (kv_sid_parse_interval(c, &c->argv[si], &start, &sx, 0) < 0) return;
        if (sx && kv_sid_incr(&start) < 0) {
            kv_reply_error_cstr(&c->out, "invalid start ID for the interval");
            return;
        }
        if (kv_sid_parse_interval(c, &c->argv[si + 1], &end, &ex, UINT64_MAX) < 0) return;
        if (ex && kv_sid_decr(&end) < 0) {
            kv_reply_error_cstr(&c->out, "invalid end ID for the interval");
            return;
        }
        if (si + 3 < c->argc) cname = &c->argv[si + 3];
    }
    kv_dict_entry *e = kv_stream_lookup(c, 1, 0, &wrong);
    if (wrong) return;
    kv_sgroup *g = e ? kv_stream_group(kv_stream_of(e), c->argv[2].ptr, c->argv[2].len) : NULL;
    if (!g) {
        reply_nogroup(c, &c->argv[1], &c->argv[2]);
        return;
    }
    if (justinfo) {
        kv_reply_array(&c->out, 4);
        kv_reply_int(&c->out, (long long)g->pel.n);
        if (!g->pel.n) {
            kv_reply_null(&c->out);
            kv_reply_null(&c->out);
            kv_reply_null_array(&c->out);
            return;
        }
        kv_sreply_id(&c->out, &kv_spel_at(&g->pel, 0)->id);
        kv_sreply_id(&c->out, &kv_spel_at(&g->pel, g->pel.n - 1)->id);
        long long n = 0;
        for (size_t i = 0; i < g->cons.n; i++) n += kv_sgroup_consumer_at(g, i)->pel.n > 0;
        kv_reply_array(&c->out, n);
        for (size_t i = 0; i < g->cons.n; i++) {
            kv_sconsumer *cn = kv_sgroup_consumer_at(g, i);
            if (!cn->pel.n) continue;
            kv_reply_array(&c->out, 2);
            kv_reply_bulk(&c->out, cn->name, cn->nlen);
            kv_reply_bulk_ll(&c->out, (long long)cn->pel.n);
        }
        return;
    }
    const kv_svec *pel = &g->pel;
    if (cname) {
        kv_sconsumer *cn = kv_sgroup_consumer(g, cname->ptr, cname->len);
        if (!cn) {
            kv_reply_array(&c->out, 0);
            return;
        }
        pel = &cn->pel;
    }
    int64_t now = (int64_t)kv_time_unix_ms();
    kv_sdefer d;
    long long n = 0;
    kv_sdefer_begin(c, &d);
    for (size_t i = kv_spel_lower(pel, &start); count && i < pel->n; i++) {
        kv_snack *nk = kv_spel_at(pel, i);
        if (kv_sid_cmp(&nk->id, &end) > 0) break;
        if (minidle && now - nk->delivery_time < minidle) continue;
        n++, count--;
        kv_reply_array(&c->out, 4);
        kv_sreply_id(&c->out, &nk->id);
        kv_reply_bulk(&c->out, nk->consumer->name, nk->consumer->nlen);
        kv_reply_int(&c->out, now - nk->delivery_time < 0 ? 0 : now - nk->delivery_time);
        kv_reply_int(&c->out, (long long)nk->delivery_count);
    }
    kv_sdefer_end(c, &d, n);
}

/* The entry (RAWENTRIES) or, when gone, a null. */
static void reply_claimed(kv_client_t *c, kv_stream *s, const kv_sid *id, int justid)
{
    if (justid) kv_sreply_id(&c->out, id);
    else if (!kv_sreply_range(c, s, id, id, 1, 0, NULL, NULL, KV_RWR_RAWENTRIES))
        kv_reply_null(&c->out);
}

void kv_xclaim_cmd(kv_client_t *c)
{
    int wrong;
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    kv_sgroup *g = e ? kv_stream_group(kv_stream_of(e), c->argv[2].ptr, c->argv[2].len) : NULL;
    if (!g) {
        reply_nogroup(c, &c->argv[1], &c->argv[2]);
        return;
    }
    kv_stream *s = kv_stream_of(e);
    long long minidle, retry = -1, dtime = -1;
    int force = 0, justid = 0, j;
    if (!kv_str2ll(c->argv[4].ptr, c->argv[4].len, &minidle)) {
        kv_reply_error_cstr(&c->out, "Invalid min-idle-time argument for XCLAIM");
        return;
    }
    if (minidle < 0) minidle = 0;
    int n = c->argc - 5;
    kv_sid sbuf[16], *ids = n > 16 ? malloc(sizeof *ids * (size_t)n) : sbuf;
    if (!ids) {
        kv_reply_error_cstr(&c->out, OOM_ERR);
        return;
    }
    for (j = 5; j < c->argc; j++)
        if (kv_sid_parse(NULL, &c->argv[j], &ids[j - 5], 0, 1, NULL) < 0) break;
    int last_arg = j - 1;
    int64_t now = (int64_t)kv_time_unix_ms();
    kv_sid last_id = { 0, 0 };
    for (; j < c->argc; j++) {
        int more = c->argc - 1 - j;
        const kv_resp_arg *a = &c->argv[j];
        const char *err = NULL;
        long long *dst = NULL;
        if (kv_arg_is(a, "force")) {
            force = 1;
        } else if (kv_arg_is(a, "justid")) {
            justid = 1;
        } else if (kv_arg_is(a, "idle") && more) {
            err = "Invalid IDLE option argument for XCLAIM", dst = &dtime;
        } else if (kv_arg_is(a, "time") && more) {
            err = "Invalid TIME option argument for XCLAIM", dst = &dtime;
        } else if (kv_arg_is(a, "retrycount") && more) {
            err = "Invalid RETRYCOUNT option argument for XCLAIM", dst = &retry;
        } else if (kv_arg_is(a, "lastid") && more) {
            if (kv_sid_parse(c, &c->argv[++j], &last_id, 0, 1, NULL) < 0) goto done;
        } else {
            kv_reply_errorf(&c->out, "Unrecognized XCLAIM option '%.*s'", kv_arg_cstrlen(a), a->ptr);
            goto done;
        }
        if (dst) {
            j++;
            if (!kv_str2ll(c->argv[j].ptr, c->argv[j].len, dst)) {
                kv_reply_error_cstr(&c->out, err);
                goto done;
            }
            if (kv_arg_is(a, "idle")) dtime = now - dtime;
        }
    }
    KV_SMEM_BEFORE(s);
    if (kv_sid_cmp(&last_id, &g->last_id) > 0) g->last_id = last_id;
    if (dtime != -1) {
        if (dtime < 0 || dtime > now) dtime = now;
    } else {
        dtime = now;
    }
    kv_sconsumer *cons = NULL;
    const kv_resp_arg *name = &c->argv[3];
    kv_sdefer d;
    long long out = 0;
    kv_sdefer_begin(c, &d);
    for (int k = 5; k <= last_arg; k++) {
        kv_sid *id = &ids[k - 5];
        kv_snack *nk = kv_spel_find(&g->pel, id);
        if (!kv_stream_has(s, id)) {
            if (nk) kv_sgroup_nack_del(s, g, nk);
            continue;
        }
        int fresh = 0;
        if (!nk && !force) continue;
        if (nk && minidle && now - nk->delivery_time < minidle) continue;
        if (!cons && !(cons = kv_sgroup_consumer(g, name->ptr, name->len)))
            cons = kv_sgroup_consumer_create(s, g, name->ptr, name->len, now);
        if (!cons) break;
        cons->seen_time = now;
        if (!nk) {
            if (!(nk = kv_sgroup_nack_add(s, g, cons, id, now))) break;
            fresh = 1;
        }
        if (!fresh) kv_sgroup_nack_move(nk, cons);
        nk->delivery_time = dtime;
        if (retry >= 0) nk->delivery_count = (uint64_t)retry;
        else if (!justid) nk->delivery_count++;
        reply_claimed(c, s, id, justid);
        out++;
    }
    kv_sdefer_end(c, &d, out);
    KV_SMEM_AFTER(c, s);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
done:
    if (ids != sbuf) free(ids);
}

void kv_xautoclaim_cmd(kv_client_t *c)
{
    long long minidle, count = 100;
    kv_sid start;
    int sx, justid = 0, wrong;
    if (!kv_str2ll(c->argv[4].ptr, c->argv[4].len, &minidle)) {
        kv_reply_error_cstr(&c->out, "Invalid min-idle-time argument for XAUTOCLAIM");
        return;
    }
    if (minidle < 0) minidle = 0;
    if (kv_sid_parse_interval(c, &c->argv[5], &start, &sx, 0) < 0) return;
    if (sx && kv_sid_incr(&start) < 0) {
        kv_reply_error_cstr(&c->out, "invalid start ID for the interval");
        return;
    }
    for (int j = 6; j < c->argc; j++) {
        if (kv_arg_is(&c->argv[j], "count") && c->argc - 1 - j) {
            long long maxc = LONG_MAX / 16; /* max(sizeof(streamID), attempts factor) */
            if (!kv_str2ll(c->argv[j + 1].ptr, c->argv[j + 1].len, &count) || count < 1 ||
                count > maxc) {
                kv_reply_error_cstr(&c->out, "COUNT must be > 0");
                return;
            }
            j++;
        } else if (kv_arg_is(&c->argv[j], "justid")) {
            justid = 1;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    kv_sgroup *g = e ? kv_stream_group(kv_stream_of(e), c->argv[2].ptr, c->argv[2].len) : NULL;
    if (!g) {
        reply_nogroup(c, &c->argv[1], &c->argv[2]);
        return;
    }
    kv_stream *s = kv_stream_of(e);
    KV_SMEM_BEFORE(s);
    long long attempts = count * 10, out = 0;
    int64_t now = (int64_t)kv_time_unix_ms();
    kv_sid dbuf[16], *deleted = count > 16 ? malloc(sizeof *deleted * (size_t)count) : dbuf;
    size_t ndel = 0;
    if (!deleted) {
        kv_reply_error_cstr(&c->out, OOM_ERR);
        return;
    }
    kv_sconsumer *cons = NULL;
    const kv_resp_arg *name = &c->argv[3];
    kv_reply_array(&c->out, 3);
    kv_reply_buf saved = c->out; /* the cursor goes first: build the rest aside */
    kv_reply_buf_init(&c->out);
    kv_sdefer d;
    kv_sdefer_begin(c, &d);
    size_t i = kv_spel_lower(&g->pel, &start);
    while (attempts-- && count && i < g->pel.n) {
        kv_snack *nk = kv_spel_at(&g->pel, i);
        kv_sid id = nk->id;
        if (!kv_stream_has(s, &id)) {
            kv_sgroup_nack_del(s, g, nk); /* i now names the next one */
            deleted[ndel++] = id;
            count--;
            continue;
        }
        i++;
        if (minidle && now - nk->delivery_time < minidle) continue;
        if (!cons && !(cons = kv_sgroup_consumer(g, name->ptr, name->len)))
            cons = kv_sgroup_consumer_create(s, g, name->ptr, name->len, now);
        if (!cons) break;
        cons->seen_time = now;
        kv_sgroup_nack_move(nk, cons);
        nk->delivery_time = now;
        if (!justid) nk->delivery_count++;
        reply_claimed(c, s, &id, justid);
        out++;
        count--;
    }
    kv_sdefer_end(c, &d, out);
    kv_reply_buf rest = c->out;
    c->out = saved;
    kv_sid cursor = i < g->pel.n ? kv_spel_at(&g->pel, i)->id : (kv_sid){ 0, 0 };
    kv_sreply_id(&c->out, &cursor);
    kv_sbuf_move(&c->out, &rest);
    kv_reply_array(&c->out, (long long)ndel);
    for (size_t k = 0; k < ndel; k++) kv_sreply_id(&c->out, &deleted[k]);
    if (deleted != dbuf) free(deleted);
    KV_SMEM_AFTER(c, s);
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
}

void kv_xsetid_cmd(kv_client_t *c)
{
    kv_sid id, maxdel = { 0, 0 };
    long long added = -1;
    int wrong;
    if (kv_sid_parse(c, &c->argv[2], &id, 0, 1, NULL) < 0) return;
    for (int i = 3; i < c->argc;) {
        int more = c->argc - 1 - i;
        if (kv_arg_is(&c->argv[i], "entriesadded") && more) {
            if (!kv_arg_ll(c, i + 1, &added)) return;
            if (added < 0) {
                kv_reply_error_cstr(&c->out, "entries_added must be positive");
                return;
            }
            i += 2;
        } else if (kv_arg_is(&c->argv[i], "maxdeletedid") && more) {
            if (kv_sid_parse(c, &c->argv[i + 1], &maxdel, 0, 1, NULL) < 0) return;
            if (kv_sid_cmp(&id, &maxdel) < 0) {
                kv_reply_error_cstr(&c->out, "The ID specified in XSETID is smaller than the "
                                             "provided max_deleted_entry_id");
                return;
            }
            i += 2;
        } else {
            kv_reply_syntax(c);
            return;
        }
    }
    kv_dict_entry *e = kv_stream_lookup(c, 1, 1, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_error_cstr(&c->out, "no such key");
        return;
    }
    kv_stream *s = kv_stream_of(e);
    if (s->length > 0) {
        kv_sid maxid;
        kv_stream_last_valid_id(s, &maxid);
        if (kv_sid_cmp(&id, &maxid) < 0) {
            kv_reply_error_cstr(&c->out, "The ID specified in XSETID is smaller than the target "
                                         "stream top item");
            return;
        }
        if (added != -1 && s->length > (uint64_t)added) {
            kv_reply_error_cstr(&c->out, "The entries_added specified in XSETID is smaller than "
                                         "the target stream length");
            return;
        }
    }
    if (kv_sid_cmp(&id, &s->max_deleted) < 0) {
        kv_reply_error_cstr(&c->out, "The ID specified in XSETID is smaller than current "
                                     "max_deleted_entry_id");
        return;
    }
    s->last_id = id;
    if (added != -1) s->entries_added = (uint64_t)added;
    if (!kv_sid_zero(&maxdel)) s->max_deleted = maxdel;
    kv_db_changed(c->db, c->argv[1].ptr, c->argv[1].len, 1);
    kv_reply_ok(&c->out);
}
