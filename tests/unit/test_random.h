/*
 * The unit tests' shared pseudo-random numbers: splitmix64 from a fixed
 * seed, so every failure repeats.
 */
#ifndef TESTS_UNIT_TEST_RANDOM_H
#define TESTS_UNIT_TEST_RANDOM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_below(uint64_t *state, uint64_t bound)
{
    return rng_next(state) % bound;
}

/* Fills a buffer with rng_next's words, little-endian, the last one cut
 * short (page_mac_reference.py's splitmix_bytes makes the same bytes). */
static inline void fill_random(void *buffer, size_t bytes, uint64_t *state)
{
    uint8_t *p = buffer;

    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t word = rng_next(state);
        memcpy(p + i, &word, bytes - i < 8 ? bytes - i : 8);
    }
}

#endif
