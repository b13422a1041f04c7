/*
 * Buddy zones for the tests, over metadata filled with garbage (a read of
 * a non-head would show up) from the tracked heap: a zone of free pages,
 * or one laid out with reserved holes. Include after <cmocka.h>.
 */
#ifndef TESTS_UNIT_TEST_ZONE_H
#define TESTS_UNIT_TEST_ZONE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mm/buddy.h"
#include "tests/unit/test_tracked.h" // tracked_calloc

static inline struct buddy_page *garbage_metadata(uint64_t page_count)
{
    size_t bytes = buddy_metadata_bytes(page_count);
    struct buddy_page *meta = tracked_calloc(1, bytes);
    memset(meta, 0xA5, bytes);
    return meta;
}

/* `count` free pages from `base`; returns the metadata to free. */
static inline struct buddy_page *free_zone(struct buddy_zone *zone, uint64_t base, uint64_t count)
{
    struct buddy_page *meta = garbage_metadata(count);
    buddy_zone_init(zone, base, count, meta);
    buddy_add_free_range(zone, base, count);
    return meta;
}

struct hole {
    uint64_t offset; /* from the zone base */
    uint64_t count;
};

struct zone_layout {
    const char *name;
    uint64_t base;
    uint64_t count;
    size_t hole_count;
    struct hole holes[4]; /* sorted, non-overlapping */
};

/* Covers the zone with free ranges and the layout's reserved holes. */
static inline void setup_zone(struct buddy_zone *zone, struct buddy_page **meta,
                              const struct zone_layout *layout)
{
    *meta = garbage_metadata(layout->count);
    memset(zone, 0x5A, sizeof(*zone)); /* init must set every field */
    buddy_zone_init(zone, layout->base, layout->count, *meta);
    uint64_t at = 0;
    for (size_t i = 0; i < layout->hole_count; i++) {
        const struct hole *h = &layout->holes[i];
        if (h->offset > at)
            buddy_add_free_range(zone, layout->base + at, h->offset - at);
        buddy_add_reserved_range(zone, layout->base + h->offset, h->count);
        at = h->offset + h->count;
    }
    if (at < layout->count)
        buddy_add_free_range(zone, layout->base + at, layout->count - at);
    assert_int_equal(buddy_check(zone), 0);
}

#endif
