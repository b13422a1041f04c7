/*
 * The hibernation writer's block path: polled requests whose every piece
 * of state lives in memory the caller owns (BLK_WRITER_MEMORY bytes, page
 * aligned), so that once it is prepared, writing touches nothing else and
 * needs no interrupt. The disk must be frozen first; blk_writer_finish
 * resets the device so that thaw can bring it back the ordinary way.
 */
#ifndef VIRTIO_BLK_WRITER_H
#define VIRTIO_BLK_WRITER_H

#include <stdint.h>

#include "virtio/blk_request.h" // struct blk_segment, struct blk_request_limits

#define BLK_WRITER_MEMORY (64 * 1024)

struct blk_disk;
struct blk_writer;

/* NULL when the disk is not frozen, is read-only, or refuses the queue. */
struct blk_writer *blk_writer_prepare(struct blk_disk *disk, void *memory);
/* What this path's requests may hold (fewer segments than the driver's:
 * its chains are direct, a descriptor per segment). */
void blk_writer_limits(const struct blk_writer *writer, struct blk_request_limits *limits);
/* Queues a request, waiting for room when the ring is full; returns the
 * first error any request of this writer met (the image is then lost). */
int blk_writer_submit(struct blk_writer *writer, uint32_t type, uint64_t sector,
                      const struct blk_segment *segments, unsigned count);
/* How many requests are still on the device (after taking back what it
 * finished): a caller with other work does it instead of waiting. */
unsigned blk_writer_in_flight(struct blk_writer *writer);
/* What the first failed request was: BLK_TYPE_OUT or BLK_TYPE_FLUSH
 * (meaningful once a call returned an error). */
uint32_t blk_writer_failed_type(const struct blk_writer *writer);
/* Waits for every request; returns the first error (and its sector). */
int blk_writer_wait_all(struct blk_writer *writer, uint64_t *failed_sector);
void blk_writer_finish(struct blk_writer *writer);

#endif
