/*
 * NH over a page (see crypto/nh.h), written from the definition in the
 * UMAC paper with w = 64: one 64 x 64 -> 128-bit multiply per 16 bytes per
 * pass. Written for QEMU's TCG, like lib/hash.c: each pair's loads grouped
 * before its arithmetic, and the loop in one 4 KiB code page. Under TCG a
 * guest load costs about as much as the rest of a pair's work, and NH
 * loads a key word for every page word: that, not the multiplies, is what
 * makes it slower than the unkeyed lib/hash.c.
 */
#include "crypto/nh.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian loads, as on x86");

typedef unsigned __int128 uint128_t;

/* Ties values to registers at this point, emitting nothing: it keeps the
 * compiler from moving the loads in among the multiplies. */
#define KEEP(a, b, c, d) __asm__("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d))

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t word;

    __builtin_memcpy(&word, p, sizeof(word));
    return word;
}

static inline void store128(uint8_t *p, uint128_t value)
{
    uint64_t low = (uint64_t)value, high = (uint64_t)(value >> 64);

    __builtin_memcpy(p, &low, sizeof(low));
    __builtin_memcpy(p + 8, &high, sizeof(high));
}

/* Aligned so that the loop (the function is under 1 KiB) never straddles
 * a 4 KiB page, which TCG runs several times slower (see lib/hash.c). */
__attribute__((aligned(1024))) void nh_page(const uint64_t key[NH_KEY_WORDS], const void *page,
                                            uint8_t out[NH_OUTPUT_BYTES])
{
    const uint8_t *p = page;
    uint128_t sum0 = 0;

#if NH_PASSES == 1
    /* A cache line of the page per iteration, its eight loads first: on
     * pages the host has not cached (the reader's, just written by the
     * disk) the host overlaps their misses. Measured in the guest over 256
     * MiB: 1.34 us a page, against 1.68 for one pair per iteration, which
     * is as fast only on cached pages (docs/security.md). */
    const uint64_t *k = key;
    for (const uint8_t *end = p + NH_PAGE_BYTES; p != end; p += 64, k += 8) {
        uint64_t m0 = load64(p), m1 = load64(p + 8), m2 = load64(p + 16), m3 = load64(p + 24);
        uint64_t m4 = load64(p + 32), m5 = load64(p + 40), m6 = load64(p + 48), m7 = load64(p + 56);
        KEEP(m0, m1, m2, m3);
        KEEP(m4, m5, m6, m7);
        sum0 += (uint128_t)(m0 + k[0]) * (m1 + k[1]);
        sum0 += (uint128_t)(m2 + k[2]) * (m3 + k[3]);
        sum0 += (uint128_t)(m4 + k[4]) * (m5 + k[5]);
        sum0 += (uint128_t)(m6 + k[6]) * (m7 + k[7]);
    }
    store128(out, sum0);
#else
    /* Pass 1 at pair i takes the key words pass 0 takes at pair i + 1: each
     * iteration loads two new key words (k2, k3) and hands them on as the
     * next pair's k0, k1. */
    uint128_t sum1 = 0;
    const uint64_t *k = key + 2;
    uint64_t k0 = key[0], k1 = key[1];
    for (const uint8_t *end = p + NH_PAGE_BYTES; p != end; p += 16, k += 2) {
        uint64_t m0 = load64(p), m1 = load64(p + 8), k2 = k[0], k3 = k[1];
        KEEP(m0, m1, k2, k3);
        sum0 += (uint128_t)(m0 + k0) * (m1 + k1);
        sum1 += (uint128_t)(m0 + k2) * (m1 + k3);
        k0 = k2;
        k1 = k3;
    }
    store128(out, sum0);
    store128(out + 16, sum1);
#endif
}
