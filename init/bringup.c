/*
 * The bring-up steps, in the one order both paths take. Each step says
 * what it needs from the steps before it; a step with no resume half is
 * state the image kept (its page tables, its allocator, its boot options),
 * and a step with no boot half exists only because the firmware is new.
 *
 * Why this order:
 *  - the clock first, so every log line has a time (at resume the clock
 *    continues from the snapshot, so time never runs backwards);
 *  - CPU tables before anything can fault, the UART before anything prints;
 *  - ACPI before calibration (the PM timer port) and before the interrupt
 *    controllers (the MADT);
 *  - page tables and the allocator before anything allocates; both are
 *    the image's own after a resume;
 *  - interrupts on (with the tick) before PCI and the drivers: a driver's
 *    probe waits for its device's answers, which the interrupt or the tick
 *    delivers. At resume every device of the image is still frozen (the
 *    virtio core leaves frozen devices alone), so no interrupt can reach a
 *    driver that is not restored yet;
 *  - the drivers last, and the resume from disk after them (it needs the
 *    torpor-swap disk).
 */
#include "init/bringup.h"

#include "acpi/acpi.h"             // acpi_init, acpi_get
#include "agent/agent.h"           // agent_init, agent_resume
#include "arch/x86/apic.h"         // apic_*
#include "arch/x86/clock.h"        // clock_*
#include "arch/x86/cpu.h"          // interrupts_enable, cpu_halt_forever
#include "arch/x86/cpu_tables.h"   // cpu_init
#include "arch/x86/interrupt.h"    // interrupt_set_handler, VECTOR_UART
#include "arch/x86/ioapic.h"       // ioapic_*
#include "arch/x86/paging.h"       // paging_init
#include "arch/x86/uart.h"         // uart_*
#include "boot/handoff.h"          // struct boot_handoff
#include "console/console.h"       // console_*
#include "console/log.h"           // klog, log_set_clock
#include "kernel/options.h"        // options_*
#include "kernel/work.h"           // work_init
#include "mm/page_alloc.h"         // page_alloc_init
#include "pci/pci.h"               // pci_init, pci_rescan
#include "pm/hibernate.h"          // hibernate_set_platform_resume
#include "pm/image_key.h"          // image_key_take
#include "pm/power.h"              // power_init
#include "pm/power_button.h"       // power_button_*
#include "pm/resume.h"             // resume_from_disk, struct resume_handoff
#include "virtio/virtio.h"         // virtio_*
#include "virtio/virtio_balloon.h" // virtio_balloon_register
#include "virtio/virtio_blk.h"     // virtio_blk_register
#include "virtio/virtio_console.h" // virtio_console_register

/* What the steps share: the facts of this boot's firmware. */
struct bringup {
    struct boot_handoff *boot;           /* at boot; NULL at resume */
    const struct resume_handoff *resume; /* at resume; NULL at boot */
    uint64_t snapshot_ns;
    uint64_t acpi_rsdp;
    void *efi_runtime_services;
    int acpi_ok;
    int restore_failed;
};

typedef void (*bringup_fn)(struct bringup *b);

struct bringup_step {
    const char *name;
    const char *needs; /* the steps before it that it relies on */
    bringup_fn boot;   /* NULL: nothing to do at boot */
    bringup_fn resume; /* NULL: the image kept this state */
};

static void clock_boot(struct bringup *b)
{
    clock_init(b->boot->tsc_at_entry);
}

static void clock_resume(struct bringup *b)
{
    /* the TSC restarted with the new QEMU process (at the old rate until
     * the calibration step measures the new one) */
    clock_continue_from(b->snapshot_ns);
}

static void cpu_tables(struct bringup *b)
{
    (void)b;
    cpu_init();
}

static void console_output(struct bringup *b)
{
    uart_init();
    console_set_output(uart_putc);
    log_set_clock(clock_ns);
    if (b->boot)
        console_printf("\n\ntorpor %s (revision %s)\n", TORPOR_VERSION, TORPOR_REVISION);
}

static void acpi_tables(struct bringup *b)
{
    b->acpi_ok = acpi_init(b->acpi_rsdp) == 0;
}

static void clock_calibration(struct bringup *b)
{
    const struct acpi_info *acpi = acpi_get();
    /* at resume the host may run the TSC at another rate: measure it
     * again, keeping the clock's reading continuous across the change */
    uint64_t now = clock_ns();

    clock_calibrate(acpi->pm_timer, acpi->pm_timer_32bit);
    if (b->resume)
        clock_continue_from(now);
    klog("clock: tsc %llu Hz%s", (unsigned long long)clock_tsc_hz(),
         clock_calibrated() ? "" : " (not calibrated: no ACPI PM timer)");
}

static void boot_options(struct bringup *b)
{
    klog("boot: image at 0x%llx (%llu KiB), ExitBootServices after %u tries",
         (unsigned long long)b->boot->image_base,
         (unsigned long long)(b->boot->image_size / 1024), b->boot->exit_boot_services_tries);
    options_init(b->boot->cmdline);
    if (options_line()[0])
        klog("boot: options '%s'", options_line());
}

static void page_tables(struct bringup *b)
{
    paging_init(b->boot);
}

static void page_allocator(struct bringup *b)
{
    if (b->boot->range_count == BOOT_MAX_RANGES)
        klog("boot: memory map truncated at %u ranges", BOOT_MAX_RANGES);
    if (page_alloc_init(b->boot->ranges, b->boot->range_count) != 0) {
        console_printf("fatal: no memory for the page allocator\n");
        cpu_halt_forever();
    }
}

/* The handoff's keys leave the kernel image for a page no image saves. */
static void image_key(struct bringup *b)
{
    image_key_take(b->boot);
}

static void firmware_runtime(struct bringup *b)
{
    power_init(b->efi_runtime_services);
}

static void interrupt_controllers(struct bringup *b)
{
    const struct acpi_info *acpi = acpi_get();

    apic_init(b->acpi_ok ? acpi->local_apic : 0);
    ioapic_init(acpi, apic_id());
}

static void console_input(struct bringup *b)
{
    (void)b;
    interrupt_set_handler(VECTOR_UART, uart_interrupt, 0);
    ioapic_route_isa_irq(UART_COM1_IRQ, VECTOR_UART);
    uart_enable_receive_interrupt();
}

static void interrupts_and_tick(struct bringup *b)
{
    (void)b;
    interrupt_set_handler(VECTOR_TIMER, apic_timer_interrupt, 0);
    interrupts_enable();
    apic_timer_start();
}

static void deferred_work(struct bringup *b)
{
    (void)b;
    work_init();
}

static void power_button_boot(struct bringup *b)
{
    (void)b;
    power_button_init();
}

static void power_button_again(struct bringup *b)
{
    (void)b;
    power_button_resume();
}

static void pci_boot(struct bringup *b)
{
    (void)b;
    pci_init(acpi_get());
}

static void pci_again(struct bringup *b)
{
    (void)b;
    pci_intx_forget_routes(); /* they named the old enumeration's functions */
    pci_rescan(acpi_get());
}

static void drivers_boot(struct bringup *b)
{
    (void)b;
    virtio_blk_register();
    virtio_balloon_register();
    virtio_console_register();
    virtio_init();
}

static void drivers_restore(struct bringup *b)
{
    /* find the image's devices again (BARs may have moved), drop those
     * that vanished, probe new ones, then restore the rest */
    virtio_rescan();
    b->restore_failed = virtio_restore_all() != 0;
}

static void agent_boot(struct bringup *b)
{
    (void)b;
    agent_init();
}

static void agent_again(struct bringup *b)
{
    (void)b;
    agent_resume();
}

static void image_resume(struct bringup *b)
{
    /* returns unless it jumps into a hibernation image */
    resume_from_disk(b->boot);
}

static const struct bringup_step steps[] = {
    { "clock", "nothing", clock_boot, clock_resume },
    { "cpu tables", "nothing", cpu_tables, cpu_tables },
    { "console output", "clock (log times)", console_output, console_output },
    { "acpi tables", "console (log)", acpi_tables, acpi_tables },
    { "clock calibration", "acpi (PM timer)", clock_calibration, clock_calibration },
    { "boot options", "console", boot_options, 0 },
    { "page tables", "the early block efi_main set aside for them", page_tables, 0 },
    { "page allocator", "the memory map (it never hands out the early block)", page_allocator, 0 },
    { "image key", "page allocator (its secret page), console", image_key, 0 },
    { "firmware runtime", "nothing", firmware_runtime, firmware_runtime },
    { "interrupt controllers", "acpi (MADT)", interrupt_controllers, interrupt_controllers },
    { "console input", "interrupt controllers", console_input, console_input },
    { "interrupts and tick", "interrupt controllers, clock", interrupts_and_tick, interrupts_and_tick },
    { "deferred work", "tick", deferred_work, 0 },
    { "power button", "acpi, interrupt controllers, deferred work", power_button_boot, power_button_again },
    { "pci", "acpi (MCFG), page allocator (high BAR mappings)", pci_boot, pci_again },
    { "drivers", "pci, interrupts and tick, page allocator", drivers_boot, drivers_restore },
    { "guest agent", "drivers (its virtio-serial port), clock (wall time)", agent_boot, agent_again },
    { "resume from disk", "drivers (torpor-swap)", image_resume, 0 },
};

static void run(struct bringup *b)
{
    for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        bringup_fn fn = b->resume ? steps[i].resume : steps[i].boot;
        if (fn)
            fn(b);
    }
}

void bringup_boot(struct boot_handoff *handoff)
{
    struct bringup b = {
        .boot = handoff,
        .acpi_rsdp = handoff->acpi_rsdp,
        .efi_runtime_services = handoff->efi_runtime_services,
    };

    hibernate_set_platform_resume(bringup_resume);
    run(&b);
}

int bringup_resume(const struct resume_handoff *handoff, uint64_t snapshot_ns)
{
    struct bringup b = {
        .resume = handoff,
        .snapshot_ns = snapshot_ns,
        .acpi_rsdp = handoff->acpi_rsdp,
        .efi_runtime_services = handoff->efi_runtime_services,
    };

    run(&b);
    return b.restore_failed ? -1 : 0;
}
