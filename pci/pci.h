/*
 * PCI: enumeration of every function (ECAM from the ACPI MCFG table, or
 * port 0xCF8/0xCFC), BAR sizing and mapping, capabilities (pci.c), and
 * the two interrupt paths a driver can take: MSI-X or legacy INTx via the
 * IOAPIC (pci_interrupt.c).
 */
#ifndef PCI_PCI_H
#define PCI_PCI_H

#include <stdint.h>

struct acpi_info;

#define PCI_MAX_FUNCTIONS 128

/* configuration space header offsets (PCI Local Bus spec 3.0, 6.1) */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITIES 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_BUS_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008     /* the function asserts INTx */
#define PCI_STATUS_CAPABILITIES 0x0010

#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VENDOR 0x09 /* virtio's capabilities use this id */
#define PCI_CAP_ID_MSIX 0x11

/* MSI-X capability (6.8.2.3-6.8.2.9) */
#define PCI_MSIX_CONTROL 2
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_PBA 8
#define PCI_MSIX_CONTROL_ENABLE 0x8000
#define PCI_MSIX_CONTROL_FUNCTION_MASK 0x4000
#define PCI_MSIX_CONTROL_TABLE_SIZE 0x07ff

struct pci_bar {
    uint64_t address; /* physical; for memory BARs identity mapped */
    uint64_t size;    /* 0: the slot is empty */
    int is_io;
    int is_64bit;
    int prefetchable;
};

struct pci_function {
    uint16_t segment;
    uint8_t bus, device, function;
    uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_id;
    uint8_t class_code, subclass, prog_if, revision;
    uint8_t header_type;                   /* layout, bits 6:0 (bit 7, multi-function, dropped) */
    uint8_t interrupt_line, interrupt_pin; /* config 0x3c/0x3d as the firmware left them */
    struct pci_bar bars[6];                /* a 64-bit BAR fills its slot, the next slot is empty;
                                              empty until pci_size_bars sized its kind */
    uint8_t msix_capability;               /* config offset, 0 if none */
    uint16_t msix_table_size;              /* entries */
    const char *driver_name;               /* set by the driver that claims it, shown by `pci` */

    /* kept by pci.c */
    uint64_t config_base;                  /* ECAM address of the config space; 0: port 0xCF8 */
    volatile uint32_t *msix_table;         /* set by pci_msix_enable */
    uint8_t memory_bars_sized, io_bars_sized; /* by pci_size_bars */
    int intx_gsi;                          /* routed by pci_intx_route; -1 if not */
};

/* Enumerates every function reachable from bus 0 through bridges (the
 * BARs stay unsized: pci_size_bars). Returns the number of functions
 * found, or -1 when there is no usable config mechanism. */
int pci_init(const struct acpi_info *acpi);
/* After resume: the firmware is new and may have moved BARs or added and
 * removed functions. Forgets every function and enumerates again (the
 * pointers pci_function_get gave out now name whatever sits at their slot:
 * find functions again by address with pci_find). */
int pci_rescan(const struct acpi_info *acpi);
struct pci_function *pci_find(uint16_t segment, uint8_t bus, uint8_t device, uint8_t function);
unsigned pci_function_count(void);
struct pci_function *pci_function_get(unsigned index); /* NULL past the end */

/* Config space access. Offsets are naturally aligned; past 0xff they need
 * ECAM (through port 0xCF8 reads give all ones and writes are dropped). */
uint8_t pci_read8(const struct pci_function *f, uint16_t offset);
uint16_t pci_read16(const struct pci_function *f, uint16_t offset);
uint32_t pci_read32(const struct pci_function *f, uint16_t offset);
void pci_write8(const struct pci_function *f, uint16_t offset, uint8_t value);
void pci_write16(const struct pci_function *f, uint16_t offset, uint16_t value);
void pci_write32(const struct pci_function *f, uint16_t offset, uint32_t value);

/* The config offset of the next capability with this id after the one at
 * `after` (0: from the start of the list); 0 if none. A list that loops
 * or points outside the header ends the walk. */
uint8_t pci_find_capability(const struct pci_function *f, uint8_t id, uint8_t after);

/* Sizes (6.2.5.1) and maps the function's memory BARs, its I/O BARs or
 * both, once per enumeration. Only what a user needs: sizing turns that
 * kind of decoding off and on again, and under QEMU each BAR unmapped and
 * mapped again rebuilds the guest's memory map (about 0.15 ms under TCG). */
void pci_size_bars(struct pci_function *f, int memory, int io);

/* Sets the command register bits asked for; leaves the others alone. */
void pci_enable(struct pci_function *f, int memory, int io, int bus_master);

/* MSI-X (PCI Local Bus spec 3.0, 6.8.2). pci_msix_enable maps the table,
 * enables memory decoding, masks every entry, sets MSI-X enable with the
 * function mask clear, and disables INTx; 0, ERROR_UNSUPPORTED (no
 * MSI-X), ERROR_DEVICE (its table or PBA is not in an assigned memory
 * BAR) or ERROR_NO_MEMORY (no page for the table's mapping).
 * pci_msix_set_vector points an entry at this CPU's local APIC with the
 * vector as data (fixed, edge) and unmasks it; 0, ERROR_INVALID (MSI-X
 * not enabled) or ERROR_RANGE (entry beyond the table). */
int pci_msix_enable(struct pci_function *f);
int pci_msix_set_vector(struct pci_function *f, unsigned entry, uint8_t cpu_vector);
void pci_msix_mask(struct pci_function *f, unsigned entry, int masked);
/* Masks every entry and clears MSI-X enable; INTx stays disabled until
 * pci_intx_mask(f, 0). */
void pci_msix_disable(struct pci_function *f);

/* Legacy INTx: routes the IOAPIC input named by the Interrupt Line
 * register (the ISA IRQ OVMF routed the PIRQ to; level, active high as
 * QEMU's MADT says) to cpu_vector and enables INTx. Install the handler on
 * cpu_vector first (and route again whenever it is set anew): INTx lines
 * are shared, and when several functions route one line, each interrupt
 * runs every one of their handlers, so a handler must check its device.
 * Returns the GSI, or -1 when the function has no INTx (or too many share
 * the line: INTx is then left disabled, poll the device). */
int pci_intx_route(struct pci_function *f, uint8_t cpu_vector);
/* Command register bit 10: a masked function does not assert INTx. */
void pci_intx_mask(struct pci_function *f, int masked);
/* Before a rescan (resume): every INTx route and sharer named functions
 * of the old enumeration; forget them all. */
void pci_intx_forget_routes(void);

#endif
