/*
 * NH, the universal hash of UMAC (Black, Halevi, Krawczyk, Krovetz and
 * Rogaway, 1999) over 64-bit words, with two Toeplitz-shifted passes, for
 * exactly one 4 KiB page: the fast first layer of the page MAC
 * (crypto/page_mac.h, docs/security.md "The page MAC").
 */
#ifndef CRYPTO_NH_H
#define CRYPTO_NH_H

#include <stdint.h>

#define NH_PAGE_BYTES 4096
#define NH_PASSES 2
/* one 64-bit key word per message word, and one more pair per extra pass */
#define NH_KEY_WORDS (NH_PAGE_BYTES / 8 + 2 * (NH_PASSES - 1))
#define NH_OUTPUT_BYTES (16 * NH_PASSES)

/* For the page's words m[0..511] (little-endian, any alignment) and pass
 * j = 0, 1, with all sums of words mod 2^64 and the total mod 2^128:
 *
 *     NH_j = sum over i < 256 of (m[2i] + key[2i + 2j]) * (m[2i + 1] + key[2i + 1 + 2j])
 *
 * out gets NH_0 then NH_1, each 16 bytes little-endian. For two different
 * pages and a uniformly random key, all passes collide with probability
 * at most 2^-128 (2^-64 per pass). Only pages are hashed: the bound holds
 * for inputs of equal length, and every input here is 4096 bytes. */
void nh_page(const uint64_t key[NH_KEY_WORDS], const void *page, uint8_t out[NH_OUTPUT_BYTES]);

#endif
