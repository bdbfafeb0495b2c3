/* Whole RDB files: see rdb_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/crc64.h"
#include "persist/rdb_file.h"

#define FLUSH_AT (256u * 1024)

/* ---- saving ----------------------------------------------------------- */

typedef struct {
    int fd;
    uint64_t crc;
    kv_rdb_buf b;
} writer_t;

int kv_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w, n -= (size_t) w;
    }
    return 0;
}

static int wflush(writer_t *w)
{
    if (w->b.oom) {
        errno = ENOMEM;
        return -1;
    }
    w->crc = kv_crc64(w->crc, w->b.p, w->b.len);
    int rc = kv_write_all(w->fd, w->b.p, w->b.len);
    w->b.len = 0;
    return rc;
}

static void put_byte(kv_rdb_buf *b, unsigned char c) { kv_rdb_buf_append(b, &c, 1); }

static void put_aux(kv_rdb_buf *b, const char *k, const char *v)
{
    put_byte(b, KV_RDB_OPCODE_AUX);
    kv_rdb_save_string(b, k, strlen(k));
    kv_rdb_save_string(b, v, strlen(v));
}

static void put_aux_ll(kv_rdb_buf *b, const char *k, long long v)
{
    char s[32];
    snprintf(s, sizeof(s), "%lld", v);
    put_aux(b, k, s);
}

int kv_rdb_write_fd(kv_db_t *db, int fd, char *err, size_t errlen)
{
    writer_t w = { .fd = fd };
    kv_rdb_buf scratch;
    kv_dict_iter it;
    kv_dict_entry *e;
    int rc = 0;
    char hdr[16];

    kv_rdb_buf_init(&w.b);
    kv_rdb_buf_init(&scratch);
    snprintf(hdr, sizeof(hdr), "REDIS%04d", KV_RDB_VERSION);
    kv_rdb_buf_append(&w.b, hdr, 9);
    put_aux(&w.b, "redis-ver", "7.0.15");
    put_aux_ll(&w.b, "redis-bits", (long long) sizeof(void *) * 8);
    put_aux_ll(&w.b, "ctime", (long long) time(NULL));
    put_aux_ll(&w.b, "used-mem", (long long) kv_db_mem(db));
    put_aux_ll(&w.b, "aof-base", 0);
    if (kv_db_size(db) > 0) {
        put_byte(&w.b, KV_RDB_OPCODE_SELECTDB);
        kv_rdb_save_len(&w.b, 0);
        put_byte(&w.b, KV_RDB_OPCODE_RESIZEDB);
        kv_rdb_save_len(&w.b, kv_db_size(db));
        kv_rdb_save_len(&w.b, kv_db_volatile(db));
    }

    kv_dict_iter_init(&it, db->dict);
    while ((e = kv_dict_iter_next(&it)) != NULL) {
        const kv_obj *o = kv_db_obj(e);
        int64_t when = kv_db_expire_get(o);
        scratch.len = 0;
        int orc = kv_rdbobj_save(&scratch, o);
        if (orc) {
            snprintf(err, errlen, "cannot serialize a value of type %s: %s", kv_db_type_name(o->type),
                     orc == KV_RDB_ENOMEM ? "out of memory" : "type not supported");
            errno = orc == KV_RDB_ENOMEM ? ENOMEM : ENOTSUP;
            rc = -1;
            break;
        }
        if (when >= 0) {
            unsigned char t[9];
            t[0] = KV_RDB_OPCODE_EXPIRETIME_MS;
            for (int i = 0; i < 8; i++) t[1 + i] = (unsigned char) ((uint64_t) when >> (8 * i));
            kv_rdb_buf_append(&w.b, t, 9);
        }
        kv_rdb_buf_append(&w.b, scratch.p, 1);
        kv_rdb_save_string(&w.b, kv_dict_entry_key(e), kv_dict_entry_klen(e));
        kv_rdb_buf_append(&w.b, scratch.p + 1, scratch.len - 1);
        if (w.b.len >= FLUSH_AT && wflush(&w) != 0) {
            snprintf(err, errlen, "write: %s", strerror(errno));
            rc = -1;
            break;
        }
    }
    kv_dict_iter_done(&it);

    if (rc == 0) {
        put_byte(&w.b, KV_RDB_OPCODE_EOF);
        if (wflush(&w) != 0) {
            snprintf(err, errlen, "write: %s", strerror(errno));
            rc = -1;
        } else {
            unsigned char c[8];
            for (int i = 0; i < 8; i++) c[i] = (unsigned char) (w.crc >> (8 * i));
            if (kv_write_all(fd, c, 8) != 0) {
                snprintf(err, errlen, "write: %s", strerror(errno));
                rc = -1;
            }
        }
    }
    kv_rdb_buf_free(&w.b);
    kv_rdb_buf_free(&scratch);
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int kv_rdb_save_file(kv_db_t *db, const char *path, const char *tmp, char *err, size_t errlen)
{
    char why[256] = "";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (kv_rdb_write_fd(db, fd, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, why);
        goto fail;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    if (fsync_dir_of(path) != 0) {
        /* The file is whole and in place; only its durability across a
         * power loss is in doubt. */
        snprintf(err, errlen, "%s: fsync of its directory: %s", path, strerror(errno));
        return -1;
    }
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

/* ---- loading ---------------------------------------------------------- */

typedef struct {
    kv_rdb_reader r;
    const char *name;
    char *err;
    size_t errlen;
    kv_rdb_load_stats *st;
} loader_t;

/* Printable form of a key for messages: at most 64 bytes, escaped. */
static void show_key(char *out, size_t cap, const char *k, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 64 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char) k[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') out[o++] = (char) c;
        else o += (size_t) snprintf(out + o, cap - o, "\\x%02x", c);
    }
    if (n > 64 && o + 4 < cap) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = '\0';
}

__attribute__((format(printf, 3, 4))) static int fail(loader_t *l, size_t off, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    l->st->bad_offset = off;
    snprintf(l->err, l->errlen, "%s: corrupt at offset %zu: %s", l->name, off, why);
    return -1;
}

static int rd_bytes(loader_t *l, void *dst, size_t n)
{
    if (l->r.len - l->r.pos < n) return -1;
    memcpy(dst, l->r.p + l->r.pos, n);
    l->r.pos += n;
    return 0;
}

/* The kv type of an RDB object type byte; -1 for module and unknown types. */
static int kv_type_of(int t)
{
    switch (t) {
    case KV_RDB_TYPE_STRING: return KV_TYPE_STRING;
    case KV_RDB_TYPE_LIST: case KV_RDB_TYPE_LIST_ZIPLIST: case KV_RDB_TYPE_LIST_QUICKLIST:
    case KV_RDB_TYPE_LIST_QUICKLIST_2: return KV_TYPE_LIST;
    case KV_RDB_TYPE_SET: case KV_RDB_TYPE_SET_INTSET: return KV_TYPE_SET;
    case KV_RDB_TYPE_ZSET: case KV_RDB_TYPE_ZSET_2: case KV_RDB_TYPE_ZSET_ZIPLIST:
    case KV_RDB_TYPE_ZSET_LISTPACK: return KV_TYPE_ZSET;
    case KV_RDB_TYPE_HASH: case KV_RDB_TYPE_HASH_ZIPMAP: case KV_RDB_TYPE_HASH_ZIPLIST:
    case KV_RDB_TYPE_HASH_LISTPACK: return KV_TYPE_HASH;
    case KV_RDB_TYPE_STREAM_LISTPACKS: case KV_RDB_TYPE_STREAM_LISTPACKS_2: return KV_TYPE_STREAM;
    default: return -1;
    }
}

static const char *rc_text(int rc)
{
    return rc == KV_RDB_ENOMEM ? "out of memory" : rc == KV_RDB_ENOTSUP ? "not supported" : "malformed";
}

static int load_key(loader_t *l, int t, size_t start, int64_t expire_ms, kv_rdb_key_fn *fn, void *ud)
{
    kv_rdb_str key;
    kv_rdbobj_value v;
    char shown[300];
    int rc;

    if (t == KV_RDB_TYPE_MODULE || t == KV_RDB_TYPE_MODULE_2)
        return fail(l, start, "a Redis module's value (RDB type %d): modules are not supported", t);
    int kt = kv_type_of(t);
    if (kt < 0) return fail(l, start, "unknown RDB object type %d", t);
    memset(&key, 0, sizeof(key));
    if (kv_rdb_load_string(&l->r, &key) != KV_RDB_OK)
        return fail(l, l->r.pos, "unreadable key name (RDB type %d record)", t);
    show_key(shown, sizeof(shown), key.p, key.len);
    memset(&v, 0, sizeof(v));
    v.type = (uint8_t) kt;
    if (kt == KV_TYPE_STRING) {
        rc = kv_rdb_load_string(&l->r, &v.str);
    } else {
        const kv_rdbobj_ops *ops = kv_rdbobj_type_ops((uint8_t) kt);
        if (!ops || !ops->load) {
            kv_rdb_str_free(&key);
            return fail(l, start, "key '%s': values of type %s (RDB type %d) are not supported by this build",
                        shown, kv_db_type_name(kt), t);
        }
        rc = ops->load(&l->r, t, &v.enc, &v.ptr);
        if (rc) v.ptr = NULL;
    }
    if (rc) {
        kv_rdb_str_free(&key);
        return fail(l, start, "key '%s': %s value (RDB type %d)", shown, rc_text(rc), t);
    }
    char why[256] = "";
    int r = fn(ud, key.p, key.len, &v, expire_ms, why, sizeof(why));
    kv_rdb_str_free(&key);
    if (r < 0) return fail(l, start, "key '%s': %s", shown, why);
    if (r == 1) l->st->keys_expired++;
    else l->st->keys_loaded++;
    return 0;
}

int kv_rdb_load_mem(const void *p, size_t n, const char *name, kv_rdb_key_fn *fn,
                    kv_rdb_resize_fn *resize, void *ud, kv_rdb_load_stats *st, char *err,
                    size_t errlen)
{
    kv_rdb_load_stats dummy;
    loader_t L = { .name = name, .err = err, .errlen = errlen, .st = st ? st : &dummy };
    loader_t *l = &L;
    const unsigned char *b = p;
    int64_t expire_ms = -1;

    memset(l->st, 0, sizeof(*l->st));
    kv_rdb_reader_init(&l->r, p, n);
    if (n < 9 || memcmp(b, "REDIS", 5) != 0) return fail(l, 0, "not an RDB file (no REDIS signature)");
    int ver = 0;
    for (int i = 5; i < 9; i++) {
        if (b[i] < '0' || b[i] > '9') return fail(l, (size_t) i, "bad RDB version digits");
        ver = ver * 10 + (b[i] - '0');
    }
    l->st->version = ver;
    if (ver < 1 || ver > KV_RDB_VERSION)
        return fail(l, 5, "RDB version %d is not supported (kevy loads 1..%d, as Redis 7.0)", ver, KV_RDB_VERSION);
    l->r.pos = 9;

    for (;;) {
        size_t start = l->r.pos;
        unsigned char op;
        uint64_t len, len2;
        if (rd_bytes(l, &op, 1)) return fail(l, start, "unexpected end of file (no EOF marker: torn file?)");
        switch (op) {
        case KV_RDB_OPCODE_EOF: {
            size_t eof_end = l->r.pos;
            if (ver >= 5) {
                unsigned char c[8];
                if (rd_bytes(l, c, 8)) return fail(l, eof_end, "truncated checksum after the EOF marker");
                uint64_t want = 0;
                for (int i = 7; i >= 0; i--) want = (want << 8) | c[i];
                if (want != 0) {
                    uint64_t got = kv_crc64(0, p, eof_end);
                    if (got != want)
                        return fail(l, eof_end, "CRC64 checksum mismatch (file %016llx, computed %016llx)",
                                    (unsigned long long) want, (unsigned long long) got);
                }
            }
            return 0;
        }
        case KV_RDB_OPCODE_SELECTDB:
            if (kv_rdb_load_len(&l->r, &len, NULL)) return fail(l, start, "truncated SELECTDB");
            if (len != 0)
                return fail(l, start, "keys in database %llu: kevy has one database (0)",
                            (unsigned long long) len);
            continue;
        case KV_RDB_OPCODE_RESIZEDB:
            if (kv_rdb_load_len(&l->r, &len, NULL) || kv_rdb_load_len(&l->r, &len2, NULL))
                return fail(l, start, "truncated RESIZEDB");
            if (resize) {
                size_t left = l->r.len - l->r.pos; /* a key takes 3 bytes at least */
                resize(ud, len > left / 3 ? left / 3 : len, len2 > left / 3 ? left / 3 : len2);
            }
            continue;
        case KV_RDB_OPCODE_AUX: {
            kv_rdb_str k, v;
            memset(&k, 0, sizeof(k));
            memset(&v, 0, sizeof(v));
            if (kv_rdb_load_string(&l->r, &k)) return fail(l, start, "malformed AUX field name");
            int bad = kv_rdb_load_string(&l->r, &v);
            kv_rdb_str_free(&k);
            kv_rdb_str_free(&v);
            if (bad) return fail(l, start, "malformed AUX field value");
            continue;
        }
        case KV_RDB_OPCODE_MODULE_AUX:
            return fail(l, start, "module auxiliary data (a Redis module's state): modules are not supported");
        case KV_RDB_OPCODE_FUNCTION_PRE_GA:
            return fail(l, start, "pre-release function format not supported");
        case KV_RDB_OPCODE_FUNCTION2: {
            kv_rdb_str code;
            memset(&code, 0, sizeof(code));
            if (kv_rdb_load_string(&l->r, &code)) return fail(l, start, "malformed function library");
            kv_rdb_str_free(&code);
            l->st->functions_skipped++;
            continue;
        }
        case KV_RDB_OPCODE_EXPIRETIME_MS: {
            unsigned char c[8];
            if (rd_bytes(l, c, 8)) return fail(l, start, "truncated EXPIRETIME_MS");
            uint64_t t = 0;
            for (int i = 7; i >= 0; i--) t = (t << 8) | c[i];
            expire_ms = (int64_t) t;
            if (expire_ms < 0) expire_ms = 0; /* long past */
            continue;
        }
        case KV_RDB_OPCODE_EXPIRETIME: {
            unsigned char c[4];
            if (rd_bytes(l, c, 4)) return fail(l, start, "truncated EXPIRETIME");
            int32_t t = (int32_t) ((uint32_t) c[0] | (uint32_t) c[1] << 8 | (uint32_t) c[2] << 16 |
                                   (uint32_t) c[3] << 24);
            expire_ms = t < 0 ? 0 : (int64_t) t * 1000;
            continue;
        }
        case KV_RDB_OPCODE_IDLE:
            if (kv_rdb_load_len(&l->r, &len, NULL)) return fail(l, start, "truncated IDLE");
            continue;
        case KV_RDB_OPCODE_FREQ:
            if (rd_bytes(l, &op, 1)) return fail(l, start, "truncated FREQ");
            continue;
        default:
            if (load_key(l, op, start, expire_ms, fn, ud) != 0) return -1;
            expire_ms = -1;
            continue;
        }
    }
}

int kv_rdb_load_file(const char *path, kv_rdb_key_fn *fn, kv_rdb_resize_fn *resize, void *ud,
                     kv_rdb_load_stats *st, char *err, size_t errlen)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    size_t n = (size_t) sb.st_size;
    void *p = NULL;
    if (n > 0) {
        p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            snprintf(err, errlen, "%s: mmap: %s", path, strerror(e));
            close(fd);
            errno = e;
            return -1;
        }
        madvise(p, n, MADV_SEQUENTIAL);
    }
    close(fd);
    int rc = kv_rdb_load_mem(n ? p : "", n, path, fn, resize, ud, st, err, errlen);
    if (n > 0) munmap(p, n);
    if (rc) errno = EINVAL;
    return rc;
}

/* ---- into a db -------------------------------------------------------- */

int kv_rdb_store_key(kv_db_t *db, const char *key, size_t klen, kv_rdbobj_value *v, int64_t expire_ms,
                     char *err, size_t errlen)
{
    if (expire_ms >= 0 && expire_ms <= kv_db_now_ms()) {
        kv_rdbobj_value_free(v);
        return 1;
    }
    if (kv_dict_find(db->dict, key, klen)) {
        kv_rdbobj_value_free(v);
        snprintf(err, errlen, "duplicate key");
        return -1;
    }
    kv_dict_entry *e = kv_rdbobj_store(db, key, klen, v);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (expire_ms >= 0) kv_db_expire_set(db, e, expire_ms);
    return 0;
}

static int db_key(void *ud, const char *key, size_t klen, kv_rdbobj_value *v, int64_t expire_ms,
                  char *err, size_t errlen)
{
    return kv_rdb_store_key(ud, key, klen, v, expire_ms, err, errlen);
}

static void db_resize(void *ud, uint64_t keys, uint64_t expires)
{
    kv_db_t *db = ud;
    (void) expires;
    if (keys > 0 && keys < ((uint64_t) 1 << 40)) kv_dict_expand(db->dict, (size_t) keys);
}

int kv_rdb_load_db(kv_db_t *db, const char *path, kv_rdb_load_stats *st, char *err, size_t errlen)
{
    uint64_t dirty = db->dirty;
    int rc = kv_rdb_load_file(path, db_key, db_resize, db, st, err, errlen);
    db->dirty = dirty; /* loading is not a change */
    return rc;
}

int kv_rdb_load_db_mem(kv_db_t *db, const void *p, size_t n, const char *name, kv_rdb_load_stats *st,
                       char *err, size_t errlen)
{
    uint64_t dirty = db->dirty;
    int rc = kv_rdb_load_mem(p, n, name, db_key, db_resize, db, st, err, errlen);
    db->dirty = dirty;
    return rc;
}
