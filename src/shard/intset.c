/* Intset in Redis's byte format; see intset.h. Little-endian hosts only
 * (as the rest of kevy): the blob is the in-memory array itself. */
#include <stdlib.h>
#include <string.h>

#include "shard/intset.h"

static inline uint32_t enc_for(int64_t v)
{
    if (v < INT32_MIN || v > INT32_MAX) return 8;
    if (v < INT16_MIN || v > INT16_MAX) return 4;
    return 2;
}

static inline int64_t get_enc(const kv_intset *is, uint32_t pos, uint32_t enc)
{
    const int8_t *p = is->contents + (size_t)pos * enc;
    if (enc == 8) {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    if (enc == 4) {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline void set_at(kv_intset *is, uint32_t pos, int64_t v)
{
    int8_t *p = is->contents + (size_t)pos * is->encoding;
    if (is->encoding == 8) memcpy(p, &v, 8);
    else if (is->encoding == 4) {
        int32_t x = (int32_t)v;
        memcpy(p, &x, 4);
    } else {
        int16_t x = (int16_t)v;
        memcpy(p, &x, 2);
    }
}

int64_t kv_intset_get(const kv_intset *is, uint32_t pos) { return get_enc(is, pos, is->encoding); }

kv_intset *kv_intset_new(void)
{
    kv_intset *is = malloc(sizeof *is);
    if (!is) return NULL;
    is->encoding = 2;
    is->length = 0;
    return is;
}

int kv_intset_search(const kv_intset *is, int64_t v, uint32_t *pos)
{
    if (is->length == 0) {
        *pos = 0;
        return 0;
    }
    /* quick checks at the ends: appends of growing ids are common */
    if (v > kv_intset_get(is, is->length - 1)) {
        *pos = is->length;
        return 0;
    }
    if (v < kv_intset_get(is, 0)) {
        *pos = 0;
        return 0;
    }
    int64_t lo = 0, hi = (int64_t)is->length - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int64_t cur = kv_intset_get(is, (uint32_t)mid);
        if (v > cur) lo = mid + 1;
        else if (v < cur) hi = mid - 1;
        else {
            *pos = (uint32_t)mid;
            return 1;
        }
    }
    *pos = (uint32_t)lo;
    return 0;
}

static kv_intset *resize(kv_intset *is, uint32_t len)
{
    return realloc(is, sizeof *is + (size_t)len * is->encoding);
}

kv_intset *kv_intset_add(kv_intset *is, int64_t v, int *added)
{
    *added = 0;
    uint32_t enc = enc_for(v), pos;
    if (enc > is->encoding) {
        /* v is outside every current element's range: it goes to an end */
        uint32_t old = is->encoding, len = is->length;
        kv_intset *n = realloc(is, sizeof *is + (size_t)(len + 1) * enc);
        if (!n) return NULL;
        is = n;
        is->encoding = enc;
        int prepend = v < 0;
        for (uint32_t i = len; i-- > 0;) set_at(is, i + (uint32_t)prepend, get_enc(is, i, old));
        set_at(is, prepend ? 0 : len, v);
        is->length = len + 1;
        *added = 1;
        return is;
    }
    if (kv_intset_search(is, v, &pos)) return is;
    enc = is->encoding; /* v fits; elements keep the set's width */
    kv_intset *n = resize(is, is->length + 1);
    if (!n) return NULL;
    is = n;
    if (pos < is->length)
        memmove(is->contents + (size_t)(pos + 1) * enc, is->contents + (size_t)pos * enc,
                (size_t)(is->length - pos) * enc);
    set_at(is, pos, v);
    is->length++;
    *added = 1;
    return is;
}

kv_intset *kv_intset_remove_at(kv_intset *is, uint32_t pos)
{
    uint32_t enc = is->encoding;
    memmove(is->contents + (size_t)pos * enc, is->contents + (size_t)(pos + 1) * enc,
            (size_t)(is->length - pos - 1) * enc);
    is->length--;
    kv_intset *n = resize(is, is->length);
    return n ? n : is; /* a failed shrink keeps the larger block */
}

kv_intset *kv_intset_remove(kv_intset *is, int64_t v, int *removed)
{
    uint32_t pos;
    *removed = 0;
    if (enc_for(v) > is->encoding || !kv_intset_search(is, v, &pos)) return is;
    *removed = 1;
    return kv_intset_remove_at(is, pos);
}

kv_intset *kv_intset_dup(const kv_intset *is)
{
    size_t n = kv_intset_bytes(is);
    kv_intset *c = malloc(n);
    if (c) memcpy(c, is, n);
    return c;
}

int kv_intset_validate(const void *blob, size_t size)
{
    if (size < sizeof(kv_intset)) return 0;
    kv_intset h;
    memcpy(&h, blob, sizeof h);
    if (h.encoding != 2 && h.encoding != 4 && h.encoding != 8) return 0;
    if ((size - sizeof h) / h.encoding != h.length || (size - sizeof h) % h.encoding) return 0;
    if (h.length == 0) return 0; /* Redis refuses an empty set */
    /* the blob may sit unaligned inside a DUMP payload: read bytes only */
    const unsigned char *c = (const unsigned char *)blob + sizeof h;
    int64_t prev = 0;
    for (uint32_t i = 0; i < h.length; i++, c += h.encoding) {
        int64_t v;
        if (h.encoding == 8) memcpy(&v, c, 8);
        else if (h.encoding == 4) {
            int32_t x;
            memcpy(&x, c, 4);
            v = x;
        } else {
            int16_t x;
            memcpy(&x, c, 2);
            v = x;
        }
        if (i && prev >= v) return 0;
        prev = v;
    }
    return 1;
}
