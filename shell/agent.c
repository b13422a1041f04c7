/*
 * `agent`: the guest agent's port and counters (agent/agent.h).
 */
#include "agent/agent.h"     // agent_get_info
#include "console/console.h" // console_printf
#include "shell/commands.h"  // shell_agent_commands

static void command_agent(int argc, char **argv)
{
    struct agent_info info;

    (void)argc;
    (void)argv;
    agent_get_info(&info);
    console_printf("agent port=%s commands=%llu errors=%llu bytes_in=%llu bytes_out=%llu "
                   "dropped_bytes=%llu\n",
                   agent_port_state_name(info.port), (unsigned long long)info.commands,
                   (unsigned long long)info.errors, (unsigned long long)info.bytes_in,
                   (unsigned long long)info.bytes_out, (unsigned long long)info.dropped_bytes);
}

static const struct shell_command commands[] = {
    { "agent", "", "the guest agent: its port (org.qemu.guest_agent.0) and counters", 0, 0,
      command_agent },
};

SHELL_FAMILY(shell_agent_commands, commands);
