/*
 * Interrupt dispatch and the fatal-exception report. An exception prints
 * its vector, error code, every register and a frame-pointer backtrace
 * with symbol names, then halts: the machine never resets silently.
 */
#include "arch/x86/interrupt.h"

#include "arch/x86/apic.h"    // apic_end_of_interrupt
#include "arch/x86/cpu.h"     // read_cr*, cpu_halt_forever
#include "arch/x86/symbols.h" // symbols_lookup
#include "console/console.h"  // console_printf

struct handler_slot {
    interrupt_handler handler;
    void *context;
};

static struct handler_slot handlers[256];
static uint64_t counts[256];
static int reporting_exception;

static const char *const exception_names[32] = {
    "divide-error", "debug", "nmi", "breakpoint", "overflow", "bound-range",
    "invalid-opcode", "device-not-available", "double-fault", "coprocessor-overrun",
    "invalid-tss", "segment-not-present", "stack-fault", "general-protection",
    "page-fault", "reserved-15", "x87-floating-point", "alignment-check",
    "machine-check", "simd-floating-point", "virtualization", "control-protection",
    "reserved-22", "reserved-23", "reserved-24", "reserved-25", "reserved-26",
    "reserved-27", "hypervisor-injection", "vmm-communication", "security", "reserved-31",
};

void interrupt_set_handler(uint8_t vector, interrupt_handler handler, void *context)
{
    handlers[vector].context = context;
    handlers[vector].handler = handler;
}

interrupt_handler interrupt_get_handler(uint8_t vector, void **context)
{
    *context = handlers[vector].context;
    return handlers[vector].handler;
}

int interrupt_alloc_vector(void)
{
    static int next = VECTOR_DEVICE_FIRST;

    if (next >= VECTOR_TIMER)
        return -1;
    return next++;
}

uint64_t interrupt_count(uint8_t vector)
{
    return counts[vector];
}

static void print_frame(int depth, uint64_t address)
{
    uint64_t offset;
    const char *name = symbols_lookup(address, &offset);

    if (name)
        console_printf("  #%-2d 0x%016llx %s+0x%llx\n", depth, (unsigned long long)address,
                       name, (unsigned long long)offset);
    else
        console_printf("  #%-2d 0x%016llx ?\n", depth, (unsigned long long)address);
}

/* Follows saved frame pointers while they look like stack addresses:
 * ascending, aligned, and not absurdly far apart. */
static void print_backtrace(uint64_t rip, uint64_t rbp)
{
    console_printf("backtrace:\n");
    print_frame(0, rip);
    for (int depth = 1; depth < 24 && rbp >= 0x1000 && (rbp & 7) == 0; depth++) {
        const uint64_t *frame = (const uint64_t *)(uintptr_t)rbp;
        uint64_t next = frame[0], return_address = frame[1];
        if (!return_address)
            break;
        /* return address - 1 names the call, not what follows it */
        print_frame(depth, return_address - 1);
        if (next <= rbp || next - rbp > (1u << 20))
            break;
        rbp = next;
    }
}

static __attribute__((noreturn)) void report_exception(const struct interrupt_frame *f)
{
    uint64_t cr2 = read_cr2();

    if (reporting_exception++) {
        /* a fault while reporting: say the minimum and stop */
        console_printf("\nexception vector=%llu during the report; system halted\n",
                       (unsigned long long)f->vector);
        cpu_halt_forever();
    }
    console_printf("\nexception vector=%llu name=%s error=0x%llx rip=0x%llx cr2=0x%llx\n",
                   (unsigned long long)f->vector, exception_names[f->vector & 31],
                   (unsigned long long)f->error_code, (unsigned long long)f->rip,
                   (unsigned long long)cr2);
    console_printf("  rax=0x%016llx rbx=0x%016llx rcx=0x%016llx rdx=0x%016llx\n",
                   (unsigned long long)f->rax, (unsigned long long)f->rbx,
                   (unsigned long long)f->rcx, (unsigned long long)f->rdx);
    console_printf("  rsi=0x%016llx rdi=0x%016llx rbp=0x%016llx rsp=0x%016llx\n",
                   (unsigned long long)f->rsi, (unsigned long long)f->rdi,
                   (unsigned long long)f->rbp, (unsigned long long)f->rsp);
    console_printf("  r8=0x%016llx r9=0x%016llx r10=0x%016llx r11=0x%016llx\n",
                   (unsigned long long)f->r8, (unsigned long long)f->r9,
                   (unsigned long long)f->r10, (unsigned long long)f->r11);
    console_printf("  r12=0x%016llx r13=0x%016llx r14=0x%016llx r15=0x%016llx\n",
                   (unsigned long long)f->r12, (unsigned long long)f->r13,
                   (unsigned long long)f->r14, (unsigned long long)f->r15);
    console_printf("  rip=0x%016llx cs=0x%llx rflags=0x%llx ss=0x%llx\n",
                   (unsigned long long)f->rip, (unsigned long long)f->cs,
                   (unsigned long long)f->rflags, (unsigned long long)f->ss);
    console_printf("  cr0=0x%llx cr2=0x%llx cr3=0x%llx cr4=0x%llx\n",
                   (unsigned long long)read_cr0(), (unsigned long long)cr2,
                   (unsigned long long)read_cr3(), (unsigned long long)read_cr4());
    console_printf("  image_base=0x%llx\n", (unsigned long long)symbols_image_base());
    print_backtrace(f->rip, f->rbp);
    console_printf("system halted\n");
    cpu_halt_forever();
}

void interrupt_dispatch(struct interrupt_frame *frame)
{
    uint64_t vector = frame->vector & 0xff;

    counts[vector]++;
    if (vector < 32)
        report_exception(frame);
    if (vector >= VECTOR_PIC_BASE && vector < VECTOR_PIC_BASE + 16)
        return; /* a spurious 8259 interrupt: it is masked and wants no EOI */
    if (vector == VECTOR_SPURIOUS)
        return; /* APIC spurious interrupts take no EOI either (SDM 11.9) */
    if (handlers[vector].handler)
        handlers[vector].handler(frame, handlers[vector].context);
    apic_end_of_interrupt();
}
