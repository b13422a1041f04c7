/*
 * PCI enumeration and config space access. Config space is reached through
 * ECAM where the ACPI MCFG table covers the bus, else through the 0xCF8/0xCFC
 * port pair (PCI Local Bus spec 3.0, 3.2.2.3.2). The scan starts at bus 0
 * and follows bridges to their secondary buses, so it reads only buses that
 * exist. Drivers get their interrupts set up here too: MSI-X tables, or INTx
 * through the IOAPIC with shared lines fanned out to every sharer.
 * Every loop here is bounded: bad hardware ends a walk, never hangs it.
 */
#include "pci/pci.h"

#include "arch/x86/apic.h"      // apic_id
#include "arch/x86/cpu.h"       // inl, outl, read_flags, interrupts_*
#include "arch/x86/interrupt.h" // interrupt_*_handler
#include "arch/x86/ioapic.h"    // ioapic_route_gsi
#include "arch/x86/paging.h"    // paging_map_mmio
#include "arch/x86/clock.h"       // clock_ns
#include "console/console.h"     // console_printf
#include "console/log.h"         // klog
#include "shell/shell.h"       // shell_register
#include "lib/string.h"         // memset
#include "lib/format.h"         // format_snprintf
#include "acpi/acpi.h"            // struct acpi_info

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

/* MSI-X capability (6.8.2.3-6.8.2.9) */
#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_CONTROL_FUNCTION_MASK 0x4000
#define MSIX_CONTROL_TABLE_SIZE 0x07ff
#define MSIX_TABLE_BIR 0x7
#define MSIX_ENTRY_WORDS 4 /* address low, address high, data, vector control */
#define MSIX_ENTRY_MASKED 0x1
#define MSI_ADDRESS_BASE 0xfee00000u /* Intel SDM vol. 3, 11.11.1 */

#define RFLAGS_IF 0x200
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
static const struct acpi_info *acpi_tables;

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

/* Interrupts off, for the address/data port pair (one shared register: no
 * handler may slip its own access in between) and the INTx tables. */
static uint64_t irq_save(void)
{
    uint64_t flags = read_flags();

    interrupts_disable();
    return flags;
}

static void irq_restore(uint64_t flags)
{
    if (flags & RFLAGS_IF)
        interrupts_enable();
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
    uint64_t flags = irq_save();
    outl(CONFIG_ADDRESS, port_address(f, offset));
    uint16_t port = (uint16_t)(CONFIG_DATA + (offset & (4 - size)));
    value = size == 4 ? inl(port) : size == 2 ? inw(port) : inb(port);
    irq_restore(flags);
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
    uint64_t flags = irq_save();
    outl(CONFIG_ADDRESS, port_address(f, offset));
    uint16_t port = (uint16_t)(CONFIG_DATA + (offset & (4 - size)));
    if (size == 4)
        outl(port, value);
    else if (size == 2)
        outw(port, (uint16_t)value);
    else
        outb(port, (uint8_t)value);
    irq_restore(flags);
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

void pci_intx_mask(struct pci_function *f, int masked)
{
    uint16_t command = pci_read16(f, PCI_COMMAND);

    if (masked)
        command |= PCI_COMMAND_INTX_DISABLE;
    else
        command &= ~PCI_COMMAND_INTX_DISABLE;
    pci_write16(f, PCI_COMMAND, command);
}

/* ---- MSI-X ---- */

static volatile uint32_t *msix_entry(struct pci_function *f, unsigned entry)
{
    return f->msix_table + entry * MSIX_ENTRY_WORDS;
}

static void msix_set_control(struct pci_function *f, uint16_t set, uint16_t clear)
{
    uint16_t offset = f->msix_capability + MSIX_CONTROL;
    uint16_t control = pci_read16(f, offset);

    pci_write16(f, offset, (control | set) & ~clear);
}

int pci_msix_enable(struct pci_function *f)
{
    if (!f->msix_capability || !f->msix_table_size)
        return -1;
    uint32_t table = pci_read32(f, f->msix_capability + MSIX_TABLE);
    const struct pci_bar *bar = &f->bars[table & MSIX_TABLE_BIR];
    uint64_t offset = table & ~(uint32_t)MSIX_TABLE_BIR;
    uint64_t bytes = (uint64_t)f->msix_table_size * MSIX_ENTRY_WORDS * 4;
    if (bar->is_io || !bar->address || offset + bytes > bar->size)
        return -1;
    if (paging_map_mmio(bar->address + offset, bytes) != 0)
        return -1;
    f->msix_table = (volatile uint32_t *)(uintptr_t)(bar->address + offset);

    /* the table answers only while memory decoding is on; entries are
     * written with the whole function masked so none fires half set up */
    pci_enable(f, 1, 0, 0);
    msix_set_control(f, MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK, 0);
    for (unsigned i = 0; i < f->msix_table_size; i++)
        msix_entry(f, i)[3] |= MSIX_ENTRY_MASKED;
    msix_set_control(f, 0, MSIX_CONTROL_FUNCTION_MASK);
    pci_intx_mask(f, 1);
    return 0;
}

int pci_msix_set_vector(struct pci_function *f, unsigned entry, uint8_t cpu_vector)
{
    if (!f->msix_table || entry >= f->msix_table_size)
        return -1;
    volatile uint32_t *e = msix_entry(f, entry);
    e[3] |= MSIX_ENTRY_MASKED;
    /* message address: the destination APIC ID in bits 19:12, physical
     * mode; data: fixed delivery, edge, the vector (SDM vol. 3, 11.11) */
    e[0] = MSI_ADDRESS_BASE | (apic_id() & 0xff) << 12;
    e[1] = 0;
    e[2] = cpu_vector;
    e[3] &= ~MSIX_ENTRY_MASKED;
    return 0;
}

void pci_msix_mask(struct pci_function *f, unsigned entry, int masked)
{
    if (!f->msix_table || entry >= f->msix_table_size)
        return;
    volatile uint32_t *e = msix_entry(f, entry);
    if (masked)
        e[3] |= MSIX_ENTRY_MASKED;
    else
        e[3] &= ~MSIX_ENTRY_MASKED;
}

void pci_msix_disable(struct pci_function *f)
{
    if (!f->msix_capability)
        return;
    if (f->msix_table)
        for (unsigned i = 0; i < f->msix_table_size; i++)
            msix_entry(f, i)[3] |= MSIX_ENTRY_MASKED;
    msix_set_control(f, 0, MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
    f->msix_table = 0;
}

/* ---- INTx ---- */

/* Up to this many functions share one line, and this many lines are in
 * use; QEMU's firmware uses 4 (5, 9, 10, 11) at most. */
#define MAX_INTX_LINES 8
#define MAX_INTX_SHARERS 8

struct intx_sharer {
    struct pci_function *function;
    interrupt_handler handler; /* the driver's, as it was on its vector */
    void *context;
};

/* PCI INTx lines are level triggered and shared (PCI Local Bus spec 3.0,
 * 2.2.6): the IOAPIC input targets one vector, and when several functions
 * use the line, every driver's handler runs on each interrupt. */
struct intx_line {
    uint32_t gsi;
    uint8_t vector;
    unsigned sharer_count;
    struct intx_sharer sharers[MAX_INTX_SHARERS];
};

static struct intx_line intx_lines[MAX_INTX_LINES];
static unsigned intx_line_count;

static void intx_shared_interrupt(struct interrupt_frame *frame, void *context)
{
    struct intx_line *line = context;

    for (unsigned i = 0; i < line->sharer_count; i++)
        if (line->sharers[i].handler)
            line->sharers[i].handler(frame, line->sharers[i].context);
}

static struct intx_line *intx_line_for(uint32_t gsi)
{
    for (unsigned i = 0; i < intx_line_count; i++)
        if (intx_lines[i].gsi == gsi)
            return &intx_lines[i];
    if (intx_line_count == MAX_INTX_LINES)
        return 0;
    struct intx_line *line = &intx_lines[intx_line_count++];
    line->gsi = gsi;
    line->sharer_count = 0;
    return line;
}

static struct intx_sharer *intx_sharer_for(struct intx_line *line, struct pci_function *f)
{
    for (unsigned i = 0; i < line->sharer_count; i++)
        if (line->sharers[i].function == f)
            return &line->sharers[i];
    if (line->sharer_count == MAX_INTX_SHARERS)
        return 0;
    struct intx_sharer *sharer = &line->sharers[line->sharer_count++];
    sharer->function = f;
    sharer->handler = 0;
    sharer->context = 0;
    return sharer;
}

/* The GSI, trigger and polarity of a function's INTx; -1 if it has none. */
static int intx_gsi(const struct pci_function *f, int *level, int *active_low)
{
    /* OVMF routes each PIRQ to an ISA IRQ and writes it to Interrupt Line;
     * in QEMU that IRQ reaches the IOAPIC input of the same number on both
     * pc (PIIX3) and q35 (ICH9, which also drives inputs 16-23). QEMU's
     * MADT and _PRT make these lines level triggered, active high. */
    uint8_t irq = f->interrupt_line;
    if (!f->interrupt_pin || f->interrupt_pin > 4 || irq == 0 || irq >= 16)
        return -1;
    uint32_t gsi = irq;
    *level = 1;
    *active_low = 0;
    for (unsigned i = 0; i < acpi_tables->override_count; i++) {
        const struct acpi_interrupt_override *o = &acpi_tables->overrides[i];
        if (o->source != irq)
            continue;
        /* MPS INTI flags (ACPI 6.5, 5.2.12.5); 0 means "as the bus says" */
        unsigned polarity = o->flags & 3, trigger = (o->flags >> 2) & 3;
        gsi = o->gsi;
        if (polarity == 1 || polarity == 3)
            *active_low = polarity == 3;
        if (trigger == 1 || trigger == 3)
            *level = trigger == 3;
    }
    return (int)gsi;
}

int pci_intx_route(struct pci_function *f, uint8_t cpu_vector)
{
    int level, active_low;
    int gsi = intx_gsi(f, &level, &active_low);
    if (gsi < 0)
        return -1;

    /* no interrupt may see a half-updated handler table or line */
    uint64_t flags = irq_save();
    struct intx_line *line = intx_line_for((uint32_t)gsi);
    struct intx_sharer *sharer = line ? intx_sharer_for(line, f) : 0;
    if (!sharer) {
        irq_restore(flags);
        klog("pci: %02x:%02x.%x: too many INTx users of gsi %d", f->bus, f->device,
             f->function, gsi);
        pci_intx_mask(f, 1); /* a line nobody services must not stay asserted */
        return -1;
    }
    void *context;
    interrupt_handler handler = interrupt_get_handler(cpu_vector, &context);
    if (handler != intx_shared_interrupt) { /* else: routed again, same handler */
        sharer->handler = handler;
        sharer->context = context;
    }
    /* the input follows the latest caller's vector; once shared, that
     * vector runs every sharer's handler */
    line->vector = cpu_vector;
    if (line->sharer_count > 1)
        interrupt_set_handler(cpu_vector, intx_shared_interrupt, line);
    int routed = ioapic_route_gsi((uint32_t)gsi, cpu_vector, level, active_low);
    irq_restore(flags);
    if (routed != 0)
        return -1;
    f->intx_gsi = gsi;
    pci_intx_mask(f, 0);
    return gsi;
}

/* ---- enumeration ---- */

/* Sizes one BAR (6.2.5.1): with decoding off, write all ones and read back
 * which address bits stick; the lowest one that does is the size (an I/O
 * BAR that decodes 16 bits reads 0 in its top half, which this ignores).
 * Returns how many slots the BAR uses (2 for a 64-bit BAR). */
static unsigned size_bar(struct pci_function *f, unsigned index, unsigned bar_count)
{
    uint16_t offset = PCI_BAR0 + 4 * index;
    struct pci_bar *bar = &f->bars[index];
    uint32_t low = pci_read32(f, offset);

    if (low == 0xffffffffu)
        return 1; /* nothing answers: leave it empty */
    if (low & BAR_IO) {
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

static void size_bars(struct pci_function *f)
{
    unsigned bar_count = f->header_type == HEADER_NORMAL ? 6 : f->header_type == HEADER_BRIDGE ? 2 : 0;
    if (!bar_count)
        return;
    uint16_t command = pci_read16(f, PCI_COMMAND);
    pci_write16(f, PCI_COMMAND, command & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
    for (unsigned i = 0; i < bar_count;)
        i += size_bar(f, i, bar_count);
    pci_write16(f, PCI_COMMAND, command);

    for (unsigned i = 0; i < bar_count; i++) {
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
    f->msix_table_size = (pci_read16(f, cap + MSIX_CONTROL) & MSIX_CONTROL_TABLE_SIZE) + 1;
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
    size_bars(f);
    read_msix(f);
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

/* ---- the `pci` command ---- */

static void print_function(const struct pci_function *f)
{
    char line[400];
    int length = 0;

#define APPEND(...)                                                                  \
    do {                                                                             \
        if (length < (int)sizeof(line))                                              \
            length += format_snprintf(line + length, sizeof(line) - length, __VA_ARGS__); \
    } while (0)

    if (f->segment)
        APPEND("pci %04x:%02x:%02x.%x", f->segment, f->bus, f->device, f->function);
    else
        APPEND("pci %02x:%02x.%x", f->bus, f->device, f->function);
    APPEND(" vendor=%04x device=%04x class=%02x.%02x.%02x driver=%s", f->vendor_id,
           f->device_id, f->class_code, f->subclass, f->prog_if,
           f->driver_name ? f->driver_name : "-");
    if (f->interrupt_pin && f->interrupt_line && f->interrupt_line != 0xff)
        APPEND(" irq=%u", f->interrupt_line);
    else
        APPEND(" irq=-");
    APPEND(" msix=%u", f->msix_table_size);
    for (unsigned i = 0; i < 6; i++) {
        const struct pci_bar *bar = &f->bars[i];
        if (!bar->size)
            continue;
        APPEND(" bar%u=%s:0x%llx/%llu", i, bar->is_io ? "io" : bar->is_64bit ? "mem64" : "mem",
               (unsigned long long)bar->address, (unsigned long long)bar->size);
    }
#undef APPEND
    console_printf("%s\n", line);
}

static void command_pci(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (unsigned i = 0; i < function_count; i++)
        print_function(&functions[i]);
}

static const struct shell_command pci_commands[] = {
    { "pci", "", "PCI functions: ids, class, driver, irq, MSI-X, BARs", 0, 0, command_pci },
};

/* ---- the interface ---- */

/* Finds every function from scratch: the tables describe only what this
 * enumeration saw. */
static int enumerate(const struct acpi_info *acpi)
{
    acpi_tables = acpi;
    ecam_count = function_count = dropped_functions = bus_count = intx_line_count = 0;
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
    shell_register(pci_commands, sizeof(pci_commands) / sizeof(pci_commands[0]));
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
