/*
 * Power-off and reboot. Both try ACPI first (the FADT's PM1 control and
 * reset registers), then the UEFI runtime ResetSystem, then legacy ports.
 */
#ifndef PM_POWER_H
#define PM_POWER_H

void power_init(void *efi_runtime_services);
__attribute__((noreturn)) void power_off(void);
__attribute__((noreturn)) void power_reboot(void);
/* Enters ACPI S4 (\_S4 sleep type): QEMU reports SUSPEND_DISK and exits.
 * Without \_S4 it powers off through S5. */
__attribute__((noreturn)) void power_hibernate(void);

#endif
