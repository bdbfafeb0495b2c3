/*
 * The merged command table and dispatch.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shard/cmd.h"
#include "shard/forward.h"
#include "shard/multi.h"
#include "shard/pubsub.h"

/*
 * The parts, one per module. Declared weak so a module that is not
 * written yet simply contributes nothing; each list ends with a NULL name.
 */
#define KV_CMD_PART(name) extern const kv_cmd_t name[] __attribute__((weak));
KV_CMD_PART(kv_connection_cmds)
KV_CMD_PART(kv_multi_cmds)
KV_CMD_PART(kv_server_cmds)
KV_CMD_PART(kv_string_cmds)
KV_CMD_PART(kv_bitops_cmds)
KV_CMD_PART(kv_dump_cmds)
KV_CMD_PART(kv_keys_cmds)
KV_CMD_PART(kv_expire_cmds)
KV_CMD_PART(kv_hash_cmds)
KV_CMD_PART(kv_list_cmds)
KV_CMD_PART(kv_set_cmds)
KV_CMD_PART(kv_zset_cmds)
KV_CMD_PART(kv_hll_cmds)
KV_CMD_PART(kv_stream_cmds)
KV_CMD_PART(kv_aof_cmds)
KV_CMD_PART(kv_persist_cmds)
KV_CMD_PART(kv_sort_cmds)
KV_CMD_PART(kv_pubsub_cmds)

static const kv_cmd_t *table;       /* merged, sorted by name */
static size_t          ncmds;
static kv_cmd_stats_t *stats;       /* parallel to table */

#define ERROR_CODES_MAX 128         /* Redis's ERRORSTATS_LIMIT */
static struct { char code[32]; uint64_t count; } errors[ERROR_CODES_MAX];
static int      nerrors;
static uint64_t errors_total;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const kv_cmd_t *) a)->name, ((const kv_cmd_t *) b)->name);
}

void kv_cmd_init(void)
{
    const kv_cmd_t *parts[] = {
        kv_connection_cmds, kv_multi_cmds, kv_server_cmds, kv_string_cmds, kv_bitops_cmds, kv_dump_cmds, kv_keys_cmds,
        kv_expire_cmds, kv_hash_cmds, kv_list_cmds, kv_set_cmds, kv_zset_cmds, kv_hll_cmds,
        kv_stream_cmds, kv_aof_cmds, kv_pubsub_cmds, kv_persist_cmds,
        kv_sort_cmds,
    };
    size_t n = 0;
    if (table) return;
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++)
        for (const kv_cmd_t *c = parts[p]; c && c->name; c++) n++;
    kv_cmd_t *t = malloc(sizeof(*t) * (n ? n : 1));
    if (!t) abort();
    n = 0;
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++)
        for (const kv_cmd_t *c = parts[p]; c && c->name; c++) t[n++] = *c;
    qsort(t, n, sizeof(*t), by_name);
    /* Redis's "movablekeys" commands: the router must read their keys from
     * the arguments (kv_gather_keys), not from first/last/step. */
    static const char *const movable[] = {
        "zunion", "zinter", "zdiff", "zintercard", "sintercard", "lmpop", "zmpop", "zunionstore",
        "zinterstore", "zdiffstore", "blmpop", "bzmpop", "xread", "xreadgroup", "sort", NULL,
    };
    for (size_t i = 0; i < n; i++)
        for (int m = 0; movable[m]; m++)
            if (!strcmp(t[i].name, movable[m])) t[i].flags |= KV_CMD_MOVABLE;
    table = t, ncmds = n;
    stats = calloc(n ? n : 1, sizeof(*stats));
    if (!stats) abort();
}

kv_cmd_stats_t *kv_cmd_stats(const kv_cmd_t *cmd)
{
    return cmd >= table && cmd < table + ncmds ? &stats[cmd - table] : NULL;
}

void kv_cmd_count_error(const char *reply, size_t len)
{
    size_t n = 0;
    if (len < 1 || reply[0] != '-') return;
    while (1 + n < len && n < sizeof(errors[0].code) - 1 && reply[1 + n] != ' ' && reply[1 + n] != '\r') n++;
    errors_total++;
    for (int i = 0; i < nerrors; i++)
        if (strlen(errors[i].code) == n && !memcmp(errors[i].code, reply + 1, n)) {
            errors[i].count++;
            return;
        }
    if (nerrors == ERROR_CODES_MAX) return;     /* counted in the total only */
    memcpy(errors[nerrors].code, reply + 1, n);
    errors[nerrors].code[n] = '\0';
    errors[nerrors++].count = 1;
}

uint64_t kv_cmd_errors_each(kv_cmd_error_fn *fn, void *data)
{
    for (int i = 0; fn && i < nerrors; i++) fn(errors[i].code, errors[i].count, data);
    return errors_total;
}

void kv_cmd_stats_reset(void)
{
    memset(stats, 0, sizeof(*stats) * ncmds);
    nerrors = 0;
    errors_total = 0;
}

size_t kv_cmd_count(void) { return ncmds; }

const kv_cmd_t *kv_cmd_at(size_t i) { return i < ncmds ? &table[i] : NULL; }

KV_CMD_PART(kv_internal_cmds)
KV_CMD_PART(kv_multi_internal_cmds)
KV_CMD_PART(kv_block_multi_internal_cmds)

/* Internal commands (shard to shard only): never found by clients. */
const kv_cmd_t *kv_cmd_lookup_any(const char *name, size_t len)
{
    const kv_cmd_t *c = kv_cmd_lookup(name, len);
    if (c) return c;
    const kv_cmd_t *parts[] = { kv_internal_cmds, kv_multi_internal_cmds, kv_block_multi_internal_cmds };
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++)
        for (c = parts[p]; c && c->name; c++)
            if (strlen(c->name) == len && !strncasecmp(c->name, name, len)) return c;
    return NULL;
}

const kv_cmd_t *kv_cmd_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = ncmds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *n = table[mid].name;
        size_t nl = strlen(n);
        int r = strncasecmp(name, n, len < nl ? len : nl);
        if (r == 0) r = len < nl ? -1 : len > nl;
        if (r == 0) return &table[mid];
        if (r < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* Redis prints C strings here: stop at a NUL as %s would. */
static int cstr_len(const kv_resp_arg *a, int max)
{
    const char *nul = memchr(a->ptr, '\0', a->len);
    size_t n = nul ? (size_t) (nul - a->ptr) : a->len;
    return (int) (n < (size_t) max ? n : (size_t) max);
}

static void reply_unknown(kv_client_t *c)
{
    char args[256];
    size_t used = 0;
    args[0] = '\0';
    for (int i = 1; i < c->argc && used < 128; i++) {
        int n = cstr_len(&c->argv[i], 128 - (int) used);
        used += (size_t) snprintf(args + used, sizeof(args) - used, "'%.*s' ", n, c->argv[i].ptr);
    }
    kv_reply_errorf(&c->out, "unknown command '%.*s', with args beginning with: %s",
                    cstr_len(&c->argv[0], 128), c->argv[0].ptr, args);
}

int kv_cmd_arity_ok(const kv_cmd_t *cmd, int argc)
{
    return cmd->arity > 0 ? argc == cmd->arity : argc >= -cmd->arity;
}

void kv_cmd_reply_arity(kv_client_t *c, const kv_cmd_t *cmd)
{
    kv_reply_errorf(&c->out, "wrong number of arguments for '%s' command", cmd->name);
}

void kv_cmd_dispatch(kv_client_t *c)
{
    const kv_cmd_t *cmd = kv_cmd_lookup(c->argv[0].ptr, c->argv[0].len);
    int queueing = kv_multi_queueing(c, cmd);
    if (!cmd || !kv_cmd_arity_ok(cmd, c->argc)) {
        kv_slot_t *held = kv_fwd_hold(c);
        if (!cmd) reply_unknown(c);
        else kv_cmd_reply_arity(c, cmd), kv_cmd_stats(cmd)->rejected++;
        kv_cmd_count_error("-ERR", 4);
        kv_fwd_release(c, held);
        if (queueing) kv_multi_flag(c);     /* EXEC will answer EXECABORT */
        return;
    }
    if (queueing) {
        kv_slot_t *held = kv_fwd_hold(c);
        kv_multi_queue(c, cmd);
        kv_fwd_release(c, held);
        return;
    }
    /* Subscribed mode: only the pub/sub commands, PING, QUIT, RESET. */
    if (c->ps && kv_pubsub_refuse(c, cmd)) return;
    kv_fwd_dispatch(c, cmd);
}
