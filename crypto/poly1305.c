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

/* The accumulator and r, in locals wherever the compiler can keep them in
 * registers (poly1305_mac never stores them). */
struct accumulator {
    uint64_t h0, h1, h2;
};

/* acc = (acc + m + high * 2^128) * r, partly reduced, for one block
 * m = m0 + m1 2^64. high is 1 for a whole block, 0 for the last, padded one.
 *
 * Bounds: r0, r1 < 2^60 and r1_5_4 < 2^61 after clamping; h2 <= 4 after
 * each block, so at most 6 once a block is added. The products are below
 * 2^124, the sums of three below 2^126: no 128-bit sum overflows, and d2
 * (the part at 2^128) stays below 2^64. */
static inline __attribute__((always_inline)) void block(struct accumulator *acc, uint64_t r0,
                                                        uint64_t r1, uint64_t r1_5_4, uint64_t m0,
                                                        uint64_t m1, uint64_t high)
{
    uint128_t sum = (uint128_t)acc->h0 + m0;
    uint64_t h0 = (uint64_t)sum;
    sum = (uint128_t)acc->h1 + m1 + (uint64_t)(sum >> 64);
    uint64_t h1 = (uint64_t)sum;
    uint64_t h2 = acc->h2 + (uint64_t)(sum >> 64) + high;

    /* (h0 + h1 2^64 + h2 2^128)(r0 + r1 2^64), with h1 r1 2^128 and
     * h2 r1 2^192 folded down by 2^130 = 5 (mod p) */
    uint128_t d0 = (uint128_t)h0 * r0 + (uint128_t)h1 * r1_5_4;
    uint128_t d1 = (uint128_t)h0 * r1 + (uint128_t)h1 * r0 + (uint128_t)h2 * r1_5_4;
    uint64_t d2 = h2 * r0;

    d1 += (uint64_t)(d0 >> 64);
    d2 += (uint64_t)(d1 >> 64);
    /* keep bits 128-129 in h2, fold bits 130 and up: c 2^130 = 5c */
    sum = (uint128_t)(uint64_t)d0 + (d2 >> 2) * 5;
    acc->h0 = (uint64_t)sum;
    sum = (uint128_t)(uint64_t)d1 + (uint64_t)(sum >> 64);
    acc->h1 = (uint64_t)sum;
    acc->h2 = (d2 & 3) + (uint64_t)(sum >> 64);
}

/* Aligned so that its loop never straddles a 4 KiB code page (TCG chains
 * translated blocks only within a page; see lib/hash.c). */
__attribute__((noinline, aligned(1024))) static void blocks(struct poly1305 *state,
                                                            const uint8_t *p, size_t count,
                                                            uint64_t high)
{
    struct accumulator acc = { state->h0, state->h1, state->h2 };

    for (; count; count--, p += POLY1305_BLOCK_BYTES)
        block(&acc, state->r0, state->r1, state->r1_times_5_4, load64(p), load64(p + 8), high);
    state->h0 = acc.h0;
    state->h1 = acc.h1;
    state->h2 = acc.h2;
}

/* h < 5 * 2^128 < 2p, so one conditional subtraction of p reduces it:
 * h - p = h + 5 - 2^130, chosen when h + 5 reaches 2^130. Then + s mod
 * 2^128. */
static inline void finish(const struct accumulator *acc, uint64_t s0, uint64_t s1,
                          uint8_t tag[POLY1305_TAG_BYTES])
{
    uint64_t h0 = acc->h0, h1 = acc->h1;
    uint128_t sum = (uint128_t)h0 + 5;
    uint64_t g0 = (uint64_t)sum;
    sum = (uint128_t)h1 + (uint64_t)(sum >> 64);
    uint64_t g1 = (uint64_t)sum;
    uint64_t g2 = acc->h2 + (uint64_t)(sum >> 64);
    uint64_t use_g = 0 - (g2 >> 2); /* all ones when h >= p */
    h0 = (h0 & ~use_g) | (g0 & use_g);
    h1 = (h1 & ~use_g) | (g1 & use_g);
    sum = (uint128_t)h0 + s0;
    store64(tag, (uint64_t)sum);
    store64(tag + 8, h1 + s1 + (uint64_t)(sum >> 64));
}

void poly1305_update(struct poly1305 *state, const void *data, size_t bytes)
{
    const uint8_t *p = data;

    if (!bytes)
        return; /* data may be NULL then */

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
    struct accumulator acc = { state->h0, state->h1, state->h2 };
    finish(&acc, state->s0, state->s1, tag);
    secret_erase(state, sizeof(*state));
}

/* The same as init, update, final, with r, s and the accumulator in
 * locals: no state in memory but a short last block. Aligned like blocks
 * (it is over 1 KiB, under 2). */
__attribute__((aligned(2048))) void poly1305_mac(const uint8_t key[POLY1305_KEY_BYTES],
                                                 const void *data, size_t bytes,
                                                 uint8_t tag[POLY1305_TAG_BYTES])
{
    const uint8_t *p = data;
    const uint64_t r0 = load64(key) & 0x0ffffffc0fffffffull;
    const uint64_t r1 = load64(key + 8) & 0x0ffffffc0ffffffcull;
    const uint64_t r1_5_4 = r1 + (r1 >> 2);
    struct accumulator acc = { 0, 0, 0 };

    for (; bytes >= POLY1305_BLOCK_BYTES; bytes -= POLY1305_BLOCK_BYTES, p += POLY1305_BLOCK_BYTES)
        block(&acc, r0, r1, r1_5_4, load64(p), load64(p + 8), 1);
    if (bytes) {
        uint8_t last[POLY1305_BLOCK_BYTES] = { 0 };
        for (size_t i = 0; i < bytes; i++)
            last[i] = p[i];
        last[bytes] = 1;
        block(&acc, r0, r1, r1_5_4, load64(last), load64(last + 8), 0);
        secret_erase(last, sizeof(last));
    }
    finish(&acc, load64(key + 16), load64(key + 24), tag);
}

void poly1305_mac_blocks(const uint8_t r[16], const uint8_t s[16], const void *data, size_t blocks,
                         uint8_t tag[POLY1305_TAG_BYTES])
{
    const uint8_t *p = data;
    const uint64_t r0 = load64(r) & 0x0ffffffc0fffffffull;
    const uint64_t r1 = load64(r + 8) & 0x0ffffffc0ffffffcull;
    struct accumulator acc = { 0, 0, 0 };

    for (; blocks; blocks--, p += POLY1305_BLOCK_BYTES)
        block(&acc, r0, r1, r1 + (r1 >> 2), load64(p), load64(p + 8), 1);
    finish(&acc, load64(s), load64(s + 8), tag);
}

void poly1305_key_gen(const uint8_t chacha_key[32], const uint8_t nonce[12],
                      uint8_t one_time_key[POLY1305_KEY_BYTES])
{
    uint8_t keystream[CHACHA20_BLOCK_BYTES];

    chacha20_block(chacha_key, 0, nonce, keystream);
    for (int i = 0; i < POLY1305_KEY_BYTES; i++)
        one_time_key[i] = keystream[i];
    secret_erase(keystream, sizeof(keystream));
}
