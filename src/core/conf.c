/*
 * Configuration loading: YAML document -> schema-checked kv_conf_t.
 *
 * The schema table below names every key once (dotted path, type, field,
 * range, default, reload class). Defaults are YAML text parsed by the same
 * code as the file, so a default can never bypass validation.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/conf.h"

#define CONF_FILE_MAX  (1 << 20)   /* a config file is small; refuse 1 MiB+ */

typedef enum {
    T_BOOL, T_INT, T_SIZE, T_DURATION, T_ENUM, T_PATH, T_LOGFILE,
    T_ADDR, T_ADDR_LIST, T_SHARDS, T_CPUS, T_STRING, T_SAVE
} key_type_e;

typedef struct {
    const char  *key;
    key_type_e   type;
    size_t       off;
    size_t       size;
    int64_t      min, max;
    const char  *def;
    const char *const *choices;
    int          reload;
} conf_key_t;

static const char *const log_levels[] = { "debug", "verbose", "notice", "warning", NULL };
static const char *const routings[] = { "hash", "slots", NULL };
static const char *const fsyncs[] = { "always", "everysec", "no", NULL };

#define F(f) offsetof(kv_conf_t, f), sizeof(((kv_conf_t *) 0)->f)

static const conf_key_t schema[] = {
    { "listen",           T_ADDR_LIST, F(listen),    1, KV_LISTEN_MAX, "[127.0.0.1:6379]", NULL, 0 },
    { "shards",           T_SHARDS,    F(shards),    1, KV_SHARDS_MAX, "auto", NULL, 0 },
    { "routing",          T_ENUM,      F(routing),   0, 0, "hash", routings, 0 },
    { "cpu_affinity",     T_CPUS,      F(cpus),      0, 0, "auto", NULL, 0 },
    { "dir",              T_PATH,      F(dir),       0, 0, "data", NULL, 0 },
    { "pid_file",         T_PATH,      F(pid_file),  0, 0, "data/kevy.pid", NULL, 0 },
    { "daemonize",        T_BOOL,      F(daemonize), 0, 1, "false", NULL, 0 },
    { "shutdown_timeout", T_DURATION,  F(shutdown_timeout_ms), 0, 3600000, "10s", NULL, 1 },
    { "log.file",         T_LOGFILE,   F(log_file),  0, 0, "stderr", NULL, 1 },
    { "log.level",        T_ENUM,      F(log_level), 0, 0, "notice", log_levels, 1 },
    { "admin.listen",     T_ADDR,      F(admin_listen), 0, 0, "127.0.0.1:9121", NULL, 1 },
    { "ring.size",        T_SIZE,      F(ring_size), 4096, 1LL << 30, "1mb", NULL, 0 },
    { "ring.spin_us",     T_INT,       F(ring_spin_us), 0, 1000000, "50", NULL, 0 },
    /* Redis's own ranges, so CONFIG SET and the file agree. */
    { "limits.maxclients", T_INT,      F(maxclients), 1, 4294967295LL, "10000", NULL, 1 },
    { "limits.timeout",   T_INT,       F(timeout_s), 0, 2147483647LL, "0", NULL, 1 },
    { "limits.proto_max_bulk_len", T_SIZE, F(proto_max_bulk_len), 1 << 20, INT64_MAX, "512mb", NULL, 1 },
    { "limits.client_query_buffer_limit", T_SIZE, F(client_query_buffer_limit), 1 << 20, INT64_MAX, "1gb", NULL, 1 },
    { "limits.output_buffer_limit", T_SIZE, F(output_buffer_limit), 0, INT64_MAX, "0", NULL, 1 },
    { "security.requirepass", T_STRING, F(requirepass), 0, 0, "\"\"", NULL, 1 },
    { "expiry.hz",        T_INT,       F(hz),        1, 500, "10", NULL, 1 },
    { "persistence.aof.enabled", T_BOOL, F(aof_enabled), 0, 1, "true", NULL, 1 },
    { "persistence.aof.fsync", T_ENUM,  F(aof_fsync),  0, 0, "everysec", fsyncs, 1 },
    { "persistence.aof.auto_rewrite_percentage", T_INT, F(aof_rewrite_percentage), 0, 1000000, "100", NULL, 1 },
    { "persistence.aof.auto_rewrite_min_size", T_SIZE, F(aof_rewrite_min_size), 0, 1LL << 50, "64mb", NULL, 1 },
    { "persistence.snapshot.save", T_SAVE, F(save), 0, 0, "[\"3600 1\", \"300 100\", \"60 10000\"]", NULL, 1 },
};

#define NKEYS (sizeof(schema) / sizeof(schema[0]))

/* Loading state: where messages point, and the directory paths resolve in. */
typedef struct {
    kv_conf_t  *conf;
    const char *where;          /* file name, or "-o key=value"          */
    int         is_override;
    char        basedir[PATH_MAX];
    char       *err;
    size_t      errlen;
    int         line, col;      /* of the node being checked (1-based)   */
    int         cpus_line, cpus_col;
} loader_t;

static int fail(loader_t *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (l->is_override)
        snprintf(l->err, l->errlen, "%s: %s", l->where, msg);
    else
        snprintf(l->err, l->errlen, "%s:%d:%d: %s", l->where, l->line, l->col, msg);
    return -1;
}

static void *field(loader_t *l, const conf_key_t *k) { return (char *) l->conf + k->off; }

/* ---- scalar parsers ---------------------------------------------------- */

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char) *s)) return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Redis's memory units: k/m/g are powers of 1000, kb/mb/gb of 1024. */
int kv_conf_parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *u; uint64_t mul; } units[] = {
        { "b", 1 }, { "k", 1000 }, { "kb", 1024 }, { "m", 1000000 },
        { "mb", 1 << 20 }, { "g", 1000000000 }, { "gb", 1 << 30 },
    };
    char *end;
    if (!isdigit((unsigned char) *s)) return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    if (*end == '\0') { *out = v; return 0; }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].u) == 0) {
            if (v > UINT64_MAX / units[i].mul) return -1;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

int kv_conf_parse_duration(const char *s, uint64_t *out_ms)
{
    static const struct { const char *u; uint64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    char *end;
    if (!isdigit((unsigned char) *s)) return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > (1ULL << 40)) return -1;
    if (*end == '\0') { *out_ms = v * 1000; return 0; }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].u) == 0) { *out_ms = v * units[i].ms; return 0; }
    }
    return -1;
}

int kv_conf_parse_addr(const char *s, kv_addr_t *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (strlen(s) >= sizeof(a->text)) {
        snprintf(err, errlen, "address is too long");
        return -1;
    }
    strcpy(a->text, s);
    if (strncmp(s, "unix:", 5) == 0) {
        const char *p = s + 5;
        if (*p == '\0' || strlen(p) >= sizeof(a->path)) {
            snprintf(err, errlen, "unix socket path must be 1 to %zu bytes", sizeof(a->path) - 1);
            return -1;
        }
        a->kind = KV_ADDR_UNIX;
        strcpy(a->path, p);
        return 0;
    }
    const char *colon, *host = s;
    size_t hlen;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') goto bad;
        host = s + 1;
        hlen = (size_t) (rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) goto bad;
        hlen = (size_t) (colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(a->host)) goto bad;
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    int64_t port;
    if (parse_int64(colon + 1, &port) != 0 || port < 0 || port > 65535) {
        snprintf(err, errlen, "port must be a number from 0 to 65535 in \"%s\"", s);
        return -1;
    }
    a->port = (int) port;
    a->kind = KV_ADDR_TCP;
    return 0;
bad:
    snprintf(err, errlen, "expected host:port, [ipv6]:port or unix:/path, got \"%s\"", s);
    return -1;
}

static int resolve_path(loader_t *l, const char *in, char *out, size_t outlen)
{
    int n;
    if (in[0] == '\0') return fail(l, "must not be empty");
    if (in[0] == '/') n = snprintf(out, outlen, "%s", in);
    else n = snprintf(out, outlen, "%s/%s", l->basedir, in);
    if (n < 0 || (size_t) n >= outlen) return fail(l, "path is too long");
    return 0;
}

/* ---- one key ------------------------------------------------------------ */

static int node_at(loader_t *l, yaml_node_t *n)
{
    l->line = (int) n->start_mark.line + 1;
    l->col = (int) n->start_mark.column + 1;
    return 0;
}

static int is_null(yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *) n->data.scalar.value;
    return n->data.scalar.length == 0 || !strcmp(v, "~") || !strcmp(v, "null");
}

/* "SECONDS CHANGES", both whole numbers, seconds >= 1. */
static int parse_save_point(const char *v, kv_save_point_t *sp)
{
    unsigned long long secs, changes;
    char extra;
    if (sscanf(v, "%llu %llu %c", &secs, &changes, &extra) != 2 || secs == 0) return -1;
    if (!isdigit((unsigned char) *v)) return -1;
    sp->seconds = secs, sp->changes = changes;
    return 0;
}

static int set_scalar(loader_t *l, const conf_key_t *k, const char *v)
{
    void *f = field(l, k);
    int64_t i;
    uint64_t u;
    char e[256];

    switch (k->type) {
    case T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) *(int *) f = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) *(int *) f = 0;
        else return fail(l, "%s: expected true or false, got \"%s\"", k->key, v);
        return 0;
    case T_INT:
        if (parse_int64(v, &i) != 0 || i < k->min || i > k->max)
            return fail(l, "%s: expected a whole number from %lld to %lld, got \"%s\"",
                        k->key, (long long) k->min, (long long) k->max, v);
        *(uint64_t *) f = (uint64_t) i;
        return 0;
    case T_SIZE:
        if (kv_conf_parse_size(v, &u) != 0)
            return fail(l, "%s: expected a size such as 4096, 64kb or 1mb, got \"%s\"", k->key, v);
        if (u < (uint64_t) k->min || u > (uint64_t) k->max)
            return fail(l, "%s: %s is out of range (%lld to %lld bytes)", k->key, v,
                        (long long) k->min, (long long) k->max);
        if (!strcmp(k->key, "ring.size") && (u & (u - 1)))
            return fail(l, "%s: must be a power of two, got \"%s\"", k->key, v);
        *(uint64_t *) f = u;
        return 0;
    case T_DURATION:
        if (kv_conf_parse_duration(v, &u) != 0)
            return fail(l, "%s: expected a duration such as 500ms, 10s or 2m, got \"%s\"", k->key, v);
        if (u < (uint64_t) k->min || u > (uint64_t) k->max)
            return fail(l, "%s: %s is out of range (at most %llds)", k->key, v,
                        (long long) k->max / 1000);
        *(uint64_t *) f = u;
        return 0;
    case T_ENUM:
        for (int c = 0; k->choices[c]; c++) {
            if (!strcmp(v, k->choices[c])) { *(int *) f = c; return 0; }
        }
        {
            char list[256] = "";
            for (int c = 0; k->choices[c]; c++) {
                strcat(list, c ? ", " : "");
                strcat(list, k->choices[c]);
            }
            return fail(l, "%s: expected one of %s, got \"%s\"", k->key, list, v);
        }
    case T_PATH:
        if (resolve_path(l, v, f, k->size) != 0) return fail(l, "%s: path is empty or too long", k->key);
        return 0;
    case T_LOGFILE:
        if (!strcmp(v, "stderr")) { strcpy(f, "stderr"); return 0; }
        if (resolve_path(l, v, f, k->size) != 0) return fail(l, "%s: path is empty or too long", k->key);
        return 0;
    case T_ADDR: {
        kv_addr_t *a = f;
        if (*v == '\0') { memset(a, 0, sizeof(*a)); return 0; }   /* disabled */
        if (kv_conf_parse_addr(v, a, e, sizeof(e)) != 0) return fail(l, "%s: %s", k->key, e);
        if (a->kind == KV_ADDR_UNIX) return fail(l, "%s: must be a TCP address", k->key);
        return 0;
    }
    case T_SHARDS: {
        if (!strcmp(v, "auto")) {
            cpu_set_t set;
            int n = 1;
            if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
            *(int *) f = n < 1 ? 1 : n > KV_SHARDS_MAX ? KV_SHARDS_MAX : n;
            return 0;
        }
        if (parse_int64(v, &i) != 0 || i < k->min || i > k->max)
            return fail(l, "%s: expected auto or a whole number from 1 to %d, got \"%s\"",
                        k->key, KV_SHARDS_MAX, v);
        *(int *) f = (int) i;
        return 0;
    }
    case T_CPUS:
        l->cpus_line = l->line, l->cpus_col = l->col;
        if (!strcmp(v, "auto")) { l->conf->cpu_mode = KV_CPU_AUTO; return 0; }
        if (!strcmp(v, "off")) { l->conf->cpu_mode = KV_CPU_OFF; return 0; }
        return fail(l, "%s: expected auto, off or a list of CPU numbers, got \"%s\"", k->key, v);
    case T_STRING:
        if (strlen(v) >= k->size) return fail(l, "%s: longer than %zu bytes", k->key, k->size - 1);
        strcpy(f, v);
        return 0;
    case T_SAVE:
        if (*v == '\0') { l->conf->nsave = 0; return 0; }
        if (parse_save_point(v, &l->conf->save[0]) != 0)
            return fail(l, "%s: expected \"SECONDS CHANGES\" such as \"300 100\", got \"%s\"", k->key, v);
        l->conf->nsave = 1;
        return 0;
    case T_ADDR_LIST: {
        kv_conf_t *c = l->conf;
        if (kv_conf_parse_addr(v, &c->listen[0], e, sizeof(e)) != 0) return fail(l, "%s: %s", k->key, e);
        c->nlisten = 1;
        return 0;
    }
    }
    return fail(l, "%s: internal error: unknown type", k->key);
}

static int set_sequence(loader_t *l, yaml_document_t *doc, const conf_key_t *k, yaml_node_t *n)
{
    kv_conf_t *c = l->conf;
    int count = (int) (n->data.sequence.items.top - n->data.sequence.items.start);
    int idx = 0;

    if (k->type == T_ADDR_LIST) {
        if (count < 1 || count > KV_LISTEN_MAX)
            return fail(l, "%s: expected 1 to %d addresses, got %d", k->key, KV_LISTEN_MAX, count);
    } else if (k->type == T_SAVE) {
        if (count > KV_SAVE_POINTS_MAX)
            return fail(l, "%s: at most %d save points, got %d", k->key, KV_SAVE_POINTS_MAX, count);
    } else if (k->type == T_CPUS) {
        l->cpus_line = l->line, l->cpus_col = l->col;
        if (count < 1 || count > KV_SHARDS_MAX)
            return fail(l, "%s: expected 1 to %d CPU numbers, got %d", k->key, KV_SHARDS_MAX, count);
    } else {
        return fail(l, "%s: expected a single value, not a list", k->key);
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        node_at(l, item);
        if (item->type != YAML_SCALAR_NODE)
            return fail(l, "%s: list items must be plain values", k->key);
        const char *v = (const char *) item->data.scalar.value;
        if (k->type == T_ADDR_LIST) {
            char e[256];
            if (kv_conf_parse_addr(v, &c->listen[idx], e, sizeof(e)) != 0)
                return fail(l, "%s: %s", k->key, e);
        } else if (k->type == T_SAVE) {
            if (parse_save_point(v, &c->save[idx]) != 0)
                return fail(l, "%s: expected \"SECONDS CHANGES\" such as \"300 100\", got \"%s\"", k->key, v);
        } else {
            int64_t cpu;
            if (parse_int64(v, &cpu) != 0 || cpu < 0 || cpu >= CPU_SETSIZE)
                return fail(l, "%s: expected a CPU number, got \"%s\"", k->key, v);
            c->cpus[idx] = (int) cpu;
        }
    }
    if (k->type == T_ADDR_LIST) c->nlisten = count;
    else if (k->type == T_SAVE) c->nsave = count;
    else c->cpu_mode = KV_CPU_LIST, c->ncpus = count;
    return 0;
}

static const conf_key_t *find_key(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(schema[i].key, path)) return &schema[i];
    return NULL;
}

/* Is `path` a prefix (a mapping) of some schema key? */
static int is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (!strncmp(schema[i].key, path, n) && schema[i].key[n] == '.') return 1;
    return 0;
}

static int apply_node(loader_t *l, yaml_document_t *doc, const char *path, yaml_node_t *n);

static int apply_mapping(loader_t *l, yaml_document_t *doc, const char *prefix, yaml_node_t *n)
{
    yaml_node_pair_t *p, *q;
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        node_at(l, kn);
        if (kn->type != YAML_SCALAR_NODE) return fail(l, "keys must be plain names");
        const char *name = (const char *) kn->data.scalar.value;
        char path[256];
        if (snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name) >= (int) sizeof(path))
            return fail(l, "key name is too long");
        for (q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = yaml_document_get_node(doc, q->key);
            if (prev->type == YAML_SCALAR_NODE && !strcmp((const char *) prev->data.scalar.value, name))
                return fail(l, "duplicate key \"%s\" (first at line %d)", path, (int) prev->start_mark.line + 1);
        }
        if (apply_node(l, doc, path, vn) != 0) return -1;
    }
    return 0;
}

static int apply_node(loader_t *l, yaml_document_t *doc, const char *path, yaml_node_t *n)
{
    const conf_key_t *k = find_key(path);
    if (!k) {
        if (!is_section(path)) return fail(l, "unknown key \"%s\"", path);
        node_at(l, n);
        if (is_null(n)) return 0;                        /* "log:" = defaults */
        if (n->type != YAML_MAPPING_NODE) return fail(l, "\"%s\" must be a mapping of keys", path);
        return apply_mapping(l, doc, path, n);
    }
    node_at(l, n);
    if (n->type == YAML_MAPPING_NODE) return fail(l, "%s: expected a value, not a mapping", k->key);
    if (n->type == YAML_SEQUENCE_NODE) return set_sequence(l, doc, k, n);
    if (is_null(n) && k->type != T_ADDR && k->type != T_STRING && k->type != T_SAVE) return fail(l, "%s: a value is required", k->key);
    return set_scalar(l, k, is_null(n) ? "" : (const char *) n->data.scalar.value);
}

/* Parse YAML text and apply it below `prefix` ("" for a whole file). */
static int apply_yaml(loader_t *l, const char *text, size_t len, const char *prefix)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        l->line = (int) parser.problem_mark.line + 1;
        l->col = (int) parser.problem_mark.column + 1;
        rc = fail(l, "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
                  parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        if (*prefix) {
            rc = apply_node(l, &doc, prefix, root);
        } else {
            node_at(l, root);
            if (is_null(root)) rc = 0;
            else if (root->type != YAML_MAPPING_NODE) rc = fail(l, "the configuration must be a mapping of keys");
            else rc = apply_mapping(l, &doc, "", root);
        }
        yaml_document_t extra;
        if (rc == 0 && yaml_parser_load(&parser, &extra)) {
            if (yaml_document_get_root_node(&extra)) {
                node_at(l, yaml_document_get_root_node(&extra));
                rc = fail(l, "only one YAML document is allowed");
            }
            yaml_document_delete(&extra);
        }
    } else if (*prefix) {
        const conf_key_t *k = find_key(prefix);
        rc = k && (k->type == T_ADDR || k->type == T_STRING || k->type == T_SAVE) ? set_scalar(l, k, "") : fail(l, "%s: a value is required", prefix);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static int read_file(loader_t *l, const char *file, char **out, size_t *len)
{
    FILE *fp = fopen(file, "rb");
    l->line = 1, l->col = 1;
    if (!fp) return fail(l, "cannot open the configuration file: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return fail(l, "not a regular file");
    }
    if (st.st_size > CONF_FILE_MAX) {
        fclose(fp);
        return fail(l, "the file is larger than %d bytes", CONF_FILE_MAX);
    }
    char *buf = malloc((size_t) st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t) st.st_size, fp) : 0;
    int e = ferror(fp);
    fclose(fp);
    if (!buf || e) {
        free(buf);
        return fail(l, "cannot read the configuration file: %s", strerror(e ? EIO : ENOMEM));
    }
    buf[n] = '\0';
    *out = buf, *len = n;
    return 0;
}

static int validate(loader_t *l)
{
    kv_conf_t *c = l->conf;
    cpu_set_t avail;
    l->line = l->cpus_line ? l->cpus_line : 1;
    l->col = l->cpus_col ? l->cpus_col : 1;
    if (sched_getaffinity(0, sizeof(avail), &avail) != 0) CPU_ZERO(&avail);
    if (c->cpu_mode == KV_CPU_LIST) {
        if (c->ncpus < c->shards)
            return fail(l, "cpu_affinity: lists %d CPUs for %d shards", c->ncpus, c->shards);
        for (int i = 0; i < c->ncpus; i++)
            if (!CPU_ISSET(c->cpus[i], &avail))
                return fail(l, "cpu_affinity: CPU %d is not available to this process", c->cpus[i]);
    }
    if (c->cpu_mode == KV_CPU_AUTO) {
        c->ncpus = 0;
        for (int cpu = 0; cpu < CPU_SETSIZE && c->ncpus < KV_SHARDS_MAX; cpu++)
            if (CPU_ISSET(cpu, &avail)) c->cpus[c->ncpus++] = cpu;
        if (c->ncpus == 0) c->cpu_mode = KV_CPU_OFF;
    }
    return 0;
}

int kv_conf_load(kv_conf_t *conf, const char *file,
                 const kv_conf_override_t *ov, int nov,
                 char *err, size_t errlen)
{
    loader_t l = { .conf = conf, .err = err, .errlen = errlen };
    char *text = NULL;
    size_t len = 0;

    memset(conf, 0, sizeof(*conf));
    if (!realpath(file, conf->file)) snprintf(conf->file, sizeof(conf->file), "%s", file);
    snprintf(l.basedir, sizeof(l.basedir), "%s", conf->file);
    char *slash = strrchr(l.basedir, '/');
    if (slash) *slash = '\0';
    else strcpy(l.basedir, ".");
    if (slash == l.basedir) strcpy(l.basedir, "/");

    /* Defaults go through the same parser; an error here is a bug. */
    l.where = "default";
    l.is_override = 1;
    for (size_t i = 0; i < NKEYS; i++)
        if (apply_yaml(&l, schema[i].def, strlen(schema[i].def), schema[i].key) != 0) return -1;

    l.where = file;
    l.is_override = 0;
    if (read_file(&l, file, &text, &len) != 0) return -1;
    int rc = apply_yaml(&l, text, len, "");
    free(text);
    if (rc != 0) return -1;

    l.is_override = 1;
    for (int i = 0; i < nov; i++) {
        char where[300], key[256];
        snprintf(where, sizeof(where), "-o %s", ov[i].text);
        l.where = where;
        const char *eq = strchr(ov[i].text, '=');
        if (!eq || eq == ov[i].text || (size_t) (eq - ov[i].text) >= sizeof(key))
            return fail(&l, "expected -o path.to.key=value");
        memcpy(key, ov[i].text, (size_t) (eq - ov[i].text));
        key[eq - ov[i].text] = '\0';
        if (!find_key(key) && !is_section(key)) return fail(&l, "unknown key \"%s\"", key);
        /* Relative paths on the command line resolve against the cwd. */
        char saved[PATH_MAX];
        strcpy(saved, l.basedir);
        if (!getcwd(l.basedir, sizeof(l.basedir))) strcpy(l.basedir, ".");
        rc = apply_yaml(&l, eq + 1, strlen(eq + 1), key);
        strcpy(l.basedir, saved);
        if (rc != 0) return -1;
    }
    l.where = file;
    l.is_override = 0;
    return validate(&l);
}

void kv_conf_apply_reloadable(kv_conf_t *dst, const kv_conf_t *fresh)
{
    dst->log_level = fresh->log_level;
    strcpy(dst->log_file, fresh->log_file);
    dst->shutdown_timeout_ms = fresh->shutdown_timeout_ms;
    dst->maxclients = fresh->maxclients;
    dst->timeout_s = fresh->timeout_s;
    dst->proto_max_bulk_len = fresh->proto_max_bulk_len;
    dst->client_query_buffer_limit = fresh->client_query_buffer_limit;
    dst->output_buffer_limit = fresh->output_buffer_limit;
    memcpy(dst->requirepass, fresh->requirepass, sizeof(dst->requirepass));
    dst->aof_fsync = fresh->aof_fsync;
    dst->aof_rewrite_percentage = fresh->aof_rewrite_percentage;
    dst->aof_rewrite_min_size = fresh->aof_rewrite_min_size;
    dst->hz = fresh->hz;
}

void kv_conf_diff(const kv_conf_t *a, const kv_conf_t *b, kv_conf_change_cb cb, void *data)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const conf_key_t *k = &schema[i];
        int differ = memcmp((const char *) a + k->off, (const char *) b + k->off, k->size) != 0;
        if (k->type == T_CPUS)
            differ = a->cpu_mode != b->cpu_mode || a->ncpus != b->ncpus || differ;
        if (k->type == T_ADDR_LIST)
            differ = a->nlisten != b->nlisten || differ;
        if (k->type == T_SAVE)
            differ = a->nsave != b->nsave || differ;
        if (differ) cb(k->key, k->reload, data);
    }
}

int kv_conf_worker_cpu(const kv_conf_t *conf, int k)
{
    if (conf->cpu_mode == KV_CPU_OFF || conf->ncpus == 0) return -1;
    if (conf->cpu_mode == KV_CPU_LIST) return conf->cpus[k];
    return conf->cpus[k % conf->ncpus];
}
