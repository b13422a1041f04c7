/*
 * Wall-clock time: the RTC's date, read when the kernel comes up (at boot
 * and again after a resume: time went on while the image slept), carried
 * forward by the monotonic clock, and set by the guest agent.
 */
#ifndef KERNEL_WALL_CLOCK_H
#define KERNEL_WALL_CLOCK_H

#include <stdint.h>

/* Reads the RTC and takes it as now; returns 0, or -1 when it reads
 * nonsense (the wall clock then keeps what it had). */
int wall_clock_from_hardware(void);
/* Nanoseconds since 1970-01-01 UTC. */
int64_t wall_clock_ns(void);
void wall_clock_set_ns(int64_t ns);

#endif
