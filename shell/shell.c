/*
 * The shell: reads lines through the line editor and runs commands. Every
 * result a script parses is one `name key=value ...` line; every failure is
 * one `error: ...` line. Nothing typed here can crash the kernel except the
 * documented test-only `crash` command.
 */
#include "shell/shell.h"

#include <stdarg.h> // va_list

#include "arch/x86/cpu.h"   // interrupts_*, cpu_idle_with_interrupts
#include "arch/x86/uart.h"  // uart_getc
#include "boot/handoff.h"   // struct boot_handoff, memory_kind_name
#include "mm/page.h"        // PAGE_SIZE, PAGES_PER_MIB
#include "arch/x86/clock.h"   // clock_ns
#include "console/console.h" // console_printf
#include "console/log.h"     // log_dump
#include "kernel/work.h"    // work_run_pending
#include "lib/line_edit.h"  // line_edit_feed
#include "lib/parse.h"      // parse_words, parse_u64
#include "lib/string.h"     // strcmp
#include "mm/memtest.h"     // memtest_*
#include "mm/page_alloc.h"  // page_alloc_get_stats
#include "pm/power.h"       // power_off, power_reboot
#include "virtio/virtio_balloon.h" // virtio_balloon_pages

#define MAX_WORDS 8
#define PROMPT "torpor> "
#define MAX_FILL_MIB (1ull << 24)

#define MAX_COMMAND_TABLES 16

static const struct boot_handoff *boot;
static uint64_t next_default_seed = 1;

void shell_error(const char *fmt, ...)
{
    va_list args;

    console_puts("error: ");
    va_start(args, fmt);
    console_vprintf(fmt, args);
    va_end(args);
    console_puts("\n");
}

static unsigned long long kib(uint64_t pages)
{
    return (unsigned long long)(pages * 4);
}

static void command_mem(int argc, char **argv)
{
    struct page_alloc_stats stats;

    if (argc == 2 && strcmp(argv[1], "map") == 0) {
        for (uint32_t i = 0; i < boot->range_count; i++) {
            const struct memory_range *r = &boot->ranges[i];
            console_printf("range base=0x%llx kib=%llu kind=%s efi_type=%u\n",
                           (unsigned long long)r->base, kib(r->pages),
                           memory_kind_name(r->kind), r->efi_type);
        }
        return;
    }
    if (argc == 2) {
        shell_error("mem: unknown argument '%s' (mem or mem map)", argv[1]);
        return;
    }
    page_alloc_get_stats(&stats);
    console_printf("mem total_kib=%llu free_kib=%llu used_kib=%llu reserved_kib=%llu "
                   "allocated_kib=%llu balloon_kib=%llu zones=%u\n",
                   kib(stats.total_pages), kib(stats.free_pages),
                   kib(stats.total_pages - stats.free_pages), kib(stats.reserved_pages),
                   kib(stats.allocated_pages), kib(virtio_balloon_pages()), stats.zone_count);
    for (unsigned z = 0; z < stats.zone_count; z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        console_printf("zone id=%u base=0x%llx kib=%llu free_kib=%llu reserved_kib=%llu "
                       "allocated_kib=%llu\n",
                       z, (unsigned long long)(zone->base_pfn * PAGE_SIZE),
                       kib(zone->page_count), kib(zone->free_pages),
                       kib(zone->reserved_pages), kib(zone->allocated_pages));
    }
}

int shell_parse_number(const char *text, const char *command, uint64_t *value)
{
    if (parse_u64(text, value) != 0) {
        shell_error("%s: '%s' is not a number", command, text);
        return -1;
    }
    return 0;
}

static void command_fill(int argc, char **argv)
{
    uint64_t mib, seed = next_default_seed;
    struct memtest_fill_result result;

    if (shell_parse_number(argv[1], "fill", &mib) || (argc == 3 && shell_parse_number(argv[2], "fill", &seed)))
        return;
    if (mib == 0 || mib > MAX_FILL_MIB) {
        shell_error("fill: size must be between 1 and %llu MiB", (unsigned long long)MAX_FILL_MIB);
        return;
    }
    int status = memtest_fill(mib * PAGES_PER_MIB, seed, &result);
    if (status) {
        shell_error("fill: %s", memtest_error_text(status));
        return;
    }
    if (argc < 3)
        next_default_seed++;
    console_printf("fill id=%u kib=%llu sum=%016llx\n", result.id, kib(result.pages),
                   (unsigned long long)result.sum);
}

static void command_verify(int argc, char **argv)
{
    struct memtest_verify_result result;

    (void)argc;
    (void)argv;
    memtest_verify(&result);
    if (result.ok)
        console_printf("verify ok regions=%u kib=%llu\n", result.regions, kib(result.pages));
    else
        console_printf("verify FAIL region=%u page=%llu\n", result.failed_region,
                       (unsigned long long)result.failed_page);
}

static void command_free(int argc, char **argv)
{
    uint64_t id, pages;

    (void)argc;
    if (shell_parse_number(argv[1], "free", &id))
        return;
    int status = memtest_free(id > 0xffffffffu ? 0xffffffffu : (unsigned)id, &pages);
    if (status) {
        shell_error("free: %s", memtest_error_text(status));
        return;
    }
    console_printf("free id=%llu kib=%llu\n", (unsigned long long)id, kib(pages));
}

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

static void command_uptime(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf("uptime ms=%llu\n", (unsigned long long)(clock_ns() / 1000000));
}

static void command_log(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_dump();
}

static void command_poweroff(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf("poweroff\n");
    power_off();
}

static void command_reboot(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf("reboot\n");
    power_reboot();
}

static void command_help(int argc, char **argv);

static const struct shell_command builtin_commands[] = {
    { "help", "", "list the commands", 0, 0, command_help },
    { "mem", "[map]", "memory totals and zones; `map`: the firmware memory map", 0, 1, command_mem },
    { "log", "", "the kernel log with timestamps", 0, 0, command_log },
    { "uptime", "", "milliseconds since efi_main", 0, 0, command_uptime },
    { "fill", "MIB [SEED]", "allocate MIB MiB and fill it with a pattern from SEED", 1, 2, command_fill },
    { "verify", "", "check every filled region", 0, 0, command_verify },
    { "free", "ID", "free a filled region", 1, 1, command_free },
    { "poweroff", "", "power off (ACPI S5)", 0, 0, command_poweroff },
    { "reboot", "", "reset the machine", 0, 0, command_reboot },
    { "corrupt", "ID PAGE", "test only: flip a byte in a filled page", 2, 2, command_corrupt },
    { "crash", "ud|pf|gp", "test only: raise a CPU exception", 1, 1, command_crash },
};

/* the shell's own commands come first in `help` */
static struct {
    const struct shell_command *commands;
    unsigned count;
} tables[MAX_COMMAND_TABLES] = {
    { builtin_commands, sizeof(builtin_commands) / sizeof(builtin_commands[0]) },
};
static unsigned table_count = 1;

void shell_register(const struct shell_command *commands, unsigned count)
{
    if (table_count < MAX_COMMAND_TABLES) {
        tables[table_count].commands = commands;
        tables[table_count].count = count;
        table_count++;
    }
}

static void command_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (unsigned t = 0; t < table_count; t++)
        for (unsigned i = 0; i < tables[t].count; i++) {
            const struct shell_command *c = &tables[t].commands[i];
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
    for (unsigned t = 0; t < table_count; t++)
        for (unsigned i = 0; i < tables[t].count; i++) {
            const struct shell_command *command = &tables[t].commands[i];
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

    boot = handoff;
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
