/* Host unit tests for crypto/poly1305.c: every Poly1305 test vector of RFC 8439 (2.5.2 and
 * A.3, including the reduction corner cases #5-#11), the one-time keys of 2.6.2 and A.4,
 * then any split of the input into pieces, every length and alignment reading only its own
 * bytes, and a check of the arithmetic against a plain big-number reference on random
 * keys and messages that reach the carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/poly1305.h"
#include "tests/unit/test_hex.h"
#include "tests/unit/test_random.h"

static void reference_mac(const uint8_t key[32], const uint8_t *message, size_t bytes,
                          uint8_t tag[16]);

/* ---- RFC 8439 vectors ------------------------------------------------------- */

/* A.3 (#5-#11 give R and S apart; here they are the key, R then S). */
static const struct {
    const char *key, *message, *tag;
} mac_vectors[] = {
    /* 2.5.2 */
    { "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
      "43727970746f6772617068696320466f72756d2052657365617263682047726f"
      "7570",
      "a8061dc1305136c6c22b8baf0c0127a9" },
    {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000" },
    {
        "0000000000000000000000000000000036e5f6b5c5e06070f0efca96227a863e",
        "416e79207375626d697373696f6e20746f20746865204945544620696e74656e"
        "6465642062792074686520436f6e7472696275746f7220666f72207075626c69"
        "636174696f6e20617320616c6c206f722070617274206f6620616e2049455446"
        "20496e7465726e65742d4472616674206f722052464320616e6420616e792073"
        "746174656d656e74206d6164652077697468696e2074686520636f6e74657874"
        "206f6620616e204945544620616374697669747920697320636f6e7369646572"
        "656420616e20224945544620436f6e747269627574696f6e222e205375636820"
        "73746174656d656e747320696e636c756465206f72616c2073746174656d656e"
        "747320696e20494554462073657373696f6e732c2061732077656c6c20617320"
        "7772697474656e20616e6420656c656374726f6e696320636f6d6d756e696361"
        "74696f6e73206d61646520617420616e792074696d65206f7220706c6163652c"
        "207768696368206172652061646472657373656420746f",
        "36e5f6b5c5e06070f0efca96227a863e" },
    {
        "36e5f6b5c5e06070f0efca96227a863e00000000000000000000000000000000",
        "416e79207375626d697373696f6e20746f20746865204945544620696e74656e"
        "6465642062792074686520436f6e7472696275746f7220666f72207075626c69"
        "636174696f6e20617320616c6c206f722070617274206f6620616e2049455446"
        "20496e7465726e65742d4472616674206f722052464320616e6420616e792073"
        "746174656d656e74206d6164652077697468696e2074686520636f6e74657874"
        "206f6620616e204945544620616374697669747920697320636f6e7369646572"
        "656420616e20224945544620436f6e747269627574696f6e222e205375636820"
        "73746174656d656e747320696e636c756465206f72616c2073746174656d656e"
        "747320696e20494554462073657373696f6e732c2061732077656c6c20617320"
        "7772697474656e20616e6420656c656374726f6e696320636f6d6d756e696361"
        "74696f6e73206d61646520617420616e792074696d65206f7220706c6163652c"
        "207768696368206172652061646472657373656420746f",
        "f3477e7cd95417af89a6b8794c310cf0" },
    {
        "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
        "2754776173206272696c6c69672c20616e642074686520736c6974687920746f"
        "7665730a446964206779726520616e642067696d626c6520696e207468652077"
        "6162653a0a416c6c206d696d737920776572652074686520626f726f676f7665"
        "732c0a416e6420746865206d6f6d65207261746873206f757467726162652e",
        "4541669a7eaaee61e708dc7cbcc5eb62" },
    {
        "0200000000000000000000000000000000000000000000000000000000000000",
        "ffffffffffffffffffffffffffffffff",
        "03000000000000000000000000000000" },
    {
        "02000000000000000000000000000000ffffffffffffffffffffffffffffffff",
        "02000000000000000000000000000000",
        "03000000000000000000000000000000" },
    {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "fffffffffffffffffffffffffffffffff0ffffffffffffffffffffffffffffff"
        "11000000000000000000000000000000",
        "05000000000000000000000000000000" },
    {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "fffffffffffffffffffffffffffffffffbfefefefefefefefefefefefefefefe"
        "01010101010101010101010101010101",
        "00000000000000000000000000000000" },
    {
        "0200000000000000000000000000000000000000000000000000000000000000",
        "fdffffffffffffffffffffffffffffff",
        "faffffffffffffffffffffffffffffff" },
    {
        "0100000000000000040000000000000000000000000000000000000000000000",
        "e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000"
        "0000000000000000000000000000000001000000000000000000000000000000",
        "14000000000000005500000000000000" },
    {
        "0100000000000000040000000000000000000000000000000000000000000000",
        "e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000"
        "00000000000000000000000000000000",
        "13000000000000000000000000000000" },
};

/* A.4 and 2.6.2: the one-time key from a ChaCha20 key and nonce. */
static const struct {
    const char *key, *nonce, *one_time_key;
} key_vectors[] = {
    {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7" },
    {
        "0000000000000000000000000000000000000000000000000000000000000001",
        "000000000000000000000002",
        "ecfa254f845f647473d3cb140da9e87606cb33066c447b87bc2666dde3fbb739" },
    {
        "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
        "000000000000000000000002",
        "965e3bc6f9ec7ed9560808f4d229f94b137ff275ca9b3fcbdd59deaad23310ae" },
    /* 2.6.2 */
    { "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
      "000000000001020304050607",
      "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646" },
};

static void test_mac_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(mac_vectors) / sizeof(mac_vectors[0]); v++) {
        size_t key_bytes, bytes, tag_bytes;
        uint8_t *key = hex_bytes(mac_vectors[v].key, &key_bytes);
        uint8_t *message = hex_bytes(mac_vectors[v].message, &bytes);
        uint8_t *expected = hex_bytes(mac_vectors[v].tag, &tag_bytes);
        uint8_t tag[POLY1305_TAG_BYTES];

        assert_int_equal(key_bytes, POLY1305_KEY_BYTES);
        assert_int_equal(tag_bytes, POLY1305_TAG_BYTES);
        poly1305_mac(key, message, bytes, tag);
        assert_memory_equal(tag, expected, POLY1305_TAG_BYTES);
        /* the reference below passes them too, which is what makes it one */
        reference_mac(key, message, bytes, tag);
        assert_memory_equal(tag, expected, POLY1305_TAG_BYTES);
        free(key);
        free(message);
        free(expected);
    }
}

static void test_one_time_key_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(key_vectors) / sizeof(key_vectors[0]); v++) {
        size_t key_bytes, nonce_bytes, expected_bytes;
        uint8_t *key = hex_bytes(key_vectors[v].key, &key_bytes);
        uint8_t *nonce = hex_bytes(key_vectors[v].nonce, &nonce_bytes);
        uint8_t *expected = hex_bytes(key_vectors[v].one_time_key, &expected_bytes);
        uint8_t one_time_key[POLY1305_KEY_BYTES];

        assert_int_equal(key_bytes, 32);
        assert_int_equal(nonce_bytes, 12);
        assert_int_equal(expected_bytes, POLY1305_KEY_BYTES);
        poly1305_key_gen(key, nonce, one_time_key);
        assert_memory_equal(one_time_key, expected, POLY1305_KEY_BYTES);
        free(key);
        free(nonce);
        free(expected);
    }
}

/* ---- a big-number reference --------------------------------------------------- */

/* Numbers as 9 little-endian 32-bit limbs (up to 288 bits, as RFC 8439 section 3 suggests
 * for a naive implementation), reduced mod p = 2^130 - 5 by repeated subtraction-free
 * folding: written from the definition, sharing nothing with crypto/poly1305.c. */
#define LIMBS 9
typedef struct {
    uint32_t limb[LIMBS];
} number;

static number number_from_bytes(const uint8_t *p, size_t bytes)
{
    number n = { { 0 } };
    for (size_t i = 0; i < bytes; i++)
        n.limb[i / 4] |= (uint32_t)p[i] << (8 * (i % 4));
    return n;
}

static number number_add(number a, number b)
{
    uint64_t carry = 0;
    for (int i = 0; i < LIMBS; i++) {
        carry += (uint64_t)a.limb[i] + b.limb[i];
        a.limb[i] = (uint32_t)carry;
        carry >>= 32;
    }
    return a;
}

/* a mod p for a below 2^288: x = low 130 bits + 5 * (x >> 130), until below 2^130, then
 * subtract p once if needed. */
static number number_mod_p(number a)
{
    for (;;) {
        number high = { { 0 } };
        for (int i = 0; i < LIMBS; i++) {
            uint64_t part = (uint64_t)a.limb[i] >> 2;
            if (i + 1 < LIMBS)
                part |= (uint64_t)(a.limb[i + 1] & 3) << 30;
            if (i >= 4)
                high.limb[i - 4] = (uint32_t)part;
        }
        int any = 0;
        for (int i = 0; i < LIMBS; i++)
            any |= high.limb[i] != 0;
        if (!any)
            break;
        a.limb[4] &= 3;
        for (int i = 5; i < LIMBS; i++)
            a.limb[i] = 0;
        number five_high = { { 0 } };
        for (int k = 0; k < 5; k++)
            five_high = number_add(five_high, high);
        a = number_add(a, five_high);
    }
    /* p = 3 fffffffff...fffb: a >= p iff a + 5 reaches 2^130 */
    number five = { { 5 } };
    number b = number_add(a, five);
    if (b.limb[4] >> 2) {
        b.limb[4] &= 3;
        return b;
    }
    return a;
}

static number number_multiply(number a, number b) /* both below 2^144: product below 2^288 */
{
    uint64_t wide[2 * LIMBS] = { 0 };
    for (int i = 0; i < LIMBS; i++)
        for (int j = 0; i + j < LIMBS; j++) {
            uint64_t product = (uint64_t)a.limb[i] * b.limb[j];
            for (int k = i + j; product && k < 2 * LIMBS; k++) {
                uint64_t sum = wide[k] + (product & 0xffffffffu);
                wide[k] = sum & 0xffffffffu;
                product = (product >> 32) + (sum >> 32);
            }
        }
    number n;
    for (int i = 0; i < LIMBS; i++)
        n.limb[i] = (uint32_t)wide[i];
    return n;
}

static void reference_mac(const uint8_t key[32], const uint8_t *message, size_t bytes,
                          uint8_t tag[16])
{
    uint8_t r_bytes[16];
    memcpy(r_bytes, key, 16);
    for (int i = 3; i < 16; i += 4)
        r_bytes[i] &= 15;
    for (int i = 4; i < 16; i += 4)
        r_bytes[i] &= 252;
    number r = number_from_bytes(r_bytes, 16), s = number_from_bytes(key + 16, 16);
    number acc = { { 0 } };
    for (size_t at = 0; at < bytes; at += 16) {
        uint8_t block[17] = { 0 };
        size_t take = bytes - at < 16 ? bytes - at : 16;
        memcpy(block, message + at, take);
        block[take] = 1;
        acc = number_mod_p(number_multiply(number_add(acc, number_from_bytes(block, 17)), r));
    }
    acc = number_add(acc, s);
    for (int i = 0; i < 16; i++)
        tag[i] = (uint8_t)(acc.limb[i / 4] >> (8 * (i % 4)));
}

/* Random keys and messages, with blocks of all ones and all zeros mixed in to reach the
 * carries and the final reduction; every length up to 20 blocks. */
static void test_agrees_with_a_big_number_reference(void **state)
{
    (void)state;
    uint64_t rng = 1305;
    uint8_t message[20 * 16 + 15];

    for (int trial = 0; trial < 4000; trial++) {
        uint8_t key[32], tag[16], expected[16];
        for (int i = 0; i < 32; i++)
            key[i] = (uint8_t)rng_next(&rng);
        if (trial % 4 == 1)
            memset(key, 0xff, 16); /* the largest r clamping allows */
        if (trial % 8 == 2)
            memset(key + 16, 0xff, 16);
        size_t bytes = rng_next(&rng) % sizeof(message);
        for (size_t i = 0; i < bytes; i++) {
            uint64_t kind = (i / 16 + trial) % 3;
            message[i] = kind == 0 ? (uint8_t)rng_next(&rng) : kind == 1 ? 0xff : 0;
        }
        poly1305_mac(key, message, bytes, tag);
        reference_mac(key, message, bytes, expected);
        assert_memory_equal(tag, expected, 16);
    }
}

/* poly1305_mac_blocks, the page MAC's form, against the reference: 0 to 4 whole blocks,
 * random r and s (the largest r and s too), blocks of random bytes, all ones and all zeros;
 * r, s and the message each a heap block of exactly its length (one byte for no blocks),
 * so ASan sees a read past one. */
static void test_whole_blocks_form_agrees_with_the_reference(void **state)
{
    (void)state;
    uint64_t rng = 16;
    uint8_t *r = malloc(16), *s = malloc(16);

    assert_non_null(r);
    assert_non_null(s);
    for (int trial = 0; trial < 4000; trial++) {
        size_t blocks = (size_t)trial % 5;
        uint8_t *message = malloc(blocks ? 16 * blocks : 1), key[32], tag[16], expected[16];
        assert_non_null(message);
        for (int i = 0; i < 16; i++) {
            r[i] = (uint8_t)rng_next(&rng);
            s[i] = (uint8_t)rng_next(&rng);
        }
        for (size_t i = 0; i < 16 * blocks; i++)
            message[i] = trial % 3 == 0 ? (uint8_t)rng_next(&rng) : trial % 3 == 1 ? 0xff : 0;
        if (trial % 4 == 1)
            memset(r, 0xff, 16);
        if (trial % 8 == 2)
            memset(s, 0xff, 16);
        memcpy(key, r, 16);
        memcpy(key + 16, s, 16);
        poly1305_mac_blocks(r, s, message, blocks, tag);
        reference_mac(key, message, 16 * blocks, expected);
        assert_memory_equal(tag, expected, 16);
        free(message);
    }
    free(r);
    free(s);
}

/* ---- pieces, lengths, alignment ----------------------------------------------------- */

/* The same tag whatever pieces the input arrives in (0-byte pieces too), and the same as
 * the reference at every length and alignment; each message is a heap block of exactly its
 * length, so ASan sees a read past its end. */
static void test_any_pieces_any_length(void **state)
{
    (void)state;
    uint64_t rng = 7;
    uint8_t key[32];

    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)rng_next(&rng);
    for (size_t bytes = 0; bytes <= 200; bytes++) {
        for (size_t offset = 0; offset < 8; offset += 3) {
            uint8_t *buffer = malloc((offset + bytes) ? offset + bytes : 1);
            assert_non_null(buffer);
            uint8_t *message = buffer + offset;
            for (size_t i = 0; i < bytes; i++)
                message[i] = (uint8_t)rng_next(&rng);
            uint8_t whole[16], expected[16], pieces[16];
            poly1305_mac(key, message, bytes, whole);
            reference_mac(key, message, bytes, expected);
            assert_memory_equal(whole, expected, 16);

            struct poly1305 poly;
            poly1305_init(&poly, key);
            for (size_t done = 0; done < bytes;) {
                size_t take = rng_next(&rng) % 37;
                if (take > bytes - done)
                    take = bytes - done;
                poly1305_update(&poly, message + done, take);
                done += take;
            }
            poly1305_update(&poly, message, 0);
            poly1305_final(&poly, pieces);
            assert_memory_equal(pieces, whole, 16);
            free(buffer);
        }
    }
}

/* RFC 8439 A.3 #2: with r = 0 the tag is s, whatever the text; and final erases the state. */
static void test_zero_r_and_erased_state(void **state)
{
    (void)state;
    uint8_t key[32] = { 0 }, tag[16], text[100];

    for (int i = 0; i < 16; i++)
        key[16 + i] = (uint8_t)(i * 9 + 1);
    memset(text, 0x5a, sizeof(text));
    poly1305_mac(key, text, sizeof(text), tag);
    assert_memory_equal(tag, key + 16, 16);

    struct poly1305 poly;
    poly1305_init(&poly, key);
    poly1305_update(&poly, text, 7);
    poly1305_final(&poly, tag);
    uint8_t zeros[sizeof(poly)];
    memset(zeros, 0, sizeof(zeros));
    assert_memory_equal(&poly, zeros, sizeof(poly));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_vectors),
        cmocka_unit_test(test_one_time_key_vectors),
        cmocka_unit_test(test_agrees_with_a_big_number_reference),
        cmocka_unit_test(test_whole_blocks_form_agrees_with_the_reference),
        cmocka_unit_test(test_any_pieces_any_length),
        cmocka_unit_test(test_zero_r_and_erased_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
