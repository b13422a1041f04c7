/*
 * Power-off enters ACPI S5: SLP_TYP from \_S5 and SLP_EN (bit 13) written
 * to PM1a_CNT (ACPI 6.4, 4.8.3.2.1 and 16.1.7). Reboot writes the FADT
 * reset register (4.8.3.6). The UEFI runtime ResetSystem is the fallback
 * for both: it still works after ExitBootServices since its regions stay
 * identity mapped.
 */
#include "pm/power.h"

#include <efi.h> // EFI_RUNTIME_SERVICES, EfiResetShutdown

#include "acpi/acpi.h"      // acpi_get
#include "arch/x86/clock.h" // clock_delay_us
#include "arch/x86/cpu.h"   // outb, outw, cpu_halt_forever
#include "console/log.h"    // klog

#define SLP_EN (1u << 13)

static EFI_RUNTIME_SERVICES *runtime;

void power_init(void *efi_runtime_services)
{
    runtime = efi_runtime_services;
}

static void firmware_reset(EFI_RESET_TYPE type)
{
    if (runtime)
        runtime->ResetSystem(type, EFI_SUCCESS, 0, 0);
}

/* Writes SLP_TYP with SLP_EN to the PM1 control registers; returns 1 when
 * it tried (and the machine is still running), 0 when the state is not
 * available. The write takes effect a few instructions later. */
static int enter_sleep_state(const struct acpi_info *acpi, const struct acpi_sleep_type *type)
{
    if (!type->valid || !acpi->pm1a_control)
        return 0;
    outw(acpi->pm1a_control, (uint16_t)((type->type_a << 10) | SLP_EN));
    if (acpi->pm1b_control)
        outw(acpi->pm1b_control, (uint16_t)((type->type_b << 10) | SLP_EN));
    clock_delay_us(200000);
    return 1;
}

void power_off(void)
{
    const struct acpi_info *acpi = acpi_get();

    interrupts_disable();
    if (enter_sleep_state(acpi, &acpi->s5))
        klog("power: ACPI S5 did not power off; trying the firmware");
    firmware_reset(EfiResetShutdown);
    klog("power: cannot power off; halting");
    cpu_halt_forever();
}

void power_hibernate(void)
{
    const struct acpi_info *acpi = acpi_get();

    interrupts_disable();
    if (enter_sleep_state(acpi, &acpi->s4))
        klog("power: ACPI S4 did not take effect; powering off");
    power_off();
}

void power_reboot(void)
{
    const struct acpi_info *acpi = acpi_get();

    interrupts_disable();
    if (acpi->reset_supported) {
        outb(acpi->reset_port, acpi->reset_value);
        clock_delay_us(200000);
    }
    outb(0xcf9, 0x02); /* the PCI reset control register: hard reset */
    outb(0xcf9, 0x06);
    clock_delay_us(200000);
    firmware_reset(EfiResetCold);
    outb(0x64, 0xfe); /* the keyboard controller's reset line */
    clock_delay_us(200000);
    /* last resort: a triple fault through an empty IDT */
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) empty = { 0, 0 };
    __asm__ volatile("lidt %0; int3" : : "m"(empty));
    cpu_halt_forever();
}
