/*
 * Test-only commands: damage a filled page, raise a CPU exception.
 */
#include "console/console.h" // console_printf
#include "lib/string.h"      // strcmp
#include "mm/memtest.h"      // memtest_corrupt
#include "shell/commands.h"  // shell_debug_commands

static void command_corrupt(int argc, char **argv)
{
    uint64_t id, page;

    (void)argc;
    if (shell_parse_number(argv[1], "corrupt", &id) || shell_parse_number(argv[2], "corrupt", &page))
        return;
    int status = memtest_corrupt(id > 0xffffffffu ? 0xffffffffu : (unsigned)id, page);
    if (status) {
        shell_error("corrupt: %s", memtest_error_text(status));
        return;
    }
    console_printf("corrupt id=%llu page=%llu\n", (unsigned long long)id,
                   (unsigned long long)page);
}

static void read_address(uint64_t address)
{
    /* hide the constant from the compiler, which rightly rejects it */
    __asm__ volatile("" : "+r"(address));
    (void)*(volatile uint64_t *)(uintptr_t)address;
}

static void command_crash(int argc, char **argv)
{
    (void)argc;
    if (strcmp(argv[1], "ud") == 0)
        __asm__ volatile("ud2");
    else if (strcmp(argv[1], "pf") == 0)
        read_address(8); /* page 0 is never mapped */
    else if (strcmp(argv[1], "gp") == 0)
        read_address(0x8000000000000000ull); /* non-canonical */
    else
        shell_error("crash: kind must be ud, pf or gp");
}

static const struct shell_command commands[] = {
    { "corrupt", "ID PAGE", "test only: flip a byte in a filled page", 2, 2, command_corrupt },
    { "crash", "ud|pf|gp", "test only: raise a CPU exception", 1, 1, command_crash },
};

SHELL_FAMILY(shell_debug_commands, commands);
