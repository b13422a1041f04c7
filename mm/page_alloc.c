/*
 * Zones from the boot memory map. Usable and kernel ranges that touch form
 * one zone; anything else (firmware runtime, ACPI, MMIO, holes) separates
 * zones and is never handed out. The zones' metadata is carved from the
 * top of a usable range and stays reserved: one pool of per-page slots
 * that all zones share, which hands out slots from its top as chunks are
 * split (mm/buddy.h, BUDDY_LAZY_ORDER), then every zone's per-chunk
 * arrays, side by side at the top. So what boot writes lies together at
 * the top, a few hundred KiB whatever the RAM size.
 */
#include "mm/page_alloc.h"

#include "boot/handoff.h"  // struct memory_range
#include "console/log.h"   // klog
#include "mm/memory_map.h" // memory_map_spans
#include "mm/page.h"       // PAGE_SIZE

static struct buddy_zone zones[PAGE_ALLOC_MAX_ZONES];
static struct buddy_pool pool; /* every zone's slots for split chunks */
static unsigned zone_count;
static uint64_t dropped_pages;
static uint64_t (*oom_handler)(unsigned order);
static int in_oom_handler;

int page_alloc_init(const struct memory_range *ranges, unsigned count)
{
    static struct memory_map_span spans[PAGE_ALLOC_MAX_ZONES];
    unsigned span_count = memory_map_spans(ranges, count, spans, PAGE_ALLOC_MAX_ZONES, &dropped_pages);
    uint64_t metadata_bytes = 0, chunk_bytes = 0;

    for (unsigned s = 0; s < span_count; s++) {
        chunk_bytes += (buddy_chunk_metadata_bytes(spans[s].page_count) + 63) & ~63ull;
        metadata_bytes += buddy_pool_bytes(spans[s].page_count);
    }
    metadata_bytes += chunk_bytes;
    uint64_t metadata_pages = (metadata_bytes + PAGE_SIZE - 1) / PAGE_SIZE;

    /* the metadata goes at the top of the largest usable range below
     * 4 GiB that holds it (else of the largest one): the firmware works
     * at the top of low memory, so the part set-up writes, at the top of
     * the metadata, shares 2 MiB host pages the firmware already had
     * backed; high memory stays untouched */
    const struct memory_range *host = 0, *low = 0;
    for (unsigned i = 0; i < count; i++) {
        if (ranges[i].kind != MEMORY_USABLE)
            continue;
        if (!host || ranges[i].pages > host->pages)
            host = &ranges[i];
        if (ranges[i].base + ranges[i].pages * PAGE_SIZE <= (4ull << 30) &&
            ranges[i].pages >= metadata_pages + 1 && (!low || ranges[i].pages > low->pages))
            low = &ranges[i];
    }
    if (low)
        host = low;
    if (!host || host->pages < metadata_pages + 1) {
        klog("mm: no usable range can hold %llu pages of metadata",
             (unsigned long long)metadata_pages);
        return -1;
    }
    uint64_t metadata_pfn = host->base / PAGE_SIZE + host->pages - metadata_pages;
    uint8_t *metadata = (uint8_t *)(uintptr_t)(metadata_pfn * PAGE_SIZE);
    uint8_t *chunk_metadata = metadata + (metadata_bytes - chunk_bytes);

    buddy_pool_init(&pool, metadata, metadata_bytes - chunk_bytes);

    zone_count = 0;
    for (unsigned s = 0; s < span_count; s++) {
        struct buddy_zone *zone = &zones[zone_count++];
        buddy_zone_init_pooled(zone, spans[s].base_pfn, spans[s].page_count, chunk_metadata,
                               &pool);
        chunk_metadata += (buddy_chunk_metadata_bytes(spans[s].page_count) + 63) & ~63ull;

        for (unsigned i = spans[s].first; i <= spans[s].last; i++) {
            uint64_t pfn = ranges[i].base / PAGE_SIZE, end = pfn + ranges[i].pages;
            if (ranges[i].kind == MEMORY_KERNEL) {
                buddy_add_reserved_range(zone, pfn, end - pfn);
                continue;
            }
            /* usable, minus the metadata and page 0 (null stays invalid) */
            uint64_t cut_start = metadata_pfn, cut_end = metadata_pfn + metadata_pages;
            if (pfn == 0) {
                buddy_add_reserved_range(zone, 0, 1);
                pfn = 1;
            }
            if (cut_end <= pfn || cut_start >= end) {
                buddy_add_free_range(zone, pfn, end - pfn);
                continue;
            }
            if (cut_start > pfn)
                buddy_add_free_range(zone, pfn, cut_start - pfn);
            buddy_add_reserved_range(zone, cut_start > pfn ? cut_start : pfn,
                                     (cut_end < end ? cut_end : end) - (cut_start > pfn ? cut_start : pfn));
            if (cut_end < end)
                buddy_add_free_range(zone, cut_end, end - cut_end);
        }
    }
    if (dropped_pages)
        klog("mm: more than %u RAM runs; %llu pages left out", PAGE_ALLOC_MAX_ZONES,
             (unsigned long long)dropped_pages);
    klog("mm: %u zones, %llu KiB of metadata", zone_count,
         (unsigned long long)(metadata_pages * 4));
    return 0;
}

static struct buddy_zone *zone_of(uint64_t pfn)
{
    for (unsigned z = 0; z < zone_count; z++)
        if (buddy_zone_contains(&zones[z], pfn))
            return &zones[z];
    return 0;
}

/* The first zone, in address order, where `alloc` (buddy_alloc or
 * buddy_alloc_pages) finds a block; its address, or 0. */
static uint64_t alloc_in_zones(int (*alloc)(struct buddy_zone *, unsigned, uint8_t, uint64_t *),
                               unsigned order, uint8_t tag)
{
    uint64_t pfn;

    for (unsigned z = 0; z < zone_count; z++)
        if (alloc(&zones[z], order, tag, &pfn) == 0)
            return pfn * PAGE_SIZE;
    return 0;
}

static uint64_t try_alloc(unsigned order, uint8_t tag)
{
    return alloc_in_zones(buddy_alloc, order, tag);
}

uint64_t page_alloc(unsigned order, uint8_t tag)
{
    uint64_t address = try_alloc(order, tag);

    /* the handler may allocate itself (its bookkeeping): no recursion */
    if (!address && oom_handler && !in_oom_handler) {
        in_oom_handler = 1;
        uint64_t freed = oom_handler(order);
        in_oom_handler = 0;
        if (freed)
            address = try_alloc(order, tag);
    }
    return address;
}

static uint64_t alloc_pages(unsigned order, uint8_t tag)
{
    return alloc_in_zones(buddy_alloc_pages, order, tag);
}

unsigned page_alloc_run(unsigned wanted, unsigned max_order, uint64_t keep_free,
                        uint64_t last_pfn, uint8_t tag, uint64_t *first)
{
    struct page_alloc_stats stats;
    unsigned order = max_order;

    page_alloc_get_stats(&stats);
    if (stats.free_pages <= keep_free)
        return 0;
    while (order > 0 && ((1u << order) > wanted || stats.free_pages < keep_free + (1u << order)))
        order--;
    for (;; order--) {
        uint64_t address = alloc_pages(order, tag);
        if (address && (address + (PAGE_SIZE << order) - 1) / PAGE_SIZE <= last_pfn) {
            *first = address;
            return 1u << order;
        }
        for (unsigned i = 0; address && i < (1u << order); i++)
            page_free(address + i * PAGE_SIZE);
        if (order == 0)
            return 0;
    }
}

uint64_t page_alloc_largest(unsigned min_order, unsigned max_order, uint64_t keep_free,
                            uint8_t tag, unsigned *order)
{
    struct page_alloc_stats stats;

    page_alloc_get_stats(&stats);
    for (unsigned k = max_order + 1; k-- > min_order;) {
        if (stats.free_pages < keep_free + (1ull << k) + 1)
            continue;
        uint64_t address = try_alloc(k, tag);
        if (address) {
            *order = k;
            return address;
        }
    }
    return 0;
}

void page_alloc_set_oom_handler(uint64_t (*handler)(unsigned order))
{
    oom_handler = handler;
}

uint64_t page_take_unreported(unsigned min_order, unsigned *order)
{
    uint64_t pfn;

    for (unsigned z = 0; z < zone_count; z++)
        if (buddy_take_unreported(&zones[z], min_order, PAGE_TAG_REPORTING, &pfn, order) == 0)
            return pfn * PAGE_SIZE;
    return 0;
}

int page_free_reported(uint64_t address)
{
    struct buddy_zone *zone = zone_of(address / PAGE_SIZE);

    if (!zone || (address & (PAGE_SIZE - 1)))
        return -1;
    return buddy_free_reported(zone, address / PAGE_SIZE);
}

uint64_t page_forget_reported(void)
{
    uint64_t pages = 0;

    for (unsigned z = 0; z < zone_count; z++)
        pages += buddy_forget_reported(&zones[z]);
    return pages;
}

int page_free(uint64_t address)
{
    struct buddy_zone *zone = zone_of(address / PAGE_SIZE);

    if (!zone || (address & (PAGE_SIZE - 1)))
        return -1;
    return buddy_free(zone, address / PAGE_SIZE);
}

void page_alloc_get_stats(struct page_alloc_stats *stats)
{
    *stats = (struct page_alloc_stats){ .zone_count = zone_count, .dropped_pages = dropped_pages };
    for (unsigned z = 0; z < zone_count; z++) {
        stats->total_pages += zones[z].page_count;
        stats->free_pages += zones[z].free_pages;
        stats->allocated_pages += zones[z].allocated_pages;
        stats->reserved_pages += zones[z].reserved_pages;
    }
}

const struct buddy_zone *page_alloc_zone(unsigned index)
{
    return index < zone_count ? &zones[index] : 0;
}

int page_alloc_walk(buddy_visit_fn visit, void *context)
{
    for (unsigned z = 0; z < zone_count; z++) {
        int result = buddy_walk(&zones[z], visit, context);
        if (result)
            return result;
    }
    return 0;
}

int page_alloc_claim_free(uint8_t tag, buddy_visit_fn visit, void *context)
{
    for (unsigned z = 0; z < zone_count; z++) {
        int result = buddy_claim_free(&zones[z], tag, visit, context);
        if (result)
            return result;
    }
    return 0;
}

unsigned page_order_for(uint64_t bytes)
{
    unsigned order = 0;

    while ((PAGE_SIZE << order) < bytes)
        order++;
    return order;
}
