/*
 * NH over a page (see crypto/nh.h), written from the definition in the
 * UMAC paper with w = 64 (as VMAC does): one 64 x 64 -> 128-bit multiply
 * per 16 bytes per pass. Written for QEMU's TCG, like lib/hash.c: loads
 * grouped before the arithmetic, the key words each loaded once for both
 * passes, the two passes apart so the host overlaps their multiplies, and
 * the loop in one 4 KiB code page.
 */
#include "crypto/nh.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian loads, as on x86");
_Static_assert(NH_PASSES == 2, "the loop below is written for two passes");

typedef unsigned __int128 uint128_t;

#define PAIRS (NH_PAGE_BYTES / 16)

/* Ties values to registers at this point, emitting nothing: it keeps the
 * compiler from moving the loads in among the multiplies. */
#define KEEP(a, b, c, d) __asm__("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d))

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t word;

    __builtin_memcpy(&word, p, sizeof(word));
    return word;
}

static inline void store64(uint8_t *p, uint64_t word)
{
    __builtin_memcpy(p, &word, sizeof(word));
}

/* Pass j at pair i uses key[2i + 2j] and key[2i + 2j + 1]: pass 1 at pair i
 * takes the key words pass 0 takes at pair i + 1. So each iteration loads
 * two new key words (k2, k3) and hands them on as the next pair's k0, k1.
 * Aligned so that the loop (the function is under 1 KiB) never straddles
 * a 4 KiB page, which TCG runs several times slower. */
__attribute__((aligned(1024))) void nh_page(const uint64_t key[NH_KEY_WORDS], const void *page,
                                            uint8_t out[NH_OUTPUT_BYTES])
{
    const uint8_t *p = page;
    uint64_t k0 = key[0], k1 = key[1];
    uint128_t sum0 = 0, sum1 = 0;

    for (int i = 0; i < PAIRS; i++, p += 16) {
        uint64_t m0 = load64(p), m1 = load64(p + 8);
        uint64_t k2 = key[2 * i + 2], k3 = key[2 * i + 3];
        KEEP(m0, m1, k2, k3);
        sum0 += (uint128_t)(m0 + k0) * (m1 + k1);
        sum1 += (uint128_t)(m0 + k2) * (m1 + k3);
        k0 = k2;
        k1 = k3;
    }
    store64(out, (uint64_t)sum0);
    store64(out + 8, (uint64_t)(sum0 >> 64));
    store64(out + 16, (uint64_t)sum1);
    store64(out + 24, (uint64_t)(sum1 >> 64));
}
