/* Host unit tests for virtio/blk_request.c: the checks every virtio-blk
 * request passes, the descriptor chain, the status mapping, and the
 * builder that keeps requests within seg_max and size_max (virtio 1.2,
 * 5.2.6.1) for the driver, the hibernation writer and the resume reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/error.h"
#include "tests/unit/test_random.h" // rng_next, rng_below
#include "virtio/blk_request.h"

static const struct blk_request_limits plain = {
    .sectors = 1 << 20, .max_segments = 126, .max_segment_bytes = 0,
    .max_request_bytes = 1 << 20, .read_only = 0, .has_flush = 1,
};

static void test_check_accepts_ordinary_requests(void **state)
{
    (void)state;
    struct blk_segment one = { 0x10000, 4096 };
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_IN, 0, &one, 1), 0);
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_OUT, (1 << 20) - 8, &one, 1), 0);
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_FLUSH, 0, 0, 0), 0);
    struct blk_segment id = { 0x10000, BLK_ID_BYTES }; /* GET_ID: not whole sectors */
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_GET_ID, 0, &id, 1), 0);
}

static void test_check_refuses_what_the_disk_cannot_take(void **state)
{
    (void)state;
    struct blk_segment one = { 0x10000, 4096 };
    struct blk_request_limits ro = plain, no_flush = plain, small = plain;
    ro.read_only = 1;
    no_flush.has_flush = 0;
    small.max_segments = 2;
    small.max_segment_bytes = 1024;

    assert_int_equal(blk_request_check(&ro, BLK_TYPE_OUT, 0, &one, 1), ERROR_READ_ONLY);
    assert_int_equal(blk_request_check(&ro, BLK_TYPE_IN, 0, &one, 1), 0);
    assert_int_equal(blk_request_check(&no_flush, BLK_TYPE_FLUSH, 0, 0, 0), ERROR_UNSUPPORTED);
    /* past the end, or wrapping */
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_IN, (1 << 20) - 7, &one, 1), ERROR_RANGE);
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_IN, UINT64_MAX - 2, &one, 1), ERROR_RANGE);
    /* partial sectors, empty segments, no data, data on a flush */
    struct blk_segment odd = { 0x10000, 100 }, empty = { 0x10000, 0 };
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_IN, 0, &odd, 1), ERROR_INVALID);
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_IN, 0, &empty, 1), ERROR_INVALID);
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_IN, 0, 0, 0), ERROR_INVALID);
    assert_int_equal(blk_request_check(&plain, BLK_TYPE_FLUSH, 0, &one, 1), ERROR_INVALID);
    /* seg_max and size_max */
    struct blk_segment three[3] = { { 0x10000, 512 }, { 0x20000, 512 }, { 0x30000, 512 } };
    assert_int_equal(blk_request_check(&small, BLK_TYPE_IN, 0, three, 2), 0);
    assert_int_equal(blk_request_check(&small, BLK_TYPE_IN, 0, three, 3), ERROR_INVALID);
    struct blk_segment big = { 0x10000, 1536 };
    assert_int_equal(blk_request_check(&small, BLK_TYPE_IN, 0, &big, 1), ERROR_INVALID);
    struct blk_request_limits huge = plain;
    huge.max_segments = 1000;
    struct blk_segment many[BLK_MAX_SEGMENTS + 1];
    for (unsigned i = 0; i <= BLK_MAX_SEGMENTS; i++)
        many[i] = (struct blk_segment){ 0x100000 + i * 0x1000, 512 };
    assert_int_equal(blk_request_check(&huge, BLK_TYPE_IN, 0, many, BLK_MAX_SEGMENTS + 1), ERROR_INVALID);
}

static void test_chain_is_header_data_status(void **state)
{
    (void)state;
    struct blk_request_header header;
    uint8_t status = 0;
    struct blk_segment data[2] = { { 0x10000, 4096 }, { 0x30000, 512 } };
    struct vq_buffer buffers[4];

    assert_int_equal(blk_request_chain(&header, &status, BLK_TYPE_IN, 77, data, 2, buffers), 4);
    assert_int_equal(header.type, BLK_TYPE_IN);
    assert_int_equal(header.reserved, 0);
    assert_int_equal(header.sector, 77);
    assert_int_equal(status, BLK_STATUS_PENDING);
    assert_int_equal(buffers[0].address, (uint64_t)(uintptr_t)&header);
    assert_int_equal(buffers[0].length, 16);
    assert_false(buffers[0].device_writes);
    assert_true(buffers[1].device_writes && buffers[2].device_writes); /* a read fills them */
    assert_int_equal(buffers[2].address, 0x30000);
    assert_int_equal(buffers[3].address, (uint64_t)(uintptr_t)&status);
    assert_int_equal(buffers[3].length, 1);
    assert_true(buffers[3].device_writes);

    assert_int_equal(blk_request_chain(&header, &status, BLK_TYPE_OUT, 5, data, 1, buffers), 3);
    assert_false(buffers[1].device_writes); /* a write only reads them */
    assert_int_equal(blk_request_chain(&header, &status, BLK_TYPE_FLUSH, 99, 0, 0, buffers), 2);
    assert_int_equal(header.sector, 0); /* means nothing for a flush: 0 */
}

static void test_result_trusts_only_what_the_device_may_say(void **state)
{
    (void)state;
    assert_int_equal(blk_request_result(BLK_STATUS_OK, 0), 0);
    assert_int_equal(blk_request_result(BLK_STATUS_OK, 1), ERROR_DEVICE);
    assert_int_equal(blk_request_result(BLK_STATUS_IOERR, 0), ERROR_IO);
    assert_int_equal(blk_request_result(BLK_STATUS_UNSUPP, 0), ERROR_UNSUPPORTED);
    assert_int_equal(blk_request_result(BLK_STATUS_PENDING, 0), ERROR_DEVICE); /* never written */
    assert_int_equal(blk_request_result(3, 0), ERROR_DEVICE);
}

static void test_builder_merges_neighbours(void **state)
{
    (void)state;
    struct blk_request_builder b;
    blk_builder_init(&b, &plain);

    assert_int_equal(blk_builder_add(&b, 0x10000, 4096), 4096);
    assert_int_equal(blk_builder_add(&b, 0x11000, 4096), 4096); /* continues: one segment */
    assert_int_equal(blk_builder_add(&b, 0x20000, 4096), 4096); /* a gap: a new one */
    assert_int_equal(b.count, 2);
    assert_int_equal(b.segments[0].length, 8192);
    assert_int_equal(b.bytes, 12288);
    blk_builder_reset(&b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.bytes, 0);
}

static void test_builder_stops_at_the_request_limit(void **state)
{
    (void)state;
    struct blk_request_builder b;
    blk_builder_init(&b, &plain);

    assert_int_equal(blk_builder_add(&b, 0x100000, 3u << 20), 1u << 20);
    assert_int_equal(b.bytes, 1u << 20);
    assert_int_equal(blk_builder_add(&b, 0x900000, 4096), 0); /* full */
}

/* Whatever is added, every request the builder makes passes the check. */
static void check_requests_keep_limits(const struct blk_request_limits *limits, uint64_t seed)
{
    uint64_t rng = seed;
    struct blk_request_builder b;
    uint64_t address = 0x100000, added = 0, requested = 0;

    blk_builder_init(&b, limits);
    for (unsigned i = 0; i < 2000; i++) {
        /* whole pages, sometimes contiguous, sometimes not */
        if (rng_below(&rng, 3) == 0)
            address += 4096 * (1 + rng_below(&rng, 8));
        uint32_t length = 4096;
        added += length;
        while (length) {
            uint32_t taken = blk_builder_add(&b, address, length);
            assert_true(taken > 0 || b.count > 0);
            address += taken;
            length -= taken;
            if (length || b.bytes == b.max_bytes) {
                assert_int_equal(blk_request_check(limits, BLK_TYPE_OUT, 0, b.segments, b.count), 0);
                requested += b.bytes;
                blk_builder_reset(&b);
            }
        }
    }
    if (b.count) {
        assert_int_equal(blk_request_check(limits, BLK_TYPE_OUT, 0, b.segments, b.count), 0);
        requested += b.bytes;
    }
    assert_int_equal(requested, added); /* nothing lost, nothing twice */
}

static void test_builder_keeps_seg_max_and_size_max(void **state)
{
    (void)state;
    const struct { uint32_t segments, segment_bytes; } cases[] = {
        { 126, 0 }, { 1, 0 }, { 2, 4096 }, { 126, 512 }, { 3, 1536 }, { 14, 65536 }, { 1, 512 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct blk_request_limits limits = plain;
        limits.max_segments = cases[i].segments;
        limits.max_segment_bytes = cases[i].segment_bytes;
        print_message("seg_max %u size_max %u\n", cases[i].segments, cases[i].segment_bytes);
        check_requests_keep_limits(&limits, 0x1234 + i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts_ordinary_requests),
        cmocka_unit_test(test_check_refuses_what_the_disk_cannot_take),
        cmocka_unit_test(test_chain_is_header_data_status),
        cmocka_unit_test(test_result_trusts_only_what_the_device_may_say),
        cmocka_unit_test(test_builder_merges_neighbours),
        cmocka_unit_test(test_builder_stops_at_the_request_limit),
        cmocka_unit_test(test_builder_keeps_seg_max_and_size_max),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
