/*
 * Client connections of one worker.
 *
 * Ownership: kv_server_t lives in the worker and owns every kv_client_t;
 * a client is freed in its handle's close callback (conn.c), never
 * elsewhere. The query buffer and the reply buffer belong to the client.
 */
#ifndef KV_SHARD_CONN_H
#define KV_SHARD_CONN_H

#include <stdint.h>
#include <uv.h>

#include "core/conf.h"
#include "event/segment.h"
#include "shard/reply.h"
#include "shard/resp.h"

typedef struct kv_client_s kv_client_t;
struct kv_db_s;                     /* the keyspace, shard/db.h           */

typedef struct kv_server_s {
    uv_loop_t      *loop;
    kv_shard_ctl_t *ctl;            /* counters published to the master  */
    kv_segment_t   *seg;            /* shared with the master and peers  */
    kv_conf_t      *conf;
    struct kv_db_s *db;             /* this shard's keyspace              */
    kv_client_t    *clients;        /* doubly linked, newest first        */
    uint64_t        nconns;
    uint64_t        commands;       /* local; published by the heartbeat */
    uint64_t        next_id;        /* ids are next_id * nshards + shard,  */
    int             shard, nshards; /* so they are unique across workers   */
    int             shutting_down;
    /* Statistics for INFO; reset by CONFIG RESETSTAT where Redis does. */
    uint64_t        stat_conns;     /* connections accepted               */
    uint64_t        stat_rejected;  /* refused by maxclients              */
    uint64_t        stat_net_in, stat_net_out;   /* bytes                 */
    uint64_t        start_unix_ms;  /* when this worker started           */
    uint64_t        ops_sec, ops_prev;  /* commands in the last second    */
    uint64_t        mem_peak;       /* INFO used_memory_peak              */
    uv_timer_t      sweep;          /* idle timeout, once a second        */
    void           *data;
    void          (*on_drained)(struct kv_server_s *);   /* last client gone */
} kv_server_t;

struct kv_client_s {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t    tcp;
        uv_pipe_t   pipe;
    } h;
    kv_server_t    *srv;
    struct kv_db_s *db;             /* = srv->db; what handlers use       */
    kv_client_t    *prev, *next;
    uint64_t        id;
    char           *qbuf;           /* query buffer: qbuf[0..qlen)        */
    size_t          qlen, qcap;
    kv_resp_parser  parser;
    kv_reply_buf    out;
    uv_write_t      wreq;
    size_t          inflight;       /* bytes handed to uv_write          */
    int             argc;
    kv_resp_arg    *argv;
    struct kv_multi_s *multi;       /* MULTI queue and WATCHes (multi.c)  */
    struct kv_slot_s *slots_head;   /* replies owed in order (forward.c)  */
    struct kv_slot_s *slots_tail;
    struct kv_slot_s *bslot;        /* its blocking command's, while waiting */
    char           *name;           /* CLIENT SETNAME; NULL when none     */
    uint64_t        ctime_ms;       /* uv_now() at accept                 */
    uint64_t        last_ms;        /* uv_now() at the last read or write */
    char            lastcmd[20];    /* argv[0] as sent, cut (CLIENT LIST) */
    uint8_t         lastcmd_len;
    uint8_t         dbnum;          /* SELECT: always 0 (one database)    */
    char            addr[64], laddr[64];  /* cached by kv_client_addr     */
    unsigned        writing:1, close_after_reply:1, closing:1, paused:1;
    unsigned        close_waits:1;  /* closing once its cross-shard EXEC ends */
    unsigned        flush_queued:1; /* forward.c: written at the turn's end */
    /* A multi-round command (chain.c) is still executing: the client's
     * next commands wait, so they see its effects (RENAME a b; GET b). */
    unsigned        barrier:1, in_input:1;
    unsigned        authed:1, no_evict:1;
    unsigned        aof_held:1;     /* output waits for the AOF commit (persist/aof.h) */
    struct kv_pubsub_client *ps;    /* subscriptions (pubsub.c); NULL: none */
};

void kv_server_init(kv_server_t *s, uv_loop_t *loop, kv_shard_ctl_t *ctl, kv_conf_t *conf);
/* Accept one pending connection on listener. */
void kv_conn_accept(kv_server_t *s, uv_stream_t *listener);
/* Stop reading from every client, flush what they are owed, close them;
 * calls s->on_drained once none is left. */
void kv_server_shutdown(kv_server_t *s);
/* Copy local counters into the shared control block (heartbeat). */
void kv_server_publish_stats(kv_server_t *s);

/* Close after the replies queued so far have been written (QUIT, protocol
 * errors). */
void kv_client_close_after_reply(kv_client_t *c);

/* Write what is queued (used when a forwarded reply completes). */
void kv_client_flush(kv_client_t *c);

/* The barrier is lifted: go on with the commands already read. */
void kv_client_resume(kv_client_t *c);

/* CLIENT KILL: close c now (its unsent replies are dropped), or after
 * this reply when c is the client running the command. */
void kv_client_kill(kv_client_t *c, kv_client_t *self);

/* Peer ("ip:port", "/path:0" for unix) and local address, as CLIENT LIST
 * prints them; computed once per client and cached. */
const char *kv_client_addr(kv_client_t *c);
const char *kv_client_laddr(kv_client_t *c);

/* 1 when c is a real connection, 0 for a forwarded request's stand-in. */
static inline int kv_client_is_conn(const kv_client_t *c)
{
    return c->h.handle.type == UV_TCP || c->h.handle.type == UV_NAMED_PIPE;
}

/* requirepass is set and c has not authenticated (Redis's authRequired). */
static inline int kv_client_auth_needed(const kv_client_t *c)
{
    return c->srv->conf->requirepass[0] != '\0' && !c->authed;
}

#endif
