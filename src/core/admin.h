/*
 * The master's HTTP admin endpoint (`admin.listen`), served on the master's
 * libuv loop:
 *
 *   GET /healthz  200 "ok\n" when every shard is UP with a fresh heartbeat,
 *                 else 503 with JSON naming the down shards
 *   GET /metrics  Prometheus text exposition format 0.0.4
 *   GET /status   JSON: master and per-shard state
 *
 * HEAD is served like GET without a body; other methods get 405, other
 * paths 404, malformed or oversize (> 8 KiB) heads and requests with a
 * body get 400. Every response carries Content-Length and
 * `Connection: close`, and the connection is closed after it: scrapes are
 * rare, and one request per connection keeps the state machine small.
 *
 * It only reads the shared segment (atomic loads), never writes it, and
 * never blocks: a slow or hostile client costs at most one bounded buffer
 * and is dropped after the I/O timeout (5 s); at most 64 connections are
 * open at once, later ones are closed on accept.
 */
#ifndef KV_CORE_ADMIN_H
#define KV_CORE_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "event/segment.h"

#define KV_ADMIN_MAX_CONNS       64
#define KV_ADMIN_IO_TIMEOUT_MS   5000
#define KV_ADMIN_REASON_MAX      160   /* bytes kept of a shard's reason text */

typedef struct kv_admin_s kv_admin_t;

/* addr "127.0.0.1:9121", "[::1]:9121" or "localhost:9121" (IP literals,
 * no name lookup; port 0 picks a free port). heartbeat_timeout_ms: a shard whose heartbeat is older counts as
 * down. Returns NULL and fills err on failure (e.g. "admin.listen
 * 127.0.0.1:9121: address already in use"); a listener handle that was
 * already created is then closed, and freed when the loop next runs. */
kv_admin_t *kv_admin_start(uv_loop_t *loop, const char *addr, kv_segment_t *seg,
                           uint64_t heartbeat_timeout_ms, char *err, size_t errlen);

/* Close the listener and every connection. The handles, and then `a`
 * itself, are freed in their close callbacks: the caller runs the loop
 * afterwards to let them finish. `a` must not be used after this call.
 * NULL is a no-op. */
void kv_admin_stop(kv_admin_t *a);

/* Version string and config file path shown in /status (and version in
 * /metrics as kevy_build_info). Copied; NULL clears. */
void kv_admin_set_info(kv_admin_t *a, const char *version, const char *conf_path);

/* Why a shard is down or failed (e.g. "snapshot CRC mismatch"), shown in
 * /healthz and /status until cleared with NULL or "". Copied, truncated to
 * KV_ADMIN_REASON_MAX - 1 bytes. Out-of-range shards are ignored. */
void kv_admin_set_shard_reason(kv_admin_t *a, uint32_t shard, const char *reason);

/* The bound TCP port (useful when started on port 0). */
int kv_admin_port(const kv_admin_t *a);

/* For tests: the slow-client / linger timeout, default
 * KV_ADMIN_IO_TIMEOUT_MS. Applies to connections accepted afterwards. */
void kv_admin_set_io_timeout_ms(kv_admin_t *a, uint64_t ms);

#endif
