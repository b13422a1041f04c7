/*
 * The shell: reads lines through the line editor and runs the commands of
 * every family (shell/commands.h). Every result a script parses is one
 * `name key=value ...` line; every failure is one `error: ...` line.
 * Nothing typed here can crash the kernel except the documented test-only
 * `crash` command.
 */
#include "shell/shell.h"

#include "arch/x86/cpu.h"    // interrupts_*, cpu_idle_with_interrupts
#include "arch/x86/uart.h"   // uart_getc
#include "console/console.h" // console_printf
#include "kernel/work.h"     // work_run_pending
#include "lib/line_edit.h"   // line_edit_feed
#include "lib/parse.h"       // parse_words, parse_u64
#include "lib/string.h"      // strcmp
#include "shell/commands.h"  // the families

#define MAX_WORDS 8
#define PROMPT "torpor> "

static void command_help(int argc, char **argv);

static const struct shell_command shell_own_commands[] = {
    { "help", "", "list the commands", 0, 0, command_help },
};
static SHELL_FAMILY(shell_own_family, shell_own_commands);

/* `help` lists them in this order */
static const struct shell_command_family *const families[] = {
    &shell_own_family,     &shell_system_commands, &shell_memory_commands,
    &shell_power_commands, &shell_debug_commands,  &shell_pci_commands,
    &shell_blk_commands,   &shell_balloon_commands, &shell_virtio_commands,
    &shell_agent_commands,
};

#define FAMILY_COUNT (sizeof(families) / sizeof(families[0]))

static void command_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (unsigned f = 0; f < FAMILY_COUNT; f++)
        for (unsigned i = 0; i < families[f]->count; i++) {
            const struct shell_command *c = &families[f]->commands[i];
            console_printf("  %-8s %-20s %s\n", c->name, c->usage, c->help);
        }
}

static void run_line(char *line)
{
    char *words[MAX_WORDS];
    int count = parse_words(line, words, MAX_WORDS);

    if (count == 0)
        return;
    if (count < 0) {
        shell_error("too many words (at most %d)", MAX_WORDS);
        return;
    }
    for (unsigned f = 0; f < FAMILY_COUNT; f++)
        for (unsigned i = 0; i < families[f]->count; i++) {
            const struct shell_command *command = &families[f]->commands[i];
            if (strcmp(words[0], command->name) != 0)
                continue;
            int args = count - 1;
            if (args < command->min_args || args > command->max_args) {
                shell_error("usage: %s %s", command->name, command->usage);
                return;
            }
            command->run(count, words);
            return;
        }
    shell_error("unknown command '%s' (try help)", words[0]);
}

void shell_run(const struct boot_handoff *handoff)
{
    struct line_editor editor;
    char echo[8];

    shell_set_boot_handoff(handoff);
    line_edit_reset(&editor);
    editor.last_was_cr = 0;
    console_puts(PROMPT);
    for (;;) {
        char c;
        uint64_t printed = console_bytes_sent();
        work_run_pending(); /* what interrupt handlers deferred */
        if (console_bytes_sent() != printed) {
            /* work printed a log line over the prompt: draw it again */
            console_puts(PROMPT);
            console_write(editor.line, editor.length);
        }
        interrupts_disable();
        if (!uart_getc(&c)) {
            if (!work_any_pending())
                cpu_idle_with_interrupts(); /* sti; hlt: no lost wake-up */
            else
                interrupts_enable();
            continue;
        }
        interrupts_enable();
        enum line_edit_event event = line_edit_feed(&editor, c, echo);
        console_puts(echo);
        if (event == LINE_EDIT_DONE)
            run_line(editor.line);
        if (event != LINE_EDIT_NONE) {
            line_edit_reset(&editor);
            console_puts(PROMPT);
        }
    }
}
