/*
 * The hibernation image's optional encryption: ChaCha20 over each saved
 * page with a key derived from the same secret and nonce as the MAC's, and
 * the frame number as the nonce, so no two pages of an image share a
 * keystream. docs/security.md, "The page MAC", says how it fits the MAC.
 */
#ifndef CRYPTO_PAGE_CIPHER_H
#define CRYPTO_PAGE_CIPHER_H

#include <stdint.h>

#include "crypto/page_mac.h" // PAGE_MAC_SECRET_BYTES, PAGE_MAC_NONCE_BYTES, PAGE_MAC_PAGE_BYTES

struct page_cipher_key {
    uint8_t key[32]; /* secret: erase it (page_cipher_key_erase) once done */
};

/* The key: the second 32 bytes of the ChaCha20 block of `secret` whose
 * 16-byte input is `nonce` (the first 32 are the MAC's, page_mac_key_init). */
void page_cipher_key_init(struct page_cipher_key *key, const uint8_t secret[PAGE_MAC_SECRET_BYTES],
                          const uint8_t nonce[PAGE_MAC_NONCE_BYTES]);
void page_cipher_key_erase(struct page_cipher_key *key);

/* out = the 4096 bytes at in XOR ChaCha20(key, counter 0..63, nonce = frame
 * as 8 bytes LE then 4 zeros): encrypts and decrypts alike. in and out may
 * be the same page (in place) but must not overlap otherwise; any
 * alignment. */
void page_cipher_xor(const struct page_cipher_key *key, uint64_t frame, const void *in, void *out);

#endif
