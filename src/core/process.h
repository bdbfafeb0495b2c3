/* Process plumbing: titles, the pid file, daemonizing, CPU pinning. */
#ifndef KV_CORE_PROCESS_H
#define KV_CORE_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

/* Must run first in main: moves environ so the argv area can hold titles. */
void kv_proctitle_init(int argc, char **argv);
/* "kevy: master", "kevy: worker 3": shown by ps and /proc/PID/cmdline. */
void kv_proctitle_set(const char *title);

/* Create and lock the pid file, then write our pid. Fails with a message
 * naming the running kevy when another holds the lock. Returns the fd
 * (kept open: the lock lives as long as it does) or -1. */
int  kv_pidfile_create(const char *path, char *err, size_t errlen);
/* Rewrite the pid after daemonizing changed it. */
int  kv_pidfile_write(int fd);
/* Read the pid of a running master; -1 with err. */
pid_t kv_pidfile_read(const char *path, char *err, size_t errlen);

/* Detach: fork, setsid, stdio to /dev/null. Returns 0 in the daemon. */
int  kv_daemonize(char *err, size_t errlen);

/* Pin the calling process to cpu (no-op for -1). */
int  kv_pin_cpu(int cpu);

#endif
