/* Host unit tests for mm/memory_map.c: zones from firmware maps of many
 * ranges (QEMU with many memory backends, NUMA nodes or slots can give
 * more than a handful), always in address order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/handoff.h"
#include "mm/memory_map.h"
#include "mm/page.h"

/* RAM runs of `pages` pages each, separated by one reserved page. */
static unsigned interleaved_map(struct memory_range *map, unsigned runs, uint64_t pages)
{
    unsigned n = 0;
    uint64_t base = 0x100000;
    for (unsigned i = 0; i < runs; i++) {
        /* each run is itself two touching ranges (usable + kernel) */
        map[n++] = (struct memory_range){ base, pages / 2, MEMORY_USABLE, 7 };
        map[n++] = (struct memory_range){ base + pages / 2 * PAGE_SIZE, pages - pages / 2, MEMORY_KERNEL, 2 };
        base += pages * PAGE_SIZE;
        map[n++] = (struct memory_range){ base, 1, i % 2 ? MEMORY_RESERVED : MEMORY_FIRMWARE, 0 };
        base += PAGE_SIZE;
    }
    return n;
}

static void test_a_100_range_map_gives_every_zone_in_order(void **state)
{
    (void)state;
    struct memory_range map[300];
    struct memory_map_span spans[128];
    uint64_t dropped = 99;
    unsigned n = interleaved_map(map, 100, 64);

    assert_int_equal(memory_map_spans(map, n, spans, 128, &dropped), 100);
    assert_int_equal(dropped, 0);
    for (unsigned i = 0; i < 100; i++) {
        assert_int_equal(spans[i].page_count, 64);
        assert_int_equal(spans[i].first, 3 * i);
        assert_int_equal(spans[i].last, 3 * i + 1);
        if (i)
            assert_true(spans[i].base_pfn > spans[i - 1].base_pfn + spans[i - 1].page_count - 1);
    }
}

static void test_more_runs_than_zones_drops_the_smallest_and_keeps_the_order(void **state)
{
    (void)state;
    struct memory_range map[300];
    struct memory_map_span spans[32];
    uint64_t dropped;
    unsigned n = interleaved_map(map, 100, 64);
    /* equal sizes: the first 32 are kept, later ties dropped */
    assert_int_equal(memory_map_spans(map, n, spans, 32, &dropped), 32);
    assert_int_equal(dropped, 68 * 64);
    for (unsigned i = 0; i < 32; i++)
        assert_int_equal(spans[i].first, 3 * i);

    /* unequal sizes: run k has k + 1 pages; the 32 largest are kept */
    n = 0;
    uint64_t base = 0x100000, total = 0;
    for (unsigned k = 0; k < 100; k++) {
        map[n++] = (struct memory_range){ base, k + 1, MEMORY_USABLE, 7 };
        base += (k + 2) * PAGE_SIZE;
        total += k + 1;
    }
    assert_int_equal(memory_map_spans(map, n, spans, 32, &dropped), 32);
    uint64_t kept = 0;
    for (unsigned i = 0; i < 32; i++) {
        assert_int_equal(spans[i].page_count, 69 + i); /* runs 68..99, in order */
        kept += spans[i].page_count;
    }
    assert_int_equal(kept + dropped, total);
}

static void test_nothing_but_reserved_gives_no_zone(void **state)
{
    (void)state;
    struct memory_range map[3] = {
        { 0, 16, MEMORY_RESERVED, 0 }, { 16 * PAGE_SIZE, 16, MEMORY_MMIO, 11 },
        { 32 * PAGE_SIZE, 16, MEMORY_ACPI_TABLES, 9 },
    };
    struct memory_map_span spans[4];
    uint64_t dropped;
    assert_int_equal(memory_map_spans(map, 3, spans, 4, &dropped), 0);
    assert_int_equal(memory_map_spans(map, 0, spans, 4, &dropped), 0);
    assert_int_equal(dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_100_range_map_gives_every_zone_in_order),
        cmocka_unit_test(test_more_runs_than_zones_drops_the_smallest_and_keeps_the_order),
        cmocka_unit_test(test_nothing_but_reserved_gives_no_zone),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
