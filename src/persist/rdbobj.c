/* RDB object codec and DUMP payloads (see rdbobj.h). */
#include <errno.h>
#include <lzf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc64.h"
#include "persist/rdbobj.h"

/* Length prefixes (rdb.h): the top two bits of the first byte. */
#define RDB_6BITLEN 0
#define RDB_14BITLEN 1
#define RDB_32BITLEN 0x80
#define RDB_64BITLEN 0x81
#define RDB_ENCVAL 3
/* String encodings after an RDB_ENCVAL prefix. */
#define RDB_ENC_INT8 0
#define RDB_ENC_INT16 1
#define RDB_ENC_INT32 2
#define RDB_ENC_LZF 3

/* LZF cannot expand input by more than ~88x (a 3-byte back reference
 * copies at most 264 bytes); a payload claiming more is corrupt, and is
 * rejected before a buffer of the claimed size is allocated. */
#define KV_LZF_MAX_RATIO 128

/* ---- buffer ------------------------------------------------------------ */

void kv_rdb_buf_init(kv_rdb_buf *b) { memset(b, 0, sizeof(*b)); }

void kv_rdb_buf_free(kv_rdb_buf *b)
{
    free(b->p);
    kv_rdb_buf_init(b);
}

static int buf_reserve(kv_rdb_buf *b, size_t n)
{
    if (b->oom) return -1;
    if (b->cap - b->len >= n) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p, b->cap = cap;
    return 0;
}

void kv_rdb_buf_append(kv_rdb_buf *b, const void *p, size_t n)
{
    if (n == 0 || buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_byte(kv_rdb_buf *b, unsigned char c) { kv_rdb_buf_append(b, &c, 1); }

/* ---- lengths ----------------------------------------------------------- */

void kv_rdb_save_len(kv_rdb_buf *b, uint64_t len)
{
    unsigned char buf[9];
    size_t n;
    if (len < (1 << 6)) {
        buf[0] = (unsigned char) len;
        n = 1;
    } else if (len < (1 << 14)) {
        buf[0] = (unsigned char) ((len >> 8) | (RDB_14BITLEN << 6));
        buf[1] = (unsigned char) len;
        n = 2;
    } else if (len <= UINT32_MAX) {
        buf[0] = RDB_32BITLEN;
        for (int i = 0; i < 4; i++) buf[1 + i] = (unsigned char) (len >> (24 - 8 * i));
        n = 5;
    } else {
        buf[0] = RDB_64BITLEN;
        for (int i = 0; i < 8; i++) buf[1 + i] = (unsigned char) (len >> (56 - 8 * i));
        n = 9;
    }
    kv_rdb_buf_append(b, buf, n);
}

static int rd(kv_rdb_reader *r, void *dst, size_t n)
{
    if (r->len - r->pos < n) return KV_RDB_EBADFMT;
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return KV_RDB_OK;
}

int kv_rdb_load_len(kv_rdb_reader *r, uint64_t *len, int *encoded)
{
    unsigned char b[8];
    if (encoded) *encoded = 0;
    if (rd(r, b, 1)) return KV_RDB_EBADFMT;
    int type = (b[0] & 0xC0) >> 6;
    if (type == RDB_ENCVAL) {
        /* As rdbLoadLen: a caller that does not ask gets the 6 bits as a
         * plain length. */
        if (encoded) *encoded = 1;
        *len = b[0] & 0x3F;
    } else if (type == RDB_6BITLEN) {
        *len = b[0] & 0x3F;
    } else if (type == RDB_14BITLEN) {
        unsigned char lo;
        if (rd(r, &lo, 1)) return KV_RDB_EBADFMT;
        *len = ((uint64_t) (b[0] & 0x3F) << 8) | lo;
    } else if (b[0] == RDB_32BITLEN || b[0] == RDB_64BITLEN) {
        size_t n = b[0] == RDB_32BITLEN ? 4 : 8;
        if (rd(r, b, n)) return KV_RDB_EBADFMT;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) v = (v << 8) | b[i];
        *len = v;
    } else {
        return KV_RDB_EBADFMT;
    }
    return KV_RDB_OK;
}

/* ---- strings ----------------------------------------------------------- */

/* rdbEncodeInteger: 0 when v needs more than 32 bits. */
static size_t encode_int(long long v, unsigned char *enc)
{
    if (v >= -(1 << 7) && v <= (1 << 7) - 1) {
        enc[0] = (RDB_ENCVAL << 6) | RDB_ENC_INT8;
        enc[1] = (unsigned char) (v & 0xFF);
        return 2;
    }
    if (v >= -(1 << 15) && v <= (1 << 15) - 1) {
        enc[0] = (RDB_ENCVAL << 6) | RDB_ENC_INT16;
        enc[1] = (unsigned char) (v & 0xFF);
        enc[2] = (unsigned char) ((v >> 8) & 0xFF);
        return 3;
    }
    if (v >= -((long long) 1 << 31) && v <= ((long long) 1 << 31) - 1) {
        enc[0] = (RDB_ENCVAL << 6) | RDB_ENC_INT32;
        for (int i = 0; i < 4; i++) enc[1 + i] = (unsigned char) ((v >> (8 * i)) & 0xFF);
        return 5;
    }
    return 0;
}

/* Is s[0..n) (n <= 11) exactly the canonical decimal of an integer, as
 * Redis's string2ll + ll2string round trip checks? */
static int canonical_ll(const char *s, size_t n, long long *v)
{
    char tmp[16];
    size_t i = 0;
    long long x = 0;
    if (n == 0 || n > 11) return 0;
    if (s[0] == '-') i = 1;
    if (i == n) return 0;
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return 0;
        x = x * 10 + (s[k] - '0'); /* <= 11 digits: no overflow */
    }
    if (i) x = -x;
    if ((size_t) snprintf(tmp, sizeof(tmp), "%lld", x) != n || memcmp(tmp, s, n) != 0) return 0;
    *v = x;
    return 1;
}

void kv_rdb_save_string(kv_rdb_buf *b, const void *vp, size_t n)
{
    const char *s = vp;
    unsigned char enc[5];
    /* Integer encoding only when the text is exactly the integer's
     * canonical decimal, so loading gives back the same bytes. */
    if (n <= 11) {
        long long v;
        if (canonical_ll(s, n, &v)) {
            size_t el = encode_int(v, enc);
            if (el) {
                kv_rdb_buf_append(b, enc, el);
                return;
            }
        }
    }
    /* LZF, as rdbSaveLzfStringObject: worth it only if it saves >= 4
     * bytes (the output limit is n - 4; lzf_compress gives 0 when the
     * result does not fit). Never tried at <= 20 bytes. */
    if (n > 20 && n - 4 <= UINT32_MAX) {
        size_t outlen = n - 4;
        unsigned char *out = malloc(outlen + 1);
        if (out) {
            unsigned int cl = lzf_compress(s, (unsigned int) n, out, (unsigned int) outlen);
            if (cl > 0) {
                buf_byte(b, (RDB_ENCVAL << 6) | RDB_ENC_LZF);
                kv_rdb_save_len(b, cl);
                kv_rdb_save_len(b, n);
                kv_rdb_buf_append(b, out, cl);
                free(out);
                return;
            }
            free(out);
        }
    }
    kv_rdb_save_len(b, n);
    kv_rdb_buf_append(b, s, n);
}

static int load_int(kv_rdb_reader *r, int enc, kv_rdb_str *out)
{
    unsigned char b[4];
    long long v;
    if (enc == RDB_ENC_INT8) {
        if (rd(r, b, 1)) return KV_RDB_EBADFMT;
        v = (signed char) b[0];
    } else if (enc == RDB_ENC_INT16) {
        if (rd(r, b, 2)) return KV_RDB_EBADFMT;
        v = (int16_t) (uint16_t) (b[0] | (b[1] << 8));
    } else {
        if (rd(r, b, 4)) return KV_RDB_EBADFMT;
        v = (int32_t) ((uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16 |
                       (uint32_t) b[3] << 24);
    }
    out->is_int = 1;
    out->ll = v;
    out->len = (size_t) snprintf(out->ibuf, sizeof(out->ibuf), "%lld", v);
    out->p = out->ibuf;
    return KV_RDB_OK;
}

static int load_lzf(kv_rdb_reader *r, kv_rdb_str *out)
{
    uint64_t clen, len;
    if (kv_rdb_load_len(r, &clen, NULL) || kv_rdb_load_len(r, &len, NULL)) return KV_RDB_EBADFMT;
    if (clen > r->len - r->pos) return KV_RDB_EBADFMT;
    const unsigned char *c = r->p + r->pos;
    r->pos += clen;
    /* lzf_decompress() reports failure as 0, so Redis (which compares the
     * result with len) takes any claimed length 0 as an empty string. */
    if (len == 0) {
        out->p = "";
        out->len = 0;
        return KV_RDB_OK;
    }
    if (len > (uint64_t) KV_STRING_MAX || len > clen * KV_LZF_MAX_RATIO + 256 ||
        clen > UINT32_MAX)
        return KV_RDB_EBADFMT;
    char *val = malloc(len);
    if (!val) return KV_RDB_ENOMEM;
    if (lzf_decompress(c, (unsigned int) clen, val, (unsigned int) len) != len) {
        free(val);
        return KV_RDB_EBADFMT;
    }
    out->owned = val;
    out->p = val;
    out->len = len;
    return KV_RDB_OK;
}

int kv_rdb_load_string(kv_rdb_reader *r, kv_rdb_str *out)
{
    uint64_t len;
    int encoded;
    memset(out, 0, sizeof(*out));
    if (kv_rdb_load_len(r, &len, &encoded)) return KV_RDB_EBADFMT;
    if (encoded) {
        switch (len) {
        case RDB_ENC_INT8:
        case RDB_ENC_INT16:
        case RDB_ENC_INT32: return load_int(r, (int) len, out);
        case RDB_ENC_LZF: return load_lzf(r, out);
        default: return KV_RDB_EBADFMT;
        }
    }
    if (len > r->len - r->pos) return KV_RDB_EBADFMT;
    /* Zero-copy: the bytes stay in the input. */
    out->p = (const char *) r->p + r->pos;
    out->len = len;
    r->pos += len;
    return KV_RDB_OK;
}

/* ---- objects ----------------------------------------------------------- */

/* Registered codecs of the collection types, by kv type and RDB type. */
static const kv_rdbobj_ops *ops_by_kv[KV_TYPE_MAX];
static const kv_rdbobj_ops *ops_by_rdb[KV_RDB_TYPE_MAX];
static uint8_t kv_of_rdb[KV_RDB_TYPE_MAX];

void kv_rdbobj_register(uint8_t kv_type, const uint8_t *rdbtypes, size_t n,
                        const kv_rdbobj_ops *ops)
{
    if (kv_type >= KV_TYPE_MAX || kv_type == KV_TYPE_STRING) return;
    ops_by_kv[kv_type] = ops;
    for (size_t i = 0; i < n; i++) {
        if (rdbtypes[i] >= KV_RDB_TYPE_MAX || rdbtypes[i] == KV_RDB_TYPE_STRING) continue;
        ops_by_rdb[rdbtypes[i]] = ops;
        kv_of_rdb[rdbtypes[i]] = kv_type;
    }
}

const kv_rdbobj_ops *kv_rdbobj_type_ops(uint8_t kv_type)
{
    return kv_type < KV_TYPE_MAX ? ops_by_kv[kv_type] : NULL;
}

void kv_rdbobj_value_free(kv_rdbobj_value *v)
{
    if (v->type == KV_TYPE_STRING) {
        kv_rdb_str_free(&v->str);
    } else if (v->ptr) {
        const kv_rdbobj_ops *ops = kv_rdbobj_type_ops(v->type);
        if (ops && ops->free) ops->free(v->ptr, v->enc);
        v->ptr = NULL;
    }
}

/* Redis 7.0's rdbIsObjectType. */
static int is_object_type(int t) { return (t >= 0 && t <= 7) || (t >= 9 && t <= 19); }

int kv_rdbobj_load(kv_rdb_reader *r, kv_rdbobj_value *v)
{
    unsigned char t;
    memset(v, 0, sizeof(*v));
    if (rd(r, &t, 1) || !is_object_type(t)) return KV_RDB_EBADFMT;
    if (t == KV_RDB_TYPE_STRING) {
        v->type = KV_TYPE_STRING;
        return kv_rdb_load_string(r, &v->str);
    }
    const kv_rdbobj_ops *ops = ops_by_rdb[t];
    if (!ops || !ops->load) return KV_RDB_ENOTSUP;
    v->type = kv_of_rdb[t];
    return ops->load(r, t, &v->enc, &v->ptr);
}

/* ---- payloads ---------------------------------------------------------- */

void kv_rdb_payload_finish(kv_rdb_buf *b, size_t start)
{
    unsigned char footer[10];
    footer[0] = KV_RDB_VERSION & 0xFF;
    footer[1] = (KV_RDB_VERSION >> 8) & 0xFF;
    kv_rdb_buf_append(b, footer, 2);
    if (b->oom) return;
    uint64_t crc = kv_crc64(0, b->p + start, b->len - start);
    for (int i = 0; i < 8; i++) footer[2 + i] = (unsigned char) (crc >> (8 * i));
    kv_rdb_buf_append(b, footer + 2, 8);
}

int kv_rdbobj_verify(const void *vp, size_t n)
{
    const unsigned char *p = vp;
    if (n < 10) return -1;
    const unsigned char *footer = p + n - 10;
    unsigned ver = (unsigned) footer[0] | (unsigned) footer[1] << 8;
    if (ver > KV_RDB_VERSION) return -1;
    uint64_t crc = kv_crc64(0, p, n - 8), got = 0;
    for (int i = 7; i >= 0; i--) got = (got << 8) | footer[2 + i];
    return crc == got ? 0 : -1;
}

int kv_rdbobj_load_payload(const void *p, size_t n, kv_rdbobj_value *v)
{
    kv_rdb_reader r;
    /* Redis reads the object from the whole payload, footer included, and
     * ignores what follows it; so do we, for identical acceptance. */
    kv_rdb_reader_init(&r, p, n);
    return kv_rdbobj_load(&r, v);
}

