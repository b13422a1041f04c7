/*
 * `blk`: the virtio-blk disks, and reads, writes, flushes and a benchmark
 * on them, over the block API of virtio/virtio_blk.h.
 */
#include "arch/x86/clock.h"    // clock_ns
#include "console/console.h"   // console_printf
#include "lib/crc32.h"         // crc32_update
#include "lib/error.h"         // ERROR_*, error_text
#include "lib/string.h"        // memset, strcmp
#include "mm/page_alloc.h"     // page_alloc
#include "shell/commands.h"    // shell_blk_commands
#include "virtio/virtio_blk.h" // blk_*

#define BENCH_BUFFER_BYTES (1u << 20)

static struct blk_disk *disk_argument(const char *name)
{
    struct blk_disk *disk = blk_disk_find(name);

    if (!disk)
        shell_error("blk: no disk '%s' (see blk)", name);
    return disk;
}

static void report_failure(const char *what, struct blk_disk *disk, int error, uint64_t sector)
{
    struct blk_info info;

    blk_disk_info(disk, &info);
    shell_error("blk: %s %s: %s sector=%llu", what, info.name, error_text(error),
                (unsigned long long)sector);
}

#define DUMP_MAX_SECTORS 8
#define WRITE_MAX_SECTORS 2048 /* 1 MiB */

static void command_read(int argc, char **argv)
{
    struct blk_disk *disk = disk_argument(argv[2]);
    uint64_t lba, count = 1, failed;
    struct blk_info info;

    if (!disk || shell_parse_number(argv[3], "blk", &lba) ||
        (argc > 4 && shell_parse_number(argv[4], "blk", &count)))
        return;
    if (count == 0 || count > WRITE_MAX_SECTORS) {
        shell_error("blk: count must be 1 to %u sectors", WRITE_MAX_SECTORS);
        return;
    }
    uint64_t buffer = page_alloc(8, PAGE_TAG_KERNEL);
    if (!buffer) {
        shell_error("blk: no memory for the buffer");
        return;
    }
    const uint8_t *data = (const uint8_t *)(uintptr_t)buffer;
    int result = blk_read(disk, lba, (void *)(uintptr_t)buffer, count * BLK_SECTOR_SIZE, &failed);
    if (result != 0) {
        report_failure("read", disk, result, failed);
    } else {
        uint64_t dump = count < DUMP_MAX_SECTORS ? count : DUMP_MAX_SECTORS;
        for (uint64_t offset = 0; offset < dump * BLK_SECTOR_SIZE; offset += 16) {
            console_printf("%08llx ", (unsigned long long)(lba * BLK_SECTOR_SIZE + offset));
            for (unsigned i = 0; i < 16; i++)
                console_printf(" %02x", data[offset + i]);
            console_printf("\n");
        }
        blk_disk_info(disk, &info);
        console_printf("blkread disk=%s lba=%llu count=%llu crc32=%08x\n", info.name,
                       (unsigned long long)lba, (unsigned long long)count,
                       crc32_update(0, data, count * BLK_SECTOR_SIZE));
    }
    page_free(buffer);
}

static void command_write(int argc, char **argv)
{
    struct blk_disk *disk = disk_argument(argv[2]);
    uint64_t lba, pattern, count = 1, failed;
    struct blk_info info;

    if (!disk || shell_parse_number(argv[3], "blk", &lba) ||
        shell_parse_number(argv[4], "blk", &pattern) ||
        (argc > 5 && shell_parse_number(argv[5], "blk", &count)))
        return;
    if (count == 0 || count > WRITE_MAX_SECTORS || pattern > 0xffffffffu) {
        shell_error("blk: count must be 1 to %u sectors and PATTERN a 32-bit number", WRITE_MAX_SECTORS);
        return;
    }
    uint64_t buffer = page_alloc(8, PAGE_TAG_KERNEL);
    if (!buffer) {
        shell_error("blk: no memory for the buffer");
        return;
    }
    uint32_t *words = (uint32_t *)(uintptr_t)buffer;
    for (uint64_t i = 0; i < count * BLK_SECTOR_SIZE / 4; i++)
        words[i] = (uint32_t)pattern;
    int result = blk_write(disk, lba, words, count * BLK_SECTOR_SIZE, &failed);
    blk_disk_info(disk, &info);
    if (result != 0)
        report_failure("write", disk, result, failed);
    else
        console_printf("blkwrite disk=%s lba=%llu count=%llu crc32=%08x\n", info.name,
                       (unsigned long long)lba, (unsigned long long)count,
                       crc32_update(0, words, count * BLK_SECTOR_SIZE));
    page_free(buffer);
}

static void command_flush(struct blk_disk *disk)
{
    uint64_t failed;
    struct blk_info info;
    int result = blk_flush(disk, &failed);

    blk_disk_info(disk, &info);
    if (result != 0)
        report_failure("flush", disk, result, failed);
    else
        console_printf("blkflush disk=%s\n", info.name);
}

/* Sequential requests of up to 1 MiB from one buffer that repeats, the
 * queue kept full: the disk's speed, not the caller's. */
static int bench_pass(struct blk_disk *disk, uint32_t type, uint64_t buffer, uint64_t bytes,
                      uint64_t *failed)
{
    struct blk_request *in_flight[BLK_MAX_QUEUE_DEPTH];
    struct blk_request_limits limits;
    struct blk_request_builder builder;
    struct blk_info info;
    unsigned head = 0, count = 0;
    uint64_t sector = 0;
    int result = 0;

    blk_disk_info(disk, &info);
    blk_disk_limits(disk, &limits);
    blk_builder_init(&builder, &limits);
    unsigned depth = info.queue_depth < BLK_MAX_QUEUE_DEPTH ? info.queue_depth : BLK_MAX_QUEUE_DEPTH;
    while (bytes || count) {
        while (bytes && count < depth && result == 0) {
            blk_builder_reset(&builder);
            uint32_t chunk = blk_builder_add(&builder, buffer, bytes < BENCH_BUFFER_BYTES ? (uint32_t)bytes
                                                                                        : BENCH_BUFFER_BYTES);
            struct blk_request *request;
            int submitted = chunk ? blk_submit(disk, type, sector, builder.segments, builder.count, &request)
                                  : ERROR_INVALID;
            if (submitted == ERROR_BUSY && count)
                break;
            if (submitted != 0) {
                result = submitted;
                *failed = sector;
                break;
            }
            in_flight[(head + count++) % BLK_MAX_QUEUE_DEPTH] = request;
            sector += chunk / BLK_SECTOR_SIZE;
            bytes -= chunk;
        }
        if (!count)
            break;
        uint64_t sector_of_error;
        int waited = blk_wait(disk, in_flight[head], &sector_of_error);
        head = (head + 1) % BLK_MAX_QUEUE_DEPTH;
        count--;
        if (waited != 0 && result == 0) {
            result = waited;
            *failed = sector_of_error;
        }
        if (result != 0)
            bytes = 0;
    }
    return result;
}

static void command_bench(int argc, char **argv)
{
    struct blk_disk *disk = disk_argument(argv[2]);
    uint64_t mib, failed = 0;
    struct blk_info info;

    (void)argc;
    if (!disk || shell_parse_number(argv[3], "blk", &mib))
        return;
    blk_disk_info(disk, &info);
    if (mib == 0 || mib * 2048 > info.sectors) {
        shell_error("blk: bench size must be 1 MiB up to the disk's size");
        return;
    }
    uint64_t buffer = page_alloc(8, PAGE_TAG_KERNEL);
    if (!buffer) {
        shell_error("blk: no memory for the buffer");
        return;
    }
    memset((void *)(uintptr_t)buffer, 0xa5, BENCH_BUFFER_BYTES);
    uint64_t start = clock_ns();
    int result = bench_pass(disk, BLK_TYPE_OUT, buffer, mib << 20, &failed);
    if (result == 0 && info.has_flush)
        result = blk_flush(disk, &failed);
    uint64_t write_ns = clock_ns() - start;
    if (result == 0) {
        start = clock_ns();
        result = bench_pass(disk, BLK_TYPE_IN, buffer, mib << 20, &failed);
    }
    uint64_t read_ns = clock_ns() - start;
    page_free(buffer);
    if (result != 0) {
        report_failure("bench", disk, result, failed);
        return;
    }
    console_printf("blkbench disk=%s mib=%llu write_mibps=%llu read_mibps=%llu write_ms=%llu read_ms=%llu\n",
                   info.name, (unsigned long long)mib,
                   (unsigned long long)(mib * 1000000000ull / (write_ns ? write_ns : 1)),
                   (unsigned long long)(mib * 1000000000ull / (read_ns ? read_ns : 1)),
                   (unsigned long long)(write_ns / 1000000), (unsigned long long)(read_ns / 1000000));
}

static void command_blk(int argc, char **argv)
{
    if (argc == 1) {
        for (unsigned i = 0; i < blk_disk_count(); i++) {
            struct blk_disk *disk = blk_disk_get(i);
            struct blk_info d;
            if (!disk)
                continue; /* a free entry (its disk was removed) */
            blk_disk_info(disk, &d);
            console_printf("blk disk=%s index=%u serial=%s sectors=%llu mib=%llu block_size=%u "
                           "ro=%d flush=%d max_segments=%u max_segment_bytes=%u depth=%u "
                           "pci=%02x:%02x.%x reads=%llu writes=%llu flushes=%llu errors=%llu%s\n",
                           d.name, i, d.serial[0] ? d.serial : "-", (unsigned long long)d.sectors,
                           (unsigned long long)(d.sectors / 2048), d.block_size, d.read_only,
                           d.has_flush, d.max_segments, d.max_segment_bytes, d.queue_depth,
                           d.pci_bus, d.pci_device, d.pci_function, (unsigned long long)d.stats.reads,
                           (unsigned long long)d.stats.writes, (unsigned long long)d.stats.flushes,
                           (unsigned long long)d.stats.errors, d.frozen ? " frozen=1" : "");
        }
        return;
    }
    if (strcmp(argv[1], "read") == 0 && argc >= 4 && argc <= 5)
        command_read(argc, argv);
    else if (strcmp(argv[1], "write") == 0 && argc >= 5 && argc <= 6)
        command_write(argc, argv);
    else if (strcmp(argv[1], "flush") == 0 && argc == 3) {
        struct blk_disk *disk = disk_argument(argv[2]);
        if (disk)
            command_flush(disk);
    } else if (strcmp(argv[1], "bench") == 0 && argc == 4)
        command_bench(argc, argv);
    else
        shell_error("usage: blk | blk read DISK LBA [COUNT] | blk write DISK LBA PATTERN [COUNT] | "
                    "blk flush DISK | blk bench DISK MIB");
}

static const struct shell_command commands[] = {
    { "blk", "[read|write|flush|bench] ...", "virtio-blk disks; read, write, flush, benchmark",
      0, 5, command_blk },
};

SHELL_FAMILY(shell_blk_commands, commands);
