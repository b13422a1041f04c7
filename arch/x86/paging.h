/*
 * The kernel's page tables: an identity map of all physical memory the
 * firmware reported (and at least the first 4 GiB, for MMIO), with page 0
 * left unmapped so null pointers fault.
 */
#ifndef ARCH_X86_PAGING_H
#define ARCH_X86_PAGING_H

#include <stdint.h>

struct boot_handoff;

/* page-table entry bits (Intel SDM vol. 3, 4.5) */
#define PTE_PRESENT 0x1ull
#define PTE_WRITABLE 0x2ull
#define PTE_WRITE_THROUGH 0x8ull
#define PTE_CACHE_DISABLE 0x10ull
#define PTE_ACCESSED 0x20ull
#define PTE_DIRTY 0x40ull
#define PTE_LARGE 0x80ull
/* Every entry is made with accessed (and leaf entries dirty) already set,
 * so the CPU never writes a page table: hibernation checksums the tables
 * like any page and writes them later, and a table that changed under the
 * writer would fail its checksum on resume (Intel SDM vol. 3, 4.8). */
#define PTE_TABLE (PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED)
#define PTE_LEAF (PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED | PTE_DIRTY)
#define PTE_ADDRESS 0x000ffffffffff000ull

void paging_init(const struct boot_handoff *handoff);

/* Identity-maps [base, base + size) uncached, for device registers outside
 * the boot map (64-bit PCI BARs). Page-table pages come from the page
 * allocator. Returns 0, or -1 when out of memory. */
int paging_map_mmio(uint64_t base, uint64_t size);

#endif
