/* Ziplist reader and validator (see ziplist.h). Mirrors the decoding of
 * Redis's ziplist.c (zipEntrySafe, ziplistValidateIntegrity). */
#include <string.h>

#include "persist/ziplist.h"

#define ZL_END 0xFF
#define ZL_BIG_PREVLEN 0xFE
/* Encoding bytes of integer entries. */
#define ZIP_INT_16B 0xC0
#define ZIP_INT_32B 0xD0
#define ZIP_INT_64B 0xE0
#define ZIP_INT_24B 0xF0
#define ZIP_INT_8B 0xFE
#define ZIP_INT_IMM_MIN 0xF1
#define ZIP_INT_IMM_MAX 0xFD

static inline uint32_t rd32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The parts of one entry. */
typedef struct {
    size_t prevlen, prevlensize; /* previous entry's size; bytes it takes */
    size_t hdrsize;              /* prevlen + encoding bytes */
    size_t len;                  /* data bytes */
    unsigned char enc;           /* encoding byte (strings: top 2 bits) */
} zl_entry;

/* Bytes of data of an integer encoding, or -1 if c is not one. */
static int int_size(unsigned char c)
{
    switch (c) {
    case ZIP_INT_8B: return 1;
    case ZIP_INT_16B: return 2;
    case ZIP_INT_24B: return 3;
    case ZIP_INT_32B: return 4;
    case ZIP_INT_64B: return 8;
    default: return (c >= ZIP_INT_IMM_MIN && c <= ZIP_INT_IMM_MAX) ? 0 : -1;
    }
}

/* Decode the entry at p, reading at most `left` bytes (p < end marker
 * checked by the caller). 0 if it does not fit or is malformed. */
static int entry_safe(const unsigned char *p, size_t left, zl_entry *e)
{
    if (left < 2) return 0;
    if (p[0] < ZL_BIG_PREVLEN) {
        e->prevlen = p[0], e->prevlensize = 1;
    } else if (p[0] == ZL_BIG_PREVLEN) {
        if (left < 5) return 0;
        e->prevlen = rd32le(p + 1), e->prevlensize = 5;
    } else {
        return 0;
    }
    const unsigned char *q = p + e->prevlensize;
    size_t rest = left - e->prevlensize;
    if (rest < 1) return 0;
    unsigned char c = q[0];
    switch (c >> 6) {
    case 0:
        e->enc = 0, e->hdrsize = e->prevlensize + 1, e->len = c & 0x3F;
        break;
    case 1:
        if (rest < 2) return 0;
        e->enc = 0x40, e->hdrsize = e->prevlensize + 2, e->len = (size_t)(c & 0x3F) << 8 | q[1];
        break;
    case 2:
        if (rest < 5) return 0;
        e->enc = 0x80, e->hdrsize = e->prevlensize + 5;
        e->len = (size_t)q[1] << 24 | (size_t)q[2] << 16 | (size_t)q[3] << 8 | q[4];
        break;
    default: {
        int n = int_size(c);
        if (n < 0) return 0;
        e->enc = c, e->hdrsize = e->prevlensize + 1, e->len = (size_t)n;
    }
    }
    if (e->hdrsize > left || e->len > left - e->hdrsize) return 0;
    return 1;
}

int kv_zl_validate(const unsigned char *zl, size_t size, size_t *count)
{
    if (size < KV_ZL_HDR_SIZE + 1 || rd32le(zl) != size || zl[size - 1] != ZL_END) return 0;
    size_t tail = rd32le(zl + 4);
    unsigned hdr_count = zl[8] | (unsigned)zl[9] << 8;
    if (tail > size - 1) return 0;
    const unsigned char *p = zl + KV_ZL_HDR_SIZE, *end = zl + size - 1, *prev = NULL;
    size_t prev_size = 0, cnt = 0;
    while (p < end) {
        zl_entry e;
        if (!entry_safe(p, (size_t)(end - p), &e)) return 0;
        /* the chain of back links must agree, or walking back breaks */
        if (e.prevlen != prev_size) return 0;
        prev = p;
        prev_size = e.hdrsize + e.len;
        p += prev_size;
        cnt++;
    }
    if (p != end) return 0;
    if (prev && prev != zl + tail) return 0;
    if (hdr_count != 65535 && hdr_count != cnt) return 0;
    if (count) *count = cnt;
    return 1;
}

const unsigned char *kv_zl_first(const unsigned char *zl)
{
    const unsigned char *p = zl + KV_ZL_HDR_SIZE;
    return *p == ZL_END ? NULL : p;
}

/* Validated blobs only: the whole entry lies inside. */
static void entry_trusted(const unsigned char *p, zl_entry *e)
{
    entry_safe(p, SIZE_MAX / 2, e);
}

const unsigned char *kv_zl_next(const unsigned char *p)
{
    zl_entry e;
    entry_trusted(p, &e);
    p += e.hdrsize + e.len;
    return *p == ZL_END ? NULL : p;
}

void kv_zl_get(const unsigned char *p, kv_zl_val *v)
{
    zl_entry e;
    entry_trusted(p, &e);
    const unsigned char *d = p + e.hdrsize;
    v->s = NULL, v->len = 0, v->ll = 0;
    switch (e.enc) {
    case 0:
    case 0x40:
    case 0x80: v->s = d, v->len = (uint32_t)e.len; break;
    case ZIP_INT_8B: v->ll = (int8_t)d[0]; break;
    case ZIP_INT_16B: v->ll = (int16_t)(uint16_t)(d[0] | d[1] << 8); break;
    case ZIP_INT_24B:
        /* stored as the top 3 bytes of an int32: sign-extend by shifting */
        v->ll = (int32_t)((uint32_t)d[0] << 8 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 24) >> 8;
        break;
    case ZIP_INT_32B: v->ll = (int32_t)rd32le(d); break;
    case ZIP_INT_64B: {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--) u = u << 8 | d[i];
        v->ll = (long long)u;
        break;
    }
    default: v->ll = (e.enc & 0x0F) - 1; /* immediate 0..12 */
    }
}
