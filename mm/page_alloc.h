/*
 * The kernel's physical page allocator: one buddy zone per contiguous run
 * of RAM in the firmware's memory map. Pages are identity mapped, so a
 * physical address is also a pointer.
 */
#ifndef MM_PAGE_ALLOC_H
#define MM_PAGE_ALLOC_H

#include <stdint.h>

#include "mm/buddy.h" // struct buddy_zone, buddy_visit_fn

#define PAGE_ALLOC_MAX_ZONES 128 /* a hibernation image records at most IMAGE_MAX_RANGES */

/* Who holds an allocated block; hibernation and `mem` read these. */
enum page_tag {
    PAGE_TAG_KERNEL = 1, /* kernel data structures */
    PAGE_TAG_MEMTEST,    /* fill/verify regions */
    PAGE_TAG_BALLOON,    /* given to the host by the balloon (never written) */
    PAGE_TAG_REPORTING,  /* free memory being reported to the host */
    PAGE_TAG_HIBERNATE,  /* the hibernation writer's own region: never saved */
    PAGE_TAG_SECRET,     /* the image key (pm/image_key.c): never saved */
    PAGE_TAG_HINTED,     /* free memory hinted to the host while it migrates */
    PAGE_TAG_COUNT,
};

struct memory_range;

struct page_alloc_stats {
    uint64_t total_pages;     /* every page in a zone */
    uint64_t free_pages;
    uint64_t allocated_pages; /* handed out by page_alloc */
    uint64_t reserved_pages;  /* kernel image, early block, allocator metadata */
    unsigned zone_count;
    uint64_t dropped_pages;   /* RAM left out (too many zones) */
};

/* Builds the zones from the boot memory map. Returns 0, or -1 when no
 * range can hold the metadata. */
int page_alloc_init(const struct memory_range *ranges, unsigned count);

/* Returns the physical address of 2^order contiguous, size-aligned pages,
 * or 0 when no such block is free. The pages are not cleared. */
uint64_t page_alloc(unsigned order, uint8_t tag);
/* A run of up to `wanted` contiguous pages (at most 2^max_order) handed
 * out as one-page blocks (see buddy_alloc_pages), each freed on its own:
 * the largest block that fits, leaves more than `keep_free` pages free
 * and ends at or below frame `last_pfn`, smaller ones where memory is
 * fragmented. Returns how many pages (0: none) and the first one's
 * address in *first. Never calls the OOM handler (the balloon takes pages
 * with it, and must not deflate itself to get them). */
unsigned page_alloc_run(unsigned wanted, unsigned max_order, uint64_t keep_free,
                        uint64_t last_pfn, uint8_t tag, uint64_t *first);
/* The largest free block of min_order..max_order whose taking leaves
 * more than `keep_free` pages free, as one allocated block (page_free
 * returns it); 0 when there is none. *order says its size. Never calls the
 * OOM handler (free page hinting takes blocks with it). */
uint64_t page_alloc_largest(unsigned min_order, unsigned max_order, uint64_t keep_free,
                            uint8_t tag, unsigned *order);
/* The smallest order whose block holds `bytes`. */
unsigned page_order_for(uint64_t bytes);
/* Returns a block; -1 if address is not the start of an allocated block. */
int page_free(uint64_t address);

/* Called when no zone has a block of `order`; it may free memory (the
 * balloon deflating on OOM) and returns how many pages it freed. The
 * allocation is retried once when it freed any. */
void page_alloc_set_oom_handler(uint64_t (*handler)(unsigned order));

/* Free page reporting (see buddy_take_unreported). */
uint64_t page_take_unreported(unsigned min_order, unsigned *order);
int page_free_reported(uint64_t address);
/* After a resume: every free block is unreported again (see
 * buddy_forget_reported); returns the pages concerned. */
uint64_t page_forget_reported(void);

void page_alloc_get_stats(struct page_alloc_stats *stats);
const struct buddy_zone *page_alloc_zone(unsigned index);

/* Visits every block of every zone in address order (see buddy_walk). */
int page_alloc_walk(buddy_visit_fn visit, void *context);

/* Takes every free block of every zone in address order (see
 * buddy_claim_free); give them back with page_free. */
int page_alloc_claim_free(uint8_t tag, buddy_visit_fn visit, void *context);

#endif
