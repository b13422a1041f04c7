/*
 * Power commands: power off, reboot, and hibernate (pm/).
 */
#include "console/console.h" // console_printf
#include "pm/hibernate.h"    // hibernate
#include "pm/power.h"        // power_off, power_reboot
#include "shell/commands.h"  // shell_power_commands

static void command_poweroff(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf("poweroff\n");
    power_off();
}

static void command_reboot(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf("reboot\n");
    power_reboot();
}

static void command_hibernate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hibernate(); /* prints its own outcome line */
}

static const struct shell_command commands[] = {
    { "poweroff", "", "power off (ACPI S5)", 0, 0, command_poweroff },
    { "reboot", "", "reset the machine", 0, 0, command_reboot },
    { "hibernate", "", "write memory to the torpor-swap disk and power off (S4)", 0, 0,
      command_hibernate },
};

SHELL_FAMILY(shell_power_commands, commands);
