/*
 * Hibernation, going down: freeze the drivers, snapshot the CPU, write
 * every page in use to the torpor-swap disk straight from RAM, and enter
 * ACPI S4. Any failure on the way thaws the drivers and returns, with the
 * system running as before. The way back up is pm/resume.c: a later boot
 * loads the image and returns from the same snapshot.
 */
#ifndef PM_HIBERNATE_H
#define PM_HIBERNATE_H

#include <stdint.h>

struct resume_handoff;

/* The platform's resume chain (init/bringup.c), which the image kernel
 * runs right after its snapshot returns a second time: it brings the
 * machine up on the new firmware and returns 0, or -1 when a driver could
 * not be restored. pm/ knows no driver or chip by name. */
typedef int (*hibernate_platform_resume_fn)(const struct resume_handoff *handoff,
                                            uint64_t snapshot_ns);
void hibernate_set_platform_resume(hibernate_platform_resume_fn fn);
/* The one hibernation, whoever asks (console, power button, guest agent).
 * Returns the reason word when it failed (printed in `hibernate failed
 * reason=...`; the system thawed and runs on), or NULL after a later boot
 * resumed the image (`resume ok`). On success it never returns here
 * before that: the machine enters S4. */
const char *hibernate(void);

#endif
