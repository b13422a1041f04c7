/*
 * The IOAPIC routes ISA and PCI interrupt lines to local APIC vectors. The
 * legacy 8259 PICs are masked when it takes over.
 */
#ifndef ARCH_X86_IOAPIC_H
#define ARCH_X86_IOAPIC_H

#include <stdint.h>

struct acpi_info;

void ioapic_init(const struct acpi_info *acpi, uint32_t destination_apic_id);
/* Routes an ISA IRQ, applying the MADT's source overrides. */
int ioapic_route_isa_irq(uint8_t irq, uint8_t vector);
/* Routes a global system interrupt with explicit trigger and polarity. */
int ioapic_route_gsi(uint32_t gsi, uint8_t vector, int level_triggered, int active_low);
void ioapic_set_masked(uint32_t gsi, int masked);

#endif
