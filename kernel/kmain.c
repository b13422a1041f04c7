/*
 * kmain brings the kernel up in dependency order: CPU tables, console,
 * ACPI and the clock, page tables, the page allocator, interrupts, then
 * the shell. Each step only uses what the steps before it set up.
 */
#include "kernel/kmain.h"

#include "arch/x86/apic.h"   // apic_*
#include "arch/x86/cpu.h"    // cpu_init, interrupts_enable
#include "arch/x86/interrupt.h" // VECTOR_UART
#include "arch/x86/ioapic.h" // ioapic_*
#include "arch/x86/paging.h" // paging_init
#include "arch/x86/uart.h"   // uart_*
#include "boot/handoff.h"    // struct boot_handoff
#include "kernel/clock.h"    // clock_*
#include "kernel/console.h"  // console_printf
#include "kernel/log.h"      // klog
#include "kernel/options.h"  // options_init
#include "kernel/shell.h"    // shell_run
#include "kernel/symbols.h"  // symbols_image_base
#include "kernel/work.h"     // work_init
#include "mm/page_alloc.h"   // page_alloc_*
#include "pm/acpi.h"         // acpi_*
#include "pm/hibernate.h"    // hibernate_init
#include "pm/power.h"        // power_init
#include "pm/power_button.h" // power_button_init
#include "pm/resume.h"       // resume_from_disk
#include "virtio/pci.h"      // pci_init
#include "virtio/virtio.h"   // virtio_init
#include "virtio/virtio_balloon.h" // virtio_balloon_register
#include "virtio/virtio_blk.h" // virtio_blk_register
#include "virtio/virtio_console.h" // virtio_console_register

void kmain(const struct boot_handoff *handoff)
{
    clock_init(handoff->tsc_at_entry);
    cpu_init();
    uart_init();
    console_printf("\n\ntorpor %s (revision %s)\n", TORPOR_VERSION, TORPOR_REVISION);

    /* the clock needs the PM timer port, so ACPI comes first; until the
     * clock is calibrated, log timestamps use a guessed rate */
    int acpi_ok = acpi_init(handoff->acpi_rsdp);
    const struct acpi_info *acpi = acpi_get();
    clock_calibrate(acpi->pm_timer, acpi->pm_timer_32bit);
    klog("boot: image at 0x%llx (%llu KiB), ExitBootServices after %u tries",
         (unsigned long long)handoff->image_base,
         (unsigned long long)(handoff->image_size / 1024), handoff->exit_boot_services_tries);
    klog("clock: tsc %llu Hz%s", (unsigned long long)clock_tsc_hz(),
         clock_calibrated() ? "" : " (not calibrated: no ACPI PM timer)");
    options_init(handoff->cmdline);
    if (options_line()[0])
        klog("boot: options '%s'", options_line());

    paging_init(handoff);
    if (handoff->range_count == BOOT_MAX_RANGES)
        klog("boot: memory map truncated at %u ranges", BOOT_MAX_RANGES);
    if (page_alloc_init(handoff->ranges, handoff->range_count) != 0) {
        console_printf("fatal: no memory for the page allocator\n");
        cpu_halt_forever();
    }
    power_init(handoff->efi_runtime_services);

    apic_init(acpi_ok == 0 ? acpi->local_apic : 0);
    ioapic_init(acpi, apic_id());
    ioapic_route_isa_irq(UART_COM1_IRQ, VECTOR_UART);
    uart_enable_receive_interrupt();
    interrupts_enable();
    apic_timer_start();
    work_init();
    power_button_init();
    /* after the page allocator: high BARs need page tables */
    pci_init(acpi);
    virtio_blk_register();
    virtio_balloon_register();
    virtio_console_register();
    virtio_init();
    hibernate_init();
    /* needs the swap disk; returns unless it jumps into an image */
    resume_from_disk(handoff);

    struct page_alloc_stats stats;
    page_alloc_get_stats(&stats);
    uint64_t boot_us = clock_ns() / 1000;
    console_printf("boot version=%s total_kib=%llu boot_us=%llu image_base=0x%llx\n",
                   TORPOR_VERSION, (unsigned long long)(stats.total_pages * 4),
                   (unsigned long long)boot_us, (unsigned long long)symbols_image_base());
    console_printf("torpor ready\n");
    shell_run(handoff);
}
