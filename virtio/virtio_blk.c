/*
 * virtio-blk driver (virtio 1.2, 5.2): disks by name, requests that point
 * straight at physical pages (no bounce copy), completed by interrupt.
 * Headers and status bytes live in one page of request slots per disk;
 * data segments are whatever physical memory the caller names. Requests
 * are checked and chained by blk_request.c, which the polled hibernation
 * path (blk_writer.c) shares; the synchronous transfers over blk_submit
 * and blk_wait are in blk_transfer.c.
 */
#include "virtio/virtio_blk.h"

#include <stddef.h> // offsetof

#include "arch/x86/clock.h"    // clock_ns
#include "arch/x86/cpu.h"      // interrupts_*, cpu_idle_with_interrupts
#include "console/log.h"       // klog
#include "lib/error.h"         // ERROR_*
#include "lib/parse.h"         // parse_u64
#include "lib/string.h"        // memset, strcmp
#include "mm/page.h"           // PAGE_SIZE
#include "mm/page_alloc.h"     // page_alloc
#include "virtio/blk_config.h" // blk_config_check, BLK_F_*
#include "virtio/virtio.h"     // virtio_*

#define MAX_DISKS 8
#define MAX_SLOTS BLK_MAX_QUEUE_DEPTH
#define REQUEST_TIMEOUT_NS (30ull * 1000000000)

struct blk_request {
    struct blk_request_header header; /* device-readable */
    uint8_t status;                   /* device-writable */
    uint8_t in_use;
    volatile uint8_t done;
    uint8_t bad_length;
    uint32_t type;
    uint64_t sector;
};

struct blk_disk {
    int in_use;                /* a table entry, free again once removed */
    struct virtio_device *device;
    char name[BLK_ID_BYTES + 1];
    char serial[BLK_ID_BYTES + 1];
    struct blk_request_limits limits;
    uint32_t block_size;
    int frozen;
    unsigned slot_count;
    struct blk_request *slots; /* one page, shared with the device */
    uint8_t *id_buffer;        /* in the same page */
    struct blk_stats stats;
};

_Static_assert(MAX_SLOTS * sizeof(struct blk_request) + BLK_ID_BYTES <= PAGE_SIZE,
               "request slots and the id buffer share one page");

static struct blk_disk disks[MAX_DISKS];
static unsigned disk_count; /* entries ever used: the table's high-water mark */

static const struct virtio_feature_name blk_feature_names[] = {
    { BLK_F_SIZE_MAX, "size_max" }, { BLK_F_SEG_MAX, "seg_max" },
    { BLK_F_GEOMETRY, "geometry" }, { BLK_F_RO, "ro" }, { BLK_F_BLK_SIZE, "blk_size" },
    { BLK_F_FLUSH, "flush" }, { BLK_F_TOPOLOGY, "topology" }, { BLK_F_CONFIG_WCE, "config_wce" },
    { BLK_F_MQ, "mq" }, { BLK_F_DISCARD, "discard" }, { BLK_F_WRITE_ZEROES, "write_zeroes" },
    { 0, 0 },
};

unsigned blk_disk_count(void)
{
    return disk_count;
}

struct blk_disk *blk_disk_get(unsigned index)
{
    return index < disk_count && disks[index].in_use ? &disks[index] : 0;
}

struct blk_disk *blk_disk_find(const char *name)
{
    uint64_t index;

    for (unsigned i = 0; i < disk_count; i++)
        if (disks[i].in_use && strcmp(disks[i].name, name) == 0)
            return &disks[i];
    if (parse_u64(name, &index) == 0)
        return blk_disk_get(index < disk_count ? (unsigned)index : MAX_DISKS);
    return 0;
}

void blk_disk_info(const struct blk_disk *disk, struct blk_info *info)
{
    const struct virtio_device *d = disk->device;

    *info = (struct blk_info){
        .name = disk->name,
        .serial = disk->serial,
        .index = (unsigned)(disk - disks),
        .sectors = disk->limits.sectors,
        .block_size = disk->block_size,
        .max_segments = disk->limits.max_segments,
        .max_segment_bytes = disk->limits.max_segment_bytes,
        .read_only = disk->limits.read_only,
        .has_flush = disk->limits.has_flush,
        .frozen = disk->frozen,
        .queue_depth = disk->slot_count,
        .pci_bus = d->pci_bus,
        .pci_device = d->pci_device,
        .pci_function = d->pci_function,
        .stats = disk->stats,
    };
}

void blk_disk_add_stats(struct blk_disk *disk, const struct blk_stats *more)
{
    disk->stats.reads += more->reads;
    disk->stats.writes += more->writes;
    disk->stats.flushes += more->flushes;
    disk->stats.errors += more->errors;
}

void blk_disk_limits(const struct blk_disk *disk, struct blk_request_limits *limits)
{
    *limits = disk->limits;
}

unsigned blk_disk_queue_depth(const struct blk_disk *disk)
{
    return disk->slot_count;
}

struct virtio_device *blk_disk_device(struct blk_disk *disk)
{
    return disk->device;
}

/* ---- requests ---------------------------------------------------------- */

static void queue_interrupt(struct virtio_device *device, unsigned queue)
{
    struct virtqueue *vq = virtio_queue(device, queue);
    void *token;
    uint32_t length;
    enum vq_used_status status;

    if (!vq)
        return;
    while ((status = vq_get_used(vq, &token, &length)) != VQ_USED_NONE) {
        struct blk_request *request = token;
        request->bad_length = status == VQ_USED_BAD_LENGTH;
        request->done = 1;
    }
}

int blk_submit(struct blk_disk *disk, uint32_t type, uint64_t sector,
               const struct blk_segment *segments, unsigned count, struct blk_request **out)
{
    struct vq_buffer buffers[BLK_MAX_SEGMENTS + 2];

    if (disk->frozen)
        return ERROR_FROZEN;
    int checked = blk_request_check(&disk->limits, type, sector, segments, count);
    if (checked)
        return checked;
    struct blk_request *request = 0;
    for (unsigned i = 0; i < disk->slot_count && !request; i++)
        if (!disk->slots[i].in_use)
            request = &disk->slots[i];
    if (!request)
        return ERROR_BUSY;

    *request = (struct blk_request){ .in_use = 1, .type = type, .sector = sector };
    unsigned chained = blk_request_chain(&request->header, &request->status, type, sector,
                                         segments, count, buffers);
    uint64_t flags = interrupts_save();
    struct virtqueue *vq = virtio_queue(disk->device, 0);
    int added = vq ? vq_add_chain(vq, buffers, chained, request) : ERROR_BUSY;
    if (added == 0)
        virtio_notify(disk->device, 0);
    interrupts_restore(flags);
    if (added != 0) {
        request->in_use = 0;
        return added; /* ERROR_BUSY, ERROR_DEVICE (broken ring) or ERROR_INVALID */
    }
    *out = request;
    return 0;
}

int blk_wait(struct blk_disk *disk, struct blk_request *request, uint64_t *failed_sector)
{
    uint64_t deadline = clock_ns() + REQUEST_TIMEOUT_NS;
    int result;

    interrupts_disable();
    while (!request->done) {
        struct virtqueue *vq = virtio_queue(disk->device, 0);
        if (!vq || vq_is_broken(vq) || clock_ns() > deadline)
            break;
        cpu_idle_with_interrupts(); /* the completion interrupt or a tick wakes us */
        interrupts_disable();
    }
    interrupts_enable();

    if (!request->done) {
        /* the slot stays taken: the device may still write into it */
        result = ERROR_DEVICE;
    } else {
        result = blk_request_result(request->status, request->bad_length);
        request->in_use = 0;
    }
    if (request->type == BLK_TYPE_IN)
        disk->stats.reads++;
    else if (request->type == BLK_TYPE_OUT)
        disk->stats.writes++;
    else if (request->type == BLK_TYPE_FLUSH)
        disk->stats.flushes++;
    if (result != 0) {
        disk->stats.errors++;
        if (failed_sector)
            *failed_sector = request->sector;
    }
    return result;
}

/* ---- probe and power management --------------------------------------- */

static int start_queue(struct blk_disk *disk)
{
    struct virtio_queue_request request = {
        .size = 256,
        .indirect_max = BLK_MAX_SEGMENTS + 2,
        .callback = queue_interrupt,
    };

    if (virtio_setup_queues(disk->device, 1, &request) != 0)
        return -1;
    struct virtqueue *vq = virtio_queue(disk->device, 0);
    unsigned ring_limit = vq->config.indirect_max > 1 ? vq->config.size : vq->config.size / 2;
    disk->slot_count = ring_limit < MAX_SLOTS ? ring_limit : MAX_SLOTS;
    /* without indirect tables a chain takes a descriptor per segment */
    if (vq->config.indirect_max <= 1 && disk->limits.max_segments + 2 > vq->config.size)
        disk->limits.max_segments = vq->config.size - 2;
    for (unsigned i = 0; i < MAX_SLOTS; i++)
        disk->slots[i].in_use = 0;
    vq_enable_interrupts(vq);
    virtio_device_ready(disk->device);
    disk->frozen = 0;
    return 0;
}

/* Reads and range-checks the configuration (5.2.4); -1 for a device whose
 * values cannot be true. */
static int read_config(struct blk_disk *disk)
{
    struct virtio_device *device = disk->device;
    struct blk_config_report report = { .features = device->features };
    struct blk_limits limits;

    report.capacity = VIRTIO_READ_CONFIG(device, struct virtio_blk_config, capacity);
    if (virtio_has_feature(device, BLK_F_BLK_SIZE))
        report.blk_size = (uint32_t)VIRTIO_READ_CONFIG(device, struct virtio_blk_config, blk_size);
    if (virtio_has_feature(device, BLK_F_SEG_MAX))
        report.seg_max = (uint32_t)VIRTIO_READ_CONFIG(device, struct virtio_blk_config, seg_max);
    if (virtio_has_feature(device, BLK_F_SIZE_MAX))
        report.size_max = (uint32_t)VIRTIO_READ_CONFIG(device, struct virtio_blk_config, size_max);
    const char *error = blk_config_check(&report, &limits);
    if (error) {
        device->error = error;
        return -1;
    }
    if (limits.ignored_block_size)
        klog("blk: ignoring block size %u", report.blk_size);
    disk->block_size = limits.block_size;
    disk->limits = (struct blk_request_limits){
        .sectors = limits.sectors,
        .max_segments = limits.max_segments,
        .max_segment_bytes = limits.max_segment_bytes,
        .max_request_bytes = BLK_MAX_REQUEST_BYTES,
        .read_only = limits.read_only,
        .has_flush = limits.has_flush,
    };
    return 0;
}

static void read_serial(struct blk_disk *disk)
{
    struct blk_segment segment = { (uint64_t)(uintptr_t)disk->id_buffer, BLK_ID_BYTES };
    struct blk_request *request;

    memset(disk->id_buffer, 0, BLK_ID_BYTES);
    disk->serial[0] = 0;
    if (blk_submit(disk, BLK_TYPE_GET_ID, 0, &segment, 1, &request) != 0 ||
        blk_wait(disk, request, 0) != 0)
        return;
    /* up to 20 bytes, NUL-terminated only when shorter (5.2.6) */
    unsigned length = 0;
    while (length < BLK_ID_BYTES && disk->id_buffer[length] >= 0x21 && disk->id_buffer[length] < 0x7f)
        length++;
    memcpy(disk->serial, disk->id_buffer, length);
    disk->serial[length] = 0;
}

static struct blk_disk *free_disk_entry(void)
{
    for (unsigned i = 0; i < MAX_DISKS; i++)
        if (!disks[i].in_use) {
            if (i >= disk_count)
                disk_count = i + 1;
            return &disks[i];
        }
    return 0;
}

static void name_disk(struct blk_disk *disk)
{
    if (disk->serial[0]) {
        string_copy(disk->name, disk->serial, sizeof(disk->name));
        return;
    }
    disk->name[0] = 'v';
    disk->name[1] = 'd';
    disk->name[2] = (char)('a' + (disk - disks));
    disk->name[3] = 0;
}

static int blk_probe(struct virtio_device *device)
{
    struct blk_disk *disk = free_disk_entry();

    if (!disk) {
        device->error = "too many disks";
        return -1;
    }
    memset(disk, 0, sizeof(*disk));
    disk->device = device;
    device->driver_data = disk;
    uint64_t page = page_alloc(0, PAGE_TAG_KERNEL);
    if (!page) {
        device->error = "no memory";
        return -1;
    }
    disk->slots = (struct blk_request *)(uintptr_t)page;
    disk->id_buffer = (uint8_t *)(uintptr_t)(page + MAX_SLOTS * sizeof(struct blk_request));
    if (read_config(disk) != 0 || start_queue(disk) != 0) {
        page_free(page);
        return -1;
    }
    disk->in_use = 1;
    read_serial(disk);
    name_disk(disk);
    klog("blk: %s: %llu sectors%s, %u segments of %u bytes, %u in flight", disk->name,
         (unsigned long long)disk->limits.sectors, disk->limits.read_only ? " read-only" : "",
         disk->limits.max_segments, disk->limits.max_segment_bytes, disk->slot_count);
    return 0;
}

static int blk_freeze(struct virtio_device *device)
{
    struct blk_disk *disk = device->driver_data;
    uint64_t deadline = clock_ns() + REQUEST_TIMEOUT_NS;

    /* requests in flight finish first; nobody submits new ones (frozen) */
    disk->frozen = 1;
    for (;;) {
        int busy = 0;
        for (unsigned i = 0; i < disk->slot_count; i++)
            busy |= disk->slots[i].in_use && !disk->slots[i].done;
        if (!busy || clock_ns() > deadline)
            break;
        cpu_idle_with_interrupts();
    }
    virtio_delete_queues(device);
    return 0;
}

static int blk_thaw(struct virtio_device *device)
{
    struct blk_disk *disk = device->driver_data;

    if (!disk->frozen)
        return 0; /* never frozen: its queue is live, nothing to bring back */
    if (virtio_reinitialize(device) != 0 || start_queue(disk) != 0)
        return -1;
    return 0;
}

/* After a resume the disk in this slot may be another one (disks added,
 * removed or reordered between hibernate and resume): a disk is what its
 * identity says, never where it sits. Everything is read again; any
 * difference makes it a removed disk plus a new one. */
static int blk_restore(struct virtio_device *device)
{
    struct blk_disk *disk = device->driver_data;
    struct blk_disk old = *disk;

    if (!disk->frozen)
        return 0;
    if (virtio_reinitialize(device) != 0 || read_config(disk) != 0)
        return ERROR_GONE; /* not the disk it was: whatever it is, probe it anew */
    if (start_queue(disk) != 0)
        return -1;
    read_serial(disk);
    int same = strcmp(disk->serial, old.serial) == 0 &&
               disk->limits.sectors == old.limits.sectors &&
               disk->limits.read_only == old.limits.read_only &&
               disk->limits.has_flush == old.limits.has_flush &&
               disk->block_size == old.block_size &&
               disk->limits.max_segments == old.limits.max_segments &&
               disk->limits.max_segment_bytes == old.limits.max_segment_bytes;
    if (!same) {
        klog("blk: %s is not in its slot after resume (found serial '%s', %llu sectors)",
             old.name, disk->serial[0] ? disk->serial : "-", (unsigned long long)disk->limits.sectors);
        virtio_delete_queues(device);
        disk->frozen = 1;
        return ERROR_GONE;
    }
    return 0;
}

int blk_disk_restart(struct blk_disk *disk)
{
    /* a reset makes the device forget every request (it writes no more
     * memory); the slots start over with a fresh queue */
    virtio_delete_queues(disk->device);
    disk->frozen = 1;
    return blk_thaw(disk->device);
}

/* The disk vanished across a resume (or another took its slot): what it
 * held goes back to the allocator and its entry is free again. */
static void blk_remove(struct virtio_device *device)
{
    struct blk_disk *disk = device->driver_data;

    if (disk->slots)
        page_free((uint64_t)(uintptr_t)disk->slots);
    memset(disk, 0, sizeof(*disk));
}

static const struct virtio_driver blk_driver = {
    .name = "virtio-blk",
    .device_type = VIRTIO_TYPE_BLOCK,
    .features = (1ull << BLK_F_SIZE_MAX) | (1ull << BLK_F_SEG_MAX) | (1ull << BLK_F_RO) |
                (1ull << BLK_F_BLK_SIZE) | (1ull << BLK_F_FLUSH),
    .feature_names = blk_feature_names,
    .probe = blk_probe,
    .freeze = blk_freeze,
    .thaw = blk_thaw,
    .restore = blk_restore,
    .remove = blk_remove,
};

void virtio_blk_register(void)
{
    virtio_register_driver(&blk_driver);
}
