/*
 * The kernel's entry, called by efi_main on the kernel stack after
 * ExitBootServices, with interrupts off.
 */
#ifndef INIT_KMAIN_H
#define INIT_KMAIN_H

struct boot_handoff;

__attribute__((noreturn)) void kmain(struct boot_handoff *handoff);

#endif
