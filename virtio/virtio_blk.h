/*
 * virtio-blk (virtio 1.2, 5.2): disks by name, asynchronous requests that
 * point straight at physical pages (no bounce copy), and synchronous
 * helpers on top. A disk is named by its serial (VIRTIO_BLK_T_GET_ID) when
 * it has one, else vda, vdb, ... Every function returns 0 or a
 * lib/error.h code.
 */
#ifndef VIRTIO_VIRTIO_BLK_H
#define VIRTIO_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/blk_request.h" // struct blk_segment, BLK_TYPE_*, BLK_SECTOR_SIZE

struct blk_disk;
struct blk_request;
struct virtio_device;

#define BLK_MAX_QUEUE_DEPTH 64 /* request slots per disk */

struct blk_stats {
    uint64_t reads, writes, flushes, errors; /* completed requests */
};

/* What the `blk` command prints. */
struct blk_info {
    const char *name;
    const char *serial;   /* "" when the device has none */
    unsigned index;
    uint64_t sectors;     /* 512-byte sectors */
    uint32_t block_size;
    uint32_t max_segments;
    uint32_t max_segment_bytes; /* 0: no limit */
    int read_only;
    int has_flush;
    int frozen;
    unsigned queue_depth; /* requests in flight at once */
    uint8_t pci_bus, pci_device, pci_function;
    struct blk_stats stats;
};

/* Disks sit in a table; a removed disk leaves its entry free, so
 * blk_disk_get returns NULL for some index below blk_disk_count. */
unsigned blk_disk_count(void);
struct blk_disk *blk_disk_get(unsigned index);
/* By name (serial or vdX), or by index written as a number. */
struct blk_disk *blk_disk_find(const char *name);
void blk_disk_info(const struct blk_disk *disk, struct blk_info *info);
void blk_disk_limits(const struct blk_disk *disk, struct blk_request_limits *limits);
/* Requests the disk keeps in flight at once, at most BLK_MAX_QUEUE_DEPTH. */
unsigned blk_disk_queue_depth(const struct blk_disk *disk);
/* For the polled path (blk_writer.c): the disk's virtio device, and its
 * requests counted into the disk's statistics once it is done. */
struct virtio_device *blk_disk_device(struct blk_disk *disk);
void blk_disk_add_stats(struct blk_disk *disk, const struct blk_stats *more);

/* Starts a request; the segments are the data (none for FLUSH). On
 * success *request is the handle to wait on. ERROR_BUSY: no slot or ring
 * space now, wait for a request in flight and submit again. */
int blk_submit(struct blk_disk *disk, uint32_t type, uint64_t sector,
               const struct blk_segment *segments, unsigned count, struct blk_request **request);
/* Waits (halting the CPU) for a request and releases it; *failed_sector
 * is the request's first sector on error. */
int blk_wait(struct blk_disk *disk, struct blk_request *request, uint64_t *failed_sector);

/* Synchronous transfers of a physically contiguous buffer, split into
 * requests the device accepts, several in flight (blk_transfer.c). */
int blk_read(struct blk_disk *disk, uint64_t sector, void *buffer, size_t bytes, uint64_t *failed_sector);
int blk_write(struct blk_disk *disk, uint64_t sector, const void *buffer, size_t bytes, uint64_t *failed_sector);
int blk_flush(struct blk_disk *disk, uint64_t *failed_sector);

/* Resets the device, so that no request in flight can still write
 * memory (one that timed out, say), and sets its queue up again. */
int blk_disk_restart(struct blk_disk *disk);

/* Registers the driver with the virtio core. */
void virtio_blk_register(void);

#endif
