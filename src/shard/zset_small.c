/* The small ("listpack") encoding of sorted sets: one packed buffer of
 * elements in (score, member) order, walkable both ways (zset_type.h).
 * Linear scans are what Redis does on its listpack too; the limits
 * (zset-max-listpack-entries/value) keep them short. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "shard/zset_type.h"

#define HDR sizeof(kv_zsmall)

static inline size_t rd_mlen(const unsigned char *p, size_t *hl)
{
    if (p[0] != 0xFF) {
        *hl = 1;
        return p[0];
    }
    uint32_t v;
    memcpy(&v, p + 1, 4);
    *hl = 5;
    return v;
}

/* Total bytes of an element with an mlen-byte member. */
static inline size_t elem_size(size_t mlen)
{
    size_t n = (mlen < 255 ? 1 : 5) + mlen + 8;
    return n + (n + 1 < 255 ? 1 : 5);
}

static void write_elem(unsigned char *p, const char *m, size_t mlen, double score)
{
    size_t tot = elem_size(mlen);
    /* Redis's listpack keeps scores as d2string text, which writes -0 as
     * "0": a listpack zset never holds -0 (a skiplist one does) */
    if (score == 0) score = 0;
    if (mlen < 255) {
        *p++ = (unsigned char)mlen;
    } else {
        uint32_t v = (uint32_t)mlen;
        *p++ = 0xFF;
        memcpy(p, &v, 4), p += 4;
    }
    memcpy(p, m, mlen), p += mlen;
    memcpy(p, &score, 8), p += 8;
    if (tot < 255) {
        *p = (unsigned char)tot;
    } else {
        uint32_t v = (uint32_t)tot;
        memcpy(p, &v, 4);
        p[4] = 0xFF;
    }
}

kv_zsmall *kv_zsm_new(size_t cap)
{
    kv_zsmall *z = malloc(HDR + cap);
    if (!z) abort();
    z->len = 0, z->count = 0;
    return z;
}

size_t kv_zsm_mem(const kv_zsmall *z) { return HDR + z->len; }

size_t kv_zsm_get(const kv_zsmall *z, size_t off, const char **m, size_t *mlen, double *score)
{
    const unsigned char *p = z->data + off;
    size_t hl, n = rd_mlen(p, &hl);
    *m = (const char *)p + hl;
    *mlen = n;
    memcpy(score, p + hl + n, 8);
    return elem_size(n);
}

static inline size_t next_off(const kv_zsmall *z, size_t off)
{
    size_t hl, n = rd_mlen(z->data + off, &hl);
    return off + elem_size(n);
}

size_t kv_zsm_prev(const kv_zsmall *z, size_t off)
{
    const unsigned char *p = z->data + off;
    if (p[-1] != 0xFF) return off - p[-1];
    uint32_t v;
    memcpy(&v, p - 5, 4);
    return off - v;
}

long kv_zsm_find(const kv_zsmall *z, const char *m, size_t mlen, double *score)
{
    size_t off = 0;
    while (off < z->len) {
        const unsigned char *p = z->data + off;
        size_t hl, n = rd_mlen(p, &hl);
        if (n == mlen && memcmp(p + hl, m, mlen) == 0) {
            if (score) memcpy(score, p + hl + n, 8);
            return (long)off;
        }
        off += elem_size(n);
    }
    return -1;
}

static kv_zsmall *reserve(kv_zsmall *z, size_t extra)
{
    size_t need = HDR + z->len + extra;
    if (malloc_usable_size(z) >= need) return z;
    /* grow by a quarter at least: few reallocs while a zset fills up,
     * little slack once it is full (its size class absorbs most) */
    size_t want = need + (z->len >> 2);
    kv_zsmall *n = realloc(z, want);
    if (!n) abort();
    return n;
}

kv_zsmall *kv_zsm_insert(kv_zsmall *z, const char *m, size_t mlen, double score)
{
    size_t off = 0;
    while (off < z->len) {
        const char *em;
        size_t el;
        double s;
        size_t sz = kv_zsm_get(z, off, &em, &el, &s);
        if (s > score) break;
        if (s == score) {
            int c = memcmp(em, m, el < mlen ? el : mlen);
            if (c > 0 || (c == 0 && el > mlen)) break;
        }
        off += sz;
    }
    size_t es = elem_size(mlen);
    z = reserve(z, es);
    memmove(z->data + off + es, z->data + off, z->len - off);
    write_elem(z->data + off, m, mlen, score);
    z->len += (uint32_t)es;
    z->count++;
    return z;
}

kv_zsmall *kv_zsm_append(kv_zsmall *z, const char *m, size_t mlen, double score)
{
    size_t es = elem_size(mlen);
    z = reserve(z, es);
    write_elem(z->data + z->len, m, mlen, score);
    z->len += (uint32_t)es;
    z->count++;
    return z;
}

void kv_zsm_delete(kv_zsmall *z, size_t from, size_t to, size_t n)
{
    memmove(z->data + from, z->data + to, z->len - to);
    z->len -= (uint32_t)(to - from);
    z->count -= (uint32_t)n;
}

size_t kv_zsm_at_rank(const kv_zsmall *z, size_t r)
{
    size_t off;
    if (r <= z->count / 2) {
        for (off = 0; r; r--) off = next_off(z, off);
    } else {
        off = z->len;
        for (r = z->count - r; r; r--) off = kv_zsm_prev(z, off);
    }
    return off;
}
