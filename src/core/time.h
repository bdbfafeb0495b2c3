/* Clocks. CLOCK_MONOTONIC is system-wide, so values compare across the
 * master and the workers (heartbeats in the shared segment rely on it). */
#ifndef KV_CORE_TIME_H
#define KV_CORE_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t kv_time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t kv_time_mono_ms(void) { return kv_time_mono_us() / 1000u; }

static inline uint64_t kv_time_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
