#include <xxhash.h>

#include "core/conf.h"
#include "shard/route.h"

static int route_n = 1;
static int route_mode = KV_ROUTING_HASH;

void kv_route_init(int nshards, int routing)
{
    route_n = nshards > 0 ? nshards : 1;
    route_mode = routing;
}

int kv_route_nshards(void) { return route_n; }

/* CRC16-CCITT (XMODEM): polynomial 0x1021, initial 0, as Redis Cluster. */
uint16_t kv_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t) ((uint8_t) buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021) : (uint16_t) (crc << 1);
    }
    return crc;
}

static void hash_tag(const char **key, size_t *len)
{
    const char *k = *key;
    size_t n = *len, s, e;
    for (s = 0; s < n && k[s] != '{'; s++) ;
    if (s == n) return;
    for (e = s + 1; e < n && k[e] != '}'; e++) ;
    if (e == n || e == s + 1) return;
    *key = k + s + 1;
    *len = e - s - 1;
}

uint16_t kv_route_slot(const char *key, size_t len)
{
    hash_tag(&key, &len);
    return kv_crc16(key, len) & (KV_SLOTS - 1);
}

int kv_route_shard(const char *key, size_t len)
{
    if (route_n == 1) return 0;
    if (route_mode == KV_ROUTING_SLOTS)
        return (int) ((uint32_t) kv_route_slot(key, len) * (uint32_t) route_n / KV_SLOTS);
    hash_tag(&key, &len);
    return (int) (XXH3_64bits(key, len) % (uint64_t) route_n);
}
