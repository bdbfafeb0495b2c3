/* Listpack in Redis 7.0's exact byte format; see listpack.h. The encoding
 * rules mirror Redis's listpack.c (lpEncodeGetType, lpEncodeBacklen) so
 * that blobs built by the same operations are identical. */
#include <stdlib.h>
#include <string.h>

#include "shard/db.h"
#include "shard/listpack.h"

/* Encoding bytes */
#define ENC_7BIT_UINT 0x00 /* 0xxxxxxx */
#define ENC_6BIT_STR 0x80  /* 10xxxxxx */
#define ENC_13BIT_INT 0xC0 /* 110xxxxx */
#define ENC_12BIT_STR 0xE0 /* 1110xxxx */
#define ENC_32BIT_STR 0xF0
#define ENC_16BIT_INT 0xF1
#define ENC_24BIT_INT 0xF2
#define ENC_32BIT_INT 0xF3
#define ENC_64BIT_INT 0xF4

static inline void set_bytes(unsigned char *lp, size_t n)
{
    lp[0] = (unsigned char)n, lp[1] = (unsigned char)(n >> 8);
    lp[2] = (unsigned char)(n >> 16), lp[3] = (unsigned char)(n >> 24);
}
static inline unsigned hdr_count(const unsigned char *lp) { return lp[4] | (unsigned)lp[5] << 8; }
static inline void set_count(unsigned char *lp, unsigned n)
{
    lp[4] = (unsigned char)n, lp[5] = (unsigned char)(n >> 8);
}

/* Bytes of the backlen that encodes l (Redis's lpEncodeBacklen). */
static inline size_t backlen_size(uint64_t l)
{
    return l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
}
static void backlen_write(unsigned char *b, uint64_t l)
{
    size_t n = backlen_size(l);
    /* most significant 7 bits first; every byte but the first has 128 */
    for (size_t i = 0; i < n; i++) {
        unsigned char v = (unsigned char)((l >> (7 * (n - 1 - i))) & 127);
        b[i] = i ? (unsigned char)(v | 128) : v;
    }
}

/* Size of encoding + data of the entry at p (trusted). */
static size_t enc_data_size(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC0) return 1 + (c & 0x3F);
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 2 + ((size_t)(c & 0x0F) << 8 | p[1]);
    switch (c) {
    case ENC_32BIT_STR:
        return 5 + ((size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24);
    case ENC_16BIT_INT: return 3;
    case ENC_24BIT_INT: return 4;
    case ENC_32BIT_INT: return 5;
    default: return 9; /* ENC_64BIT_INT */
    }
}
static inline size_t entry_size(const unsigned char *p)
{
    size_t l = enc_data_size(p);
    return l + backlen_size(l);
}

/* Encode an element into buf (encoding + data, no backlen); returns the
 * length. For strings only the header goes to buf when `hdr_only`; the
 * caller copies the bytes (strings can be large). */
typedef struct {
    unsigned char hdr[9];
    size_t hlen;          /* bytes in hdr */
    const char *s;        /* string bytes after hdr, or NULL */
    size_t slen;
} enc_t;

static void encode_int(enc_t *e, long long v)
{
    unsigned long long u = (unsigned long long)v;
    e->s = NULL, e->slen = 0;
    if (v >= 0 && v <= 127) {
        e->hdr[0] = (unsigned char)v, e->hlen = 1;
    } else if (v >= -4096 && v <= 4095) {
        if (v < 0) u = (1ULL << 13) + (unsigned long long)v;
        e->hdr[0] = (unsigned char)((u >> 8) | ENC_13BIT_INT), e->hdr[1] = (unsigned char)u;
        e->hlen = 2;
    } else {
        int nb;
        if (v >= -32768 && v <= 32767) nb = 2, e->hdr[0] = ENC_16BIT_INT;
        else if (v >= -8388608 && v <= 8388607) nb = 3, e->hdr[0] = ENC_24BIT_INT;
        else if (v >= -2147483648LL && v <= 2147483647LL) nb = 4, e->hdr[0] = ENC_32BIT_INT;
        else nb = 8, e->hdr[0] = ENC_64BIT_INT;
        /* two's complement in nb bytes: the low bytes of u are exactly that */
        for (int i = 0; i < nb; i++) e->hdr[1 + i] = (unsigned char)(u >> (8 * i));
        e->hlen = 1 + (size_t)nb;
    }
}

static void encode(enc_t *e, const char *s, size_t n)
{
    long long v;
    if (n <= 20 && kv_str2ll(s, n, &v)) {
        encode_int(e, v);
        return;
    }
    e->s = s, e->slen = n;
    if (n < 64) {
        e->hdr[0] = (unsigned char)(ENC_6BIT_STR | n), e->hlen = 1;
    } else if (n < 4096) {
        e->hdr[0] = (unsigned char)(ENC_12BIT_STR | (n >> 8)), e->hdr[1] = (unsigned char)n;
        e->hlen = 2;
    } else {
        e->hdr[0] = ENC_32BIT_STR;
        for (int i = 0; i < 4; i++) e->hdr[1 + i] = (unsigned char)(n >> (8 * i));
        e->hlen = 5;
    }
}

static inline size_t enc_total(const enc_t *e)
{
    size_t l = e->hlen + e->slen;
    return l + backlen_size(l);
}
static void enc_write(unsigned char *dst, const enc_t *e)
{
    memcpy(dst, e->hdr, e->hlen);
    if (e->slen) memcpy(dst + e->hlen, e->s, e->slen);
    backlen_write(dst + e->hlen + e->slen, e->hlen + e->slen);
}

size_t kv_lp_entry_size(const char *s, size_t n)
{
    enc_t e;
    encode(&e, s, n);
    return enc_total(&e);
}

unsigned char *kv_lp_new(void)
{
    unsigned char *lp = malloc(KV_LP_HDR_SIZE + 1);
    if (!lp) return NULL;
    set_bytes(lp, KV_LP_HDR_SIZE + 1);
    set_count(lp, 0);
    lp[KV_LP_HDR_SIZE] = KV_LP_EOF;
    return lp;
}

unsigned char *kv_lp_dup(const unsigned char *lp)
{
    size_t n = kv_lp_bytes(lp);
    unsigned char *c = malloc(n);
    if (c) memcpy(c, lp, n);
    return c;
}

size_t kv_lp_count(const unsigned char *lp)
{
    unsigned n = hdr_count(lp);
    if (n != KV_LP_COUNT_UNKNOWN) return n;
    size_t cnt = 0;
    for (const unsigned char *p = lp + KV_LP_HDR_SIZE; *p != KV_LP_EOF; p += entry_size(p)) cnt++;
    return cnt;
}

unsigned char *kv_lp_first(const unsigned char *lp)
{
    const unsigned char *p = lp + KV_LP_HDR_SIZE;
    return *p == KV_LP_EOF ? NULL : (unsigned char *)p;
}

unsigned char *kv_lp_next(const unsigned char *lp, const unsigned char *p)
{
    (void)lp;
    p += entry_size(p);
    return *p == KV_LP_EOF ? NULL : (unsigned char *)p;
}

/* The entry that ends right before `end` (the byte after its backlen). */
static unsigned char *entry_before(const unsigned char *end)
{
    const unsigned char *b = end - 1;
    uint64_t val = 0;
    unsigned shift = 0;
    for (;;) {
        val |= (uint64_t)(b[0] & 127) << shift;
        if (!(b[0] & 128)) break;
        shift += 7;
        b--;
    }
    return (unsigned char *)(end - backlen_size(val) - val);
}

unsigned char *kv_lp_prev(const unsigned char *lp, const unsigned char *p)
{
    if (p == lp + KV_LP_HDR_SIZE) return NULL;
    return entry_before(p);
}

unsigned char *kv_lp_last(const unsigned char *lp)
{
    const unsigned char *eof = lp + kv_lp_bytes(lp) - 1;
    if (eof == lp + KV_LP_HDR_SIZE) return NULL;
    return entry_before(eof);
}

unsigned char *kv_lp_seek(const unsigned char *lp, long index)
{
    size_t n = kv_lp_count(lp);
    if (index < 0) index += (long)n;
    if (index < 0 || (size_t)index >= n) return NULL;
    unsigned char *p;
    if ((size_t)index < n / 2) {
        p = kv_lp_first(lp);
        while (index--) p = kv_lp_next(lp, p);
    } else {
        p = kv_lp_last(lp);
        for (size_t i = n - 1; i > (size_t)index; i--) p = kv_lp_prev(lp, p);
    }
    return p;
}

/* Sign-extend the low `bits` of u. */
static inline long long sext(unsigned long long u, int bits)
{
    unsigned long long m = 1ULL << (bits - 1);
    u &= (bits == 64) ? ~0ULL : ((1ULL << bits) - 1);
    return (long long)((u ^ m) - m);
}

void kv_lp_get(const unsigned char *p, kv_lp_val *v)
{
    unsigned char c = p[0];
    v->s = NULL, v->len = 0;
    if (c < 0x80) {
        v->ll = c;
    } else if (c < 0xC0) {
        v->s = p + 1, v->len = c & 0x3F;
    } else if (c < 0xE0) {
        v->ll = sext((unsigned long long)(c & 0x1F) << 8 | p[1], 13);
    } else if (c < 0xF0) {
        v->s = p + 2, v->len = (uint32_t)((c & 0x0F) << 8 | p[1]);
    } else if (c == ENC_32BIT_STR) {
        v->s = p + 5;
        v->len = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
    } else {
        int nb = c == ENC_16BIT_INT ? 2 : c == ENC_24BIT_INT ? 3 : c == ENC_32BIT_INT ? 4 : 8;
        unsigned long long u = 0;
        for (int i = 0; i < nb; i++) u |= (unsigned long long)p[1 + i] << (8 * i);
        v->ll = sext(u, nb * 8);
    }
}

const char *kv_lp_val_str(const kv_lp_val *v, char *buf, size_t *len)
{
    if (v->s) {
        *len = v->len;
        return (const char *)v->s;
    }
    /* format without snprintf: this is on every HGET of a numeric value */
    unsigned long long u = v->ll < 0 ? 0ULL - (unsigned long long)v->ll : (unsigned long long)v->ll;
    char tmp[KV_LP_INTBUF];
    int i = 0;
    do tmp[i++] = (char)('0' + u % 10); while ((u /= 10));
    size_t n = 0;
    if (v->ll < 0) buf[n++] = '-';
    while (i) buf[n++] = tmp[--i];
    *len = n;
    return buf;
}

int kv_lp_eq(const unsigned char *p, const char *s, size_t n)
{
    kv_lp_val v;
    kv_lp_get(p, &v);
    if (v.s) return v.len == n && memcmp(v.s, s, n) == 0;
    long long x;
    /* a string equals an integer element only in its canonical form */
    return n <= 20 && kv_str2ll(s, n, &x) && x == v.ll;
}

unsigned char *kv_lp_find(const unsigned char *lp, unsigned char *p, const char *s, size_t n,
                          unsigned skip)
{
    /* Parse s once: integer elements compare by value, strings by bytes. */
    long long x = 0;
    int sint = n <= 20 && kv_str2ll(s, n, &x);
    while (p) {
        kv_lp_val v;
        kv_lp_get(p, &v);
        if (v.s ? (v.len == n && memcmp(v.s, s, n) == 0) : (sint && v.ll == x)) return p;
        for (unsigned i = 0; i <= skip && p; i++) p = kv_lp_next(lp, p);
    }
    return NULL;
}

/* Replace the `oldlen` bytes at offset `off` with the element e (or
 * nothing when e is NULL), adjusting the count by dcount. */
static unsigned char *splice(unsigned char *lp, size_t off, size_t oldlen, const enc_t *e,
                             int dcount)
{
    size_t total = kv_lp_bytes(lp), newlen = e ? enc_total(e) : 0;
    size_t ntotal = total - oldlen + newlen;
    if (newlen > oldlen) {
        unsigned char *n = realloc(lp, ntotal);
        if (!n) return NULL;
        lp = n;
    }
    memmove(lp + off + newlen, lp + off + oldlen, total - off - oldlen);
    if (e) enc_write(lp + off, e);
    if (newlen < oldlen) {
        unsigned char *n = realloc(lp, ntotal);
        if (n) lp = n; /* shrinking in place is fine too */
    }
    set_bytes(lp, ntotal);
    unsigned c = hdr_count(lp);
    if (c != KV_LP_COUNT_UNKNOWN && dcount) {
        long nc = (long)c + dcount;
        set_count(lp, nc >= KV_LP_COUNT_UNKNOWN ? KV_LP_COUNT_UNKNOWN : (unsigned)nc);
    }
    return lp;
}

unsigned char *kv_lp_insert(unsigned char *lp, unsigned char *p, const char *s, size_t n,
                            unsigned char **newp)
{
    enc_t e;
    encode(&e, s, n);
    size_t off = p ? (size_t)(p - lp) : kv_lp_bytes(lp) - 1;
    unsigned char *r = splice(lp, off, 0, &e, 1);
    if (r && newp) *newp = r + off;
    return r;
}

unsigned char *kv_lp_append(unsigned char *lp, const char *s, size_t n)
{
    return kv_lp_insert(lp, NULL, s, n, NULL);
}

unsigned char *kv_lp_append_int(unsigned char *lp, long long v)
{
    enc_t e;
    encode_int(&e, v);
    return splice(lp, kv_lp_bytes(lp) - 1, 0, &e, 1);
}

static unsigned char *replace_enc(unsigned char *lp, unsigned char **p, const enc_t *e)
{
    size_t off = (size_t)(*p - lp);
    unsigned char *r = splice(lp, off, entry_size(*p), e, 0);
    if (r) *p = r + off;
    return r;
}

unsigned char *kv_lp_replace(unsigned char *lp, unsigned char **p, const char *s, size_t n)
{
    enc_t e;
    encode(&e, s, n);
    return replace_enc(lp, p, &e);
}

unsigned char *kv_lp_replace_int(unsigned char *lp, unsigned char **p, long long v)
{
    enc_t e;
    encode_int(&e, v);
    return replace_enc(lp, p, &e);
}

unsigned char *kv_lp_delete(unsigned char *lp, unsigned char **p, size_t num)
{
    size_t off = (size_t)(*p - lp), len = 0, k = 0;
    const unsigned char *q = *p;
    while (k < num && *q != KV_LP_EOF) {
        size_t l = entry_size(q);
        q += l, len += l, k++;
    }
    unsigned char *r = splice(lp, off, len, NULL, -(int)k);
    if (r) *p = r[off] == KV_LP_EOF ? NULL : r + off;
    return r;
}

int kv_lp_validate(const unsigned char *lp, size_t size, size_t *count)
{
    if (size < KV_LP_HDR_SIZE + 1 || kv_lp_bytes(lp) != size || lp[size - 1] != KV_LP_EOF)
        return 0;
    const unsigned char *p = lp + KV_LP_HDR_SIZE, *end = lp + size - 1;
    size_t cnt = 0;
    while (p < end) {
        size_t left = (size_t)(end - p), l;
        unsigned char c = p[0];
        if (c < 0x80) l = 1;
        else if (c < 0xC0) l = 1 + (c & 0x3F);
        else if (c < 0xE0) l = 2;
        else if (c < 0xF0) {
            if (left < 2) return 0;
            l = 2 + ((size_t)(c & 0x0F) << 8 | p[1]);
        } else if (c == ENC_32BIT_STR) {
            if (left < 5) return 0;
            l = 5 + ((size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24);
        } else if (c >= ENC_16BIT_INT && c <= ENC_64BIT_INT) {
            l = enc_data_size(p);
        } else {
            return 0; /* 0xF5..0xFE are not encodings; 0xFF only at the end */
        }
        if (l > left) return 0;
        size_t bl = backlen_size(l);
        if (bl > left - l) return 0;
        /* the backlen must read back to l, walking right to left */
        const unsigned char *b = p + l + bl - 1;
        uint64_t val = 0;
        for (size_t i = 0; i < bl; i++, b--) {
            if (((b[0] & 128) != 0) != (i + 1 < bl)) return 0;
            val |= (uint64_t)(b[0] & 127) << (7 * i);
        }
        if (val != l) return 0;
        p += l + bl;
        cnt++;
    }
    if (p != end) return 0;
    unsigned hc = hdr_count(lp);
    if (hc != KV_LP_COUNT_UNKNOWN && hc != cnt) return 0;
    if (count) *count = cnt;
    return 1;
}
