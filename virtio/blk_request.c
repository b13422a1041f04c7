/*
 * virtio-blk request checks, chains and the segment builder (see
 * virtio/blk_request.h). No kernel state: the host tests run this code.
 */
#include "virtio/blk_request.h"

#include "lib/error.h"    // ERROR_*
#include "lib/hot_path.h" // HOT_PATH

int blk_request_check(const struct blk_request_limits *limits, uint32_t type, uint64_t sector,
                      const struct blk_segment *segments, unsigned count)
{
    uint64_t bytes = 0;

    if (type == BLK_TYPE_OUT && limits->read_only)
        return ERROR_READ_ONLY;
    if (type == BLK_TYPE_FLUSH && !limits->has_flush)
        return ERROR_UNSUPPORTED;
    if (count > limits->max_segments || count > BLK_MAX_SEGMENTS ||
        (type != BLK_TYPE_FLUSH && count == 0) || (type == BLK_TYPE_FLUSH && count != 0))
        return ERROR_INVALID;
    for (unsigned i = 0; i < count; i++) {
        /* every segment within size_max (5.2.6.1) */
        if (segments[i].length == 0 ||
            (limits->max_segment_bytes && segments[i].length > limits->max_segment_bytes))
            return ERROR_INVALID;
        bytes += segments[i].length;
    }
    if (type == BLK_TYPE_IN || type == BLK_TYPE_OUT) {
        if (bytes % BLK_SECTOR_SIZE)
            return ERROR_INVALID; /* data is whole sectors (5.2.6) */
        if (sector > limits->sectors || bytes / BLK_SECTOR_SIZE > limits->sectors - sector)
            return ERROR_RANGE;
    }
    return 0;
}

unsigned blk_request_chain(struct blk_request_header *header, uint8_t *status, uint32_t type,
                           uint64_t sector, const struct blk_segment *segments, unsigned count,
                           struct vq_buffer *buffers)
{
    int device_writes = type == BLK_TYPE_IN || type == BLK_TYPE_GET_ID;

    /* the sector field means nothing for FLUSH and GET_ID: 0 (5.2.6.1) */
    *header = (struct blk_request_header){
        type, 0, type == BLK_TYPE_IN || type == BLK_TYPE_OUT ? sector : 0,
    };
    *status = BLK_STATUS_PENDING;
    buffers[0] = (struct vq_buffer){ (uint64_t)(uintptr_t)header, sizeof(*header), 0 };
    for (unsigned i = 0; i < count; i++)
        buffers[1 + i] = (struct vq_buffer){ segments[i].address, segments[i].length, device_writes };
    buffers[1 + count] = (struct vq_buffer){ (uint64_t)(uintptr_t)status, 1, 1 };
    return count + 2;
}

int blk_request_result(uint8_t status, int bad_length)
{
    switch (status) {
    case BLK_STATUS_OK: return bad_length ? ERROR_DEVICE : 0;
    case BLK_STATUS_IOERR: return ERROR_IO;
    case BLK_STATUS_UNSUPP: return ERROR_UNSUPPORTED;
    default: return ERROR_DEVICE;
    }
}

void blk_builder_init(struct blk_request_builder *b, const struct blk_request_limits *limits)
{
    uint32_t max_bytes = limits->max_request_bytes ? limits->max_request_bytes : BLK_MAX_REQUEST_BYTES;

    b->max_segments = limits->max_segments < BLK_MAX_SEGMENTS ? limits->max_segments : BLK_MAX_SEGMENTS;
    b->max_segment_bytes = limits->max_segment_bytes;
    /* no more than the segments can carry, in whole sectors */
    if (b->max_segment_bytes && (uint64_t)b->max_segment_bytes * b->max_segments < max_bytes)
        max_bytes = b->max_segment_bytes * b->max_segments;
    b->max_bytes = max_bytes & ~(uint32_t)(BLK_SECTOR_SIZE - 1);
    blk_builder_reset(b);
}

void blk_builder_reset(struct blk_request_builder *b)
{
    b->count = 0;
    b->bytes = 0;
}

HOT_PATH uint32_t blk_builder_add(struct blk_request_builder *b, uint64_t address, uint32_t length)
{
    uint32_t taken = 0;

    while (taken < length && b->bytes < b->max_bytes) {
        uint32_t room = b->max_bytes - b->bytes, piece = length - taken;
        if (piece > room)
            piece = room;
        struct blk_segment *last = b->count ? &b->segments[b->count - 1] : 0;
        if (last && last->address + last->length == address + taken) {
            uint32_t segment_room = b->max_segment_bytes ? b->max_segment_bytes - last->length : piece;
            if (segment_room) {
                if (piece > segment_room)
                    piece = segment_room;
                last->length += piece;
                b->bytes += piece;
                taken += piece;
                continue;
            }
        }
        if (b->count == b->max_segments)
            break;
        if (b->max_segment_bytes && piece > b->max_segment_bytes)
            piece = b->max_segment_bytes;
        b->segments[b->count++] = (struct blk_segment){ address + taken, piece };
        b->bytes += piece;
        taken += piece;
    }
    return taken;
}
