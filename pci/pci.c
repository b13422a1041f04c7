/*
 * PCI enumeration and config space access. Config space is reached through
 * ECAM where the ACPI MCFG table covers the bus, else through the 0xCF8/0xCFC
 * port pair (PCI Local Bus spec 3.0, 3.2.2.3.2). The scan starts at bus 0
 * and follows bridges to their secondary buses, so it reads only buses that
 * exist; it sizes no BAR (a driver or `pci` asks, pci_size_bars) (interrupts, MSI-X and INTx, are pci_interrupt.c's). Every loop here is bounded: bad hardware ends a walk, never hangs it.
 */
#include "pci/pci.h"

#include "acpi/acpi.h"       // struct acpi_info
#include "arch/x86/clock.h"  // clock_ns
#include "arch/x86/cpu.h"    // inl, outl, interrupts_save
#include "arch/x86/paging.h" // paging_map_mmio
#include "console/log.h"     // klog
#include "lib/string.h"      // memset

#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA 0xcfc
#define MAX_ECAM_REGIONS 4
#define MAX_BUSES 256
#define MAX_BRIDGE_DEPTH 32

#define HEADER_MULTIFUNCTION 0x80
#define HEADER_LAYOUT 0x7f
#define HEADER_NORMAL 0
#define HEADER_BRIDGE 1
#define HEADER_CARDBUS 2
#define BRIDGE_SECONDARY_BUS 0x19

#define BAR_IO 0x1
#define BAR_MEM_TYPE 0x6
#define BAR_MEM_TYPE_64 0x4
#define BAR_MEM_PREFETCH 0x8


/* capabilities live in the 192 bytes after the header, 4-byte aligned */
#define MAX_CAPABILITIES 48

struct ecam_region {
    uint64_t base; /* the address of bus 0, whether or not the range starts there */
    uint16_t segment;
    uint8_t start_bus, end_bus;
};

/* The MCFG table: the ACPI header, 8 reserved bytes, then 16-byte entries
 * (PCI Firmware spec 3.0, 4.1.2). */
struct mcfg_entry {
    uint64_t base;
    uint16_t segment;
    uint8_t start_bus, end_bus;
    uint32_t reserved;
} __attribute__((packed));

static struct ecam_region ecam[MAX_ECAM_REGIONS];
static unsigned ecam_count;
static struct pci_function functions[PCI_MAX_FUNCTIONS];
static unsigned function_count;
static unsigned dropped_functions;
static uint8_t bus_seen[MAX_BUSES];
static unsigned bus_count;

/* ---- config space access ---- */

static uint64_t ecam_address(uint16_t segment, uint8_t bus, uint8_t device, uint8_t function)
{
    for (unsigned i = 0; i < ecam_count; i++)
        if (ecam[i].segment == segment && bus >= ecam[i].start_bus && bus <= ecam[i].end_bus)
            return ecam[i].base + ((uint64_t)bus << 20) + ((uint64_t)device << 15) +
                   ((uint64_t)function << 12);
    return 0;
}

static uint32_t port_address(const struct pci_function *f, uint16_t offset)
{
    return 0x80000000u | (uint32_t)f->bus << 16 | (uint32_t)f->device << 11 |
           (uint32_t)f->function << 8 | (offset & 0xfc);
}

static int port_reachable(const struct pci_function *f, uint16_t offset)
{
    return f->segment == 0 && offset < 0x100;
}

static volatile void *ecam_pointer(const struct pci_function *f, uint16_t offset)
{
    return (volatile void *)(uintptr_t)(f->config_base + (offset & 0xfff));
}

/* One config access of 1, 2 or 4 bytes, through ECAM or the port pair. */
static uint32_t config_read(const struct pci_function *f, uint16_t offset, unsigned size)
{
    uint32_t value;

    if (f->config_base) {
        volatile void *p = ecam_pointer(f, offset);
        return size == 4 ? *(volatile uint32_t *)p
             : size == 2 ? *(volatile uint16_t *)p : *(volatile uint8_t *)p;
    }
    if (!port_reachable(f, offset))
        return size == 4 ? 0xffffffffu : size == 2 ? 0xffffu : 0xffu;
    /* interrupts off: the address/data pair is one shared register, and no
     * handler may slip its own access in between */
    uint64_t flags = interrupts_save();
    outl(CONFIG_ADDRESS, port_address(f, offset));
    uint16_t port = (uint16_t)(CONFIG_DATA + (offset & (4 - size)));
    value = size == 4 ? inl(port) : size == 2 ? inw(port) : inb(port);
    interrupts_restore(flags);
    return value;
}

static void config_write(const struct pci_function *f, uint16_t offset, unsigned size,
                         uint32_t value)
{
    if (f->config_base) {
        volatile void *p = ecam_pointer(f, offset);
        if (size == 4)
            *(volatile uint32_t *)p = value;
        else if (size == 2)
            *(volatile uint16_t *)p = (uint16_t)value;
        else
            *(volatile uint8_t *)p = (uint8_t)value;
        return;
    }
    if (!port_reachable(f, offset))
        return;
    uint64_t flags = interrupts_save();
    outl(CONFIG_ADDRESS, port_address(f, offset));
    uint16_t port = (uint16_t)(CONFIG_DATA + (offset & (4 - size)));
    if (size == 4)
        outl(port, value);
    else if (size == 2)
        outw(port, (uint16_t)value);
    else
        outb(port, (uint8_t)value);
    interrupts_restore(flags);
}

uint32_t pci_read32(const struct pci_function *f, uint16_t offset) { return config_read(f, offset, 4); }
uint16_t pci_read16(const struct pci_function *f, uint16_t offset) { return (uint16_t)config_read(f, offset, 2); }
uint8_t pci_read8(const struct pci_function *f, uint16_t offset) { return (uint8_t)config_read(f, offset, 1); }
void pci_write32(const struct pci_function *f, uint16_t offset, uint32_t value) { config_write(f, offset, 4, value); }
void pci_write16(const struct pci_function *f, uint16_t offset, uint16_t value) { config_write(f, offset, 2, value); }
void pci_write8(const struct pci_function *f, uint16_t offset, uint8_t value) { config_write(f, offset, 1, value); }

/* ---- capabilities ---- */

uint8_t pci_find_capability(const struct pci_function *f, uint8_t id, uint8_t after)
{
    if (!(pci_read16(f, PCI_STATUS) & PCI_STATUS_CAPABILITIES))
        return 0;
    uint8_t next;
    if (after)
        next = pci_read8(f, after + 1);
    else
        next = pci_read8(f, f->header_type == HEADER_CARDBUS ? 0x14 : PCI_CAPABILITIES);
    /* at most one visit per possible slot, so a looping list ends too */
    for (unsigned steps = 0; steps < MAX_CAPABILITIES; steps++) {
        next &= 0xfc; /* the bottom two bits are reserved (6.7) */
        if (next < 0x40)
            return 0;
        if (pci_read8(f, next) == id)
            return next;
        next = pci_read8(f, next + 1);
    }
    return 0;
}

/* ---- command register ---- */

void pci_enable(struct pci_function *f, int memory, int io, int bus_master)
{
    uint16_t command = pci_read16(f, PCI_COMMAND);

    if (memory)
        command |= PCI_COMMAND_MEMORY;
    if (io)
        command |= PCI_COMMAND_IO;
    if (bus_master)
        command |= PCI_COMMAND_BUS_MASTER;
    pci_write16(f, PCI_COMMAND, command);
}

/* ---- enumeration ---- */

/* Sizes one BAR (6.2.5.1) if it is of a kind asked for: with decoding of
 * that kind off, write all ones and read back which address bits stick;
 * the lowest one that does is the size (an I/O BAR that decodes 16 bits
 * reads 0 in its top half, which this ignores). Returns how many slots the
 * BAR uses (2 for a 64-bit BAR). */
static unsigned size_bar(struct pci_function *f, unsigned index, unsigned bar_count,
                         int memory, int io)
{
    uint16_t offset = PCI_BAR0 + 4 * index;
    struct pci_bar *bar = &f->bars[index];
    uint32_t low = pci_read32(f, offset);

    if (low == 0xffffffffu)
        return 1; /* nothing answers: leave it empty */
    if (low & BAR_IO) {
        if (!io)
            return 1;
        pci_write32(f, offset, 0xffffffffu);
        uint32_t mask = pci_read32(f, offset) & 0xfffffffcu;
        pci_write32(f, offset, low);
        if (mask) {
            bar->is_io = 1;
            bar->address = low & 0xfffffffcu;
            bar->size = mask & -mask;
        }
        return 1;
    }
    int is_64bit = (low & BAR_MEM_TYPE) == BAR_MEM_TYPE_64;
    if (is_64bit && index + 1 >= bar_count)
        return 1; /* a 64-bit BAR cannot start in the last slot */
    if (!memory)
        return is_64bit ? 2 : 1;
    uint32_t high = is_64bit ? pci_read32(f, offset + 4) : 0;
    pci_write32(f, offset, 0xffffffffu);
    uint64_t mask = pci_read32(f, offset) & 0xfffffff0u;
    pci_write32(f, offset, low);
    if (is_64bit) {
        pci_write32(f, offset + 4, 0xffffffffu);
        mask |= (uint64_t)pci_read32(f, offset + 4) << 32;
        pci_write32(f, offset + 4, high);
    }
    if (mask) {
        bar->address = ((uint64_t)high << 32) | (low & 0xfffffff0u);
        bar->size = mask & -mask;
        bar->is_64bit = is_64bit;
        bar->prefetchable = !!(low & BAR_MEM_PREFETCH);
    }
    return is_64bit ? 2 : 1;
}

void pci_size_bars(struct pci_function *f, int memory, int io)
{
    unsigned bar_count = f->header_type == HEADER_NORMAL ? 6 : f->header_type == HEADER_BRIDGE ? 2 : 0;

    memory = memory && !f->memory_bars_sized;
    io = io && !f->io_bars_sized;
    if (!bar_count || (!memory && !io))
        return;
    /* only the decoding of the kinds sized goes off, and only if on: each
     * BAR QEMU unmaps or maps again rebuilds the guest's memory map */
    uint16_t command = pci_read16(f, PCI_COMMAND);
    uint16_t off = command & ((memory ? PCI_COMMAND_MEMORY : 0) | (io ? PCI_COMMAND_IO : 0));
    if (off)
        pci_write16(f, PCI_COMMAND, command & ~off);
    for (unsigned i = 0; i < bar_count;)
        i += size_bar(f, i, bar_count, memory, io);
    if (off)
        pci_write16(f, PCI_COMMAND, command);
    f->memory_bars_sized |= memory;
    f->io_bars_sized |= io;

    for (unsigned i = 0; memory && i < bar_count; i++) {
        const struct pci_bar *bar = &f->bars[i];
        /* 64-bit BARs usually sit above the boot identity map */
        if (!bar->is_io && bar->size && bar->address &&
            paging_map_mmio(bar->address, bar->size) != 0)
            klog("pci: %02x:%02x.%x bar%u at 0x%llx: no memory to map it", f->bus,
                 f->device, f->function, i, (unsigned long long)bar->address);
    }
}

static void read_msix(struct pci_function *f)
{
    uint8_t cap = pci_find_capability(f, PCI_CAP_ID_MSIX, 0);

    if (!cap)
        return;
    f->msix_capability = cap;
    f->msix_table_size = (pci_read16(f, cap + PCI_MSIX_CONTROL) & PCI_MSIX_CONTROL_TABLE_SIZE) + 1;
}

/* A config read by address, for functions not (yet) in the table. */
static uint32_t read32_at(uint16_t segment, uint8_t bus, uint8_t device, uint8_t function,
                          uint16_t offset)
{
    struct pci_function at = {
        .segment = segment, .bus = bus, .device = device, .function = function,
        .config_base = ecam_address(segment, bus, device, function),
    };
    return pci_read32(&at, offset);
}

static int present(uint16_t segment, uint8_t bus, uint8_t device, uint8_t function)
{
    uint16_t vendor = read32_at(segment, bus, device, function, PCI_VENDOR_ID) & 0xffff;

    return vendor != 0xffff && vendor != 0;
}

/* Fills the next table slot; returns it, or NULL when the table is full. */
static struct pci_function *add_function(uint16_t segment, uint8_t bus, uint8_t device,
                                         uint8_t function)
{
    if (function_count == PCI_MAX_FUNCTIONS) {
        dropped_functions++;
        return 0;
    }
    struct pci_function *f = &functions[function_count++];
    f->segment = segment;
    f->bus = bus;
    f->device = device;
    f->function = function;
    f->config_base = ecam_address(segment, bus, device, function);
    f->intx_gsi = -1;

    uint32_t id = pci_read32(f, PCI_VENDOR_ID);
    uint32_t class = pci_read32(f, PCI_REVISION);
    f->vendor_id = id & 0xffff;
    f->device_id = id >> 16;
    f->revision = class & 0xff;
    f->prog_if = (class >> 8) & 0xff;
    f->subclass = (class >> 16) & 0xff;
    f->class_code = class >> 24;
    f->header_type = pci_read8(f, PCI_HEADER_TYPE) & HEADER_LAYOUT;
    if (f->header_type == HEADER_NORMAL) {
        f->subsystem_vendor_id = pci_read16(f, PCI_SUBSYSTEM_VENDOR_ID);
        f->subsystem_id = pci_read16(f, PCI_SUBSYSTEM_ID);
    }
    f->interrupt_line = pci_read8(f, PCI_INTERRUPT_LINE);
    f->interrupt_pin = pci_read8(f, PCI_INTERRUPT_PIN);
    read_msix(f);
    /* BARs are sized by whoever needs them (pci_size_bars), but a bridge's
     * now: its decoding bits also gate every device behind it, so they may
     * go off only before any driver runs (the `pci` command sizes the rest) */
    if (f->header_type == HEADER_BRIDGE)
        pci_size_bars(f, 1, 1);
    return f;
}

/* Scans one bus and, depth first, the buses behind its bridges. */
static void scan_bus(uint16_t segment, uint8_t bus, unsigned depth)
{
    /* a bus is scanned once, so bridges that point back cannot loop;
     * the depth bound keeps the recursion's stack small */
    if (bus_seen[bus] || depth >= MAX_BRIDGE_DEPTH)
        return;
    bus_seen[bus] = 1;
    bus_count++;
    for (uint8_t device = 0; device < 32; device++) {
        if (!present(segment, bus, device, 0))
            continue;
        uint8_t header = read32_at(segment, bus, device, 0, PCI_HEADER_TYPE & ~3) >> 16;
        uint8_t function_limit = header & HEADER_MULTIFUNCTION ? 8 : 1;
        for (uint8_t function = 0; function < function_limit; function++) {
            if (function && !present(segment, bus, device, function))
                continue;
            struct pci_function *f = add_function(segment, bus, device, function);
            if (!f || (f->header_type != HEADER_BRIDGE && f->header_type != HEADER_CARDBUS))
                continue;
            /* secondary bus 0: the firmware left the bridge unconfigured */
            uint8_t secondary = pci_read8(f, BRIDGE_SECONDARY_BUS);
            if (secondary != 0)
                scan_bus(segment, secondary, depth + 1);
        }
    }
}

static void read_mcfg(uint64_t mcfg)
{
    if (!mcfg)
        return;
    uint32_t length = *(const uint32_t *)(uintptr_t)(mcfg + 4);
    const struct mcfg_entry *entries = (const struct mcfg_entry *)(uintptr_t)(mcfg + 44);
    unsigned count = length > 44 ? (length - 44) / sizeof(struct mcfg_entry) : 0;

    for (unsigned i = 0; i < count && ecam_count < MAX_ECAM_REGIONS; i++) {
        const struct mcfg_entry *e = &entries[i];
        if (!e->base || e->end_bus < e->start_bus)
            continue;
        uint64_t start = e->base + ((uint64_t)e->start_bus << 20);
        uint64_t bytes = (uint64_t)(e->end_bus - e->start_bus + 1) << 20;
        if (paging_map_mmio(start, bytes) != 0)
            continue;
        ecam[ecam_count].base = e->base;
        ecam[ecam_count].segment = e->segment;
        ecam[ecam_count].start_bus = e->start_bus;
        ecam[ecam_count].end_bus = e->end_bus;
        ecam_count++;
    }
}

/* ---- the interface ---- */

/* Finds every function from scratch: the tables describe only what this
 * enumeration saw. */
static int enumerate(const struct acpi_info *acpi)
{
    ecam_count = function_count = dropped_functions = bus_count = 0;
    memset(functions, 0, sizeof(functions));
    memset(bus_seen, 0, sizeof(bus_seen));
    read_mcfg(acpi->mcfg);

    uint16_t segment = ecam_count ? ecam[0].segment : 0;
    if (!present(segment, 0, 0, 0)) {
        klog("pci: no host bridge at %02x:00.0 (%s): no PCI", 0,
             ecam_count ? "ecam" : "port 0xcf8");
        return -1;
    }
    uint64_t started = clock_ns();
    scan_bus(segment, 0, 0);
    unsigned long long us = (clock_ns() - started) / 1000;
    if (dropped_functions)
        klog("pci: %u functions past the first %u ignored", dropped_functions,
             PCI_MAX_FUNCTIONS);
    if (ecam_count)
        klog("pci: %u functions on %u bus%s in %llu us, config ecam at 0x%llx buses %u-%u",
             function_count, bus_count, bus_count == 1 ? "" : "es", us,
             (unsigned long long)ecam[0].base, ecam[0].start_bus, ecam[0].end_bus);
    else
        klog("pci: %u functions on %u bus%s in %llu us, config port 0xcf8", function_count,
             bus_count, bus_count == 1 ? "" : "es", us);
    return (int)function_count;
}

int pci_init(const struct acpi_info *acpi)
{
    return enumerate(acpi);
}

int pci_rescan(const struct acpi_info *acpi)
{
    return enumerate(acpi);
}

struct pci_function *pci_find(uint16_t segment, uint8_t bus, uint8_t device, uint8_t function)
{
    for (unsigned i = 0; i < function_count; i++) {
        struct pci_function *f = &functions[i];
        if (f->segment == segment && f->bus == bus && f->device == device && f->function == function)
            return f;
    }
    return 0;
}

unsigned pci_function_count(void)
{
    return function_count;
}

struct pci_function *pci_function_get(unsigned index)
{
    return index < function_count ? &functions[index] : 0;
}
