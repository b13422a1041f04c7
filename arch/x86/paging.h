/*
 * The kernel's page tables: an identity map of all physical memory the
 * firmware reported (and at least the first 4 GiB, for MMIO), with page 0
 * left unmapped so null pointers fault.
 */
#ifndef ARCH_X86_PAGING_H
#define ARCH_X86_PAGING_H

struct boot_handoff;

void paging_init(const struct boot_handoff *handoff);

#endif
