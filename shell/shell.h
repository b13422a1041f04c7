/*
 * The serial console shell: prompt, line editing, and the commands
 * documented in docs/console.md. Commands live in this folder, one file
 * per family (shell/commands.h), over each subsystem's public header; no
 * driver knows the shell.
 */
#ifndef SHELL_SHELL_H
#define SHELL_SHELL_H

struct boot_handoff;

/* Prints the prompt and serves commands forever; the CPU halts between
 * keystrokes. */
__attribute__((noreturn)) void shell_run(const struct boot_handoff *handoff);

#endif
