/*
 * kmain: the kernel's entry from efi_main. It runs the bring-up
 * (init/bringup.c), prints the boot line scripts wait for, and hands the
 * CPU to the shell for good.
 */
#include "init/kmain.h"

#include "arch/x86/clock.h"   // clock_ns
#include "arch/x86/symbols.h" // symbols_image_base
#include "boot/handoff.h"     // struct boot_handoff
#include "console/console.h"  // console_printf
#include "init/bringup.h"     // bringup_boot
#include "mm/page_alloc.h"    // page_alloc_get_stats
#include "shell/shell.h"      // shell_run

void kmain(struct boot_handoff *handoff)
{
    struct page_alloc_stats stats;

    bringup_boot(handoff);
    page_alloc_get_stats(&stats);
    uint64_t boot_us = clock_ns() / 1000;
    console_printf("boot version=%s total_kib=%llu boot_us=%llu image_base=0x%llx\n",
                   TORPOR_VERSION, (unsigned long long)(stats.total_pages * 4),
                   (unsigned long long)boot_us, (unsigned long long)symbols_image_base());
    console_printf("torpor ready\n");
    shell_run(handoff);
}
