/*
 * The client listening sockets, opened by the master before it forks so a
 * respawned worker inherits the very same sockets (no connection refused
 * while it restarts; queued connections wait in the kernel).
 *
 * TCP: one SO_REUSEPORT socket per worker on each address, so the kernel
 * spreads connections over the workers. Unix: one socket all workers
 * accept on. Ownership: the master holds every fd until exit; a worker
 * closes the ones that are not its own after fork.
 */
#ifndef KV_CORE_LISTEN_H
#define KV_CORE_LISTEN_H

#include "core/conf.h"

typedef struct {
    kv_addr_t addr;
    int       port;                 /* the bound port (TCP), after port 0 */
    int       fds[KV_SHARDS_MAX];   /* TCP: per worker; unix: fds[0]     */
    int       nfds;
} kv_listener_t;

typedef struct {
    kv_listener_t l[KV_LISTEN_MAX];
    int           n;
} kv_listeners_t;

/* Open every address in conf->listen for conf->shards workers. Refuses an
 * address another process listens on, with a message naming it. */
int  kv_listen_open(kv_listeners_t *ls, const kv_conf_t *conf, char *err, size_t errlen);
/* Close every socket; unlink unix socket files when `unlink_paths`. */
void kv_listen_close(kv_listeners_t *ls, int unlink_paths);
/* The fd worker k accepts on for listener i. */
int  kv_listen_fd(const kv_listeners_t *ls, int i, int k);
/* Worker k is down for a while: close its TCP sockets (new connections go
 * to the other workers); resume reopens them on the same ports. */
void kv_listen_suspend(kv_listeners_t *ls, int k);
int  kv_listen_resume(kv_listeners_t *ls, int k, char *err, size_t errlen);
/* In worker k after fork: close the sockets that belong to other workers. */
void kv_listen_keep_only(kv_listeners_t *ls, int k);

#endif
