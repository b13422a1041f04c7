/*
 * Synchronous virtio-blk transfers (see virtio/virtio_blk.h): a physically
 * contiguous buffer split into requests the disk accepts, up to its queue
 * depth in flight, over the driver's blk_submit and blk_wait.
 */
#include "virtio/virtio_blk.h"

#include "lib/error.h"          // ERROR_*
#include "virtio/blk_request.h" // blk_builder_*, BLK_TYPE_*

/* Keeps up to the queue depth of requests in flight, oldest waited first. */
static int transfer(struct blk_disk *disk, uint32_t type, uint64_t sector, uint64_t buffer,
                    uint64_t bytes, uint64_t *failed_sector)
{
    struct blk_request *in_flight[BLK_MAX_QUEUE_DEPTH];
    struct blk_request_limits limits;
    struct blk_request_builder builder;
    unsigned head = 0, count = 0;
    int result = 0;

    if (bytes % BLK_SECTOR_SIZE)
        return ERROR_INVALID;
    blk_disk_limits(disk, &limits);
    blk_builder_init(&builder, &limits);
    unsigned depth = blk_disk_queue_depth(disk);
    while (bytes || count) {
        while (bytes && count < depth && result == 0) {
            blk_builder_reset(&builder);
            uint32_t chunk = blk_builder_add(&builder, buffer, bytes < UINT32_MAX ? (uint32_t)bytes : UINT32_MAX);
            if (chunk == 0) {
                result = ERROR_INVALID; /* limits that fit not one sector */
                break;
            }
            struct blk_request *request;
            int submitted = blk_submit(disk, type, sector, builder.segments, builder.count, &request);
            if (submitted == ERROR_BUSY && count)
                break; /* a full ring is back-pressure: wait for one, then go on */
            if (submitted != 0) {
                result = submitted;
                if (failed_sector)
                    *failed_sector = sector;
                break;
            }
            in_flight[(head + count++) % BLK_MAX_QUEUE_DEPTH] = request;
            sector += chunk / BLK_SECTOR_SIZE;
            buffer += chunk;
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
            if (failed_sector)
                *failed_sector = sector_of_error;
        }
        if (result != 0)
            bytes = 0; /* stop submitting; collect what is in flight */
    }
    return result;
}

int blk_read(struct blk_disk *disk, uint64_t sector, void *buffer, size_t bytes, uint64_t *failed_sector)
{
    return transfer(disk, BLK_TYPE_IN, sector, (uint64_t)(uintptr_t)buffer, bytes, failed_sector);
}

int blk_write(struct blk_disk *disk, uint64_t sector, const void *buffer, size_t bytes, uint64_t *failed_sector)
{
    return transfer(disk, BLK_TYPE_OUT, sector, (uint64_t)(uintptr_t)buffer, bytes, failed_sector);
}

int blk_flush(struct blk_disk *disk, uint64_t *failed_sector)
{
    struct blk_request *request;
    int result = blk_submit(disk, BLK_TYPE_FLUSH, 0, 0, 0, &request);

    if (result != 0) {
        if (failed_sector)
            *failed_sector = 0;
        return result;
    }
    return blk_wait(disk, request, failed_sector);
}
