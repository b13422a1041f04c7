/*
 * The helpers every command shares (see shell/command.h).
 */
#include "shell/command.h"

#include <stdarg.h> // va_list

#include "console/console.h" // console_puts, console_vprintf
#include "lib/parse.h"       // parse_u64

static const struct boot_handoff *boot;

void shell_error(const char *fmt, ...)
{
    va_list args;

    console_puts("error: ");
    va_start(args, fmt);
    console_vprintf(fmt, args);
    va_end(args);
    console_puts("\n");
}

int shell_parse_number(const char *text, const char *command, uint64_t *value)
{
    if (parse_u64(text, value) != 0) {
        shell_error("%s: '%s' is not a number", command, text);
        return -1;
    }
    return 0;
}

const struct boot_handoff *shell_boot_handoff(void)
{
    return boot;
}

void shell_set_boot_handoff(const struct boot_handoff *handoff)
{
    boot = handoff;
}
