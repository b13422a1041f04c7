/*
 * The wall clock (see kernel/wall_clock.h): a base in Unix nanoseconds
 * and the monotonic reading it was taken at.
 */
#include "kernel/wall_clock.h"

#include "arch/x86/clock.h" // clock_ns
#include "arch/x86/rtc.h"   // rtc_read_seconds

static int64_t base_ns;
static uint64_t base_monotonic_ns;

int wall_clock_from_hardware(void)
{
    int64_t seconds = rtc_read_seconds();

    if (seconds < 0)
        return -1;
    wall_clock_set_ns(seconds * 1000000000);
    return 0;
}

int64_t wall_clock_ns(void)
{
    return base_ns + (int64_t)(clock_ns() - base_monotonic_ns);
}

void wall_clock_set_ns(int64_t ns)
{
    base_monotonic_ns = clock_ns();
    base_ns = ns;
}
