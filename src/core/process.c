#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/process.h"

extern char **environ;

static char  *title_start;   /* the original argv[0] memory               */
static size_t title_room;    /* contiguous bytes of the argv+environ block */

/*
 * Linux shows /proc/PID/cmdline from the original argv memory. As nginx
 * does, copy argv and environ elsewhere so that block can hold the title.
 */
void kv_proctitle_init(int argc, char **argv)
{
    char *start = argv[0], *end = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] == end) end = argv[i] + strlen(argv[i]) + 1;
    int n = 0;
    while (environ[n]) n++;
    char **env = malloc(sizeof(char *) * ((size_t) n + 1));
    if (!env) return;
    for (int i = 0; i < n; i++) {
        if (environ[i] == end) end = environ[i] + strlen(environ[i]) + 1;
        env[i] = strdup(environ[i]);
    }
    env[n] = NULL;
    environ = env;
    for (int i = 0; i < argc; i++) argv[i] = strdup(argv[i]);
    title_start = start;
    title_room = (size_t) (end - start);
}

void kv_proctitle_set(const char *title)
{
    /* comm (15 chars) is what top and pgrep show by default. */
    prctl(PR_SET_NAME, title, 0, 0, 0);
    if (!title_start || title_room < 2) return;
    size_t n = strlen(title);
    if (n > title_room - 1) n = title_room - 1;
    memcpy(title_start, title, n);
    memset(title_start + n, '\0', title_room - n);
}

int kv_pidfile_create(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open pid file %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = "";
        ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[r > 0 ? r : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(err, errlen, "another kevy (pid %s) is running with pid file %s",
                 *buf ? buf : "?", path);
        close(fd);
        return -1;
    }
    if (kv_pidfile_write(fd) != 0) {
        snprintf(err, errlen, "cannot write pid file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int kv_pidfile_write(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t) n, 0) != n) return -1;
    return 0;
}

pid_t kv_pidfile_read(const char *path, char *err, size_t errlen)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open pid file %s: %s (is kevy running?)", path, strerror(errno));
        return -1;
    }
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[r > 0 ? r : 0] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (r <= 0 || pid <= 0 || (*end && *end != '\n')) {
        snprintf(err, errlen, "pid file %s does not hold a pid", path);
        return -1;
    }
    return (pid_t) pid;
}

int kv_daemonize(char *err, size_t errlen)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) _exit(0);
    if (setsid() < 0) {
        snprintf(err, errlen, "setsid() failed: %s", strerror(errno));
        return -1;
    }
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO) close(fd);
    }
    return 0;
}

int kv_pin_cpu(int cpu)
{
    if (cpu < 0) return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}
