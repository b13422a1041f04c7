/*
 * The ChaCha20 stream cipher of RFC 8439 (sections 2.3 and 2.4): the block
 * function and a keystream XOR over any buffer, 256-bit key, 96-bit nonce,
 * 32-bit block counter. No state between calls; any alignment everywhere.
 */
#ifndef CRYPTO_CHACHA20_H
#define CRYPTO_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

#define CHACHA20_KEY_BYTES 32
#define CHACHA20_NONCE_BYTES 12
#define CHACHA20_BLOCK_BYTES 64

/* The 64-byte block for (key, counter, nonce), serialized (RFC 8439 2.3). */
void chacha20_block(const uint8_t key[CHACHA20_KEY_BYTES], uint32_t counter,
                    const uint8_t nonce[CHACHA20_NONCE_BYTES], uint8_t out[CHACHA20_BLOCK_BYTES]);

/* The same block with its whole 128-bit input given as 16 bytes: the
 * counter (little-endian) in bytes 0-3, the nonce in bytes 4-15. This is
 * ChaCha20 used as a pseudorandom function of 16 bytes (key derivation,
 * the buffer MAC's last step). */
void chacha20_block_input16(const uint8_t key[CHACHA20_KEY_BYTES], const uint8_t input[16],
                            uint8_t out[CHACHA20_BLOCK_BYTES]);

/* out = in XOR the keystream that starts at block `counter` (RFC 8439
 * 2.4), for any number of bytes (0 too); out may be in itself, but must not
 * overlap it otherwise. The counter wraps after 2^32 blocks (256 GiB): a
 * caller keeps each (key, nonce) below that, as the RFC requires. */
void chacha20_xor(const uint8_t key[CHACHA20_KEY_BYTES], uint32_t counter,
                  const uint8_t nonce[CHACHA20_NONCE_BYTES], const void *in, void *out, size_t bytes);

#endif
