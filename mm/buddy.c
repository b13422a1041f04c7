/*
 * Buddy allocator core. A block of order k starts at a frame number that is
 * a multiple of 2^k (physical alignment, so 2 MiB blocks are 2 MiB aligned)
 * and lies inside the zone; its buddy is the block at pfn ^ 2^k. Allocation
 * and free are O(BUDDY_MAX_ORDER).
 */
#include "mm/buddy.h"

#include "lib/error.h"  // ERROR_CORRUPT
#include "lib/string.h" // memset
#include "mm/buddy_chunk.h" // state_of, record, set_state

static uint32_t page_index(const struct buddy_zone *zone, uint64_t pfn)
{
    return (uint32_t)(pfn - zone->base_pfn);
}

static uint64_t index_pfn(const struct buddy_zone *zone, uint32_t index)
{
    return zone->base_pfn + index;
}

/* At most this many chunks touch a zone of page_count pages, whatever its
 * alignment. */
static uint64_t chunk_bound(uint64_t page_count)
{
    return page_count ? (page_count >> BUDDY_LAZY_ORDER) + 2 : 0;
}

size_t buddy_pool_bytes(uint64_t page_count)
{
    return (size_t)(chunk_bound(page_count) * sizeof(struct buddy_chunk_slot));
}

size_t buddy_chunk_metadata_bytes(uint64_t page_count)
{
    return (size_t)((chunk_bound(page_count) * (sizeof(struct buddy_page) + 4 + 1) + 7) & ~7ull);
}

size_t buddy_metadata_bytes(uint64_t page_count)
{
    return buddy_pool_bytes(page_count) + buddy_chunk_metadata_bytes(page_count);
}

uint8_t *buddy_state_byte(struct buddy_zone *zone, uint64_t pfn)
{
    if (!buddy_zone_contains(zone, pfn))
        return 0;
    uint64_t index = pfn - zone->base_pfn, chunk = chunk_of(zone, index);
    if (zone->chunks[chunk] == BUDDY_CHUNK_READY)
        return &slot_of(zone, chunk)->states[chunk_offset(zone, index)];
    return chunk_start(zone, index) ? &zone->chunks[chunk] : 0;
}

void buddy_pool_init(struct buddy_pool *pool, void *slots, uint64_t bytes)
{
    pool->slots = slots;
    pool->capacity = bytes / sizeof(struct buddy_chunk_slot);
    pool->used = 0;
}

void buddy_zone_init(struct buddy_zone *zone, uint64_t base_pfn,
                     uint64_t page_count, void *metadata)
{
    buddy_pool_init(&zone->own_pool, metadata, buddy_pool_bytes(page_count));
    buddy_zone_init_pooled(zone, base_pfn, page_count,
                           (uint8_t *)metadata + buddy_pool_bytes(page_count), &zone->own_pool);
}

void buddy_zone_init_pooled(struct buddy_zone *zone, uint64_t base_pfn, uint64_t page_count,
                            void *chunk_metadata, struct buddy_pool *pool)
{
    uint64_t chunks = chunk_bound(page_count);

    zone->base_pfn = base_pfn;
    zone->page_count = page_count;
    zone->pool = pool;
    zone->chunk_pages = chunk_metadata;
    zone->chunk_slots = (uint32_t *)(zone->chunk_pages + chunks);
    zone->chunks = (uint8_t *)(zone->chunk_slots + chunks);
    /* every chunk lazy and all BUDDY_BODY: a page is "not a block head"
     * until a range covers it, so merging never trusts a page that is not
     * yet in the zone */
    memset(zone->chunks, BUDDY_BODY, chunks);
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++) {
        zone->free_head[order] = zone->free_tail[order] = BUDDY_NONE;
        zone->free_blocks[order] = 0;
    }
    zone->free_pages = 0;
    zone->reserved_pages = 0;
    zone->allocated_pages = 0;
}

/* Unreported blocks go to the head (allocation takes them first: their
 * memory is still backed by the host); reported ones to the tail. */
static void free_list_push(struct buddy_zone *zone, uint32_t index, unsigned order, int reported)
{
    /* the state first: it may move a lazy chunk's head record */
    set_state(zone, index, order, BUDDY_FREE);
    struct buddy_page *page = record(zone, index);

    page->order = (uint8_t)order;
    page->tag = reported ? BUDDY_TAG_REPORTED : 0;
    if (reported) {
        uint32_t tail = zone->free_tail[order];
        page->next = BUDDY_NONE;
        page->prev = tail;
        if (tail != BUDDY_NONE)
            record(zone, tail)->next = index;
        else
            zone->free_head[order] = index;
        zone->free_tail[order] = index;
    } else {
        uint32_t head = zone->free_head[order];
        page->prev = BUDDY_NONE;
        page->next = head;
        if (head != BUDDY_NONE)
            record(zone, head)->prev = index;
        else
            zone->free_tail[order] = index;
        zone->free_head[order] = index;
    }
    zone->free_blocks[order]++;
    zone->free_pages += 1ull << order;
}

static void free_list_remove(struct buddy_zone *zone, uint32_t index)
{
    struct buddy_page *page = record(zone, index);
    unsigned order = page->order;

    if (page->prev != BUDDY_NONE)
        record(zone, page->prev)->next = page->next;
    else
        zone->free_head[order] = page->next;
    if (page->next != BUDDY_NONE)
        record(zone, page->next)->prev = page->prev;
    else
        zone->free_tail[order] = page->prev;
    zone->free_blocks[order]--;
    zone->free_pages -= 1ull << order;
}

/* The largest order a block at pfn may have without leaving [pfn, end). */
static unsigned largest_fitting_order(uint64_t pfn, uint64_t end)
{
    unsigned order = 0;

    while (order < BUDDY_MAX_ORDER && (pfn & (1ull << order)) == 0 &&
           pfn + (2ull << order) <= end)
        order++;
    return order;
}

/* Puts a block on the free lists, merging it with its free buddies. A
 * merged block is new to the host, so only an unmerged one stays reported. */
static void release_block(struct buddy_zone *zone, uint64_t pfn, unsigned order, int reported)
{
    unsigned original_order = order;

    while (order < BUDDY_MAX_ORDER) {
        uint64_t buddy_pfn = pfn ^ (1ull << order);
        if (!buddy_zone_contains(zone, buddy_pfn) ||
            !buddy_zone_contains(zone, buddy_pfn + (1ull << order) - 1))
            break;
        uint32_t buddy = page_index(zone, buddy_pfn);
        if (state_of(zone, buddy) != BUDDY_FREE || record(zone, buddy)->order != order)
            break;
        free_list_remove(zone, buddy);
        /* the upper half's head is now inside the merged block */
        set_state(zone, page_index(zone, pfn | (1ull << order)), order, BUDDY_BODY);
        pfn &= ~(1ull << order);
        order++;
    }
    free_list_push(zone, page_index(zone, pfn), order, reported && order == original_order);
}

void buddy_add_free_range(struct buddy_zone *zone, uint64_t pfn, uint64_t count)
{
    uint64_t end = pfn + count;

    while (pfn < end) {
        unsigned order = largest_fitting_order(pfn, end);
        release_block(zone, pfn, order, 0);
        pfn += 1ull << order;
    }
}

void buddy_add_reserved_range(struct buddy_zone *zone, uint64_t pfn, uint64_t count)
{
    uint64_t end = pfn + count;

    while (pfn < end) {
        unsigned order = largest_fitting_order(pfn, end);
        set_state(zone, page_index(zone, pfn), order, BUDDY_RESERVED);
        struct buddy_page *page = record(zone, page_index(zone, pfn));
        page->order = (uint8_t)order;
        page->tag = 0;
        page->next = page->prev = BUDDY_NONE;
        zone->reserved_pages += 1ull << order;
        pfn += 1ull << order;
    }
}

int buddy_alloc(struct buddy_zone *zone, unsigned order, uint8_t tag, uint64_t *pfn)
{
    unsigned found = order;

    if (order > BUDDY_MAX_ORDER)
        return -1;
    while (found <= BUDDY_MAX_ORDER && zone->free_head[found] == BUDDY_NONE)
        found++;
    if (found > BUDDY_MAX_ORDER)
        return -1;

    uint32_t index = zone->free_head[found];
    free_list_remove(zone, index);
    /* split: the upper halves go back on the lists */
    while (found > order) {
        found--;
        free_list_push(zone, index + (1u << found), found, 0);
    }
    set_state(zone, index, order, BUDDY_ALLOCATED);
    struct buddy_page *page = record(zone, index);
    page->order = (uint8_t)order;
    page->tag = tag;
    page->next = page->prev = BUDDY_NONE;
    zone->allocated_pages += 1ull << order;
    *pfn = index_pfn(zone, index);
    return 0;
}

int buddy_alloc_pages(struct buddy_zone *zone, unsigned order, uint8_t tag, uint64_t *pfn)
{
    if (buddy_alloc(zone, order, tag, pfn) != 0)
        return -1;
    /* each page its own order-0 block: only metadata is written (the
     * records live outside the pages), never the pages themselves; an
     * order-0 head makes its chunk's per-page metadata ready first */
    uint64_t index = page_index(zone, *pfn);
    for (uint64_t i = 0; i < (1ull << order); i++) {
        set_state(zone, index + i, 0, BUDDY_ALLOCATED);
        struct buddy_page *page = record(zone, index + i);
        page->order = 0;
        page->tag = tag;
        page->next = page->prev = BUDDY_NONE;
    }
    return 0;
}

int buddy_allocated_block(const struct buddy_zone *zone, uint64_t pfn,
                          unsigned *order, uint8_t *tag)
{
    if (!buddy_zone_contains(zone, pfn))
        return -1;
    const struct buddy_page *page = record(zone, page_index(zone, pfn));
    if (state_of(zone, page_index(zone, pfn)) != BUDDY_ALLOCATED || page->order > BUDDY_MAX_ORDER ||
        (pfn & ((1ull << page->order) - 1)) != 0)
        return -1;
    if (order)
        *order = page->order;
    if (tag)
        *tag = page->tag;
    return 0;
}

static int free_block(struct buddy_zone *zone, uint64_t pfn, int reported)
{
    unsigned order;

    if (buddy_allocated_block(zone, pfn, &order, NULL) != 0)
        return -1;
    zone->allocated_pages -= 1ull << order;
    release_block(zone, pfn, order, reported);
    return 0;
}

int buddy_free(struct buddy_zone *zone, uint64_t pfn)
{
    return free_block(zone, pfn, 0);
}

int buddy_free_reported(struct buddy_zone *zone, uint64_t pfn)
{
    return free_block(zone, pfn, 1);
}

uint64_t buddy_forget_reported(struct buddy_zone *zone)
{
    uint64_t pages = 0;

    /* reported blocks sit at the tails; cleared, every block is simply
     * unreported, which keeps that order */
    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++)
        for (uint32_t index = zone->free_head[order]; index != BUDDY_NONE; index = record(zone, index)->next)
            if (record(zone, index)->tag == BUDDY_TAG_REPORTED) {
                record(zone, index)->tag = 0;
                pages += 1ull << order;
            }
    return pages;
}

int buddy_take_unreported(struct buddy_zone *zone, unsigned min_order, uint8_t tag,
                          uint64_t *pfn, unsigned *order)
{
    /* unreported blocks are at the heads of the lists */
    for (unsigned k = BUDDY_MAX_ORDER + 1; k-- > min_order;) {
        uint32_t index = zone->free_head[k];
        if (index == BUDDY_NONE || record(zone, index)->tag == BUDDY_TAG_REPORTED)
            continue;
        free_list_remove(zone, index);
        set_state(zone, index, k, BUDDY_ALLOCATED);
        record(zone, index)->tag = tag;
        record(zone, index)->next = record(zone, index)->prev = BUDDY_NONE;
        zone->allocated_pages += 1ull << k;
        *pfn = index_pfn(zone, index);
        *order = k;
        return 0;
    }
    return -1;
}

int buddy_claim_free(struct buddy_zone *zone, uint8_t tag, buddy_visit_fn visit, void *context)
{
    uint64_t index = 0;

    while (index < zone->page_count) {
        struct buddy_page *page = record(zone, index);
        uint8_t state = state_of(zone, index);
        uint64_t count = state == BUDDY_BODY || page->order > BUDDY_MAX_ORDER
                             ? 1 : 1ull << page->order;
        if (state == BUDDY_FREE) {
            free_list_remove(zone, (uint32_t)index);
            set_state(zone, index, page->order, BUDDY_ALLOCATED);
            page->tag = tag;
            page->next = page->prev = BUDDY_NONE;
            zone->allocated_pages += count;
            int result = visit(context, index_pfn(zone, (uint32_t)index), count, BUDDY_ALLOCATED, tag);
            if (result)
                return result;
        }
        index += count;
    }
    return 0;
}

int buddy_walk(const struct buddy_zone *zone, buddy_visit_fn visit, void *context)
{
    uint64_t index = 0;

    while (index < zone->page_count) {
        const struct buddy_page *page = record(zone, index);
        uint8_t state = state_of(zone, index);
        /* a body page here means the metadata is broken: report it as a
         * one-page block rather than loop or skip */
        uint64_t count = state == BUDDY_BODY || page->order > BUDDY_MAX_ORDER ? 1 : 1ull << page->order;
        int result = visit(context, index_pfn(zone, (uint32_t)index), count,
                           (enum buddy_state)state, page->tag);
        if (result)
            return result;
        index += count;
    }
    return 0;
}

struct check_totals {
    const struct buddy_zone *zone;
    uint64_t free_pages, reserved_pages, allocated_pages;
    uint64_t free_blocks[BUDDY_ORDER_COUNT];
    const char *failure;
};

static int check_failed(struct check_totals *totals, const char *failure)
{
    totals->failure = failure;
    return 1; /* stops the walk */
}

static int check_block(void *context, uint64_t pfn, uint64_t count,
                       enum buddy_state state, uint8_t tag)
{
    struct check_totals *totals = context;
    const struct buddy_zone *zone = totals->zone;
    unsigned order = record(zone, page_index(zone, pfn))->order;

    (void)tag;
    if (order > BUDDY_MAX_ORDER || (pfn & (count - 1)) != 0 ||
        pfn + count > zone->base_pfn + zone->page_count)
        return check_failed(totals, "a block misaligned or outside the zone");
    /* a lazy chunk is checked by its one byte, a ready one page by page */
    for (uint64_t i = 1; i < count;) {
        uint64_t index = page_index(zone, pfn + i);
        uint8_t chunk = zone->chunks[chunk_of(zone, index)];
        if (chunk == BUDDY_CHUNK_READY) {
            if (state_of(zone, index) != BUDDY_BODY)
                return check_failed(totals, "a head inside another block");
            i++;
            continue;
        }
        if (chunk_start(zone, index) && chunk != BUDDY_BODY)
            return check_failed(totals, "a head inside another block");
        i = ((pfn + i) | CHUNK_MASK) + 1 - pfn;
    }
    switch (state) {
    case BUDDY_FREE: {
        totals->free_pages += count;
        totals->free_blocks[order]++;
        uint64_t buddy_pfn = pfn ^ count;
        if (buddy_zone_contains(zone, buddy_pfn) &&
            buddy_zone_contains(zone, buddy_pfn + count - 1) && order < BUDDY_MAX_ORDER) {
            uint32_t buddy = page_index(zone, buddy_pfn);
            if (state_of(zone, buddy) == BUDDY_FREE && record(zone, buddy)->order == order)
                return check_failed(totals, "two free buddies not merged");
        }
        break;
    }
    case BUDDY_ALLOCATED:
        totals->allocated_pages += count;
        break;
    case BUDDY_RESERVED:
        totals->reserved_pages += count;
        break;
    default:
        return check_failed(totals, "a head with no valid state");
    }
    return 0;
}

const char *buddy_check_failure(const struct buddy_zone *zone)
{
    struct check_totals totals = { .zone = zone };

    if (buddy_walk(zone, check_block, &totals))
        return totals.failure;
    if (totals.free_pages != zone->free_pages ||
        totals.allocated_pages != zone->allocated_pages ||
        totals.reserved_pages != zone->reserved_pages ||
        totals.free_pages + totals.allocated_pages + totals.reserved_pages != zone->page_count)
        return "the counters disagree with the blocks";

    for (unsigned order = 0; order < BUDDY_ORDER_COUNT; order++) {
        uint64_t listed = 0;
        uint32_t prev = BUDDY_NONE;
        for (uint32_t index = zone->free_head[order]; index != BUDDY_NONE;
             index = record(zone, index)->next) {
            if (index >= zone->page_count)
                return "a free list leaves the zone";
            const struct buddy_page *page = record(zone, index);
            if (state_of(zone, index) != BUDDY_FREE || page->order != order || page->prev != prev)
                return "a free list is broken";
            if (++listed > totals.free_blocks[order])
                return "a free list has a cycle or a block twice";
            prev = index;
        }
        if (listed != totals.free_blocks[order] || listed != zone->free_blocks[order])
            return "a free block is missing from its list";
        if (zone->free_tail[order] != prev)
            return "a free list's tail is not its last block";
    }
    return 0;
}

int buddy_check(const struct buddy_zone *zone)
{
    return buddy_check_failure(zone) ? ERROR_CORRUPT : 0;
}
