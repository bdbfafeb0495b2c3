/*
 * The command table: the single source of truth for every command's name,
 * arity, flags, key positions and handler (as Redis's). COMMAND, routing
 * and AOF logging derive from it.
 */
#ifndef KV_SHARD_CMD_H
#define KV_SHARD_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "shard/conn.h"

typedef void kv_cmd_proc(kv_client_t *c);

enum {
    KV_CMD_WRITE    = 1 << 0,
    KV_CMD_READONLY = 1 << 1,
    KV_CMD_FAST     = 1 << 2,
    KV_CMD_ADMIN    = 1 << 3,
    KV_CMD_LOADING  = 1 << 4,   /* allowed while the shard loads          */
    KV_CMD_STALE    = 1 << 5,
    KV_CMD_NOAUTH   = 1 << 6,   /* allowed before AUTH (AUTH, HELLO, QUIT) */
};

typedef struct {
    const char  *name;          /* lower case                            */
    int          arity;         /* N exactly, or -N: at least N          */
    uint32_t     flags;
    int          first_key, last_key, key_step;   /* 0,0,0: no keys      */
    kv_cmd_proc *proc;
} kv_cmd_t;

/* Case-insensitive lookup; NULL when unknown. */
const kv_cmd_t *kv_cmd_lookup(const char *name, size_t len);

/* Look up argv[0], check arity, run it; replies Redis's errors for an
 * unknown command or a wrong number of arguments. */
void kv_cmd_dispatch(kv_client_t *c);

#endif
