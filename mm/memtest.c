/*
 * Memory test regions. A region is a list of buddy blocks (2 MiB where
 * possible) recorded in chained index pages; page i of a region holds the
 * splitmix64 stream seeded by (seed, i), so verify can check any page on
 * its own and report exactly which one changed.
 */
#include "mm/memtest.h"

#include "lib/error.h"     // ERROR_*
#include "lib/random.h"    // random_next
#include "mm/page.h"       // PAGE_SIZE
#include "mm/page_alloc.h" // page_alloc, page_free

#define FILL_MAX_ORDER 9 /* 2 MiB blocks */
#define WORDS_PER_PAGE (PAGE_SIZE / 8)
#define BLOCKS_PER_INDEX_PAGE ((PAGE_SIZE - 16) / 8)

/* One page of a region's block list; entries are address | order. */
struct block_index_page {
    uint64_t next; /* physical address of the next index page, 0 at the end */
    uint64_t count;
    uint64_t blocks[BLOCKS_PER_INDEX_PAGE];
};

struct region {
    int used;
    uint64_t pages;
    uint64_t seed;
    uint64_t sum;
    struct block_index_page *index;
};

static struct region regions[MEMTEST_MAX_REGIONS];

static uint64_t page_seed(uint64_t seed, uint64_t page)
{
    uint64_t state = seed ^ (page * 0xd1342543de82ef95ull);

    return random_next(&state);
}

static void free_region_pages(struct region *region)
{
    struct block_index_page *index = region->index;

    while (index) {
        struct block_index_page *next = (void *)(uintptr_t)index->next;
        for (uint64_t i = 0; i < index->count; i++)
            page_free(index->blocks[i] & ~(PAGE_SIZE - 1));
        page_free((uint64_t)(uintptr_t)index);
        index = next;
    }
    region->index = 0;
}

/* Calls visit(address, page_index) for every page of the region in order. */
#define FOR_EACH_REGION_PAGE(region, address, page_index, body)                          \
    do {                                                                                 \
        uint64_t page_index = 0;                                                         \
        for (struct block_index_page *index_ = (region)->index; index_;                  \
             index_ = (void *)(uintptr_t)index_->next) {                                 \
            for (uint64_t b_ = 0; b_ < index_->count; b_++) {                            \
                uint64_t base_ = index_->blocks[b_] & ~(PAGE_SIZE - 1);                  \
                uint64_t count_ = 1ull << (index_->blocks[b_] & 0xff);                   \
                for (uint64_t p_ = 0; p_ < count_; p_++, page_index++) {                 \
                    uint64_t *address = (uint64_t *)(uintptr_t)(base_ + p_ * PAGE_SIZE); \
                    body                                                                 \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    } while (0)

static int allocate_blocks(struct region *region, uint64_t pages)
{
    struct block_index_page *last = 0;
    uint64_t remaining = pages;
    unsigned order = FILL_MAX_ORDER;

    while (remaining) {
        while ((1ull << order) > remaining)
            order--;
        uint64_t block = page_alloc(order, PAGE_TAG_MEMTEST);
        if (!block) {
            if (order == 0)
                return ERROR_NO_MEMORY;
            order--;
            continue;
        }
        if (!last || last->count == BLOCKS_PER_INDEX_PAGE) {
            struct block_index_page *fresh = (void *)(uintptr_t)page_alloc(0, PAGE_TAG_MEMTEST);
            if (!fresh) {
                page_free(block);
                return ERROR_NO_MEMORY;
            }
            fresh->next = 0;
            fresh->count = 0;
            if (last)
                last->next = (uint64_t)(uintptr_t)fresh;
            else
                region->index = fresh;
            last = fresh;
        }
        last->blocks[last->count++] = block | order;
        remaining -= 1ull << order;
    }
    return 0;
}

int memtest_fill(uint64_t pages, uint64_t seed, struct memtest_fill_result *result)
{
    unsigned id;

    /* no check against the free count: an allocation that runs short may
     * still succeed when the balloon deflates on OOM */
    if (pages == 0)
        return ERROR_INVALID;
    for (id = 0; id < MEMTEST_MAX_REGIONS && regions[id].used; id++)
        ;
    if (id == MEMTEST_MAX_REGIONS)
        return ERROR_FULL;

    struct region *region = &regions[id];
    *region = (struct region){ .used = 1, .pages = pages, .seed = seed };
    int error = allocate_blocks(region, pages);
    if (error) {
        free_region_pages(region);
        region->used = 0;
        return error;
    }

    uint64_t sum = 0;
    FOR_EACH_REGION_PAGE(region, address, page, {
        uint64_t state = page_seed(seed, page);
        for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) {
            uint64_t value = random_next(&state);
            address[w] = value;
            sum += value;
        }
    });
    region->sum = sum;
    *result = (struct memtest_fill_result){ id, pages, sum };
    return 0;
}

static int verify_region(const struct region *region, uint64_t *failed_page)
{
    FOR_EACH_REGION_PAGE(region, address, page, {
        uint64_t state = page_seed(region->seed, page);
        for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) {
            if (address[w] != random_next(&state)) {
                *failed_page = page;
                return -1;
            }
        }
    });
    return 0;
}

void memtest_verify(struct memtest_verify_result *result)
{
    *result = (struct memtest_verify_result){ .ok = 1 };
    for (unsigned id = 0; id < MEMTEST_MAX_REGIONS; id++) {
        if (!regions[id].used)
            continue;
        if (verify_region(&regions[id], &result->failed_page) != 0) {
            result->ok = 0;
            result->failed_region = id;
            return;
        }
        result->regions++;
        result->pages += regions[id].pages;
    }
}

int memtest_free(unsigned id, uint64_t *pages)
{
    if (id >= MEMTEST_MAX_REGIONS || !regions[id].used)
        return ERROR_NOT_FOUND;
    *pages = regions[id].pages;
    free_region_pages(&regions[id]);
    regions[id].used = 0;
    return 0;
}

int memtest_corrupt(unsigned id, uint64_t page)
{
    if (id >= MEMTEST_MAX_REGIONS || !regions[id].used)
        return ERROR_NOT_FOUND;
    if (page >= regions[id].pages)
        return ERROR_RANGE;
    FOR_EACH_REGION_PAGE(&regions[id], address, index, {
        if (index == page) {
            /* a byte in the middle of the page, so it is not a boundary case */
            ((volatile uint8_t *)address)[PAGE_SIZE / 2 + 3] ^= 0x5a;
            return 0;
        }
    });
    return ERROR_RANGE;
}

const char *memtest_error_text(int error)
{
    switch (error) {
    case ERROR_NO_MEMORY: return "not enough free memory";
    case ERROR_FULL: return "too many regions (free one first)";
    case ERROR_NOT_FOUND: return "no such region";
    case ERROR_RANGE: return "page out of range";
    case ERROR_INVALID: return "size must be at least 1 MiB";
    default: return "ok";
    }
}
