/*
 * Replaying an AOF (persist/aof.h): read the file in chunks, parse each
 * command with the connection's RESP parser (kv_resp_parse), and run it on
 * the db through the command table with a stand-in client, as a forwarded
 * request runs (no routing: the file holds only this shard's keys; nothing
 * is propagated while loading).
 *
 * Every command must be a multibulk ('*'), as Redis's loader requires.
 * At end of file:
 *   - nothing left over: loaded;
 *   - a partial command (starting with '*'), or only NUL bytes (a file
 *     extended but never written, after a power loss): a torn tail, cut
 *     off at the last good offset with a warning, as Redis's
 *     aof-load-truncated yes;
 * anything else (a protocol error, a line that is not a command, an
 * unknown command) is corruption: an error naming the file and offset.
 *
 * MULTI ... EXEC (a transaction, logged so by kevy.exec) runs whole or
 * not at all: its commands are queued and run at EXEC; a file that ends
 * inside one is cut back to its MULTI, as Redis's loader reverts an
 * incomplete transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "persist/aof.h"

#define CHUNK (1u << 20)

typedef struct {
    int          argc;
    kv_resp_arg *argv;                  /* argument bytes follow the array */
    size_t       off;                   /* file offset, for warnings      */
} queued_t;

static void run_one(kv_client_t *c, int argc, kv_resp_arg *argv, const char *path, size_t off, long long *nerr)
{
    const kv_cmd_t *cmd = kv_cmd_lookup_any(argv[0].ptr, argv[0].len);
    c->argc = argc, c->argv = argv;
    cmd->proc(c);
    struct iovec iov[1];
    if (kv_reply_buf_iov(&c->out, iov, 1) > 0 && ((char *) iov[0].iov_base)[0] == '-' && (*nerr)++ < 5)
        kv_log_warning("AOF %s offset %zu: %.*s replied %.*s", path, off, (int) argv[0].len, argv[0].ptr,
                       (int) (iov[0].iov_len > 120 ? 120 : iov[0].iov_len - 2), (char *) iov[0].iov_base);
    kv_reply_buf_reset(&c->out);
}

static queued_t copy_cmd(int argc, const kv_resp_arg *argv, size_t off)
{
    void *mem = malloc(kv_resp_argv_size(argc, argv) + 1);
    if (!mem) abort();
    return (queued_t) { argc, kv_resp_argv_copy(mem, argc, argv), off };
}

static int all_nul(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

int kv_aof_replay_file(kv_db_t *db, const char *path, int fix_tail, char *err, size_t errlen)
{
    int fd = open(path, fix_tail ? O_RDWR : O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot open the append only file %s: %s", path, strerror(errno));
        return -1;
    }
    static kv_conf_t conf;      /* handlers may read c->srv->conf */
    static kv_server_t srv;
    kv_client_t c;
    memset(&c, 0, sizeof c);
    srv.conf = &conf;
    srv.db = db;
    c.srv = &srv, c.db = db;
    kv_reply_buf_init(&c.out);
    kv_resp_parser p;
    kv_resp_init(&p);
    p.max_bulk_len = 1LL << 42;

    char *buf = NULL;
    size_t len = 0, cap = 0, base = 0;  /* base: file offset of buf[0] */
    long long ncmds = 0, nerr = 0;
    int rc = 0, eof = 0, in_multi = 0, nq = 0, qcap = 0;
    size_t multi_off = 0;               /* file offset of the open MULTI */
    queued_t *q = NULL;
    for (;;) {
        size_t before = kv_resp_consumed(&p);
        int r = len > before ? kv_resp_parse(&p, buf, len) : KV_RESP_NEED_MORE;
        if (r == KV_RESP_OK) {
            if (p.cmd_start != before || buf[before] != '*') {
                snprintf(err, errlen, "Bad file format reading the append only file %s at offset %zu", path,
                         base + before);
                rc = -1;
                break;
            }
            const kv_resp_arg *a0 = &p.argv[0];
            if (a0->len == 6 && !strncasecmp(a0->ptr, "select", 6)) {
                if (p.argc != 2 || p.argv[1].len != 1 || p.argv[1].ptr[0] != '0') {
                    snprintf(err, errlen, "the append only file %s selects a database other than 0 at offset %zu",
                             path, base + before);
                    rc = -1;
                    break;
                }
                continue;
            }
            const kv_cmd_t *cmd = kv_cmd_lookup_any(a0->ptr, a0->len);
            if (!cmd || !kv_cmd_arity_ok(cmd, p.argc)) {
                snprintf(err, errlen, "%s command '%.*s' in the append only file %s at offset %zu",
                         cmd ? "wrong number of arguments for" : "unknown", (int) (a0->len > 64 ? 64 : a0->len),
                         a0->ptr, path, base + before);
                rc = -1;
                break;
            }
            int is_multi = !strcasecmp(cmd->name, "multi"), is_exec = !strcasecmp(cmd->name, "exec");
            if ((is_multi && in_multi) || (is_exec && !in_multi)) {
                snprintf(err, errlen, "%s in the append only file %s at offset %zu",
                         is_multi ? "nested MULTI" : "EXEC without MULTI", path, base + before);
                rc = -1;
                break;
            }
            if (is_multi) {
                in_multi = 1, multi_off = base + before;
            } else if (is_exec) {
                for (int i = 0; i < nq; i++) {
                    run_one(&c, q[i].argc, q[i].argv, path, q[i].off, &nerr);
                    free(q[i].argv);
                }
                ncmds += nq;
                nq = 0, in_multi = 0;
            } else if (in_multi) {
                if (nq == qcap && !(q = realloc(q, sizeof(*q) * (size_t) (qcap = qcap ? qcap * 2 : 16)))) abort();
                q[nq++] = copy_cmd(p.argc, p.argv, base + before);
            } else {
                run_one(&c, p.argc, p.argv, path, base + before, &nerr);
                ncmds++;
            }
            continue;
        }
        if (r == KV_RESP_ERR) {
            snprintf(err, errlen, "Bad file format reading the append only file %s at offset %zu: %s", path,
                     base + before, p.err);
            rc = -1;
            break;
        }
        /* NEED_MORE: a command that is not one yet must at least start as one */
        if (len > before && buf[before] != '*' && !all_nul(buf + before, len - before)) {
            snprintf(err, errlen, "Bad file format reading the append only file %s at offset %zu", path,
                     base + before);
            rc = -1;
            break;
        }
        if (eof) {
            if (len > before || in_multi) {
                size_t good = in_multi ? multi_off : base + before;
                if (!fix_tail) {
                    snprintf(err, errlen, "the append only file %s ends with a partial command at offset %zu",
                             path, good);
                    rc = -1;
                } else if (ftruncate(fd, (off_t) good) != 0 || fsync(fd) != 0) {
                    snprintf(err, errlen, "cannot truncate the append only file %s at offset %zu: %s", path, good,
                             strerror(errno));
                    rc = -1;
                } else {
                    kv_log_warning("!!! Warning: short read while loading the AOF file %s!!! "
                                   "Truncated %zu bytes of a partial %s at offset %zu (aof-load-truncated)",
                                   path, base + len - good, in_multi ? "transaction" : "command", good);
                }
            }
            break;
        }
        /* drop what is parsed, read more */
        if (before > 0) {
            memmove(buf, buf + before, len - before);
            len -= before, base += before;
            kv_resp_discard(&p, before);
        }
        size_t want = kv_resp_want(&p, len);
        want = want > CHUNK ? want : CHUNK;
        if (cap - len < want) {
            size_t ncap = cap ? cap : CHUNK;
            while (ncap - len < want) ncap *= 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "out of memory loading the append only file %s", path);
                rc = -1;
                break;
            }
            buf = nb, cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "error reading the append only file %s at offset %zu: %s", path, base + len,
                     strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0) eof = 1;
        len += (size_t) n;
    }
    if (rc == 0) kv_log_notice("DB loaded from append only file %s: %lld commands", path, ncmds);
    for (int i = 0; i < nq; i++) free(q[i].argv);
    free(q);
    free(buf);
    kv_resp_free(&p);
    kv_reply_buf_free(&c.out);
    close(fd);
    return rc;
}
