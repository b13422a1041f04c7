/*
 * Every command family of the shell; shell.c lists them for `help` and
 * looks commands up in this order.
 */
#ifndef SHELL_COMMANDS_H
#define SHELL_COMMANDS_H

#include "shell/command.h" // struct shell_command_family

extern const struct shell_command_family shell_system_commands;  /* system.c */
extern const struct shell_command_family shell_memory_commands;  /* memory.c */
extern const struct shell_command_family shell_power_commands;   /* power.c */
extern const struct shell_command_family shell_debug_commands;   /* debug.c */
extern const struct shell_command_family shell_pci_commands;     /* pci.c */
extern const struct shell_command_family shell_blk_commands;     /* blk.c */
extern const struct shell_command_family shell_balloon_commands; /* balloon.c */
extern const struct shell_command_family shell_virtio_commands;  /* virtio.c */
extern const struct shell_command_family shell_agent_commands;   /* agent.c */

#endif
