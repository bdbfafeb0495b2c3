/*
 * The on-disk layout: dir/shards.meta records how many shards the files
 * in dir were written for and how keys were routed. When the config says
 * otherwise, the master reshards before any worker starts (layout.c):
 * every key is read from the old files, redistributed, written to new
 * snapshots, and a journal's commit record decides, after any crash,
 * whether the next start rolls the reshard forward or discards it.
 */
#ifndef KV_PERSIST_LAYOUT_H
#define KV_PERSIST_LAYOUT_H

#include <stddef.h>

#include "core/conf.h"

/* Bring dir in line with conf (shards, routing). Runs in the master before
 * it forks workers; the key work happens in a child process, so the master
 * never holds keys. 0, or -1 with a message in err. */
int kv_layout_reconcile(const kv_conf_t *conf, char *err, size_t errlen);

/* Record that dir now holds files in conf's layout (after an import). */
int kv_layout_write_meta(const kv_conf_t *conf, char *err, size_t errlen);

#endif
