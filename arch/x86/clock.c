/*
 * TSC-based monotonic clock. The TSC rate is measured once against the
 * ACPI PM timer, over a short window between two located ticks;
 * nanoseconds come from a 32.32 fixed point factor so no division happens
 * on the hot path.
 */
#include "arch/x86/clock.h"

#include "arch/x86/cpu.h" // rdtsc, inl

#define PM_TIMER_HZ 3579545ull
#define CALIBRATION_PM_TICKS (PM_TIMER_HZ / 2000) /* 0.5 ms */
#define EDGES 4 /* at each end of the window: the best bracketed one */
#define FALLBACK_TSC_HZ 2000000000ull
/* Until measured, the clock assumes a TSC faster than any x86 has run:
 * the few lines logged before calibration read early rather than late, so
 * the clock only ever moves forward when the real rate is known and the
 * log's times never decrease (a guess too slow read them late, and the
 * measured clock then went back below them). */
#define UNMEASURED_TSC_HZ 10000000000ull

static uint64_t tsc_base;
static uint64_t tsc_hz = UNMEASURED_TSC_HZ;
/* nanoseconds per tick, 32.32 fixed point; a guess until calibrated */
static uint64_t ns_per_tsc_q32 = (1000000000ull << 32) / UNMEASURED_TSC_HZ;
static int calibrated;

static uint32_t pm_timer_elapsed(uint32_t from, uint32_t to, int wide)
{
    return wide ? to - from : (to - from) & 0xffffff;
}

void clock_init(uint64_t tsc_at_boot)
{
    tsc_base = tsc_at_boot;
}

/* A tick of the PM timer: *pm is the count it reached and *tsc the TSC
 * then, the middle of the reads that bracket it; returns the bracket's
 * width in TSC ticks (UINT64_MAX when the timer does not move). */
static uint64_t timer_edge(uint16_t port, uint32_t *pm, uint64_t *tsc)
{
    uint64_t before = rdtsc();
    uint32_t last = inl(port);

    for (uint32_t reads = 0; reads < 1000000; reads++) {
        uint64_t now = rdtsc();
        uint32_t value = inl(port);
        uint64_t after = rdtsc();
        if (value != last) {
            /* the count reached `value` after the read of `last` began
             * and before this read ended */
            *pm = value;
            *tsc = before + (after - before) / 2;
            return after - before;
        }
        before = now;
        last = value;
    }
    return UINT64_MAX;
}

/* The narrowest-bracketed of a few ticks in a row: a vCPU preempted
 * between its reads widens one bracket, not all of them. */
static int best_edge(uint16_t port, uint32_t *pm, uint64_t *tsc)
{
    uint64_t best = UINT64_MAX;

    for (unsigned i = 0; i < EDGES; i++) {
        uint32_t value;
        uint64_t at, width = timer_edge(port, &value, &at);
        if (width < best) {
            best = width;
            *pm = value;
            *tsc = at;
        }
    }
    return best != UINT64_MAX;
}

void clock_calibrate(uint16_t pm_timer_port, int pm_timer_32bit)
{
    uint32_t pm_start, pm_end;
    uint64_t tsc_start, tsc_end;

    /* one window between two ticks each located to a loop's length: the
     * TSC and the PM timer both follow real time, so only the ends count
     * (QEMU's TCG reads both from the host's clocks) and a preemption
     * inside the window costs nothing; the ends' brackets take care of a
     * preemption at an end. 0.5 ms at ~0.3 us per bracket: 0.06%. */
    calibrated = 0;
    if (pm_timer_port && best_edge(pm_timer_port, &pm_start, &tsc_start)) {
        uint32_t reads = 0;
        while (pm_timer_elapsed(pm_start, inl(pm_timer_port), pm_timer_32bit) < CALIBRATION_PM_TICKS &&
               ++reads < 100000000)
            ;
        if (best_edge(pm_timer_port, &pm_end, &tsc_end)) {
            uint32_t elapsed = pm_timer_elapsed(pm_start, pm_end, pm_timer_32bit);
            if (elapsed >= CALIBRATION_PM_TICKS && tsc_end > tsc_start) {
                tsc_hz = (tsc_end - tsc_start) * PM_TIMER_HZ / elapsed;
                calibrated = 1;
            }
        }
    }
    if (tsc_hz == UNMEASURED_TSC_HZ) /* no PM timer at boot: a common rate */
        tsc_hz = FALLBACK_TSC_HZ;
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
