/*
 * The ACPI power button (QMP system_powerdown): its SCI is taken, and the
 * button's action is the boot option power_button=poweroff|ignore
 * (hibernate becomes the default when hibernation lands).
 */
#ifndef PM_POWER_BUTTON_H
#define PM_POWER_BUTTON_H

void power_button_init(void);

#endif
