/* Redis's CRC-64/Jones (see crc64.h), slicing-by-8. */
#include <pthread.h>
#include <string.h>

#include "core/crc64.h"

/* 0xad93d23594c935a9 with its bits reversed: the reflected form lets the
 * register shift right, so input bytes need no bit reversal. */
#define KV_CRC64_POLY_REFLECTED 0x95ac9329ac4bc9b5ULL

static uint64_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint64_t crc = b;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ ((crc & 1) ? KV_CRC64_POLY_REFLECTED : 0);
        crc_table[0][b] = crc;
    }
    /* table[k][b]: the CRC of byte b followed by k zero bytes. */
    for (unsigned b = 0; b < 256; b++) {
        uint64_t crc = crc_table[0][b];
        for (int k = 1; k < 8; k++) {
            crc = crc_table[0][crc & 0xff] ^ (crc >> 8);
            crc_table[k][b] = crc;
        }
    }
}

uint64_t kv_crc64(uint64_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    pthread_once(&crc_once, crc_init);
    /* Eight bytes per step; the word is read little-endian explicitly so
     * the result does not depend on the host's byte order. */
    while (n >= 8) {
        uint64_t w = (uint64_t) s[0] | (uint64_t) s[1] << 8 | (uint64_t) s[2] << 16 |
                     (uint64_t) s[3] << 24 | (uint64_t) s[4] << 32 | (uint64_t) s[5] << 40 |
                     (uint64_t) s[6] << 48 | (uint64_t) s[7] << 56;
        crc ^= w;
        crc = crc_table[7][crc & 0xff] ^ crc_table[6][(crc >> 8) & 0xff] ^
              crc_table[5][(crc >> 16) & 0xff] ^ crc_table[4][(crc >> 24) & 0xff] ^
              crc_table[3][(crc >> 32) & 0xff] ^ crc_table[2][(crc >> 40) & 0xff] ^
              crc_table[1][(crc >> 48) & 0xff] ^ crc_table[0][crc >> 56];
        s += 8;
        n -= 8;
    }
    while (n--) crc = crc_table[0][(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return crc;
}
