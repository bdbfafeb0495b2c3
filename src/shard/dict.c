/* Keyspace hash table with incremental rehash. See dict.h for the entry
 * layout and the contracts; docs/keyspace.md for the memory reasoning. */
#include "shard/dict.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/time.h"

#define INITIAL_SIZE 4
#define MIN_FILL_PCT 10   /* shrink below this fill (Redis HASHTABLE_MIN_FILL) */
#define FORCE_RATIO 5     /* grow even when resizing is avoided (Redis) */
#define FAIR_SAMPLE 15    /* Redis GETFAIR_NUM_ENTRIES */

static uint64_t g_seed;
static int g_seeded;

static void *xalloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fputs("kevy: out of memory in dict\n", stderr);
        abort();
    }
    return q;
}

void kv_dict_set_seed(uint64_t seed)
{
    g_seed = seed;
    g_seeded = 1;
}

static void seed_once(void)
{
    if (g_seeded) return;
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = kv_time_mono_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    kv_dict_set_seed(s);
}

uint64_t kv_dict_hash(const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, g_seed);
}

static uint64_t rng_next(kv_dict *d)
{
    /* splitmix64: tiny, good enough for sampling */
    uint64_t z = (d->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline int key_eq(const kv_dict_entry *e, const void *key, size_t klen)
{
    if (klen < 0xFF) /* the common case: one byte compare before memcmp */
        return e->hdr[0] == klen && memcmp(e->hdr + 1, key, klen) == 0;
    return kv_dict_entry_klen(e) == klen && memcmp(e->hdr + 5, key, klen) == 0;
}

static inline uint64_t entry_hash(const kv_dict_entry *e)
{
    return kv_dict_hash(kv_dict_entry_key(e), kv_dict_entry_klen(e));
}

kv_dict *kv_dict_new(void)
{
    seed_once();
    kv_dict *d = xalloc(NULL, sizeof *d);
    memset(d, 0, sizeof *d);
    d->rehashidx = -1;
    static uint64_t counter;
    d->rng = g_seed ^ (++counter * 0xD1B54A32D192ED03ULL);
    return d;
}

static void free_table(kv_dict *d, int t, kv_dict_free_fn *fn, void *ud)
{
    for (unsigned long i = 0; i < d->size[t] && d->used[t]; i++) {
        kv_dict_entry *e = d->table[t][i];
        while (e) {
            kv_dict_entry *n = e->next;
            if (fn) fn(ud, e);
            free(e);
            d->used[t]--;
            e = n;
        }
    }
    free(d->table[t]);
    d->table[t] = NULL;
    d->size[t] = d->used[t] = 0;
}

void kv_dict_empty(kv_dict *d, kv_dict_free_fn *fn, void *ud)
{
    free_table(d, 0, fn, ud);
    free_table(d, 1, fn, ud);
    d->rehashidx = -1;
}

void kv_dict_free(kv_dict *d, kv_dict_free_fn *fn, void *ud)
{
    if (!d) return;
    kv_dict_empty(d, fn, ud);
    free(d);
}

size_t kv_dict_mem(const kv_dict *d)
{
    return sizeof *d + (d->size[0] + d->size[1]) * sizeof(kv_dict_entry *);
}

void kv_dict_set_resize(kv_dict *d, int policy) { d->resize = policy; }

/* Start a resize to the smallest power of two >= n (>= INITIAL_SIZE).
 * An empty dict gets its table directly; otherwise table[1] is created
 * and entries move over incrementally. */
static int resize_to(kv_dict *d, size_t n)
{
    if (kv_dict_is_rehashing(d) || n < d->used[0]) return -1;
    unsigned long sz = INITIAL_SIZE;
    while (sz < n) sz <<= 1;
    if (sz == d->size[0]) return -1;
    kv_dict_entry **t = xalloc(NULL, sz * sizeof *t);
    memset(t, 0, sz * sizeof *t);
    if (d->table[0] == NULL) {
        d->table[0] = t;
        d->size[0] = sz;
        return 0;
    }
    d->table[1] = t;
    d->size[1] = sz;
    d->used[1] = 0;
    d->rehashidx = 0;
    return 0;
}

int kv_dict_expand(kv_dict *d, size_t n) { return resize_to(d, n); }

static void expand_if_needed(kv_dict *d)
{
    if (kv_dict_is_rehashing(d)) return;
    if (d->size[0] == 0) {
        resize_to(d, INITIAL_SIZE);
        return;
    }
    if (d->used[0] >= d->size[0] &&
        (d->resize == KV_DICT_RESIZE_ENABLE || d->used[0] / d->size[0] > FORCE_RATIO))
        resize_to(d, d->used[0] + 1);
}

/* Shrink when sparse, so SCAN, RANDOMKEY and sampling stay cheap and the
 * bucket array gives memory back; hysteresis (grow at 100%, shrink below
 * 10%, new size leaves 50..100% fill) prevents flapping. */
static void shrink_if_needed(kv_dict *d)
{
    if (kv_dict_is_rehashing(d) || d->resize != KV_DICT_RESIZE_ENABLE) return;
    if (d->size[0] > INITIAL_SIZE && d->used[0] * 100 / d->size[0] < MIN_FILL_PCT)
        resize_to(d, d->used[0]);
}

static int do_rehash(kv_dict *d, int n)
{
    if (!kv_dict_is_rehashing(d)) return 0;
    long empty_visits = (long)n * 10;
    unsigned long mask1 = d->size[1] - 1;
    while (n-- > 0 && d->used[0] != 0) {
        while (d->table[0][d->rehashidx] == NULL) {
            d->rehashidx++;
            if (--empty_visits == 0) return 1;
        }
        kv_dict_entry *e = d->table[0][d->rehashidx];
        while (e) {
            kv_dict_entry *nx = e->next;
            unsigned long idx = entry_hash(e) & mask1;
            e->next = d->table[1][idx];
            d->table[1][idx] = e;
            d->used[0]--;
            d->used[1]++;
            e = nx;
        }
        d->table[0][d->rehashidx] = NULL;
        d->rehashidx++;
    }
    if (d->used[0] == 0) {
        free(d->table[0]);
        d->table[0] = d->table[1];
        d->size[0] = d->size[1];
        d->used[0] = d->used[1];
        d->table[1] = NULL;
        d->size[1] = d->used[1] = 0;
        d->rehashidx = -1;
        return 0;
    }
    return 1;
}

int kv_dict_rehash(kv_dict *d, int n)
{
    if (d->pause) return kv_dict_is_rehashing(d); /* an iterator is alive */
    return do_rehash(d, n);
}

static inline void rehash_step(kv_dict *d)
{
    if (d->pause == 0 && kv_dict_is_rehashing(d)) do_rehash(d, 1);
}

long kv_dict_rehash_ms(kv_dict *d, int ms)
{
    if (d->pause) return 0;
    uint64_t end = kv_time_mono_us() + (uint64_t)ms * 1000;
    long moved = 0;
    while (do_rehash(d, 100)) {
        moved += 100;
        if (kv_time_mono_us() >= end) break;
    }
    return moved;
}

/* Chain holding key hash h in table t, or NULL if that bucket cannot
 * hold it (table absent, or already moved during a rehash). */
static inline kv_dict_entry **bucket(kv_dict *d, int t, uint64_t h)
{
    if (d->size[t] == 0) return NULL;
    unsigned long idx = h & (d->size[t] - 1);
    if (t == 0 && kv_dict_is_rehashing(d) && (long)idx < d->rehashidx) return NULL;
    return &d->table[t][idx];
}

static kv_dict_entry *lookup(kv_dict *d, const void *key, size_t klen, uint64_t h)
{
    for (int t = 0; t <= 1; t++) {
        kv_dict_entry **b = bucket(d, t, h);
        if (b)
            for (kv_dict_entry *e = *b; e; e = e->next)
                if (key_eq(e, key, klen)) return e;
        if (!kv_dict_is_rehashing(d)) break;
    }
    return NULL;
}

kv_dict_entry *kv_dict_find(kv_dict *d, const void *key, size_t klen)
{
    if (kv_dict_size(d) == 0) return NULL;
    rehash_step(d);
    return lookup(d, key, klen, kv_dict_hash(key, klen));
}

static kv_dict_entry *add_new(kv_dict *d, const void *key, size_t klen, size_t extra,
                              uint64_t h)
{
    kv_dict_entry *e = xalloc(NULL, kv_dict_entry_alloc_size(klen, extra));
    unsigned char *p = e->hdr;
    if (klen < 0xFF) {
        *p++ = (unsigned char)klen;
    } else {
        uint32_t l = (uint32_t)klen;
        *p++ = 0xFF;
        memcpy(p, &l, 4);
        p += 4;
    }
    memcpy(p, key, klen);
    /* new keys go to the table being filled, so table[0] only drains */
    int t = kv_dict_is_rehashing(d) ? 1 : 0;
    kv_dict_entry **b = &d->table[t][h & (d->size[t] - 1)];
    e->next = *b;
    *b = e;
    d->used[t]++;
    return e;
}

kv_dict_entry *kv_dict_upsert(kv_dict *d, const void *key, size_t klen, size_t extra,
                              int *created)
{
    *created = 0;
    if (klen > KV_DICT_KEY_MAX) return NULL;
    rehash_step(d);
    expand_if_needed(d);
    uint64_t h = kv_dict_hash(key, klen);
    kv_dict_entry *e = lookup(d, key, klen, h);
    if (e) return e;
    *created = 1;
    return add_new(d, key, klen, extra, h);
}

kv_dict_entry *kv_dict_insert(kv_dict *d, const void *key, size_t klen, size_t extra)
{
    int created;
    kv_dict_entry *e = kv_dict_upsert(d, key, klen, extra, &created);
    return created ? e : NULL;
}

/* Find the link pointing at the entry matching key (by content) or e (by
 * address, when e != NULL). Returns the link and its table in *tp. */
static kv_dict_entry **find_link(kv_dict *d, const void *key, size_t klen,
                                 const kv_dict_entry *e, int *tp)
{
    uint64_t h = kv_dict_hash(key, klen);
    for (int t = 0; t <= 1; t++) {
        kv_dict_entry **l = bucket(d, t, h);
        for (; l && *l; l = &(*l)->next)
            if (e ? *l == e : key_eq(*l, key, klen)) {
                *tp = t;
                return l;
            }
        if (!kv_dict_is_rehashing(d)) break;
    }
    return NULL;
}

kv_dict_entry *kv_dict_unlink(kv_dict *d, const void *key, size_t klen)
{
    if (kv_dict_size(d) == 0) return NULL;
    rehash_step(d);
    int t;
    kv_dict_entry **l = find_link(d, key, klen, NULL, &t);
    if (!l) return NULL;
    kv_dict_entry *e = *l;
    *l = e->next;
    d->used[t]--;
    shrink_if_needed(d);
    return e;
}

int kv_dict_unlink_entry(kv_dict *d, kv_dict_entry *e)
{
    int t;
    kv_dict_entry **l = find_link(d, kv_dict_entry_key(e), kv_dict_entry_klen(e), e, &t);
    if (!l) return -1;
    *l = e->next;
    d->used[t]--;
    shrink_if_needed(d);
    return 0;
}

void kv_dict_entry_free(kv_dict_entry *e) { free(e); }

kv_dict_entry *kv_dict_entry_resize(kv_dict *d, kv_dict_entry *e, size_t new_extra)
{
    size_t klen = kv_dict_entry_klen(e);
    int t;
    kv_dict_entry **l = find_link(d, kv_dict_entry_key(e), klen, e, &t);
    if (!l) return NULL;
    kv_dict_entry *n = xalloc(e, kv_dict_entry_alloc_size(klen, new_extra));
    *l = n;
    return n;
}

/* ---- traversal ------------------------------------------------------- */

static inline unsigned long rev(unsigned long v)
{
    unsigned long s = 8 * sizeof(v), mask = ~0UL;
    while ((s >>= 1) > 0) {
        mask ^= (mask << s);
        v = ((v >> s) & mask) | ((v << s) & ~mask);
    }
    return v;
}

static void emit_chain(kv_dict_entry *e, kv_dict_scan_fn *fn, void *ud)
{
    while (e) {
        kv_dict_entry *n = e->next; /* fn may unlink e */
        fn(ud, e);
        e = n;
    }
}

unsigned long kv_dict_scan(kv_dict *d, unsigned long v, kv_dict_scan_fn *fn, void *ud)
{
    if (kv_dict_size(d) == 0) return 0;
    d->pause++; /* fn's unlinks must not move buckets under us */
    if (!kv_dict_is_rehashing(d)) {
        unsigned long m0 = d->size[0] - 1;
        emit_chain(d->table[0][v & m0], fn, ud);
        /* increment the reversed cursor over the masked bits */
        v |= ~m0;
        v = rev(v);
        v++;
        v = rev(v);
    } else {
        int t0 = 0, t1 = 1;
        if (d->size[0] > d->size[1]) t0 = 1, t1 = 0;
        unsigned long m0 = d->size[t0] - 1, m1 = d->size[t1] - 1;
        kv_dict_entry **tb0 = d->table[t0], **tb1 = d->table[t1];
        emit_chain(tb0[v & m0], fn, ud);
        /* then every bucket of the larger table that expands v & m0 */
        do {
            emit_chain(tb1[v & m1], fn, ud);
            v |= ~m1;
            v = rev(v);
            v++;
            v = rev(v);
        } while (v & (m0 ^ m1));
    }
    d->pause--;
    return v;
}

void kv_dict_iter_init(kv_dict_iter *it, kv_dict *d)
{
    it->d = d;
    it->index = 0;
    it->table = 0;
    it->next = NULL;
    d->pause++;
}

kv_dict_entry *kv_dict_iter_next(kv_dict_iter *it)
{
    kv_dict *d = it->d;
    for (;;) {
        if (it->next) {
            kv_dict_entry *e = it->next;
            it->next = e->next; /* saved now: the caller may free e */
            return e;
        }
        if (it->index >= d->size[it->table]) {
            /* table[1] exists only while rehashing (which a paused dict
             * can start, via an insert or delete, but not advance) */
            if (it->table == 0 && d->size[1]) {
                it->table = 1;
                it->index = 0;
                continue;
            }
            return NULL;
        }
        it->next = d->table[it->table][it->index++];
    }
}

void kv_dict_iter_done(kv_dict_iter *it) { it->d->pause--; }

unsigned kv_dict_sample(kv_dict *d, kv_dict_entry **out, unsigned n)
{
    size_t size = kv_dict_size(d);
    if (n > size) n = (unsigned)size;
    if (n == 0) return 0;
    for (unsigned j = 0; j < n && kv_dict_is_rehashing(d); j++) rehash_step(d);
    int tables = kv_dict_is_rehashing(d) ? 2 : 1;
    unsigned long maxmask = d->size[0] - 1;
    if (tables > 1 && d->size[1] - 1 > maxmask) maxmask = d->size[1] - 1;
    unsigned long i = rng_next(d) & maxmask;
    unsigned long maxsteps = (unsigned long)n * 10, emptylen = 0;
    unsigned stored = 0;
    while (stored < n && maxsteps--) {
        for (int t = 0; t < tables; t++) {
            /* buckets of table[0] below rehashidx were moved: skip them */
            if (tables == 2 && t == 0 && (long)i < d->rehashidx) {
                if (i >= d->size[1]) i = (unsigned long)d->rehashidx;
                else continue;
            }
            if (i >= d->size[t]) continue;
            kv_dict_entry *e = d->table[t][i];
            if (!e) {
                /* a run of empty buckets: jump elsewhere */
                if (++emptylen >= 5 && emptylen > n) {
                    i = rng_next(d) & maxmask;
                    emptylen = 0;
                }
            } else {
                emptylen = 0;
                for (; e; e = e->next) {
                    out[stored++] = e;
                    if (stored == n) return stored;
                }
            }
        }
        i = (i + 1) & maxmask;
    }
    return stored;
}

/* Random non-empty bucket, then a random element of its chain. */
static kv_dict_entry *random_by_bucket(kv_dict *d)
{
    kv_dict_entry *e;
    if (kv_dict_is_rehashing(d)) {
        unsigned long s0 = d->size[0], span = s0 + d->size[1] - (unsigned long)d->rehashidx;
        do {
            unsigned long h = (unsigned long)d->rehashidx + rng_next(d) % span;
            e = h >= s0 ? d->table[1][h - s0] : d->table[0][h];
        } while (!e);
    } else {
        unsigned long m = d->size[0] - 1;
        do e = d->table[0][rng_next(d) & m];
        while (!e);
    }
    unsigned long len = 0;
    for (kv_dict_entry *x = e; x; x = x->next) len++;
    for (unsigned long k = rng_next(d) % len; k; k--) e = e->next;
    return e;
}

kv_dict_entry *kv_dict_random(kv_dict *d)
{
    if (kv_dict_size(d) == 0) return NULL;
    rehash_step(d);
    kv_dict_entry *s[FAIR_SAMPLE];
    unsigned n = kv_dict_sample(d, s, FAIR_SAMPLE);
    if (n == 0) return random_by_bucket(d);
    return s[rng_next(d) % n];
}
