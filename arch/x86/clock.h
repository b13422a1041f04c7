/*
 * The monotonic clock: the TSC, calibrated at boot against the ACPI PM
 * timer (3.579545 MHz, fixed by the ACPI spec, section 4.8.3.3).
 * Time zero is the top of efi_main.
 */
#ifndef ARCH_X86_CLOCK_H
#define ARCH_X86_CLOCK_H

#include <stdint.h>

/* Sets time zero; until clock_calibrate the rate is a guess. */
void clock_init(uint64_t tsc_at_boot);
/* Measures the TSC rate; pm_timer_port 0 keeps the guess (and
 * clock_calibrated says so). */
void clock_calibrate(uint16_t pm_timer_port, int pm_timer_32bit);
uint64_t clock_ns(void);
uint64_t clock_tsc_hz(void);
/* 0 when the PM timer was missing or stuck and the rate is a guess. */
int clock_calibrated(void);
/* Busy-waits; only for boot-time calibration and device timeouts. */
void clock_delay_us(uint64_t microseconds);

/* After resume: the clock goes on from ns, the reading at the snapshot
 * (the time spent hibernated does not count). */
void clock_continue_from(uint64_t ns);

/* A TSC interval in nanoseconds at the calibrated rate. */
uint64_t clock_tsc_to_ns(uint64_t ticks);

#endif
