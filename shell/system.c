/*
 * System commands: the kernel log and the uptime.
 */
#include "arch/x86/clock.h"  // clock_ns
#include "console/console.h" // console_printf
#include "console/log.h"     // log_dump
#include "shell/commands.h"  // shell_system_commands

static void command_log(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_dump();
}

static void command_uptime(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf("uptime ms=%llu\n", (unsigned long long)(clock_ns() / 1000000));
}

static const struct shell_command commands[] = {
    { "log", "", "the kernel log with timestamps", 0, 0, command_log },
    { "uptime", "", "milliseconds since efi_main", 0, 0, command_uptime },
};

SHELL_FAMILY(shell_system_commands, commands);
