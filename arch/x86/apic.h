/*
 * The local APIC (xAPIC, memory mapped): end-of-interrupt, and the periodic
 * timer that wakes the idle loop and drives timeouts.
 */
#ifndef ARCH_X86_APIC_H
#define ARCH_X86_APIC_H

#include <stdint.h>

#define TIMER_HZ 100

void apic_init(uint64_t base);
uint32_t apic_id(void);
void apic_end_of_interrupt(void);
/* Calibrates the APIC timer against the clock and starts it at TIMER_HZ. */
/* Calibrates the timer against the clock and starts the tick; install
 * apic_timer_interrupt on VECTOR_TIMER first. */
void apic_timer_start(void);
struct interrupt_frame;
void apic_timer_interrupt(struct interrupt_frame *frame, void *context);
uint64_t apic_timer_ticks(void);
/* Runs hook(context) on every tick, in interrupt context. */
void apic_timer_add_hook(void (*hook)(void *context), void *context);

#endif
