/*
 * The Poly1305 authenticator of RFC 8439 (section 2.5) and its one-time
 * key from ChaCha20 (section 2.6). Incremental (init, update, final) or in
 * one call; any length and any alignment.
 */
#ifndef CRYPTO_POLY1305_H
#define CRYPTO_POLY1305_H

#include <stddef.h>
#include <stdint.h>

#define POLY1305_KEY_BYTES 32 /* r (clamped when used), then s */
#define POLY1305_TAG_BYTES 16
#define POLY1305_BLOCK_BYTES 16

/* One computation in progress; opaque to callers. */
struct poly1305 {
    uint64_t r0, r1;          /* r, clamped, as two 64-bit halves */
    uint64_t r1_times_5_4;    /* r1 + r1 / 4: folds 2^130 = 5 (mod p) into the multiply */
    uint64_t h0, h1, h2;      /* the accumulator, partly reduced: h2 holds bits 128 and up */
    uint64_t s0, s1;          /* s, added at the end */
    uint8_t buffer[POLY1305_BLOCK_BYTES]; /* a block not yet complete */
    size_t buffered;          /* bytes in buffer, 0-15 */
};

void poly1305_init(struct poly1305 *state, const uint8_t key[POLY1305_KEY_BYTES]);
/* Any number of bytes, in pieces of any size: the tag is that of their
 * concatenation. */
void poly1305_update(struct poly1305 *state, const void *data, size_t bytes);
/* Writes the tag and erases *state (it must be initialised again). */
void poly1305_final(struct poly1305 *state, uint8_t tag[POLY1305_TAG_BYTES]);

/* init, update, final in one. */
void poly1305_mac(const uint8_t key[POLY1305_KEY_BYTES], const void *data, size_t bytes,
                  uint8_t tag[POLY1305_TAG_BYTES]);

/* The same as poly1305_mac over `blocks` whole 16-byte blocks, with r and
 * s given apart (r is clamped here): the page MAC's last step, which then
 * needs no key buffer to copy and erase. */
void poly1305_mac_blocks(const uint8_t r[16], const uint8_t s[16], const void *data, size_t blocks,
                         uint8_t tag[POLY1305_TAG_BYTES]);

/* RFC 8439 2.6: the one-time key for a nonce, the first 32 bytes of the
 * ChaCha20 block with counter 0. */
void poly1305_key_gen(const uint8_t chacha_key[32], const uint8_t nonce[12],
                      uint8_t one_time_key[POLY1305_KEY_BYTES]);

#endif
