/*
 * Power button events (ACPI 6.4, 4.8.3.1): PWRBTN_STS (bit 8) in the PM1
 * status register raises an SCI when PWRBTN_EN is set in the PM1 enable
 * register, which sits in the second half of the PM1 event block. The SCI
 * is ISA IRQ `SCI_INT` (9 in QEMU), level-triggered. The interrupt handler
 * acknowledges the event and leaves the action to deferred work.
 */
#include "pm/power_button.h"

#include "acpi/acpi.h"          // acpi_get
#include "arch/x86/clock.h"     // clock_delay_us
#include "arch/x86/cpu.h"       // inw, outw, outb
#include "arch/x86/interrupt.h" // interrupt_set_handler, VECTOR_SCI
#include "arch/x86/ioapic.h"    // ioapic_route_isa_irq
#include "console/console.h"    // console_printf
#include "console/log.h"        // klog
#include "kernel/options.h"     // options_has
#include "kernel/work.h"        // work_*
#include "pm/hibernate.h"       // hibernate
#include "pm/power.h"           // power_off

#define PWRBTN (1u << 8)
#define SCI_EN 1u

enum button_action { BUTTON_HIBERNATE, BUTTON_POWEROFF, BUTTON_IGNORE };

static const char *const action_names[] = { "hibernate", "poweroff", "ignore" };

static enum button_action action;
static struct work button_work;
static uint64_t presses;

static uint16_t status_port(void)
{
    return acpi_get()->pm1a_event;
}

static uint16_t enable_port(void)
{
    return (uint16_t)(acpi_get()->pm1a_event + acpi_get()->pm1_event_length / 2);
}

static void pressed(void *context)
{
    (void)context;
    klog("power button: pressed (%llu), action %s", (unsigned long long)presses,
         action_names[action]);
    if (action == BUTTON_HIBERNATE) {
        console_printf("hibernate\n");
        hibernate(); /* returns only when it failed (and thawed) */
    } else if (action == BUTTON_POWEROFF) {
        console_printf("poweroff\n");
        power_off();
    }
}

static void sci_interrupt(struct interrupt_frame *frame, void *context)
{
    (void)frame;
    (void)context;
    uint16_t status = inw(status_port());
    if (status & PWRBTN) {
        outw(status_port(), PWRBTN); /* write 1 to clear */
        presses++;
        work_schedule(&button_work);
    }
}

/* Enables the button's event and routes the SCI; again after resume,
 * where the firmware and chipset start from reset. */
static void arm(void)
{
    const struct acpi_info *acpi = acpi_get();

    /* ACPI mode: SCI_EN set by the firmware, or asked for through SMI_CMD */
    if (!(inw(acpi->pm1a_control) & SCI_EN) && acpi->smi_command && acpi->acpi_enable_value) {
        outb((uint16_t)acpi->smi_command, acpi->acpi_enable_value);
        for (int i = 0; i < 1000 && !(inw(acpi->pm1a_control) & SCI_EN); i++)
            clock_delay_us(100);
    }
    interrupt_set_handler(VECTOR_SCI, sci_interrupt, 0);
    outw(status_port(), PWRBTN); /* a stale press is not a press */
    outw(enable_port(), (uint16_t)(inw(enable_port()) | PWRBTN));
    ioapic_route_isa_irq((uint8_t)acpi->sci_irq, VECTOR_SCI);
}

static int have_event_block(void)
{
    const struct acpi_info *acpi = acpi_get();

    return acpi->found && acpi->pm1a_event && acpi->pm1_event_length >= 4;
}

void power_button_init(void)
{
    const struct acpi_info *acpi = acpi_get();

    if (!have_event_block()) {
        klog("power button: no PM1 event block");
        return;
    }
    action = options_has("power_button=ignore")     ? BUTTON_IGNORE
             : options_has("power_button=poweroff") ? BUTTON_POWEROFF
                                                    : BUTTON_HIBERNATE;
    button_work.run = pressed;
    work_register(&button_work);
    arm();
    klog("power button: SCI %u, action %s%s", acpi->sci_irq, action_names[action],
         inw(acpi->pm1a_control) & SCI_EN ? "" : " (ACPI mode not enabled)");
}

void power_button_resume(void)
{
    if (have_event_block() && button_work.run)
        arm();
}
