/*
 * PCI interrupts for drivers: MSI-X tables (PCI Local Bus spec 3.0,
 * 6.8.2), or legacy INTx through the IOAPIC, with a shared line fanned out
 * to every function that sits on it.
 */
#include "pci/pci.h"

#include "acpi/acpi.h"          // acpi_get, struct acpi_interrupt_override
#include "arch/x86/apic.h"      // apic_id
#include "arch/x86/cpu.h"       // interrupts_save, interrupts_restore
#include "arch/x86/interrupt.h" // interrupt_*_handler
#include "arch/x86/ioapic.h"    // ioapic_route_gsi
#include "arch/x86/paging.h"    // paging_map_mmio
#include "console/log.h"        // klog
#include "lib/error.h"          // ERROR_*
#include "pci/msix_layout.h"    // msix_layout_check

#define MSIX_ENTRY_WORDS 4 /* address low, address high, data, vector control */
#define MSIX_ENTRY_MASKED 0x1
#define MSI_ADDRESS_BASE 0xfee00000u /* Intel SDM vol. 3, 11.11.1 */

/* ---- command register ---- */

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
    uint16_t offset = f->msix_capability + PCI_MSIX_CONTROL;
    uint16_t control = pci_read16(f, offset);

    pci_write16(f, offset, (control | set) & ~clear);
}

int pci_msix_enable(struct pci_function *f)
{
    struct msix_layout layout;

    if (!f->msix_capability || !f->msix_table_size)
        return ERROR_UNSUPPORTED;
    pci_size_bars(f, 1, 0); /* the table is in a memory BAR */
    const char *refused = msix_layout_check(pci_read32(f, f->msix_capability + PCI_MSIX_TABLE),
                                            pci_read32(f, f->msix_capability + PCI_MSIX_PBA),
                                            f->msix_table_size, f->bars, &layout);
    if (refused) {
        klog("pci: %02x:%02x.%x: %s", f->bus, f->device, f->function, refused);
        return ERROR_DEVICE;
    }
    if (paging_map_mmio(layout.table, layout.table_bytes) != 0)
        return ERROR_NO_MEMORY;
    f->msix_table = (volatile uint32_t *)(uintptr_t)layout.table;

    /* the table answers only while memory decoding is on; entries are
     * written with the whole function masked so none fires half set up */
    pci_enable(f, 1, 0, 0);
    msix_set_control(f, PCI_MSIX_CONTROL_ENABLE | PCI_MSIX_CONTROL_FUNCTION_MASK, 0);
    for (unsigned i = 0; i < f->msix_table_size; i++)
        msix_entry(f, i)[3] |= MSIX_ENTRY_MASKED;
    msix_set_control(f, 0, PCI_MSIX_CONTROL_FUNCTION_MASK);
    pci_intx_mask(f, 1);
    return 0;
}

int pci_msix_set_vector(struct pci_function *f, unsigned entry, uint8_t cpu_vector)
{
    if (!f->msix_table)
        return ERROR_INVALID;
    if (entry >= f->msix_table_size)
        return ERROR_RANGE;
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
    msix_set_control(f, 0, PCI_MSIX_CONTROL_ENABLE | PCI_MSIX_CONTROL_FUNCTION_MASK);
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
    for (unsigned i = 0; i < acpi_get()->override_count; i++) {
        const struct acpi_interrupt_override *o = &acpi_get()->overrides[i];
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
    uint64_t flags = interrupts_save();
    struct intx_line *line = intx_line_for((uint32_t)gsi);
    struct intx_sharer *sharer = line ? intx_sharer_for(line, f) : 0;
    if (!sharer) {
        interrupts_restore(flags);
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
    interrupts_restore(flags);
    if (routed != 0)
        return -1;
    f->intx_gsi = gsi;
    pci_intx_mask(f, 0);
    return gsi;
}


void pci_intx_forget_routes(void)
{
    intx_line_count = 0;
}
