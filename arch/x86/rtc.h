/*
 * The CMOS real-time clock (MC146818, ports 0x70/0x71): the date and time
 * the host gives the guest, read once when the wall clock needs it.
 */
#ifndef ARCH_X86_RTC_H
#define ARCH_X86_RTC_H

#include <stdint.h>

/* Seconds since 1970-01-01 UTC, or -1 when the clock reads nonsense.
 * QEMU's RTC keeps UTC (its default -rtc base=utc). */
int64_t rtc_read_seconds(void);

/* Days since 1970-01-01 of a date in the proleptic Gregorian calendar
 * (pure: the host tests check it). */
int64_t rtc_days_from_civil(int64_t year, unsigned month, unsigned day);

#endif
