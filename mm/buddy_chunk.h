/*
 * The buddy core's lazily made per-page metadata (see BUDDY_LAZY_ORDER in
 * mm/buddy.h): where a page's state and record are, and how a chunk gets
 * its pool slot. Internal to mm/buddy.c, which alone includes it, after
 * mm/buddy.h (not included here: the two are one module).
 */
#ifndef MM_BUDDY_CHUNK_H
#define MM_BUDDY_CHUNK_H

#include <stdint.h>

#include "lib/string.h" // memset

#define CHUNK_MASK ((uint64_t)BUDDY_CHUNK_PAGES - 1)

_Static_assert(sizeof(struct buddy_chunk_slot) % 8 == 0, "slots stay 8-byte aligned");

static inline uint64_t chunk_of(const struct buddy_zone *zone, uint64_t index)
{
    return ((zone->base_pfn + index) >> BUDDY_LAZY_ORDER) - (zone->base_pfn >> BUDDY_LAZY_ORDER);
}

static inline uint64_t chunk_offset(const struct buddy_zone *zone, uint64_t index)
{
    return (zone->base_pfn + index) & CHUNK_MASK;
}

static inline int chunk_start(const struct buddy_zone *zone, uint64_t index)
{
    return chunk_offset(zone, index) == 0;
}

static inline struct buddy_chunk_slot *slot_of(const struct buddy_zone *zone, uint64_t chunk)
{
    return &zone->pool->slots[zone->chunk_slots[chunk]];
}

/* A lazy chunk is all BUDDY_BODY but its first page, whose state is the
 * chunk's byte; only a block of BUDDY_LAZY_ORDER or more can start there. */
static inline uint8_t state_of(const struct buddy_zone *zone, uint64_t index)
{
    uint64_t chunk = chunk_of(zone, index);
    uint8_t lazy = zone->chunks[chunk];

    if (lazy == BUDDY_CHUNK_READY)
        return slot_of(zone, chunk)->states[chunk_offset(zone, index)];
    return chunk_start(zone, index) ? lazy : BUDDY_BODY;
}

/* What a lazy chunk's body pages read as: no block of any valid order
 * (only heads' records are ever read). */
static struct buddy_page body_record = { BUDDY_NONE, BUDDY_NONE, 0xff, 0, 0 };

/* The record of page `index`: a lazy chunk's first page keeps it in the
 * chunk's array. Meaningful only for a head. */
static inline struct buddy_page *record(const struct buddy_zone *zone, uint64_t index)
{
    uint64_t chunk = chunk_of(zone, index);

    if (zone->chunks[chunk] == BUDDY_CHUNK_READY)
        return &slot_of(zone, chunk)->pages[chunk_offset(zone, index)];
    if (chunk_start(zone, index))
        return &zone->chunk_pages[chunk];
    body_record = (struct buddy_page){ BUDDY_NONE, BUDDY_NONE, 0xff, 0, 0 };
    return &body_record;
}

/* Gives a chunk its slot, once: every page BUDDY_BODY but the first,
 * which keeps the state and record it had while lazy. */
static inline void make_ready(struct buddy_zone *zone, uint64_t chunk)
{
    struct buddy_pool *pool = zone->pool;
    /* each chunk takes one slot at most, and the pool has one per chunk */
    uint32_t slot = (uint32_t)(pool->capacity - 1 - pool->used++);
    struct buddy_chunk_slot *s = &pool->slots[slot];

    memset(s->states, BUDDY_BODY, sizeof(s->states));
    s->states[0] = zone->chunks[chunk]; /* BUDDY_BODY in a chunk cut by the zone's start */
    s->pages[0] = zone->chunk_pages[chunk];
    zone->chunk_slots[chunk] = slot;
    zone->chunks[chunk] = BUDDY_CHUNK_READY;
}

/* Sets the state of the head of a block of `order` (or BUDDY_BODY where a
 * merge swallowed a head); a smaller block makes its chunk ready first. */
static inline void set_state(struct buddy_zone *zone, uint64_t index, unsigned order, uint8_t state)
{
    uint64_t chunk = chunk_of(zone, index);

    if (zone->chunks[chunk] != BUDDY_CHUNK_READY) {
        if (order >= BUDDY_LAZY_ORDER && chunk_start(zone, index)) {
            zone->chunks[chunk] = state;
            return;
        }
        make_ready(zone, chunk);
    }
    slot_of(zone, chunk)->states[chunk_offset(zone, index)] = state;
}

#endif
