/*
 * Lookup in the kernel symbol table written by tools/ksyms.py: a binary
 * search over entries sorted by image offset.
 */
#include "arch/x86/symbols.h"

#include "lib/string.h" // memcmp

struct ksyms_entry {
    uint64_t address;
    uint32_t size;
    uint32_t name_offset;
};

extern const uint8_t __ksyms_start[], __ksyms_end[];
extern const char ImageBase[];

uint64_t symbols_image_base(void)
{
    return (uint64_t)(uintptr_t)ImageBase;
}

const char *symbols_lookup(uint64_t address, uint64_t *offset)
{
    /* the bounds come from the linker script: compare them as addresses */
    uint64_t table_size = (uint64_t)((uintptr_t)__ksyms_end - (uintptr_t)__ksyms_start);
    uint32_t count;

    if (table_size < 8 || memcmp(__ksyms_start, "KSYM", 4) != 0)
        return 0;
    memcpy(&count, __ksyms_start + 4, 4);
    if (8 + (uint64_t)count * sizeof(struct ksyms_entry) > table_size)
        return 0;
    const struct ksyms_entry *entries = (const void *)(__ksyms_start + 8);
    const char *names = (const char *)(entries + count);
    uint64_t target = address - symbols_image_base();

    /* the last entry whose address is <= target */
    uint32_t low = 0, high = count;
    while (low < high) {
        uint32_t middle = low + (high - low) / 2;
        if (entries[middle].address <= target)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0)
        return 0;
    const struct ksyms_entry *found = &entries[low - 1];
    uint64_t limit = found->size ? found->address + found->size
                     : low < count ? entries[low].address : found->address + 1;
    if (target >= limit ||
        (uintptr_t)((const uint8_t *)names + found->name_offset) >= (uintptr_t)__ksyms_end)
        return 0;
    *offset = target - found->address;
    return names + found->name_offset;
}
