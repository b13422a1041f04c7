/*
 * The ACPI power button (QMP system_powerdown): its SCI is taken, and the
 * button's action is the boot option power_button=hibernate|poweroff|ignore
 * (hibernate by default).
 */
#ifndef PM_POWER_BUTTON_H
#define PM_POWER_BUTTON_H

void power_button_init(void);
/* After resume: the chipset starts from reset; enable the event again. */
void power_button_resume(void);

#endif
