/*
 * Buddy allocator core for one zone: a contiguous run of physical page
 * frames. Plain C with no kernel state, so the host unit tests run exactly
 * this code. The per-page metadata lives outside the pages it describes:
 * free pages are never written, which hibernation and the balloon rely on
 * (a free page need not be saved; a ballooned page belongs to the host).
 */
#ifndef MM_BUDDY_H
#define MM_BUDDY_H

#include <stddef.h>
#include <stdint.h>

#define BUDDY_MAX_ORDER 18 /* 1 GiB blocks of 4 KiB pages */
#define BUDDY_ORDER_COUNT (BUDDY_MAX_ORDER + 1)
#define BUDDY_NONE 0xffffffffu
/* tag of a free block the host was told about (free page reporting) */
#define BUDDY_TAG_REPORTED 0xff

enum buddy_state {
    BUDDY_BODY = 0,      /* not the first page of a block */
    BUDDY_FREE = 1,      /* head of a free block, on a free list */
    BUDDY_ALLOCATED = 2, /* head of a block handed out by buddy_alloc */
    BUDDY_RESERVED = 3,  /* head of a block that is never handed out */
};

/* Only the first page (the head) of a block has a meaningful record; the
 * state of every other page is BUDDY_BODY. The per-page metadata is made
 * lazily, one chunk of 2^BUDDY_LAZY_ORDER pages at a time: a chunk nobody
 * has split below its own size keeps its one possible head (record and
 * state) in the per-chunk arrays and has no per-page metadata at all. The
 * first split of a chunk takes it a slot from a pool, in the order chunks
 * are split. So setting up a zone writes a few bytes per chunk in one
 * small array, and the metadata written grows with the chunks split, not
 * with the RAM (QEMU backs guest RAM lazily, 2 MiB at the first touch:
 * each fresh 2 MiB costs the host milliseconds, and under TCG every byte
 * the guest writes costs time). */
#define BUDDY_LAZY_ORDER 9 /* 2 MiB chunks */
#define BUDDY_CHUNK_PAGES (1u << BUDDY_LAZY_ORDER)
/* a chunk whose per-page metadata is in a pool slot */
#define BUDDY_CHUNK_READY 0xff

struct buddy_page {
    uint32_t next; /* free list links: page indexes within the zone */
    uint32_t prev;
    uint8_t order;
    uint8_t tag;   /* the owner's label for an allocated block */
    uint16_t unused;
};

struct buddy_chunk_slot {
    struct buddy_page pages[BUDDY_CHUNK_PAGES]; /* by offset in the chunk */
    uint8_t states[BUDDY_CHUNK_PAGES];          /* enum buddy_state */
};

/* Slots for split chunks, handed out from the top down (the used ones sit
 * together, next to what lies above the pool); zones may share one. */
struct buddy_pool {
    struct buddy_chunk_slot *slots;
    uint64_t capacity;
    uint64_t used;
};

struct buddy_zone {
    uint64_t base_pfn;
    uint64_t page_count;
    struct buddy_pool *pool;
    struct buddy_pool own_pool; /* buddy_zone_init's */
    /* per chunk, chunk 0 holding base_pfn: while lazy, its first page's
     * record and state; once split, its slot in the pool */
    struct buddy_page *chunk_pages;
    uint32_t *chunk_slots;
    uint8_t *chunks; /* the first page's state, or BUDDY_CHUNK_READY */
    uint32_t free_head[BUDDY_ORDER_COUNT]; /* unreported blocks first */
    uint32_t free_tail[BUDDY_ORDER_COUNT]; /* reported blocks at the end */
    uint64_t free_blocks[BUDDY_ORDER_COUNT];
    uint64_t free_pages;
    uint64_t reserved_pages;
    uint64_t allocated_pages;
};

/* Bytes of metadata a zone of page_count pages needs: its pool slots (one
 * per chunk it can split) and its per-chunk arrays; buddy_metadata_bytes
 * is their sum. All are multiples of 8. */
size_t buddy_metadata_bytes(uint64_t page_count);
size_t buddy_pool_bytes(uint64_t page_count);
size_t buddy_chunk_metadata_bytes(uint64_t page_count);

/*
 * Sets up an empty zone. Every page must then be covered exactly once by
 * buddy_add_free_range or buddy_add_reserved_range before the zone is used.
 * The metadata (buddy_metadata_bytes, 8-byte aligned) need not be zeroed:
 * init clears one byte per chunk, and nothing per page.
 */
void buddy_zone_init(struct buddy_zone *zone, uint64_t base_pfn,
                     uint64_t page_count, void *metadata);
/* The same with the per-chunk arrays (buddy_chunk_metadata_bytes, 8-byte
 * aligned) apart, and the slots from `pool`, which zones may share (the
 * kernel keeps what set-up writes together in a few host pages). */
void buddy_zone_init_pooled(struct buddy_zone *zone, uint64_t base_pfn, uint64_t page_count,
                            void *chunk_metadata, struct buddy_pool *pool);
/* A pool over `bytes` of slots (8-byte aligned, need not be zeroed). */
void buddy_pool_init(struct buddy_pool *pool, void *slots, uint64_t bytes);
void buddy_add_free_range(struct buddy_zone *zone, uint64_t pfn, uint64_t count);
void buddy_add_reserved_range(struct buddy_zone *zone, uint64_t pfn, uint64_t count);

/* Takes a block of 2^order pages, aligned to its size. Returns 0 and the
 * first frame in *pfn, or -1 when no block is free. */
int buddy_alloc(struct buddy_zone *zone, unsigned order, uint8_t tag, uint64_t *pfn);

/* Takes a free block of 2^order pages like buddy_alloc, but hands it out as
 * 2^order one-page blocks (each freed on its own with buddy_free): the
 * balloon takes many pages in one call and gives them back one by one.
 * Returns 0 and the first frame in *pfn, or -1 when no block is free. */
int buddy_alloc_pages(struct buddy_zone *zone, unsigned order, uint8_t tag, uint64_t *pfn);

/* Returns a block taken by buddy_alloc, merging it with free buddies.
 * Returns -1 (and changes nothing) if pfn is not the head of an allocated
 * block of this zone. */
int buddy_free(struct buddy_zone *zone, uint64_t pfn);

/* Free page reporting: takes a free block of at least min_order that the
 * host has not been told about (as an allocated block with `tag`), or
 * returns -1. buddy_free_reported gives it back marked reported, so it is
 * not offered again until it has been allocated or merged. */
int buddy_take_unreported(struct buddy_zone *zone, unsigned min_order, uint8_t tag,
                          uint64_t *pfn, unsigned *order);
int buddy_free_reported(struct buddy_zone *zone, uint64_t pfn);
/* Forgets every report (a new host after resume was told nothing): all
 * free blocks count as unreported again. Returns the pages concerned. */
uint64_t buddy_forget_reported(struct buddy_zone *zone);

/* Order and tag of the allocated block whose head is pfn; -1 if none. */
int buddy_allocated_block(const struct buddy_zone *zone, uint64_t pfn,
                          unsigned *order, uint8_t *tag);

static inline int buddy_zone_contains(const struct buddy_zone *zone, uint64_t pfn)
{
    return pfn >= zone->base_pfn && pfn - zone->base_pfn < zone->page_count;
}

/* Calls visit for every block in address order: its first frame, its page
 * count, its state and tag. Stops early and returns what visit returned when
 * that is non-zero. */
typedef int (*buddy_visit_fn)(void *context, uint64_t pfn, uint64_t count,
                              enum buddy_state state, uint8_t tag);
int buddy_walk(const struct buddy_zone *zone, buddy_visit_fn visit, void *context);

/* Takes every free block, in address order, as an allocated block with
 * `tag`, calling visit for each (resume claims all free memory to load an
 * image into). Stops early and returns what visit returned when non-zero;
 * the blocks taken so far stay taken. */
int buddy_claim_free(struct buddy_zone *zone, uint8_t tag, buddy_visit_fn visit, void *context);

/* Checks the zone's invariants (free lists well linked, blocks aligned and
 * inside the zone, blocks tile the zone, counters add up, no free buddies
 * left unmerged). buddy_check returns 0 or ERROR_CORRUPT;
 * buddy_check_failure returns NULL or a sentence naming the first
 * invariant broken. */
int buddy_check(const struct buddy_zone *zone);
const char *buddy_check_failure(const struct buddy_zone *zone);

/* The byte that holds pfn's state, or NULL for a page inside a chunk never
 * split (its state is BUDDY_BODY by construction). For the tests, which
 * damage a zone on purpose. */
uint8_t *buddy_state_byte(struct buddy_zone *zone, uint64_t pfn);

#endif
