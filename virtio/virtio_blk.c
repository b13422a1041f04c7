/*
 * virtio-blk driver (virtio 1.2, 5.2). A request is a chain: the 16-byte
 * header (device reads), the data segments, and one status byte (device
 * writes). Headers and status bytes live in one page of request slots;
 * data segments are whatever physical memory the caller names.
 */
#include "virtio/virtio_blk.h"

#include "arch/x86/cpu.h"   // interrupts_*, cpu_idle_with_interrupts
#include "mm/page.h"        // PAGE_SIZE
#include "arch/x86/clock.h"   // clock_ns
#include "console/console.h" // console_printf
#include "console/log.h"     // klog
#include "shell/shell.h"   // shell_register
#include "lib/crc32.h"      // crc32_update
#include "lib/parse.h"      // parse_u64
#include "lib/string.h"     // memset, strcmp
#include "mm/page_alloc.h"  // page_alloc
#include "virtio/blk_config.h" // blk_config_check, BLK_F_*
#include "pci/pci.h"     // struct pci_function
#include "virtio/virtio.h"  // virtio_*

/* config layout (5.2.4) */
#define CONFIG_CAPACITY 0
#define CONFIG_SIZE_MAX 8
#define CONFIG_SEG_MAX 12
#define CONFIG_BLK_SIZE 20

#define STATUS_OK 0
#define STATUS_IOERR 1
#define STATUS_UNSUPP 2
#define STATUS_PENDING 0xff /* what we write before submitting */

#define MAX_DISKS 8
#define MAX_SEGMENTS BLK_CONFIG_MAX_SEGMENTS
#define MAX_SLOTS 64
#define MAX_REQUEST_BYTES (1u << 20)
#define REQUEST_TIMEOUT_NS (30ull * 1000000000)
#define SERIAL_BYTES 20

struct blk_request {
    struct {
        uint32_t type;
        uint32_t reserved;
        uint64_t sector;
    } header;            /* device-readable */
    uint8_t status;      /* device-writable */
    uint8_t in_use;
    volatile uint8_t done;
    uint8_t bad_length;
    uint32_t type;
    uint64_t sector;
};

struct blk_disk {
    struct virtio_device *device;
    char name[SERIAL_BYTES + 1];
    char serial[SERIAL_BYTES + 1];
    uint64_t sectors;
    uint32_t block_size;
    uint32_t max_segments;
    uint32_t max_segment_bytes;
    int read_only, has_flush, frozen;
    unsigned slot_count;
    struct blk_request *slots; /* one page, shared with the device */
    uint8_t *id_buffer;        /* in the same page */
    uint64_t reads, writes, flushes, errors;
};

static struct blk_disk disks[MAX_DISKS];
static unsigned disk_count;

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
    return index < disk_count ? &disks[index] : 0;
}

struct blk_disk *blk_disk_find(const char *name)
{
    uint64_t index;

    for (unsigned i = 0; i < disk_count; i++)
        if (strcmp(disks[i].name, name) == 0)
            return &disks[i];
    if (parse_u64(name, &index) == 0 && index < disk_count)
        return &disks[index];
    return 0;
}

void blk_disk_info(const struct blk_disk *disk, struct blk_info *info)
{
    *info = (struct blk_info){
        disk->name, disk->serial, disk->sectors, disk->block_size, disk->max_segments,
        disk->max_segment_bytes, disk->read_only, disk->has_flush,
    };
}

unsigned blk_queue_depth(const struct blk_disk *disk)
{
    return disk->slot_count;
}

const char *blk_error_text(int error)
{
    switch (error) {
    case BLK_OK: return "ok";
    case BLK_ERROR_IO: return "I/O error reported by the device";
    case BLK_ERROR_UNSUPPORTED: return "request not supported by the device";
    case BLK_ERROR_READ_ONLY: return "the disk is read-only";
    case BLK_ERROR_RANGE: return "beyond the end of the disk";
    case BLK_ERROR_INVALID: return "invalid request";
    case BLK_ERROR_BUSY: return "no room for another request";
    case BLK_ERROR_DEVICE: return "the device misbehaved";
    case BLK_ERROR_FROZEN: return "the disk is frozen";
    default: return "unknown error";
    }
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
    struct vq_buffer buffers[MAX_SEGMENTS + 2];
    uint64_t bytes = 0;

    if (disk->frozen)
        return BLK_ERROR_FROZEN;
    if (type == BLK_TYPE_OUT && disk->read_only)
        return BLK_ERROR_READ_ONLY;
    if (type == BLK_TYPE_FLUSH && !disk->has_flush)
        return BLK_ERROR_UNSUPPORTED;
    if (count > disk->max_segments || (type != BLK_TYPE_FLUSH && count == 0))
        return BLK_ERROR_INVALID;
    for (unsigned i = 0; i < count; i++) {
        if (segments[i].length == 0 ||
            (disk->max_segment_bytes && segments[i].length > disk->max_segment_bytes))
            return BLK_ERROR_INVALID;
        bytes += segments[i].length;
    }
    if (type == BLK_TYPE_IN || type == BLK_TYPE_OUT) {
        if (bytes % BLK_SECTOR_SIZE)
            return BLK_ERROR_INVALID; /* data is whole sectors (5.2.6) */
        if (sector > disk->sectors || bytes / BLK_SECTOR_SIZE > disk->sectors - sector)
            return BLK_ERROR_RANGE;
    }

    struct blk_request *request = 0;
    for (unsigned i = 0; i < disk->slot_count && !request; i++)
        if (!disk->slots[i].in_use)
            request = &disk->slots[i];
    if (!request)
        return BLK_ERROR_BUSY;

    *request = (struct blk_request){
        .header = { type, 0, type == BLK_TYPE_IN || type == BLK_TYPE_OUT ? sector : 0 },
        .status = STATUS_PENDING,
        .in_use = 1,
        .type = type,
        .sector = sector,
    };
    int device_writes = type != BLK_TYPE_OUT;
    buffers[0] = (struct vq_buffer){ (uint64_t)(uintptr_t)&request->header, sizeof(request->header), 0 };
    for (unsigned i = 0; i < count; i++)
        buffers[1 + i] = (struct vq_buffer){ segments[i].address, segments[i].length, device_writes };
    buffers[1 + count] = (struct vq_buffer){ (uint64_t)(uintptr_t)&request->status, 1, 1 };

    uint64_t flags = read_flags();
    interrupts_disable();
    struct virtqueue *vq = virtio_queue(disk->device, 0);
    int added = vq ? vq_add_chain(vq, buffers, count + 2, request) : -1;
    if (added == 0)
        virtio_notify(disk->device, 0);
    if (flags & (1u << 9))
        interrupts_enable();
    if (added != 0) {
        request->in_use = 0;
        return added == -2 ? BLK_ERROR_INVALID : vq && vq_is_broken(vq) ? BLK_ERROR_DEVICE : BLK_ERROR_BUSY;
    }
    *out = request;
    return BLK_OK;
}

/* The device's status byte (5.2.6) as a result; a status the device never
 * wrote, or a used length it lied about, makes the request fail. */
static int status_result(uint8_t status, int bad_length)
{
    switch (status) {
    case STATUS_OK: return bad_length ? BLK_ERROR_DEVICE : BLK_OK;
    case STATUS_IOERR: return BLK_ERROR_IO;
    case STATUS_UNSUPP: return BLK_ERROR_UNSUPPORTED;
    default: return BLK_ERROR_DEVICE;
    }
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
        result = BLK_ERROR_DEVICE;
    } else {
        result = status_result(request->status, request->bad_length);
        request->in_use = 0;
    }
    if (request->type == BLK_TYPE_IN)
        disk->reads++;
    else if (request->type == BLK_TYPE_OUT)
        disk->writes++;
    else if (request->type == BLK_TYPE_FLUSH)
        disk->flushes++;
    if (result != BLK_OK) {
        disk->errors++;
        if (failed_sector)
            *failed_sector = request->sector;
    }
    return result;
}

/* Splits [buffer, buffer + bytes) into segments of at most the device's
 * segment size; returns the segment count. */
static unsigned build_segments(const struct blk_disk *disk, uint64_t address, uint32_t bytes,
                               struct blk_segment *segments)
{
    uint32_t limit = disk->max_segment_bytes ? disk->max_segment_bytes : bytes;
    unsigned count = 0;

    while (bytes) {
        uint32_t length = bytes < limit ? bytes : limit;
        segments[count++] = (struct blk_segment){ address, length };
        address += length;
        bytes -= length;
    }
    return count;
}

static uint32_t max_request_bytes(const struct blk_disk *disk)
{
    uint64_t limit = MAX_REQUEST_BYTES;

    if (disk->max_segment_bytes && (uint64_t)disk->max_segment_bytes * disk->max_segments < limit)
        limit = (uint64_t)disk->max_segment_bytes * disk->max_segments;
    return (uint32_t)(limit & ~(uint64_t)(BLK_SECTOR_SIZE - 1));
}

/* Keeps up to the queue depth of requests in flight, oldest waited first.
 * The data comes from a buffer of `window` bytes that repeats (the whole
 * transfer for ordinary I/O, one buffer over and over for the bench). */
static int transfer(struct blk_disk *disk, uint32_t type, uint64_t sector, uint64_t buffer,
                    uint64_t bytes, uint64_t window, uint64_t *failed_sector)
{
    uint64_t offset = 0;
    struct blk_request *in_flight[MAX_SLOTS];
    unsigned head = 0, count = 0;
    int result = BLK_OK;
    uint32_t chunk_limit = max_request_bytes(disk);

    if (bytes % BLK_SECTOR_SIZE || window % BLK_SECTOR_SIZE || window == 0)
        return BLK_ERROR_INVALID;
    while (bytes || count) {
        while (bytes && count < disk->slot_count && result == BLK_OK) {
            struct blk_segment segments[MAX_SEGMENTS];
            uint64_t in_window = window - offset % window;
            uint32_t chunk = (uint32_t)(bytes < chunk_limit ? bytes : chunk_limit);
            if (chunk > in_window)
                chunk = (uint32_t)in_window;
            unsigned segment_count = build_segments(disk, buffer + offset % window, chunk, segments);
            struct blk_request *request;
            int submitted = blk_submit(disk, type, sector, segments, segment_count, &request);
            if (submitted == BLK_ERROR_BUSY && count)
                break; /* wait for one to finish, then go on */
            if (submitted != BLK_OK) {
                result = submitted;
                if (failed_sector)
                    *failed_sector = sector;
                break;
            }
            in_flight[(head + count++) % MAX_SLOTS] = request;
            sector += chunk / BLK_SECTOR_SIZE;
            offset += chunk;
            bytes -= chunk;
        }
        if (!count)
            break;
        uint64_t sector_of_error;
        int waited = blk_wait(disk, in_flight[head], &sector_of_error);
        head = (head + 1) % MAX_SLOTS;
        count--;
        if (waited != BLK_OK && result == BLK_OK) {
            result = waited;
            if (failed_sector)
                *failed_sector = sector_of_error;
        }
        if (result != BLK_OK)
            bytes = 0; /* stop submitting; collect what is in flight */
    }
    return result;
}

int blk_read(struct blk_disk *disk, uint64_t sector, void *buffer, size_t bytes, uint64_t *failed_sector)
{
    return transfer(disk, BLK_TYPE_IN, sector, (uint64_t)(uintptr_t)buffer, bytes, bytes ? bytes : 1,
                    failed_sector);
}

int blk_write(struct blk_disk *disk, uint64_t sector, const void *buffer, size_t bytes, uint64_t *failed_sector)
{
    return transfer(disk, BLK_TYPE_OUT, sector, (uint64_t)(uintptr_t)buffer, bytes, bytes ? bytes : 1,
                    failed_sector);
}

int blk_flush(struct blk_disk *disk, uint64_t *failed_sector)
{
    struct blk_request *request;
    int result = blk_submit(disk, BLK_TYPE_FLUSH, 0, 0, 0, &request);

    if (result != BLK_OK) {
        if (failed_sector)
            *failed_sector = 0;
        return result;
    }
    return blk_wait(disk, request, failed_sector);
}

/* ---- probe and power management --------------------------------------- */

static int start_queue(struct blk_disk *disk)
{
    struct virtio_queue_request request = {
        .size = 256,
        .indirect_max = MAX_SEGMENTS + 2,
        .callback = queue_interrupt,
    };

    if (virtio_setup_queues(disk->device, 1, &request) != 0)
        return -1;
    struct virtqueue *vq = virtio_queue(disk->device, 0);
    unsigned ring_limit = vq->config.indirect_max > 1 ? vq->config.size : vq->config.size / 2;
    disk->slot_count = ring_limit < MAX_SLOTS ? ring_limit : MAX_SLOTS;
    /* without indirect tables a chain takes a descriptor per segment */
    if (vq->config.indirect_max <= 1 && disk->max_segments + 2 > vq->config.size)
        disk->max_segments = vq->config.size - 2;
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

    report.capacity = virtio_read_config(device, CONFIG_CAPACITY, 8);
    if (virtio_has_feature(device, BLK_F_BLK_SIZE))
        report.blk_size = (uint32_t)virtio_read_config(device, CONFIG_BLK_SIZE, 4);
    if (virtio_has_feature(device, BLK_F_SEG_MAX))
        report.seg_max = (uint32_t)virtio_read_config(device, CONFIG_SEG_MAX, 4);
    if (virtio_has_feature(device, BLK_F_SIZE_MAX))
        report.size_max = (uint32_t)virtio_read_config(device, CONFIG_SIZE_MAX, 4);
    const char *error = blk_config_check(&report, &limits);
    if (error) {
        device->error = error;
        return -1;
    }
    if (limits.ignored_block_size)
        klog("blk: ignoring block size %u", report.blk_size);
    disk->sectors = limits.sectors;
    disk->block_size = limits.block_size;
    disk->max_segments = limits.max_segments;
    disk->max_segment_bytes = limits.max_segment_bytes;
    disk->read_only = limits.read_only;
    disk->has_flush = limits.has_flush;
    return 0;
}

static void read_serial(struct blk_disk *disk)
{
    struct blk_segment segment = { (uint64_t)(uintptr_t)disk->id_buffer, SERIAL_BYTES };
    struct blk_request *request;

    memset(disk->id_buffer, 0, SERIAL_BYTES);
    disk->serial[0] = 0;
    if (blk_submit(disk, BLK_TYPE_GET_ID, 0, &segment, 1, &request) != BLK_OK ||
        blk_wait(disk, request, 0) != BLK_OK)
        return;
    /* up to 20 bytes, NUL-terminated only when shorter (5.2.6) */
    unsigned length = 0;
    while (length < SERIAL_BYTES && disk->id_buffer[length] >= 0x21 && disk->id_buffer[length] < 0x7f)
        length++;
    memcpy(disk->serial, disk->id_buffer, length);
    disk->serial[length] = 0;
}

static int blk_probe(struct virtio_device *device)
{
    if (disk_count == MAX_DISKS) {
        device->error = "too many disks";
        return -1;
    }
    struct blk_disk *disk = &disks[disk_count];
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
    disk_count++;
    read_serial(disk);
    if (disk->serial[0])
        string_copy(disk->name, disk->serial, sizeof(disk->name));
    else {
        disk->name[0] = 'v';
        disk->name[1] = 'd';
        disk->name[2] = (char)('a' + disk_count - 1);
        disk->name[3] = 0;
    }
    klog("blk: %s: %llu sectors%s, %u segments of %u bytes, %u in flight", disk->name,
         (unsigned long long)disk->sectors, disk->read_only ? " read-only" : "",
         disk->max_segments, disk->max_segment_bytes, disk->slot_count);
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

static int blk_resume(struct virtio_device *device)
{
    struct blk_disk *disk = device->driver_data;

    if (!disk->frozen)
        return 0; /* never frozen: its queue is live, nothing to bring back */
    if (virtio_reinitialize(device) != 0 || start_queue(disk) != 0)
        return -1;
    return 0;
}

/* The disk vanished across a resume: it stays frozen (every request is
 * refused) and no longer answers to its name. */
static void blk_remove(struct virtio_device *device)
{
    struct blk_disk *disk = device->driver_data;

    disk->frozen = 1;
    memcpy(disk->name, "gone", 5);
}

static const struct virtio_driver blk_driver = {
    .name = "virtio-blk",
    .device_type = VIRTIO_TYPE_BLOCK,
    .features = (1ull << BLK_F_SIZE_MAX) | (1ull << BLK_F_SEG_MAX) | (1ull << BLK_F_RO) |
                (1ull << BLK_F_BLK_SIZE) | (1ull << BLK_F_FLUSH),
    .feature_names = blk_feature_names,
    .probe = blk_probe,
    .freeze = blk_freeze,
    .thaw = blk_resume,
    .restore = blk_resume,
    .remove = blk_remove,
};

/* ---- the hibernation writer's path ------------------------------------- */

#define WRITER_SLOTS 16
#define WRITER_QUEUE_SIZE 256

struct blk_writer {
    struct blk_disk *disk;
    struct virtqueue ring;
    struct {
        struct {
            uint32_t type;
            uint32_t reserved;
            uint64_t sector;
        } header;
        uint8_t status;
        uint8_t busy;
        uint64_t sector;
    } slots[WRITER_SLOTS];
    unsigned max_segments;
    int error;
    uint64_t error_sector;
};

_Static_assert(sizeof(struct blk_writer) <= PAGE_SIZE, "the writer's state fits a page");

struct blk_writer *blk_writer_prepare(struct blk_disk *disk, void *memory)
{
    struct blk_writer *w = memory;
    struct virtio_device *device = disk->device;

    if (!disk->frozen || disk->read_only)
        return 0;
    memset(w, 0, sizeof(*w));
    w->disk = disk;
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
    w->max_segments = disk->max_segments < size - 2u ? disk->max_segments : size - 2u;
    return w;
}

unsigned blk_writer_max_segments(const struct blk_writer *w)
{
    return w->max_segments;
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
        int result = status_result(w->slots[i].status, status == VQ_USED_BAD_LENGTH);
        if (result != BLK_OK && !w->error) {
            w->error = result;
            w->error_sector = w->slots[i].sector;
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
            return BLK_ERROR_DEVICE;
        __asm__ volatile("pause");
    }
    return BLK_OK;
}

int blk_writer_submit(struct blk_writer *w, uint32_t type, uint64_t sector,
                      const struct blk_segment *segments, unsigned count)
{
    struct vq_buffer buffers[MAX_SEGMENTS + 2];
    uint64_t bytes = 0;

    if (w->error)
        return w->error; /* the first failure ends the image */
    if (count > w->max_segments || (type == BLK_TYPE_OUT && count == 0))
        return BLK_ERROR_INVALID;
    for (unsigned i = 0; i < count; i++)
        bytes += segments[i].length;
    if (bytes % BLK_SECTOR_SIZE || sector > w->disk->sectors ||
        bytes / BLK_SECTOR_SIZE > w->disk->sectors - sector)
        return BLK_ERROR_RANGE;

    unsigned slot = WRITER_SLOTS;
    for (;;) {
        for (unsigned i = 0; i < WRITER_SLOTS && slot == WRITER_SLOTS; i++)
            if (!w->slots[i].busy)
                slot = i;
        if (slot < WRITER_SLOTS)
            break;
        if (writer_wait_one(w) != BLK_OK)
            return BLK_ERROR_DEVICE;
    }
    w->slots[slot].header.type = type;
    w->slots[slot].header.reserved = 0;
    w->slots[slot].header.sector = type == BLK_TYPE_OUT ? sector : 0;
    w->slots[slot].status = STATUS_PENDING;
    w->slots[slot].sector = sector;
    buffers[0] = (struct vq_buffer){ (uint64_t)(uintptr_t)&w->slots[slot].header, 16, 0 };
    for (unsigned i = 0; i < count; i++)
        buffers[1 + i] = (struct vq_buffer){ segments[i].address, segments[i].length, 0 };
    buffers[1 + count] = (struct vq_buffer){ (uint64_t)(uintptr_t)&w->slots[slot].status, 1, 1 };
    int added;
    while ((added = vq_add_chain(&w->ring, buffers, count + 2, &w->slots[slot])) == -1) {
        if (writer_wait_one(w) != BLK_OK)
            return BLK_ERROR_DEVICE;
    }
    if (added != 0)
        return BLK_ERROR_INVALID;
    w->slots[slot].busy = 1;
    virtio_private_notify(w->disk->device, 0, &w->ring);
    return w->error;
}

int blk_writer_wait_all(struct blk_writer *w, uint64_t *failed_sector)
{
    for (;;) {
        int busy = 0;
        for (unsigned i = 0; i < WRITER_SLOTS; i++)
            busy |= w->slots[i].busy;
        if (!busy)
            break;
        if (writer_wait_one(w) != BLK_OK && !w->error) {
            w->error = BLK_ERROR_DEVICE;
            w->error_sector = 0;
        }
        if (w->error == BLK_ERROR_DEVICE)
            break;
    }
    if (w->error && failed_sector)
        *failed_sector = w->error_sector;
    return w->error;
}

void blk_writer_finish(struct blk_writer *w)
{
    virtio_reset(w->disk->device);
}

/* ---- console ----------------------------------------------------------- */

static struct blk_disk *disk_argument(const char *name)
{
    struct blk_disk *disk = blk_disk_find(name);

    if (!disk)
        shell_error("blk: no disk '%s' (see blk)", name);
    return disk;
}

static void report_failure(const char *what, struct blk_disk *disk, int error, uint64_t sector)
{
    shell_error("blk: %s %s: %s sector=%llu", what, disk->name, blk_error_text(error),
                (unsigned long long)sector);
}

#define DUMP_MAX_SECTORS 8
#define WRITE_MAX_SECTORS 2048 /* 1 MiB */

static void command_read(int argc, char **argv)
{
    struct blk_disk *disk = disk_argument(argv[2]);
    uint64_t lba, count = 1, failed;

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
    if (result != BLK_OK) {
        report_failure("read", disk, result, failed);
    } else {
        uint64_t dump = count < DUMP_MAX_SECTORS ? count : DUMP_MAX_SECTORS;
        for (uint64_t offset = 0; offset < dump * BLK_SECTOR_SIZE; offset += 16) {
            console_printf("%08llx ", (unsigned long long)(lba * BLK_SECTOR_SIZE + offset));
            for (unsigned i = 0; i < 16; i++)
                console_printf(" %02x", data[offset + i]);
            console_printf("\n");
        }
        console_printf("blkread disk=%s lba=%llu count=%llu crc32=%08x\n", disk->name,
                       (unsigned long long)lba, (unsigned long long)count,
                       crc32_update(0, data, count * BLK_SECTOR_SIZE));
    }
    page_free(buffer);
}

static void command_write(int argc, char **argv)
{
    struct blk_disk *disk = disk_argument(argv[2]);
    uint64_t lba, pattern, count = 1, failed;

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
    if (result != BLK_OK)
        report_failure("write", disk, result, failed);
    else
        console_printf("blkwrite disk=%s lba=%llu count=%llu crc32=%08x\n", disk->name,
                       (unsigned long long)lba, (unsigned long long)count,
                       crc32_update(0, words, count * BLK_SECTOR_SIZE));
    page_free(buffer);
}

static void command_flush(struct blk_disk *disk)
{
    uint64_t failed;
    int result = blk_flush(disk, &failed);

    if (result != BLK_OK)
        report_failure("flush", disk, result, failed);
    else
        console_printf("blkflush disk=%s\n", disk->name);
}

static void command_bench(int argc, char **argv)
{
    struct blk_disk *disk = disk_argument(argv[2]);
    uint64_t mib, failed;

    (void)argc;
    if (!disk || shell_parse_number(argv[3], "blk", &mib))
        return;
    if (mib == 0 || mib * 2048 > disk->sectors) {
        shell_error("blk: bench size must be 1 MiB up to the disk's size");
        return;
    }
    uint64_t buffer = page_alloc(8, PAGE_TAG_KERNEL);
    if (!buffer) {
        shell_error("blk: no memory for the buffer");
        return;
    }
    memset((void *)(uintptr_t)buffer, 0xa5, 1u << 20);
    uint64_t start = clock_ns();
    /* sequential, the same 1 MiB buffer over and over, queue kept full */
    int result = transfer(disk, BLK_TYPE_OUT, 0, buffer, mib << 20, 1u << 20, &failed);
    if (result == BLK_OK && disk->has_flush)
        result = blk_flush(disk, &failed);
    uint64_t write_ns = clock_ns() - start;
    if (result == BLK_OK) {
        start = clock_ns();
        result = transfer(disk, BLK_TYPE_IN, 0, buffer, mib << 20, 1u << 20, &failed);
    }
    uint64_t read_ns = clock_ns() - start;
    page_free(buffer);
    if (result != BLK_OK) {
        report_failure("bench", disk, result, failed);
        return;
    }
    console_printf("blkbench disk=%s mib=%llu write_mibps=%llu read_mibps=%llu write_ms=%llu read_ms=%llu\n",
                   disk->name, (unsigned long long)mib,
                   (unsigned long long)(mib * 1000000000ull / (write_ns ? write_ns : 1)),
                   (unsigned long long)(mib * 1000000000ull / (read_ns ? read_ns : 1)),
                   (unsigned long long)(write_ns / 1000000), (unsigned long long)(read_ns / 1000000));
}

static void command_blk(int argc, char **argv)
{
    if (argc == 1) {
        for (unsigned i = 0; i < disk_count; i++) {
            struct blk_disk *d = &disks[i];
            struct pci_function *f = d->device->pci;
            console_printf("blk disk=%s index=%u serial=%s sectors=%llu mib=%llu block_size=%u "
                           "ro=%d flush=%d max_segments=%u max_segment_bytes=%u depth=%u "
                           "pci=%02x:%02x.%x reads=%llu writes=%llu flushes=%llu errors=%llu%s\n",
                           d->name, i, d->serial[0] ? d->serial : "-", (unsigned long long)d->sectors,
                           (unsigned long long)(d->sectors / 2048), d->block_size, d->read_only,
                           d->has_flush, d->max_segments, d->max_segment_bytes, d->slot_count,
                           f->bus, f->device, f->function, (unsigned long long)d->reads,
                           (unsigned long long)d->writes, (unsigned long long)d->flushes,
                           (unsigned long long)d->errors, d->frozen ? " frozen=1" : "");
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

static const struct shell_command blk_commands[] = {
    { "blk", "[read|write|flush|bench] ...", "virtio-blk disks; read, write, flush, benchmark",
      0, 5, command_blk },
};

void virtio_blk_register(void)
{
    virtio_register_driver(&blk_driver);
    shell_register(blk_commands, sizeof(blk_commands) / sizeof(blk_commands[0]));
}
