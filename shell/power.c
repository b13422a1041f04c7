/*
 * Power commands: power off, reboot, hibernate (pm/), and `hash bench`,
 * the speed of the image reader's per-page check.
 */
#include "arch/x86/clock.h"   // clock_ns
#include "console/console.h"  // console_printf
#include "crypto/page_mac.h"   // page_mac_key_*
#include "lib/string.h"       // memset, strcmp
#include "mm/page.h"          // PAGE_SIZE
#include "mm/page_alloc.h"    // page_alloc, page_free
#include "pm/hibernate.h"     // hibernate
#include "pm/image_reader.h"  // image_reader_check_pages
#include "pm/power.h"         // power_off, power_reboot
#include "shell/commands.h"   // shell_power_commands

#define HASH_BLOCK_ORDER 9 /* 2 MiB blocks */
#define HASH_BLOCK_BYTES (PAGE_SIZE << HASH_BLOCK_ORDER)

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

static void command_hibernate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hibernate(); /* prints its own outcome line */
}

/* Frees the chain of blocks command_hash_bench allocated (each block's
 * first word points to the next). */
static void free_blocks(uint64_t first)
{
    while (first) {
        uint64_t next = *(const uint64_t *)(uintptr_t)first;
        page_free(first);
        first = next;
    }
}

/* The reader's per-page work over every page of the chain; returns the ns
 * it took and XORs the sums into *sums. */
static uint64_t time_checks(uint64_t first, struct page_mac_key *mac, uint64_t *sums)
{
    uint64_t start = clock_ns();

    for (uint64_t block = first; block; block = *(const uint64_t *)(uintptr_t)block)
        *sums ^= image_reader_check_pages((const void *)(uintptr_t)block, HASH_BLOCK_BYTES / PAGE_SIZE,
                                          block / PAGE_SIZE, mac);
    return clock_ns() - start;
}

static uint64_t mib_per_second(uint64_t mib, uint64_t ns)
{
    return mib * 1000000000ull / (ns ? ns : 1);
}

/* MIB MiB of distinct RAM, written once before the clock starts (as the
 * reader's pages are, by the disk, before it checks them), then the
 * reader's own per-page check over every page: a plain image's checksum,
 * then an authenticated one's tag (under a key of zeros: the cost is the
 * same under any). The CPU's half of the reader's speed, as `blk bench` is
 * the disk's. */
static void command_hash_bench(const char *argument)
{
    static const uint8_t bench_secret[PAGE_MAC_SECRET_BYTES], bench_nonce[PAGE_MAC_NONCE_BYTES];
    uint64_t mib, first = 0, blocks = 0;

    if (shell_parse_number(argument, "hash", &mib))
        return;
    if (mib == 0 || mib % 2) {
        shell_error("hash: bench size must be a positive even number of MiB");
        return;
    }
    _Static_assert(sizeof(struct page_mac_key) <= 2 * PAGE_SIZE, "the key fits two pages");
    uint64_t key_pages = page_alloc(1, PAGE_TAG_KERNEL);
    if (!key_pages) {
        shell_error("hash: not enough free memory for the MAC key");
        return;
    }
    struct page_mac_key *mac = (struct page_mac_key *)(uintptr_t)key_pages;
    page_mac_key_init(mac, bench_secret, bench_nonce);
    for (; blocks < mib / 2; blocks++) {
        uint64_t block = page_alloc(HASH_BLOCK_ORDER, PAGE_TAG_KERNEL);
        if (!block) {
            free_blocks(first);
            page_free(key_pages);
            shell_error("hash: not enough free memory for %llu MiB", (unsigned long long)mib);
            return;
        }
        memset((void *)(uintptr_t)block, 0xa5, HASH_BLOCK_BYTES);
        *(uint64_t *)(uintptr_t)block = first;
        first = block;
    }
    uint64_t sums = 0;
    uint64_t ns = time_checks(first, 0, &sums);
    uint64_t mac_ns = time_checks(first, mac, &sums);
    free_blocks(first);
    page_free(key_pages);
    console_printf("hashbench mib=%llu mibps=%llu us=%llu mac_mibps=%llu mac_us=%llu sums=%016llx\n",
                   (unsigned long long)mib, (unsigned long long)mib_per_second(mib, ns),
                   (unsigned long long)(ns / 1000), (unsigned long long)mib_per_second(mib, mac_ns),
                   (unsigned long long)(mac_ns / 1000), (unsigned long long)sums);
}

static void command_hash(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "bench") == 0)
        command_hash_bench(argv[2]);
    else
        shell_error("usage: hash bench MIB");
}

static const struct shell_command commands[] = {
    { "poweroff", "", "power off (ACPI S5)", 0, 0, command_poweroff },
    { "reboot", "", "reset the machine", 0, 0, command_reboot },
    { "hibernate", "", "write memory to the torpor-swap disk and power off (S4)", 0, 0,
      command_hibernate },
    { "hash", "bench MIB", "speed of the image reader's page checks (checksum, tag) over MIB MiB", 2, 2,
      command_hash },
};

SHELL_FAMILY(shell_power_commands, commands);
