/*
 * The page: the unit the allocator hands out and the page tables map.
 * Physical memory is identity mapped, so a frame's address is also a
 * pointer to it.
 */
#ifndef MM_PAGE_H
#define MM_PAGE_H

#define PAGE_SIZE 4096ull
#define PAGES_PER_MIB 256

#endif
