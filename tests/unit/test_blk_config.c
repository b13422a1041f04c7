/* Host unit tests for virtio/blk_config.c: what a virtio-blk device
 * reports in its configuration, including absurd values a lying device
 * could give, and what the driver takes from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/blk_config.h"

#define BIT(n) (1ull << (n))

static struct blk_limits poisoned(void)
{
    struct blk_limits limits;
    memset(&limits, 0x5a, sizeof(limits));
    return limits;
}

static void test_plain_disk_gets_the_defaults(void **state)
{
    (void)state;
    struct blk_config_report report = { .capacity = 2048 };
    struct blk_limits limits = poisoned();
    assert_null(blk_config_check(&report, &limits));
    assert_int_equal(limits.sectors, 2048);
    assert_int_equal(limits.block_size, 512);
    assert_int_equal(limits.max_segments, BLK_CONFIG_MAX_SEGMENTS);
    assert_int_equal(limits.max_segment_bytes, 0);
    assert_false(limits.read_only);
    assert_false(limits.has_flush);
    assert_false(limits.ignored_block_size);
}

static void test_offered_limits_are_taken(void **state)
{
    (void)state;
    struct blk_config_report report = {
        .features = BIT(BLK_F_SEG_MAX) | BIT(BLK_F_SIZE_MAX) | BIT(BLK_F_BLK_SIZE) | BIT(BLK_F_RO) |
                    BIT(BLK_F_FLUSH),
        .capacity = 1ull << 30, .seg_max = 16, .size_max = 65536 + 100, .blk_size = 4096,
    };
    struct blk_limits limits = poisoned();
    assert_null(blk_config_check(&report, &limits));
    assert_int_equal(limits.max_segments, 16);
    assert_int_equal(limits.max_segment_bytes, 65536); /* whole sectors */
    assert_int_equal(limits.block_size, 4096);
    assert_true(limits.read_only);
    assert_true(limits.has_flush);
}

static void test_fields_of_features_not_offered_are_ignored(void **state)
{
    (void)state;
    struct blk_config_report report = { .capacity = 8, .seg_max = 0, .size_max = 1, .blk_size = 3 };
    struct blk_limits limits = poisoned();
    assert_null(blk_config_check(&report, &limits));
    assert_int_equal(limits.max_segments, BLK_CONFIG_MAX_SEGMENTS);
    assert_int_equal(limits.max_segment_bytes, 0);
    assert_int_equal(limits.block_size, 512);
}

static void test_absurd_capacity_is_refused(void **state)
{
    (void)state;
    const uint64_t capacities[] = { BLK_CONFIG_MAX_SECTORS + 1, 1ull << 63, UINT64_MAX };
    for (size_t i = 0; i < sizeof(capacities) / sizeof(capacities[0]); i++) {
        struct blk_config_report report = { .capacity = capacities[i] };
        struct blk_limits limits;
        assert_string_equal(blk_config_check(&report, &limits), "capacity out of range");
    }
    struct blk_config_report largest = { .capacity = BLK_CONFIG_MAX_SECTORS };
    struct blk_limits limits;
    assert_null(blk_config_check(&largest, &limits));
}

static void test_absurd_segment_limits(void **state)
{
    (void)state;
    struct blk_limits limits;
    struct blk_config_report no_segments = { .features = BIT(BLK_F_SEG_MAX), .capacity = 8, .seg_max = 0 };
    assert_string_equal(blk_config_check(&no_segments, &limits), "seg_max is 0");

    /* more than the ring can carry: capped, not believed */
    struct blk_config_report huge = { .features = BIT(BLK_F_SEG_MAX), .capacity = 8, .seg_max = UINT32_MAX };
    assert_null(blk_config_check(&huge, &limits));
    assert_int_equal(limits.max_segments, BLK_CONFIG_MAX_SEGMENTS);

    const uint32_t tiny[] = { 0, 1, 511 };
    for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++) {
        struct blk_config_report report = { .features = BIT(BLK_F_SIZE_MAX), .capacity = 8, .size_max = tiny[i] };
        assert_string_equal(blk_config_check(&report, &limits), "size_max below one sector");
    }
    struct blk_config_report biggest = { .features = BIT(BLK_F_SIZE_MAX), .capacity = 8, .size_max = UINT32_MAX };
    assert_null(blk_config_check(&biggest, &limits));
    assert_int_equal(limits.max_segment_bytes, UINT32_MAX & ~511u);
}

static void test_absurd_block_size_is_ignored(void **state)
{
    (void)state;
    const uint32_t sizes[] = { 0, 1, 256, 511, 513, 3000, 131072, UINT32_MAX };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct blk_config_report report = { .features = BIT(BLK_F_BLK_SIZE), .capacity = 8, .blk_size = sizes[i] };
        struct blk_limits limits = poisoned();
        assert_null(blk_config_check(&report, &limits));
        assert_int_equal(limits.block_size, 512);
        assert_true(limits.ignored_block_size);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_disk_gets_the_defaults),
        cmocka_unit_test(test_offered_limits_are_taken),
        cmocka_unit_test(test_fields_of_features_not_offered_are_ignored),
        cmocka_unit_test(test_absurd_capacity_is_refused),
        cmocka_unit_test(test_absurd_segment_limits),
        cmocka_unit_test(test_absurd_block_size_is_ignored),
    };
    return cmocka_run_group_tests_name("blk_config", tests, NULL, NULL);
}
