/* Host unit tests for crypto/chacha20.c: every ChaCha20 test vector of RFC 8439 (the block
 * function of 2.3.2 and A.1, the cipher of 2.4.2 and A.2), then what the vectors leave
 * open: every length from 0 and every alignment, in place, reading and writing only its
 * own bytes (each buffer its own heap block, under ASan), the 16-byte-input form, and the
 * counter's wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/chacha20.h"
#include "tests/unit/test_hex.h"
#include "tests/unit/test_random.h"

/* ---- RFC 8439 vectors ------------------------------------------------------- */

/* A.1: the block function (the keystream of one block). */
static const struct {
    uint32_t counter;
    const char *key, *nonce, *block;
} block_vectors[] = {
    { 0,
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586" },
    { 1,
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
        "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f" },
    { 1,
        "0000000000000000000000000000000000000000000000000000000000000001",
        "000000000000000000000000",
        "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a"
        "8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0" },
    { 2,
        "00ff000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca"
        "13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096" },
    { 0,
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000002",
        "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7"
        "8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d" },
};

/* A.2: the cipher. */
static const struct {
    uint32_t counter;
    const char *key, *nonce, *plaintext, *ciphertext;
} cipher_vectors[] = {
    { 0,
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000",
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586" },
    { 1,
        "0000000000000000000000000000000000000000000000000000000000000001",
        "000000000000000000000002",
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
        "a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec"
        "2a97948bd3722915c8f3d337f7d370050e9e96d647b7c39f56e031ca5eb6250d"
        "4042e02785ececfa4b4bb5e8ead0440e20b6e8db09d881a7c6132f420e527950"
        "42bdfa7773d8a9051447b3291ce1411c680465552aa6c405b7764d5e87bea85a"
        "d00f8449ed8f72d0d662ab052691ca66424bc86d2df80ea41f43abf937d3259d"
        "c4b2d0dfb48a6c9139ddd7f76966e928e635553ba76c5c879d7b35d49eb2e62b"
        "0871cdac638939e25e8a1e0ef9d5280fa8ca328b351c3c765989cbcf3daa8b6c"
        "cc3aaf9f3979c92b3720fc88dc95ed84a1be059c6499b9fda236e7e818b04b0b"
        "c39c1e876b193bfe5569753f88128cc08aaa9b63d1a16f80ef2554d7189c411f"
        "5869ca52c5b83fa36ff216b9c1d30062bebcfd2dc5bce0911934fda79a86f6e6"
        "98ced759c3ff9b6477338f3da4f9cd8514ea9982ccafb341b2384dd902f3d1ab"
        "7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221" },
    { 42,
        "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
        "000000000000000000000002",
        "2754776173206272696c6c69672c20616e642074686520736c6974687920746f"
        "7665730a446964206779726520616e642067696d626c6520696e207468652077"
        "6162653a0a416c6c206d696d737920776572652074686520626f726f676f7665"
        "732c0a416e6420746865206d6f6d65207261746873206f757467726162652e",
        "62e6347f95ed87a45ffae7426f27a1df5fb69110044c0d73118effa95b01e5cf"
        "166d3df2d721caf9b21e5fb14c616871fd84c54f9d65b283196c7fe4f60553eb"
        "f39c6402c42234e32a356b3e764312a61a5532055716ead6962568f87d3f3f77"
        "04c6a8d1bcd1bf4d50d6154b6da731b187b58dfd728afa36757a797ac188d1" },
};

static void check_block(uint32_t counter, const char *key_hex, const char *nonce_hex,
                        const char *block_hex)
{
    size_t key_bytes, nonce_bytes, block_bytes;
    uint8_t *key = hex_bytes(key_hex, &key_bytes), *nonce = hex_bytes(nonce_hex, &nonce_bytes);
    uint8_t *expected = hex_bytes(block_hex, &block_bytes);
    uint8_t out[CHACHA20_BLOCK_BYTES], zeros[CHACHA20_BLOCK_BYTES] = { 0 };

    assert_int_equal(key_bytes, CHACHA20_KEY_BYTES);
    assert_int_equal(nonce_bytes, CHACHA20_NONCE_BYTES);
    assert_int_equal(block_bytes, CHACHA20_BLOCK_BYTES);
    chacha20_block(key, counter, nonce, out);
    assert_memory_equal(out, expected, CHACHA20_BLOCK_BYTES);
    /* the cipher over zeros is the keystream */
    chacha20_xor(key, counter, nonce, zeros, out, sizeof(out));
    assert_memory_equal(out, expected, CHACHA20_BLOCK_BYTES);
    free(key);
    free(nonce);
    free(expected);
}

static void test_block_function_vector_2_3_2(void **state)
{
    (void)state;
    check_block(1, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "000000090000004a00000000",
                "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
                "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
}

static void test_block_function_vectors_a_1(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(block_vectors) / sizeof(block_vectors[0]); i++)
        check_block(block_vectors[i].counter, block_vectors[i].key, block_vectors[i].nonce,
                    block_vectors[i].block);
}

/* Encrypts the plaintext, checks the ciphertext, and decrypts it back, both in a separate
 * buffer and in place. */
static void check_cipher(uint32_t counter, const char *key_hex, const char *nonce_hex,
                         const char *plaintext_hex, const char *ciphertext_hex)
{
    size_t key_bytes, nonce_bytes, bytes, ciphertext_bytes;
    uint8_t *key = hex_bytes(key_hex, &key_bytes), *nonce = hex_bytes(nonce_hex, &nonce_bytes);
    uint8_t *plaintext = hex_bytes(plaintext_hex, &bytes);
    uint8_t *expected = hex_bytes(ciphertext_hex, &ciphertext_bytes);
    uint8_t *out = malloc(bytes);

    assert_non_null(out);
    assert_int_equal(key_bytes, CHACHA20_KEY_BYTES);
    assert_int_equal(nonce_bytes, CHACHA20_NONCE_BYTES);
    assert_int_equal(ciphertext_bytes, bytes);
    chacha20_xor(key, counter, nonce, plaintext, out, bytes);
    assert_memory_equal(out, expected, bytes);
    chacha20_xor(key, counter, nonce, out, out, bytes);
    assert_memory_equal(out, plaintext, bytes);
    memcpy(out, plaintext, bytes);
    chacha20_xor(key, counter, nonce, out, out, bytes);
    assert_memory_equal(out, expected, bytes);
    free(key);
    free(nonce);
    free(plaintext);
    free(expected);
    free(out);
}

static void test_cipher_vector_2_4_2(void **state)
{
    (void)state;
    check_cipher(1, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                 "000000000000004a00000000",
                 "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
                 "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
                 "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
                 "637265656e20776f756c642062652069742e",
                 "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
                 "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
                 "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
                 "5af90bbf74a35be6b40b8eedf2785e42874d");
}

static void test_cipher_vectors_a_2(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cipher_vectors) / sizeof(cipher_vectors[0]); i++)
        check_cipher(cipher_vectors[i].counter, cipher_vectors[i].key, cipher_vectors[i].nonce,
                     cipher_vectors[i].plaintext, cipher_vectors[i].ciphertext);
}

/* ---- beyond the vectors ------------------------------------------------------- */

/* The keystream of `blocks` blocks from chacha20_block alone. */
static void reference_keystream(const uint8_t *key, uint32_t counter, const uint8_t *nonce,
                                uint8_t *out, size_t blocks)
{
    for (size_t i = 0; i < blocks; i++)
        chacha20_block(key, counter + (uint32_t)i, nonce, out + i * CHACHA20_BLOCK_BYTES);
}

/* Every length from 0 to 5 blocks and then some, at 8 alignments of input and output: the
 * same bytes as the block function's keystream, no byte outside [0, length) touched (ASan:
 * each buffer is a heap block of exactly its length). */
static void test_every_length_and_alignment(void **state)
{
    (void)state;
    uint64_t rng = 20;
    uint8_t key[CHACHA20_KEY_BYTES], nonce[CHACHA20_NONCE_BYTES];
    enum { MAX = 5 * CHACHA20_BLOCK_BYTES + 7 };
    uint8_t stream[6 * CHACHA20_BLOCK_BYTES];

    fill_random(key, sizeof(key), &rng);
    fill_random(nonce, sizeof(nonce), &rng);
    reference_keystream(key, 7, nonce, stream, 6);
    for (size_t bytes = 0; bytes <= MAX; bytes++) {
        for (size_t in_offset = 0; in_offset < 8; in_offset += bytes < 70 ? 1 : 3) {
            size_t out_offset = (in_offset * 5) % 8;
            uint8_t *in = malloc(in_offset + bytes + 1), *out = malloc(out_offset + bytes + 1);
            assert_non_null(in);
            assert_non_null(out);
            fill_random(in + in_offset, bytes, &rng);
            chacha20_xor(key, 7, nonce, in + in_offset, out + out_offset, bytes);
            for (size_t i = 0; i < bytes; i++)
                assert_int_equal(out[out_offset + i], in[in_offset + i] ^ stream[i]);
            free(in);
            free(out);
        }
        /* exactly `bytes` long, so ASan sees any byte read or written past the end */
        uint8_t *exact = malloc(bytes ? bytes : 1);
        assert_non_null(exact);
        memset(exact, 0, bytes);
        chacha20_xor(key, 7, nonce, exact, exact, bytes);
        assert_memory_equal(exact, stream, bytes);
        free(exact);
    }
    /* no bytes: nothing read, nothing written */
    chacha20_xor(key, 0, nonce, NULL, NULL, 0);
}

/* A stream cut into pieces at block boundaries continues where the last piece ended when
 * the counter is advanced by the blocks done. */
static void test_pieces_continue_the_stream(void **state)
{
    (void)state;
    uint64_t rng = 21;
    uint8_t key[CHACHA20_KEY_BYTES], nonce[CHACHA20_NONCE_BYTES];
    uint8_t whole[20 * CHACHA20_BLOCK_BYTES], pieces[sizeof(whole)], zeros[sizeof(whole)] = { 0 };

    fill_random(key, sizeof(key), &rng);
    fill_random(nonce, sizeof(nonce), &rng);
    chacha20_xor(key, 3, nonce, zeros, whole, sizeof(whole));
    for (size_t done = 0; done < 20;) {
        size_t blocks = 1 + rng_next(&rng) % 4;
        if (done + blocks > 20)
            blocks = 20 - done;
        chacha20_xor(key, 3 + (uint32_t)done, nonce, zeros, pieces + done * CHACHA20_BLOCK_BYTES,
                     blocks * CHACHA20_BLOCK_BYTES);
        done += blocks;
    }
    assert_memory_equal(pieces, whole, sizeof(whole));
}

/* The counter is 32 bits and wraps (RFC 8439 2.3 limits a nonce to 2^32 blocks): the block
 * after 0xffffffff is block 0. */
static void test_counter_wraps(void **state)
{
    (void)state;
    uint8_t key[CHACHA20_KEY_BYTES] = { 1 }, nonce[CHACHA20_NONCE_BYTES] = { 2 };
    uint8_t stream[2 * CHACHA20_BLOCK_BYTES], zeros[sizeof(stream)] = { 0 };
    uint8_t last[CHACHA20_BLOCK_BYTES], first[CHACHA20_BLOCK_BYTES];

    chacha20_xor(key, 0xffffffffu, nonce, zeros, stream, sizeof(stream));
    chacha20_block(key, 0xffffffffu, nonce, last);
    chacha20_block(key, 0, nonce, first);
    assert_memory_equal(stream, last, CHACHA20_BLOCK_BYTES);
    assert_memory_equal(stream + CHACHA20_BLOCK_BYTES, first, CHACHA20_BLOCK_BYTES);
}

/* chacha20_block_input16 is the block with counter = bytes 0-3 (little-endian) and nonce =
 * bytes 4-15; and every one of the 128 input bits matters. */
static void test_input16_form(void **state)
{
    (void)state;
    uint64_t rng = 16;
    uint8_t key[CHACHA20_KEY_BYTES], input[16], a[CHACHA20_BLOCK_BYTES], b[CHACHA20_BLOCK_BYTES];

    fill_random(key, sizeof(key), &rng);
    fill_random(input, sizeof(input), &rng);
    uint32_t counter = (uint32_t)input[0] | (uint32_t)input[1] << 8 | (uint32_t)input[2] << 16 |
                       (uint32_t)input[3] << 24;
    chacha20_block_input16(key, input, a);
    chacha20_block(key, counter, input + 4, b);
    assert_memory_equal(a, b, sizeof(a));
    for (int bit = 0; bit < 128; bit++) {
        input[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        chacha20_block_input16(key, input, b);
        assert_memory_not_equal(a, b, sizeof(a));
        input[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* and every key bit */
    for (int bit = 0; bit < 256; bit++) {
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        chacha20_block_input16(key, input, b);
        assert_memory_not_equal(a, b, sizeof(a));
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_function_vector_2_3_2),
        cmocka_unit_test(test_block_function_vectors_a_1),
        cmocka_unit_test(test_cipher_vector_2_4_2),
        cmocka_unit_test(test_cipher_vectors_a_2),
        cmocka_unit_test(test_every_length_and_alignment),
        cmocka_unit_test(test_pieces_continue_the_stream),
        cmocka_unit_test(test_counter_wraps),
        cmocka_unit_test(test_input16_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
