/*
 * The master process: validated config in, running workers out. It never
 * touches keys. It owns the shared segment, the listening sockets, the pid
 * file and the admin endpoint; it forks, pins and respawns the workers and
 * turns signals into the state changes of DESIGN.md's signal table.
 */
#ifndef KV_CORE_MASTER_H
#define KV_CORE_MASTER_H

#include "core/conf.h"

/* Run the master until it stops; returns the process exit status. The
 * conf is the validated one; path and overrides are kept to re-read the
 * file on SIGHUP. */
int kv_master_run(kv_conf_t *conf, const char *path,
                  const kv_conf_override_t *ov, int nov);

#endif
