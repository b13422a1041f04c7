/*
 * The serial console shell: prompt, line editing, and the commands
 * documented in docs/console.md.
 */
#ifndef SHELL_SHELL_H
#define SHELL_SHELL_H

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

/* Subsystems add their commands at boot; the table must stay valid. */
void shell_register(const struct shell_command *commands, unsigned count);

/* Prints one `error: ...` line, the only output of a failed command. */
void shell_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a decimal or 0x number argument; prints an error naming the
 * command and returns -1 when it is not one. */
int shell_parse_number(const char *text, const char *command, uint64_t *value);

/* Prints the prompt and serves commands forever; the CPU halts between
 * keystrokes. */
__attribute__((noreturn)) void shell_run(const struct boot_handoff *handoff);

#endif
