/*
 * Interrupt and exception dispatch. Vectors 0-31 are CPU exceptions (fatal:
 * a register dump and a backtrace, then halt); 0x20-0x2f are the masked
 * 8259's (spurious only); device and timer vectors come from 0x30 up.
 */
#ifndef ARCH_X86_INTERRUPT_H
#define ARCH_X86_INTERRUPT_H

#include <stdint.h>

#include "arch/x86/vectors.h" // VECTOR_*

/* Layout pushed by interrupt_entry.asm; keep the two in step. */
struct interrupt_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*interrupt_handler)(struct interrupt_frame *frame, void *context);

/* Installs handler for vector; the dispatcher sends the local APIC EOI
 * after it returns. */
void interrupt_set_handler(uint8_t vector, interrupt_handler handler, void *context);
/* The handler installed for vector (NULL if none) and its context; lets a
 * layer that shares one vector among several handlers (PCI INTx) chain them. */
interrupt_handler interrupt_get_handler(uint8_t vector, void **context);

/* Hands out a free vector for a device interrupt (MSI-X or INTx), from
 * VECTOR_DEVICE_FIRST up; -1 when none is left. */
int interrupt_alloc_vector(void);

/* Counts of interrupts taken per vector, for diagnostics. */
uint64_t interrupt_count(uint8_t vector);

/* Called from the assembly stubs. */
void interrupt_dispatch(struct interrupt_frame *frame);

#endif
