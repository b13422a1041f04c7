/*
 * The ACPI facts torpor uses, read once at boot from the RSDP the firmware
 * handed over: FADT power-management ports, the reset register, the sleep
 * types of _S4 and _S5 from the DSDT, and the MADT's interrupt routing.
 */
#ifndef ACPI_ACPI_H
#define ACPI_ACPI_H

#include <stdint.h>

#define ACPI_MAX_OVERRIDES 16

struct acpi_interrupt_override {
    uint8_t source;   /* ISA IRQ */
    uint32_t gsi;
    uint16_t flags;   /* MPS INTI flags: polarity bits 0-1, trigger bits 2-3 */
};

struct acpi_sleep_type {
    int valid;
    uint8_t type_a, type_b;
};

struct acpi_info {
    int found;                 /* an RSDP with a valid FADT */
    uint16_t pm1a_event, pm1b_event, pm1_event_length;
    uint16_t pm1a_control, pm1b_control;
    uint16_t pm_timer;
    int pm_timer_32bit;
    uint16_t sci_irq;
    uint32_t smi_command;
    uint8_t acpi_enable_value;
    int reset_supported;       /* FADT RESET_REG_SUP with an I/O register */
    uint16_t reset_port;
    uint8_t reset_value;
    struct acpi_sleep_type s4, s5;
    uint64_t local_apic;
    uint64_t ioapic;           /* the first IOAPIC; 0 if the MADT has none */
    uint32_t ioapic_gsi_base;
    unsigned override_count;
    struct acpi_interrupt_override overrides[ACPI_MAX_OVERRIDES];
    uint64_t mcfg;             /* physical address of the MCFG table, 0 if none */
};

/* Reads the tables; returns 0, or -1 with a reason in the log. */
int acpi_init(uint64_t rsdp);
const struct acpi_info *acpi_get(void);

/* Finds a table by signature; NULL if absent or its checksum is wrong. */
const void *acpi_find_table(const char signature[4]);

/* Pure parsing helpers, shared with the host tests. */
int acpi_checksum_ok(const void *table, uint32_t length);
struct acpi_sleep_type acpi_parse_sleep_type(const uint8_t *aml, uint32_t length,
                                             const char name[4]);

#endif
