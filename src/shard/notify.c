/*
 * Keyspace notifications (see notify.h).
 *
 * Frame (FRAME_NOTIFY): u8 which (K and/or E) | u8 event length | event |
 * key. The receiver publishes to its own subscribers only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard/forward.h"
#include "shard/notify.h"
#include "shard/pubsub.h"

#define FRAME_NOTIFY (KV_FRAME_USER + 4)    /* pub/sub owns KV_FRAME_USER + 4 */

int kv_notify_flags;

int kv_notify_parse(const char *s)
{
    int flags = 0;
    for (; *s; s++) {
        switch (*s) {
        case 'A': flags |= KV_NOTIFY_ALL; break;
        case 'g': flags |= KV_NOTIFY_GENERIC; break;
        case '$': flags |= KV_NOTIFY_STRING; break;
        case 'l': flags |= KV_NOTIFY_LIST; break;
        case 's': flags |= KV_NOTIFY_SET; break;
        case 'h': flags |= KV_NOTIFY_HASH; break;
        case 'z': flags |= KV_NOTIFY_ZSET; break;
        case 'x': flags |= KV_NOTIFY_EXPIRED; break;
        case 'e': flags |= KV_NOTIFY_EVICTED; break;
        case 'K': flags |= KV_NOTIFY_KEYSPACE; break;
        case 'E': flags |= KV_NOTIFY_KEYEVENT; break;
        case 't': flags |= KV_NOTIFY_STREAM; break;
        case 'm': flags |= KV_NOTIFY_KEY_MISS; break;
        case 'd': flags |= KV_NOTIFY_MODULE; break;
        case 'n': flags |= KV_NOTIFY_NEW; break;
        default: return -1;
        }
    }
    return flags;
}

/* Redis 7.0's keyspaceEventsFlagsToString (which prints no 'n'). */
void kv_notify_format(int flags, char *buf)
{
    char *p = buf;
    if ((flags & KV_NOTIFY_ALL) == KV_NOTIFY_ALL) {
        *p++ = 'A';
    } else {
        static const struct { int f; char c; } cls[] = {
            { KV_NOTIFY_GENERIC, 'g' }, { KV_NOTIFY_STRING, '$' }, { KV_NOTIFY_LIST, 'l' }, { KV_NOTIFY_SET, 's' },
            { KV_NOTIFY_HASH, 'h' }, { KV_NOTIFY_ZSET, 'z' }, { KV_NOTIFY_EXPIRED, 'x' }, { KV_NOTIFY_EVICTED, 'e' },
            { KV_NOTIFY_STREAM, 't' }, { KV_NOTIFY_MODULE, 'd' },
        };
        for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) if (flags & cls[i].f) *p++ = cls[i].c;
    }
    if (flags & KV_NOTIFY_KEYSPACE) *p++ = 'K';
    if (flags & KV_NOTIFY_KEYEVENT) *p++ = 'E';
    if (flags & KV_NOTIFY_KEY_MISS) *p++ = 'm';
    *p = '\0';
}

/* Publish to this worker's subscribers. */
static void deliver(int which, const char *event, size_t elen, const char *key, size_t klen)
{
    char small[256];
    size_t need = 15 + (klen > elen ? klen : elen);
    char *ch = need <= sizeof(small) ? small : malloc(need);
    if (!ch) abort();
    if (which & KV_NOTIFY_KEYSPACE) {
        memcpy(ch, "__keyspace@0__:", 15);
        memcpy(ch + 15, key, klen);
        kv_pubsub_deliver(ch, 15 + klen, event, elen, 0);
    }
    if (which & KV_NOTIFY_KEYEVENT) {
        memcpy(ch, "__keyevent@0__:", 15);
        memcpy(ch + 15, event, elen);
        kv_pubsub_deliver(ch, 15 + elen, key, klen, 0);
    }
    if (ch != small) free(ch);
}

void kv_notify_emit(int type, const char *event, const char *key, size_t klen)
{
    (void) type;
    int which = kv_notify_flags & (KV_NOTIFY_KEYSPACE | KV_NOTIFY_KEYEVENT);
    size_t elen = strlen(event);
    if (!which || elen > 255) return;
    deliver(which, event, elen, key, klen);
    if (kv_fwd_nshards() <= 1) return;
    char small[512];
    size_t n = 2 + elen + klen;
    char *f = n <= sizeof(small) ? small : malloc(n);
    if (!f) abort();
    f[0] = (char) which;
    f[1] = (char) elen;
    memcpy(f + 2, event, elen);
    memcpy(f + 2 + elen, key, klen);
    kv_fwd_broadcast(FRAME_NOTIFY, f, n);
    if (f != small) free(f);
}

void kv_notify_cmd_emit(int type, const kv_resp_arg *argv0, const char *key, size_t klen)
{
    char ev[64];
    size_t n = argv0->len < sizeof(ev) - 1 ? argv0->len : sizeof(ev) - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = argv0->ptr[i];
        ev[i] = ch >= 'A' && ch <= 'Z' ? (char) (ch + 32) : ch;
    }
    ev[n] = '\0';
    kv_notify_emit(type, ev, key, klen);
}

static void on_notify(int from, const void *bytes, size_t len)
{
    const char *p = bytes;
    (void) from;
    if (len < 2 || (size_t) (unsigned char) p[1] + 2 > len) return;
    size_t elen = (unsigned char) p[1];
    deliver((unsigned char) p[0], p + 2, elen, p + 2 + elen, len - 2 - elen);
}

/* The frame handler table is static data of forward.c: registering before
 * main() means every worker (forked, or respawned) handles the frames
 * before its rings start, whatever its own notify-keyspace-events is. */
__attribute__((constructor)) static void notify_register(void) { kv_fwd_on_frame(FRAME_NOTIFY, on_notify); }

void kv_notify_init(void) { notify_register(); }
