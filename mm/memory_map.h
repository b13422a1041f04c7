/*
 * From the firmware's memory map to the allocator's zones: a zone is a
 * maximal run of touching usable or kernel ranges. Pure, so the host
 * tests can feed it maps of any shape.
 */
#ifndef MM_MEMORY_MAP_H
#define MM_MEMORY_MAP_H

#include <stdint.h>

struct memory_range;

struct memory_map_span {
    unsigned first, last; /* the memory map ranges it covers */
    uint64_t base_pfn, page_count;
};

/* Fills spans (at most max_spans, in address order) and returns how many.
 * When the map has more runs than that, the smallest are left out (their
 * pages added to *dropped_pages) and the rest stay in address order.
 * ranges must be sorted by base, as boot_handoff gives them. */
unsigned memory_map_spans(const struct memory_range *ranges, unsigned count,
                          struct memory_map_span *spans, unsigned max_spans, uint64_t *dropped_pages);

#endif
