/*
 * IOAPIC driver (82093AA datasheet): an index/data register pair, and one
 * 64-bit redirection entry per input. The 8259s are remapped away from the
 * exception vectors and masked, so a spurious IRQ 7 lands harmlessly.
 */
#include "arch/x86/ioapic.h"

#include "acpi/acpi.h"          // struct acpi_info
#include "arch/x86/cpu.h"       // outb
#include "arch/x86/interrupt.h" // VECTOR_PIC_BASE
#include "console/log.h"        // klog

#define REG_VERSION 0x01
#define REG_REDIRECTION 0x10
#define ENTRY_MASKED (1u << 16)
#define ENTRY_LEVEL (1u << 15)
#define ENTRY_ACTIVE_LOW (1u << 13)

static volatile uint32_t *ioapic;
static uint32_t gsi_base;
static uint32_t input_count;
static uint32_t destination;
static const struct acpi_info *acpi_tables;

static uint32_t ioapic_read(uint32_t reg)
{
    ioapic[0] = reg;
    return ioapic[4];
}

static void ioapic_write(uint32_t reg, uint32_t value)
{
    ioapic[0] = reg;
    ioapic[4] = value;
}

static void pic_disable(void)
{
    /* ICW1-4: cascade, vector bases, wiring, 8086 mode; then mask all */
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, VECTOR_PIC_BASE);
    outb(0xa1, VECTOR_PIC_BASE + 8);
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

void ioapic_init(const struct acpi_info *acpi, uint32_t destination_apic_id)
{
    pic_disable();
    acpi_tables = acpi;
    destination = destination_apic_id;
    ioapic = (volatile uint32_t *)(uintptr_t)(acpi->ioapic ? acpi->ioapic : 0xfec00000);
    gsi_base = acpi->ioapic_gsi_base;
    input_count = ((ioapic_read(REG_VERSION) >> 16) & 0xff) + 1;
    for (uint32_t i = 0; i < input_count; i++) {
        ioapic_write(REG_REDIRECTION + 2 * i, ENTRY_MASKED);
        ioapic_write(REG_REDIRECTION + 2 * i + 1, 0);
    }
    klog("ioapic: %u inputs at 0x%llx", input_count,
         (unsigned long long)(uintptr_t)ioapic);
}

int ioapic_route_gsi(uint32_t gsi, uint8_t vector, int level_triggered, int active_low)
{
    if (gsi < gsi_base || gsi - gsi_base >= input_count)
        return -1;
    uint32_t pin = gsi - gsi_base;
    uint32_t low = vector | (level_triggered ? ENTRY_LEVEL : 0) | (active_low ? ENTRY_ACTIVE_LOW : 0);
    ioapic_write(REG_REDIRECTION + 2 * pin + 1, destination << 24);
    ioapic_write(REG_REDIRECTION + 2 * pin, low);
    return 0;
}

int ioapic_route_isa_irq(uint8_t irq, uint8_t vector)
{
    uint32_t gsi = irq;
    int level = 0, active_low = 0; /* ISA default: edge, active high */

    for (unsigned i = 0; i < acpi_tables->override_count; i++) {
        const struct acpi_interrupt_override *o = &acpi_tables->overrides[i];
        if (o->source != irq)
            continue;
        gsi = o->gsi;
        if ((o->flags & 3) == 3)
            active_low = 1;
        if (((o->flags >> 2) & 3) == 3)
            level = 1;
    }
    return ioapic_route_gsi(gsi, vector, level, active_low);
}

void ioapic_set_masked(uint32_t gsi, int masked)
{
    if (gsi < gsi_base || gsi - gsi_base >= input_count)
        return;
    uint32_t reg = REG_REDIRECTION + 2 * (gsi - gsi_base);
    uint32_t low = ioapic_read(reg);
    ioapic_write(reg, masked ? low | ENTRY_MASKED : low & ~ENTRY_MASKED);
}
