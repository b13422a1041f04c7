/*
 * virtio-balloon glue: queues, configuration, interrupts and the console
 * around the state machine of balloon.c. Interrupt handlers only schedule
 * the driver's work item; all allocator and ring work happens there, in
 * the idle loop, never inside interrupted code.
 */
#include "virtio/virtio_balloon.h"

#include "arch/x86/clock.h" // clock_ns
#include "arch/x86/cpu.h"   // cpu_relax
#include "console/log.h"    // klog
#include "kernel/options.h" // options_number
#include "kernel/work.h"    // work_*
#include "lib/error.h"      // ERROR_*
#include "mm/page.h"        // PAGE_SIZE
#include "mm/page_alloc.h"  // page_alloc, page_free, stats
#include "virtio/balloon.h" // balloon_*
#include "virtio/virtio.h"  // virtio_*
#include "virtio/virtio_balloon_hint.h" // balloon_hint_*, struct virtio_balloon_config

/* feature bits (5.5.3) */
#define BALLOON_F_MUST_TELL_HOST 0
#define BALLOON_F_STATS_VQ 1
#define BALLOON_F_DEFLATE_ON_OOM 2
#define BALLOON_F_FREE_PAGE_HINT 3
#define BALLOON_F_PAGE_POISON 4
#define BALLOON_F_REPORTING 5

#define QUEUE_INFLATE 0
#define QUEUE_DEFLATE 1
#define QUEUE_STATS 2
#define REPORT_ORDER 9       /* 2 MiB blocks and larger */
#define REPORT_PERIOD_TICKS 200 /* 2 s, as Linux waits before reporting */
#define FREEZE_TIMEOUT_MS 10000
#define BALLOON_TAKE_ORDER 10 /* 4 MiB: one full request */
#define WORK_REQUESTS 16      /* requests per run of the work item */
#define HINT_WORDS_OFFSET 2048 /* in the stats page: the hint commands' words */

static struct {
    struct virtio_device *device;
    struct balloon core;
    uint64_t batch_memory;
    struct balloon_stat *stats;   /* in a page of their own, shared with the device */
    uint64_t stats_page;
    uint64_t reserve_pages;
    int stats_queue, reporting_queue; /* queue indexes, -1 when absent */
    int stats_posted;
    volatile int config_changed;
    struct work work;
    struct balloon_report reports[BALLOON_REPORTS];
    uint64_t reported_pages, report_requests, stats_updates;
    uint64_t freeze_timeout_ms; /* boot option balloon_freeze_timeout_ms (test only) */
    uint64_t hold_reports;      /* boot option balloon_report_hold (test only): leave
                                 * reports in flight until the next freeze */
    int frozen;
} balloon;

static const struct virtio_feature_name balloon_feature_names[] = {
    { BALLOON_F_MUST_TELL_HOST, "must_tell_host" }, { BALLOON_F_STATS_VQ, "stats_vq" },
    { BALLOON_F_DEFLATE_ON_OOM, "deflate_on_oom" }, { BALLOON_F_FREE_PAGE_HINT, "free_page_hint" },
    { BALLOON_F_PAGE_POISON, "page_poison" }, { BALLOON_F_REPORTING, "reporting" },
    { 0, 0 },
};

/* ---- the state machine's view of the world ---------------------------- */

/* The largest block that fits `wanted` and leaves the reserve, falling
 * back to smaller ones when memory is fragmented. Blocks keep the
 * balloon's own bookkeeping (list chunks, from small free blocks) out of
 * the memory it gives away: QEMU backs guest RAM with transparent huge
 * pages, so one write in a never-used 2 MiB region makes the host clear
 * all of it, and discarding each 4 KiB page of it then costs a real unmap
 * (measured: 600 against 5000 MiB/s; docs/balloon.md). */
static unsigned take_pages(void *context, unsigned wanted, uint32_t *first)
{
    uint64_t address = 0;
    /* the reserve is the kernel's; the device takes 32-bit frame numbers (5.5.6) */
    unsigned count = page_alloc_run(wanted, BALLOON_TAKE_ORDER, balloon.reserve_pages, 0xffffffffu,
                                    PAGE_TAG_BALLOON, &address);

    (void)context;
    *first = (uint32_t)(address / PAGE_SIZE);
    return count;
}

static void give_page(void *context, uint32_t pfn)
{
    (void)context;
    page_free((uint64_t)pfn * PAGE_SIZE);
}

static void give_unreported(uint64_t address)
{
    page_free(address); /* the host may never have seen it: report it again */
}

/* Never through the OOM handler: that deflates the balloon, which could
 * give back pages of the very batch this chunk is for, already bound for
 * the host (with the reserve at 0). */
static void *alloc_chunk(void *context)
{
    uint64_t address = 0;

    (void)context;
    page_alloc_run(1, 0, 0, UINT64_MAX, PAGE_TAG_KERNEL, &address);
    return (void *)(uintptr_t)address;
}

static void free_chunk(void *context, void *chunk)
{
    (void)context;
    page_free((uint64_t)(uintptr_t)chunk);
}

static int send_pfns(void *context, enum balloon_queue queue, const uint32_t *pfns,
                     unsigned count, void *token)
{
    struct vq_buffer buffer = { (uint64_t)(uintptr_t)pfns, count * 4u, 0 };
    struct virtqueue *vq = virtio_queue(balloon.device, queue == BALLOON_INFLATE ? QUEUE_INFLATE : QUEUE_DEFLATE);

    (void)context;
    return vq && vq_add_chain(vq, &buffer, 1, token) == 0 ? 0 : -1;
}

static void kick(void *context, enum balloon_queue queue)
{
    (void)context;
    virtio_notify(balloon.device, queue == BALLOON_INFLATE ? QUEUE_INFLATE : QUEUE_DEFLATE);
}

static void set_actual(void *context, uint32_t pages)
{
    (void)context;
    VIRTIO_WRITE_CONFIG(balloon.device, struct virtio_balloon_config, actual, pages);
}

static void report_shortfall(void *context, uint32_t target, uint32_t reached)
{
    (void)context;
    klog("balloon: target %u pages not reachable: stopped at %u (reserve %llu pages)", target,
         reached, (unsigned long long)balloon.reserve_pages);
}

static const struct balloon_ops ops = {
    take_pages, give_page, alloc_chunk, free_chunk, send_pfns, kick, set_actual, report_shortfall,
};

/* ---- statistics and free page reporting -------------------------------- */

static void post_stats(void)
{
    struct page_alloc_stats stats;
    struct virtqueue *vq = virtio_queue(balloon.device, (unsigned)balloon.stats_queue);

    page_alloc_get_stats(&stats);
    balloon_fill_stats(balloon.stats, stats.free_pages * PAGE_SIZE, stats.total_pages * PAGE_SIZE);
    struct vq_buffer buffer = { balloon.stats_page, sizeof(struct balloon_stat) * BALLOON_STAT_COUNT, 0 };
    if (vq && vq_add_chain(vq, &buffer, 1, &balloon.stats) == 0) {
        balloon.stats_posted = 1;
        balloon.stats_updates++;
        virtio_notify(balloon.device, (unsigned)balloon.stats_queue);
    }
}

static void report_free_memory(void)
{
    struct virtqueue *vq = virtio_queue(balloon.device, (unsigned)balloon.reporting_queue);
    int sent = 0;

    for (unsigned i = 0; vq && i < BALLOON_REPORTS; i++) {
        struct balloon_report *r = &balloon.reports[i];
        if (r->busy)
            continue;
        r->address = page_take_unreported(REPORT_ORDER, &r->order);
        if (!r->address)
            break;
        /* the host discards the block; it is not handed out meanwhile */
        struct vq_buffer buffer = { r->address, (uint32_t)(PAGE_SIZE << r->order), 1 };
        if (r->order > 18 || vq_add_chain(vq, &buffer, 1, r) != 0) {
            page_free(r->address);
            break;
        }
        r->busy = 1;
        balloon.report_requests++;
        sent++;
    }
    if (sent)
        virtio_notify(balloon.device, (unsigned)balloon.reporting_queue);
}

/* ---- the work item ---------------------------------------------------- */

static void drain_queue(unsigned queue)
{
    struct virtqueue *vq = virtio_queue(balloon.device, queue);
    void *token;
    uint32_t length;

    if ((int)queue == balloon.reporting_queue && balloon.hold_reports)
        return;
    while (vq && vq_get_used(vq, &token, &length) != VQ_USED_NONE) {
        if ((int)queue == balloon.stats_queue) {
            balloon.stats_posted = 0; /* the host wants fresh numbers */
        } else if ((int)queue == balloon.reporting_queue) {
            struct balloon_report *r = token;
            if (r >= balloon.reports && r < balloon.reports + BALLOON_REPORTS && r->busy) {
                page_free_reported(r->address);
                balloon.reported_pages += 1ull << r->order;
                r->busy = 0;
            }
        } else {
            balloon_complete(&balloon.core, token);
        }
    }
}

static void balloon_work(void *context)
{
    (void)context;
    if (balloon.frozen || !balloon.device)
        return;
    if (balloon.config_changed) {
        balloon.config_changed = 0;
        balloon_set_target(&balloon.core,
                           (uint32_t)VIRTIO_READ_CONFIG(balloon.device, struct virtio_balloon_config, num_pages));
        balloon_hint_config(balloon.reserve_pages);
    }
    balloon_hint_drain();
    /* one request at a time, collecting answers between them: under TCG
     * QEMU handles a request while the kick is written, so `actual`
     * moves after the first 4 MiB; a host that answers later still finds
     * up to max_in_flight requests queued. A bounded number per run, then
     * the idle loop reads the console before the work goes on. */
    unsigned sent = 0;
    drain_queue(QUEUE_INFLATE);
    drain_queue(QUEUE_DEFLATE);
    while (!balloon.config_changed && sent < WORK_REQUESTS && balloon_step_once(&balloon.core) > 0)
        if (++sent < WORK_REQUESTS) {
            drain_queue(QUEUE_INFLATE);
            drain_queue(QUEUE_DEFLATE);
        }
    if (sent == WORK_REQUESTS)
        work_schedule(&balloon.work); /* the last answer is collected then */
    if (balloon.stats_queue >= 0) {
        drain_queue((unsigned)balloon.stats_queue);
        if (!balloon.stats_posted)
            post_stats();
    }
    if (balloon.reporting_queue >= 0) {
        drain_queue((unsigned)balloon.reporting_queue);
        report_free_memory();
        work_schedule_after(&balloon.work, REPORT_PERIOD_TICKS);
    }
}

static void queue_interrupt(struct virtio_device *device, unsigned queue)
{
    (void)device;
    (void)queue;
    work_schedule(&balloon.work);
}

static void config_interrupt(struct virtio_device *device)
{
    (void)device;
    balloon.config_changed = 1;
    work_schedule(&balloon.work);
}

/* An allocation failed: a free page hinting round ends first (its blocks
 * are free memory, lent only for the migration), then the balloon
 * deflates when the device allows it. */
static uint64_t balloon_oom(unsigned order)
{
    uint64_t hinted = balloon_hint_reclaim();

    if (hinted) {
        klog("balloon: free page hinting ended early, %llu pages back", (unsigned long long)hinted);
        if (hinted >= (1ull << order))
            return hinted;
    }
    if (!balloon.device || !virtio_has_feature(balloon.device, BALLOON_F_DEFLATE_ON_OOM))
        return hinted;
    uint32_t wanted = (1u << order) > 256 ? 1u << order : 256;
    uint32_t given = balloon_reclaim(&balloon.core, wanted);

    if (given) {
        klog("balloon: gave %u pages back on OOM", given);
        work_schedule(&balloon.work); /* tell the host */
    }
    return hinted + given;
}

/* ---- probe and power management --------------------------------------- */

static int start(struct virtio_device *device)
{
    struct virtio_queue_request requests[5] = {
        { 0, 0, queue_interrupt }, { 0, 0, queue_interrupt }, { 0, 0, queue_interrupt },
        { 0, 0, queue_interrupt }, { 0, 0, queue_interrupt },
    };
    unsigned count = 2;
    int hint_queue = -1;

    /* queues in the order of 5.5.2, each only with its feature */
    balloon.stats_queue = balloon.reporting_queue = -1;
    if (virtio_has_feature(device, BALLOON_F_STATS_VQ))
        balloon.stats_queue = (int)count++;
    if (virtio_has_feature(device, BALLOON_F_FREE_PAGE_HINT))
        hint_queue = (int)count++;
    if (virtio_has_feature(device, BALLOON_F_REPORTING))
        balloon.reporting_queue = (int)count++;
    if (virtio_setup_queues(device, count, requests) != 0)
        return -1;
    for (unsigned i = 0; i < BALLOON_REPORTS; i++)
        balloon.reports[i].busy = 0;
    balloon.stats_posted = 0;
    balloon.frozen = 0;
    balloon_hint_start(device, hint_queue, (uint32_t *)(uintptr_t)(balloon.stats_page + HINT_WORDS_OFFSET));
    virtio_device_ready(device);
    balloon.config_changed = 1; /* read the target the device has now */
    work_schedule(&balloon.work);
    return 0;
}

/* What the driver holds besides the list: given back on a failed probe
 * and on removal, so a balloon that reappears is probed afresh. */
static void release_pages(void)
{
    if (balloon.batch_memory)
        page_free(balloon.batch_memory);
    if (balloon.stats_page)
        page_free(balloon.stats_page);
    balloon.batch_memory = balloon.stats_page = 0;
    balloon.stats = 0;
    balloon.device = 0;
}

static int balloon_probe(struct virtio_device *device)
{
    if (balloon.device) {
        device->error = "only one balloon is driven";
        return -1;
    }
    balloon.batch_memory = page_alloc(3, PAGE_TAG_KERNEL);
    balloon.stats_page = page_alloc(0, PAGE_TAG_KERNEL);
    if (!balloon.batch_memory || !balloon.stats_page) {
        release_pages();
        device->error = "no memory";
        return -1;
    }
    balloon.stats = (struct balloon_stat *)(uintptr_t)balloon.stats_page;
    balloon.device = device;
    balloon_init(&balloon.core, &ops, 0, (uint32_t *)(uintptr_t)balloon.batch_memory,
                 virtio_has_feature(device, BALLOON_F_MUST_TELL_HOST));
    /* measured (docs/benchmarks.md): a full page of frame numbers per
     * request and the most requests in flight is fastest */
    balloon_set_batching(&balloon.core, BALLOON_MAX_BATCH, BALLOON_MAX_IN_FLIGHT);
    /* a new device (first boot, or one that reappeared after resume)
     * was told of no free block: tags from an earlier host mean nothing */
    page_forget_reported();
    if (start(device) != 0) {
        release_pages();
        return -1;
    }
    if (virtio_has_feature(device, BALLOON_F_DEFLATE_ON_OOM) ||
        virtio_has_feature(device, BALLOON_F_FREE_PAGE_HINT))
        page_alloc_set_oom_handler(balloon_oom);
    klog("balloon: reserve %llu pages, batch %u x %u", (unsigned long long)balloon.reserve_pages,
         balloon.core.batch_size, balloon.core.max_in_flight);
    return 0;
}

/* Freeze keeps the list as it is: no deflate before sleep (the seed's
 * plan). It lets requests in flight finish so no page is half given. */
static int balloon_freeze(struct virtio_device *device)
{
    uint64_t deadline = clock_ns() + balloon.freeze_timeout_ms * 1000000;

    balloon.frozen = 1; /* the work item stays out of the way */
    /* a hinting round ends before the image: its blocks are free memory
     * again when the snapshot is taken (docs/balloon.md) */
    balloon_hint_quiesce(deadline);
    while ((balloon_requests_in_flight(&balloon.core) || balloon_reports_busy(balloon.reports)) &&
           clock_ns() < deadline) {
        drain_queue(QUEUE_INFLATE);
        drain_queue(QUEUE_DEFLATE);
        if (balloon.reporting_queue >= 0)
            drain_queue((unsigned)balloon.reporting_queue);
        cpu_relax();
    }
    int timed_out = balloon_requests_in_flight(&balloon.core) || balloon_reports_busy(balloon.reports);
    virtio_delete_queues(device); /* the reset: no answer comes after this */
    balloon_hint_reset();
    balloon.hold_reports = 0;
    if (!timed_out)
        return 0;
    /* what was in flight is settled here, so a thaw finds the counters
     * true and no page leaks */
    klog("balloon: freeze timed out with %u requests and %u reports in flight",
         balloon_requests_in_flight(&balloon.core), balloon_reports_busy(balloon.reports));
    balloon_abandon_in_flight(&balloon.core);
    balloon_reports_settle(balloon.reports, give_unreported);
    return -1;
}

static int restart(struct virtio_device *device)
{
    if (virtio_reinitialize(device) != 0 || start(device) != 0)
        return -1;
    set_actual(0, balloon_actual(&balloon.core));
    return 0;
}

/* Thaw: the same host still holds the pages; the balloon stays inflated. */
static int balloon_thaw(struct virtio_device *device)
{
    if (!balloon.frozen)
        return 0;
    return restart(device);
}

/* Restore: a new host process never saw the pages: they all go back to
 * the allocator, and `actual` starts from 0. */
static int balloon_restore(struct virtio_device *device)
{
    uint32_t discarded = balloon.core.list_pages;

    if (!balloon.frozen)
        return 0; /* only a frozen balloon can wake in a new host */
    balloon_discard_all(&balloon.core);
    klog("balloon: resume discarded %u ballooned pages back to the allocator", discarded);
    /* the new host was told of no free block either: report them again */
    if (balloon.reporting_queue >= 0)
        page_forget_reported();
    return restart(device);
}

/* The device vanished across a resume: its host never had the pages
 * either; they go back to the allocator and the driver goes idle. */
static void balloon_remove(struct virtio_device *device)
{
    uint32_t discarded = balloon.core.list_pages;

    (void)device;
    balloon_discard_all(&balloon.core);
    balloon_hint_reset();
    balloon_hint_start(0, -1, 0);
    balloon.frozen = 1; /* the work item stays out of the way */
    release_pages();
    klog("balloon: device gone, %u ballooned pages back to the allocator", discarded);
}

static const struct virtio_driver balloon_driver = {
    .name = "virtio-balloon",
    .device_type = VIRTIO_TYPE_BALLOON,
    .features = (1ull << BALLOON_F_MUST_TELL_HOST) | (1ull << BALLOON_F_STATS_VQ) |
                (1ull << BALLOON_F_DEFLATE_ON_OOM) | (1ull << BALLOON_F_FREE_PAGE_HINT) |
                (1ull << BALLOON_F_REPORTING),
    .feature_names = balloon_feature_names,
    .probe = balloon_probe,
    .freeze = balloon_freeze,
    .thaw = balloon_thaw,
    .restore = balloon_restore,
    .remove = balloon_remove,
    .config_changed = config_interrupt,
};

/* ---- what the shell shows and sets ------------------------------------ */

int virtio_balloon_get_info(struct virtio_balloon_info *info)
{
    const struct balloon *b = &balloon.core;

    if (!balloon.device)
        return ERROR_NOT_FOUND;
    *info = (struct virtio_balloon_info){
        .target_pages = b->target,
        .actual_pages = balloon_actual(b),
        .list_pages = b->list_pages,
        .inflating = b->inflating,
        .deflating = b->deflating,
        .reserve_pages = balloon.reserve_pages,
        .batch = b->batch_size,
        .in_flight = b->max_in_flight,
        .features = balloon.device->features,
        .feature_names = balloon_feature_names,
        .core = b->stats,
        .reported_pages = balloon.reported_pages,
        .stats_updates = balloon.stats_updates,
    };
    info->hint_state = balloon_hint_state(&info->hint_held_pages, &info->hint);
    return 0;
}

int virtio_balloon_set_reserve(uint64_t pages)
{
    if (!balloon.device)
        return ERROR_NOT_FOUND;
    balloon.reserve_pages = pages;
    work_schedule(&balloon.work);
    return 0;
}

int virtio_balloon_set_batching(unsigned batch, unsigned in_flight)
{
    if (!balloon.device)
        return ERROR_NOT_FOUND;
    return balloon_set_batching(&balloon.core, batch, in_flight) == 0 ? 0 : ERROR_INVALID;
}

void virtio_balloon_register(void)
{
    uint64_t mib = BALLOON_DEFAULT_RESERVE_MIB;

    if (options_number("balloon_reserve", &mib) != 0)
        mib = BALLOON_DEFAULT_RESERVE_MIB;
    if (options_number("balloon_freeze_timeout_ms", &balloon.freeze_timeout_ms) != 0)
        balloon.freeze_timeout_ms = FREEZE_TIMEOUT_MS;
    options_number("balloon_report_hold", &balloon.hold_reports); /* else 0 */
    balloon.reserve_pages = mib * 256;
    balloon.work.run = balloon_work;
    work_register(&balloon.work);
    virtio_register_driver(&balloon_driver);
}
