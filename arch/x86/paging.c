/*
 * Builds the identity map in the early block that efi_main reserved
 * (so no page the allocator hands out is in use by the firmware's tables
 * while we still run on them), then loads it. 2 MiB pages everywhere but
 * the first 2 MiB, which uses 4 KiB pages to leave page 0 out
 * (Intel SDM vol. 3, 4.5).
 */
#include "arch/x86/paging.h"

#include <stdint.h>

#include "arch/x86/cpu.h"  // write_cr3
#include "boot/handoff.h"  // struct boot_handoff
#include "lib/string.h"    // memset
#include "mm/page.h"       // PAGE_SIZE
#include "mm/page_alloc.h" // page_alloc

#define LARGE_PAGE (2ull << 20)

static uint64_t *pml4;
static uint64_t boot_map_end;
void paging_init(const struct boot_handoff *handoff)
{
    uint64_t *tables = (uint64_t *)(uintptr_t)handoff->page_table_base;
    uint64_t gib = handoff->identity_map_end >> 30;
    uint64_t pdpt_count = (gib + 511) / 512;

    memset(tables, 0, handoff->page_table_pages * PAGE_SIZE);
    pml4 = tables;
    boot_map_end = handoff->identity_map_end;
    uint64_t *pdpts = pml4 + 512;
    uint64_t *pds = pdpts + 512 * pdpt_count;
    uint64_t *low_table = pds + 512 * gib;

    for (uint64_t g = 0; g < gib; g++) {
        uint64_t *pd = pds + 512 * g;
        for (uint64_t e = 0; e < 512; e++)
            pd[e] = ((g << 30) + (e << 21)) | PTE_LEAF | PTE_LARGE;
        pdpts[g] = (uint64_t)(uintptr_t)pd | PTE_TABLE;
    }
    for (uint64_t p = 0; p < pdpt_count; p++)
        pml4[p] = (uint64_t)(uintptr_t)(pdpts + 512 * p) | PTE_TABLE;
    for (uint64_t e = 1; e < 512; e++)
        low_table[e] = (e << 12) | PTE_LEAF;
    pds[0] = (uint64_t)(uintptr_t)low_table | PTE_TABLE;

    write_cr3((uint64_t)(uintptr_t)pml4);
}

/* The next-level table behind entry, created empty if absent. */
static uint64_t *next_table(uint64_t *entry)
{
    if (!(*entry & PTE_PRESENT)) {
        uint64_t page = page_alloc(0, PAGE_TAG_KERNEL);
        if (!page)
            return 0;
        memset((void *)(uintptr_t)page, 0, PAGE_SIZE);
        *entry = page | PTE_TABLE;
    }
    return (uint64_t *)(uintptr_t)(*entry & PTE_ADDRESS);
}

int paging_map_mmio(uint64_t base, uint64_t size)
{
    uint64_t start = base & ~(LARGE_PAGE - 1);
    uint64_t end = (base + size + LARGE_PAGE - 1) & ~(LARGE_PAGE - 1);

    for (uint64_t address = start; address < end; address += LARGE_PAGE) {
        if (address < boot_map_end)
            continue; /* already identity mapped (write-back; MTRRs make MMIO uncached) */
        uint64_t *pdpt = next_table(&pml4[(address >> 39) & 511]);
        uint64_t *pd = pdpt ? next_table(&pdpt[(address >> 30) & 511]) : 0;
        if (!pd)
            return -1;
        pd[(address >> 21) & 511] = address | PTE_LEAF | PTE_LARGE |
                                    PTE_CACHE_DISABLE | PTE_WRITE_THROUGH;
        __asm__ volatile("invlpg (%0)" : : "r"(address) : "memory");
    }
    return 0;
}
