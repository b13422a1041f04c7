/*
 * Where a function's MSI-X table and pending-bit array are (PCI Local Bus
 * spec 3.0, 6.8.2.4-6.8.2.5), checked before the table is written: both
 * inside an assigned memory BAR. Pure, for the host tests.
 */
#ifndef PCI_MSIX_LAYOUT_H
#define PCI_MSIX_LAYOUT_H

#include <stdint.h>

struct pci_bar;

struct msix_layout {
    uint64_t table; /* physical address of entry 0 */
    uint64_t table_bytes;
    uint64_t pba;
    uint64_t pba_bytes;
};

/* From the capability's Table and PBA registers (BIR in bits 2:0, offset
 * above), the table size in entries and the six BARs: fills *layout and
 * returns NULL,
 * or returns why MSI-X cannot be used. */
const char *msix_layout_check(uint32_t table_register, uint32_t pba_register, uint16_t table_size,
                              const struct pci_bar *bars, struct msix_layout *layout);

#endif
