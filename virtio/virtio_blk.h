/*
 * virtio-blk (virtio 1.2, 5.2): disks by name, asynchronous requests that
 * point straight at physical pages (no bounce copy), and synchronous
 * helpers on top. A disk is named by its serial (VIRTIO_BLK_T_GET_ID) when
 * it has one, else vda, vdb, ...
 */
#ifndef VIRTIO_VIRTIO_BLK_H
#define VIRTIO_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

#define BLK_SECTOR_SIZE 512

/* request types (5.2.6) */
#define BLK_TYPE_IN 0
#define BLK_TYPE_OUT 1
#define BLK_TYPE_FLUSH 4
#define BLK_TYPE_GET_ID 8

enum blk_error {
    BLK_OK = 0,
    BLK_ERROR_IO = -1,          /* VIRTIO_BLK_S_IOERR */
    BLK_ERROR_UNSUPPORTED = -2, /* VIRTIO_BLK_S_UNSUPP */
    BLK_ERROR_READ_ONLY = -3,   /* VIRTIO_BLK_F_RO: writes refused */
    BLK_ERROR_RANGE = -4,       /* beyond the capacity */
    BLK_ERROR_INVALID = -5,     /* misaligned, too many segments, ... */
    BLK_ERROR_BUSY = -6,        /* no free request slot or ring space right now */
    BLK_ERROR_DEVICE = -7,      /* broken ring, bad status, bad length, timeout */
    BLK_ERROR_FROZEN = -8,      /* the disk is frozen for hibernation */
};

struct blk_disk;
struct blk_request;

struct blk_segment {
    uint64_t address; /* physical */
    uint32_t length;
};

struct blk_info {
    const char *name;
    const char *serial;   /* "" when the device has none */
    uint64_t sectors;     /* 512-byte sectors */
    uint32_t block_size;
    uint32_t max_segments;
    uint32_t max_segment_bytes; /* 0: no limit */
    int read_only;
    int has_flush;
};

unsigned blk_disk_count(void);
struct blk_disk *blk_disk_get(unsigned index);
/* By name (serial or vdX), or by index written as a number. */
struct blk_disk *blk_disk_find(const char *name);
void blk_disk_info(const struct blk_disk *disk, struct blk_info *info);

/* Starts a request; the segments are the data (none for FLUSH). On
 * success *request is the handle to wait on. */
int blk_submit(struct blk_disk *disk, uint32_t type, uint64_t sector,
               const struct blk_segment *segments, unsigned count, struct blk_request **request);
/* Waits (halting the CPU) for a request and releases it. Returns BLK_OK or
 * an error; *failed_sector is the request's first sector on error. */
int blk_wait(struct blk_disk *disk, struct blk_request *request, uint64_t *failed_sector);
/* Requests that can be in flight at once. */
unsigned blk_queue_depth(const struct blk_disk *disk);

/* Synchronous transfers of a physically contiguous buffer, split into
 * requests the device accepts, several in flight. */
int blk_read(struct blk_disk *disk, uint64_t sector, void *buffer, size_t bytes, uint64_t *failed_sector);
int blk_write(struct blk_disk *disk, uint64_t sector, const void *buffer, size_t bytes, uint64_t *failed_sector);
int blk_flush(struct blk_disk *disk, uint64_t *failed_sector);

const char *blk_error_text(int error);

/*
 * The hibernation writer's block path: polled requests whose every piece
 * of state lives in memory the caller owns (BLK_WRITER_MEMORY bytes, page
 * aligned), so that once it is prepared, writing touches nothing else.
 * The disk must be frozen first; blk_writer_finish resets the device so
 * that thaw can bring it back the ordinary way.
 */
#define BLK_WRITER_MEMORY (64 * 1024)

struct blk_writer;

struct blk_writer *blk_writer_prepare(struct blk_disk *disk, void *memory);
int blk_writer_submit(struct blk_writer *writer, uint32_t type, uint64_t sector,
                      const struct blk_segment *segments, unsigned count);
/* Waits for every request; returns the first error (and its sector). */
int blk_writer_wait_all(struct blk_writer *writer, uint64_t *failed_sector);
unsigned blk_writer_max_segments(const struct blk_writer *writer);
void blk_writer_finish(struct blk_writer *writer);

/* Registers the driver with the virtio core. */
void virtio_blk_register(void);

#endif
