/* Host unit tests for mm/buddy.c: zone setup, alloc/free, coalescing and walk,
 * including a seeded randomized run checked page by page against a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/test_random.h"  // rng_next, rng_below
#include "tests/unit/test_tracked.h" // tracked_*, free_tracked
#include "tests/unit/test_zone.h"    // free_zone, setup_zone, garbage_metadata

#include "lib/error.h" // ERROR_CORRUPT
#include "mm/buddy.h"

/* ---- helpers ---------------------------------------------------------- */

static void shuffle_u64(uint64_t *items, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(rng, i);
        uint64_t t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

static const struct zone_layout layout_unaligned = {
    "base 3, 1000 pages, hole [403,453)", 3, 1000, 1, { { 400, 50 } }
};
static const struct zone_layout layout_aligned = {
    "base 0, 4096 pages", 0, 4096, 0, { { 0, 0 } }
};
static const struct zone_layout layout_odd = {
    "base 0x12345, 3000 pages, holes at start, middle, end", 0x12345, 3000, 3,
    { { 0, 5 }, { 1000, 1 }, { 2990, 10 } }
};

static int layout_page_reserved(const struct zone_layout *layout, uint64_t pfn)
{
    uint64_t off = pfn - layout->base;
    for (size_t i = 0; i < layout->hole_count; i++)
        if (off >= layout->holes[i].offset &&
            off < layout->holes[i].offset + layout->holes[i].count)
            return 1;
    return 0;
}

static uint64_t layout_reserved_pages(const struct zone_layout *layout)
{
    uint64_t n = 0;
    for (size_t i = 0; i < layout->hole_count; i++)
        n += layout->holes[i].count;
    return n;
}

/* ---- block listings and snapshots ------------------------------------- */

struct block {
    uint64_t pfn;
    uint64_t count;
    enum buddy_state state;
    uint8_t tag;
};

struct listing {
    struct block *blocks;
    size_t n;
    size_t cap;
};

static void listing_add(struct listing *l, uint64_t pfn, uint64_t count,
                        enum buddy_state state, uint8_t tag)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->blocks = tracked_realloc(l->blocks, l->cap * sizeof(*l->blocks));
    }
    l->blocks[l->n++] = (struct block){ pfn, count, state, tag };
}

static void listing_free(struct listing *l)
{
    tracked_free(l->blocks);
    memset(l, 0, sizeof(*l));
}

static int record_block(void *context, uint64_t pfn, uint64_t count,
                        enum buddy_state state, uint8_t tag)
{
    listing_add(context, pfn, count, state, tag);
    return 0;
}

static void list_blocks(const struct buddy_zone *zone, struct listing *out)
{
    out->n = 0;
    assert_int_equal(buddy_walk(zone, record_block, out), 0);
}

static void assert_same_listing(const struct listing *a, const struct listing *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->blocks[i].pfn, b->blocks[i].pfn);
        assert_int_equal(a->blocks[i].count, b->blocks[i].count);
        assert_int_equal(a->blocks[i].state, b->blocks[i].state);
        assert_int_equal(a->blocks[i].tag, b->blocks[i].tag);
    }
}

struct snapshot {
    uint64_t free_blocks[BUDDY_ORDER_COUNT];
    uint64_t free_pages, allocated_pages, reserved_pages;
    struct listing blocks;
};

static void take_snapshot(const struct buddy_zone *zone, struct snapshot *s)
{
    memcpy(s->free_blocks, zone->free_blocks, sizeof(s->free_blocks));
    s->free_pages = zone->free_pages;
    s->allocated_pages = zone->allocated_pages;
    s->reserved_pages = zone->reserved_pages;
    memset(&s->blocks, 0, sizeof(s->blocks));
    list_blocks(zone, &s->blocks);
}

static void assert_same_snapshot(const struct snapshot *a, const struct snapshot *b)
{
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(a->free_blocks[order], b->free_blocks[order]);
    assert_int_equal(a->free_pages, b->free_pages);
    assert_int_equal(a->allocated_pages, b->allocated_pages);
    assert_int_equal(a->reserved_pages, b->reserved_pages);
    assert_same_listing(&a->blocks, &b->blocks);
}

static void assert_zone_unchanged(const struct buddy_zone *zone, const struct snapshot *before)
{
    struct snapshot now;
    take_snapshot(zone, &now);
    assert_same_snapshot(&now, before);
    listing_free(&now.blocks);
    assert_int_equal(buddy_check(zone), 0);
}

/*
 * The fully merged free blocks of a free run [a, b), computed independently
 * of the allocator: each page belongs to the largest aligned block (order at
 * most BUDDY_MAX_ORDER) that contains it and lies inside the run.
 */
static void canonical_free_blocks(uint64_t a, uint64_t b, struct listing *out)
{
    uint64_t p = a;
    while (p < b) {
        unsigned k = 0;
        for (unsigned j = 1; j <= BUDDY_MAX_ORDER; j++) {
            uint64_t head = p & ~((1ull << j) - 1);
            if (head < a || head + (1ull << j) > b)
                break;
            k = j;
        }
        uint64_t head = p & ~((1ull << k) - 1);
        assert_int_equal(head, p); /* sanity of the reference itself */
        listing_add(out, p, 1ull << k, BUDDY_FREE, 0);
        p += 1ull << k;
    }
}

/*
 * A freshly set up zone must list exactly the canonical free blocks of each
 * free run, and reserved blocks that cover exactly the holes.
 */
static void assert_fresh_layout(const struct buddy_zone *zone, const struct zone_layout *layout)
{
    struct listing expected_free = { 0 }, got = { 0 };
    uint64_t run_start = layout->base, end = layout->base + layout->count;
    for (uint64_t pfn = layout->base; pfn <= end; pfn++) {
        int boundary = pfn == end || layout_page_reserved(layout, pfn);
        if (boundary) {
            if (pfn > run_start)
                canonical_free_blocks(run_start, pfn, &expected_free);
            run_start = pfn + 1;
        }
    }

    list_blocks(zone, &got);
    uint64_t next = layout->base, reserved = 0;
    uint64_t per_order[BUDDY_ORDER_COUNT] = { 0 };
    size_t free_index = 0;
    for (size_t i = 0; i < got.n; i++) {
        const struct block *b = &got.blocks[i];
        assert_int_equal(b->pfn, next);
        next += b->count;
        if (b->state == BUDDY_FREE) {
            assert_true(free_index < expected_free.n);
            assert_int_equal(b->pfn, expected_free.blocks[free_index].pfn);
            assert_int_equal(b->count, expected_free.blocks[free_index].count);
            free_index++;
            per_order[__builtin_ctzll(b->count)]++;
        } else {
            assert_int_equal(b->state, BUDDY_RESERVED);
            assert_int_equal(b->pfn & (b->count - 1), 0);
            for (uint64_t p = b->pfn; p < b->pfn + b->count; p++)
                assert_true(layout_page_reserved(layout, p));
            reserved += b->count;
        }
    }
    assert_int_equal(next, end);
    assert_int_equal(free_index, expected_free.n);
    assert_int_equal(reserved, layout_reserved_pages(layout));
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(zone->free_blocks[order], per_order[order]);
    assert_int_equal(zone->reserved_pages, layout_reserved_pages(layout));
    assert_int_equal(zone->free_pages, layout->count - layout_reserved_pages(layout));
    assert_int_equal(zone->allocated_pages, 0);
    listing_free(&expected_free);
    listing_free(&got);
}

/* ---- zone setup ------------------------------------------------------- */

/* a pool slot per chunk the zone can touch (two more than its whole
 * chunks, for a zone that straddles chunk boundaries at both ends), and a
 * record, a slot number and a state byte per chunk, rounded up to 8 */
static void test_metadata_bytes_is_one_entry_per_page(void **state)
{
    (void)state;
    const size_t slot = sizeof(struct buddy_chunk_slot), entry = sizeof(struct buddy_page) + 4 + 1;
#define ROUND8(x) (((x) + 7) & ~(size_t)7)
    assert_int_equal(slot, BUDDY_CHUNK_PAGES * (sizeof(struct buddy_page) + 1));
    assert_int_equal(buddy_metadata_bytes(0), 0);
    assert_int_equal(buddy_pool_bytes(1), 2 * slot);
    assert_int_equal(buddy_chunk_metadata_bytes(1), ROUND8(2 * entry));
    assert_int_equal(buddy_metadata_bytes(1000), 3 * slot + ROUND8(3 * entry));
    assert_int_equal(buddy_metadata_bytes(1ull << 20),
                     ((1ull << 11) + 2) * slot + ROUND8(((1ull << 11) + 2) * entry));
#undef ROUND8
}

/* Zone set-up writes no per-page metadata, and each split chunk takes one
 * pool slot, once: the start-up cost follows what the allocator must
 * touch, not the RAM size. */
static void test_per_page_metadata_is_made_per_chunk_on_first_split(void **state)
{
    (void)state;
    const uint64_t count = 1ull << 20, base = 1ull << 20; /* 4 GiB at 4 GiB */
    struct buddy_page *meta = garbage_metadata(count);
    struct buddy_zone zone;
    uint64_t pfn, big, second;

    buddy_zone_init(&zone, base, count, meta);
    buddy_add_free_range(&zone, base, count);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.pool->used, 0);

    /* a whole-chunk block and bigger: still nothing per page */
    assert_int_equal(buddy_alloc(&zone, BUDDY_LAZY_ORDER, 1, &big), 0);
    assert_int_equal(buddy_alloc(&zone, BUDDY_MAX_ORDER, 1, &pfn), 0);
    assert_int_equal(zone.pool->used, 0);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(buddy_free(&zone, pfn), 0);

    /* one page: one chunk gets a slot, the top one of the pool; a second
     * page from the same chunk takes none */
    assert_int_equal(buddy_alloc(&zone, 0, 2, &pfn), 0);
    assert_int_equal(zone.pool->used, 1);
    assert_int_equal(buddy_alloc(&zone, 0, 2, &second), 0);
    assert_int_equal(second >> BUDDY_LAZY_ORDER, pfn >> BUDDY_LAZY_ORDER);
    assert_int_equal(zone.pool->used, 1);
    assert_int_equal(zone.chunk_slots[(pfn - base) >> BUDDY_LAZY_ORDER], zone.pool->capacity - 1);
    assert_int_equal(buddy_check(&zone), 0);

    /* a page inside a lazy chunk is no head, whatever its memory says */
    assert_int_equal(buddy_free(&zone, big + 1), -1);
    assert_int_equal(buddy_free(&zone, base + count - 1), -1);
    assert_null(buddy_state_byte(&zone, base + count - 1));
    assert_int_equal(buddy_free(&zone, second), 0);
    assert_int_equal(buddy_free(&zone, pfn), 0);
    assert_int_equal(buddy_free(&zone, big), 0);
    assert_int_equal(zone.free_pages, count);
    assert_int_equal(zone.free_blocks[BUDDY_MAX_ORDER], 4);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

/* Zones sharing a pool take their slots from it in turn. */
static void test_zones_share_one_pool(void **state)
{
    (void)state;
    const uint64_t count = 4096;
    void *slots = tracked_calloc(1, 2 * buddy_pool_bytes(count));
    void *chunks_a = tracked_calloc(1, buddy_chunk_metadata_bytes(count));
    void *chunks_b = tracked_calloc(1, buddy_chunk_metadata_bytes(count));
    struct buddy_pool pool;
    struct buddy_zone a, b;
    uint64_t pfn;

    buddy_pool_init(&pool, slots, 2 * buddy_pool_bytes(count));
    buddy_zone_init_pooled(&a, 0, count, chunks_a, &pool);
    buddy_zone_init_pooled(&b, 1ull << 20, count, chunks_b, &pool);
    buddy_add_free_range(&a, 0, count);
    buddy_add_free_range(&b, 1ull << 20, count);
    assert_int_equal(buddy_alloc(&a, 0, 1, &pfn), 0);
    assert_int_equal(buddy_alloc(&b, 0, 1, &pfn), 0);
    assert_int_equal(pool.used, 2);
    assert_int_equal(a.chunk_slots[0], pool.capacity - 1);
    assert_int_equal(b.chunk_slots[0], pool.capacity - 2);
    assert_int_equal(buddy_check(&a), 0);
    assert_int_equal(buddy_check(&b), 0);
    tracked_free(slots);
    tracked_free(chunks_a);
    tracked_free(chunks_b);
}

/* A head written into the interior of a lazy chunk is damage the check
 * still finds, through the chunk's byte. */
static void test_check_finds_a_head_inside_a_lazy_chunk(void **state)
{
    (void)state;
    struct buddy_page *meta = garbage_metadata(4096);
    struct buddy_zone zone;

    buddy_zone_init(&zone, 0, 4096, meta);
    buddy_add_free_range(&zone, 0, 4096); /* one order-12 block, 8 lazy chunks */
    assert_int_equal(buddy_check(&zone), 0);
    *buddy_state_byte(&zone, 3 * BUDDY_CHUNK_PAGES) = BUDDY_ALLOCATED;
    assert_string_equal(buddy_check_failure(&zone), "a head inside another block");
    *buddy_state_byte(&zone, 3 * BUDDY_CHUNK_PAGES) = BUDDY_BODY;
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

static void test_init_aligned_zone_gives_one_max_fitting_block(void **state)
{
    (void)state;
    struct buddy_page *meta = garbage_metadata(1024);
    struct buddy_zone zone;
    buddy_zone_init(&zone, 0, 1024, meta);
    assert_int_equal(zone.free_pages, 0);
    buddy_add_free_range(&zone, 0, 1024);
    assert_int_equal(buddy_check(&zone), 0);

    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(zone.free_blocks[order], order == 10 ? 1 : 0);
    assert_int_equal(zone.free_head[10], 0);
    assert_int_equal(zone.free_pages, 1024);
    struct listing got = { 0 };
    list_blocks(&zone, &got);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.blocks[0].pfn, 0);
    assert_int_equal(got.blocks[0].count, 1024);
    assert_int_equal(got.blocks[0].state, BUDDY_FREE);
    listing_free(&got);
    tracked_free(meta);
}

static void test_init_unaligned_base_with_reserved_hole(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_unaligned);
    assert_int_equal(zone.base_pfn, 3);
    assert_int_equal(zone.page_count, 1000);
    assert_fresh_layout(&zone, &layout_unaligned);
    /* the largest block is [512,768): [3,403) has no aligned 256-page block */
    for (unsigned order = 9; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(zone.free_blocks[order], 0);
    assert_int_equal(zone.free_blocks[8], 1);
    assert_int_equal(zone.free_blocks[0], 4); /* 3, 402, 453, 1002 */
    tracked_free(meta);
}

static void test_init_odd_layout_with_holes_at_both_ends(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_odd);
    assert_fresh_layout(&zone, &layout_odd);
    tracked_free(meta);

    setup_zone(&zone, &meta, &layout_aligned);
    assert_fresh_layout(&zone, &layout_aligned);
    tracked_free(meta);
}

static void test_init_ranges_in_any_order_and_pieces_give_same_blocks(void **state)
{
    (void)state;
    const struct zone_layout *layout = &layout_unaligned;
    struct buddy_zone reference_zone, zone;
    struct buddy_page *reference_meta;
    struct snapshot reference;
    setup_zone(&reference_zone, &reference_meta, layout);
    take_snapshot(&reference_zone, &reference);

    uint64_t seeds[] = { 1, 7, 0xfeed };
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        uint64_t rng = seeds[s];
        print_message("seed %llu\n", (unsigned long long)seeds[s]);
        struct buddy_page *meta = garbage_metadata(layout->count);
        buddy_zone_init(&zone, layout->base, layout->count, meta);
        /* the hole first, then every free page on its own, shuffled */
        buddy_add_reserved_range(&zone, layout->base + 400, 50);
        uint64_t pfns[1000];
        size_t n = 0;
        for (uint64_t pfn = layout->base; pfn < layout->base + layout->count; pfn++)
            if (!layout_page_reserved(layout, pfn))
                pfns[n++] = pfn;
        shuffle_u64(pfns, n, &rng);
        for (size_t i = 0; i < n; i++)
            buddy_add_free_range(&zone, pfns[i], 1);
        assert_int_equal(buddy_check(&zone), 0);
        assert_zone_unchanged(&zone, &reference);
        tracked_free(meta);
    }

    /* free ranges in odd-sized chunks, the hole in two parts, added last */
    struct buddy_page *meta = garbage_metadata(layout->count);
    buddy_zone_init(&zone, layout->base, layout->count, meta);
    buddy_add_free_range(&zone, 453, 100);
    buddy_add_free_range(&zone, 3, 397);
    buddy_add_free_range(&zone, 553, 450);
    buddy_add_free_range(&zone, 400, 3);
    buddy_add_reserved_range(&zone, 430, 23);
    buddy_add_reserved_range(&zone, 403, 27);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.reserved_pages, 50);
    struct snapshot now;
    take_snapshot(&zone, &now);
    /* reserved blocks may split differently; the free side must be identical */
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(now.free_blocks[order], reference.free_blocks[order]);
    assert_fresh_layout(&zone, layout);
    listing_free(&now.blocks);
    tracked_free(meta);

    listing_free(&reference.blocks);
    tracked_free(reference_meta);
}

/* The balloon's call: one block taken, handed out as single pages that
 * free one by one and merge back into the block they came from. */
static void test_alloc_pages_hands_out_single_pages_that_merge_back(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0x1000, 64);
    uint64_t pfn = 0;

    assert_int_equal(buddy_alloc_pages(&zone, 7, 3, &pfn), -1); /* 128 > 64 */
    assert_int_equal(buddy_alloc_pages(&zone, 4, 3, &pfn), 0);
    assert_int_equal(pfn % 16, 0);
    assert_int_equal(zone.allocated_pages, 16);
    assert_int_equal(zone.free_pages, 48);
    for (uint64_t i = 0; i < 16; i++) {
        unsigned order = 99;
        uint8_t tag = 0;
        assert_int_equal(buddy_allocated_block(&zone, pfn + i, &order, &tag), 0);
        assert_int_equal(order, 0);
        assert_int_equal(tag, 3);
    }
    assert_int_equal(buddy_check(&zone), 0);
    /* the block as a whole is no longer one allocation */
    for (uint64_t i = 0; i < 16; i += 2) {
        assert_int_equal(buddy_free(&zone, pfn + i), 0);
        assert_int_equal(buddy_free(&zone, pfn + i), -1); /* only once */
        assert_int_equal(buddy_check(&zone), 0);
    }
    for (uint64_t i = 1; i < 16; i += 2)
        assert_int_equal(buddy_free(&zone, pfn + i), 0);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.allocated_pages, 0);
    assert_int_equal(zone.free_pages, 64);
    assert_int_equal(zone.free_blocks[6], 1); /* all merged again */
    /* order 0 is an ordinary page */
    assert_int_equal(buddy_alloc_pages(&zone, 0, 3, &pfn), 0);
    assert_int_equal(buddy_free(&zone, pfn), 0);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

static void test_single_page_zone(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 7, 1);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.free_blocks[0], 1);

    uint64_t pfn = 0;
    assert_int_equal(buddy_alloc(&zone, 1, 0, &pfn), -1);
    assert_int_equal(buddy_alloc(&zone, 0, 9, &pfn), 0);
    assert_int_equal(pfn, 7);
    assert_int_equal(buddy_alloc(&zone, 0, 9, &pfn), -1);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(buddy_free(&zone, 7), 0);
    assert_int_equal(zone.free_blocks[0], 1);
    assert_int_equal(zone.free_pages, 1);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

static void test_fully_reserved_zone_never_allocates(void **state)
{
    (void)state;
    struct buddy_page *meta = garbage_metadata(100);
    struct buddy_zone zone;
    buddy_zone_init(&zone, 50, 100, meta);
    buddy_add_reserved_range(&zone, 50, 100);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.reserved_pages, 100);
    assert_int_equal(zone.free_pages, 0);
    uint64_t pfn;
    for (unsigned order = 0; order <= BUDDY_MAX_ORDER; order++)
        assert_int_equal(buddy_alloc(&zone, order, 1, &pfn), -1);
    assert_int_equal(buddy_free(&zone, 64), -1);
    assert_int_equal(buddy_allocated_block(&zone, 64, NULL, NULL), -1);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

/* ---- allocation ------------------------------------------------------- */

static void test_alloc_each_order_is_aligned_and_inside_zone(void **state)
{
    (void)state;
    /* two order-18 blocks: orders 18..0 all fit, one after the other */
    const uint64_t count = 2ull << BUDDY_MAX_ORDER;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0, count);
    assert_int_equal(buddy_check(&zone), 0);
    uint8_t *used = tracked_calloc(count, 1);

    for (int order = BUDDY_MAX_ORDER; order >= 0; order--) {
        uint64_t pfn = UINT64_MAX;
        uint8_t tag = (uint8_t)(0xC0 + order);
        assert_int_equal(buddy_alloc(&zone, (unsigned)order, tag, &pfn), 0);
        assert_int_equal(pfn & ((1ull << order) - 1), 0);
        assert_true(buddy_zone_contains(&zone, pfn));
        assert_true(buddy_zone_contains(&zone, pfn + (1ull << order) - 1));
        for (uint64_t p = pfn; p < pfn + (1ull << order); p++) {
            assert_int_equal(used[p], 0);
            used[p] = 1;
        }
        unsigned got_order = 99;
        uint8_t got_tag = 0;
        assert_int_equal(buddy_allocated_block(&zone, pfn, &got_order, &got_tag), 0);
        assert_int_equal(got_order, (unsigned)order);
        assert_int_equal(got_tag, tag);
        assert_int_equal(buddy_check(&zone), 0);
    }
    tracked_free(used);
    tracked_free(meta);

    /* unaligned base 3, 1000 pages: orders 0..8 fit somewhere, 9 and up never */
    for (unsigned order = 0; order <= BUDDY_MAX_ORDER; order++) {
        struct buddy_page *m;
        setup_zone(&zone, &m, &layout_unaligned);
        uint64_t pfn = UINT64_MAX;
        int r = buddy_alloc(&zone, order, 1, &pfn);
        if (order <= 8) {
            assert_int_equal(r, 0);
            assert_int_equal(pfn & ((1ull << order) - 1), 0);
            assert_true(pfn >= 3 && pfn + (1ull << order) <= 1003);
            assert_false(layout_page_reserved(&layout_unaligned, pfn));
            assert_false(layout_page_reserved(&layout_unaligned, pfn + (1ull << order) - 1));
            assert_int_equal(zone.allocated_pages, 1ull << order);
        } else {
            assert_int_equal(r, -1);
            assert_int_equal(zone.allocated_pages, 0);
        }
        assert_int_equal(buddy_check(&zone), 0);
        tracked_free(m);
    }
}

static void test_alloc_fails_when_nothing_fits(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_unaligned);

    /* take every page as order 0 */
    uint64_t pfn, taken = 0;
    while (buddy_alloc(&zone, 0, 3, &pfn) == 0) {
        taken++;
        assert_true(taken <= 950);
    }
    assert_int_equal(taken, 950);
    assert_int_equal(zone.free_pages, 0);
    assert_int_equal(zone.allocated_pages, 950);
    assert_int_equal(buddy_check(&zone), 0);

    struct snapshot full;
    take_snapshot(&zone, &full);
    for (unsigned order = 0; order <= BUDDY_MAX_ORDER; order++)
        assert_int_equal(buddy_alloc(&zone, order, 3, &pfn), -1);
    assert_zone_unchanged(&zone, &full);
    listing_free(&full.blocks);

    /* free every even pfn: 475 free pages, but no two of them are buddies */
    for (uint64_t p = 4; p < 1003; p += 2)
        if (!layout_page_reserved(&layout_unaligned, p))
            assert_int_equal(buddy_free(&zone, p), 0);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.free_pages, 475);
    assert_int_equal(zone.free_blocks[0], 475);
    struct snapshot fragmented;
    take_snapshot(&zone, &fragmented);
    for (unsigned order = 1; order <= BUDDY_MAX_ORDER; order++)
        assert_int_equal(buddy_alloc(&zone, order, 3, &pfn), -1);
    assert_zone_unchanged(&zone, &fragmented);
    listing_free(&fragmented.blocks);
    assert_int_equal(buddy_alloc(&zone, 0, 3, &pfn), 0);
    assert_int_equal(pfn % 2, 0);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

static void test_alloc_order_above_max_fails(void **state)
{
    (void)state;
    /* a zone with a free order-18 block, so only the order limit can refuse */
    const uint64_t count = 1ull << BUDDY_MAX_ORDER;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0, count);
    assert_int_equal(zone.free_blocks[BUDDY_MAX_ORDER], 1);
    struct snapshot before;
    take_snapshot(&zone, &before);

    const unsigned orders[] = { BUDDY_MAX_ORDER + 1, BUDDY_MAX_ORDER + 2, 31, 32, 63, 64,
                                255, 256, 0xffffffffu };
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
        uint64_t pfn;
        assert_int_equal(buddy_alloc(&zone, orders[i], 1, &pfn), -1);
        assert_zone_unchanged(&zone, &before);
    }
    listing_free(&before.blocks);
    tracked_free(meta);
}

/* The self-check the other tests lean on fails on a broken zone, naming
 * what broke, and passes again once the damage is undone. */
static void test_check_finds_each_kind_of_damage(void **state)
{
    struct buddy_zone zone;
    struct buddy_page *meta;
    uint64_t pfn;

    (void)state;
    setup_zone(&zone, &meta, &layout_aligned);
    assert_int_equal(buddy_alloc(&zone, 0, 1, &pfn), 0);
    assert_int_equal(pfn, 0); /* its buddy, pfn 1, is a free order-0 block */
    assert_null(buddy_check_failure(&zone));

    zone.free_pages++;
    assert_int_equal(buddy_check(&zone), ERROR_CORRUPT);
    assert_string_equal(buddy_check_failure(&zone), "the counters disagree with the blocks");
    zone.free_pages--;

    *buddy_state_byte(&zone, 0) = 7;
    assert_int_equal(buddy_check(&zone), ERROR_CORRUPT);
    assert_string_equal(buddy_check_failure(&zone), "a head with no valid state");
    *buddy_state_byte(&zone, 0) = BUDDY_FREE; /* free beside its free buddy */
    assert_int_equal(buddy_check(&zone), ERROR_CORRUPT);
    assert_string_equal(buddy_check_failure(&zone), "two free buddies not merged");
    *buddy_state_byte(&zone, 0) = BUDDY_ALLOCATED;

    uint32_t tail = zone.free_tail[0];
    zone.free_tail[0] = 0;
    assert_int_equal(buddy_check(&zone), ERROR_CORRUPT);
    assert_string_equal(buddy_check_failure(&zone), "a free list's tail is not its last block");
    zone.free_tail[0] = tail;

    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(buddy_free(&zone, pfn), 0);
    assert_int_equal(buddy_check(&zone), 0);
}

static void test_alloc_and_free_restores_zone(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_odd);
    struct snapshot initial;
    take_snapshot(&zone, &initial);

    for (unsigned order = 0; order <= 8; order++) {
        uint64_t pfn;
        assert_int_equal(buddy_alloc(&zone, order, (uint8_t)order, &pfn), 0);
        assert_int_equal(zone.allocated_pages, 1ull << order);
        assert_int_equal(zone.free_pages + zone.allocated_pages + zone.reserved_pages,
                         zone.page_count);
        assert_int_equal(buddy_check(&zone), 0);
        assert_int_equal(buddy_free(&zone, pfn), 0);
        assert_zone_unchanged(&zone, &initial);
    }
    listing_free(&initial.blocks);
    tracked_free(meta);
}

static void test_tags_are_kept_per_block(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_aligned);
    uint64_t pfns[256];
    for (unsigned t = 0; t < 256; t++)
        assert_int_equal(buddy_alloc(&zone, t % 3, (uint8_t)t, &pfns[t]), 0);
    assert_int_equal(buddy_check(&zone), 0);
    for (unsigned t = 0; t < 256; t++) {
        unsigned order;
        uint8_t tag;
        assert_int_equal(buddy_allocated_block(&zone, pfns[t], &order, &tag), 0);
        assert_int_equal(order, t % 3);
        assert_int_equal(tag, t);
    }
    tracked_free(meta);
}

/* ---- invalid frees ------------------------------------------------------ */

static int find_first_block(void *context, uint64_t pfn, uint64_t count,
                            enum buddy_state state, uint8_t tag)
{
    struct block *want = context;
    (void)tag;
    if (state == want->state && count >= want->count) {
        want->pfn = pfn;
        want->count = count;
        return 1;
    }
    return 0;
}

static void test_free_rejects_invalid_pfns_and_changes_nothing(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_unaligned);

    uint64_t a, b;
    assert_int_equal(buddy_alloc(&zone, 3, 0x11, &a), 0);
    assert_int_equal(buddy_alloc(&zone, 0, 0x22, &b), 0);
    assert_int_equal(buddy_check(&zone), 0);
    struct snapshot before;
    take_snapshot(&zone, &before);

    /* a non-head page inside an allocated block */
    for (uint64_t p = a + 1; p < a + 8; p++) {
        assert_int_equal(buddy_free(&zone, p), -1);
        assert_int_equal(buddy_allocated_block(&zone, p, NULL, NULL), -1);
    }
    assert_zone_unchanged(&zone, &before);

    /* the head of a free block, and a page inside it */
    struct block want = { .state = BUDDY_FREE, .count = 4 };
    assert_int_equal(buddy_walk(&zone, find_first_block, &want), 1);
    assert_int_equal(buddy_free(&zone, want.pfn), -1);
    assert_int_equal(buddy_free(&zone, want.pfn + 1), -1);
    assert_int_equal(buddy_free(&zone, want.pfn + want.count - 1), -1);
    assert_int_equal(buddy_allocated_block(&zone, want.pfn, NULL, NULL), -1);
    assert_zone_unchanged(&zone, &before);

    /* the head of a reserved block, and the hole's pages */
    want = (struct block){ .state = BUDDY_RESERVED, .count = 1 };
    assert_int_equal(buddy_walk(&zone, find_first_block, &want), 1);
    assert_true(layout_page_reserved(&layout_unaligned, want.pfn));
    assert_int_equal(buddy_free(&zone, want.pfn), -1);
    for (uint64_t p = 403; p < 453; p++)
        assert_int_equal(buddy_free(&zone, p), -1);
    assert_zone_unchanged(&zone, &before);

    /* pfns outside the zone */
    const uint64_t outside[] = { 0, 1, 2, 1003, 1004, 1024, 1ull << 32,
                                 (1ull << 32) + 3, UINT64_MAX };
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        assert_int_equal(buddy_free(&zone, outside[i]), -1);
        assert_int_equal(buddy_allocated_block(&zone, outside[i], NULL, NULL), -1);
    }
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);

    tracked_free(meta);
}

static void test_double_free_is_refused_when_block_did_not_merge(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0, 4);
    uint64_t pfn;
    for (int i = 0; i < 4; i++)
        assert_int_equal(buddy_alloc(&zone, 0, 1, &pfn), 0);
    assert_int_equal(zone.allocated_pages, 4);

    assert_int_equal(buddy_free(&zone, 0), 0); /* buddy 1 is live: no merge */
    assert_int_equal(zone.free_blocks[0], 1);
    struct snapshot before;
    take_snapshot(&zone, &before);
    assert_int_equal(buddy_free(&zone, 0), -1);
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);

    assert_int_equal(buddy_free(&zone, 1), 0); /* now 0 and 1 merge */
    assert_int_equal(zone.free_blocks[0], 0);
    assert_int_equal(zone.free_blocks[1], 1);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

/* ---- coalescing ------------------------------------------------------- */

static void check_full_coalescing(const struct zone_layout *layout, uint64_t seed)
{
    print_message("layout %s, seed %llu\n", layout->name, (unsigned long long)seed);
    uint64_t rng = seed;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, layout);
    struct snapshot initial;
    take_snapshot(&zone, &initial);

    uint64_t free_pages = zone.free_pages;
    uint64_t *pfns = tracked_calloc(free_pages, sizeof(*pfns));
    size_t n = 0;
    uint64_t pfn;
    while (buddy_alloc(&zone, 0, (uint8_t)n, &pfn) == 0) {
        assert_true(n < free_pages);
        assert_false(layout_page_reserved(layout, pfn));
        pfns[n++] = pfn;
    }
    assert_int_equal(n, free_pages);
    assert_int_equal(zone.free_pages, 0);
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(zone.free_blocks[order], 0);
    assert_int_equal(buddy_check(&zone), 0);

    shuffle_u64(pfns, n, &rng);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(buddy_free(&zone, pfns[i]), 0);
        if (i % 64 == 0)
            assert_int_equal(buddy_check(&zone), 0);
    }
    assert_zone_unchanged(&zone, &initial);
    listing_free(&initial.blocks);
    tracked_free(pfns);
    tracked_free(meta);
}

static void test_free_all_order0_in_random_order_fully_coalesces(void **state)
{
    (void)state;
    const uint64_t seeds[] = { 1, 42, 0xC0FFEE };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        check_full_coalescing(&layout_unaligned, seeds[i]);
        check_full_coalescing(&layout_aligned, seeds[i]);
        check_full_coalescing(&layout_odd, seeds[i]);
    }
}

/* ---- randomized test against a reference model ------------------------ */

#define OWNER_FREE 0u
#define OWNER_RESERVED UINT32_MAX

struct live_block {
    uint64_t pfn;
    unsigned order;
    uint8_t tag;
};

struct model {
    const struct buddy_zone *zone;
    uint64_t base, count;
    uint32_t *owner; /* per page: OWNER_FREE, OWNER_RESERVED or live index + 1 */
    struct live_block *live;
    size_t live_count;
    uint64_t free_pages, allocated_pages, reserved_pages;
};

static int model_has_free_aligned_block(const struct model *m, unsigned order)
{
    uint64_t size = 1ull << order;
    uint64_t first = (m->base + size - 1) & ~(size - 1);
    for (uint64_t p = first; p + size <= m->base + m->count; p += size) {
        uint64_t i = 0;
        while (i < size && m->owner[p - m->base + i] == OWNER_FREE)
            i++;
        if (i == size)
            return 1;
    }
    return 0;
}

static void model_set_owner(struct model *m, const struct live_block *b, uint32_t owner)
{
    for (uint64_t p = b->pfn; p < b->pfn + (1ull << b->order); p++)
        m->owner[p - m->base] = owner;
}

struct walk_state {
    const struct model *m;
    uint64_t next;
    size_t allocated_blocks;
};

static int compare_block_with_model(void *context, uint64_t pfn, uint64_t count,
                                    enum buddy_state state, uint8_t tag)
{
    struct walk_state *w = context;
    const struct model *m = w->m;
    assert_int_equal(pfn, w->next);
    assert_true(count != 0 && (count & (count - 1)) == 0);
    assert_int_equal(pfn & (count - 1), 0);
    assert_true(pfn + count <= m->base + m->count);
    w->next += count;
    uint32_t first = m->owner[pfn - m->base];
    switch (state) {
    case BUDDY_FREE:
        assert_int_equal(first, OWNER_FREE);
        break;
    case BUDDY_RESERVED:
        assert_int_equal(first, OWNER_RESERVED);
        break;
    case BUDDY_ALLOCATED: {
        assert_true(first != OWNER_FREE && first != OWNER_RESERVED);
        const struct live_block *b = &m->live[first - 1];
        assert_int_equal(b->pfn, pfn);
        assert_int_equal(1ull << b->order, count);
        assert_int_equal(b->tag, tag);
        w->allocated_blocks++;
        break;
    }
    default:
        fail_msg("block at pfn %llu has state %d", (unsigned long long)pfn, (int)state);
    }
    for (uint64_t p = pfn; p < pfn + count; p++)
        assert_int_equal(m->owner[p - m->base], first);
    return 0;
}

static void assert_zone_matches_model(const struct model *m)
{
    struct walk_state w = { m, m->base, 0 };
    assert_int_equal(buddy_walk(m->zone, compare_block_with_model, &w), 0);
    assert_int_equal(w.next, m->base + m->count);
    assert_int_equal(w.allocated_blocks, m->live_count);
    for (size_t i = 0; i < m->live_count; i++) {
        unsigned order = 99;
        uint8_t tag = 0;
        assert_int_equal(buddy_allocated_block(m->zone, m->live[i].pfn, &order, &tag), 0);
        assert_int_equal(order, m->live[i].order);
        assert_int_equal(tag, m->live[i].tag);
    }
}

static void assert_counters_match_model(const struct model *m)
{
    const struct buddy_zone *z = m->zone;
    assert_int_equal(z->free_pages, m->free_pages);
    assert_int_equal(z->allocated_pages, m->allocated_pages);
    assert_int_equal(z->reserved_pages, m->reserved_pages);
    assert_int_equal(z->free_pages + z->allocated_pages + z->reserved_pages, z->page_count);
    uint64_t listed = 0;
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        listed += z->free_blocks[order] << order;
    assert_int_equal(listed, z->free_pages);
}

static void model_free(struct model *m, struct buddy_zone *zone, size_t index)
{
    struct live_block gone = m->live[index];
    assert_int_equal(buddy_free(zone, gone.pfn), 0);
    model_set_owner(m, &gone, OWNER_FREE);
    m->free_pages += 1ull << gone.order;
    m->allocated_pages -= 1ull << gone.order;
    m->live[index] = m->live[--m->live_count];
    if (index < m->live_count)
        model_set_owner(m, &m->live[index], (uint32_t)index + 1);
}

static void run_random_ops(const struct zone_layout *layout, uint64_t seed, unsigned ops)
{
    print_message("random ops: layout %s, seed %#llx, %u ops\n", layout->name,
                  (unsigned long long)seed, ops);
    uint64_t rng = seed;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, layout);
    struct snapshot initial;
    take_snapshot(&zone, &initial);

    struct model m = { .zone = &zone, .base = layout->base, .count = layout->count };
    m.owner = tracked_calloc(layout->count, sizeof(*m.owner));
    m.live = tracked_calloc(layout->count, sizeof(*m.live));
    for (uint64_t p = layout->base; p < layout->base + layout->count; p++) {
        if (layout_page_reserved(layout, p)) {
            m.owner[p - layout->base] = OWNER_RESERVED;
            m.reserved_pages++;
        } else {
            m.free_pages++;
        }
    }
    assert_zone_matches_model(&m);
    assert_counters_match_model(&m);

    /* phases that lean towards alloc (filling the zone) or towards free */
    static const unsigned alloc_percent[] = { 80, 95, 30, 60, 10, 70 };
    unsigned failed_allocs = 0;
    for (unsigned op = 0; op < ops; op++) {
        unsigned bias = alloc_percent[(op / 500) % (sizeof(alloc_percent) / sizeof(alloc_percent[0]))];
        if (m.live_count == 0 || rng_below(&rng, 100) < bias) {
            unsigned order = (unsigned)rng_below(&rng, 7);
            uint8_t tag = (uint8_t)rng_next(&rng);
            int fits = model_has_free_aligned_block(&m, order);
            uint64_t pfn = UINT64_MAX;
            int r = buddy_alloc(&zone, order, tag, &pfn);
            if (!fits) {
                assert_int_equal(r, -1);
                failed_allocs++;
            } else {
                assert_int_equal(r, 0);
                struct live_block b = { pfn, order, tag };
                assert_int_equal(pfn & ((1ull << order) - 1), 0);
                assert_true(pfn >= m.base && pfn + (1ull << order) <= m.base + m.count);
                for (uint64_t p = pfn; p < pfn + (1ull << order); p++)
                    assert_int_equal(m.owner[p - m.base], OWNER_FREE); /* no overlap */
                m.live[m.live_count++] = b;
                model_set_owner(&m, &b, (uint32_t)m.live_count);
                m.free_pages -= 1ull << order;
                m.allocated_pages += 1ull << order;
                unsigned got_order = 99;
                uint8_t got_tag = (uint8_t)~tag;
                assert_int_equal(buddy_allocated_block(&zone, pfn, &got_order, &got_tag), 0);
                assert_int_equal(got_order, order);
                assert_int_equal(got_tag, tag);
            }
        } else {
            model_free(&m, &zone, (size_t)rng_below(&rng, m.live_count));
        }
        assert_counters_match_model(&m);
        assert_int_equal(buddy_check(&zone), 0);
        assert_zone_matches_model(&m);
    }
    assert_zone_matches_model(&m);
    print_message("  %u allocs refused, %zu blocks live at the end\n", failed_allocs,
                  m.live_count);

    while (m.live_count) {
        model_free(&m, &zone, (size_t)rng_below(&rng, m.live_count));
        assert_int_equal(buddy_check(&zone), 0);
    }
    assert_counters_match_model(&m);
    assert_zone_matches_model(&m);
    assert_zone_unchanged(&zone, &initial);

    listing_free(&initial.blocks);
    tracked_free(m.owner);
    tracked_free(m.live);
    tracked_free(meta);
}

static void test_random_alloc_free_matches_reference_model(void **state)
{
    (void)state;
    const uint64_t seeds[] = { 1, 2, 0xC0FFEE, 20240601, 0xDEADBEEFCAFEull };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        run_random_ops(&layout_unaligned, seeds[i], 4000);
        run_random_ops(&layout_odd, seeds[i], 4000);
        run_random_ops(&layout_aligned, seeds[i], 3000);
    }
}

/* ---- walk ------------------------------------------------------------- */

struct stop_after {
    unsigned calls;
    unsigned stop_at;
    int value;
    uint64_t last_pfn;
};

static int stop_visitor(void *context, uint64_t pfn, uint64_t count,
                        enum buddy_state state, uint8_t tag)
{
    struct stop_after *s = context;
    (void)count;
    (void)state;
    (void)tag;
    s->calls++;
    s->last_pfn = pfn;
    return s->calls == s->stop_at ? s->value : 0;
}

static void test_walk_stops_early_and_returns_visitor_value(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_unaligned);
    struct listing all = { 0 };
    list_blocks(&zone, &all);
    assert_true(all.n > 5);

    struct stop_after s = { 0, 3, 42, 0 };
    assert_int_equal(buddy_walk(&zone, stop_visitor, &s), 42);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.last_pfn, all.blocks[2].pfn);

    s = (struct stop_after){ 0, 1, -7, 0 };
    assert_int_equal(buddy_walk(&zone, stop_visitor, &s), -7);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last_pfn, 3);

    s = (struct stop_after){ 0, (unsigned)all.n, 5, 0 };
    assert_int_equal(buddy_walk(&zone, stop_visitor, &s), 5);
    assert_int_equal(s.calls, all.n);
    assert_int_equal(s.last_pfn, all.blocks[all.n - 1].pfn);

    /* never stopping: every block visited, walk returns 0 */
    s = (struct stop_after){ 0, 0, 1, 0 };
    assert_int_equal(buddy_walk(&zone, stop_visitor, &s), 0);
    assert_int_equal(s.calls, all.n);
    uint64_t pages = 0;
    for (size_t i = 0; i < all.n; i++)
        pages += all.blocks[i].count;
    assert_int_equal(pages, zone.page_count);
    listing_free(&all);
    tracked_free(meta);
}

/* ---- claiming every free block ------------------------------------------ */

#define CLAIM_TAG 0x5c

/* What buddy_claim_free showed its visitor. The visitor also checks that the
 * block it is shown is already taken, as an allocated block with the tag. */
struct claim_log {
    const struct buddy_zone *zone;
    uint8_t tag;
    unsigned stop_at; /* the call that returns value; 0: never stop */
    int value;
    struct listing blocks;
};

static int claim_visitor(void *context, uint64_t pfn, uint64_t count,
                         enum buddy_state state, uint8_t tag)
{
    struct claim_log *log = context;
    assert_int_equal(state, BUDDY_ALLOCATED);
    assert_int_equal(tag, log->tag);
    assert_true(count != 0 && (count & (count - 1)) == 0);
    unsigned order = 99;
    uint8_t got_tag = (uint8_t)~log->tag;
    assert_int_equal(buddy_allocated_block(log->zone, pfn, &order, &got_tag), 0);
    assert_int_equal(1ull << order, count);
    assert_int_equal(got_tag, log->tag);
    listing_add(&log->blocks, pfn, count, state, tag);
    return log->blocks.n == log->stop_at ? log->value : 0;
}

/* Allocates blocks of orders 0-5 until the zone is full or `blocks` are
 * live, then frees a random half of them: free runs of every size between
 * allocated blocks. Returns how many blocks are still allocated. */
static size_t fragment_zone(struct buddy_zone *zone, uint64_t seed, size_t blocks)
{
    uint64_t rng = seed;
    uint64_t *pfns = tracked_calloc(blocks, sizeof(*pfns));
    size_t n = 0;
    while (n < blocks) {
        unsigned order = (unsigned)rng_below(&rng, 6);
        if (buddy_alloc(zone, order, (uint8_t)(0x10 + order), &pfns[n]) != 0)
            break;
        n++;
    }
    shuffle_u64(pfns, n, &rng);
    size_t kept = n / 2;
    for (size_t i = kept; i < n; i++)
        assert_int_equal(buddy_free(zone, pfns[i]), 0);
    assert_int_equal(buddy_check(zone), 0);
    tracked_free(pfns);
    return kept;
}

static uint64_t listing_pages(const struct listing *l, enum buddy_state state)
{
    uint64_t pages = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->blocks[i].state == state)
            pages += l->blocks[i].count;
    return pages;
}

/* The largest order buddy_alloc can give right now (the block is given
 * back), or -1 when the zone has nothing free. */
static int largest_allocatable_order(struct buddy_zone *zone)
{
    for (int order = BUDDY_MAX_ORDER; order >= 0; order--) {
        uint64_t pfn;
        if (buddy_alloc(zone, (unsigned)order, 1, &pfn) == 0) {
            assert_int_equal(buddy_free(zone, pfn), 0);
            return order;
        }
    }
    return -1;
}

/* Claims the whole zone and checks the visits against the blocks before:
 * exactly the free blocks, in increasing address order, none overlapping
 * an allocated or reserved block, and the counters moved by their pages. */
static void claim_and_check(struct buddy_zone *zone, struct claim_log *log)
{
    struct snapshot before;
    take_snapshot(zone, &before);
    uint64_t base = zone->base_pfn;
    uint8_t *was_free = tracked_calloc(zone->page_count, 1);
    for (size_t i = 0; i < before.blocks.n; i++) {
        const struct block *b = &before.blocks.blocks[i];
        if (b->state == BUDDY_FREE)
            memset(was_free + (b->pfn - base), 1, b->count);
    }

    assert_int_equal(buddy_claim_free(zone, log->tag, claim_visitor, log), 0);

    uint64_t claimed = 0, end = 0;
    size_t free_index = 0;
    for (size_t i = 0; i < log->blocks.n; i++) {
        const struct block *c = &log->blocks.blocks[i];
        if (i > 0)
            assert_true(c->pfn >= end); /* strictly increasing, no overlap */
        end = c->pfn + c->count;
        assert_true(buddy_zone_contains(zone, c->pfn));
        assert_true(buddy_zone_contains(zone, end - 1));
        for (uint64_t p = c->pfn; p < end; p++)
            assert_int_equal(was_free[p - base], 1);
        /* the free blocks as they were: not split, not merged */
        while (free_index < before.blocks.n && before.blocks.blocks[free_index].state != BUDDY_FREE)
            free_index++;
        assert_true(free_index < before.blocks.n);
        assert_int_equal(c->pfn, before.blocks.blocks[free_index].pfn);
        assert_int_equal(c->count, before.blocks.blocks[free_index].count);
        free_index++;
        claimed += c->count;
    }
    while (free_index < before.blocks.n)
        assert_true(before.blocks.blocks[free_index++].state != BUDDY_FREE);
    assert_int_equal(claimed, before.free_pages);
    assert_int_equal(claimed, listing_pages(&before.blocks, BUDDY_FREE));
    assert_int_equal(zone->free_pages, 0);
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++) {
        assert_int_equal(zone->free_blocks[order], 0);
        assert_int_equal(zone->free_head[order], BUDDY_NONE);
        assert_int_equal(zone->free_tail[order], BUDDY_NONE);
    }
    assert_int_equal(zone->allocated_pages, before.allocated_pages + claimed);
    assert_int_equal(zone->reserved_pages, before.reserved_pages);
    assert_int_equal(buddy_check(zone), 0);

    /* the blocks allocated before keep their order and tag; reserved stay */
    struct listing after = { 0 };
    list_blocks(zone, &after);
    assert_int_equal(after.n, before.blocks.n);
    for (size_t i = 0; i < after.n; i++) {
        const struct block *a = &after.blocks[i], *b = &before.blocks.blocks[i];
        assert_int_equal(a->pfn, b->pfn);
        assert_int_equal(a->count, b->count);
        if (b->state == BUDDY_FREE) {
            assert_int_equal(a->state, BUDDY_ALLOCATED);
            assert_int_equal(a->tag, log->tag);
        } else {
            assert_int_equal(a->state, b->state);
            assert_int_equal(a->tag, b->tag);
        }
    }
    uint64_t pfn;
    assert_int_equal(buddy_alloc(zone, 0, 1, &pfn), -1);
    listing_free(&after);
    listing_free(&before.blocks);
    tracked_free(was_free);
}


static void test_claim_free_of_zone_without_free_pages_visits_nothing(void **state)
{
    (void)state;
    /* fully reserved */
    struct buddy_page *meta = garbage_metadata(100);
    struct buddy_zone zone;
    buddy_zone_init(&zone, 50, 100, meta);
    buddy_add_reserved_range(&zone, 50, 100);
    struct snapshot before;
    take_snapshot(&zone, &before);
    struct claim_log log = { &zone, CLAIM_TAG, 1, 9, { 0 } };
    assert_int_equal(buddy_claim_free(&zone, CLAIM_TAG, claim_visitor, &log), 0);
    assert_int_equal(log.blocks.n, 0);
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);
    tracked_free(meta);

    /* claimed once already: a second claim finds nothing */
    struct buddy_page *m;
    setup_zone(&zone, &m, &layout_unaligned);
    fragment_zone(&zone, 3, 40);
    log = (struct claim_log){ &zone, CLAIM_TAG, 0, 0, { 0 } };
    assert_int_equal(buddy_claim_free(&zone, CLAIM_TAG, claim_visitor, &log), 0);
    assert_true(log.blocks.n > 0);
    log.blocks.n = 0;
    log.stop_at = 1; /* would stop at once, were anything visited */
    log.value = 9;
    take_snapshot(&zone, &before);
    assert_int_equal(buddy_claim_free(&zone, CLAIM_TAG, claim_visitor, &log), 0);
    assert_int_equal(log.blocks.n, 0);
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);
    listing_free(&log.blocks);
    tracked_free(m);
}

/* Claims, gives every claimed block back with buddy_free (in a shuffled
 * order) and expects the zone exactly as before, max-order blocks too. */
static void check_claim_and_give_back(struct buddy_zone *zone, uint64_t seed)
{
    uint64_t rng = seed;
    int largest_before = largest_allocatable_order(zone);
    assert_true(largest_before >= 0);
    struct snapshot before;
    take_snapshot(zone, &before);

    struct claim_log log = { zone, CLAIM_TAG, 0, 0, { 0 } };
    claim_and_check(zone, &log);
    assert_int_equal(largest_allocatable_order(zone), -1);

    uint64_t *pfns = tracked_calloc(log.blocks.n, sizeof(*pfns));
    for (size_t i = 0; i < log.blocks.n; i++)
        pfns[i] = log.blocks.blocks[i].pfn;
    shuffle_u64(pfns, log.blocks.n, &rng);
    for (size_t i = 0; i < log.blocks.n; i++) {
        assert_int_equal(buddy_free(zone, pfns[i]), 0);
        assert_int_equal(buddy_free(zone, pfns[i]), -1); /* once only */
        if (i % 16 == 0)
            assert_int_equal(buddy_check(zone), 0);
    }
    assert_int_equal(zone->free_pages, before.free_pages);
    assert_int_equal(buddy_check(zone), 0);
    assert_zone_unchanged(zone, &before);
    assert_int_equal(largest_allocatable_order(zone), largest_before);

    tracked_free(pfns);
    listing_free(&log.blocks);
    listing_free(&before.blocks);
}

/* Runs check(layout, seed) over every test layout and each seed. */
static void for_each_layout_and_seed(const uint64_t *seeds, size_t seed_count,
                                     void (*check)(const struct zone_layout *layout, uint64_t seed))
{
    const struct zone_layout *layouts[] = { &layout_unaligned, &layout_odd, &layout_aligned };

    for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++)
        for (size_t s = 0; s < seed_count; s++) {
            print_message("layout %s, seed %#llx\n", layouts[l]->name, (unsigned long long)seeds[s]);
            check(layouts[l], seeds[s]);
        }
}

static void claim_fragmented_zone(const struct zone_layout *layout, uint64_t seed)
{
    struct buddy_zone zone;
    struct buddy_page *meta;

    setup_zone(&zone, &meta, layout);
    assert_true(fragment_zone(&zone, seed, 60) > 0);
    assert_true(zone.allocated_pages > 0);
    assert_true(zone.free_pages > 0);
    struct claim_log log = { &zone, CLAIM_TAG, 0, 0, { 0 } };
    claim_and_check(&zone, &log);
    assert_true(log.blocks.n > 1);
    listing_free(&log.blocks);
    tracked_free(meta);
}

static void claim_and_give_back_twice(const struct zone_layout *layout, uint64_t seed)
{
    struct buddy_zone zone;
    struct buddy_page *meta;

    setup_zone(&zone, &meta, layout);
    fragment_zone(&zone, seed, 50);
    check_claim_and_give_back(&zone, seed);
    tracked_free(meta);

    /* an untouched zone merges back into its largest blocks */
    setup_zone(&zone, &meta, layout);
    check_claim_and_give_back(&zone, seed);
    assert_fresh_layout(&zone, layout);
    tracked_free(meta);
}

static void test_claim_free_takes_every_free_block_in_address_order(void **state)
{
    (void)state;
    const uint64_t seeds[] = { 1, 0xC0FFEE };
    for_each_layout_and_seed(seeds, 2, claim_fragmented_zone);

    /* a fresh zone: everything but the holes is claimed */
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_odd);
    struct claim_log log = { &zone, 0, 0, 0, { 0 } }; /* tag 0 is a tag like any other */
    claim_and_check(&zone, &log);
    assert_int_equal(zone.allocated_pages, layout_odd.count - layout_reserved_pages(&layout_odd));
    listing_free(&log.blocks);
    tracked_free(meta);
}


static void test_claimed_blocks_can_be_freed_back(void **state)
{
    (void)state;
    const uint64_t seeds[] = { 7, 0xFEED };
    for_each_layout_and_seed(seeds, 2, claim_and_give_back_twice);

    /* two 1 GiB blocks, the first broken up by small allocations: the
     * second is claimed whole and a BUDDY_MAX_ORDER allocation works again */
    const uint64_t count = 2ull << BUDDY_MAX_ORDER;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0, count);
    uint64_t pfn;
    assert_int_equal(buddy_alloc(&zone, 0, 1, &pfn), 0);
    assert_int_equal(buddy_alloc(&zone, 3, 1, &pfn), 0);
    assert_int_equal(zone.free_blocks[BUDDY_MAX_ORDER], 1);
    assert_int_equal(largest_allocatable_order(&zone), BUDDY_MAX_ORDER);
    check_claim_and_give_back(&zone, 1);
    assert_int_equal(zone.free_blocks[BUDDY_MAX_ORDER], 1);
    assert_int_equal(buddy_alloc(&zone, BUDDY_MAX_ORDER, 2, &pfn), 0);
    assert_int_equal(pfn % (1ull << BUDDY_MAX_ORDER), 0);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

static void test_claim_free_stops_early_and_keeps_taken_blocks(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_odd);
    fragment_zone(&zone, 42, 60);
    struct snapshot before;
    take_snapshot(&zone, &before);
    struct listing free_before = { 0 };
    for (size_t i = 0; i < before.blocks.n; i++) {
        const struct block *b = &before.blocks.blocks[i];
        if (b->state == BUDDY_FREE)
            listing_add(&free_before, b->pfn, b->count, b->state, b->tag);
    }
    assert_true(free_before.n > 3);

    /* stop on the second block: exactly the first two are taken */
    struct claim_log log = { &zone, CLAIM_TAG, 2, 7, { 0 } };
    assert_int_equal(buddy_claim_free(&zone, CLAIM_TAG, claim_visitor, &log), 7);
    assert_int_equal(log.blocks.n, 2);
    uint64_t taken = 0;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(log.blocks.blocks[i].pfn, free_before.blocks[i].pfn);
        assert_int_equal(log.blocks.blocks[i].count, free_before.blocks[i].count);
        taken += log.blocks.blocks[i].count;
    }
    assert_int_equal(zone.free_pages, before.free_pages - taken);
    assert_int_equal(zone.allocated_pages, before.allocated_pages + taken);
    assert_int_equal(buddy_check(&zone), 0);
    /* the walk: the two blocks allocated with the tag, nothing else changed */
    struct listing now = { 0 };
    list_blocks(&zone, &now);
    assert_int_equal(now.n, before.blocks.n);
    for (size_t i = 0; i < now.n; i++) {
        const struct block *a = &now.blocks[i], *b = &before.blocks.blocks[i];
        assert_int_equal(a->pfn, b->pfn);
        assert_int_equal(a->count, b->count);
        if (a->pfn == free_before.blocks[0].pfn || a->pfn == free_before.blocks[1].pfn) {
            assert_int_equal(a->state, BUDDY_ALLOCATED);
            assert_int_equal(a->tag, CLAIM_TAG);
        } else {
            assert_int_equal(a->state, b->state);
            assert_int_equal(a->tag, b->tag);
        }
    }
    listing_free(&now);

    /* a negative value on the first of the rest: returned as is */
    log = (struct claim_log){ &zone, CLAIM_TAG + 1, 1, -3, { 0 } };
    assert_int_equal(buddy_claim_free(&zone, CLAIM_TAG + 1, claim_visitor, &log), -3);
    assert_int_equal(log.blocks.n, 1);
    assert_int_equal(log.blocks.blocks[0].pfn, free_before.blocks[2].pfn);
    taken += log.blocks.blocks[0].count;
    assert_int_equal(zone.free_pages, before.free_pages - taken);
    assert_int_equal(buddy_check(&zone), 0);
    listing_free(&log.blocks);

    /* claiming again takes the rest, in order, from where it stopped */
    log = (struct claim_log){ &zone, CLAIM_TAG, 0, 0, { 0 } };
    assert_int_equal(buddy_claim_free(&zone, CLAIM_TAG, claim_visitor, &log), 0);
    assert_int_equal(log.blocks.n, free_before.n - 3);
    for (size_t i = 0; i < log.blocks.n; i++) {
        assert_int_equal(log.blocks.blocks[i].pfn, free_before.blocks[i + 3].pfn);
        assert_int_equal(log.blocks.blocks[i].count, free_before.blocks[i + 3].count);
    }
    assert_int_equal(zone.free_pages, 0);
    assert_int_equal(zone.allocated_pages, before.allocated_pages + before.free_pages);
    assert_int_equal(buddy_check(&zone), 0);

    /* and everything given back restores the zone */
    for (size_t i = 0; i < free_before.n; i++)
        assert_int_equal(buddy_free(&zone, free_before.blocks[i].pfn), 0);
    assert_zone_unchanged(&zone, &before);

    listing_free(&log.blocks);
    listing_free(&free_before);
    listing_free(&before.blocks);
    tracked_free(meta);
}

static void test_claim_free_takes_reported_blocks_too(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_odd);
    fragment_zone(&zone, 5, 60);
    struct snapshot before;
    take_snapshot(&zone, &before);

    /* report every free block of order 3 and up; smaller ones stay unreported */
    uint64_t *reported = tracked_calloc(zone.page_count, sizeof(*reported));
    size_t n = 0;
    uint64_t pfn;
    unsigned order;
    while (buddy_take_unreported(&zone, 3, 0x77, &pfn, &order) == 0) {
        assert_true(order >= 3);
        reported[n++] = pfn;
    }
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buddy_free_reported(&zone, reported[i]), 0);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.free_pages, before.free_pages);
    assert_int_equal(buddy_take_unreported(&zone, 3, 0x77, &pfn, &order), -1);

    struct listing blocks = { 0 };
    list_blocks(&zone, &blocks);
    size_t free_reported = 0, free_unreported = 0;
    for (size_t i = 0; i < blocks.n; i++) {
        if (blocks.blocks[i].state != BUDDY_FREE)
            continue;
        if (blocks.blocks[i].tag == BUDDY_TAG_REPORTED)
            free_reported++;
        else
            free_unreported++;
    }
    assert_int_equal(free_reported, n);
    assert_true(free_unreported > 0);
    listing_free(&blocks);

    /* the claim takes both kinds, and the claim tag replaces "reported" */
    struct claim_log log = { &zone, CLAIM_TAG, 0, 0, { 0 } };
    claim_and_check(&zone, &log);
    assert_int_equal(log.blocks.n, free_reported + free_unreported);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < log.blocks.n && log.blocks.blocks[j].pfn != reported[i])
            j++;
        assert_true(j < log.blocks.n);
        uint8_t tag = 0;
        assert_int_equal(buddy_allocated_block(&zone, reported[i], NULL, &tag), 0);
        assert_int_equal(tag, CLAIM_TAG);
    }
    assert_int_equal(buddy_take_unreported(&zone, 0, 0x77, &pfn, &order), -1);

    /* given back, they are ordinary free blocks again */
    for (size_t i = 0; i < log.blocks.n; i++)
        assert_int_equal(buddy_free(&zone, log.blocks.blocks[i].pfn), 0);
    assert_int_equal(zone.free_pages, before.free_pages);
    assert_int_equal(buddy_check(&zone), 0);
    assert_zone_unchanged(&zone, &before);

    /* a zone whose free blocks are all reported */
    struct buddy_page *m;
    struct buddy_zone all;
    setup_zone(&all, &m, &layout_unaligned);
    n = 0;
    while (buddy_take_unreported(&all, 0, 0x77, &pfn, &order) == 0)
        reported[n++] = pfn;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buddy_free_reported(&all, reported[i]), 0);
    assert_int_equal(buddy_take_unreported(&all, 0, 0x77, &pfn, &order), -1);
    assert_int_equal(all.free_pages, layout_unaligned.count - layout_reserved_pages(&layout_unaligned));
    struct claim_log all_log = { &all, CLAIM_TAG, 0, 0, { 0 } };
    claim_and_check(&all, &all_log);
    assert_int_equal(all_log.blocks.n, n);
    listing_free(&all_log.blocks);
    tracked_free(m);

    listing_free(&log.blocks);
    listing_free(&before.blocks);
    tracked_free(reported);
    tracked_free(meta);
}

static void test_forget_reported_makes_every_block_reportable_again(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout_odd);
    fragment_zone(&zone, 9, 40);
    uint64_t free_before = zone.free_pages;

    /* report everything of order 2 and up */
    uint64_t *reported = tracked_calloc(zone.page_count, sizeof(*reported));
    size_t n = 0;
    uint64_t pfn, reported_pages = 0;
    unsigned order;
    while (buddy_take_unreported(&zone, 2, 0x77, &pfn, &order) == 0) {
        reported[n++] = pfn;
        reported_pages += 1ull << order;
    }
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buddy_free_reported(&zone, reported[i]), 0);
    assert_int_equal(buddy_take_unreported(&zone, 2, 0x77, &pfn, &order), -1);

    /* a new host: forgotten, the same pages are offered once more */
    assert_int_equal(buddy_forget_reported(&zone), reported_pages);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(zone.free_pages, free_before);
    uint64_t again = 0;
    while (buddy_take_unreported(&zone, 2, 0x77, &pfn, &order) == 0)
        again += 1ull << order;
    assert_int_equal(again, reported_pages);
    assert_int_equal(buddy_forget_reported(&zone), 0); /* taken, none are free and reported */
    tracked_free(reported);
    tracked_free(meta);
}

/* ---- big zones ---------------------------------------------------------- */

static void test_big_zone_has_1gib_blocks(void **state)
{
    (void)state;
    const uint64_t count = 1ull << 20;
    void *meta = tracked_calloc(1, buddy_metadata_bytes(count));
    struct buddy_zone zone;
    buddy_zone_init(&zone, 0, count, meta);
    buddy_add_free_range(&zone, 0, count);
    assert_int_equal(buddy_check(&zone), 0);
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        assert_int_equal(zone.free_blocks[order], order == BUDDY_MAX_ORDER ? 4 : 0);
    struct snapshot initial;
    take_snapshot(&zone, &initial);

    uint64_t pfns[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(buddy_alloc(&zone, BUDDY_MAX_ORDER, (uint8_t)i, &pfns[i]), 0);
        assert_int_equal(pfns[i] % (1ull << BUDDY_MAX_ORDER), 0);
        assert_true(pfns[i] < count);
        for (int j = 0; j < i; j++)
            assert_true(pfns[i] != pfns[j]);
        assert_int_equal(buddy_check(&zone), 0);
    }
    uint64_t pfn;
    assert_int_equal(buddy_alloc(&zone, BUDDY_MAX_ORDER, 0, &pfn), -1);
    assert_int_equal(buddy_alloc(&zone, 0, 0, &pfn), -1);
    assert_int_equal(zone.allocated_pages, count);
    for (int i = 0; i < 4; i++)
        assert_int_equal(buddy_free(&zone, pfns[i]), 0);
    assert_zone_unchanged(&zone, &initial);

    /* splitting a 1 GiB block and merging it back */
    assert_int_equal(buddy_alloc(&zone, 0, 0, &pfn), 0);
    for (unsigned order = 0; order < BUDDY_MAX_ORDER; order++)
        assert_int_equal(zone.free_blocks[order], 1);
    assert_int_equal(zone.free_blocks[BUDDY_MAX_ORDER], 3);
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(buddy_free(&zone, pfn), 0);
    assert_zone_unchanged(&zone, &initial);
    listing_free(&initial.blocks);
    tracked_free(meta);
}

static void test_big_unaligned_zone_at_high_pfn(void **state)
{
    (void)state;
    /* a base above 2^36 that is not aligned; 3 order-18 blocks fit inside */
    const struct zone_layout layout = {
        "high unaligned", (1ull << 36) - 3, (3ull << 18) + 10, 1, { { 100, 1 } }
    };
    struct buddy_zone zone;
    struct buddy_page *meta;
    setup_zone(&zone, &meta, &layout);
    assert_fresh_layout(&zone, &layout);
    assert_int_equal(zone.free_blocks[BUDDY_MAX_ORDER], 2);

    uint64_t pfn;
    assert_int_equal(buddy_alloc(&zone, BUDDY_MAX_ORDER, 1, &pfn), 0);
    assert_int_equal(pfn % (1ull << BUDDY_MAX_ORDER), 0);
    assert_true(buddy_zone_contains(&zone, pfn));
    assert_true(buddy_zone_contains(&zone, pfn + (1ull << BUDDY_MAX_ORDER) - 1));
    assert_int_equal(buddy_check(&zone), 0);
    assert_int_equal(buddy_free(&zone, pfn), 0);
    assert_fresh_layout(&zone, &layout);
    tracked_free(meta);
}

/* ---- regressions: stale head metadata and ranges added out of order ---- */

/* Freeing page 1 merges it into [0,2) but leaves page 1's old head metadata
 * saying ALLOCATED, so a second free of page 1 is accepted. */
static void test_regression_double_free_after_merge_is_refused(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0, 2);
    uint64_t a, b;
    assert_int_equal(buddy_alloc(&zone, 0, 1, &a), 0);
    assert_int_equal(buddy_alloc(&zone, 0, 1, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(buddy_free(&zone, 0), 0);
    assert_int_equal(buddy_free(&zone, 1), 0); /* merges into [0,2) */
    struct snapshot before;
    take_snapshot(&zone, &before);
    assert_int_equal(buddy_allocated_block(&zone, 1, NULL, NULL), -1);
    assert_int_equal(buddy_free(&zone, 1), -1);
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);
    tracked_free(meta);
}

/* Same root cause: a non-head page of a live block whose metadata is a stale
 * head from an earlier, merged block. */
static void test_regression_free_of_stale_head_inside_live_block_is_refused(void **state)
{
    (void)state;
    struct buddy_zone zone;
    struct buddy_page *meta = free_zone(&zone, 0, 2);
    uint64_t a, b, big;
    assert_int_equal(buddy_alloc(&zone, 0, 1, &a), 0);
    assert_int_equal(buddy_alloc(&zone, 0, 1, &b), 0);
    assert_int_equal(buddy_free(&zone, a), 0);
    assert_int_equal(buddy_free(&zone, b), 0);
    assert_int_equal(buddy_alloc(&zone, 1, 2, &big), 0);
    assert_int_equal(big, 0);
    struct snapshot before;
    take_snapshot(&zone, &before);
    assert_int_equal(buddy_free(&zone, 1), -1); /* page 1 is inside [0,2) */
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);
    tracked_free(meta);
}

/* The header says metadata need not be zeroed, yet a non-head page whose
 * garbage reads as ALLOCATED is accepted by buddy_free. */
static void test_regression_free_of_non_head_with_garbage_metadata_is_refused(void **state)
{
    (void)state;
    struct buddy_page *meta = tracked_calloc(1, buddy_metadata_bytes(8));
    memset(meta, 0x02, buddy_metadata_bytes(8)); /* order 2, state ALLOCATED */
    struct buddy_zone zone;
    buddy_zone_init(&zone, 0, 8, meta);
    buddy_add_free_range(&zone, 0, 8); /* one free order-3 block */
    assert_int_equal(buddy_check(&zone), 0);
    struct snapshot before;
    take_snapshot(&zone, &before);
    assert_int_equal(buddy_free(&zone, 4), -1);
    assert_zone_unchanged(&zone, &before);
    listing_free(&before.blocks);
    tracked_free(meta);
}

/* Re-initializing a zone over metadata from an earlier life: while page 0 is
 * added, page 1 is not yet covered, but its stale "free, order 0" metadata is
 * read and page 0 "merges" with it. */
static void test_regression_init_reads_uncovered_buddy_metadata(void **state)
{
    (void)state;
    struct buddy_page *meta = garbage_metadata(2);
    struct buddy_zone zone;
    uint64_t a, b;
    /* earlier life: leaves page 1 as a stale free order-0 head */
    buddy_zone_init(&zone, 0, 2, meta);
    buddy_add_free_range(&zone, 0, 2);
    assert_int_equal(buddy_alloc(&zone, 0, 1, &a), 0);
    assert_int_equal(buddy_alloc(&zone, 0, 1, &b), 0);
    assert_int_equal(buddy_free(&zone, b), 0);
    assert_int_equal(buddy_free(&zone, a), 0);
    assert_int_equal(buddy_check(&zone), 0);

    buddy_zone_init(&zone, 0, 2, meta);
    buddy_add_free_range(&zone, 0, 1);
    buddy_add_reserved_range(&zone, 1, 1);
    assert_int_equal(zone.free_pages, 1);
    assert_int_equal(zone.reserved_pages, 1);
    assert_int_equal(zone.free_blocks[0], 1);
    assert_int_equal(zone.free_blocks[1], 0);
    assert_int_equal(buddy_check(&zone), 0);
    tracked_free(meta);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_metadata_bytes_is_one_entry_per_page, free_tracked),
        cmocka_unit_test_teardown(test_per_page_metadata_is_made_per_chunk_on_first_split, free_tracked),
        cmocka_unit_test_teardown(test_zones_share_one_pool, free_tracked),
        cmocka_unit_test_teardown(test_check_finds_a_head_inside_a_lazy_chunk, free_tracked),
        cmocka_unit_test_teardown(test_init_aligned_zone_gives_one_max_fitting_block, free_tracked),
        cmocka_unit_test_teardown(test_init_unaligned_base_with_reserved_hole, free_tracked),
        cmocka_unit_test_teardown(test_init_odd_layout_with_holes_at_both_ends, free_tracked),
        cmocka_unit_test_teardown(test_init_ranges_in_any_order_and_pieces_give_same_blocks, free_tracked),
        cmocka_unit_test_teardown(test_single_page_zone, free_tracked),
        cmocka_unit_test_teardown(test_alloc_pages_hands_out_single_pages_that_merge_back, free_tracked),
        cmocka_unit_test_teardown(test_fully_reserved_zone_never_allocates, free_tracked),
        cmocka_unit_test_teardown(test_alloc_each_order_is_aligned_and_inside_zone, free_tracked),
        cmocka_unit_test_teardown(test_alloc_fails_when_nothing_fits, free_tracked),
        cmocka_unit_test_teardown(test_alloc_order_above_max_fails, free_tracked),
        cmocka_unit_test_teardown(test_alloc_and_free_restores_zone, free_tracked),
        cmocka_unit_test_teardown(test_check_finds_each_kind_of_damage, free_tracked),
        cmocka_unit_test_teardown(test_tags_are_kept_per_block, free_tracked),
        cmocka_unit_test_teardown(test_free_rejects_invalid_pfns_and_changes_nothing, free_tracked),
        cmocka_unit_test_teardown(test_double_free_is_refused_when_block_did_not_merge, free_tracked),
        cmocka_unit_test_teardown(test_free_all_order0_in_random_order_fully_coalesces, free_tracked),
        cmocka_unit_test_teardown(test_random_alloc_free_matches_reference_model, free_tracked),
        cmocka_unit_test_teardown(test_walk_stops_early_and_returns_visitor_value, free_tracked),
        cmocka_unit_test_teardown(test_claim_free_takes_every_free_block_in_address_order, free_tracked),
        cmocka_unit_test_teardown(test_claim_free_of_zone_without_free_pages_visits_nothing, free_tracked),
        cmocka_unit_test_teardown(test_claimed_blocks_can_be_freed_back, free_tracked),
        cmocka_unit_test_teardown(test_claim_free_stops_early_and_keeps_taken_blocks, free_tracked),
        cmocka_unit_test_teardown(test_claim_free_takes_reported_blocks_too, free_tracked),
        cmocka_unit_test_teardown(test_forget_reported_makes_every_block_reportable_again, free_tracked),
        cmocka_unit_test_teardown(test_big_zone_has_1gib_blocks, free_tracked),
        cmocka_unit_test_teardown(test_big_unaligned_zone_at_high_pfn, free_tracked),
        cmocka_unit_test_teardown(test_regression_double_free_after_merge_is_refused, free_tracked),
        cmocka_unit_test_teardown(test_regression_free_of_stale_head_inside_live_block_is_refused, free_tracked),
        cmocka_unit_test_teardown(test_regression_free_of_non_head_with_garbage_metadata_is_refused, free_tracked),
        cmocka_unit_test_teardown(test_regression_init_reads_uncovered_buddy_metadata, free_tracked),
    };
    return cmocka_run_group_tests_name("buddy", tests, NULL, NULL);
}
