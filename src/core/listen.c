#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/listen.h"

#define LISTEN_BACKLOG 511

static int resolve(const kv_addr_t *a, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res;
    char port[16];
    snprintf(port, sizeof(port), "%d", a->port);
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0) return rc;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int tcp_socket(const struct sockaddr_storage *ss, socklen_t len, int reuseport)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        || bind(fd, (const struct sockaddr *) ss, len) != 0
        || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET) ((struct sockaddr_in *) ss)->sin_port = htons((uint16_t) port);
    else ((struct sockaddr_in6 *) ss)->sin6_port = htons((uint16_t) port);
    return port;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *) &ss, &len) != 0) return -1;
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                         : ((struct sockaddr_in6 *) &ss)->sin6_port);
}

static int open_tcp(kv_listener_t *l, int nworkers, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = resolve(&l->addr, &ss, &len);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", l->addr.text, gai_strerror(rc));
        return -1;
    }
    /*
     * SO_REUSEPORT would let us bind beside another server that also uses
     * it (another kevy): a plain bind first proves the port is free.
     */
    if (l->addr.port != 0) {
        int probe = tcp_socket(&ss, len, 0);
        if (probe < 0) goto fail;
        close(probe);
    }
    for (int k = 0; k < nworkers; k++) {
        int fd = tcp_socket(&ss, len, 1);
        if (fd < 0) goto fail;
        l->fds[l->nfds++] = fd;
        if (k == 0) l->port = set_port(&ss, bound_port(fd));
    }
    return 0;
fail:
    snprintf(err, errlen, "listen %s: %s", l->addr.text,
             errno == EADDRINUSE ? "address already in use (is another server running?)"
                                 : strerror(errno));
    return -1;
}

static int open_unix(kv_listener_t *l, char *err, size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", l->addr.path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    struct stat st;
    if (lstat(sun.sun_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            close(fd);
            snprintf(err, errlen, "listen %s: the path exists and is not a socket", l->addr.text);
            return -1;
        }
        /* A socket file nobody answers on is left over from a crash. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *) &sun, sizeof(sun)) == 0;
        if (probe >= 0) close(probe);
        if (live) {
            close(fd);
            snprintf(err, errlen, "listen %s: address already in use (is another server running?)",
                     l->addr.text);
            return -1;
        }
        unlink(sun.sun_path);
    }
    if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0 || listen(fd, LISTEN_BACKLOG) != 0)
        goto fail;
    l->fds[l->nfds++] = fd;
    return 0;
fail:
    snprintf(err, errlen, "listen %s: %s", l->addr.text, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

int kv_listen_open(kv_listeners_t *ls, const kv_conf_t *conf, char *err, size_t errlen)
{
    memset(ls, 0, sizeof(*ls));
    for (int i = 0; i < conf->nlisten; i++) {
        kv_listener_t *l = &ls->l[ls->n++];
        l->addr = conf->listen[i];
        int rc = l->addr.kind == KV_ADDR_UNIX ? open_unix(l, err, errlen)
                                              : open_tcp(l, conf->shards, err, errlen);
        if (rc != 0) {
            kv_listen_close(ls, 1);
            return -1;
        }
    }
    return 0;
}

void kv_listen_close(kv_listeners_t *ls, int unlink_paths)
{
    for (int i = 0; i < ls->n; i++) {
        kv_listener_t *l = &ls->l[i];
        for (int j = 0; j < l->nfds; j++) if (l->fds[j] >= 0) close(l->fds[j]);
        if (unlink_paths && l->addr.kind == KV_ADDR_UNIX && l->nfds > 0) unlink(l->addr.path);
        l->nfds = 0;
    }
    ls->n = 0;
}

int kv_listen_fd(const kv_listeners_t *ls, int i, int k)
{
    const kv_listener_t *l = &ls->l[i];
    return l->addr.kind == KV_ADDR_UNIX ? l->fds[0] : l->fds[k];
}

void kv_listen_keep_only(kv_listeners_t *ls, int k)
{
    for (int i = 0; i < ls->n; i++) {
        kv_listener_t *l = &ls->l[i];
        if (l->addr.kind == KV_ADDR_UNIX) continue;
        for (int j = 0; j < l->nfds; j++)
            if (j != k && l->fds[j] >= 0) { close(l->fds[j]); l->fds[j] = -1; }
    }
}

/*
 * While worker k is down for longer than an instant (a crash-loop backoff,
 * a shard that failed to load), connections queued on its SO_REUSEPORT
 * socket would wait unanswered: close its sockets so the kernel sends new
 * connections to the other workers, and reopen them (same port) before it
 * is respawned.
 */
void kv_listen_suspend(kv_listeners_t *ls, int k)
{
    for (int i = 0; i < ls->n; i++) {
        kv_listener_t *l = &ls->l[i];
        if (l->addr.kind == KV_ADDR_UNIX || k >= l->nfds || l->fds[k] < 0) continue;
        close(l->fds[k]);
        l->fds[k] = -1;
    }
}

int kv_listen_resume(kv_listeners_t *ls, int k, char *err, size_t errlen)
{
    for (int i = 0; i < ls->n; i++) {
        kv_listener_t *l = &ls->l[i];
        if (l->addr.kind == KV_ADDR_UNIX || k >= l->nfds || l->fds[k] >= 0) continue;
        struct sockaddr_storage ss;
        socklen_t len;
        int rc = resolve(&l->addr, &ss, &len);
        if (rc != 0) {
            snprintf(err, errlen, "listen %s: %s", l->addr.text, gai_strerror(rc));
            return -1;
        }
        set_port(&ss, l->port);
        if ((l->fds[k] = tcp_socket(&ss, len, 1)) < 0) {
            snprintf(err, errlen, "listen %s: %s", l->addr.text, strerror(errno));
            return -1;
        }
    }
    return 0;
}
