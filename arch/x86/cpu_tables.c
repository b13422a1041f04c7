/*
 * The kernel's own GDT, TSS and IDT, replacing the firmware's (whose memory
 * the page allocator hands out). Long mode needs one code and one data
 * segment; the TSS only carries IST stacks (Intel SDM vol. 3, 8.7).
 */
#include "arch/x86/cpu_tables.h"

#include "arch/x86/cpu.h"       // read_cr*
#include "arch/x86/interrupt.h" // VECTOR_*
#include "lib/string.h"         // memset

#define IST_STACK_SIZE 16384

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

struct idt_entry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attributes;
    uint16_t offset_middle;
    uint32_t offset_high;
    uint32_t reserved;
} __attribute__((packed));

struct table_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

static uint64_t gdt[5] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static struct idt_entry idt[256] __attribute__((aligned(16)));
static uint8_t fault_stack[IST_STACK_SIZE] __attribute__((aligned(16)));

extern const uint64_t interrupt_stub_table[256];

static void set_tss_descriptor(void)
{
    uint64_t base = (uint64_t)(uintptr_t)&tss;
    uint64_t limit = sizeof(tss) - 1;

    /* a 16-byte system descriptor: type 9 (available 64-bit TSS), present */
    gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt[4] = base >> 32;
}

static void set_idt_entry(unsigned vector, uint64_t handler, uint8_t ist)
{
    idt[vector] = (struct idt_entry){
        .offset_low = handler & 0xffff,
        .selector = GDT_KERNEL_CODE,
        .ist = ist,
        .type_attributes = 0x8e, /* present, ring 0, 64-bit interrupt gate */
        .offset_middle = (handler >> 16) & 0xffff,
        .offset_high = handler >> 32,
    };
}

void cpu_init(void)
{
    gdt[0] = 0;
    gdt[1] = 0x00209a0000000000ull; /* code: present, executable, long mode */
    gdt[2] = 0x0000920000000000ull; /* data: present, writable */
    memset(&tss, 0, sizeof(tss));
    tss.ist[0] = (uint64_t)(uintptr_t)(fault_stack + sizeof(fault_stack));
    tss.iomap_base = sizeof(tss);
    set_tss_descriptor();

    struct table_pointer gdtr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
    __asm__ volatile("lgdt %0\n\t"
                     "pushq %1\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\n\t"
                     "mov %2, %%ax\n\t"
                     "mov %%ax, %%ds\n\t"
                     "mov %%ax, %%es\n\t"
                     "mov %%ax, %%ss\n\t"
                     "mov %%ax, %%fs\n\t"
                     "mov %%ax, %%gs\n\t"
                     "mov %3, %%ax\n\t"
                     "ltr %%ax"
                     :
                     : "m"(gdtr), "i"(GDT_KERNEL_CODE), "i"(GDT_KERNEL_DATA), "i"(GDT_TSS)
                     : "rax", "memory");

    /* double fault, NMI and machine check run on their own stack */
    for (unsigned vector = 0; vector < 256; vector++) {
        uint8_t ist = (vector == 2 || vector == 8 || vector == 18) ? 1 : 0;
        set_idt_entry(vector, interrupt_stub_table[vector], ist);
    }
    struct table_pointer idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}
