/*
 * The hibernation writer. The rule that makes writing without a copy
 * possible: from the snapshot on, nothing outside the writer's region (its
 * stack, its queue, the header and the index) is written, interrupts are
 * off, and every request points straight at the RAM page it saves. What
 * is saved: every allocated or kernel page, except the balloon's (the host
 * has them), free blocks being reported, and the writer's region; an
 * all-zero page is only marked in the index.
 */
#include "pm/hibernate.h"

#include "arch/x86/cpu.h"      // interrupts_*
#include "boot/handoff.h"      // PAGE_SIZE
#include "kernel/clock.h"      // clock_ns
#include "kernel/console.h"    // console_printf
#include "kernel/log.h"        // klog
#include "kernel/shell.h"      // shell_register
#include "kernel/symbols.h"    // symbols_image_base
#include "lib/string.h"        // memset
#include "mm/page_alloc.h"     // page_alloc_walk, page_alloc
#include "pm/image.h"          // image_*
#include "pm/power.h"          // power_hibernate
#include "pm/resume.h"         // resume_arrived, resume_build_id
#include "virtio/virtio.h"     // virtio_freeze_all, virtio_thaw_all
#include "virtio/virtio_blk.h" // blk_writer_*

#define WRITER_STACK_BYTES (64 * 1024)
#define INDEX_MARGIN_PAGES 4096 /* pages that may appear between count and snapshot */
#define REQUEST_PAGES 256       /* 1 MiB per request */
#define MAX_SEGMENTS 128

int64_t snapshot_and_call(struct image_cpu_state *state, int (*fn)(void *), void *arg, void *stack_top);

/* The data request being built: runs of neighbouring frames become one
 * segment, up to REQUEST_PAGES pages a request. */
struct data_request {
    struct blk_segment segments[MAX_SEGMENTS];
    unsigned count, pages;
    uint64_t sector;          /* where this request's data goes */
};

struct writer {
    struct image_header *header;
    struct image_index_entry *index;
    uint64_t capacity;          /* index entries the region holds */
    uint64_t count, zero_pages;
    struct blk_writer *blk;
    struct blk_disk *disk;
    const char *reason;         /* why it failed */
    int blk_error;
    uint64_t failed_sector;
    uint64_t started_ns;
    int sealed_header_sent;     /* a valid header may be on the disk */
    struct data_request *request; /* on the writer's stack */
    unsigned max_segments;
};

static int fail(struct writer *w, const char *reason, int blk_error);

/* ---- what is saved ----------------------------------------------------- */

static int saved(enum buddy_state state, uint8_t tag)
{
    if (state == BUDDY_RESERVED)
        return 1;
    return state == BUDDY_ALLOCATED && tag != PAGE_TAG_BALLOON && tag != PAGE_TAG_REPORTING &&
           tag != PAGE_TAG_HIBERNATE;
}

static int count_block(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    (void)pfn;
    if (saved(state, tag))
        *(uint64_t *)context += count;
    return 0;
}

/* The exact number of index entries, after the snapshot (nothing changes
 * any more): page 0 holds nothing and is never mapped, so never saved. */
static int count_saved_pages(void *context, uint64_t pfn, uint64_t count, enum buddy_state state,
                             uint8_t tag)
{
    if (saved(state, tag))
        *(uint64_t *)context += pfn == 0 ? count - 1 : count;
    return 0;
}

static int add_data_page(struct writer *w, uint64_t address);

/* One pass over every saved page: its index entry, and its data into the
 * request being built, so the disk writes while the CPU reads on. Runs
 * after the snapshot and writes only the region. */
static int save_block(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    struct writer *w = context;

    if (!saved(state, tag))
        return 0;
    for (uint64_t i = 0; i < count; i++) {
        if (pfn + i == 0)
            continue; /* page 0 holds nothing and is never mapped */
        if (w->count == w->capacity) {
            fail(w, "index-overflow", 0);
            return -1;
        }
        uint64_t address = (pfn + i) * PAGE_SIZE;
        struct image_index_entry *e = &w->index[w->count++];
        int zero;
        uint64_t checksum = image_page_summary((const void *)(uintptr_t)address, &zero);
        if (zero) {
            e->pfn_and_flags = ((pfn + i) << IMAGE_ENTRY_FLAG_BITS) | IMAGE_ENTRY_ZERO;
            e->checksum = 0;
            w->zero_pages++;
        } else {
            e->pfn_and_flags = (pfn + i) << IMAGE_ENTRY_FLAG_BITS;
            e->checksum = checksum;
            if (add_data_page(w, address) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- writing ----------------------------------------------------------- */

static int fail(struct writer *w, const char *reason, int blk_error)
{
    if (!w->reason) {
        w->reason = reason;
        w->blk_error = blk_error;
    }
    return -1;
}

/* Writes `pages` pages from the physically contiguous `address`. */
static int write_contiguous(struct writer *w, uint64_t sector, uint64_t address, uint64_t pages)
{
    struct blk_segment segments[1];

    while (pages) {
        uint64_t chunk = pages < REQUEST_PAGES ? pages : REQUEST_PAGES;
        segments[0] = (struct blk_segment){ address, (uint32_t)(chunk * PAGE_SIZE) };
        int result = blk_writer_submit(w->blk, BLK_TYPE_OUT, sector, segments, 1);
        if (result != BLK_OK)
            return fail(w, "write-error", result);
        sector += chunk * (PAGE_SIZE / BLK_SECTOR_SIZE);
        address += chunk * PAGE_SIZE;
        pages -= chunk;
    }
    return 0;
}

/* The writes before it first, so a failed write is named as one. */
static int flush(struct writer *w)
{
    int result = blk_writer_wait_all(w->blk, &w->failed_sector);

    if (result != BLK_OK)
        return fail(w, "write-error", result);
    result = blk_writer_submit(w->blk, BLK_TYPE_FLUSH, 0, 0, 0);
    if (result == BLK_OK)
        result = blk_writer_wait_all(w->blk, &w->failed_sector);
    return result == BLK_OK ? 0 : fail(w, "flush-error", result);
}

static int submit_data(struct writer *w)
{
    struct data_request *r = w->request;

    if (!r->count)
        return 0;
    int result = blk_writer_submit(w->blk, BLK_TYPE_OUT, r->sector, r->segments, r->count);
    if (result != BLK_OK)
        return fail(w, "write-error", result);
    r->sector += (uint64_t)r->pages * (PAGE_SIZE / BLK_SECTOR_SIZE);
    r->count = r->pages = 0;
    return 0;
}

/* The data of the non-zero pages goes out in index order. */
static int add_data_page(struct writer *w, uint64_t address)
{
    struct data_request *r = w->request;

    if (r->count && r->segments[r->count - 1].address + r->segments[r->count - 1].length == address &&
        r->pages < REQUEST_PAGES) {
        r->segments[r->count - 1].length += PAGE_SIZE; /* the run goes on */
    } else {
        if (r->count == w->max_segments || r->pages == REQUEST_PAGES)
            if (submit_data(w) != 0)
                return -1;
        r->segments[r->count++] = (struct blk_segment){ address, PAGE_SIZE };
    }
    r->pages++;
    if (r->pages == REQUEST_PAGES)
        return submit_data(w);
    return 0;
}

static void fill_header(struct writer *w)
{
    struct image_header *h = w->header;
    struct page_alloc_stats stats;

    page_alloc_get_stats(&stats);
    h->magic = IMAGE_MAGIC;
    h->version = IMAGE_VERSION;
    h->state = IMAGE_STATE_VALID;
    h->build_id = resume_build_id();
    h->image_base = symbols_image_base();
    h->ram_bytes = stats.total_pages * PAGE_SIZE;
    h->range_count = 0;
    for (unsigned z = 0; page_alloc_zone(z) && h->range_count < IMAGE_MAX_RANGES; z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        h->ranges[h->range_count++] = (struct image_ram_range){ zone->base_pfn * PAGE_SIZE, zone->page_count };
    }
    h->index_checksum = image_checksum(w->index, w->count * sizeof(*w->index));
    struct blk_info info;
    blk_disk_info(w->disk, &info);
    image_set_disk_identity(h, info.serial, info.sectors); /* resumed from this disk only */
}

/* Runs on the writer's stack, interrupts off, after the snapshot. */
static int write_image(void *context)
{
    struct writer *w = context;
    struct image_header *h = w->header;
    struct data_request request = { .count = 0 };
    uint64_t pages = 0;

    /* the layout needs only the number of entries, which a walk of the
     * allocator gives without reading a page */
    page_alloc_walk(count_saved_pages, &pages);
    if (pages > w->capacity)
        return fail(w, "index-overflow", 0);
    struct blk_info info;
    blk_disk_info(w->disk, &info);
    if (image_layout(h, pages, 0) > info.sectors * BLK_SECTOR_SIZE)
        return fail(w, "disk-too-small", 0);

    /* the old header goes first: no valid header may describe new data */
    struct image_cpu_state cpu = h->cpu;
    memset(h, 0, PAGE_SIZE);
    if (write_contiguous(w, 0, (uint64_t)(uintptr_t)h, 1) != 0 || flush(w) != 0)
        return -1;
    h->cpu = cpu;
    image_layout(h, pages, 0);

    w->request = &request;
    w->max_segments = blk_writer_max_segments(w->blk) < MAX_SEGMENTS ? blk_writer_max_segments(w->blk)
                                                                      : MAX_SEGMENTS;
    request.sector = h->data_sector;
    if (page_alloc_walk(save_block, w) != 0 || submit_data(w) != 0)
        return -1;
    if (w->count != pages)
        return fail(w, "index-overflow", 0); /* cannot be: nothing changed since the count */
    image_layout(h, w->count, w->zero_pages);
    if (write_contiguous(w, h->index_sector, (uint64_t)(uintptr_t)w->index,
                         image_index_bytes(w->count) / PAGE_SIZE) != 0 ||
        flush(w) != 0)
        return -1;
    fill_header(w);
    h->written_ns = clock_ns() - w->started_ns;
    image_seal(h);
    w->sealed_header_sent = 1;
    if (write_contiguous(w, 0, (uint64_t)(uintptr_t)h, 1) != 0 || flush(w) != 0)
        return -1;
    return 0;
}

/* A system that runs on must leave no image a later boot would resume:
 * its disks and memory move on from here. */
static const char *invalidate_image(struct writer *w)
{
    memset(w->header, 0, PAGE_SIZE);
    if (blk_write(w->disk, 0, w->header, PAGE_SIZE, 0) != BLK_OK || blk_flush(w->disk, 0) != BLK_OK)
        return " image=invalidate-failed";
    return " image=invalidated";
}

/* ---- the whole path ---------------------------------------------------- */

void hibernate(void)
{
    struct blk_disk *disk = blk_disk_find(HIBERNATE_DISK_SERIAL);
    struct blk_info info;
    uint64_t pages = 0;
    uint64_t started = clock_ns();

    if (!disk) {
        console_printf("hibernate failed reason=no-disk (attach a virtio-blk disk with serial %s)\n",
                       HIBERNATE_DISK_SERIAL);
        return;
    }
    blk_disk_info(disk, &info);
    page_alloc_walk(count_block, &pages);
    uint64_t capacity = pages + INDEX_MARGIN_PAGES;
    struct image_header bound = { 0 };
    uint64_t needed = image_layout(&bound, capacity, 0);
    if (info.read_only || needed > info.sectors * BLK_SECTOR_SIZE) {
        console_printf("hibernate failed reason=%s disk_bytes=%llu needed_bytes=%llu\n",
                       info.read_only ? "disk-read-only" : "disk-too-small",
                       (unsigned long long)(info.sectors * BLK_SECTOR_SIZE),
                       (unsigned long long)needed);
        return;
    }

    /* the region: header, the writer's own state, block writer, stack,
     * index; everything the writer changes after the snapshot is here */
    uint64_t index_bytes = image_index_bytes(capacity);
    uint64_t blk_memory = 2 * PAGE_SIZE;
    uint64_t stack_bottom = blk_memory + BLK_WRITER_MEMORY;
    uint64_t index_offset = stack_bottom + WRITER_STACK_BYTES;
    uint64_t region = page_alloc(page_order_for(index_offset + index_bytes), PAGE_TAG_HIBERNATE);
    if (!region) {
        console_printf("hibernate failed reason=no-memory-for-writer bytes=%llu\n",
                       (unsigned long long)(index_offset + index_bytes));
        return;
    }
    _Static_assert(sizeof(struct writer) <= PAGE_SIZE, "the writer's state fits a page");
    struct writer *w = (struct writer *)(uintptr_t)(region + PAGE_SIZE);
    *w = (struct writer){
        .header = (struct image_header *)(uintptr_t)region,
        .index = (struct image_index_entry *)(uintptr_t)(region + index_offset),
        .capacity = capacity,
        .disk = disk,
        .started_ns = started,
    };
    void *stack_top = (void *)(uintptr_t)(region + index_offset);

    klog("hibernate: saving up to %llu pages to %s", (unsigned long long)pages, HIBERNATE_DISK_SERIAL);
    int64_t result = -1;
    if (virtio_freeze_all() != 0) {
        w->reason = "freeze-failed";
    } else {
        w->blk = blk_writer_prepare(disk, (void *)(uintptr_t)(region + blk_memory));
        if (!w->blk) {
            w->reason = "disk-setup-failed";
        } else {
            /* nothing but the region changes from here until power-off */
            interrupts_disable();
            memset(w->header, 0, PAGE_SIZE);
            uint64_t snapshot_ns = clock_ns();
            result = snapshot_and_call(&w->header->cpu, write_image, w, stack_top);
            if (result > 0) {
                /* the second return: this is the image, resumed by a new
                 * boot; the region's contents (w too) were never saved */
                resume_arrived((const struct resume_handoff *)(uintptr_t)result, snapshot_ns);
                page_free(region);
                return;
            }
            interrupts_enable();
            if (result != 0)
                blk_writer_wait_all(w->blk, &w->failed_sector); /* the failing sector */
            blk_writer_finish(w->blk);
        }
    }
    if (result == 0) {
        console_printf("hibernate ok pages=%llu zero_pages=%llu image_bytes=%llu ms=%llu\n",
                       (unsigned long long)w->count, (unsigned long long)w->zero_pages,
                       (unsigned long long)(w->header->data_sector * BLK_SECTOR_SIZE +
                                            w->header->data_pages * PAGE_SIZE),
                       (unsigned long long)((clock_ns() - started) / 1000000));
        power_hibernate(); /* S4, else S5, else halts: never returns */
    }

    /* thaw: the drivers come back, the balloon list untouched */
    int thawed = virtio_thaw_all();
    const char *image = w->sealed_header_sent ? invalidate_image(w) : "";
    console_printf("hibernate failed reason=%s", w->reason ? w->reason : "unknown");
    if (w->blk_error)
        console_printf(" error=\"%s\" sector=%llu", blk_error_text(w->blk_error),
                       (unsigned long long)w->failed_sector);
    console_printf("%s%s\n", thawed == 0 ? "" : " thaw=incomplete", image);
    page_free(region);
}

static void command_hibernate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hibernate();
}

static const struct shell_command hibernate_commands[] = {
    { "hibernate", "", "write memory to the torpor-swap disk and power off (S4)", 0, 0,
      command_hibernate },
};

void hibernate_init(void)
{
    shell_register(hibernate_commands, sizeof(hibernate_commands) / sizeof(hibernate_commands[0]));
}
