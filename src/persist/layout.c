/*
 * Layout reconciliation and the crash-safe reshard.
 *
 *   dir/shards.meta       "kevy-layout 1\nshards N\nrouting hash\n"
 *   dir/reshard.journal   "kevy-reshard 1\nfrom N R\nto N R\nstamp T\n"
 *                         then "commit\n" once every new snapshot is
 *                         durable, then "phase-b\n" once every old file
 *                         has been moved aside.
 *
 * A reshard: write the journal; load every old shard (snapshot, then
 * AOF) and move each key to its new shard; write each new snapshot as
 * shard-K.rdb.reshard (fsynced); append "commit" (the commit point);
 * phase A: rename the old shard-K.rdb/.aof to *.premigration.T; append
 * "phase-b"; phase B: rename each shard-K.rdb.reshard to shard-K.rdb;
 * write shards.meta; remove the journal.
 *
 * At start, a journal without "commit" is discarded (the new files are
 * removed; the old ones were never touched); with "commit" it is rolled
 * forward from where it stopped ("phase-b" tells phase A is complete, so
 * a shard-K.rdb present then is a new one). Every step is a rename or an
 * fsynced append, so killing the process at any point loses or duplicates
 * no key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "persist/layout.h"
#include "persist/rdb_file.h"
#include "persist/rdbobj.h"
#include "shard/db.h"
#include "shard/route.h"

/* The AOF module's loader, when it is linked in. */
int kv_aof_load(kv_db_t *db, const kv_conf_t *conf, int shard, char *err, size_t errlen)
    __attribute__((weak));

static const char *const routing_names[] = { "hash", "slots" };

/* dir is at most PATH_MAX - 1 bytes; the longest name we add fits in 64. */
#define LPATH (PATH_MAX + 64)

typedef struct {
    int shards, routing;
} layout_t;

typedef struct {
    layout_t from, to;
    long long stamp;
    int commit, phase_b;
} journal_t;

static int in_child;                    /* running in the reshard child */

/* Test-only: KEVY_TEST_RESHARD_CRASH=N kills the master (and the reshard
 * child) with SIGKILL at checkpoint N, as a power cut would. */
static void checkpoint(int n)
{
    const char *v = getenv("KEVY_TEST_RESHARD_CRASH");
    if (!v || atoi(v) != n) return;
    if (in_child) kill(getppid(), SIGKILL);
    raise(SIGKILL);
}

/* Paths in dir; a path that does not fit becomes "" (every use fails). */
static void path_of(char *out, size_t n, const kv_conf_t *c, const char *name)
{
    if (snprintf(out, n, "%s/%s", c->dir, name) >= (int) n) out[0] = '\0';
}

static void shard_path(char *out, size_t n, const kv_conf_t *c, int k, const char *ext)
{
    if (snprintf(out, n, "%s/shard-%d.%s", c->dir, k, ext) >= (int) n) out[0] = '\0';
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write a small file durably: tmp, fsync, rename, fsync dir. */
static int write_durable(const kv_conf_t *c, const char *name, const char *text)
{
    char path[LPATH], tmp[LPATH + 8];
    path_of(path, sizeof(path), c, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t) n && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) return -1;
    return fsync_dir(c->dir);
}

static int append_durable(const kv_conf_t *c, const char *name, const char *line)
{
    char path[LPATH];
    path_of(path, sizeof(path), c, name);
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) return -1;
    size_t n = strlen(line);
    int ok = write(fd, line, n) == (ssize_t) n && fsync(fd) == 0;
    close(fd);
    return ok ? 0 : -1;
}

static int parse_routing(const char *s)
{
    for (int i = 0; i < 2; i++) if (!strcmp(s, routing_names[i])) return i;
    return -1;
}

/* 1 read, 0 absent, -1 unreadable/corrupt. */
static int read_meta(const kv_conf_t *c, layout_t *l)
{
    char path[LPATH], r[16];
    path_of(path, sizeof(path), c, "shards.meta");
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    int ok = fscanf(f, "kevy-layout 1 shards %d routing %15s", &l->shards, r) == 2;
    fclose(f);
    l->routing = ok ? parse_routing(r) : -1;
    return ok && l->shards >= 1 && l->shards <= KV_SHARDS_MAX && l->routing >= 0 ? 1 : -1;
}

static int write_meta(const kv_conf_t *c, const layout_t *l)
{
    char text[96];
    snprintf(text, sizeof(text), "kevy-layout 1\nshards %d\nrouting %s\n", l->shards,
             routing_names[l->routing]);
    return write_durable(c, "shards.meta", text);
}

int kv_layout_write_meta(const kv_conf_t *c, char *err, size_t errlen)
{
    layout_t l = { c->shards, c->routing };
    if (write_meta(c, &l) == 0) return 0;
    snprintf(err, errlen, "cannot write %s/shards.meta: %s", c->dir, strerror(errno));
    return -1;
}

static int read_journal(const kv_conf_t *c, journal_t *j)
{
    char path[LPATH], r1[16], r2[16], line[64];
    path_of(path, sizeof(path), c, "reshard.journal");
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    memset(j, 0, sizeof(*j));
    int ok = fscanf(f, "kevy-reshard 1 from %d %15s to %d %15s stamp %lld ", &j->from.shards, r1,
                    &j->to.shards, r2, &j->stamp) == 5;
    while (ok && fgets(line, sizeof(line), f)) {
        if (!strcmp(line, "commit\n")) j->commit = 1;
        else if (!strcmp(line, "phase-b\n")) j->phase_b = 1;
    }
    fclose(f);
    j->from.routing = parse_routing(r1), j->to.routing = parse_routing(r2);
    return ok && j->from.routing >= 0 && j->to.routing >= 0 ? 1 : -1;
}

/* ---- finishing or undoing a reshard --------------------------------------- */

static int move_aside(const kv_conf_t *c, int k, const char *ext, long long stamp)
{
    char from[LPATH], to[LPATH + 40];
    shard_path(from, sizeof(from), c, k, ext);
    snprintf(to, sizeof(to), "%s.premigration.%lld", from, stamp);
    if (rename(from, to) != 0 && errno != ENOENT) return -1;
    return 0;
}

static int roll_forward(const kv_conf_t *c, const journal_t *j, char *err, size_t errlen)
{
    char from[LPATH], to[PATH_MAX];
    if (!j->phase_b) {
        for (int k = 0; k < j->from.shards; k++) {
            if (move_aside(c, k, "rdb", j->stamp) != 0 || move_aside(c, k, "aof", j->stamp) != 0) goto fail;
            checkpoint(4);
        }
        if (fsync_dir(c->dir) != 0 || append_durable(c, "reshard.journal", "phase-b\n") != 0) goto fail;
        checkpoint(5);
    }
    for (int k = 0; k < j->to.shards; k++) {
        shard_path(from, sizeof(from), c, k, "rdb.reshard");
        shard_path(to, sizeof(to), c, k, "rdb");
        if (rename(from, to) != 0 && errno != ENOENT) goto fail;
        checkpoint(6);
    }
    if (fsync_dir(c->dir) != 0 || write_meta(c, &j->to) != 0) goto fail;
    checkpoint(7);
    path_of(to, sizeof(to), c, "reshard.journal");
    unlink(to);
    fsync_dir(c->dir);
    kv_log_notice("reshard %d -> %d shards complete; the old files are kept as *.premigration.%lld",
                  j->from.shards, j->to.shards, j->stamp);
    return 0;
fail:
    snprintf(err, errlen, "reshard: cannot rename files in %s: %s", c->dir, strerror(errno));
    return -1;
}

static void discard(const kv_conf_t *c, const journal_t *j)
{
    char p[LPATH];
    for (int k = 0; k < j->to.shards; k++) {
        shard_path(p, sizeof(p), c, k, "rdb.reshard");
        unlink(p);
        shard_path(p, sizeof(p), c, k, "rdb.reshard.part");
        unlink(p);
    }
    path_of(p, sizeof(p), c, "reshard.journal");
    unlink(p);
    fsync_dir(c->dir);
    kv_log_warning("an unfinished reshard (%d -> %d shards) was discarded; the old files are intact",
                   j->from.shards, j->to.shards);
}

/* ---- the reshard itself (in a child process) ------------------------------------ */

static int load_old_shard(kv_conf_t *oc, int k, kv_db_t *db, char *err, size_t errlen)
{
    char p[LPATH];
    kv_rdb_load_stats st;
    shard_path(p, sizeof(p), oc, k, "rdb");
    if (access(p, F_OK) == 0 && kv_rdb_load_db(db, p, &st, err, errlen) != 0) return -1;
    shard_path(p, sizeof(p), oc, k, "aof");
    if (access(p, F_OK) == 0) {
        if (!kv_aof_load) {
            snprintf(err, errlen, "%.400s: this build cannot replay AOF files", p);
            return -1;
        }
        if (kv_aof_load(db, oc, k, err, errlen) != 0) return -1;
    }
    return 0;
}

static int reshard_child(const kv_conf_t *c, const journal_t *j, char *err, size_t errlen)
{
    kv_conf_t oc = *c;                  /* the old layout's view of dir */
    oc.shards = j->from.shards, oc.routing = j->from.routing;
    kv_db_t *dst[KV_SHARDS_MAX];
    for (int k = 0; k < j->to.shards; k++) dst[k] = kv_db_new();
    kv_route_init(j->to.shards, j->to.routing);
    uint64_t moved = 0;
    for (int k = 0; k < j->from.shards; k++) {
        kv_db_t *src = kv_db_new();
        if (load_old_shard(&oc, k, src, err, errlen) != 0) return -1;
        kv_dict_iter it;
        kv_dict_entry *e;
        kv_dict_iter_init(&it, src->dict);
        while ((e = kv_dict_iter_next(&it))) {
            kv_rdb_buf b;
            int64_t ttl = -1;
            const char *key = kv_dict_entry_key(e);
            size_t klen = kv_dict_entry_klen(e);
            kv_rdb_buf_init(&b);
            int t = kv_route_shard(key, klen);
            if (kv_rdbobj_export(e, &b, &ttl) != 0 || b.oom
                || kv_rdbobj_import(dst[t], key, klen, b.p, b.len, ttl) != KV_RDB_OK) {
                snprintf(err, errlen, "reshard: cannot move key \"%.*s\" of shard %d", (int) (klen > 64 ? 64 : klen),
                         key, k);
                kv_rdb_buf_free(&b);
                kv_dict_iter_done(&it);
                return -1;
            }
            kv_rdb_buf_free(&b);
            moved++;
        }
        kv_dict_iter_done(&it);
        kv_db_free(src);
    }
    for (int k = 0; k < j->to.shards; k++) {
        char path[LPATH], part[PATH_MAX];
        shard_path(path, sizeof(path), c, k, "rdb.reshard");
        shard_path(part, sizeof(part), c, k, "rdb.reshard.part");
        if (kv_rdb_save_file(dst[k], path, part, err, errlen) != 0) return -1;
        kv_db_free(dst[k]);
        checkpoint(2);
    }
    kv_log_notice("reshard: %llu keys redistributed over %d shards", (unsigned long long) moved, j->to.shards);
    if (append_durable(c, "reshard.journal", "commit\n") != 0) {
        snprintf(err, errlen, "reshard: cannot write the journal: %s", strerror(errno));
        return -1;
    }
    checkpoint(3);
    journal_t done = *j;
    done.commit = 1;
    return roll_forward(c, &done, err, errlen);
}

/* Fork so that the keys never live in the master's memory. */
static int run_in_child(const kv_conf_t *c, const journal_t *j, char *err, size_t errlen)
{
    int pfd[2];
    if (pipe(pfd) != 0) {
        snprintf(err, errlen, "reshard: pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "reshard: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        in_child = 1;
        close(pfd[0]);
        char e[512] = "";
        int rc = reshard_child(c, j, e, sizeof(e));
        if (rc != 0) {
            ssize_t w = write(pfd[1], e, strlen(e));
            (void) w;
        }
        _exit(rc == 0 ? 0 : 1);
    }
    close(pfd[1]);
    char msg[512];
    ssize_t n = read(pfd[0], msg, sizeof(msg) - 1);
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    snprintf(err, errlen, "%s", n > 0 ? (msg[n] = '\0', msg) : "reshard: the reshard process died");
    return -1;
}

/* Any shard file (snapshot or AOF) in dir? */
static int has_shard_files(const kv_conf_t *c)
{
    DIR *d = opendir(c->dir);
    struct dirent *de;
    int found = 0;
    if (!d) return 0;
    while (!found && (de = readdir(d))) {
        int k;
        char ext[8];
        found = sscanf(de->d_name, "shard-%d.%7s", &k, ext) == 2 && (!strcmp(ext, "rdb") || !strcmp(ext, "aof"));
    }
    closedir(d);
    return found;
}

int kv_layout_reconcile(const kv_conf_t *c, char *err, size_t errlen)
{
    layout_t want = { c->shards, c->routing }, have;
    journal_t j;
    int rc = read_journal(c, &j);
    if (rc < 0) {
        snprintf(err, errlen, "%s/reshard.journal is unreadable or corrupt; refusing to guess", c->dir);
        return -1;
    }
    if (rc == 1) {
        if (!j.commit) discard(c, &j);
        else if (roll_forward(c, &j, err, errlen) != 0) return -1;
    }
    rc = read_meta(c, &have);
    if (rc < 0) {
        snprintf(err, errlen, "%s/shards.meta is unreadable or corrupt", c->dir);
        return -1;
    }
    if (rc == 0) {
        /* First start, or files from before shards.meta: they are taken to
         * be in the configured layout. */
        if (has_shard_files(c))
            kv_log_warning("%s has shard files but no shards.meta; assuming %d shards, routing %s",
                           c->dir, want.shards, routing_names[want.routing]);
        if (write_meta(c, &want) != 0) {
            snprintf(err, errlen, "cannot write %s/shards.meta: %s", c->dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (have.shards == want.shards && have.routing == want.routing) return 0;

    memset(&j, 0, sizeof(j));
    j.from = have, j.to = want;
    j.stamp = (long long) time(NULL);
    char text[160];
    snprintf(text, sizeof(text), "kevy-reshard 1\nfrom %d %s\nto %d %s\nstamp %lld\n", have.shards,
             routing_names[have.routing], want.shards, routing_names[want.routing], j.stamp);
    kv_log_notice("resharding %s: %d shards (%s) -> %d shards (%s)", c->dir, have.shards,
                  routing_names[have.routing], want.shards, routing_names[want.routing]);
    if (write_durable(c, "reshard.journal", text) != 0) {
        snprintf(err, errlen, "cannot write %s/reshard.journal: %s", c->dir, strerror(errno));
        return -1;
    }
    checkpoint(1);
    if (run_in_child(c, &j, err, errlen) != 0) {
        /* Before the commit record nothing old was touched: undo. After
         * it, the next start rolls forward. */
        journal_t now;
        if (read_journal(c, &now) == 1 && !now.commit) discard(c, &now);
        return -1;
    }
    return 0;
}
