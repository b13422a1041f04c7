/*
 * Hibernation, going down: freeze the drivers, snapshot the CPU, write
 * every page in use to the torpor-swap disk straight from RAM, and enter
 * ACPI S4. Any failure on the way thaws the drivers and returns, with the
 * system running as before. (Resume from the image is the next step of
 * this subsystem; until it lands a written image is inspected with
 * tools/hibimg.)
 */
#ifndef PM_HIBERNATE_H
#define PM_HIBERNATE_H

#define HIBERNATE_DISK_SERIAL "torpor-swap"

/* Registers the `hibernate` command. */
void hibernate_init(void);
/* Returns only when hibernation failed (the reason is printed). */
void hibernate(void);

#endif
