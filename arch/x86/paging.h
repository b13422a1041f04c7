/*
 * The kernel's page tables: an identity map of all physical memory the
 * firmware reported (and at least the first 4 GiB, for MMIO), with page 0
 * left unmapped so null pointers fault.
 */
#ifndef ARCH_X86_PAGING_H
#define ARCH_X86_PAGING_H

struct boot_handoff;

#include <stdint.h>

void paging_init(const struct boot_handoff *handoff);

/* Identity-maps [base, base + size) uncached, for device registers outside
 * the boot map (64-bit PCI BARs). Page-table pages come from the page
 * allocator. Returns 0, or -1 when out of memory. */
int paging_map_mmio(uint64_t base, uint64_t size);

#endif
