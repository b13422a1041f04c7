/*
 * The hibernation writer's polled virtio-blk path (see
 * virtio/blk_writer.h). It owns a private queue in the caller's memory,
 * chains requests with blk_request.c like the driver, and polls the used
 * ring instead of taking interrupts.
 */
#include "virtio/blk_writer.h"

#include "arch/x86/clock.h"    // clock_ns
#include "arch/x86/cpu.h"      // cpu_relax
#include "lib/error.h"         // ERROR_*
#include "lib/string.h"        // memset
#include "mm/page.h"           // PAGE_SIZE
#include "virtio/virtio.h"     // virtio_*
#include "virtio/virtio_blk.h" // blk_disk_*

#define WRITER_SLOTS 64 /* as many 1 MiB writes in flight as `blk bench` keeps */
#define WRITER_QUEUE_SIZE 256
#define REQUEST_TIMEOUT_NS (30ull * 1000000000)

struct blk_writer {
    struct blk_disk *disk;
    struct virtio_device *device;
    struct virtqueue ring;
    struct blk_request_limits limits;
    struct {
        struct blk_request_header header;
        uint8_t status;
        uint8_t busy;
        uint64_t sector;
    } slots[WRITER_SLOTS];
    int error;
    uint64_t error_sector;
    uint32_t error_type; /* BLK_TYPE_OUT or BLK_TYPE_FLUSH: what failed first */
    struct blk_stats stats; /* the disk's own counters are not touched while the image is written */
};

_Static_assert(sizeof(struct blk_writer) <= PAGE_SIZE, "the writer's state fits a page");

struct blk_writer *blk_writer_prepare(struct blk_disk *disk, void *memory)
{
    struct blk_writer *w = memory;
    struct virtio_device *device = blk_disk_device(disk);
    struct blk_info info;

    blk_disk_info(disk, &info);
    if (!info.frozen || info.read_only)
        return 0;
    memset(w, 0, sizeof(*w));
    w->disk = disk;
    w->device = device;
    blk_disk_limits(disk, &w->limits);
    if (virtio_reinitialize(device) != 0)
        return 0;
    uint16_t size = virtio_queue_max_size(device, 0);
    int packed = virtio_has_feature(device, VIRTIO_F_RING_PACKED);
    if (!virtio_queue_size_fixed(device)) {
        if (size > WRITER_QUEUE_SIZE)
            size = WRITER_QUEUE_SIZE;
        while (!packed && (size & (size - 1)))
            size &= (uint16_t)(size - 1);
    }
    struct vq_config config = {
        .layout = packed ? VQ_PACKED : VQ_SPLIT,
        .size = size,
        .event_idx = virtio_has_feature(device, VIRTIO_RING_F_EVENT_IDX),
        .indirect_max = 0, /* direct chains: no table memory to set aside */
    };
    uint8_t *ring = (uint8_t *)memory + PAGE_SIZE;
    uint8_t *state = ring + ((vq_ring_bytes(&config) + 7) & ~(size_t)7);
    if (size < 4 || PAGE_SIZE + (size_t)(state - ring) + vq_state_bytes(&config) > BLK_WRITER_MEMORY ||
        vq_init(&w->ring, &config, ring, state) != 0 ||
        virtio_attach_private_queue(device, 0, &w->ring) != 0) {
        virtio_reset(device);
        return 0;
    }
    /* a direct chain takes a descriptor per segment, plus header and status */
    if (w->limits.max_segments > size - 2u)
        w->limits.max_segments = size - 2u;
    return w;
}

void blk_writer_limits(const struct blk_writer *w, struct blk_request_limits *limits)
{
    *limits = w->limits;
}

/* Takes back what the device finished; returns how many. */
static unsigned writer_poll(struct blk_writer *w)
{
    void *token;
    uint32_t length;
    unsigned done = 0;
    enum vq_used_status status;

    while ((status = vq_get_used(&w->ring, &token, &length)) != VQ_USED_NONE) {
        unsigned i = (unsigned)(((uint8_t *)token - (uint8_t *)w->slots) / sizeof(w->slots[0]));
        if (i >= WRITER_SLOTS || !w->slots[i].busy)
            continue;
        int result = blk_request_result(w->slots[i].status, status == VQ_USED_BAD_LENGTH);
        if (w->slots[i].header.type == BLK_TYPE_FLUSH)
            w->stats.flushes++;
        else
            w->stats.writes++;
        w->stats.errors += result != 0;
        if (result != 0 && !w->error) {
            w->error = result;
            w->error_sector = w->slots[i].sector;
            w->error_type = w->slots[i].header.type;
        }
        w->slots[i].busy = 0;
        done++;
    }
    return done;
}

/* Polls until something completes, the ring breaks or time runs out. */
static int writer_wait_one(struct blk_writer *w)
{
    uint64_t deadline = clock_ns() + REQUEST_TIMEOUT_NS;

    while (!writer_poll(w)) {
        if (vq_is_broken(&w->ring) || clock_ns() > deadline)
            return ERROR_DEVICE;
        cpu_relax();
    }
    return 0;
}

int blk_writer_submit(struct blk_writer *w, uint32_t type, uint64_t sector,
                      const struct blk_segment *segments, unsigned count)
{
    struct vq_buffer buffers[BLK_MAX_SEGMENTS + 2];

    writer_poll(w); /* a failure found now sends nothing more after it */
    if (w->error)
        return w->error; /* the first failure ends the image */
    int checked = blk_request_check(&w->limits, type, sector, segments, count);
    if (checked)
        return checked;
    unsigned slot = WRITER_SLOTS;
    for (;;) {
        for (unsigned i = 0; i < WRITER_SLOTS && slot == WRITER_SLOTS; i++)
            if (!w->slots[i].busy)
                slot = i;
        if (slot < WRITER_SLOTS)
            break;
        if (writer_wait_one(w) != 0)
            return ERROR_DEVICE;
    }
    w->slots[slot].sector = sector;
    unsigned chained = blk_request_chain(&w->slots[slot].header, &w->slots[slot].status, type,
                                         sector, segments, count, buffers);
    int added;
    /* a full ring is back-pressure: wait for a completion, then retry */
    while ((added = vq_add_chain(&w->ring, buffers, chained, &w->slots[slot])) == ERROR_BUSY) {
        if (writer_wait_one(w) != 0)
            return ERROR_DEVICE;
    }
    if (added != 0)
        return added; /* ERROR_DEVICE (broken ring) or ERROR_INVALID */
    w->slots[slot].busy = 1;
    virtio_private_notify(w->device, 0, &w->ring);
    return w->error;
}

unsigned blk_writer_in_flight(struct blk_writer *w)
{
    unsigned busy = 0;

    writer_poll(w);
    for (unsigned i = 0; i < WRITER_SLOTS; i++)
        busy += w->slots[i].busy;
    return busy;
}

uint32_t blk_writer_failed_type(const struct blk_writer *w)
{
    return w->error_type;
}

int blk_writer_wait_all(struct blk_writer *w, uint64_t *failed_sector)
{
    for (;;) {
        int busy = 0;
        for (unsigned i = 0; i < WRITER_SLOTS; i++)
            busy |= w->slots[i].busy;
        if (!busy)
            break;
        if (writer_wait_one(w) != 0 && !w->error) {
            w->error = ERROR_DEVICE;
            w->error_sector = 0;
        }
        if (w->error == ERROR_DEVICE)
            break;
    }
    if (w->error && failed_sector)
        *failed_sector = w->error_sector;
    return w->error;
}

void blk_writer_finish(struct blk_writer *w)
{
    virtio_reset(w->device);
    blk_disk_add_stats(w->disk, &w->stats); /* the image was not written: memory may change again */
}
