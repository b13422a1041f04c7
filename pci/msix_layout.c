/*
 * MSI-X table and PBA checks (see pci/msix_layout.h).
 */
#include "pci/msix_layout.h"

#include "pci/pci.h" // struct pci_bar

#define BIR_MASK 0x7
#define ENTRY_BYTES 16

/* The region [offset, offset + bytes) of the BAR a BIR names, or 0. */
static uint64_t region(uint32_t reg, uint64_t bytes, const struct pci_bar *bars)
{
    uint32_t bir = reg & BIR_MASK;
    uint64_t offset = reg & ~(uint32_t)BIR_MASK;

    if (bir > 5)
        return 0; /* 6 and 7 are reserved */
    const struct pci_bar *bar = &bars[bir];
    if (bar->is_io || !bar->address || bytes > bar->size || offset > bar->size - bytes)
        return 0;
    return bar->address + offset;
}

const char *msix_layout_check(uint32_t table_register, uint32_t pba_register, uint16_t table_size,
                              const struct pci_bar *bars, struct msix_layout *layout)
{
    if (table_size == 0 || table_size > 2048)
        return "MSI-X table size out of range";
    layout->table_bytes = (uint64_t)table_size * ENTRY_BYTES;
    layout->pba_bytes = ((uint64_t)table_size + 63) / 64 * 8; /* one bit per entry, in qwords */
    layout->table = region(table_register, layout->table_bytes, bars);
    layout->pba = region(pba_register, layout->pba_bytes, bars);
    if (!layout->table)
        return "MSI-X table outside its BAR";
    if (!layout->pba)
        return "MSI-X pending bits outside their BAR";
    return 0;
}
