#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int  log_fd = STDERR_FILENO;
static int  log_level = KV_LOG_NOTICE;
static char log_path[PATH_MAX] = "stderr";
static char log_role[8] = "M";

static int open_path(const char *file, char *err, size_t errlen)
{
    if (!strcmp(file, "stderr")) return STDERR_FILENO;
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 && err) snprintf(err, errlen, "cannot open log file %s: %s", file, strerror(errno));
    return fd;
}

int kv_log_open(const char *file, int level, char *err, size_t errlen)
{
    int fd = open_path(file, err, errlen);
    if (fd < 0) return -1;
    if (log_fd != STDERR_FILENO) close(log_fd);
    log_fd = fd;
    log_level = level;
    snprintf(log_path, sizeof(log_path), "%s", file);
    return 0;
}

int kv_log_reopen(void)
{
    char err[PATH_MAX + 64];
    int fd = open_path(log_path, err, sizeof(err));
    if (fd < 0) {
        kv_log_warning("%s; logging to the old file", err);
        return -1;
    }
    if (fd != STDERR_FILENO) {
        /* dup2 keeps the descriptor number, so nothing caches a stale fd. */
        if (log_fd != STDERR_FILENO) { dup2(fd, log_fd); close(fd); }
        else log_fd = fd;
    }
    return 0;
}

void kv_log_set_level(int level) { log_level = level; }

void kv_log_set_role(const char *role) { snprintf(log_role, sizeof(log_role), "%s", role); }

void kv_log_close(void)
{
    if (log_fd != STDERR_FILENO) close(log_fd);
    log_fd = STDERR_FILENO;
}

void kv_log(int level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    char line[1024];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < log_level) return;
    int saved = errno;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%d:%s ", (int) getpid(), log_role);
    n += (int) strftime(line + n, sizeof(line) - (size_t) n, "%d %b %Y %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t) n, ".%03d %c ", (int) (tv.tv_usec / 1000),
                  marks[level & 3]);
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
    va_end(ap);
    n = (m < 0) ? n : (n + m > (int) sizeof(line) - 2 ? (int) sizeof(line) - 2 : n + m);
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, (size_t) n);
    (void) w;
    errno = saved;
}
