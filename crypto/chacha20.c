/*
 * ChaCha20 (see crypto/chacha20.h), written from RFC 8439 sections 2.1-2.4
 * for the kernel and the host. General registers only (the kernel is
 * built with -mgeneral-regs-only): one block at a time, scalar.
 */
#include "crypto/chacha20.h"

#include "crypto/secret.h" // secret_erase

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the loads and stores below are little-endian only as x86 is");

#define STATE_WORDS 16
#define DOUBLE_ROUNDS 10 /* 20 rounds: a column round and a diagonal round each */

/* Little-endian words at any alignment: one plain load or store on x86. */
static inline uint32_t load32(const uint8_t *p)
{
    uint32_t word;

    __builtin_memcpy(&word, p, sizeof(word));
    return word;
}

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

static inline uint32_t rotate_left(uint32_t x, unsigned bits)
{
    return (x << bits) | (x >> (32 - bits));
}

/* RFC 8439 2.1: add, xor, roll by 16, 12, 8 and 7 bits. */
#define QUARTER_ROUND(a, b, c, d)           \
    do {                                    \
        a += b;                             \
        d = rotate_left(d ^ a, 16);         \
        c += d;                             \
        b = rotate_left(b ^ c, 12);         \
        a += b;                             \
        d = rotate_left(d ^ a, 8);          \
        c += d;                             \
        b = rotate_left(b ^ c, 7);          \
    } while (0)

/* RFC 8439 2.3: the four constants ("expand 32-byte k"), the key as eight
 * little-endian words, the counter, the nonce as three. */
static void state_setup(uint32_t state[STATE_WORDS], const uint8_t key[CHACHA20_KEY_BYTES],
                        uint32_t counter, const uint8_t nonce[CHACHA20_NONCE_BYTES])
{
    state[0] = 0x61707865;
    state[1] = 0x3320646e;
    state[2] = 0x79622d32;
    state[3] = 0x6b206574;
    for (int i = 0; i < 8; i++)
        state[4 + i] = load32(key + 4 * i);
    state[12] = counter;
    for (int i = 0; i < 3; i++)
        state[13 + i] = load32(nonce + 4 * i);
}

/* The block function on words: 10 column-and-diagonal double rounds, then
 * the input added back (RFC 8439 2.3). The sixteen words live in locals so
 * the compiler keeps as many in registers as there are. Aligned so that
 * its code (under 1 KiB) never straddles a 4 KiB page: TCG chains
 * translated blocks only within a guest page (see lib/hash.c). */
__attribute__((noinline, aligned(1024))) static void block_words(const uint32_t in[STATE_WORDS],
                                                                  uint32_t out[STATE_WORDS])
{
    uint32_t x0 = in[0], x1 = in[1], x2 = in[2], x3 = in[3];
    uint32_t x4 = in[4], x5 = in[5], x6 = in[6], x7 = in[7];
    uint32_t x8 = in[8], x9 = in[9], x10 = in[10], x11 = in[11];
    uint32_t x12 = in[12], x13 = in[13], x14 = in[14], x15 = in[15];

    for (int i = 0; i < DOUBLE_ROUNDS; i++) {
        QUARTER_ROUND(x0, x4, x8, x12); /* columns */
        QUARTER_ROUND(x1, x5, x9, x13);
        QUARTER_ROUND(x2, x6, x10, x14);
        QUARTER_ROUND(x3, x7, x11, x15);
        QUARTER_ROUND(x0, x5, x10, x15); /* diagonals */
        QUARTER_ROUND(x1, x6, x11, x12);
        QUARTER_ROUND(x2, x7, x8, x13);
        QUARTER_ROUND(x3, x4, x9, x14);
    }
    out[0] = x0 + in[0];
    out[1] = x1 + in[1];
    out[2] = x2 + in[2];
    out[3] = x3 + in[3];
    out[4] = x4 + in[4];
    out[5] = x5 + in[5];
    out[6] = x6 + in[6];
    out[7] = x7 + in[7];
    out[8] = x8 + in[8];
    out[9] = x9 + in[9];
    out[10] = x10 + in[10];
    out[11] = x11 + in[11];
    out[12] = x12 + in[12];
    out[13] = x13 + in[13];
    out[14] = x14 + in[14];
    out[15] = x15 + in[15];
}

void chacha20_block(const uint8_t key[CHACHA20_KEY_BYTES], uint32_t counter,
                    const uint8_t nonce[CHACHA20_NONCE_BYTES], uint8_t out[CHACHA20_BLOCK_BYTES])
{
    uint32_t state[STATE_WORDS], words[STATE_WORDS];

    state_setup(state, key, counter, nonce);
    block_words(state, words);
    /* serialized little-endian word by word: the words' own bytes on x86 */
    __builtin_memcpy(out, words, CHACHA20_BLOCK_BYTES);
    secret_erase(state, sizeof(state));
    secret_erase(words, sizeof(words));
}

void chacha20_block_input16(const uint8_t key[CHACHA20_KEY_BYTES], const uint8_t input[16],
                            uint8_t out[CHACHA20_BLOCK_BYTES])
{
    chacha20_block(key, load32(input), input + 4, out);
}

/* Aligned like block_words: its loop runs once per 64 bytes. */
__attribute__((aligned(1024))) void chacha20_xor(const uint8_t key[CHACHA20_KEY_BYTES],
                                                 uint32_t counter,
                                                 const uint8_t nonce[CHACHA20_NONCE_BYTES],
                                                 const void *in, void *out, size_t bytes)
{
    const uint8_t *src = in;
    uint8_t *dst = out;
    uint32_t state[STATE_WORDS], stream[STATE_WORDS];

    state_setup(state, key, counter, nonce);
    for (; bytes >= CHACHA20_BLOCK_BYTES; bytes -= CHACHA20_BLOCK_BYTES) {
        block_words(state, stream);
        state[12]++; /* RFC 8439 2.4: the next block of the same nonce */
        for (int i = 0; i < STATE_WORDS; i += 2) {
            uint64_t pair = (uint64_t)stream[i + 1] << 32 | stream[i];
            store64(dst + 4 * i, load64(src + 4 * i) ^ pair);
        }
        src += CHACHA20_BLOCK_BYTES;
        dst += CHACHA20_BLOCK_BYTES;
    }
    if (bytes) {
        /* the last, partial block: the rest of its keystream is discarded */
        block_words(state, stream);
        for (size_t i = 0; i < bytes; i++)
            dst[i] = src[i] ^ (uint8_t)(stream[i / 4] >> (8 * (i % 4)));
    }
    secret_erase(state, sizeof(state));
    secret_erase(stream, sizeof(stream));
}
