/* Host unit tests for the image key's variable record (boot/handoff.c): the byte layout
 * docs/security.md gives, a round trip, and every way decode must refuse a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/handoff.h"

static struct image_key sample(void)
{
    struct image_key key;

    for (int i = 0; i < IMAGE_KEY_CHAIN_BYTES; i++)
        key.chain[i] = (uint8_t)(0xc0 + i);
    key.counter = 0x0102030405060708ull;
    for (int i = 0; i < IMAGE_KEY_SECRET_BYTES; i++)
        key.secret[i] = (uint8_t)(0x40 + i);
    return key;
}

static void test_layout_is_little_endian_and_64_bytes(void **state)
{
    struct image_key key = sample();
    uint8_t record[IMAGE_KEY_RECORD_BYTES];
    const uint8_t head[8] = { 'T', 'K', 'E', 'Y', 1, 0, 0, 0 };
    const uint8_t counter[8] = { 8, 7, 6, 5, 4, 3, 2, 1 };

    (void)state;
    memset(record, 0xee, sizeof(record));
    image_key_encode(&key, record);
    assert_memory_equal(record, head, 8);
    assert_memory_equal(record + 8, key.chain, 16);
    assert_memory_equal(record + 24, counter, 8);
    assert_memory_equal(record + 32, key.secret, 32);
}

static void test_round_trip(void **state)
{
    struct image_key key = sample(), back;
    uint8_t record[IMAGE_KEY_RECORD_BYTES];

    (void)state;
    image_key_encode(&key, record);
    memset(&back, 0, sizeof(back));
    assert_int_equal(image_key_decode(record, sizeof(record), &back), 0);
    assert_memory_equal(back.chain, key.chain, sizeof(key.chain));
    assert_true(back.counter == key.counter);
    assert_memory_equal(back.secret, key.secret, sizeof(key.secret));
}

static void test_refuses_other_sizes(void **state)
{
    struct image_key key = sample(), back;
    uint8_t record[IMAGE_KEY_RECORD_BYTES + 1];

    (void)state;
    image_key_encode(&key, record);
    for (uint64_t size = 0; size <= sizeof(record); size++)
        if (size != IMAGE_KEY_RECORD_BYTES)
            assert_int_equal(image_key_decode(record, size, &back), -1);
}

/* Any change to the magic or the version, and a counter of 0, is not a record. */
static void test_refuses_bad_magic_version_and_counter_zero(void **state)
{
    struct image_key key = sample(), back;
    uint8_t record[IMAGE_KEY_RECORD_BYTES];

    (void)state;
    for (int byte = 0; byte < 8; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            image_key_encode(&key, record);
            record[byte] ^= (uint8_t)(1u << bit);
            assert_int_equal(image_key_decode(record, sizeof(record), &back), -1);
        }
    }
    key.counter = 0;
    image_key_encode(&key, record);
    assert_int_equal(image_key_decode(record, sizeof(record), &back), -1);
}

static void test_source_names(void **state)
{
    (void)state;
    assert_string_equal(image_key_source_name(IMAGE_KEY_SOURCE_NONE), "none");
    assert_string_equal(image_key_source_name(IMAGE_KEY_SOURCE_RNG_PROTOCOL), "rng-protocol");
    assert_string_equal(image_key_source_name(IMAGE_KEY_SOURCE_RDRAND), "rdrand");
    assert_string_equal(image_key_source_name(77), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_is_little_endian_and_64_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_other_sizes),
        cmocka_unit_test(test_refuses_bad_magic_version_and_counter_zero),
        cmocka_unit_test(test_source_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
