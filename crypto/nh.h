/*
 * NH, the universal hash of UMAC (Black, Halevi, Krawczyk, Krovetz and
 * Rogaway, 1999), over 64-bit words as VMAC uses it, for exactly one 4 KiB
 * page: the fast first layer of the page MAC (crypto/page_mac.h,
 * docs/security.md "The page MAC").
 */
#ifndef CRYPTO_NH_H
#define CRYPTO_NH_H

#include <stdint.h>

#define NH_PAGE_BYTES 4096

/* Passes with Toeplitz-shifted keys: 1 or 2. Each pass is 2^-64-universal,
 * so two give 2^-128, at about 1.3 times the cost of one under TCG
 * (docs/security.md weighs it). Part of the image format: a change makes
 * every tag different (regenerate tests/unit/page_mac_reference.py's
 * answers with the same value). */
#ifndef NH_PASSES
#define NH_PASSES 1
#endif
#if NH_PASSES != 1 && NH_PASSES != 2
#error "NH_PASSES must be 1 or 2"
#endif

/* one 64-bit key word per message word, and one more pair per extra pass */
#define NH_KEY_WORDS (NH_PAGE_BYTES / 8 + 2 * (NH_PASSES - 1))
#define NH_OUTPUT_BYTES (16 * NH_PASSES)

/* For the page's words m[0..511] (little-endian, any alignment) and each
 * pass j, with every sum of two words taken mod 2^64 and the total mod
 * 2^128:
 *
 *     NH_j = sum over i < 256 of (m[2i] + key[2i + 2j]) * (m[2i + 1] + key[2i + 1 + 2j])
 *
 * out gets NH_0 (then NH_1), 16 bytes little-endian each. For two
 * different pages and a uniformly random key, the outputs are equal with
 * probability at most 2^(-64 NH_PASSES). Only whole pages: the bound holds
 * for inputs of equal length. */
void nh_page(const uint64_t key[NH_KEY_WORDS], const void *page, uint8_t out[NH_OUTPUT_BYTES]);

#endif
