/*
 * Memory test regions for the console's fill, verify, free and corrupt
 * commands: allocate pages, fill them with a pattern from a seed, and later
 * prove every byte is still what was written (across hibernate/resume).
 */
#ifndef MM_MEMTEST_H
#define MM_MEMTEST_H

#include <stdint.h>

#define MEMTEST_MAX_REGIONS 64

struct memtest_fill_result {
    unsigned id;
    uint64_t pages;
    uint64_t sum;
};

struct memtest_verify_result {
    int ok;
    unsigned regions;
    uint64_t pages;
    unsigned failed_region; /* when !ok */
    uint64_t failed_page;   /* page index within the region */
};

/* Each returns 0 or a lib/error.h code; memtest_error_text says it in
 * the words of these commands. */
int memtest_fill(uint64_t pages, uint64_t seed, struct memtest_fill_result *result);
void memtest_verify(struct memtest_verify_result *result);
/* Frees region id; *pages gets its size. */
int memtest_free(unsigned id, uint64_t *pages);
/* Test-only: flips one byte of page `page` of region id. */
int memtest_corrupt(unsigned id, uint64_t page);
const char *memtest_error_text(int error);

#endif
