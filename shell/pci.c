/*
 * `pci`: every PCI function with its ids, class, driver, IRQ, MSI-X and
 * BARs (pci/pci.h).
 */
#include "console/console.h" // console_printf
#include "lib/format.h"      // format_snprintf
#include "pci/pci.h"         // pci_function_*
#include "shell/commands.h"  // shell_pci_commands

static void print_function(const struct pci_function *f)
{
    char line[400];
    int length = 0;

#define APPEND(...)                                                                  \
    do {                                                                             \
        if (length < (int)sizeof(line))                                              \
            length += format_snprintf(line + length, sizeof(line) - length, __VA_ARGS__); \
    } while (0)

    if (f->segment)
        APPEND("pci %04x:%02x:%02x.%x", f->segment, f->bus, f->device, f->function);
    else
        APPEND("pci %02x:%02x.%x", f->bus, f->device, f->function);
    APPEND(" vendor=%04x device=%04x class=%02x.%02x.%02x driver=%s", f->vendor_id,
           f->device_id, f->class_code, f->subclass, f->prog_if,
           f->driver_name ? f->driver_name : "-");
    if (f->interrupt_pin && f->interrupt_line && f->interrupt_line != 0xff)
        APPEND(" irq=%u", f->interrupt_line);
    else
        APPEND(" irq=-");
    APPEND(" msix=%u", f->msix_table_size);
    for (unsigned i = 0; i < 6; i++) {
        const struct pci_bar *bar = &f->bars[i];
        if (!bar->size)
            continue;
        APPEND(" bar%u=%s:0x%llx/%llu", i, bar->is_io ? "io" : bar->is_64bit ? "mem64" : "mem",
               (unsigned long long)bar->address, (unsigned long long)bar->size);
    }
#undef APPEND
    console_printf("%s\n", line);
}

static void command_pci(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (unsigned i = 0; i < pci_function_count(); i++) {
        struct pci_function *f = pci_function_get(i);
        pci_size_bars(f, 1, 1); /* enumeration leaves unneeded BARs unsized */
        print_function(f);
    }
}

static const struct shell_command commands[] = {
    { "pci", "", "PCI functions: ids, class, driver, irq, MSI-X, BARs", 0, 0, command_pci },
};

SHELL_FAMILY(shell_pci_commands, commands);
