/*
 * Deferred work items. Each item has a pending flag an interrupt handler
 * may set; the idle loop runs flagged items in registration order. Timed
 * items become pending when the timer tick passes their due tick.
 */
#include "kernel/work.h"

#include "arch/x86/apic.h" // apic_timer_ticks, apic_timer_add_hook
#include "arch/x86/cpu.h"  // interrupts_save, interrupts_restore

static struct work *items;

void work_register(struct work *w)
{
    w->pending = 0;
    w->due_tick = 0;
    w->next = items;
    items = w;
}

void work_schedule(struct work *w)
{
    w->pending = 1;
}

void work_schedule_after(struct work *w, uint64_t ticks)
{
    uint64_t flags = interrupts_save(); /* the tick reads due_tick */

    w->due_tick = apic_timer_ticks() + (ticks ? ticks : 1);
    interrupts_restore(flags);
}

static void tick(void *context)
{
    uint64_t now = apic_timer_ticks();

    (void)context;
    for (struct work *w = items; w; w = w->next)
        if (w->due_tick && now >= w->due_tick) {
            w->due_tick = 0;
            w->pending = 1;
        }
}

int work_run_pending(void)
{
    int ran = 0;

    for (struct work *w = items; w; w = w->next) {
        if (!w->pending)
            continue;
        w->pending = 0; /* cleared first: a new request while running runs again */
        w->run(w->context);
        ran++;
    }
    return ran;
}

int work_any_pending(void)
{
    for (struct work *w = items; w; w = w->next)
        if (w->pending)
            return 1;
    return 0;
}

void work_init(void)
{
    apic_timer_add_hook(tick, 0);
}
