/*
 * Memory commands: `mem` (totals, zones, the firmware map) and the test
 * regions `fill`, `verify` and `free` (mm/memtest.h).
 */
#include "boot/handoff.h"    // struct boot_handoff, memory_kind_name
#include "console/console.h" // console_printf
#include "lib/string.h"      // strcmp
#include "mm/memtest.h"      // memtest_*
#include "mm/page.h"         // PAGE_SIZE, PAGES_PER_MIB
#include "mm/page_alloc.h"   // page_alloc_get_stats, page_alloc_walk
#include "shell/commands.h"  // shell_memory_commands

#define MAX_FILL_MIB (1ull << 24)

static uint64_t next_default_seed = 1;

static unsigned long long kib(uint64_t pages)
{
    return (unsigned long long)(pages * 4);
}

/* Pages held per owner: `mem` shows the balloon's share this way. */
static int count_tag(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    uint64_t *tags = context;

    (void)pfn;
    if (state == BUDDY_ALLOCATED && tag < PAGE_TAG_COUNT)
        tags[tag] += count;
    return 0;
}

static void command_mem(int argc, char **argv)
{
    const struct boot_handoff *boot = shell_boot_handoff();
    struct page_alloc_stats stats;
    uint64_t tags[PAGE_TAG_COUNT] = { 0 };

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
    page_alloc_walk(count_tag, tags);
    console_printf("mem total_kib=%llu free_kib=%llu used_kib=%llu reserved_kib=%llu "
                   "allocated_kib=%llu balloon_kib=%llu reporting_kib=%llu hinted_kib=%llu zones=%u\n",
                   kib(stats.total_pages), kib(stats.free_pages),
                   kib(stats.total_pages - stats.free_pages), kib(stats.reserved_pages),
                   kib(stats.allocated_pages), kib(tags[PAGE_TAG_BALLOON]),
                   kib(tags[PAGE_TAG_REPORTING]), kib(tags[PAGE_TAG_HINTED]), stats.zone_count);
    for (unsigned z = 0; z < stats.zone_count; z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        console_printf("zone id=%u base=0x%llx kib=%llu free_kib=%llu reserved_kib=%llu "
                       "allocated_kib=%llu\n",
                       z, (unsigned long long)(zone->base_pfn * PAGE_SIZE),
                       kib(zone->page_count), kib(zone->free_pages),
                       kib(zone->reserved_pages), kib(zone->allocated_pages));
    }
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

static const struct shell_command commands[] = {
    { "mem", "[map]", "memory totals and zones; `map`: the firmware memory map", 0, 1, command_mem },
    { "fill", "MIB [SEED]", "allocate MIB MiB and fill it with a pattern from SEED", 1, 2, command_fill },
    { "verify", "", "check every filled region", 0, 0, command_verify },
    { "free", "ID", "free a filled region", 1, 1, command_free },
};

SHELL_FAMILY(shell_memory_commands, commands);
