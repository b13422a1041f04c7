/*
 * The serial console shell: prompt, line editing, and the commands
 * documented in docs/console.md.
 */
#ifndef KERNEL_SHELL_H
#define KERNEL_SHELL_H

struct boot_handoff;

/* Prints the prompt and serves commands forever; the CPU halts between
 * keystrokes. */
__attribute__((noreturn)) void shell_run(const struct boot_handoff *handoff);

#endif
