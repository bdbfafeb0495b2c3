/*
 * The log: one line per event, Redis's layout ("pid:R dd Mon yyyy
 * hh:mm:ss.mmm * text"), where R is M for the master and W<k> for worker k.
 * Every process appends to the same file with O_APPEND and writes each line
 * with a single write(2), so lines from different processes never interleave.
 */
#ifndef KV_CORE_LOG_H
#define KV_CORE_LOG_H

#include "core/conf.h"

/* Open `file` ("stderr" for standard error). 0, or -1 with err. */
int  kv_log_open(const char *file, int level, char *err, size_t errlen);
/* Reopen the same file (SIGUSR1): after a rename, a new file is created. */
int  kv_log_reopen(void);
void kv_log_set_level(int level);
/* The role shown in every line: "M" or "W3". */
void kv_log_set_role(const char *role);
void kv_log_close(void);

void kv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kv_log_debug(...)   kv_log(KV_LOG_DEBUG, __VA_ARGS__)
#define kv_log_verbose(...) kv_log(KV_LOG_VERBOSE, __VA_ARGS__)
#define kv_log_notice(...)  kv_log(KV_LOG_NOTICE, __VA_ARGS__)
#define kv_log_warning(...) kv_log(KV_LOG_WARNING, __VA_ARGS__)

#endif
