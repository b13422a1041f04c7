/*
 * Local APIC driver (Intel SDM vol. 3, chapter 11). The firmware leaves it
 * in xAPIC mode; we enable it through the spurious-vector register, mask
 * LINT0 (the 8259 is not used), keep LINT1 as NMI, and run the timer in
 * periodic mode.
 */
#include "arch/x86/apic.h"

#include "arch/x86/clock.h"   // clock_delay_us, clock_tsc_hz
#include "arch/x86/cpu.h"     // rdmsr, wrmsr
#include "arch/x86/vectors.h" // VECTOR_TIMER, VECTOR_SPURIOUS
#include "console/log.h"      // klog

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1u << 11)

#define REG_ID 0x20
#define REG_TASK_PRIORITY 0x80
#define REG_EOI 0xb0
#define REG_SPURIOUS 0xf0
#define REG_LVT_TIMER 0x320
#define REG_LVT_LINT0 0x350
#define REG_LVT_LINT1 0x360
#define REG_LVT_ERROR 0x370
#define REG_TIMER_INITIAL 0x380
#define REG_TIMER_CURRENT 0x390
#define REG_TIMER_DIVIDE 0x3e0

#define LVT_MASKED (1u << 16)
#define LVT_TIMER_PERIODIC (1u << 17)
#define LVT_DELIVERY_NMI (4u << 8)
#define TIMER_DIVIDE_16 0x3
#define CALIBRATION_US 100 /* the tick needs ~1%; 100 us windows give ~0.1% */
#define CALIBRATION_WINDOWS 5

#define MAX_TICK_HOOKS 8

static volatile uint32_t *registers;
static volatile uint64_t ticks;
static struct {
    void (*hook)(void *context);
    void *context;
} tick_hooks[MAX_TICK_HOOKS];
static unsigned tick_hook_count;

static uint32_t read_register(uint32_t offset)
{
    return registers[offset / 4];
}

static void write_register(uint32_t offset, uint32_t value)
{
    registers[offset / 4] = value;
}

void apic_init(uint64_t base)
{
    if (!base)
        base = rdmsr(MSR_APIC_BASE) & ~0xfffull;
    wrmsr(MSR_APIC_BASE, (rdmsr(MSR_APIC_BASE) & ~0xfffff000ull) | base | APIC_BASE_ENABLE);
    registers = (volatile uint32_t *)(uintptr_t)base;
    write_register(REG_SPURIOUS, 0x100 | VECTOR_SPURIOUS);
    write_register(REG_TASK_PRIORITY, 0);
    write_register(REG_LVT_LINT0, LVT_MASKED);
    write_register(REG_LVT_LINT1, LVT_DELIVERY_NMI);
    write_register(REG_LVT_ERROR, LVT_MASKED);
    write_register(REG_LVT_TIMER, LVT_MASKED);
}

uint32_t apic_id(void)
{
    return read_register(REG_ID) >> 24;
}

void apic_end_of_interrupt(void)
{
    write_register(REG_EOI, 0);
}

void apic_timer_interrupt(struct interrupt_frame *frame, void *context)
{
    (void)frame;
    (void)context;
    ticks++;
    for (unsigned i = 0; i < tick_hook_count; i++)
        tick_hooks[i].hook(tick_hooks[i].context);
}

void apic_timer_add_hook(void (*hook)(void *context), void *context)
{
    if (tick_hook_count < MAX_TICK_HOOKS) {
        tick_hooks[tick_hook_count].hook = hook;
        tick_hooks[tick_hook_count].context = context;
        tick_hook_count++;
    }
}

/* The timer's rate over one short window, timed by the TSC between two
 * reads of its count (the same read at both ends, so its latency
 * cancels). */
static uint64_t measure_timer_hz(void)
{
    write_register(REG_TIMER_INITIAL, 0xffffffffu);
    uint64_t tsc_start = rdtsc();
    uint32_t start = read_register(REG_TIMER_CURRENT);
    clock_delay_us(CALIBRATION_US);
    uint64_t tsc_end = rdtsc();
    uint32_t end = read_register(REG_TIMER_CURRENT);
    uint64_t elapsed = tsc_end - tsc_start;

    return elapsed ? (uint64_t)(start - end) * clock_tsc_hz() / elapsed : 0;
}

void apic_timer_start(void)
{
    uint64_t rates[CALIBRATION_WINDOWS];

    write_register(REG_TIMER_DIVIDE, TIMER_DIVIDE_16);
    write_register(REG_LVT_TIMER, LVT_MASKED);
    /* the median of several windows: a preempted vCPU stretches one */
    for (unsigned i = 0; i < CALIBRATION_WINDOWS; i++) {
        rates[i] = measure_timer_hz();
        for (unsigned k = i; k > 0 && rates[k - 1] > rates[k]; k--) {
            uint64_t t = rates[k];
            rates[k] = rates[k - 1];
            rates[k - 1] = t;
        }
    }
    uint64_t hz = rates[CALIBRATION_WINDOWS / 2];

    write_register(REG_LVT_TIMER, LVT_TIMER_PERIODIC | VECTOR_TIMER);
    write_register(REG_TIMER_INITIAL, (uint32_t)(hz / TIMER_HZ));
    klog("apic: timer %llu Hz / 16, tick %u Hz", (unsigned long long)hz, TIMER_HZ);
}

uint64_t apic_timer_ticks(void)
{
    return ticks;
}
