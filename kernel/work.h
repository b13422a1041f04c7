/*
 * Deferred work: interrupt handlers ask for work to be done, and the idle
 * loop does it with interrupts on, outside any interrupted code (the page
 * allocator, for one, is not reentrant).
 */
#ifndef KERNEL_WORK_H
#define KERNEL_WORK_H

#include <stdint.h>

struct work {
    void (*run)(void *context);
    void *context;
    volatile int pending;
    uint64_t due_tick; /* for work_schedule_after; 0 when not timed */
    struct work *next; /* registration list */
};

/* Makes w known to the idle loop; call once at setup. */
void work_register(struct work *w);
/* Safe from interrupt handlers; scheduling twice before it runs runs once. */
void work_schedule(struct work *w);
/* Runs w once `ticks` timer ticks from now (from a tick hook). */
void work_schedule_after(struct work *w, uint64_t ticks);
/* Runs every pending work item; returns how many ran. */
int work_run_pending(void);
int work_any_pending(void);
/* Sets up the timer hook for timed work. */
void work_init(void);

#endif
