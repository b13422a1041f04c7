/*
 * What a command file of the shell needs: the command table type and the
 * helpers every command shares (errors, number arguments).
 */
#ifndef SHELL_COMMAND_H
#define SHELL_COMMAND_H

#include <stdint.h>

struct boot_handoff;

/* A console command. argv[0] is the command's name; the shell checks the
 * argument count against min_args/max_args before calling run. */
struct shell_command {
    const char *name;
    const char *usage;
    const char *help;
    int min_args, max_args; /* not counting the command itself */
    void (*run)(int argc, char **argv);
};

/* The commands of one file, in the order `help` lists them. */
struct shell_command_family {
    const struct shell_command *commands;
    unsigned count;
};

#define SHELL_FAMILY(family, table) \
    const struct shell_command_family family = { table, sizeof(table) / sizeof(table[0]) }

/* Prints one `error: ...` line, the only output of a failed command. */
void shell_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a decimal or 0x number argument; prints an error naming the
 * command and returns -1 when it is not one. */
int shell_parse_number(const char *text, const char *command, uint64_t *value);

/* The firmware's facts, for `mem map` (set once by shell_run). */
const struct boot_handoff *shell_boot_handoff(void);
void shell_set_boot_handoff(const struct boot_handoff *handoff);

#endif
