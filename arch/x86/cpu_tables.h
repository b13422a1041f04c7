/*
 * The CPU tables: the kernel's GDT, TSS and IDT.
 */
#ifndef ARCH_X86_CPU_TABLES_H
#define ARCH_X86_CPU_TABLES_H

#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10
#define GDT_TSS 0x18

/* Loads the kernel's GDT (with a TSS whose IST1 stack serves faults that
 * must not use a possibly broken stack) and its IDT. */
void cpu_init(void);

#endif
