/*
 * virtio-blk requests (virtio 1.2, 5.2.6), pure: the wire format, the
 * checks every request passes, the descriptor chain, and a builder that
 * gathers physical ranges into segments the device accepts. The
 * interrupt-driven driver (virtio_blk.c) and the polled hibernation path
 * (blk_writer.c) both build their requests here.
 */
#ifndef VIRTIO_BLK_REQUEST_H
#define VIRTIO_BLK_REQUEST_H

#include <stdint.h>

#include "virtio/virtqueue.h" // struct vq_buffer

#define BLK_SECTOR_SIZE 512

/* request types (5.2.6) */
#define BLK_TYPE_IN 0
#define BLK_TYPE_OUT 1
#define BLK_TYPE_FLUSH 4
#define BLK_TYPE_GET_ID 8

/* status byte (5.2.6) */
#define BLK_STATUS_OK 0
#define BLK_STATUS_IOERR 1
#define BLK_STATUS_UNSUPP 2
#define BLK_STATUS_PENDING 0xff /* what the driver writes before submitting */

#define BLK_ID_BYTES 20             /* GET_ID: the serial, NUL-padded */
#define BLK_MAX_SEGMENTS 126        /* + header + status = 128 descriptors */
#define BLK_MAX_REQUEST_BYTES (1u << 20)

/* The device-readable request header. */
struct blk_request_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector; /* 512-byte units, whatever the block size (5.2.6.1) */
} __attribute__((packed));

struct blk_segment {
    uint64_t address; /* physical */
    uint32_t length;
};

/* What a disk accepts. */
struct blk_request_limits {
    uint64_t sectors;
    uint32_t max_segments;      /* seg_max, and what the ring can chain */
    uint32_t max_segment_bytes; /* size_max; 0: no limit */
    uint32_t max_request_bytes; /* whole sectors */
    int read_only, has_flush;
};

/* 0, or the lib/error.h code saying why the disk cannot take this request. */
int blk_request_check(const struct blk_request_limits *limits, uint32_t type, uint64_t sector,
                      const struct blk_segment *segments, unsigned count);

/* Fills the header and the chain: header, the data segments (the device
 * writes them for IN and GET_ID), and the status byte. buffers holds
 * count + 2 entries; returns how many it filled. */
unsigned blk_request_chain(struct blk_request_header *header, uint8_t *status, uint32_t type,
                           uint64_t sector, const struct blk_segment *segments, unsigned count,
                           struct vq_buffer *buffers);

/* The status byte as a result: a status the device never wrote, or a
 * used length it lied about, is ERROR_DEVICE. */
int blk_request_result(uint8_t status, int bad_length);

/* Gathers physical ranges into one request's segments: a range that
 * continues the last segment extends it, up to the limits. */
struct blk_request_builder {
    struct blk_segment segments[BLK_MAX_SEGMENTS];
    unsigned count;
    uint32_t bytes;
    uint32_t max_segments, max_segment_bytes, max_bytes;
};

void blk_builder_init(struct blk_request_builder *builder, const struct blk_request_limits *limits);
/* Adds as much of [address, address + length) as the request can still
 * take and returns how many bytes that was (0: the request is full). */
uint32_t blk_builder_add(struct blk_request_builder *builder, uint64_t address, uint32_t length);
void blk_builder_reset(struct blk_request_builder *builder);

#endif
