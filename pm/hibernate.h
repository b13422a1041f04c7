/*
 * Hibernation, going down: freeze the drivers, snapshot the CPU, write
 * every page in use to the torpor-swap disk straight from RAM, and enter
 * ACPI S4. Any failure on the way thaws the drivers and returns, with the
 * system running as before. The way back up is pm/resume.c: a later boot
 * loads the image and returns from the same snapshot.
 */
#ifndef PM_HIBERNATE_H
#define PM_HIBERNATE_H

#define HIBERNATE_DISK_SERIAL "torpor-swap"

/* Registers the `hibernate` command. */
void hibernate_init(void);
/* Returns when hibernation failed (the reason is printed, the system
 * runs on), or after a later boot resumed the image (`resume ok`). */
void hibernate(void);

#endif
