/* Host unit tests for lib/hash.c: known answers of the reference XXH64, every length and
 * alignment, the zero test, the damage the image checksum must catch (the pair flip that
 * the old xor-multiply checksum missed, random flips of 1 to 8 bits and swapped words), and
 * avalanche statistics. TORPOR_HASH_TRIALS=N runs N random damage trials instead of the
 * default (docs/image-format.md records a long run). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hash.h"
#include "tests/unit/test_random.h" // rng_next, fill_random

#define PAGE 4096
#define PAGE_WORDS (PAGE / 8)
#define DEFAULT_TRIALS 300000 /* about 4 s under ASan; a long run sets TORPOR_HASH_TRIALS */

static void *checked_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);

    assert_non_null(p);
    return p;
}

static void flip_bit(void *buffer, size_t bit)
{
    ((uint8_t *)buffer)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* The image checksum of format version 1 (xor, then multiply): here only to show that the
 * damage below is what it missed. */
static uint64_t version1_checksum(const uint64_t *words, size_t count)
{
    uint64_t sum = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < count; i++)
        sum = (sum ^ words[i]) * 0x100000001b3ull;
    return sum ^ (count * 8);
}

/* ---- known answers ----------------------------------------------------------- */

/* The bytes (7i + 3) mod 256, i from 0; answers of the reference library (libxxhash 0.8.1,
 * XXH64) for seed 0 and for TEST_SEED. */
#define TEST_SEED 0x746f72706f722d32ull
static const struct {
    size_t bytes;
    uint64_t seed0, seeded;
} known[] = {
    { 0, 0xef46db3751d8e999ull, 0x19d4ccdd27fc55a4ull },
    { 1, 0x1f25c8d0bc1f4bb6ull, 0x9a84fe0d772f6fc2ull },
    { 3, 0x31d2363f52e564c9ull, 0x3537531ee99342a7ull },
    { 4, 0x9bb64b7d66ee9fdaull, 0x5a5e6bc663856530ull },
    { 7, 0x9a7b149959ce60d8ull, 0xd8d176ee89b43815ull },
    { 8, 0xdab99d95c6f90092ull, 0x5f402c87a33a1dd4ull },
    { 12, 0xd52e407833af5133ull, 0x79fd58bb21a85475ull },
    { 31, 0xa2aa5f33cc4a6119ull, 0x67fee490f92c1786ull },
    { 32, 0x23c3c17ef790fd97ull, 0x62c38274b5650154ull },
    { 33, 0x50a7cfc7ba588784ull, 0x481ffd1ae02e3ca3ull },
    { 63, 0x5e3e54b431c7493cull, 0xbb2dcc207d2ae247ull },
    { 64, 0x0eb64b3ef6eeb01full, 0x77b21e326046b964ull },
    { 65, 0xa383b724b2bd12f1ull, 0x9b36eea4dfe5a90cull },
    { 100, 0xa61f8d4c170fe531ull, 0x892137bba14fc602ull },
    { 4095, 0x2517d5eee2c14c64ull, 0xf2f5cd7142f843f7ull },
    { 4096, 0x796398cd432797ccull, 0xb1200115f0f2f724ull },
};

static void test_known_answers_at_every_alignment(void **state)
{
    (void)state;
    uint8_t pattern[PAGE];
    uint8_t *buffer = checked_malloc(PAGE + 8);

    for (size_t i = 0; i < PAGE; i++)
        pattern[i] = (uint8_t)(7 * i + 3);
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        for (size_t offset = 0; offset < 8; offset++) {
            memcpy(buffer + offset, pattern, known[k].bytes);
            assert_int_equal(hash64(buffer + offset, known[k].bytes, 0), known[k].seed0);
            assert_int_equal(hash64(buffer + offset, known[k].bytes, TEST_SEED), known[k].seeded);
        }
    }
    /* the reference's answers for two classic inputs */
    assert_int_equal(hash64("abc", 3, 0), 0x44bc2cf5ad770999ull);
    memset(buffer, 0, PAGE);
    assert_int_equal(hash64(buffer, PAGE, 0), 0xac869b6f32d8bbdbull);
    free(buffer);
}

/* Reads exactly its bytes: each length in its own heap block, so ASan reports a read past
 * the end; every length up to three pages, every tail path. */
static void test_every_length_reads_only_its_bytes(void **state)
{
    (void)state;
    uint64_t rng = 1;
    uint64_t previous = 0;

    for (size_t bytes = 0; bytes <= 3 * PAGE; bytes += bytes < 300 ? 1 : 61) {
        uint8_t *data = checked_malloc(bytes);
        fill_random(data, bytes, &rng);
        uint64_t h = hash64(data, bytes, 0);
        assert_int_not_equal(h, previous);
        assert_int_not_equal(hash64(data, bytes, 1), h); /* the seed matters */
        previous = h;
        free(data);
    }
}

/* ---- damage ---------------------------------------------------------------------- */

static void test_pair_flip_at_bit_63_is_caught(void **state)
{
    (void)state;
    uint64_t page[PAGE_WORDS];
    uint64_t rng = 63;

    for (int pattern = 0; pattern < 3; pattern++) {
        if (pattern == 0)
            memset(page, 0, sizeof(page));
        else
            fill_random(page, sizeof(page), &rng);
        uint64_t h = hash64(page, PAGE, 0), old = version1_checksum(page, PAGE_WORDS);
        page[0] ^= 1ull << 63;
        page[PAGE_WORDS - 1] ^= 1ull << 63;
        assert_int_not_equal(hash64(page, PAGE, 0), h);
        /* what version 1 missed: the top bit of a product depends only on the top bits */
        assert_int_equal(version1_checksum(page, PAGE_WORDS), old);
        /* the same flip in any two words */
        for (size_t i = 0; i < PAGE_WORDS; i += 37) {
            for (size_t j = i + 1; j < PAGE_WORDS; j += 53) {
                uint64_t before = hash64(page, PAGE, 0);
                page[i] ^= 1ull << 63;
                page[j] ^= 1ull << 63;
                assert_int_not_equal(hash64(page, PAGE, 0), before);
                page[i] ^= 1ull << 63;
                page[j] ^= 1ull << 63;
            }
        }
    }
}

static unsigned long trial_count(void)
{
    const char *text = getenv("TORPOR_HASH_TRIALS");
    unsigned long trials = text ? strtoul(text, NULL, 10) : 0;

    return trials ? trials : DEFAULT_TRIALS;
}

/* Random damage to random pages: 1 to 8 distinct bits flipped anywhere (7 trials in 8), or
 * two words of different value swapped; every one must change the hash. */
static void test_random_damage_is_always_caught(void **state)
{
    (void)state;
    uint64_t page[PAGE_WORDS];
    uint64_t rng = 0x5eed;
    unsigned long trials = trial_count(), flips = 0, swaps = 0;
    unsigned long by_bits[9] = { 0 };

    fill_random(page, sizeof(page), &rng);
    for (unsigned long t = 0; t < trials; t++) {
        if (t % 4096 == 0) {
            fill_random(page, sizeof(page), &rng);
            if (t % 8192 == 0) /* pages of few distinct words too, as real memory has */
                for (size_t i = 0; i < PAGE_WORDS; i++)
                    page[i] &= 0x0101010101010101ull * (rng_next(&rng) & 3);
        }
        uint64_t h = hash64(page, PAGE, 0), r = rng_next(&rng);
        if (r % 8 != 7) {
            unsigned count = 1 + (unsigned)(r >> 3) % 8;
            size_t bits[8];
            for (unsigned i = 0; i < count; i++) {
                size_t bit;
                int repeated;
                do { /* distinct bits: a bit flipped twice is no damage */
                    bit = rng_next(&rng) % (PAGE * 8);
                    repeated = 0;
                    for (unsigned k = 0; k < i; k++)
                        repeated |= bits[k] == bit;
                } while (repeated);
                bits[i] = bit;
                flip_bit(page, bit);
            }
            if (hash64(page, PAGE, 0) == h)
                fail_msg("%u flipped bits left the hash unchanged (trial %lu)", count, t);
            for (unsigned i = 0; i < count; i++)
                flip_bit(page, bits[i]);
            flips++;
            by_bits[count]++;
        } else {
            size_t i = (r >> 3) % PAGE_WORDS, j = (r >> 20) % PAGE_WORDS;
            if (page[i] == page[j])
                continue;
            uint64_t w = page[i];
            page[i] = page[j];
            page[j] = w;
            if (hash64(page, PAGE, 0) == h)
                fail_msg("swapping words %zu and %zu left the hash unchanged (trial %lu)", i, j, t);
            page[j] = page[i];
            page[i] = w;
            swaps++;
        }
        assert_int_equal(hash64(page, PAGE, 0), h); /* restored */
    }
    printf("hash: %lu random damage trials caught: %lu bit-flip patterns (", flips + swaps, flips);
    for (unsigned b = 1; b <= 8; b++)
        printf("%s%u bits: %lu", b > 1 ? ", " : "", b, by_bits[b]);
    printf("), %lu word swaps\n", swaps);
    assert_true(flips + swaps >= trials - trials / 16);
}

/* ---- avalanche ------------------------------------------------------------------- */

/* For inputs of `bytes` bytes: each listed input bit, flipped in `samples` random inputs,
 * must flip each output bit with a frequency within `tolerance` of 1/2. */
static void check_avalanche(size_t bytes, const size_t *bits, size_t bit_count, unsigned samples,
                            double tolerance)
{
    uint8_t *data = checked_malloc(bytes);
    unsigned *flipped = calloc(bit_count * 64, sizeof(unsigned));
    uint64_t rng = 0xa1a1 + bytes;
    double worst = 0;

    assert_non_null(flipped);
    for (unsigned s = 0; s < samples; s++) {
        fill_random(data, bytes, &rng);
        uint64_t seed = s % 2 ? rng_next(&rng) : 0, h = hash64(data, bytes, seed);
        for (size_t b = 0; b < bit_count; b++) {
            flip_bit(data, bits[b]);
            uint64_t changed = hash64(data, bytes, seed) ^ h;
            flip_bit(data, bits[b]);
            for (unsigned o = 0; o < 64; o++)
                flipped[b * 64 + o] += (changed >> o) & 1;
        }
    }
    for (size_t k = 0; k < bit_count * 64; k++) {
        double p = (double)flipped[k] / samples, off = p > 0.5 ? p - 0.5 : 0.5 - p;
        if (off > worst)
            worst = off;
        if (off > tolerance)
            fail_msg("%zu-byte input: bit %zu flips output bit %zu with frequency %.3f", bytes,
                     bits[k / 64], k % 64, p);
    }
    printf("hash: avalanche of %zu-byte inputs: %zu input bits x 64 output bits, %u samples, "
           "largest distance from 1/2: %.3f\n", bytes, bit_count, samples, worst);
    free(flipped);
    free(data);
}

static void test_avalanche(void **state)
{
    (void)state;
    size_t bits[640], count = 0;

    /* short inputs: every bit */
    for (size_t b = 0; b < 64; b++)
        bits[count++] = b;
    check_avalanche(8, bits, count, 2000, 0.1);
    for (size_t b = 64; b < 40 * 8; b++)
        bits[count++] = b;
    check_avalanche(40, bits, count, 1200, 0.1);
    /* a page: every bit of the first four words (one per lane), two in the middle and the
     * last four */
    count = 0;
    const size_t words[] = { 0, 1, 2, 3, 255, 256, 508, 509, 510, 511 };
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
        for (size_t b = 0; b < 64; b++)
            bits[count++] = words[w] * 64 + b;
    check_avalanche(PAGE, bits, count, 1200, 0.1);
}

/* Every single input bit of a page reaches the output: each flip, in each of four pages,
 * changes many output bits (never a few, as a hash that carries only upward does); and for
 * every 7th input bit, every output bit changes in at least one of 32 pages. */
static void test_every_page_bit_reaches_every_output_bit(void **state)
{
    (void)state;
    enum { PAGES = 32, COUNTED = 4 };
    uint64_t (*pages)[PAGE_WORDS] = checked_malloc(PAGES * PAGE);
    uint64_t sums[PAGES], rng = 77;
    unsigned fewest = 64, most = 0;

    for (int p = 0; p < PAGES; p++) {
        fill_random(pages[p], PAGE, &rng);
        sums[p] = hash64(pages[p], PAGE, 0);
    }
    for (size_t bit = 0; bit < PAGE * 8; bit++) {
        uint64_t seen = 0;
        int page_count = bit % 7 ? COUNTED : PAGES;
        for (int p = 0; p < page_count; p++) {
            flip_bit(pages[p], bit);
            uint64_t changed = hash64(pages[p], PAGE, 0) ^ sums[p];
            flip_bit(pages[p], bit);
            if (p < COUNTED) {
                unsigned n = (unsigned)__builtin_popcountll(changed);
                fewest = n < fewest ? n : fewest;
                most = n > most ? n : most;
            }
            seen |= changed;
        }
        if (page_count == PAGES && seen != ~0ull)
            fail_msg("flipping bit %zu never changed output bits %016llx", bit,
                     (unsigned long long)~seen);
    }
    printf("hash: each of the %d bits of a page flips between %u and %u of the 64 output bits\n",
           PAGE * 8, fewest, most);
    assert_true(fewest >= 12 && most <= 52);
    free(pages);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers_at_every_alignment),
        cmocka_unit_test(test_every_length_reads_only_its_bytes),
        cmocka_unit_test(test_pair_flip_at_bit_63_is_caught),
        cmocka_unit_test(test_random_damage_is_always_caught),
        cmocka_unit_test(test_avalanche),
        cmocka_unit_test(test_every_page_bit_reaches_every_output_bit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
