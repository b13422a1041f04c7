/*
 * Poly1305 (see crypto/poly1305.h), written from RFC 8439 section 2.5:
 * acc = ((acc + block) * r) mod 2^130 - 5 block by block, then + s mod
 * 2^128. The accumulator is three 64-bit words and each multiply takes
 * 64 x 64 -> 128-bit products (gcc's unsigned __int128, which needs no
 * SSE and no library call on x86-64). Constant time: no branch or index
 * depends on the key or the data.
 */
#include "crypto/poly1305.h"

#include "crypto/chacha20.h" // chacha20_block
#include "crypto/secret.h"   // secret_erase

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian loads, as on x86");

typedef unsigned __int128 uint128_t;

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

void poly1305_init(struct poly1305 *state, const uint8_t key[POLY1305_KEY_BYTES])
{
    /* RFC 8439 2.5: r &= 0x0ffffffc0ffffffc0ffffffc0fffffff */
    state->r0 = load64(key) & 0x0ffffffc0fffffffull;
    state->r1 = load64(key + 8) & 0x0ffffffc0ffffffcull;
    /* r1 is a multiple of 4, so r1 * 2^128 = (r1 / 4) * 2^130 = 5 * (r1 / 4) mod p */
    state->r1_times_5_4 = state->r1 + (state->r1 >> 2);
    state->h0 = state->h1 = state->h2 = 0;
    state->s0 = load64(key + 16);
    state->s1 = load64(key + 24);
    state->buffered = 0;
}

/* acc = (acc + m + high * 2^128) * r, partly reduced, for each 16-byte
 * block at p. high is 1 for a whole block, 0 for the last, padded one.
 *
 * Bounds: r0, r1 < 2^60 and r1_times_5_4 < 2^61 after clamping; h2 <= 4
 * after each block, so at most 6 once a block is added. The products are
 * below 2^124, the sums of three below 2^126: no 128-bit sum overflows, and
 * d2 (the part at 2^128) stays below 2^64. */
static void blocks(struct poly1305 *state, const uint8_t *p, size_t count, uint64_t high)
{
    const uint64_t r0 = state->r0, r1 = state->r1, r1_5_4 = state->r1_times_5_4;
    uint64_t h0 = state->h0, h1 = state->h1, h2 = state->h2;

    for (; count; count--, p += POLY1305_BLOCK_BYTES) {
        uint64_t m0 = load64(p), m1 = load64(p + 8);
        uint128_t sum = (uint128_t)h0 + m0;
        h0 = (uint64_t)sum;
        sum = (uint128_t)h1 + m1 + (uint64_t)(sum >> 64);
        h1 = (uint64_t)sum;
        h2 += (uint64_t)(sum >> 64) + high;

        /* (h0 + h1 2^64 + h2 2^128)(r0 + r1 2^64), with h1 r1 2^128 and
         * h2 r1 2^192 folded down by 2^130 = 5 (mod p) */
        uint128_t d0 = (uint128_t)h0 * r0 + (uint128_t)h1 * r1_5_4;
        uint128_t d1 = (uint128_t)h0 * r1 + (uint128_t)h1 * r0 + (uint128_t)h2 * r1_5_4;
        uint64_t d2 = h2 * r0;

        d1 += (uint64_t)(d0 >> 64);
        h0 = (uint64_t)d0;
        d2 += (uint64_t)(d1 >> 64);
        h1 = (uint64_t)d1;
        /* keep bits 128-129 in h2, fold bits 130 and up: c 2^130 = 5c */
        h2 = d2 & 3;
        uint64_t carry = (d2 >> 2) * 5;
        sum = (uint128_t)h0 + carry;
        h0 = (uint64_t)sum;
        sum = (uint128_t)h1 + (uint64_t)(sum >> 64);
        h1 = (uint64_t)sum;
        h2 += (uint64_t)(sum >> 64);
    }
    state->h0 = h0;
    state->h1 = h1;
    state->h2 = h2;
}

void poly1305_update(struct poly1305 *state, const void *data, size_t bytes)
{
    const uint8_t *p = data;

    if (state->buffered) {
        size_t take = POLY1305_BLOCK_BYTES - state->buffered;
        if (take > bytes)
            take = bytes;
        for (size_t i = 0; i < take; i++)
            state->buffer[state->buffered + i] = p[i];
        state->buffered += take;
        p += take;
        bytes -= take;
        if (state->buffered < POLY1305_BLOCK_BYTES)
            return;
        blocks(state, state->buffer, 1, 1);
        state->buffered = 0;
    }
    size_t whole = bytes / POLY1305_BLOCK_BYTES;
    if (whole)
        blocks(state, p, whole, 1);
    p += whole * POLY1305_BLOCK_BYTES;
    bytes -= whole * POLY1305_BLOCK_BYTES;
    for (size_t i = 0; i < bytes; i++)
        state->buffer[i] = p[i];
    state->buffered = bytes;
}

void poly1305_final(struct poly1305 *state, uint8_t tag[POLY1305_TAG_BYTES])
{
    if (state->buffered) {
        /* RFC 8439 2.5: the short last block gets a 1 byte after its
         * bytes (in place of 2^128), then zeros */
        state->buffer[state->buffered] = 1;
        for (size_t i = state->buffered + 1; i < POLY1305_BLOCK_BYTES; i++)
            state->buffer[i] = 0;
        blocks(state, state->buffer, 1, 0);
    }
    /* h < 5 * 2^128 < 2p, so one conditional subtraction of p reduces it:
     * h - p = h + 5 - 2^130, chosen when h + 5 reaches 2^130 */
    uint64_t h0 = state->h0, h1 = state->h1, h2 = state->h2;
    uint128_t sum = (uint128_t)h0 + 5;
    uint64_t g0 = (uint64_t)sum;
    sum = (uint128_t)h1 + (uint64_t)(sum >> 64);
    uint64_t g1 = (uint64_t)sum;
    uint64_t g2 = h2 + (uint64_t)(sum >> 64);
    uint64_t use_g = 0 - (g2 >> 2); /* all ones when h >= p */
    h0 = (h0 & ~use_g) | (g0 & use_g);
    h1 = (h1 & ~use_g) | (g1 & use_g);
    /* + s, mod 2^128 */
    sum = (uint128_t)h0 + state->s0;
    store64(tag, (uint64_t)sum);
    store64(tag + 8, h1 + state->s1 + (uint64_t)(sum >> 64));
    secret_erase(state, sizeof(*state));
}

void poly1305_mac(const uint8_t key[POLY1305_KEY_BYTES], const void *data, size_t bytes,
                  uint8_t tag[POLY1305_TAG_BYTES])
{
    struct poly1305 state;

    poly1305_init(&state, key);
    poly1305_update(&state, data, bytes);
    poly1305_final(&state, tag);
}

void poly1305_key_gen(const uint8_t chacha_key[32], const uint8_t nonce[12],
                      uint8_t one_time_key[POLY1305_KEY_BYTES])
{
    uint8_t block[CHACHA20_BLOCK_BYTES];

    chacha20_block(chacha_key, 0, nonce, block);
    for (int i = 0; i < POLY1305_KEY_BYTES; i++)
        one_time_key[i] = block[i];
    secret_erase(block, sizeof(block));
}
