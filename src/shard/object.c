/* Value metadata: the LRU/LFU clocks (as Redis's evict.c), OBJECT's
 * answers, type and encoding names, and the number parsers the string
 * commands share. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "shard/db.h"

#define LRU_CLOCK_MAX ((1u << 24) - 1)
#define LFU_INIT_VAL 5

uint32_t kv_db_lru_clock_now(void) { return (uint32_t)(kv_time_unix_ms() / 1000) & LRU_CLOCK_MAX; }
static uint32_t lfu_minutes(void) { return (uint32_t)(kv_time_unix_ms() / 60000) & 65535; }

/* ---- LRU / LFU ------------------------------------------------------- */

static unsigned lfu_decr(const kv_db_t *db, uint32_t lru)
{
    unsigned long ldt = lru >> 8, counter = lru & 255, now = lfu_minutes();
    unsigned long elapsed = now >= ldt ? now - ldt : 65535 - ldt + now;
    unsigned long periods = db->lfu_decay_time ? elapsed / db->lfu_decay_time : 0;
    if (periods) counter = periods > counter ? 0 : counter - periods;
    return (unsigned)counter;
}

uint32_t kv_db_clock_init(const kv_db_t *db)
{
    return db->lfu ? (lfu_minutes() << 8) | LFU_INIT_VAL : db->lruclock;
}

void kv_db_touch(kv_db_t *db, kv_obj *o)
{
    if (!db->lfu) {
        o->lru = db->lruclock;
        return;
    }
    unsigned counter = lfu_decr(db, o->lru);
    if (counter < 255) { /* Redis's LFULogIncr */
        double r = (double)rand() / RAND_MAX;
        double base = counter > LFU_INIT_VAL ? counter - LFU_INIT_VAL : 0;
        if (r < 1.0 / (base * db->lfu_log_factor + 1)) counter++;
    }
    o->lru = (lfu_minutes() << 8) | counter;
}

long long kv_db_idle_seconds(const kv_db_t *db, const kv_obj *o)
{
    uint32_t now = db->lruclock; /* the cached clock, as Redis's LRU_CLOCK() */
    uint32_t lru = o->lru & LRU_CLOCK_MAX;
    return now >= lru ? now - lru : now + (LRU_CLOCK_MAX - lru);
}

unsigned kv_db_lfu_freq(const kv_db_t *db, kv_obj *o) { return lfu_decr(db, o->lru); }

long long kv_db_refcount(const kv_db_t *db, const kv_obj *o)
{
    if (o->type == KV_TYPE_STRING && o->enc == KV_ENC_INT && !db->no_shared_ints) {
        int64_t v = *(int64_t *)kv_db_payload(o);
        if (v >= 0 && v < KV_SHARED_INTEGERS) return KV_SHARED_REFCOUNT;
    }
    return 1;
}

/* ---- parsing helpers ----------------------------------------------------- */

int kv_str2ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len >= 21) return 0;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        if (++i == len) return 0;
    }
    if (s[i] < '1' || s[i] > '9') return 0;
    unsigned long long v = (unsigned long long)(s[i++] - '0');
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > ~0ULL / 10) return 0;
        v *= 10;
        if (v > ~0ULL - (unsigned)(s[i] - '0')) return 0;
        v += (unsigned)(s[i] - '0');
    }
    if (neg) {
        if (v > (unsigned long long)INT64_MAX + 1) return 0;
        *out = (long long)(0 - v);
    } else {
        if (v > (unsigned long long)INT64_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}

int kv_str2ld(const char *s, size_t len, long double *out)
{
    char buf[5 * 1024]; /* Redis MAX_LONG_DOUBLE_CHARS */
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

const char *kv_db_type_name(int type)
{
    switch (type) {
    case KV_TYPE_STRING: return "string";
    case KV_TYPE_LIST: return "list";
    case KV_TYPE_SET: return "set";
    case KV_TYPE_ZSET: return "zset";
    case KV_TYPE_HASH: return "hash";
    case KV_TYPE_STREAM: return "stream";
    case KV_TYPE_MODULE: return "module";
    default: return "none";
    }
}

const char *kv_db_enc_name(int enc)
{
    static const char *const names[] = {
        "raw",    "int",      "hashtable", "zipmap", "linkedlist", "ziplist",
        "intset", "skiplist", "embstr",    "quicklist", "stream",  "listpack",
    };
    return enc >= 0 && enc < (int)(sizeof names / sizeof *names) ? names[enc] : "unknown";
}
