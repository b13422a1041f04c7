/*
 * The platform bring-up: one ordered list of steps that brings the machine
 * up at boot and again after a resume from hibernation, when the image
 * kernel wakes on firmware and devices it has never seen.
 */
#ifndef INIT_BRINGUP_H
#define INIT_BRINGUP_H

#include <stdint.h>

struct boot_handoff;
struct resume_handoff;

/* Boot: every step's boot half, in order. Returns after the last step
 * (the caller prints the banner and starts the shell), unless a
 * hibernation image was resumed, which never returns here. */
void bringup_boot(struct boot_handoff *handoff);

/* Resume, in the image kernel right after its snapshot returned a second
 * time: every step's resume half, in the same order. snapshot_ns is the
 * clock at the snapshot. Returns 0, or -1 when a driver could not be
 * restored (the system runs without it). */
int bringup_resume(const struct resume_handoff *handoff, uint64_t snapshot_ns);

#endif
