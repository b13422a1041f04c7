/*
 * TSC-based monotonic clock. The TSC rate is measured once against the
 * ACPI PM timer over a short window; nanoseconds come from a 32.32 fixed
 * point factor so no division happens on the hot path.
 */
#include "arch/x86/clock.h"

#include "arch/x86/cpu.h" // rdtsc, inl

#define PM_TIMER_HZ 3579545ull
#define CALIBRATION_PM_TICKS (PM_TIMER_HZ / 2000) /* 0.5 ms: one tick is 0.056% of it */
#define CALIBRATION_WINDOWS 5                      /* the median of these */
#define FALLBACK_TSC_HZ 2000000000ull

static uint64_t tsc_base;
static uint64_t tsc_hz = FALLBACK_TSC_HZ;
/* nanoseconds per tick, 32.32 fixed point; a guess until calibrated */
static uint64_t ns_per_tsc_q32 = (1000000000ull << 32) / FALLBACK_TSC_HZ;
static int calibrated;

static uint32_t pm_timer_elapsed(uint32_t from, uint32_t to, int wide)
{
    return wide ? to - from : (to - from) & 0xffffff;
}

void clock_init(uint64_t tsc_at_boot)
{
    tsc_base = tsc_at_boot;
}

/* One window: TSC ticks over `ticks` PM-timer ticks, started on a tick
 * edge; 0 when the timer does not move. */
static uint64_t measure_window(uint16_t port, int wide, uint32_t ticks)
{
    /* bounded: a timer that never moves leaves the window empty */
    uint32_t start = inl(port), now;
    uint64_t reads = 0;

    while ((now = inl(port)) == start && ++reads < 1000000)
        ;
    uint64_t tsc_start = rdtsc();
    uint32_t elapsed = 0;
    while (reads++ < 100000000) {
        elapsed = pm_timer_elapsed(now, inl(port), wide);
        if (elapsed >= ticks)
            break;
    }
    uint64_t tsc_elapsed = rdtsc() - tsc_start;
    return elapsed >= ticks ? tsc_elapsed * PM_TIMER_HZ / elapsed : 0;
}

void clock_calibrate(uint16_t pm_timer_port, int pm_timer_32bit)
{
    if (pm_timer_port) {
        /* several short windows and their median: under TCG the vCPU can
         * be preempted inside a window, and one such window alone once
         * read the TSC at five times its rate (seen in test logs) */
        uint64_t rates[CALIBRATION_WINDOWS];
        unsigned valid = 0;
        for (unsigned i = 0; i < CALIBRATION_WINDOWS; i++) {
            uint64_t rate = measure_window(pm_timer_port, pm_timer_32bit, CALIBRATION_PM_TICKS);
            if (rate)
                rates[valid++] = rate;
        }
        for (unsigned i = 1; i < valid; i++) /* insertion sort: a handful */
            for (unsigned k = i; k > 0 && rates[k - 1] > rates[k]; k--) {
                uint64_t t = rates[k];
                rates[k] = rates[k - 1];
                rates[k - 1] = t;
            }
        calibrated = valid == CALIBRATION_WINDOWS;
        if (calibrated)
            tsc_hz = rates[valid / 2];
    }
    ns_per_tsc_q32 = (1000000000ull << 32) / tsc_hz;
}

uint64_t clock_ns(void)
{
    return clock_tsc_to_ns(rdtsc() - tsc_base);
}

int clock_calibrated(void)
{
    return calibrated;
}

uint64_t clock_tsc_hz(void)
{
    return tsc_hz;
}

void clock_delay_us(uint64_t microseconds)
{
    uint64_t end = rdtsc() + microseconds * tsc_hz / 1000000;

    while ((int64_t)(rdtsc() - end) < 0)
        cpu_relax();
}

void clock_continue_from(uint64_t ns)
{
    /* the TSC restarted with the new QEMU process: move the base so that
     * now reads as ns (whole seconds apart, so no product overflows) */
    uint64_t ticks = ns / 1000000000ull * tsc_hz + ns % 1000000000ull * tsc_hz / 1000000000ull;

    tsc_base = rdtsc() - ticks;
}

uint64_t clock_tsc_to_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * ns_per_tsc_q32) >> 32);
}
