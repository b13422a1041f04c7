/*
 * Zone spans from the memory map (see mm/memory_map.h).
 */
#include "mm/memory_map.h"

#include "boot/handoff.h" // struct memory_range, MEMORY_*
#include "mm/page.h"      // PAGE_SIZE

static int is_ram(const struct memory_range *range)
{
    return range->kind == MEMORY_USABLE || range->kind == MEMORY_KERNEL;
}

unsigned memory_map_spans(const struct memory_range *ranges, unsigned count,
                          struct memory_map_span *spans, unsigned max_spans, uint64_t *dropped_pages)
{
    unsigned found = 0;

    *dropped_pages = 0;
    for (unsigned i = 0; i < count;) {
        if (!is_ram(&ranges[i])) {
            i++;
            continue;
        }
        unsigned j = i;
        while (j + 1 < count && is_ram(&ranges[j + 1]) &&
               ranges[j].base + ranges[j].pages * PAGE_SIZE == ranges[j + 1].base)
            j++;
        struct memory_map_span span = {
            i, j, ranges[i].base / PAGE_SIZE,
            (ranges[j].base + ranges[j].pages * PAGE_SIZE - ranges[i].base) / PAGE_SIZE,
        };
        i = j + 1;
        if (found < max_spans) {
            spans[found++] = span;
            continue;
        }
        /* full: the smallest of the kept spans and this one goes, and the
         * rest close up, so the spans stay in address order */
        unsigned smallest = 0;
        for (unsigned k = 1; k < found; k++)
            if (spans[k].page_count < spans[smallest].page_count)
                smallest = k;
        if (found == 0 || span.page_count <= spans[smallest].page_count) {
            *dropped_pages += span.page_count;
            continue;
        }
        *dropped_pages += spans[smallest].page_count;
        for (unsigned k = smallest; k + 1 < found; k++)
            spans[k] = spans[k + 1];
        spans[found - 1] = span;
    }
    return found;
}
