/*
 * XXH64 (see lib/hash.h), following the xxHash specification
 * (doc/xxhash_spec.md, "XXH64 Algorithm Description"), written for speed
 * under QEMU's TCG, which turns each guest instruction into several host
 * ones and makes every guest load cost about as much as the rest together.
 */
#include "lib/hash.h"

#include "lib/hot_path.h" // HOT_PATH

/* the specification's five 64-bit primes */
#define PRIME1 0x9e3779b185ebca87ull
#define PRIME2 0xc2b2ae3d27d4eb4full
#define PRIME3 0x165667b19e3779f9ull
#define PRIME4 0x85ebca77c2b2ae63ull
#define PRIME5 0x27d4eb2f165667c5ull

#define STRIPE_BYTES 32 /* one word for each of the four lanes */

/* Ties values to registers at this point of the code, emitting nothing: it
 * keeps the optimizer from moving work across it (see mix_stripes). */
#define KEEP(a, b, c, d) __asm__("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d))

struct lanes {
    uint64_t v1, v2, v3, v4;
};

static inline uint64_t rotate_left(uint64_t x, unsigned bits)
{
    return (x << bits) | (x >> (64 - bits));
}

/* Little-endian loads at any alignment: one plain load on x86. */
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t word;

    __builtin_memcpy(&word, p, sizeof(word));
    return word;
}

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t word;

    __builtin_memcpy(&word, p, sizeof(word));
    return word;
}

/* One word into one lane: multiply, rotate, multiply. A multiply carries
 * changes only upward; the rotation brings the top bits down, where the
 * second multiply spreads them over the whole lane again. */
static inline uint64_t lane_round(uint64_t lane, uint64_t word)
{
    lane += word * PRIME2;
    lane = rotate_left(lane, 31);
    return lane * PRIME1;
}

static inline struct lanes lanes_start(uint64_t seed)
{
    return (struct lanes){ seed + PRIME1 + PRIME2, seed + PRIME2, seed, seed - PRIME1 };
}

/* The four loads of a stripe first, then its arithmetic. Loads scattered
 * between the multiplies took about 1.5 times as long per page under TCG
 * (measured); the likely reason is that a guest load can fault, so QEMU
 * brings the guest's registers and flags up to date before each one. */
#define STRIPE(l, p)                                                        \
    do {                                                                    \
        uint64_t w1 = load64(p), w2 = load64((p) + 8), w3 = load64((p) + 16), \
                 w4 = load64((p) + 24);                                     \
        KEEP(w1, w2, w3, w4);                                               \
        l.v1 = lane_round(l.v1, w1);                                        \
        l.v2 = lane_round(l.v2, w2);                                        \
        l.v3 = lane_round(l.v3, w3);                                        \
        l.v4 = lane_round(l.v4, w4);                                        \
        KEEP(l.v1, l.v2, l.v3, l.v4);                                       \
    } while (0)

/* `stripes` stripes from p into the lanes, two per iteration. The four
 * lanes never depend on one another, so the host CPU overlaps their
 * multiplies. Inlined: a call and its return cost a page about a tenth of
 * its time under TCG (a return is a lookup of the next translated block). */
static inline __attribute__((always_inline)) void mix_stripes(struct lanes *lanes, const uint8_t *p,
                                                               size_t stripes)
{
    struct lanes l = *lanes; /* in registers: p could point at *lanes */

    for (; stripes >= 2; stripes -= 2, p += 2 * STRIPE_BYTES) {
        STRIPE(l, p);
        STRIPE(l, p + STRIPE_BYTES);
    }
    if (stripes)
        STRIPE(l, p);
    *lanes = l;
}

static inline uint64_t merge_lane(uint64_t hash, uint64_t lane)
{
    hash ^= lane_round(0, lane);
    return hash * PRIME1 + PRIME4;
}

static inline uint64_t merge_lanes(const struct lanes *l)
{
    uint64_t hash = rotate_left(l->v1, 1) + rotate_left(l->v2, 7) + rotate_left(l->v3, 12) +
                    rotate_left(l->v4, 18);

    hash = merge_lane(hash, l->v1);
    hash = merge_lane(hash, l->v2);
    hash = merge_lane(hash, l->v3);
    return merge_lane(hash, l->v4);
}

/* The last 0-31 bytes: words, then half a word, then bytes (never for a
 * whole page, so not inlined). */
__attribute__((noinline)) static uint64_t mix_tail(uint64_t hash, const uint8_t *p, size_t left)
{
    for (; left >= 8; p += 8, left -= 8) {
        hash ^= lane_round(0, load64(p));
        hash = rotate_left(hash, 27) * PRIME1 + PRIME4;
    }
    if (left >= 4) {
        hash ^= (uint64_t)load32(p) * PRIME1;
        hash = rotate_left(hash, 23) * PRIME2 + PRIME3;
        p += 4;
        left -= 4;
    }
    for (; left; p++, left--) {
        hash ^= *p * PRIME5;
        hash = rotate_left(hash, 11) * PRIME1;
    }
    return hash;
}

/* Everything after the stripes: the merged lanes (seed + PRIME5 for input
 * shorter than a stripe), the length, the tail, and the final mix, which
 * makes each bit of the state reach every output bit. */
static inline uint64_t finish(uint64_t hash, const uint8_t *tail, size_t left, size_t bytes)
{
    hash += (uint64_t)bytes;
    if (left)
        hash = mix_tail(hash, tail, left);
    hash ^= hash >> 33;
    hash *= PRIME2;
    hash ^= hash >> 29;
    hash *= PRIME3;
    hash ^= hash >> 32;
    return hash;
}

/* On the hot path (lib/hot_path.h): TCG chains translated blocks only
 * within a guest page, and this loop across a page boundary ran about 6
 * times slower (measured). */
HOT_PATH uint64_t hash64(const void *data, size_t bytes, uint64_t seed)
{
    const uint8_t *p = data;
    size_t stripes = bytes / STRIPE_BYTES, left = bytes % STRIPE_BYTES;

    if (!stripes)
        return finish(seed + PRIME5, p, left, bytes);
    struct lanes l = lanes_start(seed);
    mix_stripes(&l, p, stripes);
    return finish(merge_lanes(&l), p + stripes * STRIPE_BYTES, left, bytes);
}
