/* XINFO STREAM [FULL [COUNT n]] | GROUPS | CONSUMERS | HELP, as Redis 7.0.
 *
 * "radix-tree-nodes" is the node count Redis's rax would have for the
 * same node keys: kevy keeps a sorted array instead, so the figure is
 * computed from the keys (a compressed trie over the 16-byte big-endian
 * IDs: one node per branching point, per single-child chain and per
 * key), which is what rax builds for fixed-length keys. */
#include <string.h>

#include "core/time.h"
#include "shard/cmd_server.h"
#include "shard/stream_cmd.h"

static void key_of(const kv_stream *s, size_t i, unsigned char *k)
{
    kv_sid_encode(k, &((const kv_snode *)kv_svec_at(&s->nodes, i))->master);
}

/* Nodes of the compressed trie holding keys [lo, hi) (all sharing their
 * first d bytes), counted from depth d. */
static long long trie_nodes(const kv_stream *s, size_t lo, size_t hi, int d)
{
    unsigned char a[16], b[16];
    if (hi - lo == 1) return d == 16 ? 1 : 2;
    key_of(s, lo, a);
    key_of(s, hi - 1, b);
    int l = d;
    while (a[l] == b[l]) l++;
    long long n = (l > d ? 1 : 0) + 1; /* chain, then the branching node */
    size_t i = lo;
    while (i < hi) {
        unsigned char k[16];
        key_of(s, i, k);
        size_t j = i + 1;
        for (; j < hi; j++) {
            unsigned char k2[16];
            key_of(s, j, k2);
            if (k2[l] != k[l]) break;
        }
        n += trie_nodes(s, i, j, l + 1);
        i = j;
    }
    return n;
}

static long long rax_nodes(const kv_stream *s)
{
    return s->nodes.n ? trie_nodes(s, 0, s->nodes.n, 0) : 1;
}

static void reply_lag(kv_reply_buf *out, const kv_stream *s, const kv_sgroup *g)
{
    if (!s->entries_added) {
        kv_reply_int(out, 0);
    } else if (g->entries_read != KV_SCG_INVALID_ENTRIES_READ &&
               !kv_stream_range_has_tombstones(s, &g->last_id, NULL)) {
        kv_reply_int(out, (long long)s->entries_added - g->entries_read);
    } else {
        long long er = kv_stream_estimate_distance(s, &g->last_id);
        if (er != KV_SCG_INVALID_ENTRIES_READ) kv_reply_int(out, (long long)s->entries_added - er);
        else kv_reply_null(out);
    }
}

static void reply_entries_read(kv_reply_buf *out, const kv_sgroup *g)
{
    if (g->entries_read != KV_SCG_INVALID_ENTRIES_READ) kv_reply_int(out, g->entries_read);
    else kv_reply_null(out);
}

static void stream_full_groups(kv_client_t *c, kv_stream *s, long long count)
{
    kv_reply_buf *out = &c->out;
    kv_reply_array(out, (long long)s->groups.n);
    for (size_t i = 0; i < s->groups.n; i++) {
        kv_sgroup *g = kv_stream_group_at(s, i);
        kv_reply_array(out, 14);
        kv_reply_bulk_cstr(out, "name");
        kv_reply_bulk(out, g->name, g->nlen);
        kv_reply_bulk_cstr(out, "last-delivered-id");
        kv_sreply_id(out, &g->last_id);
        kv_reply_bulk_cstr(out, "entries-read");
        reply_entries_read(out, g);
        kv_reply_bulk_cstr(out, "lag");
        reply_lag(out, s, g);
        kv_reply_bulk_cstr(out, "pel-count");
        kv_reply_int(out, (long long)g->pel.n);
        kv_reply_bulk_cstr(out, "pending");
        size_t np = count && (size_t)count < g->pel.n ? (size_t)count : g->pel.n;
        kv_reply_array(out, (long long)np);
        for (size_t k = 0; k < np; k++) {
            kv_snack *nk = kv_spel_at(&g->pel, k);
            kv_reply_array(out, 4);
            kv_sreply_id(out, &nk->id);
            kv_reply_bulk(out, nk->consumer->name, nk->consumer->nlen);
            kv_reply_int(out, nk->delivery_time);
            kv_reply_int(out, (long long)nk->delivery_count);
        }
        kv_reply_bulk_cstr(out, "consumers");
        kv_reply_array(out, (long long)g->cons.n);
        for (size_t j = 0; j < g->cons.n; j++) {
            kv_sconsumer *cn = kv_sgroup_consumer_at(g, j);
            kv_reply_array(out, 8);
            kv_reply_bulk_cstr(out, "name");
            kv_reply_bulk(out, cn->name, cn->nlen);
            kv_reply_bulk_cstr(out, "seen-time");
            kv_reply_int(out, cn->seen_time);
            kv_reply_bulk_cstr(out, "pel-count");
            kv_reply_int(out, (long long)cn->pel.n);
            kv_reply_bulk_cstr(out, "pending");
            size_t nc = count && (size_t)count < cn->pel.n ? (size_t)count : cn->pel.n;
            kv_reply_array(out, (long long)nc);
            for (size_t k = 0; k < nc; k++) {
                kv_snack *nk = kv_spel_at(&cn->pel, k);
                kv_reply_array(out, 3);
                kv_sreply_id(out, &nk->id);
                kv_reply_int(out, nk->delivery_time);
                kv_reply_int(out, (long long)nk->delivery_count);
            }
        }
    }
}

static void sub_syntax(kv_client_t *c)
{
    int n = kv_arg_cstrlen(&c->argv[1]);
    kv_reply_errorf(&c->out,
                    "unknown subcommand or wrong number of arguments for '%.*s'. Try XINFO HELP.",
                    n > 128 ? 128 : n, c->argv[1].ptr);
}

static void xinfo_stream(kv_client_t *c, kv_stream *s)
{
    int full = 1, argc = c->argc - 2;
    long long count = 10;
    if (argc == 1) {
        full = 0;
    } else if (argc == 2 || argc == 4) {
        if (!kv_arg_is(&c->argv[3], "full")) {
            sub_syntax(c);
            return;
        }
        if (argc == 4) {
            if (!kv_arg_is(&c->argv[4], "count")) {
                sub_syntax(c);
                return;
            }
            if (!kv_arg_ll(c, 5, &count)) return;
            if (count < 0) count = 10;
        }
    } else {
        sub_syntax(c);
        return;
    }
    kv_reply_buf *out = &c->out;
    kv_reply_array(out, full ? 18 : 20);
    kv_reply_bulk_cstr(out, "length");
    kv_reply_int(out, (long long)s->length);
    kv_reply_bulk_cstr(out, "radix-tree-keys");
    kv_reply_int(out, (long long)s->nodes.n);
    kv_reply_bulk_cstr(out, "radix-tree-nodes");
    kv_reply_int(out, rax_nodes(s));
    kv_reply_bulk_cstr(out, "last-generated-id");
    kv_sreply_id(out, &s->last_id);
    kv_reply_bulk_cstr(out, "max-deleted-entry-id");
    kv_sreply_id(out, &s->max_deleted);
    kv_reply_bulk_cstr(out, "entries-added");
    kv_reply_int(out, (long long)s->entries_added);
    kv_reply_bulk_cstr(out, "recorded-first-entry-id");
    kv_sreply_id(out, &s->first_id);
    if (!full) {
        kv_reply_bulk_cstr(out, "groups");
        kv_reply_int(out, (long long)s->groups.n);
        kv_reply_bulk_cstr(out, "first-entry");
        if (!kv_sreply_range(c, s, NULL, NULL, 1, 0, NULL, NULL, KV_RWR_RAWENTRIES))
            kv_reply_null(out);
        kv_reply_bulk_cstr(out, "last-entry");
        if (!kv_sreply_range(c, s, NULL, NULL, 1, 1, NULL, NULL, KV_RWR_RAWENTRIES))
            kv_reply_null(out);
        return;
    }
    kv_reply_bulk_cstr(out, "entries");
    kv_sreply_range(c, s, NULL, NULL, (size_t)count, 0, NULL, NULL, 0);
    kv_reply_bulk_cstr(out, "groups");
    stream_full_groups(c, s, count);
}

static const char *const xinfo_help[] = {
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    NULL,
};

void kv_xinfo_cmd(kv_client_t *c)
{
    static const kv_subcmd_t subs[] = {
        { "stream", -3 }, { "groups", 3 }, { "consumers", 4 }, { "help", 2 }, { NULL, 0 },
    };
    const kv_subcmd_t *sub = kv_srv_subcmd(c, "xinfo", subs);
    if (!sub) return;
    if (!strcmp(sub->name, "help")) {
        kv_srv_reply_help(c, "XINFO", xinfo_help);
        return;
    }
    int wrong;
    kv_dict_entry *e = kv_stream_lookup(c, 2, 0, &wrong);
    if (wrong) return;
    if (!e) {
        kv_reply_error_cstr(&c->out, "no such key");
        return;
    }
    kv_stream *s = kv_stream_of(e);
    kv_reply_buf *out = &c->out;
    if (!strcmp(sub->name, "consumers")) {
        kv_sgroup *g = kv_stream_group(s, c->argv[3].ptr, c->argv[3].len);
        if (!g) {
            kv_reply_errorf(out, "-NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                            kv_arg_cstrlen(&c->argv[3]), c->argv[3].ptr,
                            kv_arg_cstrlen(&c->argv[2]), c->argv[2].ptr);
            return;
        }
        int64_t now = (int64_t)kv_time_unix_ms();
        kv_reply_array(out, (long long)g->cons.n);
        for (size_t i = 0; i < g->cons.n; i++) {
            kv_sconsumer *cn = kv_sgroup_consumer_at(g, i);
            int64_t idle = now - cn->seen_time;
            kv_reply_array(out, 6);
            kv_reply_bulk_cstr(out, "name");
            kv_reply_bulk(out, cn->name, cn->nlen);
            kv_reply_bulk_cstr(out, "pending");
            kv_reply_int(out, (long long)cn->pel.n);
            kv_reply_bulk_cstr(out, "idle");
            kv_reply_int(out, idle < 0 ? 0 : idle);
        }
    } else if (!strcmp(sub->name, "groups")) {
        kv_reply_array(out, (long long)s->groups.n);
        for (size_t i = 0; i < s->groups.n; i++) {
            kv_sgroup *g = kv_stream_group_at(s, i);
            kv_reply_array(out, 12);
            kv_reply_bulk_cstr(out, "name");
            kv_reply_bulk(out, g->name, g->nlen);
            kv_reply_bulk_cstr(out, "consumers");
            kv_reply_int(out, (long long)g->cons.n);
            kv_reply_bulk_cstr(out, "pending");
            kv_reply_int(out, (long long)g->pel.n);
            kv_reply_bulk_cstr(out, "last-delivered-id");
            kv_sreply_id(out, &g->last_id);
            kv_reply_bulk_cstr(out, "entries-read");
            reply_entries_read(out, g);
            kv_reply_bulk_cstr(out, "lag");
            reply_lag(out, s, g);
        }
    } else {
        xinfo_stream(c, s);
    }
}
